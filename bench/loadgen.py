"""Load generator for the chatmock bench: its own process, trio and raw sockets.

Requests are built by hand and written to keep-alive connections; responses
are parsed with as little work as possible (find the head, undo chunked
framing, count a byte pattern), because on a small machine every cycle the
load generator spends is taken from the server being measured. Nothing is
JSON-decoded. A content delta is one occurrence of the dialect's needle in
the de-chunked body (`DIALECTS`): for chat `"delta":{"content":`, which the
role chunk (`"delta":{"role":...}`) and the finish chunk do not match; for the
Responses API `"type":"response.output_text.delta"`; for Ollama's `/api/chat`
`"done":false` (every line but the last); for Anthropic's Messages API
`"type":"text_delta"`.

Modes (each prints JSON lines on stdout; the last one has "event": "result"):

    stream   C connections, each doing R sequential streamed requests in one
             dialect (`--dialect`: chat completions, the Responses API, Ollama's
             /api/chat or Anthropic's /v1/messages)
    hold     N streams open at once; prints "held", waits for a stdin line, closes
    latency  sequential non-streamed requests: through chatmock and to the fake
             backend directly (`--target both`, the two take turns), or to one of them

Run `python bench/loadgen.py MODE --help` for the knobs; `bench/run.py`
drives all of them.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

RECEIVE_SIZE = 65536
DELTA = b'"delta":{"content":'
DONE = b"data: [DONE]"
FAKE_COMPLETED = b"event: response.completed"
RESPONSES_DELTA = b'"type":"response.output_text.delta"'
RESPONSES_COMPLETED = b"event: response.completed"
OLLAMA_DELTA = b'"done":false'
OLLAMA_DONE = b'"done":true'
ANTHROPIC_DELTA = b'"type":"text_delta"'
ANTHROPIC_STOP = b"event: message_stop"
CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
OLLAMA_CHAT_PATH = "/api/chat"
MESSAGES_PATH = "/v1/messages"
ANTHROPIC_HEADERS = (("anthropic-version", "2023-06-01"), ("x-api-key", "x"))
FAKE_PATH = "/backend-api/codex/responses"


class ProtocolError(Exception):
    """The peer closed early or sent something this parser does not accept."""


# --- requests ---------------------------------------------------------------


def build_request(host: str, port: int, path: str, body: dict[str, Any],
                  headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A complete HTTP/1.1 POST with a JSON body, ready for `send_all`."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}",
             "content-type: application/json", f"content-length: {len(payload)}",
             *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def chat_body(text: str, stream: bool, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return body


def fake_body(text: str, model: str) -> dict[str, Any]:
    message = {"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": text}]}
    return {"model": model, "input": [message], "stream": True, "store": False}


# What every Codex client sends and the fake backend requires (chatmock.testing.credentials).
FAKE_HEADERS = (("authorization", "Bearer x"), ("chatgpt-account-id", "acc"),
                ("originator", "codex_cli_rs"), ("user-agent", "codex_cli_rs/0.169.0 bench"),
                ("session-id", "00000000-0000-4000-8000-00000000feed"))


def responses_body(text: str, model: str) -> dict[str, Any]:
    return {"model": model, "input": text, "stream": True}


def ollama_body(text: str, model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": True}


def anthropic_body(text: str, model: str) -> dict[str, Any]:
    """Claude Code's shape; `claude-sonnet-5` maps to a GPT model (`--model` is ignored)."""
    return {"model": "claude-sonnet-5", "max_tokens": 64000, "stream": True,
            "messages": [{"role": "user", "content": text}]}


@dataclass(frozen=True)
class Dialect:
    """How to ask one API for a streamed answer and how to count what comes back."""

    path: str
    body: Callable[[str, str], dict[str, Any]]
    """(prompt text, model) -> the JSON body of a streamed request."""
    delta: bytes
    """Occurs once per content delta in the de-chunked body, and nowhere else."""
    end: bytes
    """Occurs exactly once in a complete answer: its successful end."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers the API wants."""


DIALECTS = {
    "chat": Dialect(CHAT_PATH, lambda text, model: chat_body(text, True, model), DELTA, DONE),
    "responses": Dialect(RESPONSES_PATH, responses_body, RESPONSES_DELTA, RESPONSES_COMPLETED),
    # Every NDJSON line before the final `"done":true` one carries one content delta.
    "ollama": Dialect(OLLAMA_CHAT_PATH, ollama_body, OLLAMA_DELTA, OLLAMA_DONE),
    "anthropic": Dialect(MESSAGES_PATH, anthropic_body, ANTHROPIC_DELTA, ANTHROPIC_STOP,
                         ANTHROPIC_HEADERS),
}


