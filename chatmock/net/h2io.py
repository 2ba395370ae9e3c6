"""An h2 connection state and the byte stream it is written to, shared by the
server adapter (`chatmock.server.http2`) and the backend client (`chatmock.net.h2client`).

Writing. Every task that frames something (a responder's DATA, the reader's
acknowledgements, a request's HEADERS) then calls `flush`, which writes
everything pending, coalesced, with at most one writer at a time. A task
returns from `flush` once the bytes it queued are in the kernel, so a stream
whose writes wait makes its own sender wait, and nothing else. An idle
connection's writes cost no task switch: the task that framed writes; only
what is left for nobody in particular goes to the connection's `run` task. The write
itself is shielded from cancellation: a cancelled write could leave half a
frame on the wire, which would break every stream of the connection, not
just the one whose task was cancelled. The stream's own send timeout (or
closing it) still ends a write that waits on a peer that stopped reading.

Flow control. `send_data` frames no more than the stream's and the
connection's windows allow and no more than one frame size at a time, then
writes, then waits for a WINDOW_UPDATE to send the rest. So a stream never
has more than the window plus one frame of data in flight or queued, and the
sending task is held back until the peer takes more: that is how a slow
reader's back-pressure reaches whatever produces the data.

Reading. `ReceiveBuffer` holds what arrived on one stream until its reader
takes it, and only then acknowledges it (WINDOW_UPDATE): the stream's window
is the buffer's high-water mark (the peer may not send beyond it), and h2
hands the window back once half of it was taken (the low-water mark), so
acknowledgements go out in batches, not one per frame (and reach h2 in
batches of `ACK_BATCH` bytes).

The answers to a peer's frames (PING and SETTINGS acknowledgements,
WINDOW_UPDATEs) are queued by h2 while the reader handles a read; `answer`
writes them unless someone else is writing, and waits for the writer only
once more than `backlog` bytes of answers are pending, so a peer that sends
pings but never reads stops being read from, and its answers stay bounded.
The reader never waits on data other streams queued: two peers whose readers
both waited on their own writers would each stop reading what the other writes.
"""

from __future__ import annotations

from typing import Any

import h2.exceptions
import trio

WRITE_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError)
ACK_BATCH = 16 * 1024  # received bytes acknowledged to h2 at once (see ReceiveBuffer.take)


class WireBroken(Exception):
    """The connection's byte stream failed; no stream on it can continue."""


class StreamGone(Exception):
    """The stream was reset or closed while data was still to be sent on it."""


