"""The pool read again from `<home>/accounts` while serving (chatmock/upstream/account_files.py)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import trio

from chatmock.auth.accounts import AccountFile, accounts_dir, check_name, pool_files
from chatmock.auth.store import CredentialStore
from chatmock.state.pool_state import STATE_FILENAME, Mark, MemoryPoolState
from chatmock.testing.credentials import write_account_file, write_auth_file
from chatmock.upstream.account_files import AccountFiles
from chatmock.upstream.accounts import Account, AccountPool


def watched(home: Path) -> tuple[AccountPool, list[float], list[str]]:
    env = {"CHATGPT_LOCAL_HOME": str(home)}
    made: list[str] = []
    now = [0.0]

    def make(file: AccountFile) -> Account:
        made.append(file.name)
        return Account(file.name, CredentialStore(env, path=file.path))

    files = functools.partial(pool_files, env, home / "usage_limits.json")
    source = AccountFiles(accounts_dir(env), files, make, clock=lambda: now[0])
    return AccountPool([make(file) for file in files()], source=source), now, made


def names(pool: AccountPool) -> list[str]:
    trio.run(pool.turn, {"input": []})
    return [account.name for account in pool.accounts]


def test_an_added_account_joins_and_a_removed_one_leaves_at_the_next_look(
        tmp_path: Path) -> None:
    write_auth_file(tmp_path)
    pool, now, made = watched(tmp_path)
    default = pool.accounts[0]
    write_account_file(tmp_path, "work", account_id="id-work")
    assert names(pool) == ["default"]  # looked at once a second, not on every request
    now[0] = 1.5
    assert names(pool) == ["default", "work"]
    assert pool.accounts[0] is default and made == ["default", "work"]  # kept as it was
    (tmp_path / "accounts" / "work.json").unlink()
    now[0] = 3.0
    assert names(pool) == ["default"]
    assert pool.accounts[0] is default


def test_the_pools_own_state_file_is_never_an_account(tmp_path: Path) -> None:
    write_auth_file(tmp_path)
    write_account_file(tmp_path, "work", account_id="id-work")
    state = MemoryPoolState(tmp_path / "accounts" / STATE_FILENAME)
    trio.run(state.mark, "someone", Mark(until=1e12, reason="usage limit"))
    assert (tmp_path / "accounts" / STATE_FILENAME).exists()
    env = {"CHATGPT_LOCAL_HOME": str(tmp_path)}
    assert [file.name for file in pool_files(env, tmp_path / "u.json")] == ["default", "work"]
    with pytest.raises(ValueError, match="keeps its own"):
        check_name("state")
