"""HTTP/2 on h2 for clients: one connection, concurrent exchanges, each handed to the app.

The connection's task reads: bytes go through `FrameScanner` (frame-size and
header-block caps, GOAWAY taken out: see `chatmock.net.h2wire`) into h2, and
h2's events are dispatched to the streams (`chatmock.server.h2stream`). A
stream whose request head is complete gets a task running the app, started
once the whole read is handled, so a stream opened and reset in the same read
costs no task. Writes go through `chatmock.net.h2io.H2Wire`: framed within the
flow-control windows, one writer at a time, each `send` returning once its
bytes are written.

Streams and their failures stay apart: RST_STREAM from the client cancels that
stream's route (its upstream request with it, and the router logs "(client
gone)"), nothing else; losing the connection cancels every route on it.

Limits. `ConnectionLimits.max_streams` is advertised as
SETTINGS_MAX_CONCURRENT_STREAMS; streams beyond it are refused one by one
with REFUSED_STREAM (h2 itself would end the whole connection, even for
streams a client opened before it could see our SETTINGS). A stream counts
while it is open in HTTP/2's terms: once both sides ended it, a route still
finishing its work (draining its backend answer, logging) no longer does. Request heads are
bounded by SETTINGS_MAX_HEADER_LIST_SIZE (the HPACK decoder stops there, which
also stops HPACK bombs) and, compressed, by a hard cap on the header block
across CONTINUATION frames. Resets (the client's and the REFUSED_STREAM ones),
and PING/SETTINGS/empty DATA frames, are counted per connection in 10-second
windows; beyond the limits the connection ends with GOAWAY(ENHANCE_YOUR_CALM)
(CVE-2023-44487 "rapid reset", and the control-frame floods). Answers h2
queues for the peer (PING and SETTINGS acknowledgements) stop the reading
once they pile up unsent (`H2Wire.backlog`).

Timeouts and shutdown. With no stream open the connection waits
`idle_timeout` for a new one, then says GOAWAY and closes; a header block left
unfinished for `header_timeout` closes it too. When the server drains, open
streams finish, newer ones are refused (REFUSED_STREAM, which clients retry
elsewhere), and once the last one is done a GOAWAY naming it goes out and the
connection closes; an idle connection says GOAWAY at once. The GOAWAY waits
for the streams because clients built on the h2 library (httpx, hence the
openai and anthropic SDKs) end every stream of a connection at a GOAWAY, even
one that promises to finish them.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio

from chatmock.net.h2io import H2Wire, WireBroken
from chatmock.net.h2wire import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    INTERNAL_ERROR,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    FrameScanner,
    RateLimit,
    WireError,
)
from chatmock.server.exchange import ClientGone, ConnectionLimits, Handler
from chatmock.server.h2stream import BadRequest, H2Exchange, build_request, error_body
from chatmock.server.lifecycle import Lifecycle, ServedConnection

log = logging.getLogger("chatmock.server")

RECEIVE_SIZE = 65536
STREAM_WINDOW = 65535  # the RFC's default; the connection's window is this per allowed stream
RATE_WINDOW_SECONDS = 10.0
CONTROL_FRAME_LIMIT = 1000  # PING, SETTINGS and empty DATA frames per window
CLOSE_SECONDS = 1.0
_Settings = h2.settings.SettingCodes


def reset_limit(max_streams: int) -> int:
    """Resets allowed per window: a client may cancel every stream it may open a few
    times over; a rapid-reset attack sends thousands."""
    return max(4 * max_streams, 400)


def new_server_state(limits: ConnectionLimits) -> Any:
    """An h2 server connection with chatmock's settings, its preamble queued."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None))
    advertised = {_Settings.MAX_CONCURRENT_STREAMS: limits.max_streams,
                  _Settings.MAX_HEADER_LIST_SIZE: limits.max_header_bytes,
                  _Settings.ENABLE_CONNECT_PROTOCOL: 1}
    conn.local_settings = h2.settings.Settings(client=False, initial_values=advertised)
    conn.decoder.max_header_list_size = limits.max_header_bytes
    conn.initiate_connection()
    # Enforced by `_open` (REFUSED_STREAM per stream), not by h2 (see the module docstring).
    conn.local_settings = h2.settings.Settings(client=False, initial_values={
        **advertised, _Settings.MAX_CONCURRENT_STREAMS: 2**31 - 1})
    conn.increment_flow_control_window(min(limits.max_streams * STREAM_WINDOW, 2**31 - 1)
                                       - 65535)
    return conn


