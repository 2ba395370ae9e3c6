"""chatmock.net.h2data: the lean DATA path does exactly what h2 does with the frames it takes.

Two client connections in the same state read the same server bytes: one through h2 alone,
one through `h2data.receive` (split at random points). Each stream must receive the same
bytes and end alike, the windows and counted lengths must agree, and acknowledging the
same amounts must produce the same WINDOW_UPDATEs; a broken answer must fail both."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
from hyperframe.frame import DataFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.net.h2client import new_client_state
from chatmock.net.h2data import receive
from chatmock.net.h2wire import FrameScanner, PlainData

STREAMS = (1, 3, 5)
REQUEST = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/r"),
           (b":authority", b"backend.test")]


@dataclass
class Received:
    data: dict[int, bytearray] = field(default_factory=lambda: {s: bytearray() for s in STREAMS})
    ended: set[int] = field(default_factory=set)
    lean_frames: int = field(default=0, compare=False)

    def file(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.data[event.stream_id] += event.data
            elif isinstance(event, PlainData):
                self.data[event.stream_id] += event.payload
                self.lean_frames += 1
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)


class Pair:
    """A server, and two clients that sent it the same bytes."""

    def __init__(self) -> None:
        self.server: Any = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.plain: Any = new_client_state()
        self.lean: Any = new_client_state()
        self.scanner = FrameScanner()
        self.server.initiate_connection()
        for stream_id in STREAMS:
            for client in (self.plain, self.lean):
                client.send_headers(stream_id, REQUEST, end_stream=True)
        self._client_to_server()
        self.wire = self.server.data_to_send()
        self.got_plain, self.got_lean = Received(), Received()
        self.acked: dict[int, int] = {}
        self.errors: list[type | None] = [None, None]

    def _client_to_server(self) -> None:
        sent = self.plain.data_to_send()
        assert sent == self.lean.data_to_send()
        self.server.receive_data(sent)

    def deliver(self, cuts: list[int]) -> bool:
        """The server's bytes so far: whole to the plain client, cut to the lean one.
        False once a side failed (then both must have, with the same error)."""
        wire, self.wire = self.wire, b""
        try:
            self.got_plain.file(self.plain.receive_data(wire))
        except h2.exceptions.ProtocolError as exc:
            self.errors[0] = type(exc)
        points = [0, *sorted(c % (len(wire) + 1) for c in cuts), len(wire)]
        try:
            for start, end in itertools.pairwise(points):
                self.got_lean.file(receive(self.lean, self.scanner, wire[start:end],
                                           lambda _: True))
        except h2.exceptions.ProtocolError as exc:
            self.errors[1] = type(exc)
        assert self.errors[0] == self.errors[1]
        return self.errors[0] is None

    def acknowledge(self, stream_id: int) -> None:
        taken = len(self.got_plain.data[stream_id]) - self.acked.get(stream_id, 0)
        self.acked[stream_id] = self.acked.get(stream_id, 0) + taken
        if taken:
            for client in (self.plain, self.lean):
                client.acknowledge_received_data(taken, stream_id)
            self._client_to_server()

    def compare(self) -> None:
        assert self.got_plain == self.got_lean
        windows = [(c._inbound_flow_control_window_manager.current_window_size,
                    [(s._inbound_window_manager.current_window_size, s._actual_content_length)
                     for _, s in sorted(c.streams.items())]) for c in (self.plain, self.lean)]
        assert windows[0] == windows[1]


step = st.one_of(
    st.tuples(st.just("head"), st.sampled_from(STREAMS), st.booleans()),
    *[st.tuples(st.just("data"), st.sampled_from(STREAMS), st.integers(0, 40_000),
                st.integers(0, 3))] * 3,
    st.tuples(st.just("end"), st.sampled_from(STREAMS)),
    st.tuples(st.just("deliver"), st.lists(st.integers(0, 10**6), max_size=6)),
    st.tuples(st.just("ack"), st.sampled_from(STREAMS)))


def run_step(pair: Pair, action: tuple[Any, ...], state: dict[int, str]) -> bool:
    """One step of the server's script; False once the clients failed."""
    kind, *args = action
    server = pair.server
    if kind == "head" and args[0] not in state:
        fields = [(b":status", b"200")] + ([(b"content-length", b"100000")] if args[1] else [])
        server.send_headers(args[0], fields)
        state[args[0]] = "open"
    elif kind == "data" and state.get(args[0], "open") == "open":
        if args[0] not in state:  # answer heads come first: a script may skip them
            server.send_headers(args[0], [(b":status", b"200")])
            state[args[0]] = "open"
        window = min(server.local_flow_control_window(args[0]), args[1],
                     server.max_outbound_frame_size)
        padding = args[2] if args[2] and window > args[2] + 1 else None
        size = window - (padding + 1 if padding else 0)
        if size > 0:
            server.send_data(args[0], b"d" * size, pad_length=padding)
    elif kind == "end" and state.get(args[0]) == "open":
        server.end_stream(args[0])
        state[args[0]] = "ended"
    elif kind == "ack":
        pair.acknowledge(args[0])
    elif kind == "deliver":
        pair.wire += server.data_to_send()
        return pair.deliver(args[0])
    return True


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
def test_the_lean_path_matches_h2(steps: list[tuple[Any, ...]]) -> None:
    pair = Pair()
    state: dict[int, str] = {}
    for action in steps:
        if not run_step(pair, action, state):
            return  # e.g. a body longer than its Content-Length: both failed alike
    pair.wire += pair.server.data_to_send()
    if pair.deliver([]):
        pair.compare()
        for stream_id in STREAMS:
            pair.acknowledge(stream_id)


