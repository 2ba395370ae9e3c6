"""chatmock.net.h2wire: the frame scanner at every split point, and the rate limit."""

from __future__ import annotations

import itertools

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
)
from hypothesis import given
from hypothesis import strategies as st

from chatmock.net.h2wire import (
    ENHANCE_YOUR_CALM,
    FRAME_SIZE_ERROR,
    PREFACE,
    FrameScanner,
    GoAway,
    PlainData,
    RateLimit,
    WireError,
)

FRAMES = [SettingsFrame(0).serialize(),
          HeadersFrame(1, data=b"h" * 30, flags={"END_HEADERS"}).serialize(),
          DataFrame(1, data=b"d" * 5000).serialize(),
          GoAwayFrame(0, last_stream_id=7, error_code=0, additional_data=b"bye").serialize(),
          PingFrame(0, opaque_data=b"12345678").serialize(),
          HeadersFrame(3, data=b"a" * 10).serialize(),
          ContinuationFrame(3, data=b"b" * 10, flags={"END_HEADERS"}).serialize(),
          GoAwayFrame(0, last_stream_id=3, error_code=11).serialize(),
          DataFrame(3, data=b"", flags={"END_STREAM"}).serialize()]
WIRE = PREFACE + b"".join(FRAMES)
EXPECTED_PASSED = PREFACE + b"".join(f for f in FRAMES if f[3] != 7)
EXPECTED_GOAWAYS = [GoAway(7, 0, b"bye"), GoAway(3, 11, b"")]


def scan(pieces: list[bytes]) -> tuple[bytes, list[GoAway]]:
    scanner = FrameScanner(preface=len(PREFACE))
    passed = b""
    found: list[GoAway] = []
    for piece in pieces:
        data, goaways = scanner.feed(piece)
        passed += data
        found += goaways
    return passed, found


def test_whole_and_byte_by_byte_give_the_same_result() -> None:
    assert scan([WIRE]) == (EXPECTED_PASSED, EXPECTED_GOAWAYS)
    assert scan([bytes([b]) for b in WIRE]) == (EXPECTED_PASSED, EXPECTED_GOAWAYS)


@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_any_split_gives_the_same_result(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(WIRE)]
    pieces = [WIRE[a:b] for a, b in itertools.pairwise(points)]
    assert scan(pieces) == (EXPECTED_PASSED, EXPECTED_GOAWAYS)


def split(pieces: list[bytes]) -> tuple[bytes, list[GoAway], list[PlainData]]:
    scanner = FrameScanner(preface=len(PREFACE))
    passed = b""
    goaways: list[GoAway] = []
    plain: list[PlainData] = []
    for piece in pieces:
        for item in scanner.split(piece):
            if isinstance(item, bytes):
                passed += item
            elif isinstance(item, PlainData):
                passed += item.header + item.payload
                plain.append(item)
            else:
                goaways.append(item)
    return passed, goaways, plain


@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_split_takes_plain_data_out_at_any_split(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(WIRE)]
    passed, goaways, plain = split([WIRE[a:b] for a, b in itertools.pairwise(points)])
    assert (passed, goaways) == (EXPECTED_PASSED, EXPECTED_GOAWAYS)
    assert [(p.stream_id, p.payload) for p in plain] == [(1, b"d" * 5000)]  # not END_STREAM


def test_data_inside_a_header_block_stays_with_h2() -> None:
    scanner = FrameScanner()
    wire = (HeadersFrame(1, data=b"h").serialize() + DataFrame(1, data=b"x").serialize()
            + DataFrame(1, data=b"padded", pad_length=2).serialize())
    assert scanner.split(wire) == [wire]


def test_a_read_without_goaway_is_passed_as_it_is() -> None:
    scanner = FrameScanner()
    data = FRAMES[2] + FRAMES[4]
    passed, found = scanner.feed(data)
    assert passed is data and found == []


def test_a_goaway_alone_is_taken_out_whole() -> None:
    frame = GoAwayFrame(0, last_stream_id=41, error_code=2, additional_data=b"why").serialize()
    assert FrameScanner().feed(frame) == (b"", [GoAway(41, 2, b"why")])


def test_an_oversized_frame_is_refused_at_its_header() -> None:
    scanner = FrameScanner(max_frame_size=16384)
    header = (16385).to_bytes(3, "big") + bytes([0, 0]) + (1).to_bytes(4, "big")
    with pytest.raises(WireError) as caught:
        scanner.feed(header)
    assert caught.value.error_code == FRAME_SIZE_ERROR


def test_a_header_block_is_capped_across_continuations() -> None:
    scanner = FrameScanner(max_header_block=1000)
    scanner.feed(HeadersFrame(1, data=b"h" * 400).serialize())
    assert scanner.in_header_block
    scanner.feed(ContinuationFrame(1, data=b"c" * 400).serialize())
    with pytest.raises(WireError) as caught:
        scanner.feed(ContinuationFrame(1, data=b"c" * 400).serialize())
    assert caught.value.error_code == ENHANCE_YOUR_CALM


def test_a_finished_header_block_resets_the_count() -> None:
    scanner = FrameScanner(max_header_block=1000)
    for stream_id in range(1, 40, 2):
        scanner.feed(HeadersFrame(stream_id, data=b"h" * 400).serialize()
                     + ContinuationFrame(stream_id, data=b"c" * 400,
                                         flags={"END_HEADERS"}).serialize())
    assert not scanner.in_header_block


def test_rate_limit_counts_per_window() -> None:
    limit = RateLimit(3, 10.0)
    assert [limit.hit(0.0) for _ in range(4)] == [True, True, True, False]
    assert limit.hit(10.0)
    assert [limit.hit(12.0) for _ in range(3)] == [True, True, False]
