"""chatmock.build's PyInstaller arguments (the build itself: tests/acceptance, marked slow)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from chatmock.build import pyinstaller_arguments


def named(arguments: list[str], option: str) -> set[str]:
    return {value for flag, value in itertools.pairwise(arguments)
            if flag == option}


def test_modules_loaded_on_first_use_are_hidden_imports() -> None:
    arguments = pyinstaller_arguments("chatmock", Path("/d"), Path("/w"))
    hidden = named(arguments, "--hidden-import")
    assert {"chatmock.commands", "chatmock.doctor", "chatmock.info", "chatmock.auth.login",
            "chatmock.state.response_store_sqlite", "sqlite3", "wsproto", "h2"} <= hidden
    assert not any(name.startswith(("chatmock.testing", "chatmock.build")) for name in hidden)


def test_one_file_from_the_package_main_with_its_data_and_without_test_tools() -> None:
    arguments = pyinstaller_arguments("cm", Path("/d"), Path("/w"))
    assert arguments[0].endswith("chatmock/__main__.py")
    assert "--onefile" in arguments and named(arguments, "--name") == {"cm"}
    (data,) = named(arguments, "--add-data")
    source, target = data.rsplit(os.pathsep, 1)
    assert (Path(source) / "prompt.md").is_file() and target == "chatmock/prompts"
    excluded = named(arguments, "--exclude-module")
    assert {"chatmock.testing", "jwt", "cryptography", "pytest"} <= excluded
    assert named(arguments, "--distpath") == {"/d"} and named(arguments, "--workpath") == {"/w"}
