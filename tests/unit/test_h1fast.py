"""The served request head and the response head by hand (`chatmock.server.h1fast`)
against h11 as the oracle.

Random request heads, mostly of the common shape and a good part damaged (folded and
bare-LF lines, blanks and controls, other versions, duplicate or missing Host, any
Content-Length, the headers h11 frames with, random bytes), cut at random: whatever
`parse_request` accepts, h11 accepts with the same method, target, headers, body
start and framing, and the server's size bound agrees; everything else is left to h11.
Random responses: the head `response_head` writes is byte for byte h11's, and where
h11 refuses a name or value it refuses with h11's error."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.server.h1fast import parse_request, response_head

NAMES = st.one_of(
    st.sampled_from([b"Host", b"host", b"content-length", b"Content-Length", b"authorization",
                     b"content-type", b"Connection", b"transfer-encoding", b"Upgrade",
                     b"expect", b"x-a b", b"", b"x\x00"]),
    st.from_regex(rb"\A[a-zA-Z][a-zA-Z0-9-]{0,10}\Z"))
VALUES = st.one_of(
    st.from_regex(rb"\A[!-~]([ !-~\x80\xff\t]{0,30}[!-~])?\Z"), st.just(b""),
    st.sampled_from([b"0", b"12", b"007", b"1,1", b"-1", b"chunked", b"close", b"localhost",
                     b"a\rb", b"a\nb", b"a\x00", b"\x0b", b"99999999999999999999"]))
BLANKS = st.sampled_from([b"", b" ", b"  ", b"\t", b" \t"])
LINE_ENDS = st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n"])
CLEAN_NAMES = st.one_of(st.sampled_from([b"Content-Type", b"authorization", b"Accept"]),
                        st.from_regex(rb"\A[a-zA-Z][a-zA-Z0-9-]{0,10}\Z"))
CLEAN_VALUES = st.one_of(st.from_regex(rb"\A[!-~]([ !-~\x80\xff\t]{0,30}[!-~])?\Z"),
                         st.just(b""))


@st.composite
def clean_heads(draw: st.DrawFn) -> bytes:
    """Heads of the common shape (with blanks around values and a Content-Length)."""
    lines = [draw(st.sampled_from([b"POST /v1/chat/completions", b"GET /health"])) + b" HTTP/1.1"]
    headers = [(b"Host", b"127.0.0.1:8000"), *draw(st.lists(st.tuples(CLEAN_NAMES, CLEAN_VALUES),
                                                          max_size=6))]
    if draw(st.booleans()):
        headers.insert(draw(st.integers(0, len(headers))),
                       (b"Content-Length", b"%d" % draw(st.integers(0, 40))))
    for name, value in headers:
        lines.append(b"%s:%s%s%s" % (name, draw(BLANKS), value, draw(BLANKS)))
    return b"\r\n".join(lines) + b"\r\n\r\n" + draw(st.binary(max_size=30))


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(clean_heads())
    method = draw(st.sampled_from([b"POST", b"GET", b"OPTIONS", b"HEAD", b"post", b"P@ST", b""]))
    target = draw(st.sampled_from([b"/v1/chat/completions", b"/health?x=1", b"*", b"/a b",
                                   b"", b"/\x80"]))
    version = draw(st.sampled_from([b"HTTP/1.1"] * 8 + [b"HTTP/1.0", b"HTTP/2.0", b"http/1.1"]))
    lines = [b"%s %s %s" % (method, target, version)]
    if draw(st.integers(0, 9)):
        lines.append(b"Host: " + draw(st.sampled_from([b"127.0.0.1:8000", b"localhost", b""])))
    for name, value in draw(st.lists(st.tuples(NAMES, VALUES), max_size=6)):
        lines.append(b"%s:%s%s%s" % (name, draw(BLANKS), value, draw(BLANKS)))
    if draw(st.integers(0, 6)) == 0:
        lines.insert(draw(st.integers(1, len(lines))), draw(BLANKS) + b"folded")
    data = b"".join(line + draw(LINE_ENDS) for line in lines) + b"\r\n"
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.sampled_from([b"\r\n", b"\n", b" "])) + data
    return data + draw(st.binary(max_size=30))


def h11_reads(data: bytes) -> tuple[h11.Request, bytes] | None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request):
        return None
    return event, conn.trailing_data[0]


@settings(max_examples=3000, deadline=None)
@given(data=request_heads(), cut=st.integers(0, 400), limit=st.sampled_from([60, 16384]))
def test_what_parse_request_accepts_h11_accepts_alike(data: bytes, cut: int, limit: int) -> None:
    for piece in (data, data[:cut]):
        fast = parse_request(piece, limit)
        if fast is None:
            continue
        h11_says = h11_reads(piece)
        assert h11_says is not None, piece
        event, rest = h11_says
        assert (event.method, event.target, event.http_version) == (
            fast.method, fast.target, b"1.1")
        assert list(event.headers) == fast.headers
        assert piece[fast.end:] == rest
        lengths = [v for n, v in event.headers if n == b"content-length"]
        assert fast.content_length == (int(lengths[0]) if lengths else 0)
        assert b"transfer-encoding" not in dict(event.headers)
        size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
        assert size <= limit  # the server's own 431 bound, as http1.py counts it


def test_the_common_shape_is_taken() -> None:
    data = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    fast = parse_request(data, 16384)
    assert fast is not None
    assert fast.headers == [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                            (b"content-length", b"2")]
    assert (fast.content_length, data[fast.end:]) == (2, b"{}")


@pytest.mark.parametrize("data", [
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",
])
def test_the_unusual_is_left_to_h11(data: bytes) -> None:
    assert parse_request(data, 16384) is None


HEADER_LISTS = st.lists(st.tuples(NAMES, VALUES), max_size=5)


def h11_response(status: int, headers: list[tuple[bytes, bytes]], length: int | None,
                 close: bool, method: bytes) -> bytes | type[Exception]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"%s / HTTP/1.1\r\nhost: a\r\n\r\n" % method)
    conn.next_event()
    all_headers = list(headers) if length is not None else [*headers,
                                                            (b"transfer-encoding", b"chunked")]
    all_headers.append((b"date", b"Sat, 05 Dec 2026 23:00:00 GMT"))
    if length is not None:
        all_headers.append((b"content-length", b"%d" % length))
    if close:
        all_headers.append((b"connection", b"close"))
    try:
        return conn.send(h11.Response(status_code=status, reason=b"Reason", headers=all_headers))
    except h11.LocalProtocolError:
        return h11.LocalProtocolError


@settings(max_examples=2000, deadline=None)
@given(status=st.sampled_from([200, 201, 204, 304, 400, 404, 429, 500, 502, 101, 999]),
       headers=HEADER_LISTS, length=st.one_of(st.none(), st.integers(0, 10**6)),
       close=st.booleans(), method=st.sampled_from([b"GET", b"POST"]))
def test_a_response_head_is_written_as_h11_writes_it(status: int,
                                                     headers: list[tuple[bytes, bytes]],
                                                     length: int | None, close: bool,
                                                     method: bytes) -> None:
    expected = h11_response(status, headers, length, close, method)
    all_headers = [*headers, (b"date", b"Sat, 05 Dec 2026 23:00:00 GMT")]
    try:
        written = response_head(status, b"Reason", all_headers, length=length, close=close)
    except h11.LocalProtocolError:
        assert expected is h11.LocalProtocolError
        return
    if written is not None:
        assert written == expected
