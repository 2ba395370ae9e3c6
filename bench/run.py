"""chatmock benchmark runner: `python bench/run.py [--quick] [--streams N] ...`.

Starts the fake Codex backend, chatmock and the load generator
(`bench/loadgen.py`) as separate processes on 127.0.0.1, warms up, and reads
chatmock's CPU time and memory from /proc, outside the process, so the
measurement costs the server nothing. See bench/README.md for what each
figure means. Prints a table and writes bench/out/latest.json; the processes'
stderr goes to bench/out/logs/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs import HOST, BenchError, Child, free_port, raise_open_file_limit, spawn
from procstat import Meter, cpu_seconds, machine, open_fds, rss_kib
from report import print_report

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
LOADGEN = BENCH / "loadgen.py"
PYTHON = sys.executable
SETTLE_SLACK_FDS = 8
"""Descriptors above the idle count still counted as settled (pooled upstream sockets)."""
HOLD_MIN_DELAY_MS = 500.0
HOLD_EVENTS_PER_SECOND = 4000
WARM_UP_REQUESTS = 6
"""Per connection, of 1,000 deltas each, in bursts of 50 (half as many in bursts of 1)."""
STREAM_PHASES = (("stream_burst50", "chat", 50), ("stream_burst1", "chat", 1),
                 ("stream_responses_burst50", "responses", 50),
                 ("stream_ollama_burst50", "ollama", 50),
                 ("stream_anthropic_burst50", "anthropic", 50))
"""(result key, loadgen `--dialect`, fake events per upstream write), run in this order.
A new dialect is one more entry here and in loadgen's `DIALECTS`."""


# --- the servers ------------------------------------------------------------


def start_child(stack: contextlib.ExitStack, name: str, argv: list[str],
                **options: Any) -> Child:
    """`spawn` with the bench's log directory and the repository as working directory."""
    return spawn(stack, name, argv, logs=LOGS, cwd=REPO, **options)


def start_fake(stack: contextlib.ExitStack) -> tuple[Child, int]:
    argv = [PYTHON, "-m", "chatmock.testing.fake_upstream", "--host", HOST, "--port", "0"]
    fake = start_child(stack, "fake_upstream", argv, read_stdout=True)
    line = fake.next_line(timeout=30)
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not match:
        raise BenchError(f"unexpected first line from the fake backend: {line!r}")
    return fake, int(match[1])


def chatmock_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGPT_LOCAL_")}
    env["CHATGPT_LOCAL_HOME"] = str(home)
    return env


def chatmock_argv(port: int, fake_port: int, max_connections: int) -> list[str]:
    return [PYTHON, "-m", "chatmock", "serve", "--host", HOST, "--port", str(port),
            "--upstream-url", f"http://{HOST}:{fake_port}/backend-api/codex",
            "--max-connections", str(max_connections)]


