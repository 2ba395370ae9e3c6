"""A byte relay written in trio: beside nginx's, the floor of a trio server's start-up
and added latency.

`python bench/trio_relay.py --port P --upstream-port F` relays HTTP/1.1 requests to the
fake backend on F the way the nginx floor does (one upstream connection per client
connection, kept alive; every piece of the answer passed on as it arrives), but in the
same interpreter and event loop chatmock runs on, and on chatmock's own socket layer
(`chatmock.net.tcpstream.TCPStream`: on trio's `SocketStream`, which yields to the
scheduler after every call, this relay made ~7 `epoll_wait` calls and spent 0.38 ms of
CPU a request; 0.30 on `TCPStream`). It translates nothing and parses only what a relay
must (the request's length, the answer's framing), so what chatmock spends beyond it is
the price of chatmock's own work, not of Python and trio; its start-up is the
interpreter's and trio's. For paced streams it is no floor: one task per stream wakes
for every event, where chatmock's relay hub wakes once for many (bench/RESULTS.md).

Only for the bench: it trusts the fake (no limits, no timeouts, no error answers).
"""

from __future__ import annotations

import argparse
import contextlib

import trio

from chatmock.net.tcpstream import TCPStream

HEAD_END = b"\r\n\r\n"


class Reader:
    """Buffered reads from one stream."""

    def __init__(self, stream: TCPStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        self.buffer += data
        return bool(data)

    async def head(self) -> bytes | None:
        """The bytes up to and including the blank line; None at a clean end."""
        while (end := self.buffer.find(HEAD_END)) < 0:
            if not await self.fill():
                return None
        head, self.buffer = self.buffer[:end + 4], self.buffer[end + 4:]
        return head

    def take(self, limit: int) -> bytes:
        piece, self.buffer = self.buffer[:limit], self.buffer[limit:]
        return piece


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def is_chunked(head: bytes) -> bool:
    return b"transfer-encoding: chunked" in head.lower()


async def pass_sized(source: Reader, sink: TCPStream, size: int) -> None:
    """Send `size` bytes from `source` on, as they come."""
    while size > 0:
        if not source.buffer and not await source.fill():
            raise EOFError
        piece = source.take(size)
        size -= len(piece)
        await sink.send_all(piece)


async def pass_chunked(source: Reader, sink: TCPStream) -> None:
    """Send a chunked body on as it comes, read by read, until its last chunk ends."""
    walker = ChunkWalker()
    while True:
        if not source.buffer and not await source.fill():
            raise EOFError
        piece, source.buffer = source.buffer, b""
        done = walker.feed(piece)
        if done >= 0:
            source.buffer = piece[done:]
            await sink.send_all(piece[:done])
            return
        await sink.send_all(piece)


class ChunkWalker:
    """Follows chunk framing across reads, to know where the body ends (no trailers)."""

    def __init__(self) -> None:
        self.line = b""  # a size line (or the last chunk's CRLF) split across reads
        self.left = 0  # data bytes plus CRLF still to skip
        self.last = False

    def feed(self, data: bytes) -> int:
        """Where in `data` the body ends, or -1 when it goes on."""
        pos = 0
        while pos < len(data):
            if self.left:
                step = min(self.left, len(data) - pos)
                self.left -= step
                pos += step
                continue
            end = data.find(b"\n", pos)
            if end < 0:
                self.line += data[pos:]
                return -1
            line, self.line = self.line + data[pos:end], b""
            pos = end + 1
            if self.last:
                return pos
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                self.last = True
            else:
                self.left = size + 2
        return -1


async def relay(accepted: trio.SocketStream, upstream_port: int) -> None:
    client_stream = TCPStream.from_trio(accepted)
    client = Reader(client_stream)
    upstream_stream = TCPStream.from_trio(await trio.open_tcp_stream("127.0.0.1", upstream_port))
    upstream = Reader(upstream_stream)
    async with client_stream, upstream_stream:
        while (head := await client.head()) is not None:
            await upstream_stream.send_all(head)
            await pass_sized(client, upstream_stream, content_length(head))
            answer = await upstream.head()
            if answer is None:
                return
            await client_stream.send_all(answer)
            if is_chunked(answer):
                await pass_chunked(upstream, client_stream)
            else:
                await pass_sized(upstream, client_stream, content_length(answer))


async def main(args: argparse.Namespace) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, EOFError, OSError):
            await relay(stream, args.upstream_port)

    await trio.serve_tcp(handle, args.port, host=args.host, backlog=4096)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    trio.run(main, parser.parse_args())
