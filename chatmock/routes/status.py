"""The status page: `GET /` for a browser (`status_page.PAGE`) and `GET /status.json` behind it.

The page is static: it holds no data, so `/` stays open like today. Everything it
shows comes from `/status.json`, which is an API route like any other: when an
access token is set it needs it (it shows the account and its usage), and the
browser rules (`server/browser.py`) apply to both. With a token, the page asks for it
once, keeps it in the tab's `sessionStorage` and sends it as `Authorization: Bearer`;
it never goes into a URL.

`/status.json` (never a token, never a secret; messages redacted):

* `server`: version, start time, uptime;
* `accounts`: one entry per signed-in account (today the ChatGPT one): the fields of
  `chatmock info --json` (`signed_in`, `login`, `plan`, `account_id`,
  `token_expires_at`) with `provider` (the provider's name in `providers`) and
  `usage_limits` (the windows, `used_percent`, `resets_at_rfc3339`);
* `models`: the catalog (`id`, `efforts`, `provider`) and where it came from;
* `responses_store`: what `/health` shows;
* `providers`: every configured provider (`chatmock.upstream.providers`'s
  `describe()`), `default` marking the one used without a prefix, and `gate`, its
  concurrency gate's figures (`GateStats`) once gates are wired (null before);
* `live`: the exchanges in flight that reached a backend (`state/exchanges.py`);
* `errors`: the latest failures, newest first (a bounded ring).

Accounts and providers are lists keyed by provider name so that more accounts and
providers add entries, not fields.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from chatmock import __version__
from chatmock.app import App
from chatmock.routes.common import providers_json, store_figures
from chatmock.routes.status_page import PAGE, PAGE_HEADERS
from chatmock.server.exchange import Request, Responder, send_json

CODEX_PROVIDER = "chatgpt"
NO_STORE = ((b"cache-control", b"no-store"),)


async def page(app: App, request: Request, out: Responder) -> None:
    await out.respond(200, PAGE_HEADERS, PAGE)


async def status_json(app: App, request: Request, out: Responder) -> None:
    await send_json(out, 200, status_document(app), NO_STORE)


def status_document(app: App) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"server": server_json(app, now), "accounts": accounts_json(app, now),
            "models": models_json(app), "responses_store": store_figures(app),
            "providers": providers_json(app), "live": app.exchanges.in_flight(),
            "errors": app.exchanges.recent_errors()}


def server_json(app: App, now: datetime) -> dict[str, Any]:
    from chatmock.info import format_rfc3339  # `info`: not imported before the listener

    started = datetime.fromtimestamp(app.started_at, UTC)
    return {"service": "chatmock", "version": __version__, "now": format_rfc3339(now),
            "started_at": format_rfc3339(started),
            "uptime_seconds": int(time.time() - app.started_at)}


def accounts_json(app: App, now: datetime) -> list[dict[str, Any]]:
    """The ChatGPT accounts as `chatmock info --json` shows one (no token, ever); with
    a pool, each with its name and state (`chatmock accounts`)."""
    from chatmock.info import account_summary, render_json

    pool = app.backend.pool
    if pool.single:
        credentials = app.backend.credentials.current()
        document = render_json(account_summary(credentials), app.usage.newest(), now=now)
        return [{**document["account"], "provider": CODEX_PROVIDER,
                 "usage_limits": document["usage_limits"]}]
    found = []
    for account in pool.accounts:
        usage = account.usage.newest() if account.usage is not None else None
        document = render_json(account_summary(account.credentials.current()), usage, now=now)
        found.append({**document["account"], "provider": CODEX_PROVIDER, "name": account.name,
                      "state": pool.state_of(account), "usage_limits": document["usage_limits"]})
    return found


def models_json(app: App) -> dict[str, Any]:
    return {"source": app.models.source,
            "list": [{"id": spec.slug, "efforts": list(spec.efforts),
                      "provider": CODEX_PROVIDER} for spec in app.catalog.specs]}
