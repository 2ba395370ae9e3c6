"""The hand-made chunked decoder (`chatmock.net.chunked`) against h11 alone.

For bodies valid and not (extensions, padding, long sizes, trailers good and bad,
bytes after the end, random damage, truncation, plain garbage), split into reads
at random points, `ChunkedBody` must yield what h11 yields after every read, end
the same way (complete, or broken after the same data) and leave the connection
as h11 would (reusable or not, the same bytes left over)."""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatmock.net.chunked import ChunkedBody, H11Body, is_chunked

HEADS = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 429 Too Many\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n",
)
LAST_CHUNKS = (b"0\r\n\r\n", b"000\r\n\r\n", b"0;ext\r\n\r\n", b"0 \r\n\r\n", b"0\r\n\n",
               b"0\r\nx-trailer: 1\r\n\r\n", b"0\r\nx-a: 1\r\nx-b: 2\r\n\r\n",
               b"0\r\nno colon\r\n\r\n", b"0\r\n")
AFTER_END = (b"", b"", b"HTTP/1.1 200 OK\r\n", b"junk")


def client() -> h11.Connection:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/backend", headers=[
        (b"host", b"backend.test"), (b"content-length", b"2")]))
    conn.send(h11.Data(data=b"{}"))
    conn.send(h11.EndOfMessage())
    return conn


def size_line(draw: st.DrawFn, size: int) -> bytes:
    digits = draw(st.sampled_from(["%x", "%X", "%08x", "%012x"])) % size
    extension = draw(st.sampled_from(["", "", "", ";name=value", ";x", " ", "\t ", ";\r"]))
    return (digits + extension).encode() + b"\r\n"


@st.composite
def framed_bodies(draw: st.DrawFn) -> bytes:
    chunks = draw(st.lists(st.binary(min_size=1, max_size=48), max_size=6))
    framed = [size_line(draw, len(data)) + data + b"\r\n" for data in chunks]
    return b"".join(framed) + draw(st.sampled_from(LAST_CHUNKS)) + draw(
        st.sampled_from(AFTER_END))


