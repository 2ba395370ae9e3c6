"""Anthropic routes: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Claude Code calls `/v1/messages?beta=true`; the router ignores the query, so
it lands here unchanged. Errors take Anthropic's shape because the router
picks it for every `/v1/messages*` path.
"""

from __future__ import annotations

from chatmock.app import App
from chatmock.dialects.anthropic import (
    check_anthropic_headers,
    count_tokens,
    estimate_payload_tokens,
    parse_messages_request,
)
from chatmock.dialects.anthropic_stream import (
    MessagesCollector,
    MessagesStreamTranslator,
    message_object,
)
from chatmock.dialects.errors import Dialect, failure_error
from chatmock.dialects.signatures import account_tag
from chatmock.routes.relay import SSE_HEADERS, collect, drain, parse_json, relay
from chatmock.server.exchange import Request, Responder, send_json

ANTHROPIC_SSE_HEADERS = SSE_HEADERS


async def messages(app: App, request: Request, out: Responder) -> None:
    check_anthropic_headers(request.headers)
    body = parse_json(await request.body())
    tag = account_tag(app.backend.account_id())
    req = parse_messages_request(body, request.headers, app.catalog, app.settings, tag)
    input_tokens = estimate_payload_tokens(req.payload)
    session = app.sessions.for_request(request.headers, req.payload.get("instructions"),
                                       req.payload["input"])
    if req.stream:
        translator = MessagesStreamTranslator(model=req.model, thinking=req.thinking,
                                              input_tokens=input_tokens, account_tag=tag)
        translator.tool_names = req.tool_names
        async with app.backend.responses(req.payload, session) as upstream:
            await relay(upstream, translator, out, ANTHROPIC_SSE_HEADERS)
        return
    collector = MessagesCollector(account_tag=tag)
    collector.tool_names = req.tool_names
    async with app.backend.responses(req.payload, session) as upstream:
        await collect(upstream, collector)
        if collector.error is not None:
            message, code = collector.error
            raise failure_error(message, code, Dialect.ANTHROPIC)
        await send_json(out, 200, message_object(collector, model=req.model,
                                                 thinking=req.thinking,
                                                 input_tokens=input_tokens))
        await drain(upstream)


async def count_tokens_route(app: App, request: Request, out: Responder) -> None:
    """`{"input_tokens": N}`: a local estimate, no upstream call (see `count_tokens`)."""
    check_anthropic_headers(request.headers)
    body = parse_json(await request.body())
    tokens = count_tokens(body, app.catalog, app.settings)
    await send_json(out, 200, {"input_tokens": tokens})
