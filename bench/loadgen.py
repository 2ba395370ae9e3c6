"""Load generator for the chatmock bench: its own process, raw sockets, hand-built HTTP/1.1.

Requests are built by hand and responses parsed with as little work as possible
(`wire.py`), because on a small machine every cycle the load generator spends is
taken from the server being measured.

Modes (each prints JSON lines on stdout; the last one has "event": "result"):

    stream   C keep-alive connections, each doing R sequential streamed requests
             in one dialect (`--dialect`: chat completions, the Responses API,
             Ollama's /api/chat, Anthropic's /v1/messages, or `raw`, the fake
             backend's own protocol, for a byte relay)
    paced    N streamed requests, each on its own connection, started at a fixed
             rate (default 1,000/s), the backend pacing their events (`paced.py`):
             time to first chunk, streams open at once, errors
    latency  sequential non-streamed requests that take turns across targets: the
             fake backend directly (`--fake-port`), relays (`--relay NAME=PORT`) and
             chat-completions servers (`--chat NAME=PORT`)

The `fake:` directives of the prompt pick the backend's stream: `stream` mode
sends `fake:deltas=D` (plus `fake:burst`, `fake:delay_ms`, `fake:coalesce` when
given); the fake writes every event as its own HTTP chunk unless told to coalesce.

Run `python bench/loadgen.py MODE --help` for the knobs; `bench/run.py`
drives all of them.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from paced import PacedClient, PacedPlan
from wire import (
    CHAT_PATH,
    DIALECTS,
    FAKE_COMPLETED,
    Connection,
    Dialect,
    ProtocolError,
    Tally,
    build_request,
    chat_body,
    error_kind,
    summarize_ms,
    with_history,
)


def prompt(deltas: int, burst: int = 1, delay_ms: float = 0.0, coalesce: bool = False) -> str:
    """The user message whose `fake:` directives choose the backend's stream."""
    text = f"bench fake:deltas={deltas}"
    if burst > 1:
        text += f" fake:burst={burst}"
    if delay_ms:
        text += f" fake:delay_ms={delay_ms:g}"
    return text + (" fake:coalesce" if coalesce else "")


# --- stream mode ------------------------------------------------------------


# --- stream mode ------------------------------------------------------------


@dataclass
class StreamStats:
    ok: int = 0
    deltas: int = 0
    body_bytes: int = 0
    errors: Counter[str] = field(default_factory=Counter)


async def stream_mode(args: argparse.Namespace) -> dict[str, Any]:
    text = prompt(args.deltas, args.burst, args.delay_ms, args.coalesce)
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
            "deltas_per_request": args.deltas, "prompt": text, "ok": stats.ok,
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

# --- paced mode -------------------------------------------------------------


def paced_mode(args: argparse.Namespace) -> dict[str, Any]:
    text = prompt(args.deltas, delay_ms=args.delay_ms)
    dialect = DIALECTS[args.dialect]
    body = dialect.body(text, args.model)
    if args.history_kib:
        body = with_history(body, args.history_kib)
    request = build_request(args.host, args.port, dialect.path, body, dialect.headers)
    timeout = args.timeout or args.deltas * args.delay_ms / 1000 + 60
    plan = PacedPlan(args.host, args.port, request, dialect, args.streams, args.rate,
                     args.deltas, timeout)
    result = PacedClient(plan).run()
    ttfc = result.pop("ttfc")
    return {"mode": "paced", "dialect": args.dialect, "path": dialect.path, "prompt": text,
            "rate": args.rate, "delay_ms": args.delay_ms, "deltas_per_stream": args.deltas,
            **result, "ttfc_ms": summarize_ms(ttfc)}


# --- latency mode -----------------------------------------------------------


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
    """The fake directly, then every relay (the fake's protocol), then every chat server."""
    text = f"hi fake:deltas={args.deltas}"
    raw = DIALECTS["raw"]

    def relay(name: str, port: int) -> Target:
        request = build_request(args.host, port, raw.path, raw.body(text, args.model),
                                raw.headers)
        return Target(name, port, request, FAKE_COMPLETED)

    def chat(name: str, port: int) -> Target:
        request = build_request(args.host, port, CHAT_PATH, chat_body(text, False, args.model))
        return Target(name, port, request, b'"finish_reason":"stop"')

    targets = [relay("fake", args.fake_port)] if args.fake_port else []
    targets += [relay(*named_port(spec)) for spec in args.relay]
    return targets + [chat(*named_port(spec)) for spec in args.chat]


def named_port(spec: str) -> tuple[str, int]:
    """`NAME=PORT` -> (NAME, PORT)."""
    name, _, port = spec.rpartition("=")
    return name, int(port)


async def latency_mode(args: argparse.Namespace) -> dict[str, Any]:
    """Sequential requests; the targets take turns request by request, each round in a
    shuffled order, so slow moments of a shared machine hit every side alike. (A rotation
    kept each target behind the same neighbour, and the one listed first gained ~0.2 ms.)"""
    targets = latency_targets(args)
    shuffle = random.Random(1).shuffle
    for index in range(args.warmup + args.requests):
        order = list(targets)
        shuffle(order)
        for target in order:
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
    stream.add_argument("--burst", type=int, default=1,
                        help="events written back to back between pauses (fake:burst)")
    stream.add_argument("--delay-ms", type=float, default=0.0, help="pause (fake:delay_ms)")
    stream.add_argument("--coalesce", action="store_true",
                        help="the fake joins each burst into one chunk (fake:coalesce)")
    paced = modes.add_parser("paced", help="N paced streams on their own connections")
    paced.add_argument("--dialect", choices=tuple(DIALECTS), default="chat")
    paced.add_argument("--streams", type=int, default=100)
    paced.add_argument("--rate", type=float, default=1000.0, help="new streams per second")
    paced.add_argument("--deltas", type=int, default=500, help="per stream")
    paced.add_argument("--delay-ms", type=float, default=20.0, help="between events")
    paced.add_argument("--history-kib", type=int, default=0,
                       help="earlier turns sent with every request, about this many KiB")
    latency = modes.add_parser("latency", help="sequential non-streamed requests")
    latency.add_argument("--fake-port", type=int, help="the fake backend, asked directly")
    latency.add_argument("--relay", action="append", default=[], metavar="NAME=PORT",
                         help="a byte relay in front of the fake (its protocol)")
    latency.add_argument("--chat", action="append", default=[], metavar="NAME=PORT",
                         help="a chat-completions server in front of the fake")
    latency.add_argument("--requests", type=int, default=500)
    latency.add_argument("--warmup", type=int, default=50)
    latency.add_argument("--deltas", type=int, default=5)
    for sub in (stream, paced, latency):
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--model", default="gpt-5.4")
    for sub in (stream, paced):
        sub.add_argument("--port", type=int, required=True, help="the server's port")
    for sub in (stream, latency):
        sub.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    paced.add_argument("--timeout", type=float,
                       help="per stream, seconds (default: its length + 60)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_file_limit()
    ready = cpu_seconds()
    if args.mode == "paced":
        result = paced_mode(args)
    else:
        result = trio.run(stream_mode if args.mode == "stream" else latency_mode, args)
    spent = cpu_seconds()
    # All of the process (for the runner's machine accounting), and the mode's own work.
    result = {"event": "result", **result, "loadgen_cpu_seconds": round(spent, 3),
              "loadgen_work_cpu_seconds": round(spent - ready, 3)}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
