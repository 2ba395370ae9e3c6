"""The account pool's files: one auth file per ChatGPT account.

The default account is the `auth.json` of the search order (auth.md §3.3), so
a single sign-in keeps working as it always did. `chatmock login --account
NAME` adds `<home>/accounts/NAME.json` beside it (same layout, same atomic
0600 writes, and the same `<file>.lock` for refreshes); usage figures of a
named account go to `<home>/accounts/NAME.usage.json`.

Names are what a user types (`work`, `me@example.com`): letters, digits and
`@ . _ + -`, not starting with a dot, at most 64 characters; `default` is the
auth.json account's name, and `state` is not one: `<home>/accounts/state.json`
is the pool's own state (chatmock/state/pool_state.py), never an account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chatmock.auth.tokens import auth_search_paths, decode_claims, find_auth_path
from chatmock.config import home_dir

ACCOUNTS_DIR = "accounts"
DEFAULT_NAME = "default"
RESERVED_NAMES = frozenset({DEFAULT_NAME, "state"})  # state.json: pool_state.STATE_FILENAME
_NAME = re.compile(r"[A-Za-z0-9@_+-][A-Za-z0-9@._+-]{0,63}")
_SUFFIX = ".json"
_USAGE_SUFFIX = ".usage.json"


@dataclass(frozen=True, slots=True)
class AccountFile:
    """One account of the pool: its name, its auth file, where its usage goes."""

    name: str
    path: Path
    usage_path: Path
    default: bool = False


def check_name(name: str) -> str:
    """`name` if it can name an account file, else ValueError saying why."""
    if not _NAME.fullmatch(name) or name.endswith(_USAGE_SUFFIX.removesuffix(_SUFFIX)):
        raise ValueError(f"{name!r} cannot name an account: use letters, digits and "
                         "@ . _ + - (not first: a dot), at most 64 characters")
    if name in RESERVED_NAMES - {DEFAULT_NAME}:
        raise ValueError(f"{name!r} cannot name an account: chatmock keeps its own "
                         f"{name}.json beside the accounts")
    return name


def accounts_dir(env: Mapping[str, str]) -> Path:
    return home_dir(env) / ACCOUNTS_DIR


def account_path(env: Mapping[str, str], name: str) -> Path:
    """Where account `name` is (to be) written; `default` is `<home>/auth.json`."""
    if name == DEFAULT_NAME:
        return home_dir(env) / "auth.json"
    return accounts_dir(env) / (check_name(name) + _SUFFIX)


def named_accounts(env: Mapping[str, str]) -> list[AccountFile]:
    """The `<home>/accounts/*.json` accounts, sorted by name (usage files left out)."""
    folder = accounts_dir(env)
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    found = []
    for path in entries:
        name = path.name.removesuffix(_SUFFIX)
        if (path.name.endswith(_USAGE_SUFFIX) or not path.name.endswith(_SUFFIX)
                or not _NAME.fullmatch(name) or name in RESERVED_NAMES):
            continue
        found.append(AccountFile(name, path, folder / (name + _USAGE_SUFFIX)))
    return found


def pool_files(env: Mapping[str, str], default_usage: Path) -> list[AccountFile]:
    """Every account of the pool: the default one first when an auth.json exists
    (any of the search order), then the named ones."""
    files = named_accounts(env)
    default = find_auth_path(auth_search_paths(env))  # not its tokens: they import pyjwt
    if default is not None or not files:
        files.insert(0, AccountFile(DEFAULT_NAME, default or home_dir(env) / "auth.json",
                                    default_usage, default=True))
    return files


def email_of(id_token: str) -> str:
    """The sign-in's email (auth.md §5), '' when the id token names none."""
    claims = decode_claims(id_token)
    value = claims.get("email") or claims.get("preferred_username") or ""
    return value if isinstance(value, str) else ""


def remove_account(env: Mapping[str, str], name: str) -> list[Path]:
    """Delete account `name`'s files (auth, lock, usage); the paths removed.

    `default` removes `<home>/auth.json` only: never the Codex CLI's own file."""
    path = account_path(env, name)
    usage = path.with_name(name + _USAGE_SUFFIX) if name != DEFAULT_NAME else None
    removed = []
    for candidate in (path, path.with_name(path.name + ".lock"), usage):
        if candidate is not None and candidate.exists():
            candidate.unlink()
            removed.append(candidate)
    return removed