def health_ok(port: int) -> bool:
    """One raw `GET /health`; True on a 200 status line."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


def wait_healthy(server: Child, port: int, timeout: float = 30.0,
                 interval: float = 0.003) -> None:
    deadline = time.monotonic() + timeout
    while not health_ok(port):
        if server.popen.poll() is not None:
            raise BenchError(f"chatmock exited with {server.popen.returncode}; see its log")
        if time.monotonic() > deadline:
            raise BenchError(f"chatmock not healthy after {timeout:g} s")
        time.sleep(interval)


def startup_ms(fake_port: int, home: Path, runs: int) -> list[float]:
    """Spawn-to-first-200 on /health of fresh chatmock processes, in ms."""
    times = []
    for _ in range(runs):
        port = free_port()
        with contextlib.ExitStack() as stack:
            started = time.perf_counter()
            argv = chatmock_argv(port, fake_port, 1000)
            server = start_child(stack, "chatmock_startup", argv, env=chatmock_env(home))
            wait_healthy(server, port)
            times.append((time.perf_counter() - started) * 1000)
    return times


# --- the load generator -----------------------------------------------------


def loadgen(stack: contextlib.ExitStack, mode: str, port: int, *options: object,
            timeout: float = 600.0) -> dict[str, Any]:
    """Run one loadgen process to its end; returns its result JSON."""
    child = start_loadgen(stack, mode, port, *options)
    return result_of(child, timeout)


def start_loadgen(stack: contextlib.ExitStack, mode: str, port: int, *options: object,
                  ) -> Child:
    argv = [PYTHON, str(LOADGEN), mode, "--port", str(port), *map(str, options)]
    return start_child(stack, "loadgen", argv, read_stdout=True, write_stdin=mode == "hold")


def result_of(child: Child, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event: dict[str, Any] = json.loads(child.next_line(deadline - time.monotonic()))
        if event.get("event") == "result":
            child.popen.wait(10)
            return event


# --- phases -----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    connections: int
    stream_deltas: int
    deltas_per_request: int
    latency_requests: int
    latency_warmup: int
    streams: int
    hold_seconds: float
    hold_delay_ms: float
    startup_runs: int


def stream_phase(stack: contextlib.ExitStack, server: Child, fake: Child, port: int,
                 plan: Plan, dialect: str, burst: int) -> dict[str, Any]:
    """Server CPU per 1,000 delivered deltas, streamed in `dialect` with `burst` events
    a write."""
    per_connection = plan.deltas_per_request * plan.connections
    requests = max(1, -(-plan.stream_deltas // per_connection))
    meter = Meter(server.pid, fake.pid)
    result = loadgen(stack, "stream", port, "--dialect", dialect, "--connections",
                     plan.connections, "--requests", requests, "--deltas",
                     plan.deltas_per_request, "--burst", burst)
    cpu = meter.stop(result["loadgen_cpu_seconds"])
    kept = ("path", "connections", "requests", "deltas", "expected_deltas", "ok", "errors",
            "body_bytes", "seconds", "deltas_per_second", "loadgen_cpu_seconds")
    return {"dialect": dialect, "burst": burst,
            "cpu_ms_per_1k_deltas": per_thousand(cpu["server_cpu_seconds"], result["deltas"]),
            **cpu, **{key: result[key] for key in kept}}


def warm_up(stack: contextlib.ExitStack, port: int, connections: int) -> None:
    """The streams of every stream phase on the measured connection count (half as many
    for burst=1). A short warm-up left the first measured phase up to 30 % dearer (a
    young process still grows its heap)."""
    for _, dialect, burst in STREAM_PHASES:
        requests = WARM_UP_REQUESTS if burst > 1 else WARM_UP_REQUESTS // 2
        result = loadgen(stack, "stream", port, "--dialect", dialect, "--connections",
                         connections, "--requests", requests, "--deltas", 1000,
                         "--burst", burst)
        if result["errors"]:
            raise BenchError(f"warm-up failed: {result['errors']}")


def idle_phase(server: Child, seconds: float = 1.0) -> dict[str, Any]:
    cpu0 = cpu_seconds(server.pid)
    time.sleep(seconds)
    idle_cpu = (cpu_seconds(server.pid) - cpu0) * 1000 / seconds
    return {"rss_kib": rss_kib(server.pid), "cpu_ms_per_second": round(idle_cpu, 2),
            "open_fds": open_fds(server.pid)}


def latency_phase(stack: contextlib.ExitStack, server: Child, fake: Child, port: int,
                  fake_port: int, plan: Plan) -> dict[str, Any]:
    """Non-streamed requests through chatmock and to the fake directly, taking turns."""
    meter = Meter(server.pid, fake.pid)
    result = loadgen(stack, "latency", port, "--fake-port", fake_port, "--target", "both",
                     "--requests", plan.latency_requests, "--warmup", plan.latency_warmup)
    through, direct = result["targets"]["chatmock"], result["targets"]["fake"]
    added = {q: round(through["ms"][q] - direct["ms"][q], 3)
             if q in through["ms"] and q in direct["ms"] else None for q in ("p50", "p99")}
    return {"added_ms": added, "chatmock_ms": through["ms"], "fake_direct_ms": direct["ms"],
            "requests": through["requests"],
            "errors": {"chatmock": through["errors"], "fake": direct["errors"]},
            **meter.stop(result["loadgen_cpu_seconds"])}


def hold_phase(stack: contextlib.ExitStack, server: Child, fake: Child, port: int,
               plan: Plan, idle_fds: int) -> dict[str, Any]:
    """RSS per open stream and open-stream capacity, with `plan.streams` streams held."""
    before = rss_kib(server.pid)
    open_timeout = max(60.0, plan.streams / 50)
    child = start_loadgen(stack, "hold", port, "--streams", plan.streams,
                          "--delay-ms", plan.hold_delay_ms, "--open-timeout", open_timeout)
    held = json.loads(child.next_line(timeout=open_timeout + 60))
    window = held_window(server, fake, plan.hold_seconds)
    with_n = rss_kib(server.pid)
    result, release_seconds = release(child, server.pid, idle_fds)
    deltas = result["deltas_at_release"] - held["deltas"]
    return {"target": plan.streams, "open_when_ramped": held["open"],
            "open_at_release": result["open_at_release"], "peak_open": result["peak_open"],
            "errors": result["errors"], "ramp_seconds": held["ramp_seconds"],
            "held_seconds": plan.hold_seconds, "delay_ms": plan.hold_delay_ms,
            "held_deltas": deltas,
            "held_cpu_ms_per_1k_deltas": per_thousand(window["server_cpu_seconds"], deltas),
            **window, "rss_before_kib": before, "rss_with_streams_kib": with_n,
            "rss_per_stream_kib": ratio(with_n - before, held["open"]),
            "release_seconds": release_seconds, "rss_after_release_kib": rss_kib(server.pid),
            "open_fds_after_release": open_fds(server.pid),
            "healthy_after_release": health_ok(port)}


def held_window(server: Child, fake: Child, seconds: float) -> dict[str, Any]:
    """CPU spent by the server and the fake while the streams stay open."""
    meter = Meter(server.pid, fake.pid)
    time.sleep(seconds)
    return {**meter.stop(None), "open_fds_with_streams": open_fds(server.pid)}


def release(child: Child, pid: int, idle_fds: int) -> tuple[dict[str, Any], float | None]:
    """Tell the hold loadgen to close its streams; (its result, seconds until the server
    is back to its idle descriptor count, or None if it is not within 30 s)."""
    assert child.popen.stdin is not None
    child.popen.stdin.write("release\n")
    child.popen.stdin.flush()
    released = time.monotonic()
    result = result_of(child, timeout=120)
    settled = wait_fds_settle(pid, idle_fds, timeout=30.0)
    return result, round(time.monotonic() - released, 2) if settled else None


def per_thousand(cpu_seconds: float, deltas: int) -> float | None:
    """CPU ms per 1,000 deltas."""
    return ratio(cpu_seconds * 1_000_000, deltas)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def wait_fds_settle(pid: int, idle_fds: int, timeout: float) -> bool:
    """Wait until the server holds no more descriptors than when idle (+ the upstream pool)."""
    deadline = time.monotonic() + timeout
    while open_fds(pid) > idle_fds + SETTLE_SLACK_FDS:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def log_findings(path: Path) -> dict[str, Any]:
    """Counts of worrying lines in chatmock's stderr, and the first few of them."""
    text = path.read_text(errors="replace") if path.exists() else ""
    bad = [line for line in text.splitlines()
           if re.search(r"Traceback| ERROR | CRITICAL | WARNING ", line)]
    return {"worrying_lines": len(bad), "tracebacks": text.count("Traceback"),
            "first": bad[:5], "log": str(path.relative_to(REPO))}


