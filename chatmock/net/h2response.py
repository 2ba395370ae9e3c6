"""One backend response over HTTP/2: the stream's state as the reader files it
(`ResponseStream`), and the `UpstreamResponse` a caller pulls the body from
(`H2Response`). The connection side is `chatmock.net.h2client`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chatmock.errors import UpstreamError
from chatmock.net.h2io import ReceiveBuffer
from chatmock.net.response import UpstreamResponse

if TYPE_CHECKING:
    from chatmock.net.h2client import H2ClientConnection

log = logging.getLogger("chatmock.upstream")


class Retry(Exception):
    """The stream was never processed by the backend: send it again elsewhere."""


class ResponseStream(ReceiveBuffer):
    """One request's stream: the response head, then body bytes as they arrive."""

    __slots__ = ("c", "ended", "error", "headers", "reported", "started", "status")

    def __init__(self, connection: H2ClientConnection, stream_id: int) -> None:
        super().__init__(connection.conn, stream_id)
        self.c = connection
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.started = False  # a byte of the answer arrived: no retry from here on
        self.ended = False
        self.error: Exception | None = None
        self.reported = False  # the cut was logged (once, however often it is read)

    def on_head(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        self.headers = [(name, value) for name, value in headers if name[:1] != b":"]
        self.status = int(dict(headers).get(b":status", b"0"))
        self.wake()

    def on_data(self, data: bytes, flow_controlled: int) -> None:
        self.started = True
        self.push(data, flow_controlled)

    def on_end(self) -> None:
        self.ended = True
        self.wake()

    def fail(self, reason: str, *, retry: bool) -> None:
        """The stream cannot go on: a retry if nothing of it arrived (and `retry`)."""
        if self.ended or self.error is not None:
            return
        if retry and not self.started:
            self.error = Retry(reason)
        else:
            self.error = UpstreamError(f"{self.c.origin.authority}: {reason}")
        self.wake()


class H2Response(UpstreamResponse):
    """A response read from an HTTP/2 stream."""

    def __init__(self, stream: ResponseStream, read_timeout: float) -> None:
        super().__init__(stream.status, stream.headers, read_timeout)
        self._stream = stream

    async def receive(self, heartbeat: float | None = None) -> bytes | None:
        stream = self._stream
        while True:
            data = stream.take()
            if data:
                if stream.acked:
                    await stream.c.flush_acks()
                self._silent = 0.0
                if self.trace is not None:
                    self.trace(data)
                return data
            if stream.ended:
                self.complete = True
                return None
            if stream.error is not None:
                # Cut mid-answer, as a closed HTTP/1.1 connection cuts a body: the caller
                # sees the stream end without its terminal event and reports that.
                if not stream.reported:
                    stream.reported = True
                    log.warning("upstream stream cut short: %s", stream.error)
                return None
            wait = self.silence_left(heartbeat)
            if not await stream.wait(wait):
                self.note_silence(wait)
                return b""

    async def aclose(self) -> None:
        """Done with the response: reset the stream if it is still open, forget it."""
        await self._stream.c.forget(self._stream)
