"""Usage snapshots shared by a fleet through Redis: the newest capture wins.

One hash per ChatGPT account, `chatmock:usage:<account id>`, holding `at` (the
capture time, epoch seconds) and `doc` (the `usage_limits.json` document). A
Lua script replaces it only with a snapshot captured later, so processes that
publish out of order never move the figures back in time; the key expires
after `KEEP_SECONDS` without news (past the weekly window).

`SharedUsage` is the server's: `publish` (the `UsageLimits` sink) and `latest`
(for `/health`). `read_shared_usage` is `chatmock info`'s, a short blocking
read beside no running server. Redis errors never reach a request or the
command: the figures are then this process's own (or the local file's).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

import trio

from chatmock.net.redis import RedisClient, RedisError, Script
from chatmock.redis_url import EMBEDDED, parse_redis_url
from chatmock.state.usage_limits import UsageSnapshot

log = logging.getLogger("chatmock.limits")

KEEP_SECONDS = 8 * 24 * 3600
READ_SECONDS = 2.0
STATE_VARIABLES = ("CHATMOCK_STATE", "CHATGPT_LOCAL_STATE")

_PUBLISH = Script("""
local at = redis.call('HGET', KEYS[1], 'at')
if at and tonumber(at) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'doc', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
""")


def usage_key(account_id: str) -> str:
    return "chatmock:usage:" + (account_id or "unknown")


class SharedUsage:
    """The fleet's usage snapshot of the account `account()` names."""

    def __init__(self, redis: RedisClient, account: Callable[[], str]) -> None:
        self.redis = redis
        self.account = account
        self._failing = False

    async def publish(self, snapshot: UsageSnapshot) -> None:
        document = json.dumps(snapshot.to_json())
        try:
            await self.redis.evaluate(_PUBLISH, [usage_key(self.account())],
                                      [repr(snapshot.captured_at.timestamp()), document,
                                       KEEP_SECONDS])
        except RedisError as error:
            if not self._failing:
                log.warning("usage figures not shared through Redis: %s", error)
            self._failing = True
        else:
            self._failing = False

    async def latest(self) -> UsageSnapshot | None:
        """The fleet's newest snapshot; None if there is none or Redis cannot say."""
        try:
            return await _read(self.redis, self.account())
        except RedisError:
            return None


async def _read(redis: RedisClient, account_id: str) -> UsageSnapshot | None:
    """The stored snapshot (None if none or unreadable); RedisError if Redis cannot say."""
    document = await redis.call("HGET", usage_key(account_id), "doc")
    if not isinstance(document, bytes):
        return None
    try:
        return UsageSnapshot.from_json(json.loads(document))
    except ValueError:
        return None


def read_shared_usage(env: Mapping[str, str], account_id: str) -> UsageSnapshot | None:
    """For `chatmock info`: the fleet's snapshot if the environment names a Redis state
    (a flag given to a running `serve` is not visible here); None otherwise, RedisError
    if that Redis cannot be read (quietly: the caller says so in its own words)."""
    state = next((env[name] for name in STATE_VARIABLES if env.get(name)), EMBEDDED)
    if state.strip().lower() == EMBEDDED:
        return None
    try:
        target = parse_redis_url(state)
    except ValueError:
        return None

    async def read() -> UsageSnapshot | None:
        redis = RedisClient(target, connect_timeout=READ_SECONDS, timeout=READ_SECONDS)
        try:
            return await _read(redis, account_id)
        finally:
            await redis.aclose()

    client_log = logging.getLogger("chatmock.redis")
    level, client_log.level = client_log.level, logging.ERROR
    try:
        return trio.run(read)
    finally:
        client_log.level = level
