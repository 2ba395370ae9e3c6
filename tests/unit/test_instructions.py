"""Base instructions (chatmock.upstream.instructions, `--base-instructions`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from chatmock.auth.store import CredentialStore
from chatmock.config import Settings, settings_from_argv
from chatmock.errors import ConfigError
from chatmock.net.client import HTTPClient
from chatmock.upstream.codex import CodexBackend
from chatmock.upstream.instructions import NO_INSTRUCTIONS, load_base_instructions

PROMPTS = resources.files("chatmock.prompts")


def test_none_is_the_default_and_sends_nothing() -> None:
    assert Settings().base_instructions == "none"
    assert load_base_instructions("none") == NO_INSTRUCTIONS
    assert NO_INSTRUCTIONS.for_model("gpt-5.4") == ""


def test_codex_ships_two_prompts_chosen_by_model() -> None:
    base = load_base_instructions("codex")
    general = (PROMPTS / "prompt.md").read_text(encoding="utf-8").strip()
    codex = (PROMPTS / "prompt_codex_model.md").read_text(encoding="utf-8").strip()
    assert general != codex and len(general) > 1000
    for slug in ("gpt-5.4", "gpt-5.5", "gpt-5.4-mini"):
        assert base.for_model(slug) == general
    for slug in ("gpt-5.3-codex", "gpt-5.1-codex-max", "codex-mini-latest"):
        assert base.for_model(slug) == codex


def test_a_path_is_read_once_for_every_model(tmp_path: Path) -> None:
    path = tmp_path / "mine.md"
    path.write_text("  Be terse.\n", encoding="utf-8")
    base = load_base_instructions(str(path))
    path.unlink()  # read at load, never again
    assert base.for_model("gpt-5.4") == base.for_model("gpt-5.3-codex") == "Be terse."


def test_unreadable_or_empty_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_base_instructions(str(tmp_path / "missing.md"))
    (tmp_path / "empty.md").write_text(" \n")
    with pytest.raises(ConfigError, match="empty"):
        load_base_instructions(str(tmp_path / "empty.md"))
    (tmp_path / "latin.md").write_bytes(b"\xff\xfe bad")
    with pytest.raises(ConfigError, match="cannot read"):
        load_base_instructions(str(tmp_path / "latin.md"))


def test_the_setting_accepts_words_and_existing_files(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text("x")
    assert settings_from_argv(["--base-instructions", "CODEX"], {}).base_instructions == "codex"
    assert settings_from_argv([], {"CHATGPT_LOCAL_BASE_INSTRUCTIONS": str(path)}) \
        .base_instructions == str(path)
    with pytest.raises(ConfigError, match="--base-instructions"):
        settings_from_argv(["--base-instructions", str(tmp_path / "nope.md")], {})


def backend(setting: str, home: Path) -> CodexBackend:
    return CodexBackend("http://127.0.0.1:9/x", HTTPClient(),
                        CredentialStore({"CHATGPT_LOCAL_HOME": str(home)}), "install-1",
                        base_instructions=load_base_instructions(setting))


def test_the_backend_fills_in_only_missing_instructions(tmp_path: Path) -> None:
    codex = backend("codex", tmp_path)
    empty = {"model": "gpt-5.3-codex", "instructions": ""}
    codex.finish_payload(empty, "s")
    assert empty["instructions"] == codex.base_instructions.codex_models
    own = {"model": "gpt-5.4", "instructions": "Client's own."}
    codex.finish_payload(own, "s")
    assert own["instructions"] == "Client's own."
    bare: dict[str, object] = {"model": "gpt-5.4"}
    backend("none", tmp_path).finish_payload(bare, "s")
    assert "instructions" not in bare and bare["prompt_cache_key"] == "s"
