"""The upstream HTTP/1.1 request and response head by hand (`chatmock.net.h1wire`)
against h11 as the oracle.

For random requests, `request_bytes` writes h11's bytes or leaves the request to
h11. For random response heads, valid and damaged (folded and bare-LF lines,
other versions and statuses, 1xx before the answer, Content-Length and
Transfer-Encoding in every combination, controls, blanks, a missing colon,
oversized), fed in random reads: whatever `parse_head` accepts, h11 accepts with
the same status, headers, body start and keep-alive decision; where it waits for
more bytes, h11 waits too; the rest it leaves to h11."""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.net.chunked import is_chunked
from chatmock.net.h1wire import (
    DEFER,
    MAX_HEAD_BYTES,
    NEED_MORE,
    Outgoing,
    ResponseHead,
    parse_head,
    request_bytes,
    request_event,
)
from tests.unit.test_chunked import client

NAMES = st.one_of(st.sampled_from([b"authorization", b"X-Id", b"content-type", b"accept",
                                   b"Connection", b"content-length", b"Host", b"upgrade"]),
                  st.from_regex(rb"\A[a-z][a-z0-9-]{0,10}\Z"))
VALUES = st.one_of(st.from_regex(rb"\A[!-~]([ !-~]{0,30}[!-~])?\Z"), st.just(b""))


def h11_request(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]],
                body: bytes, host: bytes = b"backend.test:8080") -> bytes | type[Exception]:
    all_headers = [(b"host", host), *headers]
    if body or method in (b"POST", b"PUT", b"PATCH"):
        all_headers.append((b"content-length", b"%d" % len(body)))
    conn = h11.Connection(h11.CLIENT)
    try:
        data = conn.send(request_event(method.decode(), target.decode(), all_headers))
        if body:
            data += conn.send(h11.Data(data=body))
        return data + conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError:
        return h11.LocalProtocolError


@settings(max_examples=500, deadline=None)
@given(method=st.sampled_from([b"POST", b"GET", b"PUT"]),
       target=st.sampled_from([b"/backend-api/codex/responses", b"/models?client_version=1", b"/"]),
       headers=st.lists(st.tuples(NAMES, VALUES), max_size=6), body=st.binary(max_size=40))
def test_a_request_is_written_as_h11_writes_it(method: bytes, target: bytes,
                                               headers: list[tuple[bytes, bytes]],
                                               body: bytes) -> None:
    ours = request_bytes(method, target, b"backend.test:8080", headers, body)
    special = {b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade",
               b"expect"}
    if any(name.lower() in special for name, _ in headers):
        assert ours is None
    else:
        assert ours == h11_request(method, target, headers, body)


def test_the_backends_request_is_written_by_hand() -> None:
    headers = [(b"authorization", b"Bearer " + b"x" * 3000), (b"chatgpt-account-id", b"a"),
               (b"content-type", b"application/json"), (b"accept", b"text/event-stream")]
    ours = request_bytes(b"POST", b"/backend-api/codex/responses", b"127.0.0.1:9", headers, b"{}")
    assert ours is not None and ours.startswith(b"POST /backend-api/codex/responses HTTP/1.1\r\n"
                                                b"host: 127.0.0.1:9\r\n")
    assert ours == h11_request(b"POST", b"/backend-api/codex/responses", headers, b"{}",
                               b"127.0.0.1:9")


@pytest.mark.parametrize("body", [b"", b"{}", b"x" * 100_000])
@pytest.mark.parametrize("headers", [[(b"content-type", b"application/json")],
                                     [(b"connection", b"close")]])
def test_an_outgoing_request_gives_its_body_back_whoever_writes_it(
        body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Written by hand, the body is not kept apart from the wire's bytes (it ends them);
    h11's path (an unusual answer, or a header h11 must write) still gets it whole."""
    outgoing = Outgoing("POST", "/backend-api/codex/responses", b"127.0.0.1:9", headers, body)
    assert outgoing.body == body
    assert (outgoing.wire is None) == (headers[0][0] == b"connection")
    sent = outgoing.send_h11(h11.Connection(h11.CLIENT), outgoing.event())
    assert sent == h11_request(b"POST", b"/backend-api/codex/responses", headers, body,
                               b"127.0.0.1:9")


# --- the response head -------------------------------------------------------------

STATUS_LINES = st.one_of(
    st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.1 200", b"HTTP/1.1 429 Too Many Requests",
                     b"HTTP/1.1 500 ", b"HTTP/1.0 200 OK", b"HTTP/1.1 100 Continue",
                     b"HTTP/1.1 101 Switching", b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 x",
                     b"HTTP/2 200", b"HTTP/1.1 99 x", b"HTTP/1.1 2000 x", b"http/1.1 200 OK",
                     b"HTTP/1.1 200 \xc3\xa9t\xe9 \t x", b"HTTP/1.1  200 OK",
                     b"HTTP/1.1 200 a\x00b",
                     b"HTTP/1.1 600 x", b"HTTP/1.1 999 x", b"", b"  HTTP/1.1 200 OK"]),
    st.from_regex(rb"\AHTTP/[0-9]\.[0-9] [0-9]{3}( [ -~\x80-\xff]{0,12})?\Z"))
HEADER_NAMES = st.one_of(
    st.sampled_from([b"transfer-encoding", b"Transfer-Encoding", b"content-length",
                     b"connection", b"Connection", b"content-type", b"x-request-id",
                     b"x-codex-primary-used-percent", b"", b"bad name", b"x\x00y", b" folded",
                     b"\tfolded", b"x(y)"]),
    st.from_regex(rb"\A[!-~]{1,8}\Z"))
