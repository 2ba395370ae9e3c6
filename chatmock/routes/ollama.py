"""Ollama generation routes: `POST /api/chat` and `POST /api/generate`.

Built like the chat route: parse and validate (`chatmock.dialects.ollama`),
then either `relay` the backend stream through an `OllamaStreamTranslator`
(NDJSON) or `collect` it into one JSON object. The backend is opened with
`open_chat_upstream`, so web-search tools chatmock adds are retried without
when refused, as in chat. A load/unload request (nothing to generate) is
answered at once, without the backend.

Errors take Ollama's shape (`{"error": "…"}`, the router picks it for
`/api/*`): validation 400; backend refusals keep their status; a failure
inside a non-streamed answer takes the status of its code
(`dialects.errors.failure_error`: 400 for a prompt the backend cannot take,
429 for limits, else 502); a streamed one is the last NDJSON line.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from chatmock.app import App
from chatmock.dialects.errors import Dialect, failure_error
from chatmock.dialects.ollama import LoadAck, OllamaRequest, parse_chat, parse_generate
from chatmock.dialects.ollama_stream import (
    NDJSON_HEADERS,
    OllamaCollector,
    OllamaStreamTranslator,
    chat_object,
    created_at,
    generate_object,
    load_object,
)
from chatmock.logs import redact
from chatmock.routes.openai import open_chat_upstream
from chatmock.routes.relay import collect, drain, parse_json, relay
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
    if app.settings.verbose or app.settings.debug:
        log.debug("ollama request: %s", redact(json.dumps(body)[:20000]))
    parse = parse_generate if generate else parse_chat
    parsed = parse(body, app.catalog, app.settings)
    app.recent.touch(parsed.model, keep_alive_seconds(body.get("keep_alive")))  # for /api/ps
    if isinstance(parsed, LoadAck):
        await send_json(out, 200, load_object(parsed.model, stamp, parsed.reason, generate))
        return
    await _generate(app, request, out, parsed, generate=generate, started=started,
                    stamp=stamp)


async def _generate(app: App, request: Request, out: Responder, req: OllamaRequest, *,
                    generate: bool, started: int, stamp: str) -> None:
    compat = app.settings.reasoning_compat
    payload = req.chat.payload
    session = app.sessions.for_request(request.headers, payload.get("instructions"),
                                       payload["input"])
    if req.stream:
        translator = OllamaStreamTranslator(model=req.model, created_at=stamp, think=req.think,
                                            compat=compat, generate=generate, started=started)
        translator.tool_names = req.chat.tool_names
        async with open_chat_upstream(app, req.chat, session) as upstream:
            await relay(upstream, translator, out, NDJSON_HEADERS)
        return
    collector = OllamaCollector(started=started)
    collector.tool_names = req.chat.tool_names
    async with open_chat_upstream(app, req.chat, session) as upstream:
        await collect(upstream, collector)
        if collector.error is not None:
            message, code = collector.error
            raise failure_error(message, code, Dialect.OLLAMA)
        render = generate_object if generate else chat_object
        await send_json(out, 200, render(collector, model=req.model, created_at=stamp,
                                         think=req.think, compat=compat))
        await drain(upstream)


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
