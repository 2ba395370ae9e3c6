"""Routes every client may call without credentials: `/` and `/health`."""

from __future__ import annotations

from chatmock import __version__
from chatmock.app import App
from chatmock.server.exchange import Request, Responder, send_json


async def health(app: App, request: Request, out: Responder) -> None:
    await send_json(out, 200, {"status": "ok", "service": "chatmock", "version": __version__})
