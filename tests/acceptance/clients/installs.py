"""Install-or-find the real clients the guides name, under the gitignored `.clients/`.

Each group is one install: npm packages into `.clients/<group>/node_modules`, or pip
packages into a virtual environment `.clients/<group>/venv` (aider and LiteLLM pin
their own openai, so they never share the test environment). Versions are pinned;
a group whose stamp file names the same packages is reused as it is.

A client that cannot be installed (no node or npm, no registry) makes its tests
skip with the reason, except for the groups listed in `CHATMOCK_CLIENTS_REQUIRED`
(comma-separated, or `all`), where the same reason is a failure.

`python -m tests.acceptance.clients.installs GROUP...` installs ahead of a run (CI
does, to time the installs on their own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLIENTS_DIR = Path(os.environ.get("CHATMOCK_CLIENTS_DIR", ROOT / ".clients"))
REQUIRED_VARIABLE = "CHATMOCK_CLIENTS_REQUIRED"
INSTALL_SECONDS = 900


@dataclass(frozen=True)
class Group:
    name: str
    kind: str  # "npm" or "pip"
    packages: tuple[str, ...]


GROUPS = {group.name: group for group in (
    Group("claude-code", "npm", ("@anthropic-ai/claude-code@2.1.197",)),
    Group("codex", "npm", ("@openai/codex@0.171.0",)),
    Group("opencode", "npm", ("opencode-ai@1.18.33",)),
    Group("continue", "npm", ("@continuedev/cli@1.5.47",)),
    Group("js-sdks", "npm", ("openai@6.49.0", "@anthropic-ai/sdk@1.17.0")),
    Group("aider", "pip", ("aider-chat==0.86.2",)),
    Group("litellm", "pip", ("litellm[proxy]==1.108.7",)),
)}


class Unavailable(Exception):
    """The group cannot be installed here; the message says why."""


def required(group: str) -> bool:
    wanted = {name.strip() for name in os.environ.get(REQUIRED_VARIABLE, "").split(",")}
    return group in wanted or "all" in wanted


def ensure(group: str) -> Path:
    """The group's folder, installed if need be; skips (or fails, when required) if it
    cannot be."""
    try:
        return install(GROUPS[group])
    except Unavailable as why:
        message = f"client group {group!r} is not available: {why}"
        if required(group):
            pytest.fail(f"{message} (and {REQUIRED_VARIABLE} requires it)")
        pytest.skip(message)


def install(group: Group) -> Path:
    home = CLIENTS_DIR / group.name
    stamp = home / "installed.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("packages") == list(group.packages):
        return home
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    if group.kind == "npm":
        _npm_install(home, group.packages)
    else:
        _pip_install(home, group.packages)
    stamp.write_text(json.dumps({"packages": list(group.packages), "at": time.time()}))
    return home


def _npm_install(home: Path, packages: tuple[str, ...]) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("node and npm are not installed")
    (home / "package.json").write_text('{"private": true, "type": "module"}\n')
    _run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *packages], home)


def _pip_install(home: Path, packages: tuple[str, ...]) -> None:
    _run([sys.executable, "-m", "venv", str(home / "venv")], home)
    _run([str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet",
          "--disable-pip-version-check", *packages], home)


def _run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=INSTALL_SECONDS, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as late:
        raise Unavailable(f"{command[0]} took over {INSTALL_SECONDS} s") from late
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise Unavailable(f"{Path(command[0]).name} failed ({done.returncode}): "
                          + " | ".join(tail))


def npm_bin(home: Path, name: str) -> Path:
    return home / "node_modules" / ".bin" / name


def venv_bin(home: Path, name: str) -> Path:
    return home / "venv" / "bin" / name


def main(names: list[str]) -> int:
    for name in names or list(GROUPS):
        started = time.monotonic()
        try:
            install(GROUPS[name])
        except Unavailable as why:
            print(f"{name}: not installed: {why}", file=sys.stderr)
            return 1
        print(f"{name}: ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
