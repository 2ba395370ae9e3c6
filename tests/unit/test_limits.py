"""chatmock.state.usage_limits: x-codex-* headers, usage_limits.json, and the throttled writer."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trio

import chatmock.fileio
from chatmock.state.usage_limits import (
    LIMITS_FILENAME,
    UsageLimits,
    UsageSnapshot,
    Window,
    limits_path,
    load,
    parse_limit_headers,
)

CAPTURED = datetime(2026, 7, 26, 10, 15, 30, 123456, tzinfo=UTC)
FULL = [(b"x-codex-primary-used-percent", b"42.0"),
        (b"x-codex-primary-window-minutes", b"300"),
        (b"x-codex-primary-reset-after-seconds", b"7200"),
        (b"x-codex-secondary-used-percent", b"12.5"),
        (b"x-codex-secondary-window-minutes", b"10080"),
        (b"x-codex-secondary-reset-after-seconds", b"400000")]
PLAIN = [(b"content-type", b"text/event-stream"), (b"x-request-id", b"abc"),
         (b"cf-ray", b"8f00-CDG")]
SNAPSHOT = UsageSnapshot(CAPTURED, Window(42.0, 300, 7200), Window(12.5, 10080, 400000))


def primary(used: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"x-codex-primary-used-percent", used), *extra]


# --- header parsing ---------------------------------------------------------------------


def test_parse_both_windows() -> None:
    assert parse_limit_headers(PLAIN + FULL, now=CAPTURED) == SNAPSHOT


def test_parse_stamps_current_utc_time() -> None:
    before = datetime.now(UTC)
    snapshot = parse_limit_headers(FULL)
    assert snapshot is not None and snapshot.captured_at.tzinfo is UTC
    assert before <= snapshot.captured_at <= datetime.now(UTC)
    berlin = timezone(timedelta(hours=2))
    snapshot = parse_limit_headers(FULL, now=CAPTURED.astimezone(berlin))
    assert snapshot is not None and snapshot.captured_at == CAPTURED
    assert snapshot.captured_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("used", [b"inf", b"-inf", b"nan", b"NaN", b"", b"  ", b"lots",
                                  b"42%", b"1e999"])
def test_parse_rejects_a_used_percent_that_is_not_finite(used: bytes) -> None:
    assert parse_limit_headers(primary(used)) is None
    snapshot = parse_limit_headers(primary(used) + FULL[3:], now=CAPTURED)
    assert snapshot == UsageSnapshot(CAPTURED, None, Window(12.5, 10080, 400000))


@pytest.mark.parametrize(("used", "expected"), [(b"0", 0.0), (b" 99.5 ", 99.5), (b"100", 100.0),
                                                (b"-3", -3.0), (b"250", 250.0), (b"1e1", 10.0)])
def test_parse_accepts_finite_numbers(used: bytes, expected: float) -> None:
    snapshot = parse_limit_headers(primary(used), now=CAPTURED)
    assert snapshot == UsageSnapshot(CAPTURED, Window(expected, None, None), None)


def test_parse_one_window_only() -> None:
    snapshot = parse_limit_headers(FULL[:3], now=CAPTURED)
    assert snapshot == UsageSnapshot(CAPTURED, Window(42.0, 300, 7200), None)
    snapshot = parse_limit_headers(FULL[3:], now=CAPTURED)
    assert snapshot == UsageSnapshot(CAPTURED, None, Window(12.5, 10080, 400000))


def test_parse_none_without_used_percent() -> None:
    assert parse_limit_headers([]) is None
    assert parse_limit_headers(PLAIN) is None
    assert parse_limit_headers([h for h in FULL if b"used" not in h[0]]) is None
    assert parse_limit_headers([(b"x-codex-plan-type", b"plus"),
                                (b"x-codex-credits-has-credits", b"true")]) is None


@pytest.mark.parametrize(("value", "expected"), [(b"300", 300), (b" 300 ", 300), (b"300.0", 300),
                                                 (b"-5", -5), (b"300.5", None), (b"abc", None),
                                                 (b"", None), (b"inf", None), (b"nan", None)])
def test_parse_integer_fields(value: bytes, expected: int | None) -> None:
    headers = primary(b"1", (b"x-codex-primary-window-minutes", value),
                      (b"x-codex-primary-reset-after-seconds", value))
    snapshot = parse_limit_headers(headers, now=CAPTURED)
    assert snapshot is not None and snapshot.primary == Window(1.0, expected, expected)


def test_parse_header_names_are_exact_lower_case() -> None:
    assert parse_limit_headers([(b"X-Codex-Primary-Used-Percent", b"5")]) is None
    assert parse_limit_headers([(b"x-codex-primary-used-percent-x", b"5")]) is None


def test_parse_last_duplicate_wins() -> None:
    snapshot = parse_limit_headers(primary(b"5") + primary(b"6"), now=CAPTURED)
    assert snapshot is not None and snapshot.primary == Window(6.0)


# --- JSON ---------------------------------------------------------------------------------


def test_to_json_is_the_spec_document() -> None:
    assert SNAPSHOT.to_json() == {
        "captured_at": "2026-07-26T10:15:30.123456+00:00",
        "primary": {"used_percent": 42.0, "window_minutes": 300, "resets_in_seconds": 7200},
        "secondary": {"used_percent": 12.5, "window_minutes": 10080, "resets_in_seconds": 400000},
    }


def test_to_json_leaves_out_absent_windows_and_keeps_null_fields() -> None:
    snapshot = UsageSnapshot(CAPTURED.replace(microsecond=0), Window(5.0))
    assert snapshot.to_json() == {
        "captured_at": "2026-07-26T10:15:30.000000+00:00",
        "primary": {"used_percent": 5.0, "window_minutes": None, "resets_in_seconds": None},
    }


def test_json_round_trip() -> None:
    for snapshot in (SNAPSHOT, UsageSnapshot(CAPTURED, None, Window(1.5, None, 60))):
        document = json.loads(json.dumps(snapshot.to_json()))
        assert UsageSnapshot.from_json(document) == snapshot


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-07-26T10:15:30.123456+00:00", CAPTURED),
    ("2026-07-26T10:15:30.123456Z", CAPTURED),
    ("2026-07-26T10:15:30Z", CAPTURED.replace(microsecond=0)),
    ("2026-07-26T10:15:30.123456789Z", CAPTURED),
    ("2026-07-26T12:15:30.123456+02:00", CAPTURED),
    ("2026-07-26T10:15:30.123456", CAPTURED),
])
def test_from_json_reads_both_timestamp_forms(text: str, expected: datetime) -> None:
    snapshot = UsageSnapshot.from_json({"captured_at": text, "primary": {"used_percent": 1}})
    assert snapshot is not None
    assert snapshot.captured_at == expected and snapshot.captured_at.tzinfo is UTC


def test_from_json_reads_go_chatmock_file() -> None:
    document = {"captured_at": "2026-07-26T10:15:30Z",
                "primary": {"used_percent": 42, "window_minutes": 300, "resets_in_seconds": 7200}}
    assert UsageSnapshot.from_json(document) == UsageSnapshot(
        CAPTURED.replace(microsecond=0), Window(42.0, 300, 7200))


@pytest.mark.parametrize("document", [
    None, [], "text", 42, {},
    {"primary": {"used_percent": 1}},
    {"captured_at": None, "primary": {"used_percent": 1}},
    {"captured_at": 1785060000, "primary": {"used_percent": 1}},
    {"captured_at": "yesterday", "primary": {"used_percent": 1}},
    {"captured_at": "", "primary": {"used_percent": 1}},
    {"captured_at": "2026-07-26T10:15:30Z"},
    {"captured_at": "2026-07-26T10:15:30Z", "primary": None, "secondary": []},
    {"captured_at": "2026-07-26T10:15:30Z", "primary": {"used_percent": "lots"}},
    {"captured_at": "2026-07-26T10:15:30Z", "primary": {"used_percent": True}},
    {"captured_at": "2026-07-26T10:15:30Z", "primary": {"window_minutes": 300}},
])
def test_from_json_garbage_is_none(document: Any) -> None:
    assert UsageSnapshot.from_json(document) is None


def test_from_json_tolerates_bad_fields() -> None:
    document = {"captured_at": "2026-07-26T10:15:30Z",
                "primary": {"used_percent": 7, "window_minutes": "many", "resets_in_seconds": 1.5},
                "secondary": {"used_percent": float("inf")}, "extra": {"ignored": True}}
    assert UsageSnapshot.from_json(document) == UsageSnapshot(
        CAPTURED.replace(microsecond=0), Window(7.0, None, None), None)


def test_resets_at() -> None:
    assert SNAPSHOT.primary is not None
    assert SNAPSHOT.resets_at(SNAPSHOT.primary) == CAPTURED + timedelta(hours=2)
    assert SNAPSHOT.resets_at(Window(1.0)) is None
    assert SNAPSHOT.resets_at(Window(1.0, None, 10**15)) is None  # past datetime.max


def test_load(tmp_path: Path) -> None:
    path = tmp_path / LIMITS_FILENAME
    assert load(path) is None
    path.write_text(json.dumps(SNAPSHOT.to_json()))
    assert load(path) == SNAPSHOT
    for corrupt in (b"{", b"\xff\xfe", b"[]", b"", b"[" * 100_000):
        path.write_bytes(corrupt)
        assert load(path) is None
    assert load(tmp_path) is None  # a directory


def test_limits_path(tmp_path: Path) -> None:
    assert limits_path({"CHATGPT_LOCAL_HOME": str(tmp_path)}) == tmp_path / "usage_limits.json"


# --- UsageLimits ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every document written through write_private_json (still written for real)."""
    seen: list[dict[str, Any]] = []
    real = chatmock.fileio.write_private_json

    def spy(path: Path, document: Any) -> None:
        seen.append(document)
        real(path, document)

    monkeypatch.setattr(chatmock.fileio, "write_private_json", spy)
    return seen


