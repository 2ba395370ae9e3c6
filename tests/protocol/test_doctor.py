"""`chatmock doctor` in-process against the fake backend behind TLS: trust, handshake, clock."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trustme

from chatmock.config import settings_from_argv
from chatmock.doctor import Finding, render_json, render_text, run_checks
from chatmock.testing.credentials import write_auth_file
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .helpers import serve_tls_on_loopback


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A signed-in data folder; HOME points away from the real ~/.codex too."""
    monkeypatch.setenv("HOME", str(tmp_path))
    write_auth_file(tmp_path / "home")
    return tmp_path / "home"


async def report(nursery: trio.Nursery, home: Path, certificate: trustme.LeafCert,
                 clock: Callable[[], float] = time.time) -> dict[str, Finding]:
    port = await serve_tls_on_loopback(nursery, FakeUpstreamApp(), certificate)
    settings = settings_from_argv(["--port", str(free_port()), "--upstream-url",
                                   f"https://127.0.0.1:{port}/backend-api/codex"], env={})
    env = {"CHATGPT_LOCAL_HOME": str(home), "SSL_CERT_FILE": str(home.parent / "ca.pem")}
    findings = await run_checks(settings, env, clock=clock)
    return {finding.name: finding for finding in findings}


async def test_everything_passes_against_a_trusted_https_backend(
        nursery: trio.Nursery, home: Path, trusted_ca: trustme.CA) -> None:
    found = await report(nursery, home, trusted_ca.issue_cert("127.0.0.1"))
    assert list(found) == ["settings", "auth", "token", "port", "tls", "upstream", "clock"]
    assert {finding.status for finding in found.values()} == {"ok"}, found
    assert found["tls"].detail.startswith("handshake with 127.0.0.1:")
    assert "verified, trusting SSL_CERT_FILE=" in found["tls"].detail
    assert " 200, " in found["upstream"].detail and "models listed" in found["upstream"].detail
    assert found["clock"].detail.startswith("within ")


async def test_an_untrusted_certificate_fails_the_handshake_with_what_to_do(
        nursery: trio.Nursery, home: Path, trusted_ca: trustme.CA) -> None:
    found = await report(nursery, home, trustme.CA().issue_cert("127.0.0.1"))
    assert found["tls"].status == "fail"
    assert "certificate verify failed" in found["tls"].detail
    assert "point SSL_CERT_FILE at a bundle holding its CA" in found["tls"].detail
    assert found["upstream"].status == "fail"
    assert found["clock"].status == "skip"


@pytest.mark.parametrize(("offset", "words"), [(630.0, "10m ahead of"),
                                               (-7530.0, "2h 5m behind")])
async def test_a_skewed_clock_fails_with_how_far_and_which_way(
        nursery: trio.Nursery, home: Path, trusted_ca: trustme.CA, offset: float,
        words: str) -> None:
    found = await report(nursery, home, trusted_ca.issue_cert("127.0.0.1"),
                         clock=lambda: time.time() + offset)
    assert found["clock"].status == "fail"
    assert f"clock is {words} the backend's" in found["clock"].detail
    assert "time sync" in found["clock"].detail
    assert found["upstream"].status == "ok"


def test_renderings_say_the_same() -> None:
    findings = [Finding("settings", "ok", "fine"), Finding("auth", "fail", "run it"),
                Finding("upstream", "skip", "later")]
    assert render_text(findings).splitlines() == [
        "OK    settings  fine", "FAIL  auth      run it", "SKIP  upstream  later",
        "1 check failed"]
    assert render_text(findings[:1]).endswith("all checks passed\n")
    assert '"ok": false' in render_json(findings)
    assert '"ok": true' in render_json([findings[0], findings[2]])
