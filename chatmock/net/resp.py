"""RESP, the Redis wire protocol, sans I/O: commands to bytes, bytes to replies.

`encode_command(args)` frames one command as RESP2 clients send it (an array of
bulk strings); `encode_commands` frames a pipeline. `ReplyParser` is fed the
bytes read from the socket, in pieces split anywhere, and hands out whole
replies one at a time (`next_reply()` returns `NEED_DATA` until one is
complete). It reads RESP2 and RESP3:

    +simple  -> str             $bulk, =verbatim -> bytes / str (format dropped)
    -error   -> ReplyError      !bulk error      -> ReplyError
    :integer -> int             (big number      -> int
    ,double  -> float           #t / #f          -> bool
    _ , $-1, *-1 -> None        *array, ~set     -> list
    %map     -> dict            >push            -> Push (a list)
    |attribute: read and dropped (metadata about the reply after it)

An error reply is a value, not an exception: in a pipeline one command may fail
while the others succeed, and the caller decides. The only exception the parser
raises is `ProtocolError`, for bytes that are not RESP (or exceed the bounds
below); after it the connection's byte stream cannot be trusted again.

Incremental by construction: aggregates under construction are kept on an
explicit stack (no recursion, so nesting depth is a bound we choose, not
Python's), each element is parsed once, and a bulk string that has not fully
arrived costs one header re-read per `feed` until it has. The buffer is a
bytearray with a read position, compacted once the consumed part is large.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Union

from chatmock.errors import ChatmockError

MAX_BULK_BYTES: Final = 512 * 1024 * 1024  # Redis's own proto-max-bulk-len default
MAX_LINE_BYTES: Final = 64 * 1024  # a header or simple string without its CRLF
MAX_AGGREGATE_LENGTH: Final = 1 << 32
MAX_DEPTH: Final = 64
_COMPACT_AFTER: Final = 64 * 1024
_CRLF: Final = b"\r\n"


class ProtocolError(ChatmockError):
    """The peer sent bytes that are not RESP; the connection must be dropped."""


class ReplyError:
    """An error reply (`-ERR ...` or RESP3 `!`): a value the caller inspects."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    @property
    def kind(self) -> str:
        """The error's first word, e.g. ERR, WRONGTYPE, NOSCRIPT, NOAUTH."""
        return self.message.split(" ", 1)[0]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplyError) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)

    def __repr__(self) -> str:
        return f"ReplyError({self.message!r})"


class Push(list["Reply"]):
    """A RESP3 out-of-band push message (pub/sub, client tracking), not a reply."""


Reply = Union[  # noqa: UP007 (the forward references need Union at run time)
    None, bool, int, float, bytes, str, ReplyError, list["Reply"], dict["Reply", "Reply"]]
Arg = bytes | bytearray | memoryview | str | int | float


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

# --------------------------------------------------------------------------- encoding


def encode_command(args: Sequence[Arg]) -> bytes:
    """One command (`("SET", key, value, "PX", 1000)`) as RESP bytes.

    str is sent as UTF-8, int and float in decimal; bool is refused (is True "1"
    or "true"?), as is any other type: TypeError."""
    if not args:
        raise ValueError("a command needs at least its name")
    parts: list[bytes | bytearray | memoryview] = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg_bytes(arg)
        parts += (b"$%d\r\n" % len(data), data, _CRLF)
    return b"".join(parts)


def encode_commands(commands: Iterable[Sequence[Arg]]) -> bytes:
    """Several commands, back to back: a pipeline sent in one write."""
    return b"".join(encode_command(command) for command in commands)


def _arg_bytes(arg: Arg) -> bytes | bytearray | memoryview:
    if isinstance(arg, bytes | bytearray | memoryview):
        return arg
    if isinstance(arg, str):
        return arg.encode("utf-8")
    if isinstance(arg, bool):
        raise TypeError("a bool is not a Redis argument: send 1/0 or a word")
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode("ascii")
    raise TypeError(f"{type(arg).__name__} is not a Redis argument")


# --------------------------------------------------------------------------- parsing

_ARRAY, _SET, _MAP, _PUSH, _ATTRIBUTE = range(5)
_AGGREGATES: Final = {ord("*"): _ARRAY, ord("~"): _SET, ord("%"): _MAP, ord(">"): _PUSH,
                      ord("|"): _ATTRIBUTE}
_OPENED: Final = object()  # an aggregate was pushed on the stack: nothing to attach yet
_DROPPED: Final = object()  # an attribute ended: it attaches to nothing


class _Frame:
    """An aggregate being filled: its kind, its elements so far, how many are missing."""

    __slots__ = ("items", "kind", "missing")

    def __init__(self, kind: int, missing: int) -> None:
        self.kind = kind
        self.items: list[Reply] = []
        self.missing = missing

    def finish(self) -> object:
        items = self.items
        if self.kind == _ARRAY or self.kind == _SET:
            return items
        if self.kind == _PUSH:
            return Push(items)
        if self.kind == _ATTRIBUTE:
            return _DROPPED
        return _to_dict(items)


