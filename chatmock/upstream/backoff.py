"""When to retry a failed upstream call, and after how long (providers.md §5).

`RetryPolicy.decide(status, headers, body, attempt, ...)` is a pure function:
it returns `Retry(delay)` or `GiveUp(reason, retry_after)`. Randomness, the
current time and the time already spent waiting are passed in, so every
decision can be tested exactly.

* Retried: 408, 429, 500, 502, 503, 504 and no answer at all (`status` None:
  connect errors, resets). Never: everything else, in particular 400, 401,
  402 (OpenRouter's credits), 403 (moderation, permissions), 404, 422, and a
  usage-limit 429 (Codex `usage_limit_reached` / `usage_not_included`): those
  are passed on, with the upstream's reset time as `retry_after` when known.
* Delay: full jitter, `uniform(0, min(cap, base * 2 ** (attempt - 1)))` (AWS
  Architecture Blog, "Exponential Backoff And Jitter"), never shorter than an
  upstream hint. A hint longer than `hint_cap` is not slept through: the
  caller gives up and passes the 429 on with that `Retry-After`.
* Hints, the first kind found wins: `Retry-After` (delta-seconds or an
  HTTP-date, RFC 9110 §10.2.3); OpenRouter's `error.metadata.retry_after_seconds`;
  OpenAI-style `x-ratelimit-reset-requests` / `-tokens` durations (`12ms`,
  `1.5s`, `6m0s`, `1h2m`; the longer of the two); `x-ratelimit-reset`, whose unit
  varies by vendor (read as epoch milliseconds from 10^12 up, epoch seconds
  from 10^9 up, else seconds from now); Codex `error.resets_in_seconds` /
  `error.resets_at` (epoch seconds).
* Bounds: `attempts` calls in all (the first included) and `budget` seconds of
  waiting in all; past either the caller gives up.

The caller retries only while nothing has been sent to its client yet; once
the first byte has gone out, a failure becomes an in-band error instead.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
USAGE_LIMIT_TYPES = frozenset({"usage_limit_reached", "usage_not_included"})
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|h|m|s))")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """`reason`: not_retryable, usage_limit, attempts, budget or hint_too_long;
    `retry_after`: whole seconds to pass on to the client, when known."""

    reason: str
    retry_after: int | None = None


Decision = Retry | GiveUp
Headers = Iterable[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 0.5
    cap: float = 20.0
    attempts: int = 4
    budget: float = 60.0
    hint_cap: float = 60.0

    def decide(self, status: int | None, headers: Headers, body: bytes, attempt: int, *,
               waited: float = 0.0, now: float = 0.0,
               uniform: Callable[[float, float], float] = random.uniform) -> Decision:
        """What to do after attempt number `attempt` (1 for the first call) failed with
        `status` (None: no answer), having waited `waited` seconds in earlier backoffs;
        `now` is the Unix time (for HTTP-dates and epoch resets)."""
        document = _json(body)
        hint = upstream_hint(headers, document, now)
        passed_on = None if hint is None else math.ceil(hint)
        if status is not None and status not in RETRYABLE:
            return GiveUp("not_retryable", passed_on)
        if status == 429 and usage_limit(document):
            return GiveUp("usage_limit", passed_on)
        if hint is not None and hint > self.hint_cap:
            return GiveUp("hint_too_long", passed_on)
        if attempt >= self.attempts:
            return GiveUp("attempts", passed_on)
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        delay = max(uniform(0.0, ceiling), hint or 0.0)
        if waited + delay > self.budget:
            return GiveUp("budget", passed_on if passed_on is not None else math.ceil(delay))
        return Retry(delay)


def usage_limit(document: Any) -> bool:
    """A Codex usage-limit error (a 429 that waiting a few seconds does not cure)."""
    error = document.get("error") if isinstance(document, dict) else None
    return isinstance(error, dict) and (error.get("type") in USAGE_LIMIT_TYPES
                                        or error.get("code") in USAGE_LIMIT_TYPES)


def upstream_hint(headers: Headers, document: Any, now: float) -> float | None:
    """Seconds the upstream asked to wait, from the first kind of hint present."""
    found = {name.lower(): value for name, value in headers}
    for hint in (_retry_after(found.get(b"retry-after"), now), _openrouter_hint(document),
                 _reset_durations(found), _reset_epoch(found.get(b"x-ratelimit-reset"), now),
                 _codex_reset(document, now)):
        if hint is not None:
            return hint
    return None


def _retry_after(value: bytes | None, now: float) -> float | None:
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    if text.isascii() and text.isdigit():  # delta-seconds ("¹".isdigit() is true too)
        return _finite(float(text))
    from email.utils import parsedate_to_datetime  # ~3 ms of import: only for an HTTP-date

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def _openrouter_hint(document: Any) -> float | None:
    error = document.get("error") if isinstance(document, dict) else None
    metadata = error.get("metadata") if isinstance(error, dict) else None
    value = metadata.get("retry_after_seconds") if isinstance(metadata, dict) else None
    return _seconds(value)


def _reset_durations(headers: dict[bytes, bytes]) -> float | None:
    durations = [parse_duration(headers[name].decode("latin-1"))
                 for name in (b"x-ratelimit-reset-requests", b"x-ratelimit-reset-tokens")
                 if name in headers]
    known = [d for d in durations if d is not None]
    return max(known) if known else None


def parse_duration(text: str) -> float | None:
    """`12ms`, `1.5s`, `6m0s`, `1h2m3s` (or a bare number of seconds) → seconds."""
    text = text.strip()
    try:
        return _finite(float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return _finite(sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts))


def _reset_epoch(value: bytes | None, now: float) -> float | None:
    try:
        number = _finite(float(value)) if value is not None else None
    except ValueError:
        return None
    if number is None:
        return None
    if number >= 1e12:
        return max(0.0, number / 1000 - now)
    if number >= 1e9:
        return max(0.0, number - now)
    return number


def _codex_reset(document: Any, now: float) -> float | None:
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None
    seconds = _seconds(error.get("resets_in_seconds"))
    if seconds is not None:
        return seconds
    at = _seconds(error.get("resets_at"))
    return None if at is None else max(0.0, at - now)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _finite(float(value))


def _finite(number: float) -> float | None:
    return max(0.0, number) if math.isfinite(number) else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None
