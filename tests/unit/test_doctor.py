"""chatmock.doctor's checks that need no network: the token line, the trust store, wiring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trio
import trustme

from chatmock.auth.tokens import read_credentials
from chatmock.config import Settings
from chatmock.doctor import Doctor, check_token, trust_store_problem
from chatmock.net.client import HTTPClient
from chatmock.testing.credentials import write_auth_document, write_auth_file


def token_line(home: Path, *, expires_in: float, refresh: bool = True) -> tuple[str, str]:
    """The token check's (status, detail) for a fresh auth file expiring in `expires_in` s."""
    path = write_auth_file(home, expires_in=expires_in)
    if not refresh:
        document = json.loads(path.read_text())
        document["tokens"]["refresh_token"] = ""
        write_auth_document(home, document)
    doctor = Doctor(Settings(), {}, HTTPClient(), credentials=read_credentials(path))
    finding = trio.run(check_token, doctor)
    return finding.status, finding.detail


def test_token_valid_says_until_when_and_how_it_renews(tmp_path: Path) -> None:
    status, detail = token_line(tmp_path, expires_in=3 * 3600 + 150)
    assert status == "ok" and "(in 3h 2m)" in detail and "a refresh token renews it" in detail
    status, detail = token_line(tmp_path, expires_in=3 * 3600 + 150, refresh=False)
    assert status == "ok" and "no refresh token: run `chatmock login` when it expires" in detail


def test_token_expired_is_fine_only_with_a_refresh_token(tmp_path: Path) -> None:
    status, detail = token_line(tmp_path, expires_in=-3630)
    assert (status, detail) == ("ok", "expired 1h ago; serve renews it with the refresh token "
                                      "(see upstream)")
    status, detail = token_line(tmp_path, expires_in=-3630, refresh=False)
    assert status == "fail" and detail.endswith("no refresh token: run `chatmock login`")


def test_trust_store_problems(tmp_path: Path) -> None:
    assert trust_store_problem({}) == ""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    assert trust_store_problem({"SSL_CERT_FILE": str(tmp_path / "ca.pem")}) == ""
    leaf = ca.issue_cert("example.test")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "leaf.pem"))
    assert trust_store_problem({"SSL_CERT_FILE": str(tmp_path / "leaf.pem")}).endswith(
        "holds no CA certificate")
    assert trust_store_problem({"SSL_CERT_DIR": str(tmp_path / "ca.pem")}) == (
        f"SSL_CERT_DIR={tmp_path / 'ca.pem'} is not a folder")


def test_serve_does_not_load_the_doctor() -> None:
    probe = ("import sys, chatmock.cli; "
             "print(sorted(m for m in ('chatmock.doctor', 'chatmock.commands') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