def _to_dict(items: list[Reply]) -> dict[Reply, Reply]:
    try:
        return dict(zip(items[::2], items[1::2], strict=True))
    except TypeError:
        raise ProtocolError("a map key is an aggregate") from None


class ReplyParser:
    """Feed bytes in, pull replies out; see the module docstring."""

    __slots__ = ("_buffer", "_position", "_stack")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0
        self._stack: list[_Frame] = []

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes read from the connection."""
        if self._position >= _COMPACT_AFTER and self._position * 2 >= len(self._buffer):
            del self._buffer[:self._position]
            self._position = 0
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buffer) - self._position

    def next_reply(self) -> Reply | _NeedData:
        """The next whole reply, or NEED_DATA; ProtocolError for bytes that are not RESP."""
        stack = self._stack
        while True:
            value = self._element()
            if value is NEED_DATA:
                return NEED_DATA
            while value is not _OPENED and value is not _DROPPED:
                if not stack:
                    return value  # type: ignore[return-value]
                frame = stack[-1]
                frame.items.append(value)  # type: ignore[arg-type]
                frame.missing -= 1
                if frame.missing:
                    break
                stack.pop()
                value = frame.finish()

    def _element(self) -> object:
        """One element: a scalar, `_OPENED` for a non-empty aggregate, or NEED_DATA."""
        buffer, start = self._buffer, self._position
        end = buffer.find(_CRLF, start)
        if end < 0:
            if len(buffer) - start > MAX_LINE_BYTES:
                raise ProtocolError("a reply line is too long")
            return NEED_DATA
        if end - start > MAX_LINE_BYTES:
            raise ProtocolError("a reply line is too long")
        if end == start:
            raise ProtocolError("an empty reply line")
        marker = buffer[start]
        line = bytes(buffer[start + 1:end])
        self._position = end + 2
        if marker == 36 or marker == 33 or marker == 61:  # $ ! =
            return self._bulk(marker, line, start)
        kind = _AGGREGATES.get(marker)
        if kind is not None:
            return self._open(kind, line)
        return _scalar(marker, line)

    def _bulk(self, marker: int, line: bytes, start: int) -> object:
        length = _integer(line)
        if length < 0:
            if length == -1 and marker == 36:
                return None
            raise ProtocolError(f"bad bulk length {length}")
        if length > MAX_BULK_BYTES:
            raise ProtocolError(f"a bulk reply of {length} bytes is beyond the limit")
        begin = self._position
        if len(self._buffer) < begin + length + 2:
            self._position = start  # read the header again once more bytes arrived
            return NEED_DATA
        if self._buffer[begin + length:begin + length + 2] != _CRLF:
            raise ProtocolError("a bulk reply does not end with CRLF")
        data = bytes(self._buffer[begin:begin + length])
        self._position = begin + length + 2
        if marker == 36:
            return data
        if marker == 33:
            return ReplyError(data.decode("utf-8", "replace"))
        if length < 4 or data[3:4] != b":":
            raise ProtocolError("a verbatim string lacks its format prefix")
        return data[4:].decode("utf-8", "replace")

    def _open(self, kind: int, line: bytes) -> object:
        length = _integer(line)
        if length == -1 and kind == _ARRAY:
            return None
        if length < 0 or length > MAX_AGGREGATE_LENGTH:
            raise ProtocolError(f"bad aggregate length {length}")
        if kind in (_MAP, _ATTRIBUTE):
            length *= 2
        if length == 0:
            return _Frame(kind, 0).finish()
        if len(self._stack) >= MAX_DEPTH:
            raise ProtocolError("replies nested too deeply")
        self._stack.append(_Frame(kind, length))
        return _OPENED


def _scalar(marker: int, line: bytes) -> Reply:
    if marker == 43:  # +
        return line.decode("utf-8", "replace")
    if marker == 58 or marker == 40:  # : (
        return _integer(line)
    if marker == 45:  # -
        return ReplyError(line.decode("utf-8", "replace"))
    if marker == 95:  # _
        if line:
            raise ProtocolError("a null carries no data")
        return None
    if marker == 35:  # #
        if line not in (b"t", b"f"):
            raise ProtocolError(f"bad boolean {line!r}")
        return line == b"t"
    if marker == 44:  # ,
        return _double(line)
    raise ProtocolError(f"unknown reply type {chr(marker)!r}")


def _integer(line: bytes) -> int:
    digits = line[1:] if line[:1] == b"-" else line
    if not digits.isdigit() or len(digits) > 400:
        raise ProtocolError(f"bad integer {line[:40]!r}")
    return int(line)


_DOUBLE_CHARS: Final = frozenset(b"0123456789.eE+-")
_DOUBLE_WORDS: Final = {b"inf": float("inf"), b"-inf": float("-inf"), b"nan": float("nan"),
                        b"-nan": float("nan")}


def _double(line: bytes) -> float:
    word = _DOUBLE_WORDS.get(line.lower())
    if word is not None:
        return word
    if not line or len(line) > 400 or not _DOUBLE_CHARS.issuperset(line):
        raise ProtocolError(f"bad double {line[:40]!r}")
    try:
        return float(line)
    except ValueError:
        raise ProtocolError(f"bad double {line[:40]!r}") from None
