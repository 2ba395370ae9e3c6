"""`chatmock` command line: `login`, `serve`, `info`, `doctor`, `accounts`, `logout`."""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import trio

from chatmock import __version__, banner, logs
from chatmock.app import App, open_app
from chatmock.config import (
    Settings,
    add_serve_arguments,
    build_settings,
    is_loopback,
    worker_count,
)
from chatmock.errors import ConfigError
from chatmock.routes import TABLE, load_all
from chatmock.server.exchange import ConnectionLimits
from chatmock.server.listen import (
    bind_sockets,
    listeners_of,
    open_listeners,
    raise_open_file_limit,
    serve,
    server_tls_context,
)
from chatmock.server.router import Router
from chatmock.upstream.providers import build_registry
from chatmock.worker import EXIT_CONFIG

if TYPE_CHECKING:
    from chatmock.supervisor import Inherited

log = logging.getLogger("chatmock")
SETTLE_AFTER = 0.1  # seconds after the server starts answering: see `_settle`


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command_line(sys.argv[1:] if argv is None else list(argv))
    if args.command != "serve":
        gc.enable()  # off during start-up (chatmock/__main__.py); serve's `tune_gc` turns it on
    if args.command == "doctor":
        from chatmock import doctor  # not loaded by `serve`

        return doctor.run(vars(args), os.environ, as_json=args.json)
    if args.command in ("accounts", "logout"):
        from chatmock import accounts_command

        if args.command == "logout":
            return accounts_command.run_logout(args.name, os.environ)
        return accounts_command.run_accounts(as_json=args.json, env=os.environ)
    if args.command in ("login", "info"):
        from chatmock import commands as other  # their code is not loaded by `serve`

        if args.command == "login":
            return other.run_login(args, os.environ)
        return other.run_info(as_json=args.json, env=os.environ)
    try:
        settings = build_settings(vars(args), os.environ)
        providers = build_registry(settings, os.environ)
    except ConfigError as exc:
        print(f"chatmock: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.verbose or settings.verbose_obfuscation or settings.debug,
               (settings.access_token, *providers.secrets()), settings.log_format)
    try:
        tls = tls_of(settings)
    except (OSError, ssl.SSLError) as exc:
        print(f"chatmock: cannot load --tls-cert/--tls-key: {exc}", file=sys.stderr)
        return 2
    workers = worker_count(settings)
    if workers > 1:
        return supervise(settings, workers, tls)
    return serve_process(settings, tls)


