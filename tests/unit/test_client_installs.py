"""Client installs: a client that cannot be had skips its tests, unless CI requires it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.acceptance.clients import installs


@pytest.fixture
def no_npm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(installs, "CLIENTS_DIR", tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)  # the module installs uses


@pytest.mark.usefixtures("no_npm")
def test_a_missing_client_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(installs.REQUIRED_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="'codex' is not available: node and npm"):
        installs.ensure("codex")


@pytest.mark.usefixtures("no_npm")
@pytest.mark.parametrize("listed", ["codex", "js-sdks, codex", "all"])
def test_a_required_client_fails_instead(monkeypatch: pytest.MonkeyPatch, listed: str) -> None:
    monkeypatch.setenv(installs.REQUIRED_VARIABLE, listed)
    with pytest.raises(pytest.fail.Exception, match="CHATMOCK_CLIENTS_REQUIRED requires it"):
        installs.ensure("codex")


@pytest.mark.usefixtures("no_npm")
def test_only_the_listed_groups_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(installs.REQUIRED_VARIABLE, "js-sdks")
    with pytest.raises(pytest.skip.Exception):
        installs.ensure("codex")


def test_an_install_with_the_same_packages_is_reused(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setattr(installs, "CLIENTS_DIR", tmp_path)
    group = installs.GROUPS["codex"]
    (tmp_path / "codex").mkdir()
    (tmp_path / "codex" / "installed.json").write_text(
        json.dumps({"packages": list(group.packages)}))
    monkeypatch.setattr(installs, "_run", lambda *args: pytest.fail("installed again"))
    assert installs.install(group) == tmp_path / "codex"