class H2Wire:
    """Writes for one h2 connection (see the module docstring)."""

    __slots__ = ("_answers", "_answers_writing", "_kick", "_lot", "_outbox", "_queued", "_sent",
                 "_waiters", "_writing", "backlog", "broken", "conn", "stream")

    def __init__(self, stream: trio.abc.Stream, conn: Any, *, backlog: int = 64 * 1024) -> None:
        self.stream = stream
        self.conn = conn  # h2.connection.H2Connection (h2 has no type hints)
        self.backlog = backlog
        self.broken: str | None = None
        self._outbox = bytearray()
        self._answers = 0  # bytes of answers in the outbox (see `answer`)
        self._answers_writing = 0  # ... and in the write under way
        self._queued = 0  # bytes ever queued
        self._sent = 0  # bytes ever written
        self._writing = False
        self._lot = trio.lowlevel.ParkingLot()
        self._kick = trio.Event()  # wakes `run`
        self._waiters: dict[int, trio.Event] = {}  # stream id → waiting for window

    @property
    def pending(self) -> int:
        return len(self._outbox)

    def _take(self) -> int:
        data = self.conn.data_to_send()
        if data:
            self._outbox += data
            self._queued += len(data)
        return len(data)

    async def flush(self) -> None:
        """Write what is pending; return once everything queued up to now is written.
        Raises WireBroken if the stream fails."""
        self._take()
        await self._written(self._queued, wait=True)

    async def answer(self) -> None:
        """Write the answers h2 queued while handling a read (PING and SETTINGS
        acknowledgements, WINDOW_UPDATEs) without waiting for another writer, unless
        more than `backlog` bytes of answers are pending: then wait (see the module
        docstring). Counting answers only, not the DATA other streams queued, keeps a
        reader from waiting on its own peer's reading while that peer waits on ours."""
        self._answers += self._take()
        await self._written(self._queued, wait=False)

    async def _written(self, target: int, *, wait: bool) -> None:
        while self._sent < target:
            if self.broken is not None:
                raise WireBroken(self.broken)
            if self._writing:
                if not wait and self._answers + self._answers_writing <= self.backlog:
                    return
                await self._lot.park()
                continue
            await self._write_round()
        if self._outbox and not self._writing:
            self._kick.set()  # queued meanwhile by others: `run` writes it

    async def _write_round(self) -> None:
        """One write of everything pending."""
        data, self._outbox = self._outbox, bytearray()
        self._answers_writing, self._answers = self._answers, 0
        self._writing = True
        try:
            with trio.CancelScope(shield=True):
                await self.stream.send_all(data)
        except WRITE_ERRORS as exc:
            self.fail(str(exc) or type(exc).__name__)
            raise WireBroken(self.broken) from None
        finally:
            self._writing = False
            self._answers_writing = 0
            self._lot.unpark_all()
        self._sent += len(data)
        self._take()

    async def run(self) -> None:
        """The writer of last resort, a task beside the reader for the connection's life.

        A task writes only until its own bytes are out (a busy connection would
        otherwise keep it writing for others, and its own stream would stall); what
        others queued meanwhile without waiting for it (answers) is written here."""
        while self.broken is None:
            await self._kick.wait()
            self._kick = trio.Event()
            while self._outbox and not self._writing and self.broken is None:
                try:
                    await self._write_round()
                except WireBroken:
                    return

    def fail(self, reason: str) -> None:
        """Mark the connection dead and wake every task that waits on it."""
        if self.broken is None:
            self.broken = reason
        self._lot.unpark_all()
        self._kick.set()
        self.window_opened(0)

    def window_opened(self, stream_id: int) -> None:
        """A WINDOW_UPDATE (0: for the connection, so every stream), a settings change
        or the end of a stream: whoever waits to send on it looks again."""
        if stream_id == 0:
            waiters, self._waiters = self._waiters, {}
            for event in waiters.values():
                event.set()
        else:
            waiting = self._waiters.pop(stream_id, None)
            if waiting is not None:
                waiting.set()

    async def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send `data` on the stream within the flow-control windows, frame by frame;
        returns once all of it is written. Raises StreamGone or WireBroken."""
        size = len(data)
        offset = 0
        while True:
            if self.broken is not None:
                raise WireBroken(self.broken)
            offset = self._frame(stream_id, data, offset, end_stream)
            window: trio.Event | None = None
            if offset < size:  # registered before the write: a window may open meanwhile
                window = self._waiters.get(stream_id)
                if window is None:
                    window = self._waiters[stream_id] = trio.Event()
            await self.flush()
            if window is None:
                return
            await window.wait()

    def _frame(self, stream_id: int, data: bytes, offset: int, end_stream: bool) -> int:
        """Frame as much of `data[offset:]` as the windows allow; the new offset."""
        conn = self.conn
        size = len(data)
        try:
            window = conn.local_flow_control_window(stream_id)
            if size == 0 and end_stream:
                conn.end_stream(stream_id)
                return 1
            frame_size = conn.max_outbound_frame_size
            while offset < size and window > 0:
                take = min(size - offset, window, frame_size)
                piece = data if take == size else data[offset:offset + take]
                offset += take
                window -= take
                conn.send_data(stream_id, piece, end_stream=end_stream and offset == size)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError,
                KeyError) as exc:
            raise StreamGone(str(exc)) from None
        return offset


class ReceiveBuffer:
    """One stream's received data, acknowledged when taken (see the module docstring)."""

    __slots__ = ("_event", "_held", "_parts", "acked", "h2_state", "stream_id")

    def __init__(self, h2_state: Any, stream_id: int) -> None:
        self.h2_state = h2_state  # the connection's h2.connection.H2Connection
        self.stream_id = stream_id
        self.acked = False
        self._parts: list[bytes] = []
        self._held = 0  # flow-controlled bytes received, not yet acknowledged
        self._event: trio.Event | None = None

    def push(self, data: bytes, flow_controlled: int) -> None:
        if data:
            self._parts.append(data)
        self._held += flow_controlled
        self.wake()

    def wake(self) -> None:
        """Whoever waits on the stream looks again."""
        if self._event is not None:
            self._event.set()
            self._event = None

    def take(self) -> bytes:
        """What arrived since the last call. It is acknowledged to the peer once
        `ACK_BATCH` bytes were taken (`acked` says whether this call did): h2's own
        window update needs half a window (a stream window is at least 64 KiB), so
        this batching never holds a stream back, and small DATA frames (one per
        backend event) cost one h2 call per batch instead of one each."""
        parts, self._parts = self._parts, []
        self.acked = self._held >= ACK_BATCH
        if self.acked:
            self._acknowledge()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Drop what nobody will read, handing its window back."""
        self._parts = []
        self._acknowledge()

    def _acknowledge(self) -> None:
        if self._held:
            self.h2_state.acknowledge_received_data(self._held, self.stream_id)
            self._held = 0

    async def wait(self, seconds: float) -> bool:
        """Wait for news on the stream (see `wake`); False after `seconds`."""
        event = self._event = trio.Event()
        with trio.CancelScope(deadline=trio.current_time() + seconds):
            await event.wait()
            return True
        return False
