"""The soak's traffic: one runner per kind of exchange, workers that draw them at random
(seeded), the 429 storms, and the ledger of what happened.

Kinds (`RUNNERS`, with their weights): `normal` requests over every dialect, streamed or
not, most answered in full, some failed by the backend (`fake:cut`, `fake:fail`,
`fake:late_error`, a 5xx, a 429); `chain`, Responses turns linked by
`previous_response_id`; `websocket`, Responses over a WebSocket; `disconnect`, a client
that leaves before the head, mid-stream, during an hour-long backend silence, at once, or
from a WebSocket; `slow`, a client that reads a byte at a time, pauses, or trickles its
request; `malformed` (see soak_malformed). The storm task fires bursts of 20 to 60
concurrent requests that the fake answers 429 (`fake:error=429`, `fake:usage_limit=...`).

Every exchange is recorded as an `Outcome`. What the fake should have counted follows from
them: `streams` (played to their end) and `left` (a client left while the fake had its
stream open: `reached`; right after sending, when chatmock may not have reached the fake
yet: `at-once`).
"""

from __future__ import annotations

import contextlib
import math
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
from soak_http import Client, Reply, WebSocket, json_bytes, request_bytes
from soak_kinds import (
    APIS,
    MODEL,
    SILENCE_MS,
    SUCCESS,
    Api,
    Ask,
    ask,
    ask_429,
    ask_ok,
    numbers_complete,
    problem,
    ws_problem,
)
from soak_malformed import HEALTH, draw
from wire import ProtocolError

REQUEST_DEADLINE = 90.0
"""Longer than any exchange takes (a 5 s pause, a 2,000-delta answer): past it, a hang."""
_RESPONSE_ID = re.compile(rb'"id":"(resp_[^"]+)"')
EXCHANGE_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError,
                   ValueError)


@dataclass
class Outcome:
    kind: str
    name: str
    problem: str | None = None
    status: int | None = None
    streams: int = 0
    """Event streams the fake must have played to their end for this exchange."""
    left: str | None = None
    """`reached` or `at-once`: the client left while its answer was pending."""
    allowed_5xx: bool = False
    stream_api: str | None = None
    """The dialect whose stream ending this exchange checked."""


@dataclass
class Ledger:
    kinds: Counter[str] = field(default_factory=Counter)
    names: Counter[str] = field(default_factory=Counter)
    streams_checked: Counter[str] = field(default_factory=Counter)
    five_xx: Counter[str] = field(default_factory=Counter)
    left: Counter[str] = field(default_factory=Counter)
    slowest: dict[str, tuple[float, str]] = field(default_factory=dict)
    """The longest exchange of each kind, in seconds, and what it was."""
    streams: int = 0
    failures: int = 0
    first_failures: list[str] = field(default_factory=list)

    def record(self, outcome: Outcome, seconds: float) -> None:
        """One exchange; `seconds` since its runner started."""
        if seconds > self.slowest.get(outcome.kind, (0.0, ""))[0]:
            self.slowest[outcome.kind] = (seconds, outcome.name)
        self.kinds[outcome.kind] += 1
        self.names[f"{outcome.kind}: {outcome.name}"] += 1
        self.streams += outcome.streams
        if outcome.left:
            self.left[outcome.left] += 1
        if outcome.status is not None and outcome.status >= 500:
            self.five_xx["upstream's own" if outcome.allowed_5xx else "unexpected"] += 1
            if not outcome.allowed_5xx and outcome.problem is None:
                outcome.problem = f"unexpected {outcome.status}"
        if outcome.stream_api and outcome.problem is None:
            self.streams_checked[outcome.stream_api] += 1
        if outcome.problem is not None:
            self.failures += 1
            if len(self.first_failures) < 30:
                self.first_failures.append(f"{outcome.kind}: {outcome.name}: {outcome.problem}")


