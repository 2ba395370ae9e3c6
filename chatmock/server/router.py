"""(method, path) → route function, plus what every route shares.

The router first applies the browser rules of `server/browser.py` (Host and
Origin on every request, before any route; Content-Type on JSON routes) and
answers CORS preflights. It checks the access token (constant-time) everywhere
except `/` and `/health`, renders any `ApiError` in the dialect the path
belongs to, turns unexpected exceptions into a logged 500, and writes one
access-log line per request (at DEBUG for the polled `/health` and
`/status.json` when they succeed: a health check or an open status page would
fill the log). Each request gets an `Exchange` record (`state/exchanges.py`),
made the running task's for the route, the relay and the backend to fill in;
the access line is written from it. Routes are plain async functions
`route(app, request, responder)`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from chatmock import logs
from chatmock.app import App
from chatmock.dialects.errors import dialect_of, render
from chatmock.errors import ApiError, ClientError
from chatmock.server import browser
from chatmock.server.exchange import JSON_HEADERS, ClientGone, Request, Responder
from chatmock.state import exchanges

log = logging.getLogger("chatmock.access")

Route = Callable[[App, Request, Responder], Awaitable[None]]
OPEN_PATHS = frozenset({"/", "/health"})
QUIET_PATHS = frozenset({"/health", "/status.json"})  # polled: logged at DEBUG unless refused


class Router:
    def __init__(self, app: App, routes: dict[str, dict[str, Route]],
                 prefixes: dict[str, dict[str, Route]] | None = None) -> None:
        self.app = app
        self.routes = routes
        self.prefixes = prefixes or {}
        token = app.settings.access_token
        self._token = token.encode() if token else b""
        self.policy = browser.BrowserPolicy.from_settings(app.settings)
        self.exchanges = app.exchanges

    async def __call__(self, request: Request, out: Responder) -> None:
        dialect = dialect_of(request.path, request.headers)
        exchange = self.exchanges.begin(request.method, request.path, request.client,
                                        dialect.value)
        running = exchanges.enter(exchange)  # routes and the relay fill it in
        gone = False
        try:
            out.extra_headers = browser.admit(self.policy, request.headers)
            await self._dispatch(request, out)
        except ClientGone:
            gone = True
            raise
        except ApiError as error:
            exchange.failure = error.message
            if not out.started:
                await out.respond(error.status, [*JSON_HEADERS, *error.headers],
                                  render(error, dialect))
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            exchange.failure = exchanges.INTERNAL_ERROR
            if not out.started:
                internal = ApiError(exchanges.INTERNAL_ERROR, status=500)
                await out.respond(500, JSON_HEADERS, render(internal, dialect))
        finally:
            exchanges.leave(running)
            # out.client_gone: the adapter cancelled the route (exchange.py)
            self._finish(exchange, out.status, gone or out.client_gone)

    def _finish(self, exchange: exchanges.Exchange, status: int, client_gone: bool) -> None:
        """Close the exchange's record and write its access line."""
        self.exchanges.end(exchange, status, client_gone=client_gone)
        quiet = exchange.path in QUIET_PATHS and status < 400
        level = logging.DEBUG if quiet else logging.INFO
        if log.isEnabledFor(level):
            fields = exchange.log_fields()
            log.log(level, "%s", logs.access_line(fields), extra={logs.FIELDS: fields})

    async def _dispatch(self, request: Request, out: Responder) -> None:
        methods = self.routes.get(request.path) or self._prefix_match(request.path)
        if methods is None:
            raise ClientError(f"no route for {request.method} {request.path}", status=404,
                              error_type="not_found_error", code="not_found")
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

    async def _options(self, request: Request, out: Responder, methods: dict[str, Route]) -> None:
        """A CORS preflight (its origin was admitted) or a plain OPTIONS: what the route allows."""
        if b"origin" in request.headers:
            await out.respond(204, browser.preflight(request.headers, methods), b"")
        else:
            await out.respond(204, [_allow(methods)], b"")

    def _prefix_match(self, path: str) -> dict[str, Route] | None:
        for prefix, methods in self.prefixes.items():
            if path.startswith(prefix) and len(path) > len(prefix):
                return methods
        return None

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


def _allow(methods: dict[str, Route]) -> tuple[bytes, bytes]:
    return (b"allow", ", ".join(sorted(methods)).encode())
