"""What an upstream response is to its reader, whatever the HTTP version or provider:
status, headers, a pull-based body, and the read timeout counted over silences."""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from chatmock.errors import UpstreamError


class UpstreamResponse(ABC):
    """Status, headers and a pull-based body of one upstream response, whatever the
    HTTP version (`chatmock.net.client.H1Response`, `chatmock.net.h2response.H2Response`)
    or provider."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]],
                 read_timeout: float) -> None:
        self.status = status
        self.headers = headers
        self._read_timeout = read_timeout
        self.complete = False
        self._silent = 0.0
        self.trace: Callable[[bytes], None] | None = None

    def header(self, name: bytes) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return ""

    @abstractmethod
    async def receive(self, heartbeat: float | None = None) -> bytes | None:
        """The next body bytes, as one network read (HTTP/1.1) or a batch of DATA frames
        (HTTP/2) brought them; None at the end, also when the body was cut (`complete`
        stays False): the connection closed, or (HTTP/2) the stream was reset.

        With `heartbeat`, b"" is returned whenever the backend has been silent that
        long (the read timeout still applies to the whole silence), so a streaming
        route can write something and find out whether its client is still there.
        A relay calls this once per wake-up; `chunks` is the same as an iterator.
        """

    async def chunks(self, heartbeat: float | None = None) -> AsyncGenerator[bytes, None]:
        """`receive` until the end, as an async iterator."""
        while (data := await self.receive(heartbeat)) is not None:
            yield data

    @property
    def held(self) -> bool:
        """True while body bytes that came with the head wait for `receive`."""
        return False

    @property
    def ended(self) -> bool:
        """True once the body is complete, cut or broken: `receive` returns None."""
        return self.complete

    def note_silence(self, waited: float) -> None:
        """A wait of `waited` seconds found nothing: UpstreamError(504) past the read
        timeout (the hub's parked streams count their silence here too)."""
        self._silent += waited
        if self._silent >= self._read_timeout:
            raise UpstreamError(f"the backend sent nothing for {self._read_timeout:g} s",
                                status=504)

    def silence_left(self, heartbeat: float | None) -> float:
        """How long the next wait for data may take (the heartbeat, or what is left of
        the read timeout)."""
        wait = self._read_timeout - self._silent
        return wait if heartbeat is None else min(wait, heartbeat)

    async def read_all(self, limit: int = 16 * 1024 * 1024) -> bytes:
        parts: list[bytes] = []
        size = 0
        async with aclosing(self.chunks()) as chunks:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UpstreamError(f"backend answer larger than {limit} bytes")
                parts.append(chunk)
        return b"".join(parts)


class HubReadable(ABC):
    """Optional UpstreamResponse capability: a body `chatmock.net.relayhub` can read
    from its own task, without waiting (HTTP/1.1 offers it). An abstract base class,
    not a runtime-checkable Protocol, for the cost of `isinstance` (see
    `chatmock.server.exchange.DirectSend`)."""

    __slots__ = ()

    @abstractmethod
    def hub_socket(self) -> socket.socket | None:
        """The backend socket when the hub can carry this body with `receive_nowait`
        (plain TCP) once nothing is `held`; None otherwise (TLS)."""

    @abstractmethod
    def receive_nowait(self) -> bytes | None:
        """One read without waiting, once `hub_socket` gave a socket: the body bytes it
        completes (b"" for framing alone, or at the end: see `ended`), or None when
        the kernel held nothing."""
