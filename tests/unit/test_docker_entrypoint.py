"""chatmock.docker_entrypoint: commands, container defaults, user ids, the data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from chatmock.docker_entrypoint import (
    EntrypointError,
    Identity,
    check_home,
    command_line,
    identity_to_run_as,
    requested_identity,
)

CHATMOCK = [sys.executable, "-m", "chatmock"]


def test_no_command_serves_with_container_defaults() -> None:
    env: dict[str, str] = {}
    assert command_line([], env) == [*CHATMOCK, "serve"]
    assert env == {"CHATGPT_LOCAL_HOME": "/data", "CHATGPT_LOCAL_HOST": "0.0.0.0"}


def test_given_settings_win_over_container_defaults() -> None:
    env = {"CHATGPT_LOCAL_HOST": "127.0.0.1", "CHATGPT_LOCAL_HOME": "/elsewhere"}
    assert command_line(["serve", "--port", "9000"], env) == [*CHATMOCK, "serve", "--port",
                                                               "9000"]
    assert env == {"CHATGPT_LOCAL_HOST": "127.0.0.1", "CHATGPT_LOCAL_HOME": "/elsewhere"}


def test_login_listens_on_all_container_addresses_and_opens_no_browser() -> None:
    env: dict[str, str] = {}
    assert command_line(["login"], env) == [*CHATMOCK, "login", "--no-browser"]
    assert env["CHATGPT_LOCAL_LOGIN_BIND"] == "0.0.0.0"
    assert command_line(["login", "--headless"], {}) == [*CHATMOCK, "login", "--headless"]
    kept = {"CHATGPT_LOCAL_LOGIN_BIND": "127.0.0.1"}
    command_line(["login"], kept)
    assert kept["CHATGPT_LOCAL_LOGIN_BIND"] == "127.0.0.1"


def test_serve_does_not_get_the_login_bind() -> None:
    env: dict[str, str] = {}
    command_line(["serve"], env)
    assert "CHATGPT_LOCAL_LOGIN_BIND" not in env


@pytest.mark.parametrize("args", [["info", "--json"], ["doctor"], ["--version"]])
def test_other_chatmock_commands_and_flags_go_to_chatmock(args: list[str]) -> None:
    assert command_line(args, {}) == [*CHATMOCK, *args]


def test_anything_else_runs_as_given() -> None:
    assert command_line(["sh", "-c", "ls /data"], {}) == ["sh", "-c", "ls /data"]


def test_requested_identity() -> None:
    assert requested_identity({}) is None
    assert requested_identity({"PUID": " 1001 ", "PGID": "100"}) == Identity(1001, 100)
    assert requested_identity({"PUID": "1001"}) == Identity(1001, 1001)
    assert requested_identity({"PGID": "50"}) == Identity(1000, 50)
    with pytest.raises(EntrypointError, match="PUID='me' is not a numeric id"):
        requested_identity({"PUID": "me"})


def test_non_root_keeps_its_ids_and_refuses_other_ones() -> None:
    me = Identity(1000, 1000)
    assert identity_to_run_as(me, None) is None
    assert identity_to_run_as(me, Identity(1000, 1000)) is None
    with pytest.raises(EntrypointError) as caught:
        identity_to_run_as(me, Identity(1001, 1001))
    assert "--user 1001:1001" in str(caught.value) and "--user 0" in str(caught.value)


def test_root_switches_to_the_requested_or_the_image_user_never_stays_root() -> None:
    root = Identity(0, 0)
    assert identity_to_run_as(root, Identity(1001, 100)) == Identity(1001, 100)
    assert identity_to_run_as(root, None) == Identity(1000, 1000)
    with pytest.raises(EntrypointError, match="as root"):
        identity_to_run_as(root, Identity(0, 0))


def test_missing_or_unwritable_data_folder_says_how_to_fix_it(tmp_path: Path) -> None:
    me = Identity(os.geteuid(), os.getegid())
    check_home(tmp_path, me)
    with pytest.raises(EntrypointError, match="does not exist"):
        check_home(tmp_path / "missing", me)
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(EntrypointError, match=r"is not writable .* chown"):
            check_home(locked, me)