class H2ServerConnection(ServedConnection):
    """Serves every stream of one HTTP/2 connection (see the module docstring)."""

    def __init__(self, stream: trio.abc.Stream, app: Handler, limits: ConnectionLimits,
                 lifecycle: Lifecycle, client: str = "", *, buffered: bytes = b"") -> None:
        super().__init__(stream, app, limits, lifecycle, client)
        self.conn = new_server_state(limits)
        self.wire = H2Wire(stream, self.conn)
        self.scanner = FrameScanner(max_header_block=2 * limits.max_header_bytes,
                                    preface=len(PREFACE))
        self.exchanges: dict[int, H2Exchange] = {}
        self.highest = 0  # the newest stream id seen
        self.drain_last: int | None = None  # draining: the newest stream still served
        self.peer_leaving = False  # the client sent GOAWAY
        self.closing = False
        self.resets = RateLimit(reset_limit(limits.max_streams), RATE_WINDOW_SECONDS)
        self.controls = RateLimit(CONTROL_FRAME_LIMIT, RATE_WINDOW_SECONDS)
        self._buffered = buffered
        self._idle_since = trio.current_time()
        self._block_since = 0.0
        self._read_scope = trio.CancelScope()
        self._starting: list[tuple[H2Exchange, list[tuple[bytes, bytes]]]] = []
        self._nursery: trio.Nursery | None = None
        self._dispatch = {
            h2.events.RequestReceived: self._open,
            h2.events.DataReceived: self._data,
            h2.events.StreamEnded: self._ended,
            h2.events.StreamReset: self._reset,
            h2.events.WindowUpdated: self._window,
            h2.events.RemoteSettingsChanged: self._settings,
            h2.events.PingReceived: self._control,
        }

    async def serve(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self.wire.run)
                try:
                    await self._run()
                finally:
                    nursery.cancel_scope.cancel()
                    for exchange in list(self.exchanges.values()):
                        exchange.reset()
                    self.wire.fail("connection closed")
                    await trio.aclose_forcefully(self.stream)
        except WireBroken:
            pass

    async def _run(self) -> None:
        await self.wire.answer()  # our SETTINGS
        data = self._buffered or await self._read()
        self._buffered = b""
        while data and await self._receive(data):
            data = await self._read()

    async def _read(self) -> bytes:
        """The next read; b"" when the connection is to end (EOF, timeout, drained)."""
        while not self.closing:
            scope = self._read_scope = self._new_read_scope()
            self.lifecycle.enter_idle(scope)
            try:
                with scope:
                    return await self._receive_some()
            finally:
                self.lifecycle.leave_idle(scope)
            await self._after_read_cancelled()
        return b""

    async def _after_read_cancelled(self) -> None:
        if self._header_block_late():
            await self._end(PROTOCOL_ERROR, "header block not completed in time")
        elif self.drain_last is None and self.lifecycle.draining:
            self.drain_last = self.highest  # newer streams are refused from now on
        elif not self.exchanges:  # idle, or drained
            await self._end(NO_ERROR, "idle" if self.drain_last is None else "drained")

    def _new_read_scope(self) -> trio.CancelScope:
        """Cancelled by a drain (once), by the idle timeout when no stream is open, by
        the header timeout while a header block is unfinished."""
        scope = self.lifecycle.idle() if self.drain_last is None else trio.CancelScope()
        deadline = math.inf
        if not self.exchanges:
            deadline = self._idle_since + self.limits.idle_timeout
        if self.scanner.in_header_block:
            deadline = min(deadline, self._block_since + self.limits.header_timeout)
        if (self.drain_last is not None or self.peer_leaving) and not self.exchanges:
            deadline = -math.inf
        scope.deadline = deadline
        return scope

    def _header_block_late(self) -> bool:
        return (self.scanner.in_header_block
                and trio.current_time() >= self._block_since + self.limits.header_timeout)

    async def _receive_some(self) -> bytes:
        try:
            return bytes(await self.stream.receive_some(RECEIVE_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def _receive(self, data: bytes) -> bool:
        """Handle one read; False when the connection is to end."""
        in_block = self.scanner.in_header_block
        try:
            passed, goaways = self.scanner.feed(data)
            events = self.conn.receive_data(passed) if passed else []
            for event in events:
                handler = self._dispatch.get(type(event))
                if handler is not None:
                    handler(event)
        except WireError as exc:
            self.conn.clear_outbound_data_buffer()  # not one more answer to an abuser
            await self._end(exc.error_code, str(exc))
            return False
        except h2.exceptions.ProtocolError as exc:
            log.debug("HTTP/2 protocol error from %s: %s", self.client, exc)
            await self._end(None, str(exc))  # h2 queued its GOAWAY
            return False
        if not in_block and self.scanner.in_header_block:
            self._block_since = trio.current_time()
        if goaways:
            self.peer_leaving = True
        self._start_routes()
        await self.wire.answer()
        return not self.closing and not (self.peer_leaving and not self.exchanges)

    def _open(self, event: Any) -> None:
        stream_id: int = event.stream_id
        self.highest = max(self.highest, stream_id)
        if self.drain_last is not None and stream_id > self.drain_last:
            self._refuse(stream_id)
            return
        if self._open_streams() >= self.limits.max_streams:
            self._count_reset()
            self._refuse(stream_id)
            return
        exchange = H2Exchange(self, stream_id, head_only=False)
        self.exchanges[stream_id] = exchange
        self._starting.append((exchange, event.headers))

    def _open_streams(self) -> int:
        """Streams open in HTTP/2's terms (not ended by both sides, not reset)."""
        return sum(not (x.gone or (x.ended and x.local_closed)) for x in self.exchanges.values())

    def _refuse(self, stream_id: int) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):  # reset in the same read
            self.conn.reset_stream(stream_id, REFUSED_STREAM)

    def _start_routes(self) -> None:
        starting, self._starting = self._starting, []
        assert self._nursery is not None
        for exchange, headers in starting:
            if not exchange.gone:
                exchange.running = True
                self._nursery.start_soon(self._serve_stream, exchange, headers)

    def _data(self, event: Any) -> None:
        exchange = self.exchanges.get(event.stream_id)
        if not event.flow_controlled_length and not event.stream_ended:
            self._control(event)
        if exchange is None:
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        else:
            exchange.push(event.data, event.flow_controlled_length)

    def _ended(self, event: Any) -> None:
        if (exchange := self.exchanges.get(event.stream_id)) is not None:
            exchange.end()

    def _reset(self, event: Any) -> None:
        self._count_reset()  # the client's resets, and h2's for streams the client broke
        exchange = self.exchanges.get(event.stream_id)
        if exchange is not None:
            exchange.reset()
            if not exchange.running:  # opened in this read: forget it now, start nothing
                del self.exchanges[event.stream_id]
                exchange.release()

    def _count_reset(self) -> None:
        if not self.resets.hit(trio.current_time()):
            raise WireError("too many stream resets", ENHANCE_YOUR_CALM)

    def _window(self, event: Any) -> None:
        self.wire.window_opened(event.stream_id)

    def _settings(self, event: Any) -> None:
        self._control(event)
        if _Settings.INITIAL_WINDOW_SIZE in event.changed_settings:
            self.wire.window_opened(0)

    def _control(self, event: Any) -> None:
        if not self.controls.hit(trio.current_time()):
            raise WireError("too many control frames", ENHANCE_YOUR_CALM)

    async def _serve_stream(self, exchange: H2Exchange,
                            headers: list[tuple[bytes, bytes]]) -> None:
        out = exchange.responder
        try:
            with exchange.scope:
                try:
                    request = build_request(headers, exchange, self.client,
                                            self.limits.max_body_bytes)
                except BadRequest as exc:
                    await out.respond(405, [(b"content-type", b"application/json")],
                                      error_body(str(exc)))
                    return
                out.head_only = request.method == "HEAD"
                await self.app(request, out)
                if not out.started:
                    await out.respond(500, [(b"content-type", b"application/json")],
                                      error_body("the route produced no response"))
        except ClientGone:
            pass
        except Exception:
            log.exception("HTTP/2 stream task failed")
        finally:
            self._close_stream(exchange)
        with contextlib.suppress(WireBroken):
            await self.wire.answer()

    def _close_stream(self, exchange: H2Exchange) -> None:
        """Forget a finished stream: end or reset what is still open of it."""
        stream_id = exchange.stream_id
        self.exchanges.pop(stream_id, None)
        exchange.release()
        if not exchange.gone and not self.wire.broken:
            try:
                if not exchange.local_closed:
                    if exchange.responder.finished:  # a WebSocket, closed: end the stream
                        self.conn.end_stream(stream_id)
                    else:
                        self.conn.reset_stream(stream_id, CANCEL if exchange.scope.cancel_called
                                               else INTERNAL_ERROR)
                elif not exchange.ended:
                    self.conn.reset_stream(stream_id, NO_ERROR)  # its body is not wanted
            except h2.exceptions.ProtocolError:
                pass
        self.wire.window_opened(stream_id)
        if not self.exchanges:
            self._idle_since = trio.current_time()
            if self.drain_last is not None or self.peer_leaving:
                self._read_scope.cancel()
            elif not self.scanner.in_header_block:
                self._read_scope.deadline = self._idle_since + self.limits.idle_timeout

    async def _end(self, error_code: int | None, reason: str) -> None:
        """Close with GOAWAY(`error_code`) (None: h2 already queued one)."""
        self.closing = True
        if error_code is not None:
            log.debug("closing HTTP/2 connection from %s: %s", self.client, reason)
            last = self.highest if self.drain_last is None else self.drain_last
            self.conn.close_connection(error_code=error_code, last_stream_id=last)
        await self._flush_before_close()

    async def _flush_before_close(self) -> None:
        with trio.move_on_after(CLOSE_SECONDS):
            try:
                await self.wire.flush()
            except WireBroken:
                self.closing = True
