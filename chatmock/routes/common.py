"""Routes every client may call without credentials: `/` and `/health`."""

from __future__ import annotations

from typing import Any

from chatmock import __version__
from chatmock.app import App
from chatmock.server.exchange import Request, Responder, send_json
from chatmock.state.response_store import MemoryResponseStore


async def health(app: App, request: Request, out: Responder) -> None:
    await send_json(out, 200, {"status": "ok", "service": "chatmock", "version": __version__,
                               "responses_store": store_figures(app)})


def store_figures(app: App) -> dict[str, Any]:
    """The response store's kind; for the in-memory one (which lives only in this process)
    its entries and estimated bytes against the bounds. The SQLite store's figures are
    `chatmock info`'s: counting its rows is a query per call."""
    store = app.responses_store
    if isinstance(store, MemoryResponseStore):
        return {"kind": "memory", **store.figures()._asdict()}
    return {"kind": "sqlite"}
