"""The fake Codex backend as a process: `python -m chatmock.testing.fake_upstream`.

Serves `FakeCodex` (see `fake_codex.py` for routes, validation and the
`fake:` scenario directives) over chatmock's own HTTP/1.1 server. Point
chatmock at it with `--upstream-url http://127.0.0.1:PORT/backend-api/codex`.
With `--port 0` the bound port is printed as the first line on stdout:

    fake-upstream listening on http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

import trio

from chatmock.exchange import Request, Responder
from chatmock.http1 import Limits
from chatmock.server import open_listeners, serve
from chatmock.testing.fake_codex import FakeCodex


class FakeUpstreamApp:
    """HTTP adapter: request in, `FakeReply` out, streamed with its pacing."""

    def __init__(self, fake: FakeCodex | None = None) -> None:
        self.fake = fake or FakeCodex()

    async def __call__(self, request: Request, out: Responder) -> None:
        body = await request.body()
        target = request.path + ("?" + request.query if request.query else "")
        reply = self.fake.handle(request.method, target, request.headers, body)
        if reply.chunks is None:
            await out.respond(reply.status, reply.headers, reply.body)
            return
        await out.start(reply.status, reply.headers)
        for delay, data in reply.chunks:
            if delay > 0:
                await trio.sleep(delay)
            if data:
                await out.send(data)
        if not reply.cut:
            await out.end()
        # A cut reply returns unfinished: the connection closes mid-body.


async def run(host: str, port: int, shutdown: trio.Event | None = None,
              task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    stop = shutdown if shutdown is not None else trio.Event()
    limits = Limits(idle_timeout=300.0, write_timeout=600.0)
    listeners = await open_listeners(host, port)
    await serve(FakeUpstreamApp(), listeners, limits=limits, max_connections=100_000,
                shutdown=stop, shutdown_timeout=1.0, task_status=task_status)


async def _main(host: str, port: int) -> None:
    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(run, host, port, shutdown)
            print(f"fake-upstream listening on http://{host}:{bound}", flush=True)
            async for _ in signals:
                shutdown.set()
                break


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatmock.testing.fake_upstream",
                                     description="Fake ChatGPT Codex backend for tests and bench.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    trio.run(_main, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
