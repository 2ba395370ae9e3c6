"""OpenAI routes: `/v1/chat/completions`, `/v1/models`, `/v1/models/{id}`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import trio

from chatmock.app import App
from chatmock.dialects.chat import ChatRequest, parse_chat_request
from chatmock.dialects.chat_stream import ChatStreamTranslator, ResponseCollector, chat_completion
from chatmock.dialects.upstream import State, UpstreamTranslator
from chatmock.errors import ClientError, UpstreamError
from chatmock.exchange import Request, Responder, send_json
from chatmock.logs import redact
from chatmock.models import CREATED
from chatmock.upstream.client import UpstreamResponse

log = logging.getLogger("chatmock.openai")

SSE_HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))
DRAIN_AFTER_DONE_SECONDS = 1.0
# While the backend is silent (long reasoning), write a keep-alive this often: it
# keeps proxies from timing out and reveals a client that has gone away.
HEARTBEAT_SECONDS = 15.0


def parse_json(body: bytes) -> Any:
    """A request's JSON body; raw control characters inside strings are tolerated."""
    if not body.strip():
        raise ClientError("Request body is empty; expected a JSON object")
    try:
        return json.loads(body, strict=False)
    except ValueError as exc:
        raise ClientError(f"Invalid JSON body: {exc}", code="invalid_json") from None


async def chat_completions(app: App, request: Request, out: Responder) -> None:
    body = parse_json(await request.body())
    if app.settings.verbose or app.settings.debug:
        log.debug("chat request: %s", redact(json.dumps(body)[:20000]))
    chat = parse_chat_request(body, app.catalog, app.settings)
    session = app.sessions.for_request(request.headers, chat.payload.get("instructions"),
                                       chat.payload["input"])
    created = int(time.time())
    if chat.stream:
        translator = ChatStreamTranslator(model=chat.model, created=created,
                                          compat=app.settings.reasoning_compat,
                                          include_usage=chat.include_usage)
        async with open_chat_upstream(app, chat, session) as upstream:
            await relay(upstream, translator, out, SSE_HEADERS)
        return
    collector = ResponseCollector()
    async with open_chat_upstream(app, chat, session) as upstream:
        await collect(upstream, collector)
        if collector.error is not None:
            message, code = collector.error
            raise UpstreamError(message, status=502, code=code)
        await send_json(out, 200, chat_completion(collector, model=chat.model, created=created,
                                                  compat=app.settings.reasoning_compat))
        await _drain(upstream)


async def relay(upstream: UpstreamResponse, translator: UpstreamTranslator, out: Responder,
                headers: tuple[tuple[bytes, bytes], ...]) -> None:
    """Pull a read, translate it, write it, repeat: the client's pace sets the backend's."""
    await out.start(200, headers)
    try:
        async with aclosing(upstream.chunks(HEARTBEAT_SECONDS)) as chunks:
            async for chunk in chunks:
                if not chunk:
                    await out.send(translator.heartbeat())
                    continue
                data = translator.feed(chunk)
                if translator.state is State.DONE:
                    await out.end(data)
                    await _drain(upstream)
                    return
                if data:
                    await out.send(data)
        tail = translator.finish()
    except UpstreamError as exc:
        tail = translator.abort(exc.message)
    await out.end(tail)


async def collect(upstream: UpstreamResponse, collector: UpstreamTranslator) -> None:
    """Feed the body to `collector` up to its terminal event (the caller drains the rest
    after answering, so that the connection's last read is off the critical path)."""
    async with aclosing(upstream.chunks()) as chunks:
        async for chunk in chunks:
            collector.feed(chunk)
            if collector.state is State.DONE:
                return
    collector.finish()


async def _drain(upstream: UpstreamResponse) -> None:
    """Read the few bytes after the terminal event so the connection can be pooled."""
    with trio.move_on_after(DRAIN_AFTER_DONE_SECONDS):
        try:
            async with aclosing(upstream.chunks()) as chunks:
                async for _ in chunks:
                    pass
        except UpstreamError:
            pass


@asynccontextmanager
async def open_chat_upstream(app: App, chat: ChatRequest,
                             session: str) -> AsyncIterator[UpstreamResponse]:
    """Open the backend stream; if tools chatmock added were refused, retry without them."""
    opened = False
    try:
        async with app.backend.responses(dict(chat.payload), session) as upstream:
            opened = True
            yield upstream
            return
    except UpstreamError as exc:
        if opened or not chat.extra.tools or exc.status in (401, 429) or exc.status >= 500:
            raise
        first = exc
    payload = dict(chat.payload, tools=chat.client_tools)
    if chat.extra.tool_choice:
        payload["tool_choice"] = "auto"
    opened = False
    try:
        async with app.backend.responses(payload, session) as upstream:
            opened = True
            yield upstream
    except UpstreamError as exc:
        if opened:
            raise
        raise UpstreamError(first.message, status=exc.status,
                            code="RESPONSES_TOOLS_REJECTED") from None


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "openai"}


async def list_models(app: App, request: Request, out: Responder) -> None:
    ids = app.catalog.listed_ids(app.settings.expose_reasoning_models)
    await send_json(out, 200, {"object": "list", "data": [model_object(i) for i in ids]})


async def get_model(app: App, request: Request, out: Responder) -> None:
    model_id = request.path.removeprefix("/v1/models/")
    listed = app.catalog.listed_ids(expose_variants=True)
    if model_id not in listed and app.catalog.resolve(model_id).spec is None:
        raise ClientError(f"The model '{model_id}' does not exist", status=404,
                          code="model_not_found")
    await send_json(out, 200, model_object(model_id))
