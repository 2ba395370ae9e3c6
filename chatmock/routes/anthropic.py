"""Anthropic routes: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Claude Code calls `/v1/messages?beta=true`; the router ignores the query, so
it lands here unchanged. Errors take Anthropic's shape: the route table gives
every `/v1/messages*` path that shape.
"""

from __future__ import annotations

from chatmock.app import App
from chatmock.dialects.anthropic import (
    MessagesRequest,
    check_anthropic_headers,
    count_tokens,
    estimate_payload_tokens,
    parse_messages_request,
)
from chatmock.dialects.anthropic_stream import MessagesStreamTranslator, message_object
from chatmock.dialects.collectors import MessagesCollector
from chatmock.dialects.errors import Dialect
from chatmock.dialects.options import Options
from chatmock.dialects.signatures import account_tag
from chatmock.routes.answer import Plan, answer, collected, streamed
from chatmock.routes.relay import SSE_HEADERS, parse_json
from chatmock.server.exchange import Request, Responder, send_json

ANTHROPIC_SSE_HEADERS = SSE_HEADERS


async def messages(app: App, request: Request, out: Responder) -> None:
    check_anthropic_headers(request.headers)
    body = parse_json(await request.body())
    tag = account_tag(app.backend.account_id())
    req = parse_messages_request(body, request.headers, app.catalog, Options.of(app.settings), tag)
    del body  # parsed: this frame lives as long as the stream (issue 13)
    plan = messages_plan(req, tag)
    del req  # a stream's plan holds what it needs of it
    await answer(app, request, out, plan)


def messages_plan(req: MessagesRequest, tag: str) -> Plan:
    """A Messages answer: streamed as Anthropic's events, or collected into one message."""
    input_tokens = estimate_payload_tokens(req.payload)
    if req.stream:
        translator = MessagesStreamTranslator(model=req.model, thinking=req.thinking,
                                              input_tokens=input_tokens, account_tag=tag)
        translator.tool_names = req.tool_names
        return streamed(req.payload, translator, Dialect.ANTHROPIC, ANTHROPIC_SSE_HEADERS,
                        sampling=req.sampling)
    collector = MessagesCollector(account_tag=tag)
    collector.tool_names = req.tool_names
    model, thinking = req.model, req.thinking  # the renderer keeps these, not the request
    return collected(req.payload, collector, Dialect.ANTHROPIC, lambda: message_object(
        collector, model=model, thinking=thinking, input_tokens=input_tokens),
        sampling=req.sampling)


async def count_tokens_route(app: App, request: Request, out: Responder) -> None:
    """`{"input_tokens": N}`: a local estimate, no upstream call (see `count_tokens`)."""
    check_anthropic_headers(request.headers)
    body = parse_json(await request.body())
    tokens = count_tokens(body, app.catalog, Options.of(app.settings))
    await send_json(out, 200, {"input_tokens": tokens})
