"""`python -m chatmock.build`: the single-file executable runs without this Python.

Slow (the build takes about a minute on two busy cores), so deselected by default:
`pip install -e '.[build]' && pytest -m slow` runs it; CI does (see .ci/run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from chatmock import __version__
from chatmock.testing.credentials import write_auth_file

from .conftest import Process, spawn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for the module, into a temp folder."""
    pytest.importorskip("PyInstaller", reason="needs the build extra: pip install -e '.[build]'")
    folder = tmp_path_factory.mktemp("single-file")
    result = subprocess.run([sys.executable, "-m", "chatmock.build", "--dist-dir",
                             str(folder / "dist"), "--work-dir", str(folder / "work")],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    built = Path(result.stdout.strip().splitlines()[-1])
    assert built.is_file() and os.access(built, os.X_OK)
    return built


def bare_environment(home: Path) -> dict[str, str]:
    """No trace of this virtual environment: the executable must bring its own Python."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home.parent), "CHATGPT_LOCAL_HOME": str(home),
            "LANG": "C.UTF-8"}


def test_version(executable: Path, tmp_path: Path) -> None:
    result = subprocess.run([str(executable), "--version"], capture_output=True, text=True,
                            env=bare_environment(tmp_path / "home"), timeout=60, check=True)
    assert result.stdout.strip() == f"chatmock {__version__}"


@pytest.fixture
def served(executable: Path, tmp_path: Path, fake_upstream: Process) -> Iterator[Process]:
    home = tmp_path / "home"
    write_auth_file(home)
    process = spawn(["serve", "--port", "0", "--base-instructions", "codex", "--upstream-url",
                     f"{fake_upstream.url}/backend-api/codex"], tmp_path / "serve.log",
                    bare_environment(home), program=str(executable))
    yield process
    assert process.stop() == 0


def test_serves_a_chat_against_the_fake_backend(served: Process,
                                                 fake_upstream: Process) -> None:
    with openai.OpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0,
                       timeout=30) as client:
        stream = client.chat.completions.create(
            model="gpt-5.4", stream=True,
            messages=[{"role": "user", "content": "single file fake:deltas=5"}])
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream
                       if chunk.choices)
        chained = client.responses.create(model="gpt-5.4", input="first turn")
        follow = client.responses.create(model="gpt-5.4", input="second turn",
                                         previous_response_id=chained.id)
    assert text.count("tok") == 5
    assert follow.status == "completed"  # the SQLite response store came along
    with urllib.request.urlopen(f"{fake_upstream.url}/__fake__/requests", timeout=10) as reply:
        sent = json.load(reply)
    assert sent and all(entry["body"].get("instructions") for entry in sent)  # prompts/ came along
