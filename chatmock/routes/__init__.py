"""The routing table: every path chatmock answers, the function behind it, and the
dialect whose error shape its failures take (the router renders through it)."""

from __future__ import annotations

from chatmock.dialects.errors import Dialect
from chatmock.routes import (
    anthropic,
    common,
    completions,
    ollama,
    ollama_meta,
    openai,
    responses,
    responses_ws,
    status,
)
from chatmock.server.router import Endpoint, Route, RouteTable

OPENAI, ANTHROPIC, OLLAMA = Dialect.OPENAI, Dialect.ANTHROPIC, Dialect.OLLAMA


def _openai(methods: dict[str, Route]) -> Endpoint:
    """An OpenAI-family path (Anthropic's error shape when `anthropic-version` is sent,
    see `Dialect.for_headers`); also `/`, `/health` and `/status.json`."""
    return Endpoint(methods, OPENAI)


TABLE = RouteTable(
    exact={
        "/": _openai({"GET": ollama_meta.root}),
        "/health": _openai({"GET": common.health}),
        "/status.json": _openai({"GET": status.status_json}),
        "/api/chat": Endpoint({"POST": ollama.chat}, OLLAMA),
        "/api/generate": Endpoint({"POST": ollama.generate}, OLLAMA),
        "/api/ps": Endpoint({"GET": ollama_meta.ps}, OLLAMA),
        "/api/show": Endpoint({"POST": ollama_meta.show}, OLLAMA),
        "/api/tags": Endpoint({"GET": ollama_meta.tags}, OLLAMA),
        "/api/version": Endpoint({"GET": ollama_meta.version}, OLLAMA),
        "/v1/chat/completions": _openai({"POST": openai.chat_completions}),
        "/v1/completions": _openai({"POST": completions.completions}),
        "/v1/messages": Endpoint({"POST": anthropic.messages}, ANTHROPIC),
        "/v1/messages/count_tokens": Endpoint({"POST": anthropic.count_tokens_route}, ANTHROPIC),
        "/v1/models": _openai({"GET": openai.list_models}),
        "/v1/responses": _openai({"POST": responses.responses,
                                  "GET": responses_ws.responses_socket}),
    },
    prefixes={"/v1/models/": _openai({"GET": openai.get_model})},
    # A path no route answers: Ollama's clients live under /api, Anthropic's under
    # /v1/messages; any other gets OpenAI's shape.
    areas={"/api/": OLLAMA, "/v1/messages": ANTHROPIC},
    fallback=OPENAI,
)
