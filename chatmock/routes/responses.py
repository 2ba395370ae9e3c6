"""`POST /v1/responses`: the Responses API, streamed through or collected."""

from __future__ import annotations

import time
from typing import Any

from chatmock.app import App
from chatmock.dialects.responses import ResponsesRequest, parse_responses_request, stored_turn
from chatmock.dialects.responses_stream import ResponsesObserver
from chatmock.errors import UpstreamError
from chatmock.routes.relay import SSE_HEADERS, collect, drain, parse_json, relay
from chatmock.server.exchange import Request, Responder, send_json


async def responses(app: App, request: Request, out: Responder) -> None:
    await answer_responses(app, request, parse_json(await request.body()), out)


async def answer_responses(app: App, request: Request, body: Any, out: Responder) -> None:
    """Serve a parsed Responses body (also reached from the chat route, see
    `--response-format input`)."""
    parsed = parse_responses_request(body, app.catalog, app.settings, app.responses_store)
    session = app.sessions.for_request(request.headers, parsed.payload.get("instructions"),
                                       parsed.payload["input"])
    observer = ResponsesObserver(relay=parsed.stream,
                                 on_success=lambda done: remember(app, parsed, done))
    async with app.backend.responses(parsed.payload, session) as upstream:
        if parsed.stream:
            await relay(upstream, observer, out, SSE_HEADERS)
            return
        await collect(upstream, observer)
        if observer.error is not None:
            message, code = observer.error
            raise UpstreamError(message, status=502, code=code)
        await send_json(out, 200, observer.final_response())
        await drain(upstream)


def remember(app: App, request: ResponsesRequest, observer: ResponsesObserver) -> None:
    """Keep the finished turn for a later `previous_response_id`."""
    app.responses_store.put(stored_turn(observer.response_id, request,
                                        observer.output_items(), time.time()))
