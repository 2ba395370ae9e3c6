"""chatmock.upstream.backoff: which failures are retried, and after how long."""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmock.upstream.backoff import (
    GiveUp,
    Retry,
    RetryPolicy,
    parse_duration,
    upstream_hint,
)

NOW = 1_800_000_000.0
POLICY = RetryPolicy(base=1.0, cap=8.0, attempts=4, budget=30.0, hint_cap=60.0)


def top(low: float, high: float) -> float:
    return high


def decide(status: int | None, headers: list[tuple[bytes, bytes]] | None = None,
           body: Any = None, attempt: int = 1, waited: float = 0.0,
           policy: RetryPolicy = POLICY) -> Retry | GiveUp:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return policy.decide(status, headers or [], raw, attempt, waited=waited, now=NOW,
                         uniform=top)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, None])
def test_transient_failures_are_retried(status: int | None) -> None:
    assert decide(status) == Retry(1.0)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 405, 409, 413, 422, 501])
def test_other_failures_are_never_retried(status: int) -> None:
    assert decide(status) == GiveUp("not_retryable")


def test_a_402_passes_its_retry_after_on() -> None:
    assert decide(402, [(b"retry-after", b"30")]) == GiveUp("not_retryable", 30)


@pytest.mark.parametrize("kind", ["usage_limit_reached", "usage_not_included"])
def test_a_codex_usage_limit_is_passed_on_with_its_reset(kind: str) -> None:
    body = {"error": {"type": kind, "message": "The usage limit has been reached",
                      "resets_in_seconds": 3600}}
    assert decide(429, body=body) == GiveUp("usage_limit", 3600)
    at = {"error": {"type": kind, "resets_at": NOW + 120.5}}
    assert decide(429, body=at) == GiveUp("usage_limit", 121)


def test_exponential_ceiling_with_full_jitter() -> None:
    assert [decide(503, attempt=n) for n in (1, 2, 3)] == [Retry(1.0), Retry(2.0), Retry(4.0)]
    capped = RetryPolicy(base=1.0, cap=3.0, attempts=10, budget=100)
    assert decide(503, attempt=6, policy=capped) == Retry(3.0)
    seen: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        seen.append((low, high))
        return 0.25

    assert POLICY.decide(503, [], b"", 2, uniform=record) == Retry(0.25)
    assert seen == [(0.0, 2.0)]


def test_attempts_and_budget_bound_the_retries() -> None:
    assert decide(503, attempt=4) == GiveUp("attempts")
    assert decide(503, attempt=3, waited=27.0) == GiveUp("budget", 4)
    assert decide(503, attempt=3, waited=26.0) == Retry(4.0)


def test_a_hint_is_never_undercut_and_a_long_one_is_passed_on() -> None:
    assert decide(429, [(b"retry-after", b"7")]) == Retry(7.0)
    assert decide(429, [(b"retry-after", b"61")]) == GiveUp("hint_too_long", 61)
    assert decide(429, [(b"retry-after", b"20")], attempt=2, waited=15) == GiveUp("budget", 20)


@pytest.mark.parametrize("headers, body, expected", [
    ([(b"Retry-After", b"12")], None, 12.0),
    ([(b"retry-after", formatdate(NOW + 90, usegmt=True).encode())], None, 90.0),
    ([(b"retry-after", formatdate(NOW - 90, usegmt=True).encode())], None, 0.0),
    ([(b"retry-after", b"soon")], None, None),
    ([(b"retry-after", b"9" * 400)], None, None),
    ([(b"x-ratelimit-reset-tokens", b"9" * 400 + b"h")], None, None),
    ([], {"error": {"code": 429, "message": "Provider returned error",
                    "metadata": {"retry_after_seconds": 7}}}, 7.0),
    ([(b"x-ratelimit-reset-requests", b"1s"), (b"x-ratelimit-reset-tokens", b"6m0s")], None,
     360.0),
    ([(b"x-ratelimit-reset-tokens", b"12ms")], None, 0.012),
    ([(b"x-ratelimit-reset", b"%d" % (NOW * 1000 + 5000))], None, 5.0),
    ([(b"x-ratelimit-reset", b"%d" % (NOW + 30))], None, 30.0),
    ([(b"x-ratelimit-reset", b"45")], None, 45.0),
    ([(b"x-ratelimit-reset", b"nan")], None, None),
    ([], {"error": {"resets_in_seconds": 120}}, 120.0),
    ([], {"error": {"resets_at": NOW + 10}}, 10.0),
    ([], {"error": {"resets_in_seconds": True}}, None),
    ([], {"error": "a string"}, None),
    ([(b"retry-after", b"3")], {"error": {"metadata": {"retry_after_seconds": 9}}}, 3.0),
])
def test_upstream_hints(headers: list[tuple[bytes, bytes]], body: Any,
                        expected: float | None) -> None:
    hint = upstream_hint(headers, body, NOW)
    assert hint == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("text, seconds", [("12ms", 0.012), ("1.5s", 1.5), ("6m0s", 360.0),
                                           ("1h2m3s", 3723.0), ("2", 2.0), ("", None),
                                           ("5 s", None), ("1x", None), ("-3", 0.0)])
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (None if seconds is None else pytest.approx(seconds))


def test_bodies_that_are_not_json_are_read_as_no_hint() -> None:
    assert decide(503, body=b"<html>down</html>") == Retry(1.0)
    assert decide(429, body=b"[" * 100_000) == Retry(1.0)


@given(status=st.one_of(st.none(), st.integers(100, 599)),
       headers=st.lists(st.tuples(st.sampled_from([b"retry-after", b"x-ratelimit-reset",
                                                   b"x-ratelimit-reset-tokens"]),
                                  st.binary(max_size=20))),
       body=st.binary(max_size=200), attempt=st.integers(1, 10),
       waited=st.floats(0, 100))
def test_any_answer_gives_a_decision_within_the_bounds(status: int | None,
                                                       headers: list[tuple[bytes, bytes]],
                                                       body: bytes, attempt: int,
                                                       waited: float) -> None:
    decision = POLICY.decide(status, headers, body, attempt, waited=waited, now=NOW)
    if isinstance(decision, Retry):
        assert 0 <= decision.delay <= POLICY.hint_cap
        assert waited + decision.delay <= POLICY.budget and attempt < POLICY.attempts
    else:
        assert decision.retry_after is None or decision.retry_after >= 0
