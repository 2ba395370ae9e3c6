"""The upstream HTTP/1.1 exchange's common shapes, by hand: the request's bytes and
the response's head (sans-I/O).

h11 is about a third of the Python time a request costs (issue 13), and on the
client side it spends it on one request head, one response head and the state
machine between them. The backend answers a request the same way every time: an
HTTP/1.1 status line, `name: value` lines, and a chunked body. `request_bytes`
writes the request as h11 would (the same bytes, the same refusals: `Outgoing`
checks names, values, method and target first, as h11 does), and `parse_head`
reads the response head when it is of that common shape. Anything else --
another HTTP version, a 1xx, 204 or 304, a Content-Length, a folded or bare-LF
line, a head longer than h11's limit, a line that is not plainly valid -- is
`DEFER`: the client hands
every byte it read to h11, which stays the only judge of the unusual, exactly as
before. `tests/unit/test_h1wire.py` checks, for random heads valid and damaged,
that whatever `parse_head` accepts h11 accepts with the same status, headers
and keep-alive decision, and that the bytes `request_bytes` writes are h11's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

import h11

from chatmock.net.chunked import Head

_HEAD_END = re.compile(rb"\n\r?\n")  # where h11 ends a head (bare LF lines included)
_STATUS = re.compile(rb"HTTP/1\.1 ([2-5][0-9][0-9])(?: [^\x00\n\r\x0b\x0c]*)?")
# What h11 refuses in a header: a name that is no token; in a value, NUL, CR, LF,
# VT or FF anywhere, or SP/HTAB at either end (h11._abnf's field_value). A method is a
# token, a target one or more visible ASCII characters.
TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"  # also server/h1fast.py's request line and fields
TARGET = rb"[\x21-\x7e]+"
_TOKEN = re.compile(TOKEN)
_TARGET = re.compile(TARGET)
_CONTROL = re.compile(rb"[\x00\n\r\x0b\x0c]")
_BLANK = b" \t"
_BLANKS = (b" ", b"\t")
MAX_HEAD_BYTES: Final = 16 * 1024  # h11's max_incomplete_event_size default
# Request headers whose presence changes h11's framing, keep-alive or protocol
# switching: such a request is written (and its answer read) by h11 alone.
_FOR_H11 = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection",
                      b"upgrade", b"expect"))


class ResponseHead(NamedTuple):
    """A response head of the common shape, and where its body starts in the bytes read."""

    status: int
    headers: list[tuple[bytes, bytes]]  # names lower-cased, as h11 gives them
    head: Head
    body_start: int


class Verdict:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_MORE: Final = Verdict("NEED_MORE")
"""No end of head yet, and the bytes so far are within h11's limit."""
DEFER: Final = Verdict("DEFER")
"""Not the common shape: h11 must read these bytes."""
EOF: Final = Verdict("EOF")
"""(The client's) the connection ended before the head did: h11 must read what came."""


def check_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """LocalProtocolError for a header h11 would refuse to send, as h11 says it.

    h11 checks every value with a regular expression that costs ~1 us per 100 bytes,
    and `authorization` carries a JWT of a few KB: this check is a plain scan."""
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            raise h11.LocalProtocolError(f"Illegal header name {name!r}")
        if _CONTROL.search(value) or value.startswith(_BLANKS) or value.endswith(_BLANKS):
            raise h11.LocalProtocolError(f"Illegal header value {value!r}")


