"""HTTP/2 to the backend: one connection carries many requests, each on its own stream.

An `H2ClientConnection` runs a reader task for its life (a trio system task: the
connection outlives the request that opened it). The reader feeds h2 (behind
`FrameScanner`, which takes GOAWAY out, see `chatmock.net.h2wire`, and the lean
path for plain DATA frames, `chatmock.net.h2data`) and files each stream's
events in its `ResponseStream`; requests write through `H2Wire`.

Flow control is what keeps one slow client from slowing the others. Each
stream's receive window is `STREAM_WINDOW`; bytes are acknowledged (h2 batches
the WINDOW_UPDATEs, once half a window is used) only when the relay takes
them, so a stream whose client reads slowly stops its own backend stream
after one window, and the connection's window (`STREAM_WINDOW` for every
stream it may carry) never runs dry for the others.

When the connection dies (the backend closes it, resets it, sends GOAWAY, or
stops answering PINGs), a stream that had not yet received a byte fails with
`Retry`, which the pool turns into a second attempt on another connection:
the backend cannot have acted on it (GOAWAY names the last stream it will
process; REFUSED_STREAM says the same of one stream). A stream already
answering ends where it was cut, exactly as an HTTP/1.1 body cut by a closed
connection does (`complete` stays False): the translators then report the
missing terminal event in the dialect's own error shape, never a success, and
the same tests pass over both versions. A stream reset before its head, for
any other reason than REFUSED_STREAM, is an UpstreamError. A GOAWAY lets the
streams it names finish; the connection takes no new ones and closes once
they are done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio

from chatmock.errors import UpstreamError
from chatmock.net.h2data import receive
from chatmock.net.h2io import H2Wire, StreamGone, WireBroken
from chatmock.net.h2response import H2Response, ResponseStream, Retry
from chatmock.net.h2wire import (
    CANCEL,
    NO_ERROR,
    REFUSED_STREAM,
    FrameScanner,
    GoAway,
    PlainData,
    WireError,
)
from chatmock.net.transport import Origin

log = logging.getLogger("chatmock.upstream")

RECEIVE_SIZE = 65536
STREAM_WINDOW = 128 * 1024
MAX_STREAMS = 1000  # streams one connection carries at most, whatever the server allows
ASSUMED_STREAMS = 100  # until the server's SETTINGS say otherwise
PING_AFTER_SECONDS = 30.0  # of silence on a connection with open streams
PING_TIMEOUT_SECONDS = 15.0
MAX_IDLE_SECONDS = 50.0
TICK_SECONDS = 5.0
_Settings = h2.settings.SettingCodes
_HOP_BY_HOP = frozenset({b"host", b"connection", b"keep-alive", b"proxy-connection",
                         b"transfer-encoding", b"upgrade", b"te"})


def new_client_state() -> Any:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.local_settings = h2.settings.Settings(client=True, initial_values={
        _Settings.ENABLE_PUSH: 0, _Settings.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
        _Settings.MAX_HEADER_LIST_SIZE: 256 * 1024})
    conn.initiate_connection()
    conn.increment_flow_control_window(min(MAX_STREAMS * STREAM_WINDOW, 2**31 - 1) - 65535)
    return conn


class H2ClientConnection:
    """One HTTP/2 connection to `origin` (see the module docstring).

    `free` is how many more streams it takes; the pool reserves one
    (`reserved += 1`) before `exchange` opens it."""

    def __init__(self, origin: Origin, read_timeout: float) -> None:
        self.origin = origin
        self.read_timeout = read_timeout
        self.conn: Any = None
        self.wire: H2Wire | None = None
        self.scanner = FrameScanner()
        self.streams: dict[int, ResponseStream] = {}
        self.reserved = 0
        self.max_streams = ASSUMED_STREAMS
        self.accepting = True
        self.closed = False
        self.ready = trio.Event()  # connected and the server's SETTINGS came (or it failed)
        self.failure = ""
        self.connect_error: UpstreamError | None = None  # why connecting failed
        self.last_received = 0.0
        self.idle_since = 0.0
        self._ping_sent: float | None = None
        self._settings_seen = trio.Event()
        self._dispatch: dict[type, Callable[[Any], None]] = {
            h2.events.ResponseReceived: self._on_head,
            h2.events.DataReceived: self._on_data,
            h2.events.StreamEnded: self._on_end,
            h2.events.StreamReset: self._on_reset,
            h2.events.WindowUpdated: self._on_window,
            h2.events.RemoteSettingsChanged: self._on_settings,
            PlainData: self._on_plain_data,
            GoAway: self._on_goaway,
        }

    @property
    def free(self) -> int:
        if not self.accepting or self.closed:
            return 0
        return self.max_streams - len(self.streams) - self.reserved

    async def start(self, stream: trio.abc.Stream, connect_timeout: float) -> None:
        """Begin HTTP/2 on a connected stream; ready once the server's SETTINGS arrive.
        Raises UpstreamError (and closes) when they do not come in time."""
        self.conn = new_client_state()
        self.wire = H2Wire(stream, self.conn)
        self.last_received = self.idle_since = trio.current_time()
        trio.lowlevel.spawn_system_task(self._run, name=f"h2 {self.origin.authority}")
        try:
            await self.wire.flush()
            with trio.fail_after(connect_timeout):
                await self._settings_seen.wait()
        except (WireBroken, trio.TooSlowError):
            self.fail("no HTTP/2 settings from the backend")
        if self.failure:
            raise UpstreamError(f"cannot talk HTTP/2 to {self.origin.authority}: "
                                f"{self.failure}")
        self.ready.set()

    async def _run(self) -> None:
        assert self.wire is not None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch)
                nursery.start_soon(self.wire.run)
                await self._read_loop()
                nursery.cancel_scope.cancel()
        except Exception as exc:  # a system task must not raise
            log.exception("HTTP/2 connection to %s failed", self.origin.authority)
            self.fail(str(exc))
        finally:
            self.fail("the connection closed")
            if self.wire is not None:
                await trio.aclose_forcefully(self.wire.stream)

    async def _read_loop(self) -> None:
        assert self.wire is not None
        while not self.closed:
            try:
                data = await self.wire.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.fail("the backend closed the connection")
                return
            self.last_received = trio.current_time()
            if not self._receive(bytes(data)):
                return
            try:
                await self.wire.answer()
            except WireBroken as exc:
                self.fail(str(exc))
                return
            if not self.accepting and not self.streams:
                await self.close()

    def _receive(self, data: bytes) -> bool:
        try:
            events = receive(self.conn, self.scanner, data, self.streams.__contains__)
        except (WireError, h2.exceptions.ProtocolError) as exc:
            self.fail(f"HTTP/2 protocol error: {exc}")
            return False
        for event in events:
            handler = self._dispatch.get(type(event))
            if handler is not None:
                handler(event)
        return True

    def _on_plain_data(self, frame: PlainData) -> None:
        self.streams[frame.stream_id].on_data(frame.payload, len(frame.payload))

    def _on_head(self, event: Any) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.on_head(event.headers)

    def _on_data(self, event: Any) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.on_data(event.data, event.flow_controlled_length)
            return
        # A stream nobody reads any more: its bytes still count against the connection's
        # window, so they are given back.
        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

    def _on_end(self, event: Any) -> None:
        if (stream := self.streams.get(event.stream_id)) is not None:
            stream.on_end()

    def _on_reset(self, event: Any) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            code = int(event.error_code)
            stream.fail(f"the backend reset the stream (HTTP/2 error {code})",
                        retry=code == REFUSED_STREAM)
        assert self.wire is not None
        self.wire.window_opened(event.stream_id)

    def _on_window(self, event: Any) -> None:
        assert self.wire is not None
        self.wire.window_opened(event.stream_id)

    def _on_settings(self, event: Any) -> None:
        self.max_streams = min(self.conn.remote_settings.max_concurrent_streams, MAX_STREAMS)
        self._settings_seen.set()
        if _Settings.INITIAL_WINDOW_SIZE in event.changed_settings:
            assert self.wire is not None
            self.wire.window_opened(0)

    def _on_goaway(self, goaway: GoAway) -> None:
        self.accepting = False
        if goaway.error_code != NO_ERROR:
            log.warning("%s sent GOAWAY (HTTP/2 error %d): %s", self.origin.authority,
                        goaway.error_code, goaway.debug.decode("utf-8", "replace")[:200])
        for stream_id, stream in self.streams.items():
            if stream_id > goaway.last_stream_id:
                stream.fail("the backend is going away (GOAWAY)", retry=True)

    def fail(self, reason: str) -> None:
        """The connection is dead: every stream fails (a retry where nothing arrived)."""
        self.accepting = False
        if not self.failure:
            self.failure = reason
        if self.wire is not None:
            self.wire.fail(reason)
        for stream in self.streams.values():
            stream.fail(reason, retry=True)
        self.ready.set()
        self._settings_seen.set()

    async def close(self) -> None:
        """Say GOAWAY and close (idle, or a GOAWAY'd connection with no stream left)."""
        if self.closed:
            return
        self.closed = True
        self.accepting = False
        if self.wire is not None and self.wire.broken is None:
            self.conn.close_connection(error_code=NO_ERROR)
            with trio.move_on_after(1), trio.CancelScope(shield=True):
                await self.flush_acks()
        self.fail("the connection was closed")
        if self.wire is not None:
            await trio.aclose_forcefully(self.wire.stream)

    async def _watch(self) -> None:
        """Close when idle; PING when silent with streams open; fail when unanswered."""
        while not self.closed:
            await trio.sleep(TICK_SECONDS)
            now = trio.current_time()
            if not self.streams and not self.reserved:
                self._ping_sent = None
                if now - self.idle_since >= MAX_IDLE_SECONDS:
                    await self.close()
            elif self._ping_sent is not None and self.last_received < self._ping_sent:
                if now - self._ping_sent >= PING_TIMEOUT_SECONDS:
                    self.fail(f"no answer to a PING for {PING_TIMEOUT_SECONDS:g} s")
                    assert self.wire is not None
                    await trio.aclose_forcefully(self.wire.stream)
            elif now - self.last_received >= PING_AFTER_SECONDS:
                self._ping_sent = now
                self.conn.ping(b"chatmock")
                await self.flush_acks()
            else:
                self._ping_sent = None

    async def flush_acks(self) -> None:
        """Write what h2 queued (WINDOW_UPDATE, PING) unless someone else is writing."""
        assert self.wire is not None
        with contextlib.suppress(WireBroken):
            await self.wire.answer()

    async def exchange(self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]],
                       body: bytes) -> H2Response:
        """Send a request on a new stream (a slot reserved by the caller) and wait for
        the response head. Raises Retry or UpstreamError."""
        self.reserved -= 1
        if not self.accepting or self.wire is None:
            raise Retry(self.failure or "the connection takes no new streams")
        try:
            stream_id = self.conn.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.accepting = False
            raise Retry("stream ids used up") from None
        stream = self.streams[stream_id] = ResponseStream(self, stream_id)
        try:
            await self._send(stream, method, target, headers, body)
            await self._head(stream)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.forget(stream)
            raise
        return H2Response(stream, self.read_timeout)

    async def _send(self, stream: ResponseStream, method: str, target: str,
                    headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
        assert self.wire is not None
        fields = [(b":method", method.encode()), (b":scheme", self.origin.scheme.encode()),
                  (b":authority", self.origin.authority.encode()), (b":path", target.encode())]
        fields += [(name.lower(), value) for name, value in headers
                   if name.lower() not in _HOP_BY_HOP]
        if body or method in ("POST", "PUT", "PATCH"):
            fields.append((b"content-length", b"%d" % len(body)))
        try:
            self.conn.send_headers(stream.stream_id, fields, end_stream=not body)
            if body:
                await self.wire.send_data(stream.stream_id, body, end_stream=True)
            else:
                await self.wire.flush()
        except (WireBroken, StreamGone) as exc:
            stream.fail(str(exc), retry=True)
        if stream.error is not None:
            raise stream.error

    async def _head(self, stream: ResponseStream) -> None:
        waited = 0.0
        while not stream.status and stream.error is None:
            if waited >= self.read_timeout:
                raise UpstreamError(f"the backend sent nothing for {self.read_timeout:g} s",
                                    status=504)
            wait = self.read_timeout - waited
            if not await stream.wait(wait):
                waited += wait
        if not stream.status and stream.error is not None:
            raise stream.error

    async def forget(self, stream: ResponseStream) -> None:
        """The stream is done with: reset it if still open, hand back its window."""
        if self.streams.pop(stream.stream_id, None) is None:
            return
        stream.release()
        if not stream.ended and stream.error is None and self.wire is not None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.conn.reset_stream(stream.stream_id, CANCEL)
        if self.wire is not None:
            self.wire.window_opened(stream.stream_id)
        if not self.streams:
            self.idle_since = trio.current_time()
        if self.wire is not None and self.wire.broken is None:
            with trio.move_on_after(1):
                await self.flush_acks()
        if not self.accepting and not self.streams:
            await self.close()