# --- responses --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    chunked: bool
    length: int | None
    keep_alive: bool


class Tally:
    """Counts a pattern across pieces of a byte stream, even when a piece splits it."""

    __slots__ = ("carry", "count", "needle")

    def __init__(self, needle: bytes) -> None:
        self.needle = needle
        self.carry = b""
        self.count = 0

    def feed(self, data: bytes) -> None:
        keep = len(self.needle) - 1
        straddle = self.carry + data[:keep]
        self.count += data.count(self.needle) + straddle.count(self.needle)
        self.carry = (self.carry + data)[-keep:] if len(data) < keep else data[-keep:]


class Connection:
    """One keep-alive client connection: write raw requests, read responses."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.received = 0

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(await trio.open_tcp_stream(host, port))

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)

    async def _fill(self) -> None:
        data = await self.stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise ProtocolError("connection closed by peer")
        self.received += len(data)
        self.buf += data

    async def read_head(self) -> Head:
        searched = 0
        while (end := self.buf.find(b"\r\n\r\n", searched)) < 0:
            searched = max(0, len(self.buf) - 3)
            await self._fill()
        lines = bytes(self.buf[:end]).split(b"\r\n")
        del self.buf[: end + 4]
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {lines[0][:80]!r}") from None
        headers = dict(_header(line) for line in lines[1:])
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        length = None if chunked else int(headers.get(b"content-length", b"-1"))
        keep_alive = headers.get(b"connection", b"").lower() != b"close"
        return Head(status, chunked, None if length == -1 else length, keep_alive)

    async def read_body(self, head: Head, sink: Callable[[bytes], None]) -> None:
        """Hand the de-chunked body to `sink`, about one call per network read."""
        if head.chunked:
            await self._read_chunked(sink)
        elif head.length is not None:
            await self._read_length(head.length, sink)
        else:
            raise ProtocolError("response without length or chunked framing")

    async def _read_length(self, length: int, sink: Callable[[bytes], None]) -> None:
        while len(self.buf) < length:
            await self._fill()
        sink(bytes(self.buf[:length]))
        del self.buf[:length]

    async def _read_chunked(self, sink: Callable[[bytes], None]) -> None:
        buf = self.buf
        while True:
            parts, used, finished = _parse_chunks(buf)
            if parts:
                sink(b"".join(parts))
            del buf[:used]
            if finished:
                return
            await self._fill()


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, _, value = line.partition(b":")
    return name.strip().lower(), value.strip()


def _parse_chunks(buf: bytearray) -> tuple[list[bytes], int, bool]:
    """Complete chunks at the front of `buf`: (data pieces, bytes used, last chunk seen)."""
    parts: list[bytes] = []
    pos = 0
    while (eol := buf.find(b"\r\n", pos)) >= 0:
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # no trailers: the CRLFs are adjacent
            return (parts, end + 4, True) if end >= 0 else (parts, pos, False)
        start = eol + 2
        if len(buf) < start + size + 2:
            break
        parts.append(bytes(buf[start : start + size]))
        pos = start + size + 2
    return parts, pos, False


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "timeout"
    if isinstance(exc, ProtocolError):
        return "closed_early"
    if isinstance(exc, OSError | trio.BrokenResourceError):
        return "socket_error"
    return type(exc).__name__


# --- stream mode ------------------------------------------------------------


@dataclass
class StreamStats:
    ok: int = 0
    deltas: int = 0
    body_bytes: int = 0
    errors: Counter[str] = field(default_factory=Counter)


async def stream_mode(args: argparse.Namespace) -> dict[str, Any]:
    text = f"bench fake:deltas={args.deltas} fake:burst={args.burst}"
    if args.delay_ms:
        text += f" fake:delay_ms={args.delay_ms}"
    dialect = DIALECTS[args.dialect]
    raw = build_request(args.host, args.port, dialect.path, dialect.body(text, args.model),
                        dialect.headers)
    stats = StreamStats()
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(args.connections):
            nursery.start_soon(_stream_worker, args, dialect, raw, stats)
    seconds = time.perf_counter() - started
    return {"mode": "stream", "dialect": args.dialect, "path": dialect.path,
            "connections": args.connections, "requests": args.requests,
            "deltas_per_request": args.deltas, "burst": args.burst, "ok": stats.ok,
            "errors": dict(stats.errors), "deltas": stats.deltas,
            "expected_deltas": args.connections * args.requests * args.deltas,
            "body_bytes": stats.body_bytes, "seconds": round(seconds, 3),
            "deltas_per_second": round(stats.deltas / seconds) if seconds else 0}


async def _stream_worker(args: argparse.Namespace, dialect: Dialect, raw: bytes,
                         stats: StreamStats) -> None:
    conn: Connection | None = None
    for _ in range(args.requests):
        try:
            if conn is None:
                conn = await Connection.open(args.host, args.port)
            with trio.fail_after(args.timeout):
                kind = await _one_stream(conn, dialect, raw, args.deltas, stats)
        except (OSError, trio.BrokenResourceError, trio.TooSlowError, ProtocolError) as exc:
            kind = error_kind(exc)
        if kind:
            stats.errors[kind] += 1
            if conn is not None:
                await conn.aclose()
                conn = None
        else:
            stats.ok += 1
    if conn is not None:
        await conn.aclose()


async def _one_stream(conn: Connection, dialect: Dialect, raw: bytes, expected: int,
                      stats: StreamStats) -> str:
    """Run one streamed request; returns "" when fine, else an error kind
    (`no_done`: the dialect's end marker did not occur exactly once)."""
    await conn.stream.send_all(raw)
    head = await conn.read_head()
    deltas, done = Tally(dialect.delta), Tally(dialect.end)
    size = 0

    def sink(data: bytes) -> None:
        nonlocal size
        size += len(data)
        deltas.feed(data)
        done.feed(data)

    await conn.read_body(head, sink)
    stats.deltas += deltas.count
    stats.body_bytes += size
    if head.status != 200:
        return f"status_{head.status}"
    if done.count != 1:
        return "no_done"
    if deltas.count != expected:
        return "wrong_delta_count"
    return "" if head.keep_alive else "not_keep_alive"


# --- hold mode --------------------------------------------------------------


@dataclass
class HoldState:
    target: int
    opened: int = 0
    open_now: int = 0
    peak: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    deltas: int = 0
    all_open: trio.Event = field(default_factory=trio.Event)
    released: bool = False

    def settle(self) -> None:
        if self.opened + self.failed >= self.target:
            self.all_open.set()


async def hold_mode(args: argparse.Namespace) -> dict[str, Any]:
    text = (f"bench hold fake:deltas={args.deltas} fake:delay_ms={args.delay_ms} "
            f"fake:burst={args.burst}")
    raw = build_request(args.host, args.port, CHAT_PATH, chat_body(text, True, args.model))
    state = HoldState(args.streams)
    ramp = trio.CapacityLimiter(args.ramp_concurrency)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(args.streams):
            nursery.start_soon(_hold_one, args, raw, state, ramp)
        with trio.move_on_after(args.open_timeout):
            await state.all_open.wait()
        ramp_seconds = time.perf_counter() - started
        held = {"event": "held", "target": args.streams, "open": state.open_now,
                "errors": dict(state.errors), "ramp_seconds": round(ramp_seconds, 3),
                "deltas": state.deltas}
        print(json.dumps(held), flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        errors_while_held = dict(state.errors)
        open_at_release, deltas_at_release = state.open_now, state.deltas
        state.released = True
        nursery.cancel_scope.cancel()
    return {"mode": "hold", "target": args.streams, "opened": state.opened,
            "open_at_release": open_at_release, "peak_open": state.peak,
            "errors": errors_while_held, "ramp_seconds": round(ramp_seconds, 3),
            "deltas_at_release": deltas_at_release}


async def _hold_one(args: argparse.Namespace, raw: bytes, state: HoldState,
                    ramp: trio.CapacityLimiter) -> None:
    is_open = False

    def sink(data: bytes) -> None:
        nonlocal is_open
        seen = tally.count
        tally.feed(data)
        state.deltas += tally.count - seen
        if tally.count and not is_open:
            is_open = True
            state.opened += 1
            state.open_now += 1
            state.peak = max(state.peak, state.open_now)
            state.settle()

    tally = Tally(DELTA)
    conn: Connection | None = None
    try:
        async with ramp:
            conn = await Connection.open(args.host, args.port)
            await conn.stream.send_all(raw)
            head = await conn.read_head()
        kind = f"status_{head.status}" if head.status != 200 else ""
        if not kind:
            await conn.read_body(head, sink)
            kind = "ended_early"
    except (OSError, trio.BrokenResourceError, ProtocolError) as exc:
        kind = error_kind(exc)
    finally:
        if conn is not None:
            await conn.aclose()
    if not state.released:
        state.errors[kind] += 1
        state.failed += 1
        state.open_now -= is_open
        state.settle()


# --- latency mode -----------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_ms(samples: Sequence[float]) -> dict[str, float]:
    values = sorted(s * 1000 for s in samples)
    if not values:
        return {}
    return {"p50": round(percentile(values, 0.50), 3), "p90": round(percentile(values, 0.90), 3),
            "p99": round(percentile(values, 0.99), 3), "min": round(values[0], 3),
            "max": round(values[-1], 3), "mean": round(sum(values) / len(values), 3)}


@dataclass
class Target:
    """One side of the latency comparison and what was measured on it."""

    name: str
    port: int
    raw: bytes
    marker: bytes
    """Bytes that appear exactly once in a complete answer."""
    conn: Connection | None = None
    samples: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self.samples), "errors": dict(self.errors),
                "ms": summarize_ms(self.samples)}