def request_event(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> h11.Request:
    """h11's Request for `headers`, checked here as h11 would (the same
    LocalProtocolError, `check_headers`), then handed to h11 as already parsed."""
    check_headers(headers)
    return h11.Request(method=method.encode("ascii"), target=target.encode("ascii"),
                       headers=headers, _parsed=True)


def _sends_length(method: bytes, body: bytes) -> bool:
    """Whether a request carries Content-Length (as h11 frames it: a body, or a method
    that has one)."""
    return bool(body) or method in (b"POST", b"PUT", b"PATCH")


def request_bytes(method: bytes, target: bytes, host: bytes,
                  headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes | None:
    """The request as h11 writes it (host first, then `headers`, then Content-Length
    when there is a body or the method is POST/PUT/PATCH), or None when a header of
    the caller's changes framing or keep-alive (`_FOR_H11`): h11 writes that one.

    The caller has checked names, values, method and target as h11 does (`Outgoing`)."""
    lines = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method, target, host)]
    for name, value in headers:
        if name.lower() in _FOR_H11:
            return None
        lines.append(b"%s: %s\r\n" % (name, value))
    if _sends_length(method, body):
        lines.append(b"content-length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


class Outgoing:
    """One request: its bytes when written by hand (`request_bytes`), else h11's event
    for it; `event()` also when h11 must read an unusual answer. Its headers are
    checked as h11 checks them, so a bad one is refused here whichever writes it.

    The body is kept once: the bytes written by hand end with it, and it is kept apart
    only for h11. The request lives until its answer's head arrives (a stale pooled
    connection sends it again), and an agent's request is its whole conversation: a
    swarm's requests awaiting their answers were held twice over (issue 13)."""

    __slots__ = ("_body", "_body_length", "h11_event", "headers", "host", "method", "target",
                 "wire")

    def __init__(self, method: str, target: str, host: bytes,
                 headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
        self.method, self.target, self.host = method.encode("ascii"), target, host
        self.headers, self._body, self._body_length = headers, body, len(body)
        self.wire: bytes | None = None
        self.h11_event: h11.Request | None = None
        check_headers(((b"host", host), *headers))
        if _TOKEN.fullmatch(self.method) and _TARGET.fullmatch(target.encode("ascii")):
            self.wire = request_bytes(self.method, target.encode("ascii"), host, headers, body)
        if self.wire is None:  # h11 writes it, and refuses what it refuses, now
            self.h11_event = self.event()
        else:
            self._body = b""

    @property
    def body(self) -> bytes:
        """The request's body (from the end of `wire`, when it was written by hand)."""
        if self.wire is None:
            return self._body
        return self.wire[len(self.wire) - self._body_length:]

    def event(self) -> h11.Request:
        """h11's event for the request, checked by h11 in full (the rare path: a request
        or an answer of an unusual shape)."""
        headers = [(b"host", self.host), *self.headers]
        if _sends_length(self.method, self.body):
            headers.append((b"content-length", b"%d" % len(self.body)))
        return h11.Request(method=self.method, target=self.target.encode("ascii"),
                           headers=headers)

    def send_h11(self, conn: h11.Connection, event: h11.Request) -> bytes:
        """The request through `conn` (its bytes, for the wire or discarded)."""
        data = conn.send(event)
        if self.body:
            data += conn.send(h11.Data(data=self.body))
        return data + conn.send(h11.EndOfMessage())


def parse_head(buf: bytes) -> ResponseHead | Verdict:
    """The response head at the start of `buf` if it is of the common shape (module
    docstring), NEED_MORE, or DEFER."""
    match = _HEAD_END.search(buf)
    if match is None:
        # h11 refuses early a line that cannot start a head, and a head past its limit.
        return NEED_MORE if len(buf) <= MAX_HEAD_BYTES and buf[:1] >= b"!" else DEFER
    end = match.end()
    if match.start() < 1 or buf[match.start() - 1] != 0x0D or match.end() - match.start() != 3:
        return DEFER  # a bare LF ends the head, or the head is empty
    text = buf[:end - 4]
    if text.count(b"\n") != text.count(b"\r\n"):
        return DEFER  # a bare LF inside
    lines = text.split(b"\r\n")
    status = _STATUS.fullmatch(lines[0])
    if status is None:
        return DEFER
    code = int(status[1])
    headers = _headers(lines)
    if headers is None or code in (204, 304):
        return DEFER
    return _framed(code, headers, end)


def _headers(lines: list[bytes]) -> list[tuple[bytes, bytes]] | None:
    """The header lines as h11 normalises them, or None if one is not plainly valid."""
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return None  # no colon, a folded line, a bad name: h11's to refuse or join
        value = value.strip(_BLANK)
        if _CONTROL.search(value):
            return None
        headers.append((name.lower(), value))
    return headers


def _framed(code: int, headers: list[tuple[bytes, bytes]], end: int) -> ResponseHead | Verdict:
    """The head if its body is plainly chunked (one Transfer-Encoding, `chunked` in any
    case; no Content-Length), else DEFER."""
    chunked = 0
    connection: list[bytes] = []
    for i, (name, value) in enumerate(headers):
        if name == b"transfer-encoding":
            value = value.lower()
            if value != b"chunked":
                return DEFER
            headers[i] = (name, value)
            chunked += 1
        elif name == b"content-length":
            return DEFER
        elif name == b"connection":
            connection.append(value)
    if chunked != 1:
        return DEFER
    return ResponseHead(code, headers, Head(b"1.1", code, tuple(connection)), end)
