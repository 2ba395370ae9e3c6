"""`chatmock doctor` as a process against the fake backend and OAuth server: a passing run,
and each line failing for the reason it exists to catch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatmock.testing.credentials import make_jwt, write_auth_document, write_auth_file

from . import test_refresh
from .conftest import Process
from .test_refresh import signed_in

checking_fake = test_refresh.fake  # a fresh fake per test that accepts only tokens it issued

CHECK_NAMES = ["settings", "auth", "token", "port", "tls", "upstream", "clock"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def doctor(home: Path, upstream: str, *flags: str, env: dict[str, str] | None = None,
           as_json: bool = True) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Run `chatmock doctor`: exit code, {check: (status, detail)}, and stdout as printed."""
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("CHATGPT_LOCAL_", "CODEX_"))}
    clean.update(HOME=str(home.parent), CHATGPT_LOCAL_HOME=str(home), **(env or {}))
    args = ["--upstream-url", upstream, "--port", str(free_port()), *flags]
    result = subprocess.run([sys.executable, "-m", "chatmock", "doctor",
                             *(["--json"] if as_json else []), *args],
                            env=clean, capture_output=True, text=True, timeout=60, check=False)
    if not as_json:
        return result.returncode, {}, result.stdout
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["ok"] is (result.returncode == 0), result.stdout
    checks = {check["name"]: (check["status"], check["detail"]) for check in document["checks"]}
    return result.returncode, checks, result.stdout


def backend(process: Process) -> str:
    return f"{process.url}/backend-api/codex"


def test_a_signed_in_setup_passes_every_check(home: Path, fake_upstream: Process) -> None:
    auth = write_auth_file(home)
    code, checks, printed = doctor(home, backend(fake_upstream))
    assert code == 0
    assert list(checks) == CHECK_NAMES
    assert {status for status, _ in checks.values()} == {"ok"}, checks
    assert checks["auth"][1] == f"{auth} (user@example.com, plan Plus)"
    assert "a refresh token renews it" in checks["token"][1]
    assert "models listed" in checks["upstream"][1]
    tokens = json.loads(auth.read_text())["tokens"]
    for name in ("access_token", "id_token", "refresh_token"):
        assert tokens[name] not in printed


def test_text_report_is_one_line_per_check(home: Path, fake_upstream: Process) -> None:
    write_auth_file(home)
    code, _, printed = doctor(home, backend(fake_upstream), as_json=False)
    lines = printed.splitlines()
    assert code == 0 and len(lines) == len(CHECK_NAMES) + 1
    assert [line.split()[:2] for line in lines[:-1]] == [["OK", name] for name in CHECK_NAMES]
    assert lines[-1] == "all checks passed"


def test_no_auth_file_fails_auth_and_still_reaches_the_backend(
        home: Path, fake_upstream: Process) -> None:
    code, checks, _ = doctor(home, backend(fake_upstream))
    assert code == 1
    status, detail = checks["auth"]
    assert status == "fail" and str(home / "auth.json") in detail
    assert detail.endswith("run `chatmock login`")
    assert checks["token"][0] == "skip"
    assert checks["upstream"][0] == "skip" and "without credentials" in checks["upstream"][1]
    assert checks["clock"][0] == "ok"


def test_expired_token_without_refresh_token_fails_token_and_upstream(
        home: Path, fake_upstream: Process) -> None:
    auth = write_auth_file(home)
    document = json.loads(auth.read_text())
    document["tokens"]["access_token"] = make_jwt({"exp": int(time.time()) - 120})
    document["tokens"]["refresh_token"] = ""
    write_auth_document(home, document)
    code, checks, printed = doctor(home, backend(fake_upstream))
    assert code == 1
    assert checks["token"][0] == "fail"
    assert "no refresh token: run `chatmock login`" in checks["token"][1]
    assert checks["upstream"][0] == "fail" and "chatmock login" in checks["upstream"][1]
    assert document["tokens"]["access_token"] not in printed


def test_expired_token_with_refresh_token_is_renewed_as_serve_would(
        tmp_path: Path, checking_fake: Process) -> None:
    fake = checking_fake
    auth = signed_in(tmp_path, fake, expired=True)
    before = json.loads(auth.read_text())["tokens"]
    code, checks, printed = doctor(auth.parent, backend(fake), "--issuer", fake.url)
    assert code == 0, checks
    assert checks["token"][0] == "ok" and "serve renews it" in checks["token"][1]
    assert "after refreshing the access token" in checks["upstream"][1]
    after = json.loads(auth.read_text())["tokens"]
    assert after["access_token"] != before["access_token"]
    for secret in (*before.values(), *after.values()):
        assert len(secret) < 12 or secret not in printed


def test_backend_down_fails_upstream_and_leaves_the_clock_unchecked(home: Path) -> None:
    write_auth_file(home)
    code, checks, _ = doctor(home, f"http://127.0.0.1:{free_port()}/backend-api/codex")
    assert code == 1
    status, detail = checks["upstream"]
    assert status == "fail" and detail.startswith("cannot connect to 127.0.0.1:")
    assert detail.endswith("check the network, any proxy and --upstream-url")
    assert checks["clock"][0] == "skip"


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_port_held_by_another_program_fails(home: Path, fake_upstream: Process,
                                            occupied_port: int) -> None:
    write_auth_file(home)
    code, checks, _ = doctor(home, backend(fake_upstream), "--port", str(occupied_port))
    assert code == 1
    assert checks["port"] == ("fail", f"127.0.0.1:{occupied_port} is in use by another "
                                      "program: stop it, or choose another --port")


def test_port_held_by_a_running_chatmock_is_fine(home: Path, fake_upstream: Process,
                                                 chatmock_server: Process) -> None:
    write_auth_file(home)
    code, checks, _ = doctor(home, backend(fake_upstream), "--port", str(chatmock_server.port))
    assert code == 0
    assert checks["port"][1] == f"127.0.0.1:{chatmock_server.port} is served by a running " \
                                "chatmock 0.1.0"


@pytest.mark.parametrize(("content", "problem"), [
    (None, "cannot be read"), ("not a certificate\n", "holds no PEM certificate")])
def test_a_bad_ssl_cert_file_fails_tls(home: Path, fake_upstream: Process,
                                       content: str | None, problem: str) -> None:
    write_auth_file(home)
    bundle = home.parent / "bundle.pem"
    if content is not None:
        bundle.write_text(content)
    code, checks, _ = doctor(home, backend(fake_upstream), env={"SSL_CERT_FILE": str(bundle)})
    assert code == 1
    status, detail = checks["tls"]
    assert status == "fail" and detail.startswith(f"SSL_CERT_FILE={bundle} {problem}")
    assert detail.endswith("point it at a PEM bundle, or unset it")


def test_invalid_settings_are_the_only_line(home: Path, fake_upstream: Process) -> None:
    code, checks, _ = doctor(home, backend(fake_upstream), env={
        "CHATGPT_LOCAL_REASONING_EFFORT": "enormous"})
    assert code == 1
    assert list(checks) == ["settings"] and checks["settings"][0] == "fail"
    assert "CHATGPT_LOCAL_REASONING_EFFORT" in checks["settings"][1]
