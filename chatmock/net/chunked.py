"""Reading an HTTP/1.1 response body: chunked bodies by hand, everything else by h11.

The backend frames every SSE event as one HTTP chunk, so a paced stream costs one
chunk per event, and h11 spends ~9 us on each (a reader call, a `Data` event, the
state machine's bookkeeping, a copy out of its receive buffer): as much as the
rest of the relay's work on the event. `ChunkedBody` parses the common framing
(`HEX\\r\\n`, the data, `\\r\\n`) straight from the bytes read, ~1 us a chunk, and
hands h11 whatever is unusual, so that h11 stays the only judge of the framing:

- a chunk-size line that is not 1-8 hex digits and CRLF (an extension, padding,
  a longer size, garbage), and a last chunk other than the plain `0\\r\\n\\r\\n`
  (extensions, trailers): from that chunk boundary on, every byte goes to an h11
  connection brought to the same point (a body's chunk boundaries carry no state
  into the next chunk, so a fresh h11 reader there reads exactly what the first
  one would have);
- a chunk's data and the CRLF after it are checked here, as h11 does it: data is
  handed on as it arrives, a byte after it that is not the expected CR or LF is
  a malformed body;
- the plain last chunk, what every backend sends, ends the body here: building
  the h11 connection for it cost ~30 us a request (issue 13).

Whether the connection may carry another exchange (`reusable`) is h11's rule either
way: the h11 connection's state when it read the end (`handed_over`), else the
head's `Connection` values and HTTP version. Bytes after the body, which h11
would keep for the next answer, close the connection instead.
`tests/unit/test_chunked.py` checks, for random bodies, garbage and every way of
splitting them into reads, that this yields the same bytes and the same end
(complete, or broken after the same data) as h11 alone, and the same keep-alive
decision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import h11

# A chunk-size line the fast path takes, and what may still become one.
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,8})\r\n")
_SIZE_PREFIX = re.compile(rb"[0-9A-Fa-f]{0,8}\r?")
_CRLF = b"\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class H11Body:
    """A body read by h11 alone (Content-Length, read-until-close, chunked after a hand-over)."""

    __slots__ = ("broken", "complete", "conn")

    def __init__(self, conn: h11.Connection) -> None:
        self.conn = conn
        self.complete = False
        self.broken = False  # malformed or cut: nothing more will come

    @property
    def reusable(self) -> bool:
        """Whether the connection may carry another exchange: h11 says so, and nothing
        came after the body (see `ChunkedBody.reusable`)."""
        conn = self.conn
        return (conn.our_state is h11.DONE and conn.their_state is h11.DONE
                and not conn.trailing_data[0])

    def feed(self, data: bytes, *, eof: bool = False) -> bytes:
        """The body bytes that `data` completes (b"" and `eof` for the connection's end)."""
        conn = self.conn
        if data:
            conn.receive_data(data)
        if eof:
            conn.receive_data(b"")
        parts: list[bytes] = []
        try:
            event = conn.next_event()
            while event is not h11.NEED_DATA:
                if isinstance(event, h11.Data):
                    parts.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self.complete = True
                    break
                else:
                    self.broken = True
                    break
                event = conn.next_event()
        except h11.RemoteProtocolError:
            self.broken = True  # the caller sees the body end early and reports it
        return b"".join(parts)


class ChunkedBody:
    """A chunked body, fast path here, the rest by h11 (module docstring).

    `request` and `head` are the exchange's, for the h11 connection that takes over;
    `buffered` is what came after the head in the read that brought it."""

    __slots__ = ("_buf", "_footer", "_h11", "_head", "_left", "_method", "broken", "complete",
                 "left_over")

    def __init__(self, method: bytes, head: Head | h11.Response, buffered: bytes = b"") -> None:
        self._method = method
        # What the h11 connection that takes over needs of the head: not the head (its
        # headers, twice over), which a stream would keep for its whole life.
        self._head = head if isinstance(head, Head) else Head.of(head)
        self._buf = buffered  # unparsed bytes, at a chunk boundary or inside a chunk
        self._left = 0  # data bytes of the current chunk not yet seen
        self._footer = b""  # what must still follow the current chunk's data
        self._h11: H11Body | None = None
        self.complete = False
        self.broken = False
        self.left_over = b""  # bytes after a plain last chunk (see `reusable`)

    @property
    def handed_over(self) -> h11.Connection | None:
        """The h11 connection that took the rest of the body, once one did."""
        return None if self._h11 is None else self._h11.conn

    @property
    def reusable(self) -> bool:
        """Whether the connection may carry another exchange, once the body is complete:
        h11's decision when it read the end (`handed_over`), else the head's keep-alive
        (h11's rule) with nothing after the last chunk. h11 would keep such bytes for
        the next response; here the connection is closed instead (a backend that sends
        more than it framed is not trusted with another request)."""
        if self._h11 is not None:
            return self._h11.reusable
        return self.complete and self._head.keep_alive and not self.left_over

    def feed(self, data: bytes, *, eof: bool = False) -> bytes:
        """The body bytes that `data` completes (b"" and `eof` for the connection's end)."""
        if self._h11 is not None:
            return self._feed_h11(data, eof)
        if not (self._buf or self._left or self._footer or eof):
            # At a chunk boundary, a read of exactly one whole chunk (a paced stream's
            # every read): what `_decode` finds in it, without its loop and list.
            match = _SIZE_LINE.match(data)
            if match is not None:
                start = match.end()
                stop = start + int(match[1], 16)
                if stop > start and stop + 2 == len(data) and data.endswith(_CRLF):
                    return data[start:stop]
        buf = self._buf + data if self._buf else data
        self._buf = b""
        parts: list[bytes] = []
        pos = self._decode(buf, parts)
        if pos < 0:
            self._end(buf[~pos:], eof, parts)
        elif eof:
            self.broken = True
        else:
            self._buf = buf[pos:]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _decode(self, buf: bytes, parts: list[bytes]) -> int:
        """Parse `buf` from the start: append the data found to `parts`; return where
        parsing stopped for want of bytes, or ~position of a chunk boundary from which
        h11 must read. Sets `broken` (and returns len(buf)) on a bad chunk ending."""
        pos, end, left, footer = 0, len(buf), self._left, self._footer
        while pos < end:
            if footer:
                got = buf[pos:pos + len(footer)]
                if not footer.startswith(got):
                    self.broken = True
                    return end
                pos += len(got)
                footer = footer[len(got):]
                continue
            if left:
                take = min(left, end - pos)
                parts.append(buf[pos:pos + take])
                pos += take
                left -= take
                if not left:
                    footer = _CRLF
                continue
            match = _SIZE_LINE.match(buf, pos)
            if match is None:
                if _SIZE_PREFIX.fullmatch(buf, pos):
                    break  # a size line still arriving
                self._left, self._footer = 0, b""  # at a boundary: nothing of a chunk left
                return ~pos
            left = int(match[1], 16)
            if not left:
                self._left, self._footer = 0, b""
                return ~pos  # the last chunk, and trailers: h11's
            pos = match.end()
            stop = pos + left
            if buf[stop:stop + 2] == _CRLF:  # the whole chunk is here: the usual case
                parts.append(buf[pos:stop])
                pos, left = stop + 2, 0
        self._left, self._footer = left, footer
        return pos

    def _end(self, rest: bytes, eof: bool, parts: list[bytes]) -> None:
        """From a chunk boundary that is no plain chunk: the plain last chunk
        (`0\\r\\n\\r\\n`, what every backend sends) ends the body here; a part of it waits
        for more bytes; anything else (extensions, trailers, garbage) goes to h11."""
        if rest.startswith(_LAST_CHUNK):
            self.complete = True
            self.left_over = rest[len(_LAST_CHUNK):]
        elif _LAST_CHUNK.startswith(rest) and not eof:
            self._buf = rest
        else:
            self._h11 = H11Body(_synthetic_connection(self._method, self._head))
            parts.append(self._feed_h11(rest, eof))

    def _feed_h11(self, data: bytes, eof: bool) -> bytes:
        body = self._h11
        assert body is not None
        out = body.feed(data, eof=eof)
        self.complete, self.broken = body.complete, body.broken
        return out


class Head(NamedTuple):
    """What the body's end needs of a response head."""

    http_version: bytes
    status_code: int
    connection: tuple[bytes, ...]  # the values of its `Connection` headers

    @classmethod
    def of(cls, response: h11.Response) -> Head:
        return cls(response.http_version, response.status_code,
                   tuple(value for name, value in response.headers if name == b"connection"))

    @property
    def keep_alive(self) -> bool:
        """h11's rule (`_keep_alive`): no `close` among the Connection values, HTTP/1.1."""
        for value in self.connection:
            if b"close" in (part.strip() for part in value.lower().split(b",")):
                return False
        return self.http_version >= b"1.1"


def _synthetic_connection(method: bytes, head: Head) -> h11.Connection:
    """An h11 client connection at the start of a chunked body, as the real one was
    after `head`: same HTTP version, same `Connection` header (so the same keep-alive
    decision); the request side sent and done."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"backend")]))
    conn.send(h11.EndOfMessage())
    lines = [b"HTTP/%b %d \r\n" % (head.http_version, head.status_code),
             b"transfer-encoding: chunked\r\n"]
    lines.extend(b"connection: %b\r\n" % value for value in head.connection)
    conn.receive_data(b"".join(lines) + _CRLF)
    response = conn.next_event()
    assert isinstance(response, h11.Response), response
    return conn


def is_chunked(method: bytes, head: h11.Response) -> bool:
    """Whether h11 reads this response's body as chunked (RFC 9112 §6.3; h11 refuses
    any Transfer-Encoding other than `chunked` while reading the head)."""
    if method == b"HEAD" or head.status_code in (204, 304):
        return False
    return _has_header(head.headers, b"transfer-encoding")


def _has_header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key == name for key, _ in headers)
