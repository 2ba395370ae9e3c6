"""OpenAI routes: `/v1/chat/completions`, `/v1/models`, `/v1/models/{id}`."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import unquote

from chatmock.app import App
from chatmock.catalog import CREATED
from chatmock.dialects.chat import ChatRequest, parse_chat_request
from chatmock.dialects.chat_stream import ChatStreamTranslator, chat_completion
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.errors import Dialect
from chatmock.dialects.options import Options
from chatmock.errors import ClientError
from chatmock.routes.answer import Plan, answer, collected, log_body, streamed
from chatmock.routes.relay import SSE_HEADERS, parse_json
from chatmock.routes.responses import answer_responses
from chatmock.server.exchange import Request, Responder, send_json

log = logging.getLogger("chatmock.openai")
ANTHROPIC_CREATED_AT = "2025-08-01T00:00:00Z"  # the static `created`, as RFC 3339

async def chat_completions(app: App, request: Request, out: Responder) -> None:
    body = parse_json(await request.body())
    if app.settings.response_format == "input" and isinstance(body, dict) and "input" in body:
        # go-chatmock's --response-format input: a Responses body here gets Responses output.
        await answer_responses(app, request, body, out)
        return
    log_body(app, log, "chat", body)
    chat = parse_chat_request(body, app.catalog, Options.of(app.settings))
    del body  # parsed: this frame lives as long as the stream (issue 13)
    plan = chat_plan(chat, app.settings.reasoning_compat)
    del chat  # a stream's plan holds what it needs of it
    await answer(app, request, out, plan)


def chat_plan(chat: ChatRequest, compat: str) -> Plan:
    """A chat completion: streamed as chunks, or collected into one object."""
    created = int(time.time())
    payload, fallback = dict(chat.payload), chat.without_extra_tools()
    if chat.stream:
        translator = ChatStreamTranslator(model=chat.model, created=created, compat=compat,
                                          include_usage=chat.include_usage)
        translator.tool_names = chat.tool_names
        return streamed(payload, translator, Dialect.OPENAI, SSE_HEADERS, fallback,
                        chat.sampling)
    collector = ResponseCollector()
    collector.tool_names = chat.tool_names
    model = chat.model  # the renderer keeps this, not the request and its payload
    return collected(payload, collector, Dialect.OPENAI, lambda: chat_completion(
        collector, model=model, created=created, compat=compat), fallback, chat.sampling)


def model_object(model_id: str, owner: str = "openai") -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": owner}


def anthropic_model(model_id: str, display_name: str = "") -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": display_name or model_id,
            "created_at": ANTHROPIC_CREATED_AT}


def wants_anthropic(request: Request) -> bool:
    """Anthropic's SDKs and Claude Code send these; they get Anthropic's list shape."""
    return b"anthropic-version" in request.headers or b"anthropic-beta" in request.headers


async def list_models(app: App, request: Request, out: Responder) -> None:
    await app.models.ensure_fresh()
    ids = app.catalog.listed_ids(app.settings.expose_reasoning_models)
    others = await app.provider_model_ids()
    ids += [model_id for model_id, _ in others]
    if not wants_anthropic(request):
        owners = dict(others)
        await send_json(out, 200, {"object": "list", "data": [
            model_object(i, owners.get(i, "openai")) for i in ids]})
        return
    data = [anthropic_model(i, _display_name(app, i)) for i in ids]
    await send_json(out, 200, {"data": data, "has_more": False,
                               "first_id": ids[0] if ids else None,
                               "last_id": ids[-1] if ids else None})


async def get_model(app: App, request: Request, out: Responder) -> None:
    model_id = unquote(request.path.removeprefix("/v1/models/"))  # SDKs send xai%2Fgrok-4
    listed = app.catalog.listed_ids(expose_variants=True)
    owners = dict(await app.provider_model_ids())
    if model_id not in listed and model_id not in owners and \
            app.catalog.resolve(model_id).spec is None:
        raise ClientError(f"The model '{model_id}' does not exist", status=404,
                          error_type="not_found_error", code="model_not_found")
    if wants_anthropic(request):
        await send_json(out, 200, anthropic_model(model_id, _display_name(app, model_id)))
    else:
        await send_json(out, 200, model_object(model_id, owners.get(model_id, "openai")))


def _display_name(app: App, model_id: str) -> str:
    spec = app.catalog.lookup(model_id)
    return spec.display_name if spec is not None and spec.slug == model_id else ""