# --- main -------------------------------------------------------------------


def hold_delay_ms(streams: int) -> float:
    """Pace held streams so their sum stays cheap: the phase measures memory, not CPU."""
    return max(HOLD_MIN_DELAY_MS, streams * 1000 / HOLD_EVENTS_PER_SECOND)


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    streams = args.streams or (500 if quick else 2000)
    return Plan(connections=args.connections,
                stream_deltas=args.stream_deltas or (50_000 if quick else 200_000),
                deltas_per_request=1000,
                latency_requests=args.latency_requests or (300 if quick else 2000),
                latency_warmup=50, streams=streams, hold_seconds=2.0 if quick else 5.0,
                hold_delay_ms=args.hold_delay_ms or hold_delay_ms(streams),
                startup_runs=args.startup_runs or (3 if quick else 5))


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    plan = make_plan(args)
    started = time.monotonic()
    home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatmock-bench-")))
    _write_credentials(home)
    fake, fake_port = start_fake(stack)
    phase("startup")
    runs = startup_ms(fake_port, home, plan.startup_runs)
    port = free_port()
    argv = chatmock_argv(port, fake_port, plan.streams + 1000)
    server = start_child(stack, "chatmock", argv, env=chatmock_env(home))
    wait_healthy(server, port)
    phase("warm-up")
    warm_up(stack, port, plan.connections)
    idle = idle_phase(server)
    streams = {}
    for key, dialect, burst in STREAM_PHASES:
        phase(f"streaming {dialect}, burst={burst}, {plan.stream_deltas:,} deltas")
        streams[key] = stream_phase(stack, server, fake, port, plan, dialect, burst)
    phase(f"latency, {plan.latency_requests} requests each")
    latency = latency_phase(stack, server, fake, port, fake_port, plan)
    phase(f"holding {plan.streams} streams")
    hold = hold_phase(stack, server, fake, port, plan, idle["open_fds"])
    server.stop()
    return {"mode": "quick" if args.quick else "full", "plan": plan.__dict__,
            "startup": {"median_ms": round(statistics.median(runs), 1),
                        "runs_ms": [round(t, 1) for t in runs]},
            "idle": idle, **streams, "latency": latency, "hold": hold,
            "chatmock_log": log_findings(LOGS / "chatmock.log"),
            "seconds": round(time.monotonic() - started, 1)}


