"""Serving a sans-I/O fake over chatmock's own HTTP/1.1 server.

Every fake in this package is a plain object whose `handle(method, target,
headers, body)` returns a `FakeReply`; `FakeApp` is the HTTP adapter that
streams such a reply with its pacing (a `cut` reply drops the connection
mid-body), and `serve_forever` runs one as a process that prints

    <name> listening on http://127.0.0.1:PORT

as its first line on stdout (tests start it with `--port 0` and read the port).
"""

from __future__ import annotations

import signal
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import trio

from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.listen import open_listeners, serve
from chatmock.testing.fake_codex import FakeReply, FakeRequest
from chatmock.testing.fake_events import dump_json

RECORDS_PATH = "/__fake__/requests"


class Fake(Protocol):
    def handle(self, method: str, target: str, headers: Mapping[bytes, bytes],
               body: bytes) -> FakeReply: ...


async def send_reply(reply: FakeReply, out: Responder) -> None:
    """Write `reply` to `out`, each chunk when its delay (counted from the start) is due."""
    if reply.chunks is None:
        await out.respond(reply.status, reply.headers, reply.body)
        return
    await out.start(reply.status, reply.headers)
    # The waits add up to a schedule fixed from the start, as a model produces tokens
    # at its own pace: a slow reader (or a busy fake) gets the late events back to
    # back instead of a stream that stretches by every delay.
    due = trio.current_time()
    for delay, data in reply.chunks:
        if delay > 0:
            due += delay
            await trio.sleep_until(due)
        if data:
            await out.send(data)
    if not reply.cut:
        await out.end()
    # A cut reply returns unfinished: the connection closes mid-body.


class RequestLog:
    """The requests a fake received, for tests to read at `GET /__fake__/requests`
    (and forget with `DELETE`): path, query, headers and the parsed JSON body."""

    def __init__(self, limit: int = 200) -> None:
        self._records: deque[dict[str, Any]] = deque(maxlen=limit)

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self._records)

    def add(self, request: FakeRequest, payload: Any) -> None:
        """Record `request`; `payload` is its parsed body (kept only if a JSON document)."""
        self._records.append({
            "path": request.path, "query": request.query,
            "headers": {k.decode("latin-1"): v.decode("latin-1")
                        for k, v in request.headers.items()},
            "body": payload if isinstance(payload, dict | list) else None})

    def routes(self) -> dict[str, Callable[[FakeRequest], FakeReply]]:
        json = [(b"content-type", b"application/json")]
        return {"GET": lambda _: FakeReply(200, json, dump_json(self.records)),
                "DELETE": lambda _: self._clear(json)}

    def _clear(self, headers: list[tuple[bytes, bytes]]) -> FakeReply:
        self._records.clear()
        return FakeReply(204, headers)


class Recording:
    """A fake that keeps what it received in a `RequestLog` (`self._log`)."""

    _log: RequestLog

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The recorded requests, oldest first (which ones: the fake's `RequestLog.add`
        calls; the chat fakes record their chat requests, Qwen's every POST)."""
        return self._log.records


class FakeApp:
    """HTTP adapter for one fake: request in, its `FakeReply` out."""

    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def dispatch(self, method: str, target: str, headers: Mapping[bytes, bytes],
                 body: bytes) -> FakeReply:
        return self.fake.handle(method, target, headers, body)

    async def __call__(self, request: Request, out: Responder) -> None:
        body = await request.body()
        target = request.path + ("?" + request.query if request.query else "")
        await self.reply(self.dispatch(request.method, target, request.headers, body), out)

    async def reply(self, reply: FakeReply, out: Responder) -> None:
        """Send `reply` (a fake that counts its streams extends this)."""
        await send_reply(reply, out)


class CountingApp(FakeApp):
    """A `FakeApp` that counts the POST requests (the model calls, not the model lists)
    it is answering at once, from arrival to the last byte sent (or the client gone):
    `GET /__fake__/in-flight` gives `{"now", "most"}`, `DELETE` starts `most` again from
    `now`. What a test of a concurrency limit reads."""

    def __init__(self, fake: Fake) -> None:
        super().__init__(fake)
        self.now = self.most = 0

    async def __call__(self, request: Request, out: Responder) -> None:
        if request.path == IN_FLIGHT_PATH:
            if request.method == "DELETE":
                self.most = self.now
            await out.respond(200, [(b"content-type", b"application/json")],
                              dump_json({"now": self.now, "most": self.most}))
            return
        counted = request.method == "POST" and not request.path.startswith("/__fake__/")
        self.now += counted
        self.most = max(self.most, self.now)
        try:
            await super().__call__(request, out)
        finally:
            self.now -= counted


IN_FLIGHT_PATH = "/__fake__/in-flight"


def base_url(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


async def serve_app(app: FakeApp, listeners: list[trio.SocketListener], shutdown: trio.Event,
                    *, tls: ssl.SSLContext | None = None,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `app` on `listeners` until `shutdown` is set (generous limits: tests and bench);
    with `tls`, over TLS with ALPN h2 and http/1.1."""
    limits = ConnectionLimits(idle_timeout=300.0, write_timeout=600.0)
    await serve(app, listeners, limits=limits, max_connections=100_000,
                shutdown=shutdown, shutdown_timeout=1.0, tls=tls, task_status=task_status)


async def serve_forever(app: FakeApp, host: str, port: int, name: str) -> None:
    """Serve `app` until SIGINT/SIGTERM, announcing the bound port on stdout."""
    shutdown = trio.Event()
    listeners = await open_listeners(host, port)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve_app, app, listeners, shutdown)
            print(f"{name} listening on {base_url(host, bound)}", flush=True)
            async for _ in signals:
                shutdown.set()
                break
