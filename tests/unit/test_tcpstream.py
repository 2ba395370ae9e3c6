"""chatmock.net.tcpstream: trio's own stream conformance checks, plus send_timeout."""

from __future__ import annotations

import socket
from contextlib import nullcontext

import pytest
import trio
import trio.testing
import trio.testing._check_streams

from chatmock.net.tcpstream import YIELD_EVERY, TCPStream


async def connected_pair(*, send_timeout: float = float("inf")) -> tuple[TCPStream, TCPStream]:
    """Two ends of a real loopback TCP connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    finally:
        listener.close()
    return (TCPStream(client, send_timeout=send_timeout),
            TCPStream(server, send_timeout=send_timeout))


async def clogged_pair() -> tuple[TCPStream, TCPStream]:
    """A pair neither end of which can send until the other reads: all buffers full."""
    left, right = await connected_pair()
    for end in (left, right):
        end.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        end.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for end in (left, right):
        try:
            while True:
                end.socket.send(b"x" * 65536)
        except BlockingIOError:
            pass
    return left, right


async def test_behaves_as_a_trio_half_closeable_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """trio's conformance suite, except its rule that every call yields to the scheduler,
    which this stream drops on purpose (module docstring; the next test pins what is kept)."""
    monkeypatch.setattr(trio.testing._check_streams, "assert_checkpoints", nullcontext)
    await trio.testing.check_half_closeable_stream(connected_pair, clogged_pair)


async def test_calls_in_a_cancelled_scope_raise_even_when_the_kernel_is_ready() -> None:
    left, right = await connected_pair()
    await left.send_all(b"ready")
    await trio.sleep(0.05)
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await right.receive_some()
        with pytest.raises(trio.Cancelled):
            await right.send_all(b"x")
        with pytest.raises(trio.Cancelled):
            await right.wait_readable()
        with pytest.raises(trio.Cancelled):
            await right.take_turns()
    assert await right.receive_some() == b"ready"
    await left.aclose()
    await right.aclose()


async def test_a_send_to_a_peer_that_stopped_reading_times_out() -> None:
    sender, receiver = await connected_pair(send_timeout=0.2)
    start = trio.current_time()
    with pytest.raises(trio.TooSlowError):
        while True:
            await sender.send_all(b"x" * 65536)
    assert 0.2 <= trio.current_time() - start < 5
    await sender.aclose()
    await receiver.aclose()


async def test_a_send_that_keeps_making_progress_does_not_time_out() -> None:
    sender, receiver = await connected_pair(send_timeout=0.5)
    payload = b"y" * (8 * 1024 * 1024)  # far more than the socket buffers hold
    received = bytearray()

    async def read_slowly() -> None:
        while len(received) < len(payload):
            received.extend(await receiver.receive_some(65536))
            await trio.sleep(0.0005)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_slowly)
        await sender.send_all(payload)
    assert received == payload
    await sender.aclose()
    await receiver.aclose()


async def test_a_stream_taken_over_from_trio_keeps_the_connection() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = TCPStream.from_trio(await trio.open_tcp_stream("127.0.0.1", port))
    server = TCPStream.from_trio(await listener.accept())
    await client.send_all(b"ping")
    assert await server.receive_some() == b"ping"
    await server.send_eof()
    assert await client.receive_some() == b""
    assert server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    for resource in (client, server, listener):
        await resource.aclose()


async def test_a_reader_that_always_finds_data_still_lets_other_tasks_run() -> None:
    """Calls that need not wait skip the yield, but only YIELD_EVERY - 1 in a row."""
    left, right = await connected_pair()
    await left.send_all(b"x" * 800)
    await trio.sleep(0.05)  # all of it is in right's receive buffer
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()  # other_task has started
        turns = 0
        for _ in range(800):
            assert await right.receive_some(1) == b"x"
        nursery.cancel_scope.cancel()
    assert 2 <= YIELD_EVERY <= 32  # other streams wait at most a few dozen calls
    assert 800 // YIELD_EVERY - 1 <= turns <= 800 // YIELD_EVERY + 1
    await left.aclose()
    await right.aclose()


async def test_receive_ready_never_waits_and_wait_readable_is_what_waits() -> None:
    left, right = await connected_pair()
    assert right.receive_ready() is None  # nothing yet, and no await needed to learn it
    async with trio.open_nursery() as nursery:
        nursery.start_soon(right.wait_readable)
        await trio.sleep(0.05)
        assert nursery.child_tasks  # still waiting
        await left.send_all(b"event")
    assert right.receive_ready() == b"event"
    await right.take_turns()
    await left.send_eof()
    with trio.fail_after(5):
        await right.wait_readable()
    assert right.receive_ready() == b""  # the end of the stream
    await left.aclose()
    await right.aclose()
    with pytest.raises(trio.ClosedResourceError):
        right.receive_ready()

