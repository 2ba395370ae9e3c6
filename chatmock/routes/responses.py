"""`POST /v1/responses`: the Responses API, streamed through or collected."""

from __future__ import annotations

from typing import Any

from chatmock.app import App
from chatmock.dialects.errors import Dialect
from chatmock.dialects.responses_stream import observer_for
from chatmock.routes.answer import Plan, answer
from chatmock.routes.relay import SSE_HEADERS, parse_json
from chatmock.routes.stored_turn import PendingTurn, parse_with_store
from chatmock.server.exchange import Request, Responder
from chatmock.upstream.codex import codex_client_headers


async def responses(app: App, request: Request, out: Responder) -> None:
    await answer_responses(app, request, parse_json(await request.body()), out)


async def answer_responses(app: App, request: Request, body: Any, out: Responder) -> None:
    """Serve a parsed Responses body (also reached from the chat route, see
    `--response-format input`)."""
    parsed = await parse_with_store(app, body)
    del body  # parsed: this frame lives as long as the stream (issue 13)
    turn = PendingTurn(app, parsed)
    observer = observer_for(relay=parsed.stream, tool_names=parsed.tool_names,
                            on_success=turn.finished)
    plan = Plan(parsed.payload, observer, Dialect.OPENAI,
                SSE_HEADERS if parsed.stream else None, render=observer.final_response,
                forwarded=codex_client_headers(request.headers), sampling=parsed.sampling,
                keep_payload=True)
    # The turn is stored before the answer's last bytes leave (routes/stored_turn.py).
    await answer(app, request, turn.before_end(out), plan)
