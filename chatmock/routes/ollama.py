"""Ollama generation routes: `POST /api/chat` and `POST /api/generate`.

Parse and validate (`chatmock.dialects.ollama`), then `answer` (routes/answer.py)
with an `OllamaStreamTranslator` (NDJSON) or an `OllamaCollector` (one JSON
object). Web-search tools chatmock adds are retried without when refused, as
in chat (`upstream/fallback.py`). A load/unload request (nothing to generate)
is answered at once, without the backend.

Errors take Ollama's shape (`{"error": "…"}`, the route table gives `/api/*`
that shape): validation 400; backend refusals keep their status; a failure
inside a non-streamed answer takes the status of its code
(`Dialect.failure`: 400 for a prompt the backend cannot take, 429 for limits,
else 502); a streamed one is the last NDJSON line.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from chatmock.app import App
from chatmock.dialects.collectors import OllamaCollector
from chatmock.dialects.errors import Dialect
from chatmock.dialects.ollama import LoadAck, OllamaRequest, parse_chat, parse_generate
from chatmock.dialects.ollama_stream import (
    NDJSON_HEADERS,
    OllamaStreamTranslator,
    chat_object,
    created_at,
    generate_object,
    load_object,
)
from chatmock.dialects.options import Options
from chatmock.routes.answer import Plan, answer, collected, log_body, streamed
from chatmock.routes.relay import parse_json
from chatmock.server.exchange import Request, Responder, send_json

log = logging.getLogger("chatmock.ollama")


async def chat(app: App, request: Request, out: Responder) -> None:
    await _answer(app, request, out, generate=False)


async def generate(app: App, request: Request, out: Responder) -> None:
    await _answer(app, request, out, generate=True)


async def _answer(app: App, request: Request, out: Responder, *, generate: bool) -> None:
    started = time.monotonic_ns()
    stamp = created_at()
    body = parse_json(await request.body())
    log_body(app, log, "ollama", body)
    parse = parse_generate if generate else parse_chat
    parsed = parse(body, app.catalog, Options.of(app.settings))
    app.recent.touch(parsed.model, keep_alive_seconds(body.get("keep_alive")))  # for /api/ps
    del body  # parsed: this frame lives as long as the stream (issue 13)
    if isinstance(parsed, LoadAck):
        await send_json(out, 200, load_object(parsed.model, stamp, parsed.reason, generate))
        return
    plan = ollama_plan(parsed, app.settings.reasoning_compat, generate=generate,
                       started=started, stamp=stamp)
    del parsed  # a stream's plan holds what it needs of it
    await answer(app, request, out, plan)


def ollama_plan(req: OllamaRequest, compat: str, *, generate: bool, started: int,
                stamp: str) -> Plan:
    """An Ollama answer: streamed as NDJSON, or collected into one object."""
    payload, fallback = dict(req.chat.payload), req.chat.without_extra_tools()
    if req.stream:
        translator = OllamaStreamTranslator(model=req.model, created_at=stamp, think=req.think,
                                            compat=compat, generate=generate, started=started)
        translator.tool_names = req.chat.tool_names
        return streamed(payload, translator, Dialect.OLLAMA, NDJSON_HEADERS, fallback,
                        req.chat.sampling)
    collector = OllamaCollector(started=started)
    collector.tool_names = req.chat.tool_names
    render = generate_object if generate else chat_object
    model, think = req.model, req.think  # the renderer keeps these, not the request
    return collected(payload, collector, Dialect.OLLAMA, lambda: render(
        collector, model=model, created_at=stamp, think=think, compat=compat), fallback,
        req.chat.sampling)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: Any) -> float | None:
    """Ollama's `keep_alive`: seconds, or a duration such as "5m", "1h", "0", "-1"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # An integer beyond float's range (valid JSON) is "forever" of its sign.
        return float(value) if abs(value) < 1e300 else math.inf if value > 0 else -math.inf
    if not isinstance(value, str):
        return None
    text = value.strip()
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * _UNITS[unit]
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None
