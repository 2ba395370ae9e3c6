"""A provider gate's permits shared by a fleet: leases in Redis (fleet mode, issue 16).

Per provider two sorted sets, changed only by Lua scripts (each runs atomically
on the server, so no WATCH/MULTI retry loop under contention, and one round
trip per attempt):

* `chatmock:gate:<provider>:held`: holder ids scored by when their lease ends;
* `chatmock:gate:<provider>:queue`: waiting holder ids scored by when they first
  asked, with `...:seen` (scored by their last attempt) to forget waiters that
  stopped asking (their process died or lost Redis).

`_TAKE` (one attempt) first drops expired leases and stale waiters, puts the
holder in the queue if it is not there, and grants a lease only if fewer than
`limit` are held and the holder is among the first `limit - held` in the queue:
across the fleet, waiting requests are served first come, first served. Else it
answers how many permits must come free before the holder's turn (the caller
polls the sooner the nearer its turn).
Within a process the local `Gate` still decides, per client round-robin, which
request asks: only requests holding one of the process's N local permits ask
Redis, so each process has at most N in the fleet queue and one swarm on one
machine cannot starve a person on another.

Times are the Redis server's (`TIME` in the scripts), so the machines' clocks
need not agree. A lease lasts `lease_seconds`; one task per process
(`maintain`) renews every lease the process holds every third of that (one
script per provider, whatever the number of streams) and gives back released
ones at once. A process that dies stops renewing: its leases expire and the
next attempt anywhere drops them, so no permit is lost for longer than a lease.

Releasing is synchronous (`release`, safe in `finally` under cancellation): the
holder id is queued for `maintain`, and the next `take` of this process sends
the queued ones first in its pipeline, so a permit freed here is free in Redis
before the next local attempt. A holder whose `take` was cancelled or failed
mid-call may have been granted without knowing it: it is released the same way
(removing an absent member is harmless).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Sequence
from itertools import count

import trio

from chatmock.net.redis import Command, RedisClient, RedisCommandError, RedisError, Script
from chatmock.net.resp import ReplyError

log = logging.getLogger("chatmock.gate")

PREFIX = "chatmock:gate:"
LEASE_SECONDS = 15.0
STALE_WAITER_SECONDS = 3.0

# KEYS: held, queue, seen. ARGV: limit, lease ms, holder, stale-waiter ms.
_TAKE = Script("""
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit, lease, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]))) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
redis.call('ZADD', KEYS[2], 'NX', now, holder)
redis.call('ZADD', KEYS[3], now, holder)
for i = 2, 3 do redis.call('PEXPIRE', KEYS[i], 2 * lease) end
local ahead = redis.call('ZRANK', KEYS[2], holder) - (limit - redis.call('ZCARD', KEYS[1])) + 1
if ahead > 0 then return ahead end
redis.call('ZREM', KEYS[2], holder)
redis.call('ZREM', KEYS[3], holder)
redis.call('ZADD', KEYS[1], now + lease, holder)
redis.call('PEXPIRE', KEYS[1], 2 * lease)
return 0
""")

# KEYS: held. ARGV: lease ms, holder ids. Returns the ids no longer held (expired, taken).
_RENEW = Script("""
local t = redis.call('TIME')
local ends = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], ends, ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return lost
""")


def keys(provider: str) -> tuple[str, str, str]:
    """The held, queue and seen keys of a provider."""
    base = PREFIX + provider
    return base + ":held", base + ":queue", base + ":seen"


class GateLeases:
    """The process's leases for every provider; see the module docstring."""

    def __init__(self, redis: RedisClient, *, lease_seconds: float = LEASE_SECONDS,
                 stale_waiter_seconds: float = STALE_WAITER_SECONDS) -> None:
        self.redis = redis
        self.lease_ms = math.ceil(lease_seconds * 1000)
        self.stale_ms = math.ceil(stale_waiter_seconds * 1000)
        self.process = secrets.token_hex(6)
        self._serial = count(1)
        self._held: dict[str, set[str]] = {}
        self._released: dict[str, set[str]] = {}
        self._wake = trio.Event()

    def holder(self) -> str:
        """A new holder id, unique across the fleet."""
        return f"{self.process}:{next(self._serial)}"

    def held(self, provider: str) -> int:
        return len(self._held.get(provider, ()))

    async def take(self, provider: str, limit: int, holder: str) -> int:
        """One attempt at a lease for `holder`: 0 if granted, else how many permits must
        come free before its turn. RedisError when Redis cannot answer (the holder is
        then released, in case the script ran)."""
        flushed = self._released.pop(provider, set())
        commands: list[Command] = [["ZREM", key, *flushed] for key in keys(provider)
                                   if flushed]
        commands.append(_TAKE.call(keys(provider), [limit, self.lease_ms, holder,
                                                    self.stale_ms]))
        try:
            reply = (await self.redis.pipeline(commands))[-1]
        except BaseException:
            self._released.setdefault(provider, set()).update(flushed | {holder})
            raise
        if isinstance(reply, ReplyError):
            self._released.setdefault(provider, set()).add(holder)
            raise RedisCommandError(reply)
        if reply == 0:
            self._held.setdefault(provider, set()).add(holder)
            return 0
        return reply if isinstance(reply, int) and reply > 0 else 1

    def release(self, provider: str, holder: str) -> None:
        """Give `holder`'s lease (or place in the queue) back; synchronous, idempotent."""
        self._held.get(provider, set()).discard(holder)
        self._released.setdefault(provider, set()).add(holder)
        self._wake.set()

    async def maintain(self) -> None:
        """Forever: give back released leases at once, renew held ones every third of
        a lease. Run by the server beside the other helper tasks."""
        renew_at = trio.current_time()
        while True:
            with trio.move_on_at(renew_at):
                await self._wake.wait()
            self._wake = trio.Event()
            renewing = trio.current_time() >= renew_at
            if renewing:
                renew_at = trio.current_time() + self.lease_ms / 3000
            await self.sync(renew=renewing)

    async def sync(self, *, renew: bool = True) -> None:
        """One round: the released ids removed, and (if `renew`) the held ones renewed."""
        released, self._released = self._released, {}
        commands: list[Command] = [["ZREM", key, *ids] for provider, ids in released.items()
                                   if ids for key in keys(provider)]
        renewed = [provider for provider, ids in self._held.items() if ids and renew]
        commands += [_RENEW.call([keys(provider)[0]], [self.lease_ms, *self._held[provider]])
                     for provider in renewed]
        try:
            replies = await self.redis.pipeline(commands)
        except BaseException as error:  # kept for the next round (the client logs it)
            for provider, ids in released.items():
                self._released.setdefault(provider, set()).update(ids)
            if isinstance(error, RedisError):
                return
            raise
        self._note_lost(renewed, replies[len(replies) - len(renewed):])

    def _note_lost(self, providers: Sequence[str], replies: Sequence[object]) -> None:
        for provider, lost in zip(providers, replies, strict=True):
            if isinstance(lost, list) and lost:
                log.warning("gate %s: %d lease(s) expired before they were renewed; the "
                            "fleet may run more than its limit until those streams end",
                            provider, len(lost))
                for holder in lost:
                    self._held[provider].discard(holder.decode()
                                                 if isinstance(holder, bytes) else str(holder))
