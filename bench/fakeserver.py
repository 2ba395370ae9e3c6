"""The bench's fake Codex backend: `FakeCodex` (sans-I/O) served by one plain epoll loop.

    python bench/fakeserver.py --port 0    # prints: fake-upstream listening on http://127.0.0.1:PORT

The answers are `chatmock.testing.fake_codex.FakeCodex`'s, byte for byte, and so
is the framing: every SSE event is one HTTP chunk written with one `send`, bursts
are events written back to back, paced events follow a schedule fixed from the
start of the response (`fake:delay_ms`), and `fake:coalesce` joins a burst into one
chunk. Only the socket work differs from `python -m chatmock.testing.fake_upstream`
(the tests' fake, which runs on chatmock's own HTTP server):

- It is independent of the code under test. A fake built on chatmock's server
  inherits that server's costs and its fairness under load, so its figures would
  move with every change to chatmock.
- It is cheap enough to pace thousands of streams on a 2-core machine: about a
  quarter of the other fake's CPU per event (no task switch, timer object or
  cancel scope per event; one timer heap for all streams).

HTTP/1.1 only, requests with a Content-Length (what chatmock and nginx send);
keep-alive; the response head is written when the response starts, each event
then in its own chunk. No OAuth routes: the bench writes its credentials itself.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import select
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatmock.testing.fake_codex import FakeCodex, FakeReply

RECEIVE_SIZE = 65536
MAX_HEAD = 65536
REASONS = {200: b"OK", 204: b"No Content", 304: b"Not Modified", 400: b"Bad Request",
           401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
           405: b"Method Not Allowed", 411: b"Length Required", 429: b"Too Many Requests",
           500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}


class Conn:
    """One client connection: bytes received, bytes still to write, the stream it is in."""

    __slots__ = ("buf", "chunks", "closed", "cut", "due", "keep_alive", "out", "parked", "sock",
                 "timer")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.out = b""
        """What a full socket did not take yet."""
        self.parked = b""
        """The framed chunk waiting for its time."""
        self.chunks: Iterator[tuple[float, bytes]] | None = None
        self.due = 0.0
        self.timer = 0
        self.cut = self.closed = False
        self.keep_alive = True


class FakeServer:
    """Accepts, parses requests, answers them with `FakeCodex`, paces the streams."""

    def __init__(self, listener: socket.socket, fake: FakeCodex) -> None:
        self.listener = listener
        self.fake = fake
        self.epoll = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.timers: list[tuple[float, int, Conn]] = []
        self.seq = itertools.count(1)
        self.epoll.register(listener.fileno(), select.EPOLLIN)

    def serve_forever(self) -> None:
        while True:
            wait = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else 1.0
            for fd, mask in self.epoll.poll(wait):
                if fd == self.listener.fileno():
                    self.accept()
                elif (conn := self.conns.get(fd)) is not None:
                    self.ready(conn, mask)
            self.fire_timers()

    def accept(self) -> None:
        """Every pending connection, until the kernel has none."""
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:  # none pending (EAGAIN), or out of descriptors: try next wake-up
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns[sock.fileno()] = Conn(sock)
            self.epoll.register(sock.fileno(), select.EPOLLIN)

    def ready(self, conn: Conn, mask: int) -> None:
        if mask & select.EPOLLOUT and not self.flush(conn):
            return
        if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            try:
                data = conn.sock.recv(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.close(conn)
                return
            conn.buf += data
        if conn.chunks is None and not conn.out:
            self.next_request(conn)

    def next_request(self, conn: Conn) -> None:
        """Answer the request at the front of the buffer, if it is complete."""
        end = conn.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.buf) > MAX_HEAD:
                self.close(conn)
            return
        lines = bytes(conn.buf[:end]).decode("latin-1").split("\r\n")
        method, target, version = [*lines[0].split(" "), "", ""][:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower().encode()] = value.strip().encode("latin-1")
        if b"transfer-encoding" in headers:
            conn.keep_alive = False
            self.start(conn, FakeReply(411, [(b"content-type", b"text/plain")], b"length"))
            return
        length = int(headers.get(b"content-length", b"0"))
        if len(conn.buf) < end + 4 + length:
            return
        body = bytes(conn.buf[end + 4 : end + 4 + length])
        del conn.buf[: end + 4 + length]
        conn.keep_alive = version == "HTTP/1.1" and headers.get(b"connection") != b"close"
        self.start(conn, self.fake.handle(method, target, headers, body))

    def start(self, conn: Conn, reply: FakeReply) -> None:
        head = [b"HTTP/1.1 %d %s" % (reply.status, REASONS.get(reply.status, b"Status"))]
        head += [name + b": " + value for name, value in reply.headers]
        if reply.chunks is not None:
            head.append(b"transfer-encoding: chunked")
        elif reply.status not in (204, 304):
            head.append(b"content-length: %d" % len(reply.body))
        if not conn.keep_alive:
            head.append(b"connection: close")
        data = b"\r\n".join(head) + b"\r\n\r\n"
        if reply.chunks is None:
            self.write(conn, data + reply.body)
            self.finish(conn)
            return
        conn.chunks, conn.cut, conn.due = reply.chunks, reply.cut, time.monotonic()
        if self.write(conn, data):
            self.advance(conn)

    def advance(self, conn: Conn) -> None:
        """Write the stream's chunks that are due; park it on the timer heap or finish."""
        assert conn.chunks is not None
        for delay, data in conn.chunks:
            if delay > 0:
                conn.due += delay
                if conn.due > time.monotonic():
                    conn.timer = next(self.seq)
                    conn.parked = b"%x\r\n%b\r\n" % (len(data), data) if data else b""
                    heapq.heappush(self.timers, (conn.due, conn.timer, conn))
                    return
            if data and not self.write(conn, b"%x\r\n%b\r\n" % (len(data), data)):
                return
        conn.chunks = None
        if conn.cut:
            self.close(conn)
        elif self.write(conn, b"0\r\n\r\n"):
            self.finish(conn)

    def fire_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, timer, conn = heapq.heappop(self.timers)
            if conn.closed or timer != conn.timer:
                continue
            conn.timer = 0
            parked, conn.parked = conn.parked, b""
            if not parked or self.write(conn, parked):
                self.advance(conn)

    def write(self, conn: Conn, data: bytes) -> bool:
        """One `send`; False (and EPOLLOUT armed) when the kernel took only part of it."""
        if conn.closed:
            return False
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close(conn)
            return False
        if sent == len(data):
            return True
        conn.out = data[sent:]
        self.epoll.modify(conn.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
        return False

    def flush(self, conn: Conn) -> bool:
        """Write what a full socket left over; True once it is all gone."""
        pending, conn.out = conn.out, b""
        if pending and not self.write(conn, pending):
            return False
        self.epoll.modify(conn.sock.fileno(), select.EPOLLIN)
        if conn.chunks is not None:
            self.advance(conn)
        elif not conn.closed:
            self.finish(conn)
        return not conn.closed

    def finish(self, conn: Conn) -> None:
        """A response is written: close, or wait for the next request."""
        if conn.out or conn.closed:
            return
        if not conn.keep_alive:
            self.close(conn)
        elif conn.buf:
            self.next_request(conn)

    def close(self, conn: Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns.pop(conn.sock.fileno(), None)
        self.epoll.unregister(conn.sock.fileno())
        conn.sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/fakeserver.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    listener = socket.create_server((args.host, args.port), backlog=4096)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    print(f"fake-upstream listening on http://{args.host}:{port}", flush=True)
    try:
        FakeServer(listener, FakeCodex()).serve_forever()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