def latency_targets(args: argparse.Namespace) -> list[Target]:
    text = f"hi fake:deltas={args.deltas}"
    fake_port = args.fake_port or args.port
    fake = Target("fake", fake_port, build_request(
        args.host, fake_port, FAKE_PATH, fake_body(text, args.model), FAKE_HEADERS),
        FAKE_COMPLETED)
    chatmock = Target("chatmock", args.port, build_request(
        args.host, args.port, CHAT_PATH, chat_body(text, False, args.model)),
        b'"finish_reason":"stop"')
    return {"fake": [fake], "chatmock": [chatmock], "both": [fake, chatmock]}[args.target]


async def latency_mode(args: argparse.Namespace) -> dict[str, Any]:
    """Sequential requests; with `--target both` the two targets take turns, so slow
    moments of a shared machine hit both sides alike."""
    targets = latency_targets(args)
    for index in range(args.warmup + args.requests):
        for target in targets if index % 2 else targets[::-1]:
            await _measure(target, args, keep=index >= args.warmup)
    for target in targets:
        if target.conn is not None:
            await target.conn.aclose()
    return {"mode": "latency", "warmup": args.warmup,
            "targets": {t.name: t.summary() for t in targets}}


async def _measure(target: Target, args: argparse.Namespace, keep: bool) -> None:
    try:
        if target.conn is None:
            target.conn = await Connection.open(args.host, target.port)
        with trio.fail_after(args.timeout):
            elapsed, kind = await _timed_request(target.conn, target.raw, target.marker)
    except (OSError, trio.BrokenResourceError, trio.TooSlowError, ProtocolError) as exc:
        elapsed, kind = 0.0, error_kind(exc)
    if kind:
        target.errors[kind] += 1
        if target.conn is not None:
            await target.conn.aclose()
            target.conn = None
    elif keep:
        target.samples.append(elapsed)


