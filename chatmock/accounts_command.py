"""`chatmock accounts [--json]` and `chatmock logout NAME`: the account pool from the shell.

`accounts` lists every account of the pool (chatmock/auth/accounts.py) with
its email, plan, usage windows and state: `ok`, `cooling down until T` (a
usage limit; from the pool state: `<home>/accounts/state.json`, or Redis when
`CHATMOCK_STATE` names one) or `needs login` (no usable tokens, or the
backend refused its token even after a refresh). Never a token.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import trio

from chatmock.auth.accounts import (
    AccountFile,
    accounts_dir,
    check_name,
    pool_files,
    remove_account,
)
from chatmock.auth.refresh_guard import identity
from chatmock.auth.tokens import Credentials, read_credentials
from chatmock.info import account_summary, render_json
from chatmock.net.redis import RedisClient, RedisError
from chatmock.state.pool_state import STATE_FILENAME, Mark, RedisPoolState, read_marks
from chatmock.state.usage_limits import limits_path, load, newest
from chatmock.state.usage_shared import STATE_VARIABLES, read_shared_usage
from chatmock.upstream.accounts import token_digest


def run_accounts(*, as_json: bool, env: Mapping[str, str]) -> int:
    files = pool_files(env, limits_path(env))
    marks = _marks(env)
    now = datetime.now(UTC)
    rows = [_row(file, marks, now, env) for file in files]
    if as_json:
        print(json.dumps({"accounts": rows}, indent=2))
    elif not rows:
        print("No account yet: run `chatmock login` (or `chatmock login --account NAME`).")
    else:
        for row in rows:
            print(_line(row))
    return 0


def run_logout(name: str, env: Mapping[str, str]) -> int:
    try:
        removed = remove_account(env, check_name(name) if name != "default" else name)
    except (ValueError, OSError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    if not removed:
        print(f"ERROR: no account named {name!r} (see `chatmock accounts`)", file=sys.stderr)
        return 1
    print(f"Signed out {name}: removed {', '.join(str(path) for path in removed)}")
    return 0


def _row(file: AccountFile, marks: dict[str, Mark], now: datetime,
         env: Mapping[str, str]) -> dict[str, Any]:
    credentials = read_credentials(file.path)
    summary = account_summary(credentials)
    usage = load(file.usage_path)
    with contextlib.suppress(RedisError):
        usage = newest(usage, read_shared_usage(env, getattr(credentials, "account_id", "")))
    document = render_json(summary, usage, now=now)
    return {"name": file.name, "email": summary["email"], "plan": summary["plan"],
            "auth_file": str(file.path), **_state(credentials, marks, now),
            "usage_limits": document["usage_limits"]}


def _state(credentials: Credentials | None, marks: dict[str, Mark],
           now: datetime) -> dict[str, Any]:
    if credentials is None or not (credentials.usable or credentials.refresh_token):
        return {"state": "needs login"}
    mark = marks.get(identity(credentials))
    if mark is not None and mark.login == token_digest(credentials):
        return {"state": "needs login"}
    if mark is not None and mark.cooling(now.timestamp()):
        until = datetime.fromtimestamp(mark.until, UTC)
        return {"state": "cooling down", "until": until.isoformat(timespec="seconds"),
                "reason": mark.reason}
    return {"state": "ok"}


def _line(row: dict[str, Any]) -> str:
    state = row["state"]
    if state == "cooling down":
        local = datetime.fromisoformat(row["until"]).astimezone()
        state = f"cooling down until {local:%Y-%m-%d %H:%M %Z} ({row['reason']})"
    windows = row["usage_limits"].get("windows") or []
    usage = ", ".join(f"{w['label']} {w['used_percent']:.0f}% used" for w in windows)
    return (f"{row['name']:<24} {row['email'] or '-':<28} {row['plan'] or '-':<10} "
            f"{state}" + (f"  [{usage}]" if usage else ""))


def _marks(env: Mapping[str, str]) -> dict[str, Mark]:
    """The pool state's marks: Redis in fleet mode (when the environment says so),
    else the embedded state file."""
    from chatmock.redis_url import EMBEDDED, parse_redis_url

    state = next((env[name] for name in STATE_VARIABLES if env.get(name)), EMBEDDED)
    if state.strip().lower() == EMBEDDED:
        return read_marks(accounts_dir(env) / STATE_FILENAME)

    async def read() -> dict[str, Mark]:
        redis = RedisClient(parse_redis_url(state), connect_timeout=2.0, timeout=2.0)
        try:
            return await RedisPoolState(redis).marks()
        finally:
            await redis.aclose()

    try:
        return trio.run(read)
    except ValueError:
        return {}