HEADER_VALUES = st.one_of(
    st.sampled_from([b"chunked", b"Chunked", b" chunked ", b"gzip, chunked", b"chunked, chunked",
                     b"identity", b"5", b"5, 5", b"5, 6", b"-1", b"close", b"keep-alive",
                     b"Keep-Alive, Close", b"upgrade", b"", b"  ", b"a\x00b", b"a\x0bb",
                     b"a\x0cb", b"a\x7fb", b"\xff\xfe", b"text/event-stream", b"a\rb", b"\t x \t"]),
    st.binary(max_size=12))
SEPARATORS = st.sampled_from([b": ", b":", b":\t", b" : ", b":  "])
ENDINGS = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r", b"\r\r\n"])


CLEAN_STATUS = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.1 200", b"HTTP/1.1 429 Too Many",
                                b"HTTP/1.1 500 ", b"HTTP/1.1 401 \xe9 x"])
CLEAN_NAMES = st.one_of(st.sampled_from([b"Connection", b"connection", b"x-request-id"]),
                        st.from_regex(rb"\A[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,8}\Z"))
CLEAN_VALUES = st.one_of(st.sampled_from([b"close", b"keep-alive", b"Keep-Alive, Close", b"",
                                          b" x ", b"a\x7fb", b"\xff\xfe"]),
                         st.from_regex(rb"\A[ -~]{0,12}\Z"))


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """Mostly the backend's shape with clean extras; noisy ones (any status line, name,
    value, separator, line ending) a third of the time."""
    noisy = draw(st.integers(0, 2)) == 0
    status = draw(STATUS_LINES if noisy else CLEAN_STATUS)
    names, values = (HEADER_NAMES, HEADER_VALUES) if noisy else (CLEAN_NAMES, CLEAN_VALUES)
    separators = SEPARATORS if noisy else st.sampled_from([b": ", b":", b":\t"])
    endings = ENDINGS if noisy else st.just(b"\r\n")
    lines = [b"content-type: text/event-stream"]
    if draw(st.integers(0, 4)):
        lines.append(draw(st.sampled_from([b"transfer-encoding", b"Transfer-Encoding"]))
                     + b": " + draw(st.sampled_from([b"chunked", b"Chunked", b"chunked "])))
    for _ in range(draw(st.integers(0, 5))):
        lines.append(draw(names) + draw(separators) + draw(values))
    lines = draw(st.permutations(lines))
    head = status + draw(endings) + b"".join(line + draw(endings) for line in lines)
    head += draw(st.sampled_from([b"\r\n"] * 6 + [b"\n", b""]) if noisy else st.just(b"\r\n"))
    if draw(st.integers(0, 5)) == 0:  # an informational answer first
        head = b"HTTP/1.1 100 Continue\r\n\r\n" + head
    return head + draw(st.sampled_from([b"", b"5\r\nhello\r\n", b"0\r\n\r\n", b"junk"]))


def h11_reads(data: bytes) -> h11.Response | h11.InformationalResponse | type[Exception] | None:
    """What h11 makes of `data` so far: the first event, an error, or None (needs more)."""
    conn = client()
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return h11.RemoteProtocolError
    if event is h11.NEED_DATA:
        return None
    assert isinstance(event, (h11.Response, h11.InformationalResponse)), event
    return event


def check(data: bytes) -> None:
    verdict = parse_head(data)
    if verdict is DEFER:
        return
    theirs = h11_reads(data)
    if verdict is NEED_MORE:
        assert theirs is None
        return
    assert isinstance(verdict, ResponseHead)
    assert isinstance(theirs, h11.Response)
    assert verdict.status == theirs.status_code
    assert verdict.headers == list(theirs.headers)
    assert is_chunked(b"POST", theirs)
    conn = client()
    conn.receive_data(data)
    conn.next_event()
    assert data[verdict.body_start:] == conn.trailing_data[0]
    assert verdict.head.keep_alive == (conn.our_state is h11.DONE)
    assert verdict.head.http_version == theirs.http_version


@settings(max_examples=3000, deadline=None)
@given(head=heads(), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_a_head_parsed_by_hand_is_the_one_h11_reads(head: bytes, cuts: list[int]) -> None:
    for cut in sorted({min(cut, len(head)) for cut in cuts} | {len(head)}):
        check(head[:cut])


@given(head=heads())
def test_every_prefix_agrees(head: bytes) -> None:
    for cut in range(len(head) + 1):
        check(head[:cut])


@given(data=st.binary(max_size=80))
def test_garbage_is_refused_or_left_to_h11(data: bytes) -> None:
    check(data)
    check(b"HTTP/1.1 200 OK\r\n" + data)


COMMON = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-request-id: 1\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n")


def test_the_backends_answer_is_parsed_by_hand() -> None:
    head = parse_head(COMMON + b"5\r\nhello\r\n")
    assert isinstance(head, ResponseHead)
    assert head.status == 200 and head.head.keep_alive
    assert head.headers[-1] == (b"transfer-encoding", b"chunked")
    assert (COMMON + b"5\r\n")[head.body_start:] == b"5\r\n"


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nx: a\r\n b\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\ntransfer-encoding: chunked\n\n",
    b"HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n",
    b"\x16\x03\x01",
    b"HTTP/1.1 200 OK\r\nx: " + b"a" * MAX_HEAD_BYTES,
])
def test_the_unusual_is_left_to_h11(head: bytes) -> None:
    assert parse_head(head) is DEFER


def test_a_head_in_pieces_waits() -> None:
    for cut in range(1, len(COMMON)):
        assert parse_head(COMMON[:cut]) is NEED_MORE
    assert isinstance(parse_head(COMMON), ResponseHead)


def test_reads_split_anywhere_agree() -> None:
    for a, b in itertools.combinations(range(len(COMMON) + 1), 2):
        check(COMMON[:a])
        check(COMMON[:b])
