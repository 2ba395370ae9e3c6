"""`chatmock` command line: `login`, `serve`, `info`."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Sequence

import trio

from chatmock import __version__, logs
from chatmock.app import App, build_app
from chatmock.config import Settings, add_serve_arguments, build_settings
from chatmock.errors import ConfigError
from chatmock.routes import PREFIX_ROUTES, ROUTES
from chatmock.server.exchange import ConnectionLimits
from chatmock.server.listen import open_listeners, serve, server_tls_context
from chatmock.server.router import Router

log = logging.getLogger("chatmock")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatmock", description="ChatGPT account → "
                                     "OpenAI, Anthropic and Ollama APIs on localhost.")
    parser.add_argument("--version", action="version", version=f"chatmock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the local API server")
    add_serve_arguments(serve_parser)
    add_login_arguments(commands.add_parser("login", help="sign in with your ChatGPT account"))
    info_parser = commands.add_parser("info", help="show the account and its usage limits")
    info_parser.add_argument("--json", action="store_true", help="print JSON (never tokens)")
    args = parser.parse_args(argv)
    if args.command in ("login", "info"):
        from chatmock import commands as other  # their code is not loaded by `serve`

        if args.command == "login":
            return other.run_login(args, os.environ)
        return other.run_info(as_json=args.json, env=os.environ)
    try:
        settings = build_settings(vars(args), os.environ)
    except ConfigError as exc:
        print(f"chatmock: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.verbose or settings.verbose_obfuscation or settings.debug,
               (settings.access_token,))
    try:
        tls = tls_of(settings)
    except (OSError, ssl.SSLError) as exc:
        print(f"chatmock: cannot load --tls-cert/--tls-key: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(run_server, settings, tls)
    except OSError as exc:
        print(f"chatmock: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0


def tune_gc() -> None:
    """Keep the collector off the start-up objects and run young collections less often.

    Everything alive once the app is built (modules, tables, the catalog) lives as
    long as the process: `gc.freeze` moves it out of the collector's scans, which
    otherwise grow with every open stream. A larger first threshold means fewer
    young collections on the per-delta garbage. Measured with 5,000 held streams:
    server CPU per 1,000 deltas 214 → 135 ms (see bench/RESULTS.md).
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young * 10, middle, old)


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser; the URL is printed either way")
    parser.add_argument("--headless", action="store_true",
                        help="sign in with a device code instead of the localhost callback")
    parser.add_argument("--verbose", action="store_true", help="log the sign-in's requests")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="give up after this long (default 600; 900 with --headless)")


def limits_of(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(max_header_bytes=settings.max_header_bytes,
                  max_body_bytes=settings.max_body_bytes,
                  header_timeout=settings.header_timeout, idle_timeout=settings.idle_timeout,
                  write_timeout=settings.write_timeout, max_streams=settings.h2_max_streams)


def tls_of(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context when --tls-cert/--tls-key are given; raises OSError or
    ssl.SSLError when they cannot be loaded."""
    if not settings.tls_cert:
        return None
    return server_tls_context(settings.tls_cert, settings.tls_key)


async def run_server(settings: Settings, tls: ssl.SSLContext | None = None) -> None:
    """Serve until SIGINT/SIGTERM, drain, return. A second signal stops at once."""
    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        listeners = await open_listeners(settings.host, settings.port)
        app = build_app(settings)
        tune_gc()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, signals, shutdown, nursery.cancel_scope)
            port = await nursery.start(_serve, app, settings, listeners, shutdown, tls,
                                       nursery.cancel_scope)
            log.info("chatmock %s listening on %s://%s:%d (upstream %s)", __version__,
                     "https" if tls else "http", settings.host, port, settings.upstream_url)
            nursery.start_soon(_after_start, app)
            nursery.start_soon(app.usage.run_writer)
        app.usage.flush()
        app.responses_store.close()
        await app.http.aclose()


async def _serve(app: App, settings: Settings, listeners: list[trio.SocketListener],
                 shutdown: trio.Event, tls: ssl.SSLContext | None, helpers: trio.CancelScope,
                 task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the server; when it has drained, stop the helper tasks beside it."""
    await serve(Router(app, ROUTES, PREFIX_ROUTES), listeners, limits=limits_of(settings),
                max_connections=settings.max_connections, shutdown=shutdown,
                shutdown_timeout=settings.shutdown_timeout, tls=tls, task_status=task_status)
    helpers.cancel()


async def _watch_signals(signals: AsyncIterator[int], shutdown: trio.Event,
                         everything: trio.CancelScope) -> None:
    async for signum in signals:
        if shutdown.is_set():
            log.warning("second signal: stopping now")
            everything.cancel()
            return
        log.info("%s received: draining (up to the shutdown timeout)",
                 signal.Signals(signum).name)
        shutdown.set()


async def _after_start(app: App) -> None:
    """Work that needs the credentials, once the server already answers.

    Decoding tokens imports pyjwt (and cryptography behind it), ~90 ms of import;
    done in a worker thread, the event loop keeps serving meanwhile."""
    await trio.to_thread.run_sync(importlib.import_module, "jwt")
    _report_credentials(app)
    await app.models.run()


def _report_credentials(app: App) -> None:
    credentials = app.backend.credentials.current()
    if credentials is None or (not credentials.usable and not credentials.refresh_token):
        log.warning("no ChatGPT credentials found: API calls will answer 401 until you run "
                    "`chatmock login`")
    else:
        log.info("using credentials from %s", credentials.path)
