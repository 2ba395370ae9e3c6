"""An HTTP/2 client for tests, built on the h2 package (an implementation independent of
chatmock's adapters): one reader task files every event under its stream, and tests
open streams, read what arrived and send raw frames when they play an attacker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import h2.config
import h2.connection
import h2.events
import h2.settings
import trio
from hyperframe.frame import Frame, GoAwayFrame


@dataclass
class StreamLog:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None  # the error code of a RST_STREAM

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: bytes) -> bytes | None:
        return dict(self.headers).get(name)

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class H2Client:
    """See the module docstring. With `auto_ack` off, received DATA is acknowledged
    only by `ack`, so a test can play a client that stops reading one stream."""

    def __init__(self, stream: trio.abc.Stream, *, auto_ack: bool = True,
                 settings: dict[int, int] | None = None, connection_window: int = 0) -> None:
        self.stream = stream
        self.conn: Any = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None))
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True,
                                                            initial_values=cast(Any, settings))
        self.auto_ack = auto_ack
        self.connection_window = connection_window
        self.streams: dict[int, StreamLog] = {}
        self.events: list[Any] = []
        self.closed = trio.Event()
        self.changed = trio.Event()
        self.received = 0
        self.goaways: list[GoAwayFrame] = []
        self._buffer = b""
        self._send_lock = trio.StrictFIFOLock()

    async def start(self, nursery: trio.Nursery) -> None:
        self.conn.initiate_connection()
        if self.connection_window:
            self.conn.increment_flow_control_window(self.connection_window)
        await self.flush()
        nursery.start_soon(self._reader)

    async def flush(self) -> None:
        async with self._send_lock:
            data = self.conn.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def _reader(self) -> None:
        try:
            while data := await self.stream.receive_some(65536):
                self.received += len(data)
                for event in self.conn.receive_data(self._without_goaways(bytes(data))):
                    self._file(event)
                await self.flush()
                self.changed.set()
                self.changed = trio.Event()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.closed.set()
            self.changed.set()

    def _without_goaways(self, data: bytes) -> bytes:
        """Whole frames except GOAWAY, which is kept in `goaways` (h2 would end its
        whole state at one, and tests read on after a graceful GOAWAY)."""
        buffer = self._buffer + data
        passed = []
        while len(buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(buffer[:9]))
            if len(buffer) < 9 + length:
                break
            if isinstance(frame, GoAwayFrame):
                frame.parse_body(memoryview(buffer[9:9 + length]))
                self.goaways.append(frame)
            else:
                passed.append(buffer[:9 + length])
            buffer = buffer[9 + length:]
        self._buffer = buffer
        return b"".join(passed)

    def _file(self, event: Any) -> None:
        self.events.append(event)
        log = self.streams.get(getattr(event, "stream_id", 0) or 0)
        if log is None:
            return
        if isinstance(event, h2.events.ResponseReceived | h2.events.InformationalResponseReceived):
            log.headers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            log.chunks.append(event.data)
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            log.ended = True
        elif isinstance(event, h2.events.StreamReset):
            log.reset = int(event.error_code)

    def open(self, method: str, path: str, *, body: bytes | None = None,
             headers: list[tuple[bytes, bytes]] | None = None,
             extra_pseudo: list[tuple[bytes, bytes]] | None = None) -> int:
        """Frame a request (without sending it); its stream id."""
        stream_id: int = self.conn.get_next_available_stream_id()
        fields = [(b":method", method.encode()), *(extra_pseudo or []),
                  (b":scheme", b"http"), (b":path", path.encode()),
                  (b":authority", b"localhost"), *(headers or [])]
        self.streams[stream_id] = StreamLog()
        self.conn.send_headers(stream_id, fields, end_stream=body is None)
        if body:
            self.conn.send_data(stream_id, body, end_stream=True)
        return stream_id

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: list[tuple[bytes, bytes]] | None = None) -> StreamLog:
        stream_id = self.open(method, path, body=b"" if body else None, headers=headers)
        if body:
            await self.send_body(stream_id, body)
        await self.flush()
        return await self.wait(stream_id)

    async def send_body(self, stream_id: int, data: bytes, *, end: bool = True) -> None:
        """DATA within the server's windows (stops early if the stream is answered)."""
        await send_windowed(self, stream_id, data, end=end,
                            stopped=lambda: self.streams[stream_id].done)

    async def wait(self, stream_id: int) -> StreamLog:
        log = self.streams[stream_id]
        while not log.done and not self.closed.is_set():
            await self.changed.wait()
        return log

    async def wait_for(self, condition: Any) -> None:
        while not condition() and not self.closed.is_set():
            await self.changed.wait()

    async def ack(self, stream_id: int, size: int) -> None:
        self.conn.acknowledge_received_data(size, stream_id)
        await self.flush()

    def goaway(self) -> GoAwayFrame | None:
        """The last GOAWAY received, if any."""
        return self.goaways[-1] if self.goaways else None


async def send_windowed(peer: Any, stream_id: int, data: bytes, *, end: bool,
                        stopped: Callable[[], bool] = lambda: False) -> None:
    """DATA on `peer.conn` (an h2 connection) within the windows, waiting on `peer.changed`
    for WINDOW_UPDATEs; `stopped()` ends it early."""
    conn = peer.conn
    while data and not stopped():
        size = min(len(data), conn.local_flow_control_window(stream_id),
                   conn.max_outbound_frame_size)
        if size <= 0:
            await peer.changed.wait()
            continue
        conn.send_data(stream_id, data[:size])
        data = data[size:]
        await peer.flush()
    if end and not stopped():
        conn.end_stream(stream_id)
        await peer.flush()
