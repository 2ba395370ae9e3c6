"""The `login` and `info` commands: argument wiring, output, exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from chatmock import logs
from chatmock.auth.accounts import account_path, accounts_dir, check_name, email_of
from chatmock.auth.login import LoginError, LoginOptions, browser_login, device_login
from chatmock.auth.oauth import DEFAULT_CALLBACK_PORT, OAuthClient
from chatmock.auth.tokens import find_auth, read_credentials
from chatmock.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_ISSUER,
    Settings,
    build_settings,
    check_upstream_url,
    home_dir,
)
from chatmock.errors import ConfigError
from chatmock.info import StoreSummary, account_summary, render_json, render_text
from chatmock.net.client import HTTPClient
from chatmock.net.redis import RedisError
from chatmock.redis_url import EMBEDDED, parse_redis_url
from chatmock.state.stores import sqlite_figures, store_path
from chatmock.state.usage_limits import limits_path, load, newest
from chatmock.state.usage_shared import read_shared_usage
from chatmock.upstream.providers import build_registry


def login_options(args: argparse.Namespace, env: Mapping[str, str]) -> LoginOptions:
    """Options from flags and the CHATGPT_LOCAL_* variables of auth.md §1."""
    issuer = env.get("CHATGPT_LOCAL_ISSUER", "").strip() or DEFAULT_ISSUER
    client_id = env.get("CHATGPT_LOCAL_CLIENT_ID", DEFAULT_CLIENT_ID).strip()
    if not client_id:
        raise ConfigError("No OAuth client id configured. Set CHATGPT_LOCAL_CLIENT_ID.")
    check_upstream_url(issuer)
    port_text = env.get("CHATGPT_LOCAL_LOGIN_PORT", "").strip()
    try:
        port = int(port_text) if port_text else DEFAULT_CALLBACK_PORT
    except ValueError:
        raise ConfigError(f"CHATGPT_LOCAL_LOGIN_PORT: {port_text!r} is not a port") from None
    timeout = args.timeout if args.timeout is not None else (900.0 if args.headless else 600.0)
    return LoginOptions(issuer=issuer, client_id=client_id,
                        bind=env.get("CHATGPT_LOCAL_LOGIN_BIND", "").strip() or "127.0.0.1",
                        port=port, auth_path=home_dir(env) / "auth.json",
                        open_browser=not args.no_browser, timeout=timeout)


def run_login(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    logs.setup(args.verbose)
    try:
        options = login_options(args, env)
        account = getattr(args, "account", None)
        if account is not None:
            options = dataclasses.replace(options, auth_path=pool_login_path(env, account))
        trio.run(_login, options, args.headless)
        saved = options.auth_path if account is None else name_account(options.auth_path, account)
    except (LoginError, ConfigError) as exc:
        print(f"ERROR: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, LoginError) else 1
    except KeyboardInterrupt:
        print("Keyboard interrupt received, exiting.", file=sys.stderr)
        return 1
    print(f"Login successful. Tokens saved to {saved}")
    return 0


def pool_login_path(env: Mapping[str, str], name: str) -> Path:
    """Where `login --account [NAME]` writes: the account's file, or (no name yet: the
    email decides) a temporary file in the accounts folder."""
    if not name:
        return accounts_dir(env) / f".login-{os.getpid()}.json"
    try:
        return account_path(env, check_name(name))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def name_account(path: Path, name: str) -> Path:
    """The signed-in account's file under its final name (its email when none was given)."""
    if name:
        return path
    credentials = read_credentials(path)
    email = email_of(credentials.id_token) if credentials is not None else ""
    try:
        final = path.with_name(check_name(email) + ".json")
    except ValueError:
        path.unlink(missing_ok=True)
        raise ConfigError(f"the sign-in names no usable email ({email!r}): "
                          "run `chatmock login --account NAME`") from None
    path.replace(final)
    return final


async def _login(options: LoginOptions, headless: bool) -> None:
    http = HTTPClient(connect_timeout=30, read_timeout=30, pool_size=2)
    oauth = OAuthClient(options.issuer, options.client_id, http)
    try:
        if headless:
            await device_login(options, oauth, _say)
        else:
            await browser_login(options, oauth, _read_line, _say)
    finally:
        await http.aclose()


def _say(text: str) -> None:
    print(text, flush=True)


async def _read_line() -> str:
    return await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)


EXIT_NOT_SIGNED_IN = 1


def run_info(*, as_json: bool, env: Mapping[str, str]) -> int:
    """Print the account and usage; exit code 0 when signed in, else `EXIT_NOT_SIGNED_IN`
    (the report is printed either way, so scripts can test `chatmock info` alone)."""
    credentials, problems = find_auth(env)
    account = account_summary(credentials)
    usage = load(limits_path(env))
    try:
        usage = newest(usage, read_shared_usage(env, getattr(credentials, "account_id", "")))
    except RedisError as error:
        print(f"warning: the fleet's usage figures could not be read: {error}", file=sys.stderr)
    store = store_summary(env)
    now = datetime.now(UTC)
    if as_json:
        document = render_json(account, usage, now=now, store=store,
                               providers=providers_summary(env))
        if problems:
            document["problems"] = problems
        print(json.dumps(document, indent=2))
    else:
        for problem in problems:
            print(f"warning: ignoring {problem}", file=sys.stderr)
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        sys.stdout.write(render_text(account, usage, now=now, color=color, store=store,
                                     providers=providers_summary(env)))
    return 0 if account["signed_in"] else EXIT_NOT_SIGNED_IN


def providers_summary(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every provider the settings and environment describe, with its gate's limits
    (per process, or across the fleet with `--state redis://...`; the live queues are
    in the server's /health); no secret, only what is missing."""
    try:
        settings = build_settings({}, env)
        registry = build_registry(settings, env)
    except ConfigError:  # e.g. a default provider without its key: show the rest
        try:
            settings = dataclasses.replace(build_settings({}, env), provider="chatgpt")
            registry = build_registry(settings, env)
        except ConfigError:
            return []
    gate = {"max_concurrency": settings.max_concurrency, "queue_timeout": settings.queue_timeout,
            "scope": "process" if settings.state == EMBEDDED else "fleet"}
    return [{**p.describe(), "default": p.name == registry.default,
             "gate": gate if p.kind != "codex" and settings.max_concurrency else None}
            for p in registry.providers.values()]


def store_summary(env: Mapping[str, str]) -> StoreSummary:
    """The response store `serve` would use with this environment, and how full it is.

    Bounds come from the environment (or the defaults): flags given to a running
    `serve` are not visible from here."""
    import sqlite3

    try:
        settings = build_settings({}, env)
    except ConfigError:
        settings = Settings()
    summary = StoreSummary(kind=settings.responses_store,
                           max_entries=settings.responses_capacity,
                           max_bytes=settings.responses_max_bytes)
    if settings.state != EMBEDDED:  # fleet mode: the turns are in Redis
        summary["kind"], summary["path"] = "redis", str(parse_redis_url(settings.state))
        return summary
    if settings.responses_store != "sqlite":
        return summary
    path = store_path(env)
    summary["path"] = str(path)
    try:
        entries, payload, on_disk = sqlite_figures(path)
    except FileNotFoundError:
        entries = payload = on_disk = 0  # no turn stored yet
    except (OSError, sqlite3.Error) as error:
        summary["problem"] = str(error)
        return summary
    summary["entries"], summary["bytes"], summary["file_bytes"] = entries, payload, on_disk
    return summary
