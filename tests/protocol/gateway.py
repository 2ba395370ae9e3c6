"""chatmock's real router and HTTP/1.1 server, with the fake backend behind it, running
in-process on a thread of their own, for tests that drive them with blocking clients
(property tests: hypothesis draws examples synchronously).

Everything chatmock logs at ERROR, or with a traceback, is collected in
`Gateway.errors`: a request that made chatmock log one is a failed request even if
the client got an answer.
"""

from __future__ import annotations

import http.client
import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from chatmock.app import build_app
from chatmock.config import Settings
from chatmock.routes import TABLE
from chatmock.server.router import Router
from chatmock.testing.credentials import write_auth_file
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .helpers import serve_on_loopback

START_SECONDS = 20.0
REQUEST_SECONDS = 30.0


class ErrorLog(logging.Handler):
    """Keeps the records a healthy exchange never produces."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(record) for record in self.records)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Gateway:
    port: int
    fake: FakeUpstreamApp
    log: ErrorLog = field(default_factory=ErrorLog)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        """One request on a new connection; the whole answer (streams read to the end)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_SECONDS)
        try:
            connection.request("POST", path, body=body,
                               headers={"content-type": "application/json", **headers})
            answer = connection.getresponse()
            return Reply(answer.status, dict(answer.getheaders()), answer.read())
        finally:
            connection.close()


@contextmanager
def running_gateway(home: Path, **settings: Any) -> Iterator[Gateway]:
    """Serve chatmock (signed in as the test credentials in `home`) and the fake backend
    until the block ends."""
    write_auth_file(home)
    started: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.Event] | BaseException]
    started = queue.Queue()
    fake = FakeUpstreamApp()

    async def serve_both() -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            fake_port = await serve_on_loopback(nursery, fake)
            chosen = Settings(model_sync=False,
                              upstream_url=f"http://127.0.0.1:{fake_port}/backend-api/codex",
                              **settings)
            app = build_app(chosen, env={"CHATGPT_LOCAL_HOME": str(home)})
            port = await serve_on_loopback(nursery, Router(app, TABLE))
            started.put((port, trio.lowlevel.current_trio_token(), stop))
            await stop.wait()
            await app.http.aclose()  # the pooled backend connections, closed, not collected
            await app.responses_store.aclose()
            nursery.cancel_scope.cancel()

    def run() -> None:
        try:
            trio.run(serve_both)
        except BaseException as exc:  # reported to the test waiting for the start
            started.put(exc)

    thread = threading.Thread(target=run, name="gateway", daemon=True)
    thread.start()
    first = started.get(timeout=START_SECONDS)
    if isinstance(first, BaseException):
        raise RuntimeError("the gateway did not start") from first
    port, token, stop = first
    gateway = Gateway(port, fake)
    logger = logging.getLogger("chatmock")
    logger.addHandler(gateway.log)
    try:
        yield gateway
    finally:
        logger.removeHandler(gateway.log)
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(START_SECONDS)
