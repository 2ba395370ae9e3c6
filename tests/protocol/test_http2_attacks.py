"""HTTP/2's known attacks against chatmock's server: each is bounded and ends the connection.

The attacker writes raw frames (hyperframe, hpack); the server runs over memory streams."""

from __future__ import annotations

import hpack
import trio
import trio.testing
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

from chatmock.net.h2wire import ENHANCE_YOUR_CALM, FRAME_SIZE_ERROR, PREFACE, PROTOCOL_ERROR
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.http2 import CONTROL_FRAME_LIMIT, H2ServerConnection, reset_limit
from chatmock.server.lifecycle import Lifecycle

COMPRESSION_ERROR = 0x9


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: Request, out: Responder) -> None:
        self.calls += 1
        await out.respond(200, [], b"ok")


class CountingReceive(trio.abc.ReceiveStream):
    """Counts what the server took from the client's side."""

    def __init__(self, inner: trio.abc.ReceiveStream) -> None:
        self.inner = inner
        self.taken = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        self.taken += len(data)
        return bytes(data)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Attacker:
    """The client side: raw frames out, the server's frames in."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.encoder = hpack.Encoder()
        self.buffer = b""

    async def hello(self) -> None:
        await self.stream.send_all(PREFACE + SettingsFrame(0).serialize())

    def head(self, stream_id: int, *, end_headers: bool = True) -> bytes:
        block = self.encoder.encode([(b":method", b"GET"), (b":scheme", b"http"),
                                     (b":path", b"/"), (b":authority", b"x")])
        flags = {"END_STREAM"} | ({"END_HEADERS"} if end_headers else set())
        return HeadersFrame(stream_id, data=block, flags=flags).serialize()

    async def frames(self) -> list[Frame]:
        """Everything the server sent until it closed the connection."""
        found = []
        while data := await self.stream.receive_some(65536):
            self.buffer += data
        while len(self.buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
            frame.parse_body(memoryview(self.buffer[9:9 + length]))
            found.append(frame)
            self.buffer = self.buffer[9 + length:]
        return found


def serve(nursery: trio.Nursery, app: object | None = None,
          limits: ConnectionLimits | None = None) -> Attacker:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    server = H2ServerConnection(server_stream, app or Counting(),  # type: ignore[arg-type]
                                limits or ConnectionLimits(), Lifecycle())
    nursery.start_soon(server.serve)
    return Attacker(client_stream)


def goaway_of(frames: list[Frame]) -> GoAwayFrame:
    goaways = [frame for frame in frames if isinstance(frame, GoAwayFrame)]
    assert goaways, "the server closed without a GOAWAY"
    return goaways[-1]


async def test_rapid_reset_is_refused_with_enhance_your_calm(nursery: trio.Nursery) -> None:
    """CVE-2023-44487: streams opened and reset at once, by the thousand."""
    app = Counting()
    attacker = serve(nursery, app)
    await attacker.hello()
    burst = b"".join(attacker.head(n) + RstStreamFrame(n, error_code=8).serialize()
                     for n in range(1, 4001, 2))
    await attacker.stream.send_all(burst)
    with trio.fail_after(5):
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == ENHANCE_YOUR_CALM
    assert app.calls == 0  # streams reset within the read that opened them start nothing


async def test_resets_spread_over_reads_are_counted_too(nursery: trio.Nursery) -> None:
    attacker = serve(nursery)
    await attacker.hello()
    stream_id = 1
    with trio.fail_after(10):
        for _ in range(reset_limit(100) // 20 + 5):
            pairs = []
            for _ in range(20):
                pairs.append(attacker.head(stream_id) + RstStreamFrame(stream_id, error_code=8)
                             .serialize())
                stream_id += 2
            try:
                await attacker.stream.send_all(b"".join(pairs))
            except trio.BrokenResourceError:
                break
            await trio.testing.wait_all_tasks_blocked()
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == ENHANCE_YOUR_CALM


async def test_a_client_cancelling_its_streams_now_and_then_is_fine(
        nursery: trio.Nursery) -> None:
    attacker = serve(nursery)
    await attacker.hello()
    pairs = b"".join(attacker.head(n) + RstStreamFrame(n, error_code=8).serialize()
                     for n in range(1, 200, 2))
    await attacker.stream.send_all(pairs + attacker.head(201))
    data = b""
    with trio.fail_after(5):
        while b"ok" not in data:
            data += await attacker.stream.receive_some(65536)
    assert not any(isinstance(frame, GoAwayFrame) for frame in _parse(data))


def _parse(data: bytes) -> list[Frame]:
    frames = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        if len(data) < 9 + length:
            break
        frame.parse_body(memoryview(data[9:9 + length]))
        frames.append(frame)
        data = data[9 + length:]
    return frames


async def test_continuation_flood_is_cut_at_the_header_block_cap(nursery: trio.Nursery) -> None:
    """Header blocks that never end: refused once past twice the header limit, before
    h2 keeps them."""
    limits = ConnectionLimits(max_header_bytes=16 * 1024)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    counting = CountingReceive(server_stream.receive_stream)
    stapled = trio.StapledStream(server_stream.send_stream, counting)
    nursery.start_soon(H2ServerConnection(stapled, Counting(), limits, Lifecycle()).serve)
    attacker = Attacker(client_stream)
    await attacker.hello()
    await attacker.stream.send_all(attacker.head(1, end_headers=False))
    filler = ContinuationFrame(1, data=b"\x00" * 16000).serialize()
    with trio.fail_after(5):
        for _ in range(200):
            try:
                await attacker.stream.send_all(filler)
            except trio.BrokenResourceError:
                break
            await trio.testing.wait_all_tasks_blocked()
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == ENHANCE_YOUR_CALM
    assert counting.taken <= 2 * 16 * 1024 + 2 * 16009 + 200


async def test_a_header_block_left_open_times_out(nursery: trio.Nursery,
                                                   autojump_clock: trio.abc.Clock) -> None:
    attacker = serve(nursery, limits=ConnectionLimits(header_timeout=5, idle_timeout=100))
    await attacker.hello()
    await attacker.stream.send_all(attacker.head(1, end_headers=False))
    started = trio.current_time()
    frames = await attacker.frames()
    assert 5 <= trio.current_time() - started < 6
    assert goaway_of(frames).error_code == PROTOCOL_ERROR


async def test_ping_flood_ends_with_enhance_your_calm(nursery: trio.Nursery) -> None:
    attacker = serve(nursery)
    await attacker.hello()
    flood = PingFrame(0, opaque_data=b"01234567").serialize() * (3 * CONTROL_FRAME_LIMIT)
    await attacker.stream.send_all(flood)
    with trio.fail_after(5):
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == ENHANCE_YOUR_CALM
    assert sum(isinstance(f, PingFrame) for f in frames) <= CONTROL_FRAME_LIMIT


async def test_settings_flood_ends_with_enhance_your_calm(nursery: trio.Nursery) -> None:
    attacker = serve(nursery)
    await attacker.hello()
    await attacker.stream.send_all(SettingsFrame(0).serialize() * (3 * CONTROL_FRAME_LIMIT))
    with trio.fail_after(5):
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == ENHANCE_YOUR_CALM


async def test_empty_data_flood_ends_with_enhance_your_calm(nursery: trio.Nursery) -> None:
    attacker = serve(nursery)
    await attacker.hello()
    block = attacker.encoder.encode([(b":method", b"POST"), (b":scheme", b"http"),
                                     (b":path", b"/"), (b":authority", b"x")])
    opening = HeadersFrame(1, data=block, flags={"END_HEADERS"}).serialize()
    await attacker.stream.send_all(opening + DataFrame(1).serialize() * 3 * CONTROL_FRAME_LIMIT)
    with trio.fail_after(5):
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == ENHANCE_YOUR_CALM


async def test_answers_to_a_peer_that_never_reads_stop_the_reading(
        nursery: trio.Nursery) -> None:
    """PING answers the peer does not take block the writer, and the server reads no
    more until they are out: what it holds for that peer stays bounded."""
    to_server_send, to_server_receive = trio.testing.memory_stream_one_way_pair()
    to_client_send, to_client_receive = trio.testing.lockstep_stream_one_way_pair()
    counting = CountingReceive(to_server_receive)
    server = H2ServerConnection(trio.StapledStream(to_client_send, counting), Counting(),
                                ConnectionLimits(), Lifecycle())
    nursery.start_soon(server.serve)
    pings = PingFrame(0, opaque_data=b"01234567").serialize() * 400
    await to_server_send.send_all(PREFACE + SettingsFrame(0).serialize() + pings)
    await trio.testing.wait_all_tasks_blocked()
    taken = counting.taken
    await to_server_send.send_all(pings)
    await trio.testing.wait_all_tasks_blocked()
    assert counting.taken == taken, "the server read on while its answers could not be sent"
    assert server.wire.pending <= server.wire.backlog
    received = b""
    with trio.move_on_after(1):
        while len(received) < 17 * 400:
            received += await to_client_receive.receive_some(65536)
    await trio.testing.wait_all_tasks_blocked()
    assert counting.taken > taken  # once answered, reading resumes


async def test_hpack_bomb_stops_at_the_header_list_limit(nursery: trio.Nursery) -> None:
    """One large header in the dynamic table, referenced a hundred times: a 5 KB block
    that would decode to 400 KB."""
    attacker = serve(nursery)
    await attacker.hello()
    big = (b"x-big", b"a" * 4000)
    block = attacker.encoder.encode([(b":method", b"GET"), (b":scheme", b"http"),
                                     (b":path", b"/"), (b":authority", b"x"), big])
    bomb = attacker.encoder.encode([(b":method", b"GET"), (b":scheme", b"http"),
                                    (b":path", b"/"), (b":authority", b"x"), *[big] * 100])
    assert len(bomb) < 1000
    await attacker.stream.send_all(
        HeadersFrame(1, data=block, flags={"END_HEADERS", "END_STREAM"}).serialize()
        + HeadersFrame(3, data=bomb, flags={"END_HEADERS", "END_STREAM"}).serialize())
    with trio.fail_after(5):
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == ENHANCE_YOUR_CALM


async def test_a_table_larger_than_allowed_is_a_compression_error(
        nursery: trio.Nursery) -> None:
    attacker = serve(nursery)
    await attacker.hello()
    attacker.encoder.header_table_size = 1 << 20
    await attacker.stream.send_all(attacker.head(1))
    with trio.fail_after(5):
        frames = await attacker.frames()
    assert goaway_of(frames).error_code in (COMPRESSION_ERROR, PROTOCOL_ERROR)  # h2 says the latter


async def test_an_oversized_frame_is_refused_at_its_header(nursery: trio.Nursery) -> None:
    attacker = serve(nursery)
    await attacker.hello()
    declared = (1 << 20).to_bytes(3, "big") + bytes([0, 0]) + (1).to_bytes(4, "big")
    await attacker.stream.send_all(declared + b"\x00" * 100)
    with trio.fail_after(5):
        frames = await attacker.frames()
    assert goaway_of(frames).error_code == FRAME_SIZE_ERROR
