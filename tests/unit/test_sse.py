"""chatmock.dialects.sse: the incremental SSE decoder and the event encoder."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatmock.dialects.sse import SSEDecoder, SSEError, SSEEvent, encode_event

from .helpers import chunked, whole_bytewise_and_splits

BOM = b"\xef\xbb\xbf"


def decode(chunks: list[bytes], *, finish: bool = True) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    if finish:
        events += decoder.finish()
    return events


def data_of(events: list[SSEEvent]) -> list[bytes]:
    return [event.data for event in events]


def assert_all_feeds_agree(stream: bytes, expected: list[SSEEvent]) -> None:
    for chunks in whole_bytewise_and_splits(stream):
        assert decode(chunks) == expected, chunks


# -- line endings -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [
    b"data: a\n\ndata: b\n\n",
    b"data: a\r\n\r\ndata: b\r\n\r\n",
    b"data: a\r\rdata: b\r\r",
    b"data: a\r\n\ndata: b\n\r\n",
    b"data: a\n\rdata: b\r\r\n",
])
def test_every_line_ending_dispatches_the_same_events(stream: bytes) -> None:
    assert_all_feeds_agree(stream, [SSEEvent(b"", b"a"), SSEEvent(b"", b"b")])


def test_mixed_line_endings_inside_one_event() -> None:
    stream = b"event: e\rdata: 1\r\ndata: 2\ndata: 3\r\r\n"
    assert_all_feeds_agree(stream, [SSEEvent(b"e", b"1\n2\n3")])


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Had the LF counted as a second line end, "a" and "b" would be two events.
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(b"", b"a\nb")]


def test_cr_at_chunk_end_followed_by_cr_is_two_line_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\rdata: b\n\n") == [SSEEvent(b"", b"a"), SSEEvent(b"", b"b")]


def test_pending_cr_then_chunk_of_only_lf() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(b"", b"a")]


def test_blank_line_split_between_chunks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(b"", b"a")]


def test_many_events_in_one_chunk_and_one_event_over_many_chunks() -> None:
    stream = b"".join(encode_event(b"%d" % i) for i in range(50))
    assert data_of(decode([stream])) == [b"%d" % i for i in range(50)]
    long = b"data: " + b"x" * 10_000 + b"\n\n"
    assert data_of(decode([long[i:i + 7] for i in range(0, len(long), 7)])) == [b"x" * 10_000]


# -- fields ---------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    stream = b": keep-alive\n\n:\ndata: a\n: inside\n\n"
    assert decode([stream]) == [SSEEvent(b"", b"a")]


@pytest.mark.parametrize(("line", "value"), [
    (b"data: x", b"x"),
    (b"data:x", b"x"),
    (b"data:  x", b" x"),  # only one space is removed
    (b"data: a:b: c", b"a:b: c"),
    (b"data:", b""),
    (b"data", b""),  # no colon: the whole line is the field name
    (b"data: ", b""),
    (b"data:\tx", b"\tx"),
])
def test_data_field_values(line: bytes, value: bytes) -> None:
    assert decode([line + b"\n\n"]) == [SSEEvent(b"", value)]


def test_multi_line_data_is_joined_by_lf() -> None:
    assert data_of(decode([b"data: a\ndata:\ndata: b\n\n"])) == [b"a\n\nb"]


def test_event_field_sets_the_type_and_last_one_wins() -> None:
    assert decode([b"event: one\nevent:two\ndata: x\n\n"]) == [SSEEvent(b"two", b"x")]


def test_event_type_does_not_leak_into_the_next_event() -> None:
    assert decode([b"event: a\ndata: 1\n\ndata: 2\n\n"]) == [SSEEvent(b"a", b"1"),
                                                            SSEEvent(b"", b"2")]


def test_events_without_data_are_not_dispatched() -> None:
    stream = b"event: ping\n\nid: 3\nretry: 10\n\n: c\n\n\n\n\ndata: x\n\n"
    assert decode([stream]) == [SSEEvent(b"", b"x")]


def test_id_retry_and_unknown_fields_are_ignored() -> None:
    stream = b"id: 7\nretry: 1000\nfoo: bar\nDATA: no\ndata: yes\n\n"
    assert decode([stream]) == [SSEEvent(b"", b"yes")]


def test_field_names_are_case_sensitive_and_exact() -> None:
    assert decode([b"data : x\n\n Data: y\n\n"]) == []


# -- BOM ----------------------------------------------------------------------------------


def test_leading_bom_is_dropped() -> None:
    assert_all_feeds_agree(BOM + b"data: a\n\n", [SSEEvent(b"", b"a")])


def test_bom_split_across_the_first_chunks_is_dropped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(BOM[:1]) == []
    assert decoder.feed(BOM[1:2]) == []
    assert decoder.feed(BOM[2:] + b"data: a\n\n") == [SSEEvent(b"", b"a")]


def test_bom_only_at_the_very_start() -> None:
    # A BOM later in the stream is part of a line, so this field is not "data".
    assert decode([b"data: a\n\n" + BOM + b"data: b\n\n"]) == [SSEEvent(b"", b"a")]
    assert decode([BOM + BOM + b"data: a\n\n"]) == []


def test_prefix_of_bom_that_is_not_a_bom_is_kept() -> None:
    assert_all_feeds_agree(b"\xef\xbbdata: a\n\ndata: b\n\n", [SSEEvent(b"", b"b")])


# -- finish ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("tail", "expected"), [
    (b"", []),
    (b"data: a", []),  # a partial line is dropped
    (b"data: a\n", [b"a"]),  # complete lines are dispatched
    (b"data: a\r", [b"a"]),
    (b"data: a\r\n", [b"a"]),
    (b"data: a\ndata: b", [b"a"]),
    (b"data: a\ndata: b\n", [b"a\nb"]),
    (b"event: x\n", []),
    (b": comment\n", []),
])
def test_finish_dispatches_only_complete_trailing_lines(tail: bytes, expected: list[bytes]) -> None:
    for chunks in whole_bytewise_and_splits(b"data: first\n\n" + tail):
        assert data_of(decode(chunks)) == [b"first", *expected]


def test_finish_after_a_complete_stream_returns_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n") == [SSEEvent(b"", b"a")]
    assert decoder.finish() == []


def test_empty_feeds_are_harmless() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n") == [SSEEvent(b"", b"a")]
    assert decoder.finish() == []


# -- limits ----------------------------------------------------------------------------------


def test_runaway_event_raises_sse_error() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 50)
    with pytest.raises(SSEError):
        decoder.feed(b"x" * 100)


def test_events_up_to_the_limit_are_fine() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    for _ in range(20):
        assert decoder.feed(b"data: " + b"x" * 80 + b"\n\n") == [SSEEvent(b"", b"x" * 80)]


def test_no_small_line_limit() -> None:
    big = b"y" * (3 * 1024 * 1024)
    assert decode([b"data: " + big[:100], big[100:] + b"\n\n"]) == [SSEEvent(b"", big)]


# -- encoder -----------------------------------------------------------------------------------


def test_encode_event() -> None:
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event(b"x", b"message") == b"event: message\ndata: x\n\n"
    assert decode([encode_event(b"x", b"t") + encode_event(b"")]) == [SSEEvent(b"t", b"x"),
                                                                      SSEEvent(b"", b"")]


# -- properties --------------------------------------------------------------------------------

# Event names and data: anything without line breaks (the encoder's contract).
line_bytes = st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
events_st = st.lists(st.tuples(line_bytes, line_bytes), max_size=8)
line_ends = st.sampled_from([b"\n", b"\r\n", b"\r"])


def encode_stream(events: list[tuple[bytes, bytes]], newline: bytes, comments: bool) -> bytes:
    parts = []
    for name, data in events:
        if comments:
            parts.append(b": comment\n")
        parts.append(encode_event(data, name))
    return b"".join(parts).replace(b"\n", newline)


@settings(max_examples=150)
@given(events=events_st, newline=line_ends, comments=st.booleans(),
       cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_encoded_streams_decode_the_same_however_they_are_split(
        events: list[tuple[bytes, bytes]], newline: bytes, comments: bool,
        cuts: list[int]) -> None:
    stream = encode_stream(events, newline, comments)
    expected = [SSEEvent(name, data) for name, data in events]
    assert_all_feeds_agree(stream, expected)
    assert decode(chunked(stream, cuts)) == expected


@settings(max_examples=300)
@given(garbage=st.binary(max_size=200), cuts=st.lists(st.integers(min_value=0), max_size=10))
@example(garbage=BOM + b"data: a\n\n", cuts=[1, 2])
@example(garbage=b"data: a\r\n\r\n", cuts=[8, 9])
def test_garbage_never_raises_and_does_not_depend_on_chunking(
        garbage: bytes, cuts: list[int]) -> None:
    expected = decode([garbage])
    assert decode(chunked(garbage, cuts)) == expected
    assert decode([garbage[i:i + 1] for i in range(len(garbage))]) == expected


@settings(max_examples=200)
@given(garbage=st.binary(max_size=300), limit=st.integers(min_value=1, max_value=64),
       cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_garbage_with_a_small_limit_raises_only_sse_error(
        garbage: bytes, limit: int, cuts: list[int]) -> None:
    decoder = SSEDecoder(max_event_bytes=limit)
    try:
        for chunk in chunked(garbage, cuts):
            decoder.feed(chunk)
        decoder.finish()
    except SSEError:
        pass


def test_skipped_blocks_are_passed_over_at_every_split_point() -> None:
    stream = (b"event: keep\ndata: 1\n\nevent: drop\ndata: {\"x\":2}\n\n"
              b"data: 3\n\nevent: drop\ndata: 4\n\nevent: keep\ndata: 5\n\n")
    wanted = [SSEEvent(b"keep", b"1"), SSEEvent(b"", b"3"), SSEEvent(b"keep", b"5")]
    for cut in range(len(stream) + 1):
        decoder = SSEDecoder(skip=(b"event: drop\n",))
        events = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) + decoder.finish()
        assert events == wanted, cut


def test_a_read_of_only_skipped_blocks_keeps_its_unfinished_tail() -> None:
    decoder = SSEDecoder(skip=(b"event: drop\n",))
    assert decoder.feed(b"event: drop\ndata: 1\n\nevent: drop\ndata: 2\n\nevent: ke") == []
    assert decoder.buffered
    assert decoder.feed(b"ep\ndata: 3\n\n") == [SSEEvent(b"keep", b"3")]
    assert not decoder.buffered


_SKIP_BLOCKS = st.sampled_from([
    b"event: drop\ndata: {\"d\":\"event: keep\"}", b"event: keep\ndata: 2", b"data: 3",
    b"event: drop\ndata: 4\n", b"", b"event: dropped\ndata: 5", b": note", b"\n",
    b"event: drop\r\ndata: 6", b"event: drop", b"event: keep\ndata: {\"x\":\"\\n\\n\"}"])


@settings(max_examples=300)
@given(blocks=st.lists(_SKIP_BLOCKS, max_size=12),
       separators=st.lists(st.sampled_from([b"\n\n", b"\r\n\r\n", b"\n\n\n", b"\r\r"]),
                           min_size=12, max_size=12),
       cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_skipping_never_loses_or_reorders_another_event(
        blocks: list[bytes], separators: list[bytes], cuts: list[int]) -> None:
    """Whatever the layout and the reads, skipping only ever removes skipped events."""
    stream = b"".join(block + separator
                      for block, separator in zip(blocks, separators, strict=False))
    skipping = SSEDecoder(skip=(b"event: drop\n",))
    events = [event for chunk in chunked(stream, cuts) for event in skipping.feed(chunk)]
    events += skipping.finish()

    def kept(found: list[SSEEvent]) -> list[SSEEvent]:
        return [event for event in found if event.event != b"drop"]

    assert kept(events) == kept(decode(chunked(stream, cuts)))


_BACKEND_BLOCKS = st.one_of(
    st.tuples(st.sampled_from([b"keep", b"drop", b"", b"event: x", b"data: y"]), line_bytes)
    .map(lambda pair: b"event: " + pair[0] + b"\ndata: " + pair[1] + b"\n\n"),
    line_bytes.map(lambda data: b"data: " + data + b"\n\n"),
    _SKIP_BLOCKS.map(lambda block: block + b"\n\n"),
    st.sampled_from([b"data: a\r\n\r\n", b"event: keep\ndata: 1\ndata: 2\n\n", b": c\n\n",
                     b"event: keep\n\n", b"data: a\n\ndata: b\n\n", b"\n\n", b"data: a\n",
                     b"\n", b"\r", BOM + b"data: a\n\n"]))


@settings(max_examples=400)
@given(reads=st.lists(_BACKEND_BLOCKS, max_size=10), skip=st.booleans())
def test_a_read_of_one_whole_block_decodes_as_the_bytes_one_by_one(
        reads: list[bytes], skip: bool) -> None:
    """Reads that are each one block as a backend frames it (the decoder's shortcut for
    them) give the same events as the same bytes fed one at a time (which never take it).
    A skipped event may or may not be passed over, depending on the reads (the skip is
    a saving, not a filter): as above, only the others are compared."""
    skipped = (b"event: drop\n",) if skip else ()
    whole, bytewise = SSEDecoder(skip=skipped), SSEDecoder(skip=skipped)
    events = [event for read in reads for event in whole.feed(read)] + whole.finish()
    stream = b"".join(reads)
    expected = [event for at in range(len(stream))
                for event in bytewise.feed(stream[at:at + 1])] + bytewise.finish()
    if skip:
        events = [event for event in events if event.event != b"drop"]
        expected = [event for event in expected if event.event != b"drop"]
    assert events == expected
