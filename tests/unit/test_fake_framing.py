"""How the fake backend frames its stream into chunks (`fake_events.sse_chunks`).

The real backend writes every SSE event as its own HTTP chunk; the fake does the same
for every pacing (`fake:burst`, `fake:delay_ms`, `fake:first_delay_ms`), and joins
events only when `fake:coalesce` asks it to (the bench's labelled comparison phase).
"""

from __future__ import annotations

import itertools

import pytest

from chatmock.testing.fake_events import (
    DirectiveError,
    ResponseSeed,
    parse_scenario,
    plan_items,
    sse_chunks,
)

Chunks = list[tuple[float, bytes]]


def chunks(text: str) -> Chunks:
    scenario = parse_scenario(text)
    ids = itertools.count(1)
    seed = ResponseSeed(response_id="resp_1", created_at=1, model="gpt-5.4", input_tokens=1,
                        echo={}, items=plan_items(scenario, lambda: next(ids)))
    return list(sse_chunks(scenario, seed))


def events_in(data: bytes) -> int:
    return data.count(b"\n\n")


def event_count(text: str) -> int:
    return sum(events_in(data) for _, data in chunks(text))


@pytest.mark.parametrize("text", ["hi", "fake:deltas=40", "x fake:reasoning fake:tool=f",
                                  "fake:deltas=9 fake:burst=4", "fake:deltas=9 fake:burst=1000",
                                  "fake:deltas=5 fake:delay_ms=20", "fake:fail"])
def test_every_chunk_is_one_whole_event(text: str) -> None:
    found = chunks(text)
    assert found
    for _, data in found:
        assert events_in(data) == 1
        assert data.startswith(b"event: ") and data.endswith(b"\n\n")


def test_unpaced_stream_has_no_waits() -> None:
    assert {wait for wait, _ in chunks("fake:deltas=30")} == {0.0}


def test_burst_writes_its_events_back_to_back_as_separate_chunks() -> None:
    found = chunks("a b c fake:burst=4 fake:delay_ms=25 fake:first_delay_ms=300")
    waits = [wait for wait, _ in found]
    assert len(found) == event_count("a b c") > 4
    expected = [0.3, 0.0, 0.0, 0.0] + [0.025, 0.0, 0.0, 0.0] * len(found)
    assert waits == expected[: len(found)]


def test_paced_stream_waits_before_every_event_but_the_first() -> None:
    found = chunks("fake:deltas=6 fake:delay_ms=20")
    assert [wait for wait, _ in found] == [0.0] + [0.02] * (len(found) - 1)
    assert all(events_in(data) == 1 for _, data in found)


def test_coalesce_joins_each_burst_into_one_chunk() -> None:
    text = "fake:deltas=100 fake:burst=50 fake:delay_ms=5 fake:coalesce"
    found = chunks(text)
    total = event_count(text)
    assert [events_in(data) for _, data in found] == [50] * (total // 50) + [total % 50]
    assert [wait for wait, _ in found] == [0.0] + [0.005] * (len(found) - 1)


def test_coalesce_changes_the_framing_only() -> None:
    plain = b"".join(data for _, data in chunks("fake:deltas=70 fake:burst=50"))
    joined = b"".join(data for _, data in chunks("fake:deltas=70 fake:burst=50 fake:coalesce"))
    assert plain == joined


def test_coalesce_without_burst_is_one_event_per_chunk() -> None:
    assert all(events_in(data) == 1 for _, data in chunks("fake:deltas=5 fake:coalesce"))


def test_empty_stream_still_waits_its_first_delay() -> None:
    assert chunks("fake:empty fake:first_delay_ms=40") == [(0.04, b"")]
    assert chunks("fake:empty") == []


def test_coalesce_takes_no_value() -> None:
    with pytest.raises(DirectiveError, match="takes no value"):
        parse_scenario("fake:coalesce=1")


def test_chunks_are_generated_lazily() -> None:
    scenario = parse_scenario("fake:deltas=1000000000000 fake:burst=1000000")
    seed = ResponseSeed("resp_1", 1, "gpt-5.4", 1, {}, plan_items(scenario, lambda: 1))
    first = list(itertools.islice(sse_chunks(scenario, seed), 300))
    assert len(first) == 300 and all(events_in(data) == 1 for _, data in first)
