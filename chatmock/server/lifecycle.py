"""Shared state for graceful shutdown: who is busy, who is idle, are we draining.

Connections register while they live. When a drain begins, idle keep-alive
connections (waiting for a next request) are cancelled at once, busy ones
finish their current exchange and then close; `wait_idle` returns when none
is left, and the server cancels whatever remains at its deadline.
"""

from __future__ import annotations

import trio

from chatmock.server.exchange import ConnectionLimits, Handler


class Lifecycle:
    def __init__(self) -> None:
        self.draining = False
        self.active = 0
        self._idle_scopes: set[trio.CancelScope] = set()
        self._all_closed = trio.Event()

    def connection_opened(self) -> None:
        self.active += 1

    def connection_closed(self) -> None:
        self.active -= 1
        if self.draining and self.active == 0:
            self._all_closed.set()

    def idle(self) -> trio.CancelScope:
        """A cancel scope for waiting on a next request; cancelled by a drain."""
        scope = trio.CancelScope()
        if self.draining:
            scope.cancel()
        return scope

    def enter_idle(self, scope: trio.CancelScope) -> None:
        self._idle_scopes.add(scope)

    def leave_idle(self, scope: trio.CancelScope) -> None:
        self._idle_scopes.discard(scope)

    def begin_drain(self) -> None:
        self.draining = True
        for scope in self._idle_scopes:
            scope.cancel()
        if self.active == 0:
            self._all_closed.set()

    async def wait_idle(self) -> None:
        await self._all_closed.wait()


class ServedConnection:
    """What a served client connection holds, whatever its HTTP version: its stream,
    the handler of its requests, its limits, the server's lifecycle (draining) and
    the client's address for the log."""

    def __init__(self, stream: trio.abc.Stream, app: Handler, limits: ConnectionLimits,
                 lifecycle: Lifecycle, client: str = "") -> None:
        self.stream = stream
        self.app = app
        self.limits = limits
        self.lifecycle = lifecycle
        self.client = client
