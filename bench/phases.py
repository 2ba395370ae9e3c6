"""The bench's phases, each run on one server at a time against the shared fake backend.

Every phase result carries `command`: the exact load-generator command line that
produced it (the server's own command is in the result's `servers` section).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs import BenchError, Child, free_port, spawn
from procstat import (
    Meter,
    cpu_seconds,
    process_tree,
    tree_cpu_times,
    tree_open_fds,
    tree_rss_kib,
)
from servers import Server, ServerSpec, start_server

BENCH = Path(__file__).resolve().parent
LOADGEN = BENCH / "loadgen.py"
PYTHON = sys.executable
RSS_EVERY = 0.25
"""Seconds between RSS samples of a server while paced streams run."""
TTFC_LIMIT_MS = 1000.0
"""A paced run counts toward capacity with zero errors and TTFC p99 under this."""


@dataclass(frozen=True)
class Plan:
    connections: int
    stream_deltas: int
    deltas_per_request: int
    warm_up_requests: int
    latency_requests: int
    latency_warmup: int
    paced_streams: tuple[int, ...]
    paced_delays_ms: tuple[float, ...]
    paced_seconds: float
    start_rate: float
    startup_runs: int
    history_kib: int = 0  # earlier turns sent with every paced request (an agent's prompt)


# --- the load generator -----------------------------------------------------


def loadgen_argv(mode: str, port: int, *options: object) -> list[str]:
    return [PYTHON, str(LOADGEN), mode, "--port", str(port), *map(str, options)]


def start_loadgen(stack: contextlib.ExitStack, logs: Path, argv: list[str]) -> Child:
    return spawn(stack, "loadgen", argv, logs=logs, cwd=BENCH.parent, read_stdout=True)


def result_of(child: Child, timeout: float, tick: Any = None) -> dict[str, Any]:
    """Wait for the loadgen's result line; `tick()` runs about every RSS_EVERY seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise BenchError(f"loadgen: no result within {timeout:g} s")
        line = child.poll_line(min(RSS_EVERY, deadline - time.monotonic()))
        if line is None:
            if tick is not None:
                tick()
            continue
        event: dict[str, Any] = json.loads(line)
        if event.get("event") == "result":
            child.popen.wait(10)
            return event


def run_loadgen(stack: contextlib.ExitStack, logs: Path, argv: list[str],
                timeout: float = 600.0) -> dict[str, Any]:
    return result_of(start_loadgen(stack, logs, argv), timeout)


def shown(argv: list[str]) -> str:
    return shlex.join(argv)


# --- phases -----------------------------------------------------------------


def per_thousand(seconds: float, deltas: int) -> float | None:
    """ms per 1,000 deltas."""
    return round(seconds * 1_000_000 / deltas, 2) if deltas else None


def cpu_figures(cpu: dict[str, Any], deltas: int, loadgen_cpu: float) -> dict[str, Any]:
    return {"cpu_ms_per_1k_deltas": per_thousand(cpu["server_cpu_seconds"], deltas),
            "user_ms_per_1k_deltas": per_thousand(cpu["server_user_seconds"], deltas),
            "sys_ms_per_1k_deltas": per_thousand(cpu["server_sys_seconds"], deltas),
            "fake_ms_per_1k_deltas": per_thousand(cpu["fake_cpu_seconds"], deltas),
            "loadgen_ms_per_1k_deltas": per_thousand(loadgen_cpu, deltas)}



