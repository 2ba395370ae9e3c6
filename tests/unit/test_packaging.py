"""pyproject lists chatmock's packages by hand (the top-level prompts/ folder is mapped in
as `chatmock.prompts`); a package missing from the list would be missing from the wheel."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {str(init.parent.relative_to(ROOT)).replace("/", ".")
               for init in (ROOT / "chatmock").rglob("__init__.py")}
    assert set(settings["packages"]) == on_disk | {"chatmock.prompts"}
    assert settings["package-dir"] == {"chatmock.prompts": "prompts"}


def test_the_prompts_are_importable_package_data() -> None:
    prompts = resources.files("chatmock.prompts")
    assert (prompts / "prompt.md").read_text(encoding="utf-8").strip()
    assert (prompts / "prompt_codex_model.md").read_text(encoding="utf-8").strip()
