"""Fixtures every test folder may use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmock.testing.redis_server import CI_VARIABLE, RedisServer, redis_server_binary


def need_redis_server() -> None:
    """Skip (fail under CI, where `.ci/run` installs it) without a redis-server."""
    if redis_server_binary() is not None:
        return
    if os.environ.get(CI_VARIABLE):
        pytest.fail("redis-server is missing under CI: .ci/run should have installed it")
    pytest.skip("redis-server is not installed (apt-get install redis-server): "
                "the fleet-mode tests need a real one")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port, stopped after the test."""
    need_redis_server()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
