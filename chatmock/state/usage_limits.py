"""The backend's rate-limit headers, and `usage_limits.json` where `info` reads them.

Every upstream response may carry `x-codex-{primary,secondary}-*` headers
(upstream.md §10): how much of the 5-hour and the weekly window is used, how
long each window is and when it resets. `UsageLimits.record` is called on
every response, so the common case (no such header) costs one pass over the
header names and nothing else. Snapshots are kept in memory and persisted at
most once per `min_interval` seconds: a busy server would otherwise fsync a
file per request for data that only a human running `chatmock info` reads.

Several processes may share the file (the workers of `serve --workers`, or
other chatmock servers with the same home): a write happens under an exclusive
lock on `usage_limits.json.lock`, and only if the file does not already hold a
newer snapshot, which is then adopted instead. So the file always holds the
newest snapshot any of them saw, `chatmock info` reads that, and `newest()`
gives a process the newest one, its own or another's.

In fleet mode (`--state redis://...`) each snapshot is also shared through
Redis (`usage_shared`), newest capture wins, so `info` and `/health` on any
instance show the same figures: `run_writer` publishes the latest snapshot and
reads the fleet's back (`fleet`), at most once per `min_interval` each, so
`newest()` answers without I/O (figures agree within that interval).

The file layout is shared with the reference proxies (ChatMock writes
`captured_at` with `+00:00`, go-chatmock with `Z`), so both forms are read.

This module deliberately does not import trio (nor `chatmock.fileio`, which
does) at import time: `chatmock info` loads snapshots through it and should
start fast.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from chatmock.config import home_dir

log = logging.getLogger("chatmock.limits")

LIMITS_FILENAME = "usage_limits.json"
DEFAULT_MIN_INTERVAL = 5.0

_PREFIX = b"x-codex-"
# header name -> (window, field)
_HEADERS: dict[bytes, tuple[str, str]] = {
    _PREFIX + window.encode() + b"-" + suffix: (window, field)
    for window in ("primary", "secondary")
    for suffix, field in ((b"used-percent", "used_percent"),
                          (b"window-minutes", "window_minutes"),
                          (b"reset-after-seconds", "resets_in_seconds"))
}


@dataclass(frozen=True, slots=True)
class Window:
    """One rate-limit window as the backend reported it."""

    used_percent: float
    window_minutes: int | None = None
    resets_in_seconds: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"used_percent": self.used_percent, "window_minutes": self.window_minutes,
                "resets_in_seconds": self.resets_in_seconds}

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> Window | None:
        """A window from header values or a JSON object; None without a finite used_percent."""
        used = _finite_float(fields.get("used_percent"))
        if used is None:
            return None
        return cls(used, _integer(fields.get("window_minutes")),
                   _integer(fields.get("resets_in_seconds")))


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """Both windows at one moment; `captured_at` is an aware UTC datetime."""

    captured_at: datetime
    primary: Window | None = None
    secondary: Window | None = None

    def to_json(self) -> dict[str, Any]:
        """The `usage_limits.json` document (upstream.md §10); absent windows are left out."""
        document: dict[str, Any] = {
            "captured_at": self.captured_at.astimezone(UTC).isoformat(timespec="microseconds"),
        }
        if self.primary is not None:
            document["primary"] = self.primary.to_json()
        if self.secondary is not None:
            document["secondary"] = self.secondary.to_json()
        return document

    @classmethod
    def from_json(cls, document: object) -> UsageSnapshot | None:
        """Read a document written by us or go-chatmock; None if it holds no usable snapshot."""
        if not isinstance(document, dict):
            return None
        captured_at = _parse_timestamp(document.get("captured_at"))
        if captured_at is None:
            return None
        primary, secondary = (_window_from_json(document.get(key))
                              for key in ("primary", "secondary"))
        if primary is None and secondary is None:
            return None
        return cls(captured_at, primary, secondary)

    def resets_at(self, window: Window) -> datetime | None:
        """When `window` resets: capture time plus the reported delay."""
        if window.resets_in_seconds is None:
            return None
        try:
            return self.captured_at + timedelta(seconds=window.resets_in_seconds)
        except OverflowError:
            return None


def parse_limit_headers(headers: Iterable[tuple[bytes, bytes]], *,
                        now: datetime | None = None) -> UsageSnapshot | None:
    """The snapshot carried by a response's headers (lower-case names), or None.

    A window exists only if its used-percent is a finite number; the snapshot
    exists only if at least one window does.
    """
    found: dict[str, dict[str, bytes]] | None = None
    for name, value in headers:
        if name.startswith(_PREFIX):
            slot = _HEADERS.get(name)
            if slot is not None:
                found = found if found is not None else {}
                found.setdefault(slot[0], {})[slot[1]] = value
    if found is None:
        return None
    primary = Window.from_fields(found.get("primary", {}))
    secondary = Window.from_fields(found.get("secondary", {}))
    if primary is None and secondary is None:
        return None
    return UsageSnapshot(now.astimezone(UTC) if now is not None else datetime.now(UTC),
                         primary, secondary)


def limits_path(env: Mapping[str, str]) -> Path:
    """`<home>/usage_limits.json` for the given environment."""
    return home_dir(env) / LIMITS_FILENAME


def load(path: Path) -> UsageSnapshot | None:
    """The snapshot stored at `path`; None if the file is missing, unreadable or corrupt."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return UsageSnapshot.from_json(document)


class UsageSink(Protocol):
    """Where snapshots are shared beyond this process (fleet mode)."""

    async def publish(self, snapshot: UsageSnapshot) -> None: ...

    async def latest(self) -> UsageSnapshot | None: ...