class Worker:
    """One client of many: draws exchanges with its own seeded random generator and
    keeps one keep-alive connection for the normal requests."""

    def __init__(self, port: int, ledger: Ledger, rng: random.Random) -> None:
        self.port, self.ledger, self.rng = port, ledger, rng
        self.conn: Client | None = None
        self.started = 0.0

    async def run_until(self, deadline: float, kinds: tuple[str, ...] = (),
                        exchanges: float = math.inf) -> None:
        """Exchanges of the `kinds` named (all when empty) until `deadline`, or until the
        ledger counts `exchanges`."""
        mix = {r: w for r, w in RUNNERS.items() if not kinds or r.__name__ in kinds}
        runners, weights = list(mix), list(mix.values())
        ledger = self.ledger
        while trio.current_time() < deadline and ledger.kinds.total() < exchanges:
            await self.run(self.rng.choices(runners, weights)[0])
            await trio.sleep(self.rng.uniform(0, 0.02))
        await self.drop()

    async def run(self, runner: Callable[[Worker], Awaitable[None]]) -> None:
        kind = runner.__name__
        self.started = trio.current_time()
        try:
            with trio.fail_after(REQUEST_DEADLINE):
                await runner(self)
        except trio.TooSlowError:
            self.record(Outcome(kind, "hang", f"no end after {REQUEST_DEADLINE:g} s"))
            await self.drop()
        except EXCHANGE_ERRORS as exc:
            self.record(Outcome(kind, "exchange failed", f"{type(exc).__name__}: {exc}"))
            await self.drop()

    def record(self, outcome: Outcome) -> None:
        self.ledger.record(outcome, trio.current_time() - self.started)

    async def exchange(self, raw: bytes) -> Reply:
        """One request on the worker's keep-alive connection (a new one if needed)."""
        if self.conn is None:
            self.conn = await Client.connect(self.port)
        try:
            await self.conn.send(raw)
            reply = await self.conn.reply()
        except BaseException:
            await self.drop()
            raise
        if not reply.head.keep_alive:
            await self.drop()
        return reply

    async def drop(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.aclose()

    def api_request(self, api_name: str, prompt: str, stream: bool, **extra: object) -> bytes:
        api = APIS[api_name]
        body = {**api.build(prompt, stream), **extra}
        return request_bytes(self.port, "POST", api.path, json_bytes(body), api.headers)


def _mode(stream: bool) -> str:
    return "stream" if stream else "whole"


def checked(api_name: str, ask_: Ask, stream: bool, reply: Reply, kind: str,
            name: str) -> Outcome:
    """The outcome of one HTTP exchange with a generating route."""
    found = problem(APIS[api_name], ask_, stream, reply)
    return Outcome(kind, name, found, reply.status, int(ask_.plays_stream),
                   allowed_5xx=ask_.upstream_5xx,
                   stream_api=api_name if stream and reply.status == 200 else None)


# --- the runners -----------------------------------------------------------------------


async def normal(w: Worker) -> None:
    api, stream = w.rng.choice(list(APIS)), w.rng.random() < 0.6
    ask_ = ask(w.rng, stream)
    reply = await w.exchange(w.api_request(api, ask_.prompt, stream))
    w.record(checked(api, ask_, stream, reply, "normal", f"{api} {_mode(stream)} {ask_.label}"))


async def chain(w: Worker) -> None:
    """2 to 4 Responses turns, each chained on the previous one's id."""
    previous: str | None = None
    for turn in range(1, w.rng.randint(2, 4) + 1):
        stream, ask_ = w.rng.random() < 0.5, ask_ok(w.rng)
        extra = {"previous_response_id": previous} if previous else {}
        reply = await w.exchange(w.api_request("responses", ask_.prompt, stream, **extra))
        outcome = checked("responses", ask_, stream, reply, "chain",
                          f"turn {min(turn, 3)}{'+' if turn >= 3 else ''} {_mode(stream)}")
        found = _RESPONSE_ID.search(reply.body)
        if outcome.problem is None and found is None:
            outcome.problem = "no response id to chain on"
        w.record(outcome)
        if outcome.problem is not None or found is None:
            return
        previous = found[1].decode()


async def websocket(w: Worker) -> None:
    """1 to 3 `response.create`s on one socket, some chained, some failed upstream."""
    ws = await WebSocket.connect(w.port)
    try:
        previous: str | None = None
        for _ in range(w.rng.randint(1, 3)):
            ask_ = ask(w.rng, True, w.rng.choice(("ok", "ok", "ok", "cut", "fail", "429")))
            fields: dict[str, object] = {"model": MODEL, "input": ask_.prompt}
            if previous and w.rng.random() < 0.5:
                fields["previous_response_id"] = previous
            events = await ws.create(fields)
            last = events[-1]
            status = last.get("status_code") if last.get("type") == "error" else 200
            w.record(Outcome("websocket", f"create {ask_.label}", ws_problem(ask_, events),
                             status if isinstance(status, int) else None,
                             int(ask_.plays_stream),
                             allowed_5xx=ask_.upstream_5xx or ask_.end != SUCCESS,
                             stream_api="responses-websocket"))
            if last.get("type") == "response.completed":
                previous = (last.get("response") or {}).get("id")
    finally:
        with trio.move_on_after(5):
            await ws.close()


SILENT_START = f"soak fake:first_delay_ms={SILENCE_MS}"
SILENT_STREAM = f"soak fake:delay_ms={SILENCE_MS}"
ENDLESS_STREAM = "soak fake:deltas=100000 fake:delay_ms=10"


async def disconnect(w: Worker) -> None:
    """Leave at a random point while the backend is still answering."""
    point = w.rng.choice(("before the head", "mid-stream", "in a silence", "at once",
                          "websocket"))
    reset = w.rng.random() < 0.5
    name = f"leave {point} ({'rst' if reset else 'fin'})"
    if point == "websocket":
        await leave_websocket(w, reset)
        return
    api, stream = w.rng.choice(list(APIS)), point in ("mid-stream", "in a silence")
    prompt = {"mid-stream": ENDLESS_STREAM, "in a silence": SILENT_STREAM}.get(point,
                                                                               SILENT_START)
    client = await Client.connect(w.port)
    status = None
    try:
        await client.send(w.api_request(api, prompt, stream or w.rng.random() < 0.5))
        if point == "mid-stream":  # the head comes with the first deltas
            status = (await client.read_head()).status
        if point != "at once":
            await client.read_for(w.rng.uniform(0.3, 2.0))
    finally:
        await client.leave(reset=reset)
    w.record(Outcome("disconnect", f"{api} {name}", _left_problem(point, status, client.buf),
                     left="at-once" if point == "at once" else "reached"))


def _left_problem(point: str, status: int | None, received: bytearray) -> str | None:
    """Before the head nothing may have come; else a head, if one came, says 200 (a silence
    from the start may keep the head back: chat, Responses and Anthropic send it at once,
    the others with their first keep-alive, 15 s on)."""
    if point == "before the head" and received:
        return f"answered during the backend's silence: {bytes(received[:120])!r}"
    if status is None and received.startswith(b"HTTP/1.1 "):
        status = int(received[9:12])
    return None if status in (None, 200) else f"status {status}: {bytes(received[:120])!r}"


async def leave_websocket(w: Worker, reset: bool) -> None:
    how = w.rng.choice(("close frame", "rst" if reset else "fin"))
    ws = await WebSocket.connect(w.port)
    try:
        await ws.send_json({"type": "response.create", "model": MODEL, "input": SILENT_STREAM})
        first = await ws.receive_json()
    finally:
        if how == "close frame":
            with trio.move_on_after(5):
                await ws.close()
        await ws.client.leave(reset=how == "rst")
    found = None if first.get("type") == "response.created" else f"first event {first}"
    w.record(Outcome("disconnect", f"websocket leave mid-response ({how})", found,
                     left="reached"))


async def slow(w: Worker) -> None:
    """A client that reads a byte at a time, pauses 1-5 s mid-answer, or trickles its
    request; the answer must still be whole."""
    how = w.rng.choice(("byte at a time", "pausing", "trickled request"))
    api, stream = w.rng.choice(list(APIS)), how != "trickled request" or w.rng.random() < 0.5
    ask_ = ask_ok(w.rng, w.rng.randint(5, 30))
    options: dict[str, object] = {}
    if how == "byte at a time":
        options["receive_size"] = 1
    elif how == "pausing":
        ask_ = Ask("ok", "soak fake:deltas=2000 fake:burst=100 fake:delay_ms=5", 200, SUCCESS,
                   2000)
        options["pause"] = (w.rng.randint(1000, 30000), w.rng.uniform(1.0, 5.0))
    client = await Client.connect(w.port, **options)
    try:
        raw = w.api_request(api, ask_.prompt, stream)
        if how == "trickled request":
            await client.send(raw, piece=w.rng.randint(1, 16), gap=0.002)
        else:
            await client.send(raw)
        reply = await client.reply()
    finally:
        await client.aclose()
    w.record(checked(api, ask_, stream, reply, "slow", f"{how} ({api} {_mode(stream)})"))


async def malformed(w: Worker) -> None:
    bad = draw(w.rng, w.port)
    client = await Client.connect(w.port)
    try:
        reply = await _reply_while_sending(client, bad.raw)
        found = _malformed_problem(bad.statuses, bad.api, bad.may_play, reply)
        if found is None and bad.closes:
            rest = await client.until_closed(5.0)
            found = f"answered more after the fault: {rest[:120]!r}" if rest else None
        elif found is None and reply.head.keep_alive:
            await client.send(HEALTH)
            after = await client.reply()
            found = None if after.status == 200 else f"then GET /health got {after.status}"
    finally:
        await client.aclose()
    played = bad.may_play and reply.status == 200
    w.record(Outcome("malformed", bad.name, found, reply.status, int(played),
                     allowed_5xx=reply.status == 501 and bad.name.startswith("smuggling (TE")))


async def _reply_while_sending(client: Client, data: bytes) -> Reply:
    """The reply to `data`, read while it is still being sent: the server may answer
    before it all went. A failed read is raised as itself, not in an exception group, so
    `Worker.run` records it as a failed exchange."""
    failure: BaseException | None = None
    reply: Reply | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_send_ignoring_close, client, data)
        try:
            reply = await client.reply()
        except EXCHANGE_ERRORS as exc:
            failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert reply is not None
    return reply


