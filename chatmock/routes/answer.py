"""The one answer skeleton every generation route shares.

    parse (the route, through its dialect)  ->  a `Plan`
    open the backend stream                 (`upstream.fallback.open_responses`)
    relay it, streamed                      (`relay`: the dialect's translator)
    or collect it                           (`collect`: the dialect's collector)
    raise a failure inside the collected answer, with the dialect's status
    send the collected answer               (the dialect's renderer)
    drain what follows the terminal event   (so the connection is pooled)

A failure inside a non-streamed answer (`response.failed`, `error`) becomes an
`UpstreamError` whose status the dialect gives (`Dialect.failure`, documented in
`chatmock/dialects/errors.py`): the same kind of failure gets the same kind of
status in every dialect -- a prompt past the context window is a 400
everywhere, as OpenAI's, Anthropic's and Ollama's own APIs answer it; limits
are 429; an overloaded backend is a 529 where Anthropic's API says so, else 502.
A streamed answer has already sent its 200: its failure is the stream's last
event, in the dialect's shape (the translator's `on_failed`).

The Responses WebSocket (`routes/responses_ws.py`) answers each of its
requests through `answer` too: its `Plan` carries the socket's account
`affinity`, and its Responder writes frames instead of HTTP body bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from chatmock.app import App
from chatmock.dialects.errors import Dialect
from chatmock.dialects.events import UpstreamTranslator
from chatmock.dialects.sampling import NONE, Sampling
from chatmock.logs import redact
from chatmock.net.response import UpstreamResponse
from chatmock.routes.relay import collect, drain, relay
from chatmock.server.exchange import Request, Responder, send_json
from chatmock.upstream.fallback import Headers, open_responses
from chatmock.upstream.gate import client_key


@dataclass(frozen=True, slots=True)
class Plan:
    """One request's answer as its dialect shapes it; `answer` does the rest."""

    payload: dict[str, Any]  # what goes upstream
    translator: UpstreamTranslator  # the stream's translator, or the answer's collector
    errors: Dialect  # the status of a failure inside a collected answer
    stream_headers: Headers | None = None  # a streamed answer's headers; None: collected
    render: Callable[[], Any] = lambda: None  # the collected answer's JSON (after collect)
    fallback: dict[str, Any] | None = None  # the payload without chatmock's added tools
    forwarded: Headers = ()  # a Codex client's own headers, sent on upstream
    affinity: tuple[str, ...] = ()  # the account pool's keys besides the payload (a WebSocket)
    sampling: Sampling = NONE  # for a chat-completions provider only (dialects/sampling.py)
    keep_payload: bool = False  # the Responses routes store the turn's input at its end


def log_body(app: App, log: logging.Logger, what: str, body: Any) -> None:
    """The client's request body at DEBUG, redacted, when `--verbose` or `--debug` asks."""
    if app.settings.verbose or app.settings.debug:
        log.debug("%s request: %s", what, redact(json.dumps(body)[:20000]))


def streamed(payload: dict[str, Any], translator: UpstreamTranslator, errors: Dialect,
             headers: Headers, fallback: dict[str, Any] | None = None,
             sampling: Sampling = NONE) -> Plan:
    return Plan(payload, translator, errors, headers, fallback=fallback, sampling=sampling)


def collected(payload: dict[str, Any], collector: UpstreamTranslator, errors: Dialect,
              render: Callable[[], Any], fallback: dict[str, Any] | None = None,
              sampling: Sampling = NONE) -> Plan:
    return Plan(payload, collector, errors, render=render, fallback=fallback,
                sampling=sampling)


async def answer(app: App, request: Request, out: Responder, plan: Plan) -> None:
    """Serve `plan`: relay the backend's stream, or collect it and send one JSON answer."""
    payload = plan.payload
    session = app.sessions.for_request(request.headers, payload.get("instructions"),
                                       payload["input"])
    request.release_body()  # parsed into `plan`: not kept for the stream's minutes
    async with open_upstream(app, request, plan, session) as upstream:
        if not plan.keep_payload:
            release_payload(plan)
        if plan.stream_headers is not None:
            await relay(upstream, plan.translator, out, plan.stream_headers)
            return
        await collect(upstream, plan.translator)
        if plan.translator.error is not None:
            raise plan.errors.failure(*plan.translator.error)
        await send_json(out, 200, plan.render())
        await drain(upstream)


def release_payload(plan: Plan) -> None:
    """Empty what was sent once the backend has answered: the layers that opened the stream
    (and the route) still hold the payload's dict for the stream's life, and an agent's
    request carries its whole conversation, often hundreds of KiB (issue 13: memory per
    open stream). Emptied in place, as every holder shares the one dict."""
    plan.payload.clear()
    if plan.fallback is not None:
        plan.fallback.clear()


def open_upstream(app: App, request: Request, plan: Plan,
                  session: str) -> AbstractAsyncContextManager[UpstreamResponse]:
    """The stream of the provider this request is for (`upstream/routing.py`); the Codex
    backend alone when no registry was built (tests that make an `App` by hand)."""
    if app.upstreams is None:
        return open_responses(app.backend, plan.payload, session, plan.forwarded,
                              fallback=plan.fallback, affinity=plan.affinity)
    return app.upstreams.open(plan.payload, session, plan.forwarded, fallback=plan.fallback,
                              client=client_of(request), query_provider=query_provider(request),
                              affinity=plan.affinity, sampling=plan.sampling)


def query_provider(request: Request) -> str | None:
    """`?provider=NAME` on any generation route."""
    if "provider=" not in request.query:
        return None
    values = parse_qs(request.query).get("provider")
    return values[-1] if values else None


def client_of(request: Request) -> str:
    """Who the request belongs to for the gate's fairness: the API key it presents (hashed
    by `client_key`), else its peer address."""
    headers = request.headers
    key = headers.get(b"x-api-key") or headers.get(b"authorization", b"").removeprefix(
        b"Bearer ").strip()
    return client_key(key or None, request.client)
