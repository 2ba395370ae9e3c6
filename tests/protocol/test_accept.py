"""The accept loop over real loopback sockets: connections waiting in the kernel's queue
are all taken in one scheduler round (issue 13: newcomers starved behind busy streams)."""

from __future__ import annotations

import socket

import pytest
import trio

from chatmock.server import listen
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.listen import open_listeners, serve

from .helpers import Rounds


class Recorder:
    """Answers every request, noting the round in which its handler started."""

    def __init__(self, rounds: Rounds) -> None:
        self.rounds = rounds
        self.started_in: list[int] = []
        self.all_in = trio.Event()
        self.expected = 0

    async def __call__(self, request: Request, out: Responder) -> None:
        self.started_in.append(self.rounds.count)
        if len(self.started_in) == self.expected:
            self.all_in.set()
        await out.respond(200, [], b"ok")


async def handler_rounds(nursery: trio.Nursery, connections: int) -> list[int]:
    """Queue `connections` connections, each with its request sent, before the server
    accepts any; serve them; the round in which each handler started."""
    listeners = await open_listeners("127.0.0.1", 0)
    port = listeners[0].socket.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    try:
        for client in clients:
            client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        rounds = Rounds()
        app = Recorder(rounds)
        app.expected = connections
        nursery.start_soon(rounds.run)
        await nursery.start(lambda task_status: serve(
            app, listeners, limits=ConnectionLimits(), max_connections=1000,
            shutdown=trio.Event(), shutdown_timeout=0.1, task_status=task_status))
        with trio.fail_after(10):
            await app.all_in.wait()
        return app.started_in
    finally:
        for client in clients:
            client.close()


async def test_one_wake_up_accepts_every_queued_connection(nursery: trio.Nursery) -> None:
    started_in = await handler_rounds(nursery, 60)
    # trio's accept took one connection per round: 60 handlers over 60+ rounds
    assert max(started_in) - min(started_in) <= 2, started_in


async def test_a_flood_of_connections_still_lets_other_tasks_run(
        nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listen, "ACCEPT_BATCH", 10)
    started_in = await handler_rounds(nursery, 60)
    assert max(started_in) - min(started_in) >= 5, started_in
