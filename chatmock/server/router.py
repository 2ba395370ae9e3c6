"""(method, path) → route function, plus what every route shares.

The router first applies the browser rules of `server/browser.py` (Host and
Origin on every request, before any route; Content-Type on JSON routes) and
answers CORS preflights. It checks the access token (constant-time) everywhere
except `/` and `/health`, renders any `ApiError` in the error shape of the
path's dialect, turns unexpected exceptions into a logged 500, and writes one
access-log line per request (at DEBUG for the polled `/health` and
`/status.json` when they succeed: a health check or an open status page would
fill the log). Each request gets an `Exchange` record (`state/exchanges.py`),
made the running task's for the route, the relay and the backend to fill in;
the access line is written from it. Routes are plain async functions
`route(app, request, responder)`.

The router knows no dialect. Each entry of the `RouteTable` (built in
`chatmock/routes/__init__.py`) carries the `ErrorShape` of its API family, which
the dialects implement (`chatmock/dialects/errors.py`); a path no route answers
takes the shape of the table's area it lies in (`/api/...` is Ollama's), else
the table's fallback. A shape may defer to the request's headers (an Anthropic
client listing `/v1/models` sends `anthropic-version` and parses Anthropic's
errors).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from chatmock import logs
from chatmock.app import App
from chatmock.errors import ApiError, ClientError
from chatmock.server import browser
from chatmock.server.exchange import JSON_HEADERS, ClientGone, Request, Responder
from chatmock.state import exchanges

log = logging.getLogger("chatmock.access")

Route = Callable[[App, Request, Responder], Awaitable[None]]
Headers = Mapping[bytes, bytes]
OPEN_PATHS = frozenset({"/", "/health"})
QUIET_PATHS = frozenset({"/health", "/status.json"})  # polled: logged at DEBUG unless refused


class ErrorShape(Protocol):
    """How one API family's clients expect errors (`chatmock.dialects.errors.Dialect`)."""

    @property
    def label(self) -> str:
        """The family's name in the exchange record and the access log."""
        ...

    def render(self, error: ApiError) -> bytes: ...

    def for_headers(self, headers: Headers) -> ErrorShape:
        """The shape to use for a request with these headers (usually itself)."""
        ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One path's methods, and the error shape of the dialect they speak."""

    methods: Mapping[str, Route]
    errors: ErrorShape


@dataclass(frozen=True, slots=True)
class RouteTable:
    exact: Mapping[str, Endpoint]
    prefixes: Mapping[str, Endpoint]  # a path that starts with the key and is longer
    areas: Mapping[str, ErrorShape]  # errors of an unrouted path starting with the key
    fallback: ErrorShape  # errors of any other unrouted path

    def find(self, path: str) -> Endpoint | None:
        endpoint = self.exact.get(path)
        if endpoint is not None:
            return endpoint
        for prefix, candidate in self.prefixes.items():
            if path.startswith(prefix) and len(path) > len(prefix):
                return candidate
        return None

    def errors_of(self, path: str, endpoint: Endpoint | None) -> ErrorShape:
        if endpoint is not None:
            return endpoint.errors
        for area, errors in self.areas.items():
            if path.startswith(area) or path == area.rstrip("/"):
                return errors
        return self.fallback


class Router:
    def __init__(self, app: App, table: RouteTable) -> None:
        self.app = app
        self.table = table
        token = app.settings.access_token
        self._token = token.encode() if token else b""
        self.policy = browser.BrowserPolicy.from_settings(app.settings)
        self.exchanges = app.exchanges

    async def __call__(self, request: Request, out: Responder) -> None:
        endpoint = self.table.find(request.path)
        errors = self.table.errors_of(request.path, endpoint).for_headers(request.headers)
        exchange = self.exchanges.begin(request.method, request.path, request.client,
                                        errors.label)
        running = exchanges.enter(exchange)  # routes and the relay fill it in
        gone = False
        try:
            out.extra_headers = browser.admit(self.policy, request.headers)
            await self._dispatch(request, out, endpoint)
        except ClientGone:
            gone = True
            raise
        except ApiError as error:
            exchange.failure = error.message
            if not out.started:
                await out.respond(error.status, [*JSON_HEADERS, *error.headers],
                                  errors.render(error))
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            exchange.failure = exchanges.INTERNAL_ERROR
            if not out.started:
                internal = ApiError(exchanges.INTERNAL_ERROR, status=500)
                await out.respond(500, JSON_HEADERS, errors.render(internal))
        finally:
            exchanges.leave(running)
            # out.client_gone: the adapter cancelled the route (exchange.py)
            self._finish(exchange, out.status, gone or out.client_gone)

    def _finish(self, exchange: exchanges.Exchange, status: int, client_gone: bool) -> None:
        """Close the exchange's record and write its access line."""
        self.exchanges.end(exchange, status, client_gone=client_gone)
        level = access_level(exchange.path, status)
        if log.isEnabledFor(level):
            fields = exchange.log_fields()
            log.log(level, "%s", logs.access_line(fields), extra={logs.FIELDS: fields})

    async def _dispatch(self, request: Request, out: Responder, endpoint: Endpoint | None) -> None:
        if endpoint is None:
            raise ClientError(f"no route for {request.method} {request.path}", status=404,
                              error_type="not_found_error", code="not_found")
        methods = endpoint.methods
        if request.method == "OPTIONS":
            await self._options(request, out, methods)
            return
        handler = methods.get(request.method)
        if handler is None and request.method == "HEAD":
            handler = methods.get("GET")
        if handler is None:
            raise ClientError(f"{request.method} is not allowed on {request.path}", status=405,
                              code="method_not_allowed", headers=(_allow(methods),))
        if request.path not in OPEN_PATHS:
            self._check_token(request)
        if request.method in browser.JSON_METHODS:
            browser.require_json(request.headers)
        await handler(self.app, request, out)

    async def _options(self, request: Request, out: Responder,
                       methods: Mapping[str, Route]) -> None:
        """A CORS preflight (its origin was admitted) or a plain OPTIONS: what the route allows."""
        if b"origin" in request.headers:
            await out.respond(204, browser.preflight(request.headers, methods), b"")
        else:
            await out.respond(204, [_allow(methods)], b"")

    def _check_token(self, request: Request) -> None:
        if not self._token:
            return
        offered = request.headers.get(b"x-api-key", b"")
        authorization = request.headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            offered = authorization[7:].strip()
        if not hmac.compare_digest(offered, self._token):
            raise ClientError("Invalid or missing server access token", status=401,
                              error_type="authentication_error", code="invalid_access_token")


def _allow(methods: Mapping[str, Route]) -> tuple[bytes, bytes]:
    return (b"allow", ", ".join(sorted(methods)).encode())


def access_level(path: str, status: int) -> int:
    """An access line's level: polled paths at DEBUG while they succeed; a 5xx (an
    unreachable backend, a descriptor limit) at WARNING, where an operator looks."""
    if status >= 500:
        return logging.WARNING
    if path in QUIET_PATHS and status < 400:
        return logging.DEBUG
    return logging.INFO