def used(value: float) -> list[tuple[bytes, bytes]]:
    return PLAIN + primary(str(value).encode())


def written_percent(document: dict[str, Any]) -> float:
    return float(document["primary"]["used_percent"])


def test_first_snapshot_is_written_at_once(tmp_path: Path, writes: list[Any]) -> None:
    path = tmp_path / "home" / LIMITS_FILENAME
    limits = UsageLimits(path, clock=FakeClock())
    assert (limits.latest, limits.pending) == (None, False)
    snapshot = limits.record(FULL)
    assert snapshot is not None and limits.latest == snapshot
    assert len(writes) == 1 and not limits.pending
    assert load(path) == snapshot
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_many_records_in_the_quiet_period_make_one_write(tmp_path: Path,
                                                         writes: list[Any]) -> None:
    clock = FakeClock()
    limits = UsageLimits(tmp_path / LIMITS_FILENAME, clock=clock)
    for step in range(50):
        limits.record(used(step))
        clock.now += 0.09  # 50 records within 4.5 s
    assert [written_percent(d) for d in writes] == [0.0]
    assert limits.pending
    latest = limits.latest
    assert latest is not None and latest.primary == Window(49.0)
    assert limits.next_write_in() == pytest.approx(0.5)


def test_pending_snapshot_is_written_after_the_interval(tmp_path: Path,
                                                        writes: list[Any]) -> None:
    clock = FakeClock()
    path = tmp_path / LIMITS_FILENAME
    limits = UsageLimits(path, min_interval=5.0, clock=clock)
    limits.record(used(1))
    clock.now += 1
    limits.record(used(2))
    limits.record(used(3))
    assert limits.next_write_in() == 4.0
    clock.now += 3.999
    assert not limits.poll()
    clock.now += 0.001
    assert limits.next_write_in() == 0.0
    assert limits.poll() and not limits.pending
    assert [written_percent(d) for d in writes] == [1.0, 3.0]
    assert load(path) == limits.latest
    assert not limits.poll() and limits.next_write_in() is None
    # the next record after a further quiet period is written immediately
    clock.now += 5
    limits.record(used(4))
    assert [written_percent(d) for d in writes] == [1.0, 3.0, 4.0]


