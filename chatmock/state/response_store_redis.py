"""The Redis `AsyncResponseStore`: every process of a fleet chains on every turn.

Keys (one database per fleet; `--state redis://host:port/db`):

    chatmock:turn:<response id>  "<created_at> <item id> <item id>...\\n" + body
    chatmock:item:<item id>      "<response id>\\n" + item body

Bodies are the SQLite store's (`turn_codec`: compact JSON, zlib level 1). A
turn's output items are also written on their own, for `find_items`.

Writing: `put` sends the turn and its items in one pipeline (SET ... PX ttl,
one round trip) and returns once Redis has them: the route calls it before the
terminal event reaches the client, so a chained request sent to any other
process the moment the client sees `response.completed` finds the turn.
Encoding runs in a worker thread (a long agent context is milliseconds of
JSON and zlib); nothing else does.

Reading: one Lua script (`_TOUCH`) reads a turn and, in the same step,
refreshes its TTL and its items' (TTL counts from the last access, as in the
other stores); given an item key instead, it refreshes the item's turn and
siblings and answers the item only if its turn still lives. A request's whole
`StoreQuery` (its previous turn and every item id) is one pipeline, one round
trip. Bodies over `DECODE_INLINE_BYTES` are decompressed in a worker thread.

Bounds: each key expires `ttl_seconds` after its last access. Redis cannot
cheaply count a fleet's turns or bytes per write, so `capacity` is not
enforced here and `max_bytes` refuses only a single turn larger than it; the
fleet's bound is Redis's own `maxmemory` with an evicting policy (README:
`volatile-lru`; every key here has a TTL). Under `noeviction` a full Redis
answers writes with OOM: logged as an error, the turn is not kept.

Redis down: a request that needs a stored turn or item gets `StoreUnavailable`
(503 in its dialect, with Retry-After); a request that needs none is not
affected. A turn that could not be written is kept in this process (bounded,
`UNSENT_TURNS`), found by this process's look-ups, and sent along with the
next write, or by `maintain` (the server runs it beside the listeners) as
soon as Redis answers again; what overflows that bound, or is still unsent at
shutdown, is logged as lost.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import trio

from chatmock.errors import ApiError
from chatmock.net.redis import Command, RedisClient, RedisError, RedisUnavailable, Script
from chatmock.net.resp import Reply, ReplyError
from chatmock.state.response_store import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TTL_SECONDS,
    indexed_items,
)
from chatmock.state.turn_codec import decode_item, decode_turn, encode_item, encode_turn
from chatmock.turns import Item, StoreAnswer, StoredResponse, StoreQuery

log = logging.getLogger("chatmock.responses")

PREFIX = "chatmock:"
DECODE_INLINE_BYTES = 16 * 1024
UNSENT_TURNS = 1000
RESEND_SECONDS = 0.5
_KEYABLE = re.compile(r"[\x21-\x7e]{1,256}")  # ids that fit the header and a key as they are

_TOUCH = Script("""
local function touch(key)
  local value = redis.call('GET', key)
  if not value then return nil end
  redis.call('PEXPIRE', key, ARGV[1])
  local stop = string.find(value, '\\n', 1, true)
  local first = true
  for word in string.gmatch(string.sub(value, 1, (stop or 1) - 1), '%S+') do
    if first then first = false
    else redis.call('PEXPIRE', ARGV[2] .. 'item:' .. word, ARGV[1]) end
  end
  return value
end
if ARGV[3] == 'turn' then return touch(KEYS[1]) or false end
local item = redis.call('GET', KEYS[1])
if not item then return false end
local stop = string.find(item, '\\n', 1, true)
if not stop or not touch(ARGV[2] .. 'turn:' .. string.sub(item, 1, stop - 1)) then
  return false
