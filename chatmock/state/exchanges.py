"""What is known about each exchange while it runs: its access-log record and the live set.

The router opens an `Exchange` for every request (`Exchanges.begin`) and closes it in
its `finally` (`Exchanges.end`), then writes the access line from it. In between, the
layers that learn something fill it in, without the record being threaded through
every route and translator signature: `current()` is the exchange of the running
task, a context variable the router sets (trio gives each task its own context, and a
route runs in its connection's task). What fills it in, and what it costs:

* the backend notes the model and effort it asks for (`note_model`), once per upstream
  request (the upstream model: `claude-sonnet-5` or `gpt-5.4-high` show as `gpt-5.4`,
  with the effort beside it);
* `routes/relay.py` marks a stream, notes when its first byte was written and adds
  the bytes of each write to `sent` (per upstream read: a test of a local and one
  addition, about 40 ns; nothing per delta), and hands over the token usage and any
  failure the translator kept from the end of the stream (`note_outcome`), once per
  answer (a WebSocket's exchange, the whole socket, relays one answer per request: its
  tokens add up, its first byte is the first answer's, its failure the latest);
* `collect` (a whole answer) notes its first byte when the answer is complete: the
  route writes it in one piece right after. An exchange that never noted one (an
  error, a model list) takes its duration as its time to first byte.

`Exchanges` holds the exchanges in flight (the status page's live section) and a
bounded ring of the latest failures (status 400 and above, or a stream that ended
with an in-band error), their messages redacted (`chatmock.logs.redact`) before they
are kept.

Sans-I/O: no trio, no sockets; the clock is injected (`time.perf_counter` by default).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from chatmock.logs import redact

RECENT_ERRORS = 50
INTERNAL_ERROR = "internal error in chatmock (see its log)"


class Exchange:
    """One request/answer, from the router's first look to its last."""

    __slots__ = ("client", "clock", "dialect", "duration", "effort", "failure", "first_byte",
                 "input_tokens", "method", "model", "note", "number", "output_tokens", "path",
                 "sent", "started", "started_at", "status", "streaming")

    def __init__(self, number: int, method: str, path: str, client: str = "",
                 dialect: str = "", *, clock: Callable[[], float] = time.perf_counter,
                 started: float = 0.0, started_at: float = 0.0) -> None:
        self.number = number
        self.clock = clock
        self.method = method
        self.path = path
        self.client = client
        self.dialect = dialect
        self.started = started  # the registry's clock
        self.started_at = started_at  # Unix time, for display
        self.model = ""
        self.effort = ""
        self.streaming = False
        self.first_byte = 0.0  # the registry's clock; 0.0: nothing written yet
        self.sent = 0  # body bytes written by a stream
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.failure = ""  # why it failed: an error's message or an in-band failure
        self.status = 0
        self.duration = 0.0
        self.note = ""  # "client gone"

    def note_model(self, model: object, reasoning: object = None) -> None:
        """The upstream model and, from a `reasoning` object, its effort."""
        if isinstance(model, str):
            self.model = model
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        self.effort = effort if isinstance(effort, str) else ""

    def mark_first_byte(self) -> None:
        self.first_byte = self.clock()

    def note_outcome(self, usage: object, failure: str = "") -> None:
        """What a translator learnt at the end: the input and output tokens of a Responses
        `usage` object, added to those of earlier answers on the same exchange (anything
        else changes nothing), and an in-band failure."""
        if isinstance(usage, dict):
            self.input_tokens = _add(self.input_tokens, _count(usage.get("input_tokens")))
            self.output_tokens = _add(self.output_tokens, _count(usage.get("output_tokens")))
        if failure:
            self.failure = failure

    def log_fields(self) -> dict[str, Any]:
        """What the access line says, by name (the JSON log format's fields); times in ms,
        unknown values left out."""
        ttfb = (self.first_byte - self.started) if self.first_byte else self.duration
        fields: dict[str, Any] = {"client": self.client, "method": self.method,
                                  "path": self.path, "status": self.status or None,
                                  "duration_ms": round(self.duration * 1000, 1),
                                  "ttfb_ms": round(max(0.0, ttfb) * 1000, 1),
                                  "model": self.model or None, "effort": self.effort or None,
                                  "dialect": self.dialect,
                                  "stream": self.streaming,
                                  "input_tokens": self.input_tokens,
                                  "output_tokens": self.output_tokens,
                                  "client_gone": self.note == "client gone" or None,
                                  "error": self.failure or None}
        return {key: value for key, value in fields.items() if value is not None}

    def live_json(self, now: float) -> dict[str, Any]:
        """The status page's view of an exchange in flight (`now`: the registry's clock)."""
        return {"id": self.number, "method": self.method, "path": self.path,
                "model": self.model, "effort": self.effort, "dialect": self.dialect,
                "client": self.client,
                "started_at": self.started_at, "seconds": round(now - self.started, 1),
                "streaming": self.streaming, "bytes": self.sent}


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _add(total: int | None, count: int | None) -> int | None:
    return count if total is None else total + (count or 0)


class Exchanges:
    """The exchanges in flight and the latest failures; see the module docstring."""

    def __init__(self, *, secrets: tuple[str, ...] = (), capacity: int = RECENT_ERRORS,
                 clock: Callable[[], float] = time.perf_counter,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.secrets = secrets
        self.clock = clock
        self.wall_clock = wall_clock
        self.live: dict[int, Exchange] = {}
        self.errors: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._numbers = itertools.count(1)

    def begin(self, method: str, path: str, client: str = "", dialect: str = "") -> Exchange:
        exchange = Exchange(next(self._numbers), method, path, client, dialect,
                            clock=self.clock, started=self.clock(),
                            started_at=self.wall_clock())
        self.live[exchange.number] = exchange
        return exchange

    def end(self, exchange: Exchange, status: int, *, client_gone: bool = False) -> None:
        """The exchange is over: out of the live set, into the ring if it failed."""
        self.live.pop(exchange.number, None)
        exchange.status = status
        exchange.duration = self.clock() - exchange.started
        if client_gone:
            exchange.note = "client gone"
        if status >= 400 or exchange.failure:
            self.errors.append({"at": exchange.started_at, "method": exchange.method,
                                "path": redact(exchange.path, self.secrets),
                                "status": status, "model": redact(exchange.model, self.secrets),
                                "dialect": exchange.dialect,
                                "message": redact(exchange.failure, self.secrets)})

    def in_flight(self) -> list[dict[str, Any]]:
        """The exchanges that reached a backend (a model noted) and are not over, oldest
        first: what the status page lists as live."""
        now = self.clock()
        return [exchange.live_json(now) for exchange in self.live.values() if exchange.model]

    def recent_errors(self) -> list[dict[str, Any]]:
        """The latest failures, newest first."""
        return list(reversed(self.errors))


_current: ContextVar[Exchange | None] = ContextVar("chatmock_exchange", default=None)


def current() -> Exchange | None:
    """The exchange the running task serves (None outside the router)."""
    return _current.get()


def current_or_detached() -> Exchange:
    """The running exchange, or a record nobody reads (code driven without the router)."""
    return _current.get() or Exchange(0, "", "")


def enter(exchange: Exchange) -> Token[Exchange | None]:
    """Make `exchange` the running task's; give the token back to `leave`."""
    return _current.set(exchange)


def leave(token: Token[Exchange | None]) -> None:
    _current.reset(token)


def note_model(model: object, reasoning: object = None) -> None:
    """Note the model (and effort) of the running exchange, if any (the backend calls it)."""
    exchange = _current.get()
    if exchange is not None:
        exchange.note_model(model, reasoning)
