"""(method, path) → route function, plus what every route shares.

The router answers CORS preflights, checks the access token (constant-time)
everywhere except `/` and `/health`, renders any `ApiError` in the dialect the
path belongs to, turns unexpected exceptions into a logged 500, and writes
one access-log line per request. Routes are plain async functions
`route(app, request, responder)`.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import trio

from chatmock.app import App
from chatmock.dialects.errors import dialect_of, render
from chatmock.errors import ApiError, ClientError
from chatmock.server.exchange import JSON_HEADERS, ClientGone, Request, Responder

log = logging.getLogger("chatmock.access")

Route = Callable[[App, Request, Responder], Awaitable[None]]
OPEN_PATHS = frozenset({"/", "/health"})
_DEFAULT_ALLOW_HEADERS = b"Authorization, Content-Type, Accept, X-Api-Key, Anthropic-Version"


class Router:
    def __init__(self, app: App, routes: dict[str, dict[str, Route]],
                 prefixes: dict[str, dict[str, Route]] | None = None) -> None:
        self.app = app
        self.routes = routes
        self.prefixes = prefixes or {}
        token = app.settings.access_token
        self._token = token.encode() if token else b""

    async def __call__(self, request: Request, out: Responder) -> None:
        started = time.perf_counter()
        dialect = dialect_of(request.path, request.headers)
        out.extra_headers = cors_headers(request)
        note = ""
        try:
            await self._dispatch(request, out)
        except (ClientGone, trio.Cancelled):  # the adapters cancel a route whose client left
            note = " (client gone)"
            raise
        except ApiError as error:
            note = f" ({error.message})" if error.status >= 500 else ""
            if not out.started:
                await out.respond(error.status, [*JSON_HEADERS, *error.headers],
                                  render(error, dialect))
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            if not out.started:
                internal = ApiError("internal error in chatmock (see its log)", status=500)
                await out.respond(500, JSON_HEADERS, render(internal, dialect))
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            log.info('%s "%s %s" %s %.1fms%s', request.client, request.method, request.path,
                     out.status or "-", elapsed, note)

    async def _dispatch(self, request: Request, out: Responder) -> None:
        if request.method == "OPTIONS":
            await out.respond(204, preflight_headers(request), b"")
            return
        methods = self.routes.get(request.path) or self._prefix_match(request.path)
        if methods is None:
            raise ClientError(f"no route for {request.method} {request.path}", status=404,
                              error_type="not_found_error", code="not_found")
        handler = methods.get(request.method)
        if handler is None and request.method == "HEAD":
            handler = methods.get("GET")
        if handler is None:
            allow = ", ".join(sorted(methods)).encode()
            raise ClientError(f"{request.method} is not allowed on {request.path}", status=405,
                              code="method_not_allowed", headers=((b"allow", allow),))
        if request.path not in OPEN_PATHS:
            self._check_token(request)
        await handler(self.app, request, out)

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


def cors_headers(request: Request) -> list[tuple[bytes, bytes]]:
    origin = request.headers.get(b"origin")
    if origin is None:
        return [(b"access-control-allow-origin", b"*")]
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]


def preflight_headers(request: Request) -> list[tuple[bytes, bytes]]:
    wanted = request.headers.get(b"access-control-request-headers") or _DEFAULT_ALLOW_HEADERS
    return [(b"access-control-allow-methods", b"GET, POST, OPTIONS, HEAD"),
            (b"access-control-allow-headers", wanted),
            (b"access-control-max-age", b"86400")]
