"""Watching an HTTP/1.1 client while its route works: has it left?

`ClientWatch` serves exchange.py's contract ("the handler is cancelled when
its client is gone") for `http1`. Once a request is complete, `start` runs a
task that reads the connection beside the handler: EOF or a reset calls
`gone` (the connection then cancels its exchanges, handler included). A client
that half-closes after sending (`shutdown(SHUT_WR)`) cannot be told from one
that closed, and is gone too, as in Go's net/http and nginx. Bytes that
arrive meanwhile (a pipelined next request) go to `feed` (h11's buffer, where
the next cycle finds them); after `budget` bytes the watch ends, leaving the
rest to the kernel and to back-pressure, so a client that pipelines that much
is no longer watched until its current answer is done. `stop` ends the watch
before anything else reads the connection again.

Cost, on every watched exchange. On a kernel socket (every real connection) no
task: the socket joins the `WatchHub`, one task per trio run (a system task,
started on first use) that waits on an epoll of its own holding every watched
client socket, and reads the ready ones synchronously. `start` and `stop` are
one `epoll_ctl` each, and `stop` takes effect at once (the hub reads a socket
only while it is registered). A task per watch, as before, cost a spawn, a
cancel scope, trio's registration of the socket and a wake-up to end it: about
a tenth of a non-streamed request's CPU (issue 13). Any other stream (in-memory
ones in tests) is read by a task of its own with `receive_some`, which cannot be
abandoned half-way, so there `stop` waits for the task to end.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable
from contextlib import suppress

import trio

from chatmock.net.tcpstream import TCPStream

log = logging.getLogger("chatmock.server")
RECEIVE_SIZE = 65536


class ClientWatch:
    """The watch of one connection; at most one runs at a time. Its task may run in a
    server-wide nursery, so it never raises: an unexpected error is logged and ends the
    watch (the exchange goes on unwatched)."""

    __slots__ = ("_budget", "_current", "_ended", "_feed", "_gone", "_hub", "_left", "_socket",
                 "_stream")

    def __init__(self, stream: trio.abc.Stream, *, feed: Callable[[bytes], object],
                 gone: Callable[[], None], budget: int) -> None:
        self._stream = stream
        self._socket = stream.socket if isinstance(stream, TCPStream) else None
        self._feed = feed
        self._gone = gone
        self._budget = budget
        self._current: trio.CancelScope | None = None
        self._ended: trio.Event | None = None
        self._hub: WatchHub | None = None  # while the socket is in the hub
        self._left = 0  # bytes the hub may still read for this watch

    def start(self, nursery: trio.Nursery) -> None:
        """Begin watching (no-op while a watch runs)."""
        if self._socket is not None:
            if self._hub is None:
                self._left = self._budget
                self._hub = watch_hub()
                self._hub.add(self._socket.fileno(), self)
            return
        if self._current is None:
            scope = self._current = trio.CancelScope()
            ended = self._ended = trio.Event()
            nursery.start_soon(self._run, scope, ended, name="chatmock client watch")

    async def stop(self) -> None:
        """End the watch; on return, the watcher no longer reads the connection."""
        hub, self._hub = self._hub, None
        if hub is not None and self._socket is not None:
            hub.remove(self._socket.fileno())
        scope, ended = self._current, self._ended
        if scope is None:
            return
        self._current = self._ended = None
        scope.cancel()
        if ended is not None:
            await ended.wait()

    async def _run(self, scope: trio.CancelScope, ended: trio.Event) -> None:
        budget = self._budget
        try:
            with scope:
                while budget > 0:
                    data = await self._read()
                    if not data:
                        self._gone()
                        return
                    self._feed(data)
                    budget -= len(data)
        except Exception:
            log.exception("watching a client failed; its exchange goes on unwatched")
        finally:
            ended.set()

    async def _read(self) -> bytes:
        """The next bytes (b"" at EOF or on a reset) of an in-memory stream."""
        try:
            return bytes(await self._stream.receive_some(RECEIVE_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    def _leave_hub(self) -> None:
        """Out of the hub at the watch's end; `_hub` stays set until `stop` (a watch that
        ended is not started again within its exchange)."""
        if self._hub is not None and self._socket is not None:
            self._hub.remove(self._socket.fileno())

    def ready(self) -> None:
        """The hub found the socket readable: read once, like the task did per read."""
        assert self._socket is not None
        try:
            data = self._socket.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        try:
            if not data:
                self._leave_hub()
                self._gone()
                return
            self._feed(data)
            self._left -= len(data)
        except Exception:
            log.exception("watching a client failed; its exchange goes on unwatched")
            self._left = 0
        if self._left <= 0:
            self._leave_hub()


class WatchHub:
    """Every watched client socket of a trio run in one epoll, read by one task."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._watches: dict[int, ClientWatch] = {}
        self._running = False

    def add(self, fd: int, watch: ClientWatch) -> None:
        if not self._running:
            self._running = True
            trio.lowlevel.spawn_system_task(self._run, name="chatmock client watch hub")
        self._epoll.register(fd, select.EPOLLIN)
        self._watches[fd] = watch

    def remove(self, fd: int) -> None:
        if self._watches.pop(fd, None) is not None:
            with suppress(OSError, ValueError):  # closed meanwhile: out of the epoll already
                self._epoll.unregister(fd)

    async def _run(self) -> None:
        epoll, watches = self._epoll, self._watches
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll.fileno())
                for fd, _ in epoll.poll(0, 256):
                    watch = watches.get(fd)
                    if watch is not None:
                        watch.ready()
        finally:
            watches.clear()
            epoll.close()


_HUB: trio.lowlevel.RunVar[WatchHub] = trio.lowlevel.RunVar("chatmock_watch_hub")


def watch_hub() -> WatchHub:
    """The current trio run's hub, made on first use."""
    try:
        return _HUB.get()
    except LookupError:
        found = WatchHub()
        _HUB.set(found)
        return found