def _write_credentials(home: Path) -> None:
    sys.path.insert(0, str(REPO))
    from chatmock.testing.credentials import write_auth_file

    write_auth_file(home)


def phase(name: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller numbers, under a minute")
    parser.add_argument("--streams", type=int, help="streams held open (default 2000, quick 500)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent connections in the streaming phases")
    parser.add_argument("--stream-deltas", type=int,
                        help="deltas per streaming phase (default 200000, quick 50000)")
    parser.add_argument("--latency-requests", type=int,
                        help="measured requests per target (default 2000, quick 300)")
    parser.add_argument("--startup-runs", type=int, help="default 5, quick 3")
    parser.add_argument("--hold-delay-ms", type=float,
                        help="fake backend pause between events of a held stream (default: "
                        f"{HOLD_MIN_DELAY_MS:g}, more for many streams so that all of them "
                        f"together get at most {HOLD_EVENTS_PER_SECOND} events/s)")
    parser.add_argument("--out", type=Path, default=OUT / "latest.json")
    return parser.parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same clean-up path as Ctrl-C


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_file_limit()
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    command = shlex.join([PYTHON, *sys.argv])
    info = machine()
    with cleanup_on_signals(), contextlib.ExitStack() as stack:
        try:
            result = {"command": command, "machine": info, **run(args, stack)}
        except BenchError as exc:
            print(f"bench failed: {exc} (logs in {LOGS})", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            # A second Ctrl-C must not cut the clean-up short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("interrupted: stopping the bench processes", file=sys.stderr)
            return 130
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