end
return item
""")


class StoreUnavailable(ApiError):
    """The shared store cannot be reached: a chained request cannot be served now."""

    status = 503


class RedisResponseStore:
    """See the module docstring."""

    def __init__(self, redis: RedisClient, *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.redis = redis
        self._ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        self._max_bytes = max_bytes
        # written by no one yet: response id -> (entry, its write commands)
        self._unsent: OrderedDict[str, tuple[StoredResponse, list[Command]]] = OrderedDict()

    # -- writing

    async def put(self, entry: StoredResponse) -> None:
        try:
            commands = await trio.to_thread.run_sync(self._commands, entry)
        except (TypeError, ValueError, RecursionError) as error:
            log.warning("response %s cannot be stored: %s", entry.response_id, error)
            return
        if commands is None:
            return
        backlog = list(self._unsent.items())
        batch = commands + [command for _, (_, sent) in backlog for command in sent]
        try:
            replies = await self.redis.pipeline(batch)
        except RedisUnavailable as error:
            self._keep_unsent(entry, commands, error)
            return
        for response_id, pending in backlog:
            if self._unsent.get(response_id) is pending:
                del self._unsent[response_id]
        self._check_replies(entry, replies)

    def _commands(self, entry: StoredResponse) -> list[Command] | None:
        """The SETs of a turn and its items (runs in a worker thread)."""
        items = [(item_id, encode_item(item)) for item_id, item in indexed_items(entry)
                 if _KEYABLE.fullmatch(item_id)]
        header = " ".join([repr(float(entry.created_at)), *(item_id for item_id, _ in items)])
        value = header.encode() + b"\n" + encode_turn(entry)
        size = len(value) + sum(len(body) for _, body in items)
        if size > self._max_bytes:
            log.warning("response %s (%d bytes compressed) is larger than "
                        "--responses-max-bytes; not stored", entry.response_id, size)
            return None
        rid = entry.response_id.encode()
        commands: list[Command] = [["SET", PREFIX + "turn:" + entry.response_id, value,
                                    "PX", self._ttl_ms]]
        commands += [["SET", PREFIX + "item:" + item_id, rid + b"\n" + body, "PX", self._ttl_ms]
                     for item_id, body in items]
        return commands

    def _keep_unsent(self, entry: StoredResponse, commands: list[Command],
                     error: RedisUnavailable) -> None:
        self._unsent[entry.response_id] = (entry, commands)
        log.warning("response %s is kept in this process until Redis answers again "
                    "(%d waiting): %s", entry.response_id, len(self._unsent), error)
        while len(self._unsent) > UNSENT_TURNS:
            lost, _ = self._unsent.popitem(last=False)
            log.error("response %s is lost: Redis stayed unavailable for %d newer turns",
                      lost, UNSENT_TURNS)

    def _check_replies(self, entry: StoredResponse, replies: list[Reply]) -> None:
        refused = next((reply for reply in replies if isinstance(reply, ReplyError)), None)
        if refused is not None:
            log.error("Redis refused to store response %s: %s (a full Redis needs an "
                      "evicting maxmemory-policy such as volatile-lru)", entry.response_id,
                      refused.message)

    # -- reading

    async def look_up(self, query: StoreQuery) -> StoreAnswer:
        pending = self._unsent.get(query.previous_id) if query.previous_id else None
        previous = pending[0] if pending else None
        items = self._unsent_items(query.item_ids)
        wanted_turn = query.previous_id if previous is None else None
        wanted_items = [item_id for item_id in dict.fromkeys(query.item_ids)
                        if item_id not in items and _KEYABLE.fullmatch(item_id)]
        commands: list[Command] = [_TOUCH.call([PREFIX + "item:" + item_id],
                                               [self._ttl_ms, PREFIX, "item"])
                                   for item_id in wanted_items]
        if wanted_turn is not None:
            commands.append(_TOUCH.call([PREFIX + "turn:" + wanted_turn],
                                        [self._ttl_ms, PREFIX, "turn"]))
        if not commands:
            return StoreAnswer(previous, items)
        replies = await self._read(commands)
        if wanted_turn is not None:
            previous = await self._decode_turn(wanted_turn, replies.pop())
        for item_id, reply in zip(wanted_items, replies, strict=True):
            item = _item(item_id, reply)
            if item is not None:
                items[item_id] = item
        return StoreAnswer(previous, items)

    async def _read(self, commands: list[Command]) -> list[Reply]:
        try:
            replies = await self.redis.pipeline(commands)
        except RedisUnavailable as error:
            wait = max(1, math.ceil(self.redis.retry_in))
            raise StoreUnavailable(
                "chatmock's shared state (Redis) is unavailable, so previous_response_id "
                "and stored items cannot be resolved now; retry shortly", status=503,
                code="state_unavailable", headers=((b"retry-after", b"%d" % wait),),
            ) from error
        for reply in replies:
            if isinstance(reply, ReplyError):
                log.error("Redis refused a response store read: %s", reply.message)
        return replies

    async def _decode_turn(self, response_id: str, reply: Reply) -> StoredResponse | None:
        if not isinstance(reply, bytes):
            return None
        header, newline, body = reply.partition(b"\n")
        words = header.split(b" ", 1)
        try:
            created_at = float(words[0])
        except ValueError:
            created_at = math.nan
        if not newline or not math.isfinite(created_at):
            log.warning("stored response %s has an unreadable header", response_id)
            return None
        if len(body) <= DECODE_INLINE_BYTES:
            return decode_turn(response_id, created_at, body)
        return await trio.to_thread.run_sync(decode_turn, response_id, created_at, body)

    def _unsent_items(self, item_ids: Collection[str]) -> dict[str, Item]:
        if not self._unsent or not item_ids:
            return {}
        wanted = set(item_ids)
        return {item_id: item for entry, _ in self._unsent.values()
                for item_id, item in indexed_items(entry) if item_id in wanted}

    # -- the rest

    def health(self) -> dict[str, Any]:
        return {"kind": "redis", "redis": str(self.redis.target),
                "available": self.redis.available, "unsent": len(self._unsent)}

    async def maintain(self) -> None:
        """Background task: say at start whether Redis answers and how it is bounded, then
        send the unsent turns once Redis answers again."""
        await self._announce()
        while True:
            await trio.sleep(max(RESEND_SECONDS, self.redis.retry_in))
            if self._unsent and self.redis.available:
                await self._send_unsent()

    async def _announce(self) -> None:
        try:
            memory = await self.redis.call("INFO", "memory")
        except RedisError as error:
            log.warning("fleet mode: Redis does not answer yet (%s); requests that chain on "
                        "a stored turn get a 503 until it does", error)
            return
        log.info("fleet mode: turns, token refreshes and usage figures are shared through "
                 "Redis at %s", self.redis.target)
        fields = dict(line.split(":", 1) for line in _text(memory).splitlines() if ":" in line)
        if fields.get("maxmemory", "0") == "0" or fields.get("maxmemory_policy") == "noeviction":
            log.warning("Redis has maxmemory %s with policy %s: stored turns are bounded by "
                        "their TTL only (set maxmemory and maxmemory-policy volatile-lru)",
                        fields.get("maxmemory", "?"), fields.get("maxmemory_policy", "?"))

    async def _send_unsent(self) -> bool:
        backlog = list(self._unsent.items())
        try:
            await self.redis.pipeline([command for _, (_, sent) in backlog for command in sent])
        except RedisUnavailable:
            return False
        for response_id, pending in backlog:
            if self._unsent.get(response_id) is pending:
                del self._unsent[response_id]
        log.info("%d responses kept during the Redis outage are now written", len(backlog))
        return True

    async def aclose(self) -> None:
        """Send what is still unsent, once; what Redis does not take is logged as lost."""
        if self._unsent and not await self._send_unsent():
            log.error("%d responses were never written to Redis and are lost",
                      len(self._unsent))
        self._unsent.clear()


def _item(item_id: str, reply: Reply) -> Item | None:
    if not isinstance(reply, bytes):
        return None
    _, newline, body = reply.partition(b"\n")
    return decode_item(item_id, body) if newline else None


def _text(reply: Reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else ""
