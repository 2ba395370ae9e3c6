"""The command line as a new user meets it: usage errors name the command that was
mistyped, and `info` tells by its exit code whether chatmock is signed in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatmock.cli import main, parse_command_line
from chatmock.commands import EXIT_NOT_SIGNED_IN, run_info
from chatmock.testing.credentials import write_auth_file


@pytest.mark.parametrize(("argv", "usage", "error"), [
    (["serve", "--prot", "8000"], "chatmock serve", "unrecognized arguments: --prot 8000"),
    (["serve", "--port", "1", "--verbse"], "chatmock serve", "unrecognized arguments: --verbse"),
    (["serve", "--verbos"], "chatmock serve", "ambiguous option"),
    (["serve", "--port"], "chatmock serve", "expected one argument"),
    (["login", "--no-browsr"], "chatmock login", "unrecognized arguments"),
    (["info", "--jsn"], "chatmock info", "unrecognized arguments"),
    (["--bogus", "info"], "chatmock [-h]", "unrecognized arguments: --bogus"),
    (["serv"], "chatmock [-h]", "invalid choice"),
    ([], "chatmock [-h]", "required"),
])
def test_a_usage_error_shows_the_usage_of_what_was_mistyped(
        capsys: pytest.CaptureFixture[str], argv: list[str], usage: str, error: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_command_line(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: " + usage)
    assert error in err


def test_valid_command_lines_parse() -> None:
    assert parse_command_line(["serve", "--port", "1"]).port == "1"
    assert parse_command_line(["info", "--json"]).json is True
    assert parse_command_line(["login", "--headless"]).headless is True


@pytest.mark.parametrize("as_json", [False, True])
def test_info_exits_1_when_not_signed_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str],
                                        as_json: bool) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"CHATGPT_LOCAL_HOME": str(tmp_path / "home")}
    assert run_info(as_json=as_json, env=env) == EXIT_NOT_SIGNED_IN == 1
    out = capsys.readouterr().out
    if as_json:
        assert json.loads(out)["account"]["signed_in"] is False
    else:
        assert "Not signed in" in out and "chatmock login" in out
    write_auth_file(tmp_path / "home")
    assert run_info(as_json=as_json, env=env) == 0


def test_main_returns_the_info_exit_code(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CHATGPT_LOCAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    assert main(["info", "--json"]) == 1