async def _timed_request(conn: Connection, raw: bytes, marker: bytes) -> tuple[float, str]:
    tally = Tally(marker)
    started = time.perf_counter()
    await conn.stream.send_all(raw)
    head = await conn.read_head()
    await conn.read_body(head, tally.feed)
    elapsed = time.perf_counter() - started
    if head.status != 200:
        return elapsed, f"status_{head.status}"
    if tally.count != 1:
        return elapsed, "incomplete_body"
    return elapsed, "" if head.keep_alive else "not_keep_alive"


# --- command line -----------------------------------------------------------


def raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/loadgen.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    stream = modes.add_parser("stream", help="C connections x R streamed requests")
    stream.add_argument("--dialect", choices=tuple(DIALECTS), default="chat",
                        help="API to stream from (default: chat, /v1/chat/completions)")
    stream.add_argument("--connections", type=int, default=16)
    stream.add_argument("--requests", type=int, default=10, help="per connection")
    stream.add_argument("--deltas", type=int, default=1000)
    stream.add_argument("--burst", type=int, default=50)
    stream.add_argument("--delay-ms", type=float, default=0.0)
    hold = modes.add_parser("hold", help="N slow streams open at once")
    hold.add_argument("--streams", type=int, default=2000)
    hold.add_argument("--deltas", type=int, default=600)
    hold.add_argument("--delay-ms", type=float, default=500.0)
    hold.add_argument("--burst", type=int, default=1)
    hold.add_argument("--ramp-concurrency", type=int, default=64,
                      help="streams being set up at the same time")
    hold.add_argument("--open-timeout", type=float, default=60.0)
    latency = modes.add_parser("latency", help="sequential non-streamed requests")
    latency.add_argument("--target", choices=("chatmock", "fake", "both"), default="both")
    latency.add_argument("--fake-port", type=int, help="the fake backend (default: --port)")
    latency.add_argument("--requests", type=int, default=500)
    latency.add_argument("--warmup", type=int, default=50)
    latency.add_argument("--deltas", type=int, default=5)
    for sub in (stream, hold, latency):
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, required=True, help="chatmock's port")
        sub.add_argument("--model", default="gpt-5.4")
        sub.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    return parser.parse_args(argv)


MODES = {"stream": stream_mode, "hold": hold_mode, "latency": latency_mode}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_file_limit()
    result = trio.run(MODES[args.mode], args)
    result = {"event": "result", **result, "loadgen_cpu_seconds": round(cpu_seconds(), 3)}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