async def _send_ignoring_close(client: Client, data: bytes) -> None:
    # Answered and closed before reading it all is what a limit does.
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await client.send(data)


def _malformed_problem(statuses: tuple[int, ...], api: Api | None, may_play: bool,
                       reply: Reply) -> str | None:
    if reply.status not in statuses:
        return f"status {reply.status}, expected {statuses}: {reply.body[:160]!r}"
    if reply.status == 200:
        return None if may_play and numbers_complete(reply.body, 3) else \
            f"a 200 missing its answer: {reply.body[:160]!r}"
    if api is not None and reply.status < 500 and not api.error_shape(_json_or_none(reply)):
        return f"error not in the route's shape: {reply.body[:160]!r}"
    return None


def _json_or_none(reply: Reply) -> object:
    try:
        return reply.json()
    except ValueError:
        return None


RUNNERS: dict[Callable[[Worker], Awaitable[None]], int] = {
    normal: 55, chain: 6, websocket: 5, disconnect: 10, slow: 6, malformed: 14}


# --- 429 storms ----------------------------------------------------------------------


async def storms(port: int, ledger: Ledger, rng: random.Random, deadline: float,
                 mean_gap: float) -> None:
    """Every `mean_gap` seconds on average, a burst of 20-60 concurrent requests that the
    backend refuses with a 429 (usage limit), each on its own connection."""
    while (gap := rng.expovariate(1 / mean_gap)) < deadline - trio.current_time():
        await trio.sleep(gap)
        async with trio.open_nursery() as nursery:
            for _ in range(rng.randint(20, 60)):
                worker = Worker(port, ledger, random.Random(rng.random()))
                nursery.start_soon(worker.run, storm_request)


async def storm_request(w: Worker) -> None:
    api, stream, ask_ = w.rng.choice(list(APIS)), w.rng.random() < 0.5, ask_429(w.rng)
    try:
        reply = await w.exchange(w.api_request(api, ask_.prompt, stream))
    finally:
        await w.drop()
    w.record(checked(api, ask_, stream, reply, "storm", f"{api} {_mode(stream)} 429"))
