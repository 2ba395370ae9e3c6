"""Routes every client may call without credentials: `/` and `/health`."""

from __future__ import annotations

from typing import Any

from chatmock import __version__
from chatmock.app import App
from chatmock.net import relayhub
from chatmock.server.exchange import Request, Responder, send_json


async def health(app: App, request: Request, out: Responder) -> None:
    usage = app.usage.newest()  # in fleet mode, the fleet's newest figures
    await send_json(out, 200, {"status": "ok", "service": "chatmock", "version": __version__,
                               "worker": app.worker.to_json(),
                               "responses_store": store_figures(app),
                               "usage_limits": usage.to_json() if usage else None,
                               "providers": providers_json(app),
                               "relay_hub": relayhub.figures()})


def store_figures(app: App) -> dict[str, Any]:
    """The response store's kind and what it can tell without I/O (its `health`)."""
    return app.responses_store.health()


def providers_json(app: App) -> list[dict[str, Any]]:
    """Every provider (no secret) with its gate's figures (null for an ungated one)."""
    if app.providers is None:
        return []
    found = []
    for provider in app.providers.providers.values():
        gate = app.gates.get(provider.name)
        found.append({**provider.describe(), "default": provider.name == app.providers.default,
                      "gate": gate.stats().to_json() if gate is not None else None})
    return found
