"""OpenAI legacy completions: `POST /v1/completions`.

Parse and validate, then `answer` (routes/answer.py) with a
`CompletionStreamTranslator` or a collector for one `text_completion` object.
No fallback payload: a completion never has tools (chatmock's web-search
tools included), so there is nothing to retry without.
"""

from __future__ import annotations

import logging
import time

from chatmock.app import App
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.completions import (
    CompletionRequest,
    CompletionStreamTranslator,
    parse_completion_request,
    text_completion,
)
from chatmock.dialects.errors import Dialect
from chatmock.dialects.options import Options
from chatmock.routes.answer import Plan, answer, collected, log_body, streamed
from chatmock.routes.relay import SSE_HEADERS, parse_json
from chatmock.server.exchange import Request, Responder

log = logging.getLogger("chatmock.openai")


async def completions(app: App, request: Request, out: Responder) -> None:
    body = parse_json(await request.body())
    log_body(app, log, "completions", body)
    completion = parse_completion_request(body, app.catalog, Options.of(app.settings))
    del body  # parsed: this frame lives as long as the stream (issue 13)
    plan = completion_plan(completion)
    del completion  # a stream's plan holds what it needs of it
    await answer(app, request, out, plan)


def completion_plan(completion: CompletionRequest) -> Plan:
    """A legacy completion: streamed as chunks, or collected into one `text_completion`."""
    created = int(time.time())
    payload = dict(completion.payload)
    if completion.stream:
        translator = CompletionStreamTranslator(model=completion.model, created=created,
                                                include_usage=completion.include_usage)
        return streamed(payload, translator, Dialect.OPENAI, SSE_HEADERS,
                        sampling=completion.sampling)
    collector = ResponseCollector()
    model = completion.model  # the renderer keeps this, not the request and its payload
    return collected(payload, collector, Dialect.OPENAI, lambda: text_completion(
        collector, model=model, created=created), sampling=completion.sampling)