def test_a_long_interleaved_answer_matches_h2() -> None:
    """Three answers of 150 frames each, one with a Content-Length, read in odd pieces
    and acknowledged as they go: most frames take the lean path."""
    pair = Pair()
    for stream_id in STREAMS:
        length = [(b"content-length", b"%d" % (150 * 999))] if stream_id == 3 else []
        pair.server.send_headers(stream_id, [(b":status", b"200"), *length])
    for number in range(150):
        for stream_id in STREAMS:
            pair.server.send_data(stream_id, bytes([number % 256]) * 999,
                                  end_stream=number == 149)
        pair.wire += pair.server.data_to_send()
        assert pair.deliver([number * 7919, number * 104729])
        for stream_id in STREAMS:
            pair.acknowledge(stream_id)
    pair.compare()
    assert pair.got_lean.ended == set(STREAMS)
    assert pair.got_lean.lean_frames >= 3 * 140


def test_frames_that_must_go_to_h2_go_there() -> None:
    """Padded and END_STREAM frames, and data before the head, are not taken."""
    pair = Pair()
    pair.server.send_headers(1, [(b":status", b"200")])
    pair.server.send_data(1, b"padded", pad_length=4)
    pair.server.send_data(1, b"plain")
    pair.server.send_data(1, b"last", end_stream=True)
    pair.wire += pair.server.data_to_send()
    taken: list[Any] = []
    pair.got_plain.file(pair.plain.receive_data(pair.wire))
    for event in receive(pair.lean, pair.scanner, pair.wire, lambda _: True):
        taken += [event] if isinstance(event, PlainData) else []
    assert [frame.payload for frame in taken] == [b"plain"]
    assert pair.got_plain.data[1] == b"paddedplainlast"


@pytest.mark.parametrize("too_much", ["window", "content-length"])
def test_a_frame_h2_would_refuse_is_refused(too_much: str) -> None:
    pair = Pair()
    fields = [(b":status", b"200")]
    if too_much == "content-length":
        fields.append((b"content-length", b"10"))
    pair.server.send_headers(1, fields)
    size = 11 if too_much == "content-length" else 16384
    wire = pair.server.data_to_send()
    pair.wire = wire + b"".join(DataFrame(1, data=b"x" * size).serialize() for _ in range(20))
    assert not pair.deliver([])
    assert pair.errors[1] is not None
