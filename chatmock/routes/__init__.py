"""The routing table: every path chatmock answers, and the function behind it."""

from __future__ import annotations

from chatmock.router import Route
from chatmock.routes import anthropic, common, completions, openai, responses, responses_ws

ROUTES: dict[str, dict[str, Route]] = {
    "/": {"GET": common.health},
    "/health": {"GET": common.health},
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
