"""Fixtures shared by the protocol tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from chatmock.net.transport import tls_context


@pytest.fixture
def trusted_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[trustme.CA]:
    """A CA that the process-wide client TLS context trusts (through SSL_CERT_FILE,
    which the system trust store honours), for the length of one test."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    tls_context.cache_clear()
    yield ca
    tls_context.cache_clear()