def test_record_after_the_interval_writes_the_newest(tmp_path: Path, writes: list[Any]) -> None:
    clock = FakeClock()
    limits = UsageLimits(tmp_path / LIMITS_FILENAME, clock=clock)
    limits.record(used(1))
    limits.record(used(2))
    clock.now += 10
    limits.record(used(3))
    assert [written_percent(d) for d in writes] == [1.0, 3.0]
    assert not limits.pending


def test_flush(tmp_path: Path, writes: list[Any]) -> None:
    clock = FakeClock()
    path = tmp_path / LIMITS_FILENAME
    limits = UsageLimits(path, clock=clock)
    limits.flush()
    assert writes == [] and not path.exists()
    limits.record(used(1))
    limits.record(used(2))
    limits.flush()
    assert [written_percent(d) for d in writes] == [1.0, 2.0]
    assert load(path) == limits.latest
    limits.flush()  # nothing pending
    assert len(writes) == 2
    # a flush starts a new quiet period
    limits.record(used(3))
    assert len(writes) == 2 and limits.pending


def test_zero_interval_writes_every_snapshot(tmp_path: Path, writes: list[Any]) -> None:
    limits = UsageLimits(tmp_path / LIMITS_FILENAME, min_interval=0, clock=FakeClock())
    for step in range(3):
        limits.record(used(step))
    assert len(writes) == 3


def test_fast_path_without_limit_headers(tmp_path: Path, writes: list[Any]) -> None:
    def no_clock() -> float:
        raise AssertionError("the clock must not be read for a response without limits")

    path = tmp_path / LIMITS_FILENAME
    limits = UsageLimits(path, clock=no_clock)
    for headers in ([], PLAIN, [(b"x-codex-plan-type", b"plus")], primary(b"nan")):
        assert limits.record(headers) is None
    assert limits.latest is None and not limits.pending
    assert writes == [] and not path.exists()


def test_record_without_limits_keeps_the_previous_snapshot(tmp_path: Path,
                                                           writes: list[Any]) -> None:
    clock = FakeClock()
    limits = UsageLimits(tmp_path / LIMITS_FILENAME, clock=clock)
    snapshot = limits.record(FULL)
    assert limits.record(PLAIN) is None
    assert limits.latest == snapshot and len(writes) == 1