def serve_process(settings: Settings, tls: ssl.SSLContext | None = None,
                  inherited: Inherited | None = None) -> int:
    """Run one server process (alone, or as a worker); its exit code."""
    try:
        trio.run(run_server, settings, tls, inherited)
    except ConfigError as exc:  # a setting that needed the app to check (a prompt file)
        print(f"chatmock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"chatmock: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0


def supervise(settings: Settings, workers: int, tls: ssl.SSLContext | None) -> int:
    """`serve --workers N`: bind once, then fork and keep the workers (chatmock/supervisor.py)."""
    from chatmock.supervisor import Supervisor

    try:
        sockets = bind_sockets(settings.host, settings.port)
    except OSError as exc:
        print(f"chatmock: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)
        return 1
    raise_open_file_limit()
    # Made at import and inherited: the workers' one prompt-cache key (state/prompt_cache.py),
    # which their apps would otherwise import, each its own, after the fork (`App.complete`).
    importlib.import_module("chatmock.state.prompt_cache")
    gc.collect()
    gc.freeze()  # what the workers inherit stays out of their collections: its pages stay shared
    gc.enable()  # off during start-up (chatmock/__main__.py)
    return Supervisor(workers, sockets, functools.partial(serve_process, settings, tls)).run()


def parse_command_line(argv: list[str]) -> argparse.Namespace:
    """The parsed arguments; a usage error exits 2 with the usage of the command
    whose arguments are wrong (`chatmock serve --prot 1` shows `serve`'s)."""
    parser = argparse.ArgumentParser(prog="chatmock", description="ChatGPT account → "
                                     "OpenAI, Anthropic and Ollama APIs on localhost.")
    parser.add_argument("--version", action="version", version=f"chatmock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = set(argv)  # serve's ~70 options are added only where they can be used (~1 ms each)
    serve_parser = commands.add_parser("serve", help="run the local API server")
    if "serve" in named:
        add_serve_arguments(serve_parser)
    add_login_arguments(commands.add_parser("login", help="sign in with your ChatGPT account"))
    info_parser = commands.add_parser("info", help="show the account and its usage limits "
                                      "(exit code 1 when not signed in)")
    info_parser.add_argument("--json", action="store_true", help="print JSON (never tokens)")
    accounts_parser = commands.add_parser(
        "accounts", help="list the accounts of the pool: plan, usage windows and state")
    accounts_parser.add_argument("--json", action="store_true", help="print JSON (never tokens)")
    logout_parser = commands.add_parser("logout", help="remove an account of the pool")
    logout_parser.add_argument("name", help="the account's name (see `chatmock accounts`)")
    doctor_parser = commands.add_parser(
        "doctor", help="check sign-in, token, clock, port, TLS and the backend",
        description="Check what `serve` needs, one line per check. Takes serve's options, "
                    "so it checks the configuration serve would run with.")
    doctor_parser.add_argument("--json", action="store_true", help="print JSON (never tokens)")
    if "doctor" in named:
        add_serve_arguments(doctor_parser)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        before_command = argv[:argv.index(args.command)]
        owner = parser if any(arg in before_command for arg in unknown) else \
            commands.choices[args.command]
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def tune_gc() -> None:
    """Keep the collector off the start-up objects and run young collections less often.

    Everything alive once the app is built (modules, tables, the catalog) lives as
    long as the process: `gc.freeze` moves it out of the collector's scans, which
    otherwise grow with every open stream. A larger first threshold means fewer
    young collections on the per-delta garbage. Measured with 5,000 held streams:
    server CPU per 1,000 deltas 214 → 135 ms (see bench/RESULTS.md).

    The collector is turned on here: `python -m chatmock` starts with it off
    (chatmock/__main__.py), so this is the one collection of start-up.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young * 10, middle, old)
    gc.enable()


async def _settle(app: App, nursery: trio.Nursery) -> None:
    """What start-up left for later, once the connections that were waiting when the
    server started have been answered: the rest of the app (`_complete`, ~12 ms, unless
    a request built it already), the routes not imported by a request yet (~15 ms, so
    that a client's first request does not wait for them), then `tune_gc`, the one
    collection of start-up (~13 ms), which freezes them with the rest."""
    await trio.sleep(SETTLE_AFTER)
    _complete(app, nursery)
    load_all()
    tune_gc()


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser; the URL is printed either way")
    parser.add_argument("--headless", action="store_true",
                        help="sign in with a device code instead of the localhost callback")
    parser.add_argument("--verbose", action="store_true", help="log the sign-in's requests")
    parser.add_argument("--account", nargs="?", const="", default=None, metavar="NAME",
                        help="add the sign-in to the account pool as NAME (default: its "
                             "email) instead of writing auth.json")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="give up after this long (default 600; 900 with --headless)")


def limits_of(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(max_header_bytes=settings.max_header_bytes,
                  max_body_bytes=settings.max_body_bytes,
                  header_timeout=settings.header_timeout, body_timeout=settings.body_timeout,
                  idle_timeout=settings.idle_timeout, write_timeout=settings.write_timeout,
                  max_streams=settings.h2_max_streams)


def tls_of(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context when --tls-cert/--tls-key are given; raises OSError or
    ssl.SSLError when they cannot be loaded."""
    if not settings.tls_cert:
        return None
    return server_tls_context(settings.tls_cert, settings.tls_key)


async def run_server(settings: Settings, tls: ssl.SSLContext | None = None,
                     inherited: Inherited | None = None) -> None:
    """Serve until SIGINT/SIGTERM, drain, return. A second signal stops at once.

    A worker of `serve --workers` serves the sockets it `inherited`, and drains
    by itself if its supervisor is gone."""
    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        listeners = listeners_of(inherited.sockets) if inherited else \
            await open_listeners(settings.host, settings.port)
        app = open_app(settings)  # the rest once the server answers: `_settle`
        if inherited is not None:
            app.worker = inherited.info
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, signals, shutdown, nursery.cancel_scope)
            if inherited is not None:
                nursery.start_soon(_watch_supervisor, inherited.supervisor_alive, shutdown)
            port = await nursery.start(_serve, app, settings, listeners, shutdown, tls,
                                       nursery.cancel_scope)
            text, fields = banner.start_banner(__version__, settings.host, port,
                                               settings.upstream_url, tls=tls is not None)
            log.info("%s", text, extra={logs.FIELDS: fields})
            warn_if_open(settings)
            nursery.start_soon(_settle, app, nursery)
            nursery.start_soon(app.responses_store.maintain)
            if app.leases is not None:
                nursery.start_soon(app.leases.maintain)
        for usage in app.usages():
            usage.flush()
        await app.responses_store.aclose()
        if app.leases is not None:  # given back now rather than left to expire
            with trio.move_on_after(1.0):
                await app.leases.sync(renew=False)
        if app.redis is not None:
            await app.redis.aclose()
        if app.built is not None:  # (a stop within `_settle`'s delay never built it)
            await app.http.aclose()


def _complete(app: App, nursery: trio.Nursery) -> None:
    """Build the rest of the app (`App.complete`: the API routes' objects, ~12 ms with
    their imports) if no request has yet, then start what needs it."""
    app.complete()
    nursery.start_soon(_after_start, app)
    for usage in app.usages():
        nursery.start_soon(usage.run_writer)
    nursery.start_soon(app.http.close_idle_forever)


async def _serve(app: App, settings: Settings, listeners: list[trio.SocketListener],
                 shutdown: trio.Event, tls: ssl.SSLContext | None, helpers: trio.CancelScope,
                 task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the server; when it has drained, stop the helper tasks beside it."""
    await serve(Router(app, TABLE), listeners, limits=limits_of(settings),
                max_connections=settings.max_connections, shutdown=shutdown,
                shutdown_timeout=settings.shutdown_timeout, tls=tls, task_status=task_status)
    helpers.cancel()


def warn_if_open(settings: Settings) -> None:
    """Say loudly at start what an open configuration lets others do."""
    if settings.insecure_no_auth and not settings.access_token and not is_loopback(settings.host):
        log.warning("INSECURE: listening on %s without an access token (--insecure-no-auth): "
                    "anyone who can reach this address can use your ChatGPT account",
                    settings.host)
    if "*" in settings.cors_origins and not settings.access_token:
        log.warning("INSECURE: --cors-origins '*' without an access token: any web page "
                    "you open can use your ChatGPT account through this server")


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


async def _watch_supervisor(alive: int, shutdown: trio.Event) -> None:
    """Drain once the supervisor is gone: its end of the pipe closes with it."""
    await trio.lowlevel.wait_readable(alive)
    if not shutdown.is_set():
        log.warning("the supervisor is gone: draining")
        shutdown.set()


async def _after_start(app: App) -> None:
    """Work that needs the credentials, once the server already answers.

    Decoding tokens imports pyjwt (with cryptography behind it when that is
    installed), tens of milliseconds of import: done in a worker thread, so that
    the event loop keeps serving meanwhile."""
    await trio.to_thread.run_sync(importlib.import_module, "jwt")
    _report_credentials(app)
    await app.models.run()


def _report_credentials(app: App) -> None:
    credentials = app.backend.credentials.current()
    if credentials is None or (not credentials.usable and not credentials.refresh_token):
        log.warning("no ChatGPT credentials found: API calls will answer 401 until you run "
                    "`chatmock login`")
    else:
        text, fields = banner.account_banner(credentials)
        log.info("%s", text, extra={logs.FIELDS: fields})
