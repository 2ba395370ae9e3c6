"""The level of an access line: what an operator must see (a 5xx: an unreachable
backend, a descriptor limit) is a warning; polling that succeeds stays at DEBUG."""

from __future__ import annotations

import logging

import pytest

from chatmock.server.router import access_level


@pytest.mark.parametrize(("path", "status", "level"), [
    ("/v1/chat/completions", 200, logging.INFO),
    ("/v1/chat/completions", 400, logging.INFO),
    ("/v1/chat/completions", 429, logging.INFO),
    ("/v1/chat/completions", 502, logging.WARNING),
    ("/v1/messages", 503, logging.WARNING),
    ("/api/chat", 504, logging.WARNING),
    ("/v1/responses", 500, logging.WARNING),
    ("/health", 200, logging.DEBUG),
    ("/status.json", 200, logging.DEBUG),
    ("/health", 401, logging.INFO),
    ("/health", 503, logging.WARNING),
])
def test_access_level(path: str, status: int, level: int) -> None:
    assert access_level(path, status) == level
