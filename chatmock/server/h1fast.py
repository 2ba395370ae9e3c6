"""The served HTTP/1.1 exchange's common shape, by hand: a request head that came
whole, and the response head written back (sans-I/O).

h11 was the largest share of the Python calls a non-streamed request costs on the
server's side (issue 13): ~190 calls to read one request head and write one response.
Clients send the same shape every time: `METHOD target HTTP/1.1`, `name: value` lines,
one `Host`, at most one `Content-Length`. `parse_request` reads such a head when all
of it is in the bytes read; anything else -- another version, a bare-LF or folded line,
a line h11 would refuse, `Transfer-Encoding`, `Connection`, `Upgrade`, `Expect`, a
`HEAD` request, a head not whole yet or above the limit -- is None, and the connection
hands every byte to h11, which stays the only judge of the unusual (net/h1wire.py does
the same on the client's side). `response_head` writes the answer's head as h11 writes
it for such a request, or None for a status or header h11 frames itself (1xx, 204, 304,
a caller's `Content-Length`, `Transfer-Encoding`, `Connection` or `Host`): the
connection then replays the request into h11 and lets it write.
`tests/unit/test_h1fast.py` checks both against h11 with hypothesis: whatever
`parse_request` accepts, h11 accepts with the same method, target, headers and body
start; the bytes `response_head` writes are h11's, and it refuses what h11 refuses.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from chatmock.net.h1wire import TARGET, TOKEN, check_headers

_HEAD_END = b"\r\n\r\n"
_REQUEST_LINE = re.compile(rb"(%b) (%b) HTTP/1\.1" % (TOKEN, TARGET))
# h11._abnf.header_field: name, colon, optional blanks, the value, optional blanks.
_FIELD = re.compile(
    rb"(%b):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*" % TOKEN)
_LENGTH = re.compile(rb"[0-9]{1,18}")
# Request headers that change framing, keep-alive or the protocol: h11 reads those.
_FOR_H11 = frozenset((b"transfer-encoding", b"connection", b"upgrade", b"expect"))
# Response headers h11 frames or moves itself.
_FRAMED_BY_H11 = frozenset((b"content-length", b"transfer-encoding", b"connection", b"host"))


class FastRequest(NamedTuple):
    """A request head of the common shape, as h11 would give it."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]  # names lower-cased, values as h11 strips them
    content_length: int
    raw: bytes  # the head's bytes, to replay into h11

    @property
    def end(self) -> int:
        """Where the body starts in the bytes read."""
        return len(self.raw)


def parse_request(data: bytes, max_head_bytes: int) -> FastRequest | None:
    """The request head at the start of `data` when it is whole and of the common
    shape, else None (h11 must read `data`).

    `max_head_bytes` is the connection's bound, counted as the server counts it
    (target, names and values, 4 bytes a line); a head above it is left to h11."""
    end = data.find(_HEAD_END)
    if end < 0 or end > max_head_bytes * 2:
        return None
    head = data[:end]
    if head.count(b"\n") != head.count(b"\r\n"):
        return None  # a bare LF: h11 splits lines differently
    lines = head.split(b"\r\n")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        return None
    method, target = line.group(1, 2)
    if method == b"HEAD":
        return None
    headers = []
    hosts = 0
    length: bytes | None = None
    size = len(target)
    for raw in lines[1:]:
        field = _FIELD.fullmatch(raw)
        if field is None:
            return None
        name = field.group(1).lower()
        value = field.group(2)
        if name in _FOR_H11:
            return None
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            if length is not None or not _LENGTH.fullmatch(value):
                return None
            length = value
        size += len(name) + len(value) + 4
        headers.append((name, value))
    if hosts != 1 or size > max_head_bytes:
        return None
    return FastRequest(method, target, headers, int(length) if length else 0,
                       data[:end + 4])


def response_head(status: int, reason: bytes, headers: list[tuple[bytes, bytes]], *,
                  length: int | None, close: bool) -> bytes | None:
    """The response head h11 writes for a request of the common shape: `headers`, then
    `content-length: length` (or chunked framing when `length` is None), then
    `connection: close` when `close`. None when h11 frames it itself (see the module
    docstring); h11's LocalProtocolError for a name or value h11 refuses."""
    if not 200 <= status <= 999 or status == 204 or status == 304:
        return None
    check_headers(headers)
    out = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for name, value in headers:
        if name.lower() in _FRAMED_BY_H11:
            return None
        out.append(b"%s: %s\r\n" % (name, value))
    if length is not None:
        out.append(b"content-length: %d\r\n" % length)
    if close:
        out.append(b"connection: close\r\n")
    if length is None:
        out.append(b"Transfer-Encoding: chunked\r\n")
    out.append(b"\r\n")
    return b"".join(out)