def stream_phase(stack: contextlib.ExitStack, logs: Path, server: Server, fake: Child,
                 plan: Plan, dialect: str, coalesce: bool = False) -> dict[str, Any]:
    """Server CPU per 1,000 delivered deltas: C keep-alive connections, each doing R
    streamed requests of 1,000 deltas; the fake writes them back to back, each event
    its own chunk (or, with `coalesce`, bursts of 50 joined into one chunk)."""
    per_round = plan.deltas_per_request * plan.connections
    requests = max(1, -(-plan.stream_deltas // per_round))
    wire = server.spec.dialect(dialect)
    extra = ["--burst", 50, "--coalesce"] if coalesce else []
    argv = loadgen_argv("stream", server.port, "--dialect", wire, "--connections",
                        plan.connections, "--requests", requests, "--deltas",
                        plan.deltas_per_request, *extra)
    meter = Meter(server.pid, fake.pid)
    result = run_loadgen(stack, logs, argv)
    cpu = meter.stop(result["loadgen_cpu_seconds"])
    kept = ("path", "prompt", "connections", "requests", "deltas", "expected_deltas", "ok",
            "errors", "body_bytes", "seconds", "deltas_per_second", "loadgen_cpu_seconds")
    return {"command": shown(argv), "dialect": wire,
            **cpu_figures(cpu, result["deltas"], result["loadgen_work_cpu_seconds"]), **cpu,
            **{key: result[key] for key in kept}}


def warm_up(stack: contextlib.ExitStack, logs: Path, server: Server, plan: Plan,
            dialects: tuple[str, ...] | None = None) -> list[str]:
    """The streams of every stream phase on the measured connection count. A short warm-up
    left the first measured phase up to 30 % dearer (a young process still grows its heap).
    Raises BenchError when chatmock or nginx fails; a peer's failures (a dialect it lacks)
    are returned as notes."""
    notes = []
    for dialect in dialects or server.spec.dialects:
        argv = loadgen_argv("stream", server.port, "--dialect", dialect, "--connections",
                            plan.connections, "--requests", plan.warm_up_requests,
                            "--deltas", plan.deltas_per_request)
        result = run_loadgen(stack, logs, argv)
        if result["errors"]:
            note = f"{server.name}: warm-up ({dialect}) failed: {result['errors']}"
            if server.spec.kind != "peer":
                raise BenchError(note)
            notes.append(note)
    return notes


def quiesce(pids: list[int], cores: float = 0.1, window: float = 0.3,
            timeout: float = 20.0) -> float:
    """Wait until the process trees of `pids` together use less than `cores` (a server
    still working off an earlier phase, a fake still writing to closed streams);
    the seconds waited."""
    trees = [pid for root in pids for pid in process_tree(root)]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(tree_cpu_times(trees))
        time.sleep(window)
        if sum(tree_cpu_times(trees)) - before < cores * window:
            break
    return round(time.monotonic() - started, 2)


def idle_phase(server: Server, seconds: float = 1.0) -> dict[str, Any]:
    pids = process_tree(server.pid)
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    time.sleep(seconds)
    idle_cpu = (sum(cpu_seconds(pid) for pid in pids) - cpu0) * 1000 / seconds
    return {"rss_kib": tree_rss_kib(pids), "cpu_ms_per_second": round(idle_cpu, 2),
            "open_fds": tree_open_fds(pids), "processes": len(pids)}


def paced_phase(stack: contextlib.ExitStack, logs: Path, server: Server, fake: Child,
                plan: Plan, streams: int, delay_ms: float) -> dict[str, Any]:
    """N streams of one event per `delay_ms`, each on its own connection, started at
    `plan.start_rate` a second: CPU per 1,000 deltas over the whole run, time to first
    chunk, streams open at once, RSS per open stream, errors."""
    deltas = max(1, round(plan.paced_seconds * 1000 / delay_ms))
    argv = loadgen_argv("paced", server.port, "--dialect", server.spec.dialect("chat"),
                        "--streams", streams, "--rate", f"{plan.start_rate:g}", "--deltas",
                        deltas, "--delay-ms", f"{delay_ms:g}",
                        *(("--history-kib", plan.history_kib) if plan.history_kib else ()))
    pids = process_tree(server.pid)
    rss_before = peak_rss = tree_rss_kib(pids)

    def sample() -> None:
        nonlocal peak_rss
        peak_rss = max(peak_rss, tree_rss_kib(pids))

    meter = Meter(server.pid, fake.pid)
    child = start_loadgen(stack, logs, argv)
    result = result_of(child, timeout=plan.paced_seconds + streams / plan.start_rate + 300,
                       tick=sample)
    sample()
    cpu = meter.stop(result["loadgen_cpu_seconds"])
    ttfc = result["ttfc_ms"]
    return {"command": shown(argv), "streams": streams, "delay_ms": delay_ms,
            "deltas_per_stream": deltas,
            **cpu_figures(cpu, result["deltas"], result["loadgen_work_cpu_seconds"]),
            "peak_open": result["peak_open"], "ttfc_ms": ttfc, "ok": result["ok"],
            "errors": result["errors"], "deltas": result["deltas"],
            "expected_deltas": result["expected_deltas"],
            "start_seconds": result["start_seconds"], "seconds": result["seconds"],
            "within_limits": not result["errors"] and ttfc.get("p99", 1e9) < TTFC_LIMIT_MS,
            "rss_before_kib": rss_before, "rss_peak_kib": peak_rss,
            "rss_per_open_stream_kib": round((peak_rss - rss_before) / result["peak_open"], 1)
            if result["peak_open"] else None,
            "open_fds_after": tree_open_fds(pids), "healthy_after": server.ready(),
            **cpu}


def latency_phase(stack: contextlib.ExitStack, logs: Path, servers: list[Server],
                  fake_port: int, plan: Plan) -> dict[str, Any]:
    """Non-streamed requests through every server and to the fake directly, taking turns."""
    options: list[object] = ["--fake-port", fake_port]
    for server in servers:
        flag = "--relay" if server.spec.kind == "relay" else "--chat"
        options += [flag, f"{server.name}={server.port}"]
    argv = [PYTHON, str(LOADGEN), "latency", *map(str, options), "--requests",
            str(plan.latency_requests), "--warmup", str(plan.latency_warmup)]
    result = run_loadgen(stack, logs, argv)
    direct = result["targets"]["fake"]["ms"]
    figures = {}
    for name, target in result["targets"].items():
        ms = target["ms"]
        added = {q: round(ms[q] - direct[q], 3) if q in ms and q in direct else None
                 for q in ("p50", "p99")}
        figures[name] = {"ms": ms, "added_ms": added, "requests": target["requests"],
                         "errors": target["errors"]}
    return {"command": shown(argv), "targets": figures}


def startup_phase(logs: Path, specs: list[ServerSpec], runs: int) -> dict[str, dict[str, Any]]:
    """Spawn-to-ready of fresh processes, in ms, the servers taking turns run by run."""
    times: dict[str, list[float]] = {spec.name: [] for spec in specs}
    for _ in range(runs):
        for spec in specs:
            with contextlib.ExitStack() as inner:
                started = time.perf_counter()
                start_server(inner, spec, free_port(), logs, log_name="startup")
                times[spec.name].append((time.perf_counter() - started) * 1000)
    return {name: {"median_ms": round(statistics.median(values), 1),
                   "runs_ms": [round(t, 1) for t in values]}
            for name, values in times.items()}


def capacity(paced: list[dict[str, Any]]) -> dict[str, int]:
    """Per delay: the largest N that ran with zero errors and TTFC p99 under 1 s."""
    best: dict[str, int] = {}
    for result in paced:
        key = f"{result['delay_ms']:g}"
        best.setdefault(key, 0)
        if result["within_limits"]:
            best[key] = max(best[key], result["streams"])
    return best
