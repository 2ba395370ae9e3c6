"""OpenAI legacy completions: `POST /v1/completions`.

Built like the chat route (`chatmock.routes.openai.chat_completions`): parse
and validate, then either `relay` the backend stream through a
`CompletionStreamTranslator` or `collect` it for one `text_completion`
object. The backend is opened directly: `open_chat_upstream`'s retry only
concerns web-search tools chatmock adds, and a completion never has tools.
"""

from __future__ import annotations

import json
import logging
import time

from chatmock.app import App
from chatmock.dialects.chat_stream import ResponseCollector
from chatmock.dialects.completions import (
    CompletionStreamTranslator,
    parse_completion_request,
    text_completion,
)
from chatmock.dialects.errors import Dialect, failure_error
from chatmock.logs import redact
from chatmock.routes.relay import SSE_HEADERS, collect, drain, parse_json, relay
from chatmock.server.exchange import Request, Responder, send_json

log = logging.getLogger("chatmock.openai")


async def completions(app: App, request: Request, out: Responder) -> None:
    body = parse_json(await request.body())
    if app.settings.verbose or app.settings.debug:
        log.debug("completions request: %s", redact(json.dumps(body)[:20000]))
    completion = parse_completion_request(body, app.catalog, app.settings)
    session = app.sessions.for_request(request.headers, None, completion.payload["input"])
    created = int(time.time())
    async with app.backend.responses(dict(completion.payload), session) as upstream:
        if completion.stream:
            translator = CompletionStreamTranslator(model=completion.model, created=created,
                                                    include_usage=completion.include_usage)
            await relay(upstream, translator, out, SSE_HEADERS)
            return
        collector = ResponseCollector()
        await collect(upstream, collector)
        if collector.error is not None:
            message, code = collector.error
            raise failure_error(message, code, Dialect.OPENAI)
        await send_json(out, 200, text_completion(collector, model=completion.model,
                                                  created=created))
        await drain(upstream)
