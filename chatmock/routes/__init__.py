"""The routing table: every path chatmock answers, the function behind it, and the
dialect whose error shape its failures take (the router renders through it).

A route's module is imported by the route's first request (`Deferred`), or by
`load_all` shortly after the server starts answering, whichever comes first; not
before the server listens: the routes and the dialects behind them are about a
third of what chatmock imports. Only `/health`'s module is imported with the table.
"""

from __future__ import annotations

import importlib

from chatmock.app import App
from chatmock.dialects.errors import Dialect
from chatmock.routes import common
from chatmock.server.exchange import Request, Responder
from chatmock.server.router import Endpoint, Route, RouteTable


class Deferred:
    """A route named by its module and function, imported on its first request, which
    then puts the function itself in its place in the endpoint's methods."""

    __slots__ = ("method", "methods", "module", "name")

    def __init__(self, methods: dict[str, Route], method: str, target: str) -> None:
        self.methods = methods
        self.method = method
        self.module, _, self.name = target.partition(":")

    def load(self) -> Route:
        route: Route = getattr(importlib.import_module(f"chatmock.routes.{self.module}"),
                               self.name)
        self.methods[self.method] = route
        return route

    async def __call__(self, app: App, request: Request, out: Responder) -> None:
        await self.load()(app, request, out)


def _methods(targets: dict[str, str]) -> dict[str, Route]:
    """{method: "module:function"} → the methods of an endpoint, each deferred."""
    methods: dict[str, Route] = {}
    for method, target in targets.items():
        methods[method] = Deferred(methods, method, target)
    return methods


def _endpoint(targets: dict[str, str], errors: Dialect) -> Endpoint:
    return Endpoint(_methods(targets), errors)


OPENAI, ANTHROPIC, OLLAMA = Dialect.OPENAI, Dialect.ANTHROPIC, Dialect.OLLAMA


def _openai(targets: dict[str, str]) -> Endpoint:
    """An OpenAI-family path (Anthropic's error shape when `anthropic-version` is sent,
    see `Dialect.for_headers`); also `/`, `/health` and `/status.json`."""
    return _endpoint(targets, OPENAI)


TABLE = RouteTable(
    exact={
        "/": _openai({"GET": "ollama_meta:root"}),
        "/health": Endpoint({"GET": common.health}, OPENAI),
        "/status.json": _openai({"GET": "status:status_json"}),
        "/api/chat": _endpoint({"POST": "ollama:chat"}, OLLAMA),
        "/api/generate": _endpoint({"POST": "ollama:generate"}, OLLAMA),
        "/api/ps": _endpoint({"GET": "ollama_meta:ps"}, OLLAMA),
        "/api/show": _endpoint({"POST": "ollama_meta:show"}, OLLAMA),
        "/api/tags": _endpoint({"GET": "ollama_meta:tags"}, OLLAMA),
        "/api/version": _endpoint({"GET": "ollama_meta:version"}, OLLAMA),
        "/v1/chat/completions": _openai({"POST": "openai:chat_completions"}),
        "/v1/completions": _openai({"POST": "completions:completions"}),
        "/v1/messages": _endpoint({"POST": "anthropic:messages"}, ANTHROPIC),
        "/v1/messages/count_tokens": _endpoint({"POST": "anthropic:count_tokens_route"},
                                               ANTHROPIC),
        "/v1/models": _openai({"GET": "openai:list_models"}),
        "/v1/responses": _openai({"POST": "responses:responses",
                                  "GET": "responses_ws:responses_socket"}),
    },
    prefixes={"/v1/models/": _openai({"GET": "openai:get_model"})},
    # A path no route answers: Ollama's clients live under /api, Anthropic's under
    # /v1/messages; any other gets OpenAI's shape.
    areas={"/api/": OLLAMA, "/v1/messages": ANTHROPIC},
    fallback=OPENAI,
)


def load_all() -> None:
    """Import every deferred route now: `serve` does once it answers (cli._settle), and
    a test that checks that they all resolve."""
    for endpoint in (*TABLE.exact.values(), *TABLE.prefixes.values()):
        for route in list(endpoint.methods.values()):
            if isinstance(route, Deferred):
                route.load()