def newest(*snapshots: UsageSnapshot | None) -> UsageSnapshot | None:
    """The snapshot captured last (None if none is given)."""
    found = [snapshot for snapshot in snapshots if snapshot is not None]
    return max(found, key=lambda snapshot: snapshot.captured_at) if found else None


class UsageLimits:
    """The latest snapshot in memory, persisted to `path` at most once per `min_interval`.

    A snapshot recorded during the quiet period after a write stays pending and
    is written by the next `record` or `poll` after the period, or by `flush`
    (call it at shutdown). `run_writer` is an optional trio task that polls so
    a pending snapshot reaches the file even if no further response arrives.
    Writes are synchronous (a few hundred bytes) and never raise: a failure is
    logged as a warning once, until a write succeeds again.
    """

    def __init__(self, path: Path, *, min_interval: float = DEFAULT_MIN_INTERVAL,
                 clock: Callable[[], float] = time.monotonic,
                 shared: UsageSink | None = None) -> None:
        self.path = path
        self.min_interval = min_interval
        self.shared = shared
        self.latest: UsageSnapshot | None = None
        self.fleet: UsageSnapshot | None = None  # the fleet's, as last read
        self._unshared = False
        self._clock = clock
        self._pending = False
        self._written_at: float | None = None
        self._failing = False
        self._file_stamp: tuple[int, int] | None = None
        self._on_disk: UsageSnapshot | None = None

    @property
    def pending(self) -> bool:
        """Whether the latest snapshot has not been written yet."""
        return self._pending

    def record(self, headers: Iterable[tuple[bytes, bytes]]) -> UsageSnapshot | None:
        """Keep the snapshot carried by `headers` (if any) and write it when allowed."""
        snapshot = parse_limit_headers(headers)
        if snapshot is None:
            return None
        self.latest = snapshot
        self._pending = True
        self._unshared = self.shared is not None
        self.poll()
        return snapshot

    def next_write_in(self) -> float | None:
        """Seconds until the pending snapshot may be written (0 if now); None if none pending."""
        if not self._pending:
            return None
        if self._written_at is None:
            return 0.0
        return max(0.0, self._written_at + self.min_interval - self._clock())

    def poll(self) -> bool:
        """Write the pending snapshot if the quiet period is over; True if a write was tried."""
        if self.next_write_in() != 0.0:
            return False
        self._write()
        return True

    def flush(self) -> None:
        """Write the pending snapshot now, whatever the throttle says (waiting for the
        lock if another process writes at that moment)."""
        if self._pending:
            self._write(wait=True)

    def newest(self) -> UsageSnapshot | None:
        """The newest snapshot: this process's, a newer one another process wrote to
        the file (read again only when it changed), or the fleet's (Redis)."""
        return newest(self.latest, self._from_file(), self.fleet)

    def _from_file(self) -> UsageSnapshot | None:
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if stamp != self._file_stamp:
            self._file_stamp = stamp
            self._on_disk = load(self.path) if stamp is not None else None
        return self._on_disk

    async def run_writer(self) -> NoReturn:
        """Background task: write pending snapshots once their quiet period has passed.

        Uses trio's clock for sleeping and the injected clock for the throttle,
        so pass `clock=trio.current_time` when testing with a mock clock.
        """
        import trio  # deferred: see the module docstring

        while True:
            delay = self.next_write_in()
            await trio.sleep(max(self.min_interval, 1.0) if delay is None else delay)
            self.poll()
            await self.share()

    async def share(self) -> None:
        """Publish the latest snapshot through the `shared` sink, if not done yet, and
        read the fleet's."""
        if self.shared is None:
            return
        if self._unshared and self.latest is not None:
            self._unshared = False
            await self.shared.publish(self.latest)
        self.fleet = await self.shared.latest() or self.fleet

    def _write(self, *, wait: bool = False) -> None:
        """Write the latest snapshot unless the file holds a newer one; if another
        process holds the lock (and not `wait`), try again after the quiet period."""
        from chatmock.fileio import file_lock_sync  # deferred: it imports trio

        snapshot = self.latest
        self._pending = False
        self._written_at = self._clock()
        if snapshot is None:
            return
        try:
            with file_lock_sync(self.path.with_name(LIMITS_FILENAME + ".lock"),
                                wait=wait) as held:
                if held:
                    self._replace_if_newer(snapshot)
                else:
                    self._pending = True
        except Exception as exc:  # never into the request path
            if not self._failing:
                log.warning("could not write %s: %s", self.path, exc)
            self._failing = True
        else:
            self._failing = False


    def _replace_if_newer(self, snapshot: UsageSnapshot) -> None:
        from chatmock.fileio import write_private_json

        on_disk = load(self.path)
        if on_disk is not None and on_disk.captured_at >= snapshot.captured_at:
            self.latest = on_disk
            return
        write_private_json(self.path, snapshot.to_json())


def _newer(first: UsageSnapshot | None, second: UsageSnapshot | None) -> UsageSnapshot | None:
    if first is None or (second is not None and second.captured_at > first.captured_at):
        return second
    return first


def _finite_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, bytes | str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _integer(value: object) -> int | None:
    """An int from a header value or JSON number; integral floats (300.0) count."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, bytes | str):
        try:
            return int(value.strip())
        except ValueError:
            return _integer(_finite_float(value))
    return None


def _window_from_json(value: object) -> Window | None:
    return Window.from_fields(value) if isinstance(value, dict) else None


def _parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 / RFC 3339 (`+00:00` or `Z`); naive means UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
