"""Incremental Server-Sent Events decoder over bytes.

Theory (WHATWG "event stream interpretation", restricted to what a client of
a one-shot stream needs):

* Lines end in CRLF, LF or CR. A CR at the very end of a chunk may be the
  first half of a CRLF split across two reads, so we remember it and drop a
  leading LF of the next chunk.
* A blank line dispatches the event collected so far. Lines starting with
  ":" are comments. `field: value` loses one space after the colon; a line
  without a colon is a field with an empty value.
* `data` lines accumulate, joined by LF; `event` sets the type; `id` and
  `retry` only matter for reconnection, which a proxy never does.
* An event without any data line is not dispatched.

Input is normalised to LF once per chunk (only when it holds a CR at all),
after which event boundaries are found with `bytes.find(b"\\n\\n")`, resuming
the search where the previous one stopped so that an event spread over many
reads costs linear time. The decoder never imposes a small line limit (large
`encrypted_content` blobs and final `response.completed` objects are normal);
`max_event_bytes` only guards memory against a runaway peer.

A caller may name blocks it has no use for (`skip`, by their first line). A
read whose complete blocks are all of those, the common case for a relay that
forwards text deltas untouched, is passed over with one regular-expression
search for a block boundary *not* followed by a skipped prefix, instead of a
check per block.
"""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple

from chatmock.errors import ChatmockError

_BOM = b"\xef\xbb\xbf"
_COLON = 58  # ord(":")


class SSEError(ChatmockError):
    """The stream broke the decoder's limits."""


class SSEEvent(NamedTuple):
    event: bytes
    data: bytes


class SSEDecoder:
    """Feed bytes as they arrive; get back the events they complete."""

    __slots__ = ("_buf", "_head", "_max", "_pending_cr", "_scan", "_skip", "_started",
                 "_unskipped")  # one per open stream: no instance dict (issue 13)

    def __init__(self, max_event_bytes: int = 256 * 1024 * 1024,
                 skip: tuple[bytes, ...] = ()) -> None:
        """`skip`: blocks starting with one of these byte strings (e.g. an `event: name\\n`
        line a caller has no use for) are passed over without being parsed."""
        self._skip = skip
        self._unskipped = _unskipped_boundary(skip) if skip else None
        self._buf = bytearray()
        self._scan = 0
        self._pending_cr = False
        self._started = False
        self._head = b""
        self._max = max_event_bytes

    @property
    def buffered(self) -> bool:
        """True while part of an event waits for more bytes."""
        return bool(self._buf)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode `chunk`; returns the events completed by it, in order."""
        if not chunk:
            return []
        if not self._buf and self._started and not self._pending_cr:
            whole = self._whole_event(chunk)
            if whole is not None:
                return whole
        chunk = self._normalise(chunk)
        if self._buf:
            self._buf += chunk
            data: bytes | bytearray = self._buf
        else:
            data = chunk
        if self._unskipped is not None and self._only_skipped(data, self._unskipped):
            return []
        events: list[SSEEvent] = []
        pos = 0
        find = data.find
        skip = self._skip
        while (end := find(b"\n\n", max(pos, self._scan))) >= 0:
            if not (skip and data.startswith(skip, pos)):
                event = _parse_block(bytes(data[pos:end]))
                if event is not None:
                    events.append(event)
            pos = end + 2
            self._scan = 0
        self._keep_tail(data, pos)
        return events

    def _whole_event(self, chunk: bytes) -> list[SSEEvent] | None:
        """A read that is exactly one block in a backend's shape (`event: X\\ndata: Y\\n\\n`
        or `data: Y\\n\\n`, LF only), with nothing buffered: its event, as the general
        path would decode it, without the search, the copy and the tail bookkeeping;
        None for anything else. A paced stream's every read is such a block."""
        end = len(chunk) - 2
        if chunk[end:] != b"\n\n":
            return None
        if chunk.startswith(b"event: "):
            newline = chunk.find(b"\n", 7)
            if (not chunk.startswith(b"data: ", newline + 1)
                    or chunk.find(b"\n", newline + 1) != end or b"\r" in chunk):
                return None  # more than one block (the usual burst), or CRs to normalise
            if self._skip and chunk.startswith(self._skip):
                return []
            return [SSEEvent(chunk[7:newline], chunk[newline + 7:end])]
        if chunk.startswith(b"data: ") and chunk.find(b"\n") == end and b"\r" not in chunk:
            return [SSEEvent(b"", chunk[6:end])]
        return None

    def _only_skipped(self, data: bytes | bytearray, unskipped: re.Pattern[bytes]) -> bool:
        """If every complete block of `data` is a skipped one, keep the tail and say so."""
        last_end = data.rfind(b"\n\n")
        if (last_end < 0 or not data.startswith(self._skip)
                or unskipped.search(data, 0, last_end)):
            return False
        self._keep_tail(data, last_end + 2)
        return True

    def finish(self) -> list[SSEEvent]:
        """End of stream: dispatch the last event if its lines were complete."""
        data = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        last_newline = data.rfind(b"\n")
        if last_newline < 0:
            return []
        event = _parse_block(data[:last_newline])
        return [] if event is None else [event]

    def _normalise(self, chunk: bytes) -> bytes:
        if not self._started:
            # The BOM itself may arrive split over the first reads: hold a prefix of it back.
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return b""
            self._started = True
            self._head = b""
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
        if self._pending_cr:
            self._pending_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._pending_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return chunk

    def _keep_tail(self, data: bytes | bytearray, pos: int) -> None:
        if data is self._buf:
            del self._buf[:pos]
        elif pos < len(data):
            self._buf = bytearray(data[pos:])
        # The last byte may be an LF whose partner arrives with the next chunk.
        self._scan = max(0, len(self._buf) - 1)
        if len(self._buf) > self._max:
            raise SSEError(f"an SSE event exceeded {self._max} bytes")


@cache
def _unskipped_boundary(skip: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """Matches a block boundary that is not followed by one of the skipped prefixes."""
    return re.compile(b"\n\n(?!" + b"|".join(map(re.escape, skip)) + b")")


def _parse_block(block: bytes) -> SSEEvent | None:
    # Fast paths for the two shapes backends send: `event: X\ndata: Y` and `data: Y`.
    if block.startswith(b"event: "):
        newline = block.find(b"\n")
        if (newline > 0 and block.startswith(b"data: ", newline + 1)
                and block.find(b"\n", newline + 1) < 0):
            return SSEEvent(block[7:newline], block[newline + 7:])
    elif block.startswith(b"data: ") and b"\n" not in block:
        return SSEEvent(b"", block[6:])
    return _parse_lines(block)


def _parse_lines(block: bytes) -> SSEEvent | None:
    event = b""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == _COLON:
            continue
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value
    if not data:
        return None
    return SSEEvent(event, data[0] if len(data) == 1 else b"\n".join(data))


def encode_event(data: bytes, event: bytes = b"") -> bytes:
    """Frame one event; `data` must not contain newlines (compact JSON never does)."""
    if event:
        return b"event: " + event + b"\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"
