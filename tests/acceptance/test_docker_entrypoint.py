"""The container entry point as a process: the health check, the switch of user ids, exec."""

from __future__ import annotations

import http.server
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmock.testing.credentials import write_auth_file

from .conftest import Process

ENTRYPOINT = [sys.executable, "-m", "chatmock.docker_entrypoint"]


def run_entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("CHATGPT_LOCAL_", "CODEX_", "PUID", "PGID"))}
    return subprocess.run([*ENTRYPOINT, *args], env={**clean, **env}, capture_output=True,
                          text=True, timeout=30, check=False)


def test_healthcheck_passes_on_a_running_chatmock(chatmock_server: Process) -> None:
    result = run_entrypoint("healthcheck", env={"CHATGPT_LOCAL_PORT": str(chatmock_server.port),
                                                "CHATGPT_LOCAL_HOST": "0.0.0.0"})
    assert result.returncode == 0, result.stderr


class _OtherHealth(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok", "service": "something else"}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[int]:
    """A plain HTTP server that is not chatmock (its /health is someone else's)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtherHealth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_healthcheck_fails_on_another_server_and_on_a_closed_port(other_server: int) -> None:
    other = run_entrypoint("healthcheck", env={"CHATGPT_LOCAL_PORT": str(other_server)})
    assert other.returncode == 1 and "is not chatmock's" in other.stderr
    closed = run_entrypoint("healthcheck", env={"CHATGPT_LOCAL_PORT": "9",
                                                "CHATGPT_LOCAL_HOST": "127.0.0.1"})
    assert closed.returncode == 1 and "127.0.0.1:9/health" in closed.stderr
    assert other_server != 9


@pytest.fixture
def shared_home() -> Iterator[Path]:
    """A data folder outside pytest's private (mode 0700) temp tree, so another user can
    reach it once it is theirs."""
    folder = Path(tempfile.mkdtemp(prefix="chatmock-entrypoint-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_exec_keeps_the_environment_with_the_container_defaults(shared_home: Path) -> None:
    shown = run_entrypoint("sh", "-c", 'echo "$CHATGPT_LOCAL_HOST" "$CHATGPT_LOCAL_HOME"',
                           env={"CHATGPT_LOCAL_HOME": str(shared_home)})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["0.0.0.0", str(shared_home)]


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the entrypoint drops to uid 1000, which "
                    "cannot reach an interpreter under /root")
def test_exec_runs_chatmock(shared_home: Path) -> None:
    result = run_entrypoint("--version", env={"CHATGPT_LOCAL_HOME": str(shared_home)})
    assert result.returncode == 0 and result.stdout.startswith("chatmock "), result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root creates the folder (see the next test)")
def test_as_a_user_a_missing_folder_or_other_ids_exit_2_with_the_reason(
        shared_home: Path) -> None:
    missing = run_entrypoint("info", env={"CHATGPT_LOCAL_HOME": str(shared_home / "none")})
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    mismatch = run_entrypoint("info", env={"CHATGPT_LOCAL_HOME": str(shared_home),
                                           "PUID": str(os.geteuid() + 1)})
    assert mismatch.returncode == 2 and "only root can switch" in mismatch.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user ids needs root (CI runs as root)")
def test_started_as_root_takes_over_the_data_folder_and_drops_to_puid(
        shared_home: Path) -> None:
    auth = write_auth_file(shared_home / "nested")
    (shared_home / "link").symlink_to("/etc/hostname")
    probe = 'id -u; id -g; id -G; touch "$CHATGPT_LOCAL_HOME/written"'
    result = run_entrypoint("sh", "-c", probe,
                            env={"CHATGPT_LOCAL_HOME": str(shared_home), "PUID": "43210",
                                 "PGID": "43211"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["43210", "43211", "43211"]
    for path in (shared_home, shared_home / "nested", auth, shared_home / "written"):
        assert (path.stat().st_uid, path.stat().st_gid) == (43210, 43211), path
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert Path("/etc/hostname").stat().st_uid == 0  # a link's target is never taken over


@pytest.mark.skipif(os.geteuid() != 0, reason="runs as root to show that root is refused")
def test_puid_0_is_refused(shared_home: Path) -> None:
    result = run_entrypoint("serve", env={"CHATGPT_LOCAL_HOME": str(shared_home), "PUID": "0"})
    assert result.returncode == 2 and "would serve as root" in result.stderr
