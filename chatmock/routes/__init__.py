"""The routing table: every path chatmock answers, and the function behind it."""

from __future__ import annotations

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
from chatmock.server.router import Route

ROUTES: dict[str, dict[str, Route]] = {
    "/": {"GET": ollama_meta.root},
    "/health": {"GET": common.health},
    "/status.json": {"GET": status.status_json},
    "/api/chat": {"POST": ollama.chat},
    "/api/generate": {"POST": ollama.generate},
    "/api/ps": {"GET": ollama_meta.ps},
    "/api/show": {"POST": ollama_meta.show},
    "/api/tags": {"GET": ollama_meta.tags},
    "/api/version": {"GET": ollama_meta.version},
    "/v1/chat/completions": {"POST": openai.chat_completions},
    "/v1/completions": {"POST": completions.completions},
    "/v1/messages": {"POST": anthropic.messages},
    "/v1/messages/count_tokens": {"POST": anthropic.count_tokens_route},
    "/v1/models": {"GET": openai.list_models},
    "/v1/responses": {"POST": responses.responses, "GET": responses_ws.responses_socket},
}

PREFIX_ROUTES: dict[str, dict[str, Route]] = {
    "/v1/models/": {"GET": openai.get_model},
}
