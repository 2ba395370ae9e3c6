"""Paced streams for the bench: N streamed requests, each on a connection of its own,
started at a fixed rate and read by one plain epoll loop.

Why not trio, as in the other modes: a paced stream costs its reader one wake-up
per event, and 2,000 streams of one event per 20 ms are 100,000 reads a second on
a machine the server under test shares. A trio task pays a task switch and an
`epoll_ctl` per wait; this level-triggered loop pays one `recv` per ready socket
and a few lines of parsing, several times less.

Per stream it records when its connect started, when the first body bytes of a
200 answer arrived (the time to first chunk), its content deltas, and how it
ended. A stream is *open* from its first body bytes to its end; the peak number
of open streams is what the bench reports as streams open at once.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wire import RECEIVE_SIZE, Dialect, Head, ProtocolError, Tally, parse_chunks, parse_head

EXPIRE_EVERY = 0.25
"""Seconds between scans for streams past their deadline."""


@dataclass(frozen=True)
class PacedPlan:
    host: str
    port: int
    request: bytes
    dialect: Dialect
    streams: int
    rate: float
    """New streams per second."""
    expected_deltas: int
    timeout: float
    """Seconds from a stream's connect to its end."""


class PacedStream:
    """One connection: its request still to send, its response as it arrives."""

    __slots__ = ("buf", "deltas", "end", "first", "head", "sock", "started", "unsent")

    def __init__(self, sock: socket.socket, request: bytes, dialect: Dialect,
                 started: float) -> None:
        self.sock = sock
        self.unsent = memoryview(request)
        self.started = started
        self.first = 0.0
        self.buf = bytearray()
        self.head: Head | None = None
        self.deltas = Tally(dialect.delta)
        self.end = Tally(dialect.end)


@dataclass
class PacedTally:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    deltas: int = 0
    open_now: int = 0
    peak_open: int = 0
    ttfc: list[float] = field(default_factory=list)


class PacedClient:
    """Runs one plan to its end (every stream finished, failed or timed out)."""

    def __init__(self, plan: PacedPlan) -> None:
        self.plan = plan
        self.epoll = select.epoll()
        self.live: dict[int, PacedStream] = {}
        self.tally = PacedTally()
        self.now = time.monotonic()

    def run(self) -> dict[str, Any]:
        plan = self.plan
        begin = self.now = time.monotonic()
        started, expire_at, last_start = 0, begin + EXPIRE_EVERY, begin
        while started < plan.streams or self.live:
            while started < plan.streams and begin + started / plan.rate <= self.now:
                self.start()
                started, last_start = started + 1, self.now
            due = begin + started / plan.rate if started < plan.streams else expire_at
            for fd, _ in self.epoll.poll(max(0.0, min(due, expire_at) - self.now)):
                self.now = time.monotonic()
                self.ready(fd)
            self.now = time.monotonic()
            if self.now >= expire_at:
                self.expire()
                expire_at = self.now + EXPIRE_EVERY
        self.epoll.close()
        return self.summary(started, last_start - begin, self.now - begin)

    def summary(self, started: int, start_seconds: float, seconds: float) -> dict[str, Any]:
        tally, plan = self.tally, self.plan
        return {"streams": plan.streams, "started": started, "ok": tally.ok,
                "errors": dict(tally.errors), "deltas": tally.deltas,
                "expected_deltas": plan.streams * plan.expected_deltas,
                "peak_open": tally.peak_open, "first_chunks": len(tally.ttfc),
                "ttfc": tally.ttfc, "start_seconds": round(start_seconds, 3),
                "seconds": round(seconds, 3)}

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex((self.plan.host, self.plan.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.tally.errors["connect_error"] += 1
            return
        stream = PacedStream(sock, self.plan.request, self.plan.dialect, self.now)
        self.live[sock.fileno()] = stream
        self.epoll.register(sock.fileno(), select.EPOLLOUT)

    def ready(self, fd: int) -> None:
        stream = self.live.get(fd)
        if stream is None:
            return
        try:
            if stream.unsent:
                self.send(fd, stream)
                return
            data = stream.sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            kind = "connect_error" if stream.unsent else "socket_error"
            self.close(fd, stream, f"{kind}_{errno.errorcode.get(exc.errno or 0, 'unknown')}")
            return
        if not data:
            self.close(fd, stream, self.at_eof(stream))
            return
        try:
            self.feed(fd, stream, data)
        except (ProtocolError, ValueError):
            self.close(fd, stream, "bad_framing")

    def send(self, fd: int, stream: PacedStream) -> None:
        code = stream.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, errno.errorcode.get(code, "connect failed"))
        stream.unsent = stream.unsent[stream.sock.send(stream.unsent):]
        if not stream.unsent:
            self.epoll.modify(fd, select.EPOLLIN)

    def feed(self, fd: int, stream: PacedStream, data: bytes) -> None:
        stream.buf += data
        if stream.head is None:
            end = stream.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            stream.head = parse_head(bytes(stream.buf[:end]))
            del stream.buf[: end + 4]
        head = stream.head
        if head.chunked:
            parts, used, finished = parse_chunks(stream.buf)
            del stream.buf[:used]
            if parts:
                self.body(stream, b"".join(parts))
        elif head.length is not None:
            finished = len(stream.buf) >= head.length
            if finished:
                self.body(stream, bytes(stream.buf[: head.length]))
        else:
            return  # the body ends when the connection closes (at_eof)
        if finished:
            self.close(fd, stream, self.verdict(stream))

    def body(self, stream: PacedStream, data: bytes) -> None:
        assert stream.head is not None
        if not stream.first and stream.head.status == 200:
            stream.first = self.now
            self.tally.ttfc.append(self.now - stream.started)
            self.tally.open_now += 1
            self.tally.peak_open = max(self.tally.peak_open, self.tally.open_now)
        seen = stream.deltas.count
        stream.deltas.feed(data)
        stream.end.feed(data)
        self.tally.deltas += stream.deltas.count - seen

    def at_eof(self, stream: PacedStream) -> str:
        """How a stream ended whose peer closed the connection."""
        if stream.head is None or stream.head.chunked or stream.head.length is not None:
            return "closed_early"
        self.body(stream, bytes(stream.buf))
        return self.verdict(stream)

    def verdict(self, stream: PacedStream) -> str:
        """'' for a complete, correct answer, else an error kind."""
        assert stream.head is not None
        if stream.head.status != 200:
            return f"status_{stream.head.status}"
        if stream.end.count != 1:
            return "no_done"
        return "" if stream.deltas.count == self.plan.expected_deltas else "wrong_delta_count"

    def close(self, fd: int, stream: PacedStream, kind: str) -> None:
        self.epoll.unregister(fd)
        stream.sock.close()
        del self.live[fd]
        if stream.first:
            self.tally.open_now -= 1
        if kind:
            self.tally.errors[kind] += 1
        else:
            self.tally.ok += 1

    def expire(self) -> None:
        late = [(fd, stream) for fd, stream in self.live.items()
                if self.now - stream.started > self.plan.timeout]
        for fd, stream in late:
            self.close(fd, stream, "timeout" if stream.first else "timeout_before_first_chunk")
