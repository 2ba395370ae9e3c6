"""What the account pool remembers: marks on accounts, and which account a conversation is on.

Accounts are named here by their identity (`chatmock.auth.refresh_guard.identity`:
a hash of account and user), so processes that name the same sign-in
differently agree. Two things are kept:

* **marks**: an account cooling down until a moment (a usage limit), and an
  account whose token the backend refused even after a refresh ("needs
  login", remembered with a digest of that token: a new sign-in clears it);
* **affinity**: conversation key -> account identity, so every turn of a
  conversation goes to the account that served it (the backend's prompt
  cache, and the encrypted reasoning it minted, are per account). Entries
  expire `AFFINITY_SECONDS` after their last use.

`MemoryPoolState` (embedded): affinity in this process (bounded, least
recently used out first); marks also in `<home>/accounts/state.json`, written
atomically when they change (rarely) and read back when the file changes, so
the workers of `serve --workers` and `chatmock accounts` see them.

`RedisPoolState` (fleet mode): marks in the hash `chatmock:pool:marks`,
affinity in `chatmock:pool:aff:<key>` with a TTL. A request costs one round
trip (`view`: a Lua script reads the conversation's account, refreshes its
TTL and returns the marks); a new or moved conversation one more (`bind`).
When Redis does not answer, the process goes on with what it knows itself (a
local copy of every mark it made or saw) and says so in the log once.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from chatmock.fileio import file_stamp
from chatmock.net.redis import RedisClient, RedisError, Script

log = logging.getLogger("chatmock.accounts")

AFFINITY_SECONDS = 24 * 3600
AFFINITY_CAPACITY = 100_000
STATE_FILENAME = "state.json"
PREFIX = "chatmock:pool:"
MARKS_KEY = PREFIX + "marks"


@dataclass(frozen=True, slots=True)
class Mark:
    """How an account stands: cooling down until `until` (epoch seconds, with the
    reason), and/or refused at `login` (a digest of the token the backend refused)."""

    until: float = 0.0
    reason: str = ""
    login: str = ""

    def cooling(self, now: float) -> bool:
        return self.until > now

    def to_json(self) -> dict[str, Any]:
        return {"until": self.until, "reason": self.reason, "login": self.login}

    @classmethod
    def from_json(cls, value: Any) -> Mark | None:
        if not isinstance(value, dict):
            return None
        until, reason, login = value.get("until"), value.get("reason"), value.get("login")
        return cls(float(until) if isinstance(until, int | float) else 0.0,
                   reason if isinstance(reason, str) else "",
                   login if isinstance(login, str) else "")


@dataclass(slots=True)
class PoolView:
    """One request's look at the state: the conversation's account, if known, and the marks."""

    owner: str | None = None
    marks: dict[str, Mark] = field(default_factory=dict)


class PoolState(Protocol):
    async def view(self, keys: Sequence[str]) -> PoolView: ...

    async def bind(self, keys: Sequence[str], identity: str) -> None: ...

    async def mark(self, identity: str, mark: Mark) -> None: ...

    async def marks(self) -> dict[str, Mark]: ...

    def known(self) -> dict[str, Mark]:
        """The marks as this process last saw them (no I/O: for the status page)."""
        ...


class Affinity:
    """Conversation key -> identity, bounded and expiring (this process's)."""

    def __init__(self, capacity: int = AFFINITY_CAPACITY, ttl: float = AFFINITY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.capacity, self.ttl, self._clock = capacity, ttl, clock

    def find(self, keys: Sequence[str]) -> str | None:
        now = self._clock()
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                continue
            if entry[1] <= now:
                del self._entries[key]
                continue
            self._entries[key] = (entry[0], now + self.ttl)
            self._entries.move_to_end(key)
            return entry[0]
        return None

    def bind(self, keys: Sequence[str], identity: str) -> None:
        until = self._clock() + self.ttl
        for key in keys:
            self._entries[key] = (identity, until)
            self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class MemoryPoolState:
    """The embedded state; see the module docstring."""

    def __init__(self, path: Path | None = None, *, recheck_seconds: float = 1.0) -> None:
        self.path = path
        self.affinity = Affinity()
        self._marks: dict[str, Mark] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked_at = -1e18
        self._recheck = recheck_seconds

    async def view(self, keys: Sequence[str]) -> PoolView:
        return PoolView(self.affinity.find(keys), self.current_marks())

    async def bind(self, keys: Sequence[str], identity: str) -> None:
        self.affinity.bind(keys, identity)

    async def mark(self, identity: str, mark: Mark) -> None:
        self.current_marks()
        self._marks[identity] = mark
        self._save()

    async def marks(self) -> dict[str, Mark]:
        return self.current_marks()

    def known(self) -> dict[str, Mark]:
        return self.current_marks()

    def current_marks(self) -> dict[str, Mark]:
        """The marks, read again from the file when another process changed it."""
        now = time.monotonic()
        if self.path is None or now - self._checked_at < self._recheck:
            return self._marks
        self._checked_at = now
        stamp = file_stamp(self.path)
        if stamp != self._stamp:
            self._stamp = stamp
            self._marks = read_marks(self.path)
        return self._marks

    def _save(self) -> None:
        if self.path is None:
            return
        from chatmock.fileio import write_private_json  # deferred: it imports trio

        marks = {identity: mark.to_json() for identity, mark in self._marks.items()}
        try:
            write_private_json(self.path, {"marks": marks})
            self._stamp = file_stamp(self.path)
        except OSError as error:
            log.warning("could not write %s: %s", self.path, error)


def read_marks(path: Path) -> dict[str, Mark]:
    """The marks kept in an embedded state file ({} when missing or unreadable)."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    found = document.get("marks") if isinstance(document, dict) else None
    marks = {}
    for identity, value in (found.items() if isinstance(found, dict) else ()):
        mark = Mark.from_json(value)
        if mark is not None:
            marks[str(identity)] = mark
    return marks


# KEYS: the conversation's affinity keys; ARGV[1]: TTL seconds, ARGV[2]: the marks hash.
_VIEW = Script("""
local owner = false
for _, key in ipairs(KEYS) do
  owner = redis.call('GET', key)
  if owner then redis.call('EXPIRE', key, ARGV[1]) break end
end
return {owner, redis.call('HGETALL', ARGV[2])}
""")


class RedisPoolState:
    """The fleet's state in Redis; see the module docstring."""

    def __init__(self, redis: RedisClient, *, ttl: int = AFFINITY_SECONDS) -> None:
        self.redis = redis
        self.ttl = ttl
        self.local = MemoryPoolState()
        self._failing = False

    async def view(self, keys: Sequence[str]) -> PoolView:
        try:
            reply = await self.redis.evaluate(
                _VIEW, [PREFIX + "aff:" + key for key in keys], [self.ttl, MARKS_KEY])
        except RedisError as error:
            self._failed(error)
            return await self.local.view(keys)
        self._failing = False
        owner, flat = reply if isinstance(reply, list) and len(reply) == 2 else (None, None)
        marks = _marks_from(flat)
        self.local._marks.update(marks)
        return PoolView(owner.decode() if isinstance(owner, bytes) else None, marks)

    async def bind(self, keys: Sequence[str], identity: str) -> None:
        await self.local.bind(keys, identity)
        commands = [("SET", PREFIX + "aff:" + key, identity, "EX", self.ttl) for key in keys]
        try:
            await self.redis.pipeline(commands)
        except RedisError as error:
            self._failed(error)

    async def mark(self, identity: str, mark: Mark) -> None:
        await self.local.mark(identity, mark)
        try:
            await self.redis.call("HSET", MARKS_KEY, identity, json.dumps(mark.to_json()))
        except RedisError as error:
            self._failed(error)

    async def marks(self) -> dict[str, Mark]:
        try:
            flat = await self.redis.call("HGETALL", MARKS_KEY)
        except RedisError as error:
            self._failed(error)
            return dict(self.local._marks)
        return _marks_from(flat)

    def known(self) -> dict[str, Mark]:
        return self.local.current_marks()

    def _failed(self, error: RedisError) -> None:
        if not self._failing:
            log.warning("account pool state not shared through Redis (%s): this process "
                        "goes on with its own cooldowns and affinity", error)
        self._failing = True


def _marks_from(flat: Any) -> dict[str, Mark]:
    marks: dict[str, Mark] = {}
    if not isinstance(flat, list):
        return marks
    for name, value in zip(flat[::2], flat[1::2], strict=False):
        try:
            mark = Mark.from_json(json.loads(value))
        except (ValueError, TypeError):
            mark = None
        if mark is not None and isinstance(name, bytes):
            marks[name.decode()] = mark
    return marks


def cooled(mark: Mark | None, until: float, reason: str) -> Mark:
    """`mark` cooling down until `until` (its login state kept)."""
    return replace(mark or Mark(), until=until, reason=reason)
