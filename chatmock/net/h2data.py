"""A lean path for the DATA frames of backend answers, proven against h2 by tests.

A backend answer is one DATA frame per event (or per burst of events), and h2's
own handling of one costs ~17-25 µs: a frame object, the `repr` of it that h2
formats for a trace log whether or not anyone listens (hex-encoding the whole
payload), an event object. h11 takes ~7-11 µs for the same 7 KB as a chunk,
this path ~1.3 µs (an in-process loop over one frame). With it, chatmock's CPU
per streamed delta with an HTTP/2 backend fell from 1.10-1.20x that of an
HTTP/1.1 backend over TLS to 0.82-0.87x (bench/h2bench.py). This path takes a
DATA frame past h2 when h2 would do nothing with it but count it: no padding,
no END_STREAM (`FrameScanner.split` takes only those out), a stream whose
answer head h2 has seen and that is still open for data, on an open
connection. For such a frame it does what h2 does: the connection's and the
stream's receive windows shrink by the frame's length (past either h2 raises
FlowControlError, and so does this), and the length counts toward the stream's
Content-Length (InvalidBodyLengthError past it). Every other frame, and a DATA
frame that does not qualify, goes to h2 as it came.

That reaches into three internals of h2 (`_inbound_flow_control_window_manager`,
`H2Stream._inbound_window_manager`, `H2Stream._track_content_length`), here and
nowhere else. tests/unit/test_h2data.py feeds random answers, split at random
points, through h2 alone and through this path, and compares what each stream
received, the windows, the counted lengths and the WINDOW_UPDATEs that follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from h2.connection import ConnectionState
from h2.stream import StreamState

from chatmock.net.h2wire import FrameScanner, PlainData

_RECEIVING = frozenset({StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL})


def take(conn: Any, frame: PlainData) -> bool:
    """Count `frame` as h2 would; False, with nothing changed, when h2 must see it.

    Raises h2's FlowControlError or InvalidBodyLengthError (both ProtocolError)."""
    if conn.state_machine.state is not ConnectionState.CLIENT_OPEN:
        return False
    stream = conn.streams.get(frame.stream_id)
    if stream is None:
        return False
    machine = stream.state_machine
    if machine.state not in _RECEIVING or not machine.headers_received:
        return False
    length = len(frame.payload)
    conn._inbound_flow_control_window_manager.window_consumed(length)
    stream._inbound_window_manager.window_consumed(length)
    stream._track_content_length(length, False)
    return True


def receive(conn: Any, scanner: FrameScanner, data: bytes,
            wanted: Callable[[int], bool]) -> list[Any]:
    """What one read brings, in order: h2's events, `PlainData` for the frames taken
    past h2 (on streams `wanted` by the caller), and `h2wire.GoAway`s.

    Raises WireError, or h2's ProtocolError."""
    found: list[Any] = []
    for item in scanner.split(data):
        if isinstance(item, bytes):
            found += conn.receive_data(item)
        elif isinstance(item, PlainData):
            if wanted(item.stream_id) and take(conn, item):
                found.append(item)
            else:
                found += conn.receive_data(item.header + item.payload)
        else:
            found.append(item)
    return found
