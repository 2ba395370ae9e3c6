"""Running a real client against the session's chatmock server and fake backend.

Clients run in a bare environment: their own HOME under the test's temp dir, no
variables of ours but the ones a test passes, and every proxy variable pointing at
a closed loopback port, so a request a client makes beyond loopback fails at once
instead of leaving the machine (loopback itself is exempt through NO_PROXY).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Process, recorded_requests

CLIENT_SECONDS = 120.0
_TRAP = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """A bare environment for a client whose HOME is `home`, plus `extra`."""
    home.mkdir(parents=True, exist_ok=True)
    node = shutil.which("node")
    path = [str(Path(node).parent)] if node else []
    env = {
        "PATH": os.pathsep.join([*path, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb", "NO_COLOR": "1",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = _TRAP
    env.update(extra)
    return env


def run_client(argv: Sequence[str | Path], env: dict[str, str], cwd: Path,
               timeout: float = CLIENT_SECONDS) -> subprocess.CompletedProcess[str]:
    """Run a client to the end with stdin closed; fail with its output if it fails."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(part) for part in argv], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, (
        f"{Path(argv[0]).name} exited {done.returncode}\n--- stdout\n{done.stdout}"
        f"\n--- stderr\n{done.stderr}")
    return done


def address(server: Process) -> str:
    """host:port of `server`, what replaces the guides' 127.0.0.1:8000."""
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def marker(request: pytest.FixtureRequest) -> str:
    """A word no other request carries, to find this test's requests at the fake."""
    return f"guide-{request.node.name[:24]}-{uuid.uuid4().hex[:8]}".replace("_", "-")


def upstream_with(fake: Process, marker: str) -> list[dict[str, Any]]:
    """The requests the fake backend received whose body mentions `marker`, oldest
    first (other tests share the fake; their requests carry other markers)."""
    return [record for record in recorded_requests(fake)
            if marker in json.dumps(record.get("body"))]


def input_items(record: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The `input` items of type `kind` in one recorded upstream request."""
    return [item for item in record["body"].get("input", []) if item.get("type") == kind]