@st.composite
def damaged(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> bytes:
    body = bytearray(draw(bodies))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        how = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
        byte = draw(st.sampled_from([b"\r", b"\n", b"0", b"a", b"g", b";", b" ", b"\x00"]))
        if how == "replace" and at < len(body):
            body[at:at + 1] = byte
        elif how == "insert":
            body[at:at] = byte
        elif how == "delete":
            del body[at:at + 1]
        elif how == "cut":
            del body[at:]
    return bytes(body)


BODIES = st.one_of(framed_bodies(), damaged(framed_bodies()), st.binary(max_size=64))


def reads(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def outcome(head: bytes, body: bytes, cuts: list[int], fused: bool) -> tuple[object, ...]:
    """What one decoder yields for `body` read in pieces (the first `cuts[0]` bytes with
    the head): the bytes after each read, how it ended, and the connection it leaves."""
    with_head = min(cuts[0], len(body)) if cuts else 0  # came in the read of the head
    conn = client()
    conn.receive_data(head + body[:with_head])
    response = conn.next_event()
    assert isinstance(response, h11.Response)
    assert is_chunked(b"POST", response)
    buffered = conn.trailing_data[0]
    decoder = ChunkedBody(b"POST", response, buffered) if fused else H11Body(conn)
    seen = [decoder.feed(b"")]
    for piece in reads(body[with_head:], cuts[1:]):
        if decoder.complete or decoder.broken:
            break
        seen.append(decoder.feed(piece))
    if not (decoder.complete or decoder.broken):
        seen.append(decoder.feed(b"", eof=True))
    handed_over = decoder.handed_over if isinstance(decoder, ChunkedBody) else conn
    if handed_over is None:
        assert isinstance(decoder, ChunkedBody)
        left = decoder.left_over  # the plain last chunk, read here
    else:
        conn = handed_over
        left = conn.trailing_data[0]
    # h11 would keep bytes after the body for the next answer; chatmock closes instead.
    reusable = (conn.our_state is h11.DONE and conn.their_state is h11.DONE and not left
                if not fused else decoder.reusable)
    return seen, decoder.complete, decoder.broken, reusable, left if decoder.complete else None


@settings(max_examples=1500, deadline=None)
@given(head=st.sampled_from(HEADS), body=BODIES, cuts=st.lists(st.integers(0, 200), max_size=8))
@example(head=HEADS[0], body=b"1\r\n\x00\r\n0\r\n\r\n", cuts=[3, 6])  # a stale chunk count
def test_the_fused_decoder_reads_every_body_and_split_as_h11_does(
        head: bytes, body: bytes, cuts: list[int]) -> None:
    assert outcome(head, body, cuts, fused=True) == outcome(head, body, cuts, fused=False)


@given(body=framed_bodies())
def test_byte_by_byte_and_whole_agree(body: bytes) -> None:
    head = HEADS[0]
    every_byte = list(range(len(body)))
    assert (outcome(head, body, every_byte, fused=True)
            == outcome(head, body, every_byte, fused=False))
    assert outcome(head, body, [], fused=True) == outcome(head, body, [], fused=False)


@st.composite
def read_per_chunk(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A body and the cuts that make each read one whole chunk, as the backend frames a
    paced stream (the fast path's case); sometimes damaged after the cuts were chosen."""
    chunks = draw(st.lists(st.binary(min_size=1, max_size=48), max_size=6))
    framed = [size_line(draw, len(data)) + data + b"\r\n" for data in chunks]
    framed.append(draw(st.sampled_from(LAST_CHUNKS)) + draw(st.sampled_from(AFTER_END)))
    cuts = [0, *itertools.accumulate(len(piece) for piece in framed)]
    body = b"".join(framed)
    if draw(st.booleans()):
        body = draw(damaged(st.just(body)))
    return body, cuts


@settings(max_examples=800, deadline=None)
@given(head=st.sampled_from(HEADS), case=read_per_chunk())
def test_one_read_per_chunk_reads_as_h11_does(head: bytes, case: tuple[bytes, list[int]]) -> None:
    body, cuts = case
    assert outcome(head, body, cuts, fused=True) == outcome(head, body, cuts, fused=False)


def test_the_head_read_may_bring_part_of_the_body() -> None:
    conn = client()
    conn.receive_data(HEADS[0] + b"5\r\nhel")
    response = conn.next_event()
    assert isinstance(response, h11.Response)
    body = ChunkedBody(b"POST", response, conn.trailing_data[0])
    assert body.feed(b"") == b"hel"
    assert body.feed(b"lo\r\n6\r\n world\r\n") == b"lo world"
    assert body.feed(b"0\r\n\r\n") == b""
    assert body.complete and not body.broken


def test_plain_chunks_never_reach_h11_and_the_last_chunk_does() -> None:
    body = ChunkedBody(b"POST", h11.Response(status_code=200, headers=[
        (b"transfer-encoding", b"chunked")]))
    events = b"".join(b"%x\r\n%b\r\n" % (len(e), e) for e in (b"data: 1\n\n", b"data: 2\n\n"))
    assert body.feed(events) == b"data: 1\n\ndata: 2\n\n"
    assert body.handed_over is None
    assert body.feed(b"0\r\n\r\n") == b""
    assert body.complete and body.reusable
    assert body.handed_over is None  # the plain last chunk is read here too


def test_a_bad_chunk_ending_breaks_the_body_after_its_data() -> None:
    body = ChunkedBody(b"POST", h11.Response(status_code=200, headers=[
        (b"transfer-encoding", b"chunked")]))
    assert body.feed(b"3\r\nabcX") == b"abc"
    assert body.broken and not body.complete


@pytest.mark.parametrize(("method", "status", "headers", "chunked"), [
    (b"POST", 200, [(b"transfer-encoding", b"chunked")], True),
    (b"POST", 200, [(b"content-length", b"3")], False),
    (b"POST", 200, [], False),
    (b"HEAD", 200, [(b"transfer-encoding", b"chunked")], False),
    (b"GET", 204, [(b"transfer-encoding", b"chunked")], False),
    (b"GET", 304, [(b"transfer-encoding", b"chunked")], False),
])
def test_is_chunked_follows_h11s_framing(method: bytes, status: int,
                                         headers: list[tuple[bytes, bytes]],
                                         chunked: bool) -> None:
    assert is_chunked(method, h11.Response(status_code=status, headers=headers)) is chunked