def test_write_failure_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    clock = FakeClock()
    limits = UsageLimits(blocker / LIMITS_FILENAME, clock=clock)
    with caplog.at_level(logging.WARNING, logger="chatmock.limits"):
        assert limits.record(FULL) is not None
        clock.now += 10
        limits.record(used(5))
        limits.record(used(6))
        limits.flush()
    latest = limits.latest
    assert latest is not None and latest.primary == Window(6.0)
    assert not limits.pending
    warnings = [r for r in caplog.records if r.name == "chatmock.limits"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "could not write" in warnings[0].getMessage()


def test_warns_again_after_recovering(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[Callable[[], None]] = []

    def flaky(path: Path, document: Any) -> None:
        outcomes.pop(0)()

    def fail() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(chatmock.fileio, "write_private_json", flaky)
    outcomes += [fail, fail, lambda: None, fail]
    limits = UsageLimits(tmp_path / LIMITS_FILENAME, min_interval=0, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger="chatmock.limits"):
        for step in range(4):
            limits.record(used(step))
    assert outcomes == []
    assert len([r for r in caplog.records if r.name == "chatmock.limits"]) == 2


def test_unexpected_error_from_writer_is_contained(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path, document: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(chatmock.fileio, "write_private_json", broken)
    limits = UsageLimits(tmp_path / LIMITS_FILENAME, clock=FakeClock())
    assert limits.record(FULL) is not None
    limits.flush()


def test_overwrites_atomically_with_newest(tmp_path: Path) -> None:
    path = tmp_path / LIMITS_FILENAME
    path.write_text("stale")
    path.chmod(0o644)
    limits = UsageLimits(path, min_interval=0, clock=FakeClock())
    limits.record(used(77))
    assert load(path) == limits.latest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [LIMITS_FILENAME,
                                                          LIMITS_FILENAME + ".lock"]


async def test_run_writer_writes_a_pending_snapshot(tmp_path: Path, writes: list[Any],
                                                    autojump_clock: trio.abc.Clock) -> None:
    limits = UsageLimits(tmp_path / LIMITS_FILENAME, clock=trio.current_time)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limits.run_writer)
        await trio.sleep(12)  # idle: nothing to write
        assert writes == []
        limits.record(used(1))
        await trio.sleep(1)
        limits.record(used(2))
        assert limits.next_write_in() == 4.0
        await trio.sleep(3.9)
        assert len(writes) == 1
        await trio.sleep(0.2)
        assert [written_percent(d) for d in writes] == [1.0, 2.0]
        assert not limits.pending
        nursery.cancel_scope.cancel()


# --- several processes on one file ----------------------------------------------------------


def test_an_older_snapshot_never_replaces_a_newer_one(tmp_path: Path) -> None:
    """Two workers: the one whose write was held back by the quiet period must not
    put its older snapshot over the newer one the other wrote meanwhile."""
    path = tmp_path / LIMITS_FILENAME
    slow, fast = UsageLimits(path, clock=FakeClock()), UsageLimits(path, clock=FakeClock())
    slow.record(used(1))  # written at once
    slow.record(used(2))  # held back by the quiet period
    fast.record(used(3))  # newer, and fast's first: written at once
    slow.flush()
    on_disk = load(path)
    assert on_disk is not None and on_disk.primary == Window(3.0)
    assert slow.latest == on_disk == slow.newest() and not slow.pending


def test_newest_is_of_this_process_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / LIMITS_FILENAME
    mine, other = UsageLimits(path, clock=FakeClock()), UsageLimits(path, clock=FakeClock())
    assert mine.newest() is None
    mine.record(used(1))
    other.record(used(2))
    current = mine.newest()
    assert current is not None and current.primary == Window(2.0)
    mine.record(used(4))  # newer than the file, not yet written (quiet period)
    current = mine.newest()
    assert current is not None and current.primary == Window(4.0)


def still_pending(limits: UsageLimits) -> bool:
    """Read afresh (a function, so a type checker keeps no narrowing from earlier asserts)."""
    return limits.pending


def test_a_write_while_another_process_holds_the_lock_waits_its_turn(tmp_path: Path) -> None:
    path = tmp_path / LIMITS_FILENAME
    clock = FakeClock()
    limits = UsageLimits(path, clock=clock)
    with chatmock.fileio.file_lock_sync(path.with_name(LIMITS_FILENAME + ".lock"), wait=True):
        # flock locks belong to the open file: another descriptor is another holder
        limits.record(used(5))
        assert limits.pending and load(path) is None
    clock.now += 10
    assert limits.poll() and not still_pending(limits)
    assert load(path) == limits.latest
