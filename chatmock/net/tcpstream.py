"""A connected TCP socket as a trio stream, with less machinery per call.

`trio.SocketStream` ends every send and receive that succeeds at once with a
full yield to the scheduler, and guards each call against concurrent use. A
relay does one backend read and one client write per burst of events, and on
the bench that machinery was about a tenth of the server's CPU. Here an operation
the kernel completes at once returns at once, after a cheap check for
cancellation; a task waits (a real checkpoint) only when the kernel says it
must. That breaks trio's rule that every such call yields, knowingly, within
a bound: after `YIELD_EVERY` calls in a row that did not wait, the next one
yields anyway, so a relay whose backend is ahead of it (every read finds data)
still takes turns with the other streams. Concurrent use is refused only where
it can happen, while a send waits (a stream has one reader and one writer
task in chatmock; WebSocket writers hold a lock).

`send_timeout` bounds a send that waits for a peer that stopped reading: a
timer is armed per stall, not per write.

A reader that keeps its own timeouts (the HTTP client's body reader) can take
the parts apart: `receive_ready` returns what the kernel holds, or None, without
an await; `wait_readable` waits until there is something (a cancellation point
that the caller bounds with its own deadline); `take_turns` is the check and the
occasional yield that `receive_some` does after a read that did not wait. So a
read that finds data needs no cancel scope, and a wait needs one scope, not one
around a call that might not wait at all.
"""

from __future__ import annotations

import math
import operator
import socket
from contextlib import suppress

import trio

RECEIVE_SIZE = 65536
YIELD_EVERY = 16


class TCPStream(trio.abc.HalfCloseableStream):
    """See the module docstring. Errors are trio's: BrokenResourceError when the
    connection fails, ClosedResourceError after `aclose`, TooSlowError when a send
    waited `send_timeout` seconds."""

    __slots__ = ("_closed", "_eof_sent", "_sending", "_unyielded", "send_timeout", "socket")

    def __init__(self, sock: socket.socket, *, send_timeout: float = math.inf) -> None:
        sock.setblocking(False)
        self.socket = sock
        self.send_timeout = send_timeout
        self._closed = False
        self._eof_sent = False
        self._sending = False  # a task waits to send: no other may send or shut down
        self._unyielded = 0  # calls since this stream last let other tasks run

    @classmethod
    def from_trio(cls, stream: trio.SocketStream, *, send_timeout: float = math.inf) -> TCPStream:
        """Take over the socket of a trio stream (from `accept` or `open_tcp_stream`,
        which already set TCP_NODELAY); the trio stream must not be used again."""
        return cls(socket.socket(fileno=stream.socket.detach()), send_timeout=send_timeout)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check_can_send()
        if not data:
            await trio.lowlevel.checkpoint()
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        remaining = memoryview(data)
        while True:
            try:
                sent = self.socket.send(remaining)
            except BlockingIOError:
                with trio.fail_after(self.send_timeout):
                    await self._wait_writable()
                self._unyielded = 0
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(f"send failed: {exc}") from exc
            if sent == len(remaining):
                await self._take_turns()
                return
            remaining = remaining[sent:]

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        size = RECEIVE_SIZE if max_bytes is None else operator.index(max_bytes)
        if size < 1:
            raise ValueError("max_bytes must be at least 1")
        self._check_open()
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                data = self.socket.recv(size)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise trio.BrokenResourceError(f"receive failed: {exc}") from exc
            else:
                await self._take_turns()
                return data
            await trio.lowlevel.wait_readable(self.socket)
            self._unyielded = 0

    def receive_ready(self, max_bytes: int = RECEIVE_SIZE) -> bytes | None:
        """What the kernel holds now (b"" at the end of the stream), or None when
        nothing is there yet; never waits or yields (see the module docstring)."""
        self._check_open()
        try:
            return self.socket.recv(max_bytes)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise trio.BrokenResourceError(f"receive failed: {exc}") from exc

    async def wait_readable(self) -> None:
        """Wait until a receive would not block (a cancellation point)."""
        self._check_open()
        await trio.lowlevel.wait_readable(self.socket)
        self._unyielded = 0

    async def take_turns(self) -> None:
        """After a `receive_ready` that found data: raise if cancelled, and yield to the
        scheduler once every YIELD_EVERY such calls, as `receive_some` would."""
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._take_turns()

    async def wait_send_all_might_not_block(self) -> None:
        self._check_open()
        self._check_not_sending()
        await self._wait_writable()

    async def _take_turns(self) -> None:
        """Yield to the scheduler once every YIELD_EVERY calls that did not wait."""
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def _wait_writable(self) -> None:
        self._sending = True
        try:
            await trio.lowlevel.wait_writable(self.socket)
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        self._check_open()
        self._check_not_sending()
        await trio.lowlevel.checkpoint()
        if not self._eof_sent:
            self._eof_sent = True
            with suppress(OSError):  # the peer is gone: nothing left to tell it
                self.socket.shutdown(socket.SHUT_WR)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()
        await trio.lowlevel.checkpoint()

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")

    def _check_can_send(self) -> None:
        if self._closed or self._eof_sent:
            raise trio.ClosedResourceError("the stream is closed for sending")
        self._check_not_sending()

    def _check_not_sending(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
