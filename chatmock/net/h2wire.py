"""HTTP/2 wire pieces that the h2 library leaves to its user; sans-I/O.

h2 parses frames and keeps the protocol's state. Three things it does not do
the way chatmock needs are done here, by reading frame headers (9 bytes each)
before h2 sees the bytes:

- GOAWAY: h2 closes its whole state machine when one arrives, so the streams
  a peer promised to finish could not be read to the end. `FrameScanner` takes
  GOAWAY frames out of the byte stream and reports them; h2 never learns of
  them, and its state stays open for the streams in flight.
- Bounds before buffering: h2 stores a whole frame before it checks the length
  against SETTINGS_MAX_FRAME_SIZE, and up to 64 CONTINUATION frames of a header
  block. The scanner refuses an oversized frame at its header, and a header
  block (HEADERS or PUSH_PROMISE plus CONTINUATION) past a hard cap, before a
  byte of payload is kept (the CONTINUATION flood).
- Rates: `RateLimit` counts events (stream resets, pings, settings) in a fixed
  window, for the rapid-reset (CVE-2023-44487) and control-frame flood defences.

The client also takes plain DATA frames out (`split`), for the lean path of
`chatmock.net.h2data`. Error codes are RFC 9113's numbers; h2 takes them as
plain ints.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9
DEFAULT_MAX_FRAME_SIZE = 16384

DATA, HEADERS, PUSH_PROMISE, GOAWAY, CONTINUATION = 0x0, 0x1, 0x5, 0x7, 0x9
END_HEADERS = 0x4  # (END_STREAM is 0x1 and PADDED 0x8: a DATA frame with either stays with h2)

NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
ENHANCE_YOUR_CALM = 0xB


class WireError(Exception):
    """The peer broke a rule of ours; the connection ends with GOAWAY(`error_code`)."""

    def __init__(self, message: str, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class GoAway:
    last_stream_id: int
    error_code: int
    debug: bytes


def _parse_goaway(payload: bytes) -> GoAway:
    if len(payload) < 8:
        raise WireError("GOAWAY frame shorter than 8 bytes", FRAME_SIZE_ERROR)
    return GoAway(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF,
                  int.from_bytes(payload[4:8], "big"), bytes(payload[8:]))


@dataclass(frozen=True, slots=True)
class PlainData:
    """A DATA frame without padding or END_STREAM, taken out by `FrameScanner.split`;
    `header` and `payload` are its bytes, for h2 after all if it is not taken."""

    stream_id: int
    payload: bytes
    header: bytes


Item = bytes | GoAway | PlainData


class FrameScanner:
    """Walks the frame headers of an inbound byte stream (see the module docstring).

    `feed(data)` returns the bytes h2 should receive and the GOAWAY frames taken
    out, in arrival order within the read; `split(data)` also takes out plain DATA
    frames (see `chatmock.net.h2data`) and returns everything as one ordered list.
    Both raise WireError for a frame longer than `max_frame_size` or a header block
    longer than `max_header_block`. `preface` is the number of bytes to pass through
    before the first frame (a server's view of the client connection preface)."""

    __slots__ = ("_block", "_capture", "_capture_head", "_capture_left", "_head", "_left",
                 "_preface", "_take_data", "max_frame_size", "max_header_block")

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 max_header_block: int = 256 * 1024, preface: int = 0) -> None:
        self.max_frame_size = max_frame_size
        self.max_header_block = max_header_block
        self._preface = preface
        self._head = b""  # a frame header cut by the end of a read
        self._left = 0  # payload bytes of the current passed-through frame still to come
        self._capture = bytearray()  # payload of a frame being taken out
        self._capture_head = b""  # ... and its header
        self._capture_left = -1  # its bytes still to come; -1 when none is open
        self._block = -1  # bytes of the header block in progress; -1 when none is open
        self._take_data = False

    @property
    def in_header_block(self) -> bool:
        """True while a header block waits for its END_HEADERS."""
        return self._block >= 0

    def feed(self, data: bytes) -> tuple[bytes, list[GoAway]]:
        self._take_data = False
        items = self._scan(data)
        if len(items) == 1 and type(items[0]) is bytes:
            return items[0], []
        passed = b"".join(item for item in items if type(item) is bytes)
        return passed, [item for item in items if type(item) is GoAway]

    def split(self, data: bytes) -> list[Item]:
        self._take_data = True
        return self._scan(data)

    def _scan(self, data: bytes) -> list[Item]:
        if self._head:
            data, self._head = self._head + data, b""
        end = len(data)
        items: list[Item] = []
        pos = run = self._skip_known(data, 0)  # `run`: start of passed bytes not yet out
        if self._capture_left >= 0:
            pos = run = self._collect(data, pos, items)
        elif pos:
            run = 0
        while pos < end:
            if end - pos < FRAME_HEADER:
                self._head = data[pos:]
                end = pos
                break
            length = int.from_bytes(data[pos:pos + 3], "big")
            kind, flags = data[pos + 3], data[pos + 4]
            self._check(length, kind, flags)
            if kind == GOAWAY or (kind == DATA and self._take_data and not flags & 0x9
                                  and self._block < 0):
                if run < pos:
                    items.append(data[run:pos])
                self._capture_head = data[pos:pos + FRAME_HEADER]
                self._capture_left = length
                pos = run = self._collect(data, pos + FRAME_HEADER, items)
                continue
            pos += FRAME_HEADER + length
            if pos > end:
                self._left = pos - end
                pos = end
        if run < end:
            items.append(data if run == 0 and end == len(data) else data[run:end])
        return items

    def _skip_known(self, data: bytes, pos: int) -> int:
        """Past the preface and the rest of a frame begun in an earlier read."""
        if self._preface:
            taken = min(self._preface, len(data) - pos)
            self._preface -= taken
            pos += taken
        if self._left:
            taken = min(self._left, len(data) - pos)
            self._left -= taken
            pos += taken
        return pos

    def _collect(self, data: bytes, pos: int, items: list[Item]) -> int:
        """Take the payload of the frame being taken out; the item once it is whole."""
        taken = min(self._capture_left, len(data) - pos)
        if taken == self._capture_left and not self._capture:
            payload = data[pos:pos + taken]  # whole within this read: one copy
        else:
            self._capture += data[pos:pos + taken]
            payload = b""
        self._capture_left -= taken
        if self._capture_left == 0:
            if self._capture:
                payload, self._capture = bytes(self._capture), bytearray()
            head = self._capture_head
            if head[3] == GOAWAY:
                items.append(_parse_goaway(payload))
            else:
                items.append(PlainData(int.from_bytes(head[5:9], "big") & 0x7FFFFFFF,
                                       payload, head))
            self._capture_left = -1
        return pos + taken

    def _check(self, length: int, kind: int, flags: int) -> None:
        if length > self.max_frame_size:
            raise WireError(f"frame of {length} bytes exceeds the maximum frame size "
                            f"{self.max_frame_size}", FRAME_SIZE_ERROR)
        if kind in (HEADERS, PUSH_PROMISE):
            self._block = -1 if flags & END_HEADERS else length
        elif kind == CONTINUATION and self._block >= 0:
            self._block += length
            if self._block > self.max_header_block:
                raise WireError(f"header block larger than {self.max_header_block} bytes",
                                ENHANCE_YOUR_CALM)
            if flags & END_HEADERS:
                self._block = -1


class RateLimit:
    """At most `limit` events per `window` seconds, counted in fixed windows."""

    __slots__ = ("_count", "_start", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._start = float("-inf")
        self._count = 0

    def hit(self, now: float) -> bool:
        """Count one event at `now`; False once the window holds more than `limit`."""
        if now - self._start >= self.window:
            self._start = now
            self._count = 0
        self._count += 1
        return self._count <= self.limit
