"""A soak: does chatmock hold up for half an hour of mixed, hostile traffic?

    .venv/bin/python bench/soak.py                # 30 minutes
    .venv/bin/python bench/soak.py --ci           # 1 minute of traffic (what CI runs)
    .venv/bin/python bench/soak.py --minutes 5 --seed 7 --workers 12

The fake backend (`bench/fakeserver.py`, `--fake testing` for the tests' one) and chatmock
(`python -m chatmock serve`, default settings) run as processes of their own; this process
is the clients (`soak_traffic`: every dialect, streamed or not, chained Responses turns,
the WebSocket, client disconnects, slow clients, malformed requests, 429 storms, backend
failures), seeded by `--seed`, after a prefill of quick exchanges (`--prefill`) that fills
chatmock's bounded caches (RSS climbs with the number of exchanges, not with time, for
some 7,000 of them). chatmock's RSS and descriptors are sampled from /proc every
`--sample-seconds`.

It checks, and exits 1 when any check fails:
- memory: the least-squares slope of RSS after the warm-up (a sixth of the run, at least
  30 s). Flat means under 5 % of the mean RSS per hour, or under 1 MiB of fitted growth over
  the measured window (4 MiB with `--ci`: `CI_MEMORY_FLOOR_KIB` says why): RSS moves in steps
  of allocator arenas (up to 1 MiB), so a shorter run cannot resolve less, while 5 %/h is
  what a server left running for days can afford (with a 50 MiB heap, 2.5 MiB an hour: a
  dozen bytes an exchange at the default rate);
- descriptors: after the traffic and `--idle-seconds` of quiet, no client connection is left
  and the non-network descriptors are back to their count before the traffic; the upstream
  pool (idle keep-alive connections to the backend) is reported, bounded by its size;
- streams: every exchange got what it asked for; every stream the client did not leave ended
  with its dialect's terminal event (`[DONE]`, `message_stop`, `done: true`,
  `response.completed`), or with an in-band error when the backend failed it (a `fake:cut`
  never ends as a success), and carried every delta;
- 5xx: none, except where the request asked the fake for a failure (and h11's 501 to an
  unknown Transfer-Encoding, see soak_malformed);
- cancellation: the fake's `/__fake__/streams` counters agree with the clients: `completed`
  equals the streams that were played to their end, `abandoned` the clients that left during
  a stream (plus at most those that left right after sending), and `open` is 0 at the end;
- the log: no traceback, no ERROR line.

The report is printed and written with every sample to `--out` (bench/out/soak.json); the
processes' logs go to bench/out/soak-logs/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio
from procs import BenchError, free_port, raise_open_file_limit
from procstat import cpu_seconds, loadavg, machine, rss_kib
from run import cleanup_on_signals
from servers import PYTHON, chatmock_spec, start_fake, start_server
from soak_proc import Sample, fake_counters, log_findings, other_fds, sample, slope_per_hour
from soak_traffic import (
    REQUEST_DEADLINE,
    RUNNERS,
    Ledger,
    Worker,
    chain,
    normal,
    storms,
    websocket,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatmock.net.client import MAX_IDLE_SECONDS, SWEEP_SECONDS
from chatmock.testing.credentials import write_auth_file

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
MEMORY_RATE = 0.05
"""Flat: RSS grows by less than this share of its mean per hour..."""
MEMORY_FLOOR_KIB = 1024
"""...or by less than this over the measured window (allocator arenas come in 1 MiB)."""
CI_MEMORY_FLOOR_KIB = 4096
"""The CI soak's floor. In two minutes RSS still climbs by a few MiB that are not Python
objects (tracemalloc, sampled through a CI soak, shows the Python heap flat within its
in-flight buffers: bench/RESULTS.md, "Soak"): malloc arenas of the threads that serve the
SQLite store, SQLite's page caches filling. 4 MiB over the ~17,000 exchanges after the
warm-up still fails any leak of 250 bytes or more per exchange; the 30-minute soak judges
the slow ones by the 5 %/h rate."""
DRAIN_SECONDS = 15.0
PREFILL, PREFILL_KINDS = 5000, ("normal", "chain", "websocket")
CI_WORKERS, CI_WARM_UP = 24, 30.0
"""The CI soak: three times the clients, for more exchanges in its two minutes."""
KINDS = (*(runner.__name__ for runner in RUNNERS), "storm")
POOL_SWEPT_AFTER = MAX_IDLE_SECONDS + SWEEP_SECONDS + 5
"""Quiet after which chatmock's upstream pool must be empty (net/client.py's sweep)."""


@dataclass(frozen=True)
class Plan:
    seconds: float
    workers: int
    seed: int
    storm_gap: float
    sample_seconds: float
    idle_seconds: float
    warm_up: float
    """Seconds of traffic before RSS counts: until the bounded caches are full."""
    prefill: int
    """Quick exchanges before the traffic (see the module docstring)."""
    kinds: tuple[str, ...] = ()
    """Only these kinds of exchange (and `storm`), to narrow a finding down; all if empty."""
    memory_floor_kib: int = MEMORY_FLOOR_KIB


async def soak(plan: Plan, pid: int, port: int, fake_port: int) -> dict[str, Any]:
    """Prime every route, prefill, take the baseline, run the traffic, drain, idle, take
    the end."""
    ledger = Ledger()
    await prime(port, ledger, plan.seed)
    fresh_rss = rss_kib(pid)
    if plan.prefill:
        deadline = trio.current_time() + REQUEST_DEADLINE * 4
        async with trio.open_nursery() as nursery:
            for index in range(plan.workers * 2):
                worker = Worker(port, ledger, random.Random(f"{plan.seed}/prefill/{index}"))
                nursery.start_soon(worker.run_until, deadline, PREFILL_KINDS,
                                   ledger.kinds.total() + plan.prefill)
        await trio.sleep(1.0)
    baseline = await sample(0.0, pid, port, fake_port)
    other_before = other_fds(pid, port, fake_port)
    samples: list[Sample] = []
    cpu = cpu_seconds(pid), own_cpu_seconds()
    start = trio.current_time()
    async with trio.open_nursery() as watching:
        watching.start_soon(sampler, plan, samples, start, pid, port, fake_port)
        await traffic(plan, port, ledger, start + plan.seconds)
        traffic_seconds = trio.current_time() - start
        spent = {"chatmock_cpu_seconds": round(cpu_seconds(pid) - cpu[0], 1),
                 "clients_cpu_seconds": round(own_cpu_seconds() - cpu[1], 1)}
        drained = await wait_drained(fake_port, DRAIN_SECONDS)
        await trio.sleep(plan.idle_seconds)
        watching.cancel_scope.cancel()
    end = await sample(trio.current_time() - start, pid, port, fake_port)
    other_after = other_fds(pid, port, fake_port)
    return {"traffic_seconds": round(traffic_seconds, 1), **spent, "drained_seconds": drained,
            "fresh_rss_kib": fresh_rss, "baseline": asdict(baseline), "end": asdict(end),
            "other_fds": {"before": other_before, "after": other_after},
            "samples": [asdict(s) for s in samples], "ledger": ledger_figures(ledger),
            "fake": await fake_counters(fake_port)}


async def prime(port: int, ledger: Ledger, seed: int) -> None:
    """A few exchanges that load every route's code and open the store's files."""
    primer = Worker(port, ledger, random.Random(f"{seed}/prime"))
    for runner in (normal, normal, normal, chain, websocket, None, chain):
        if runner is None:  # the turns are written: the next chain reads them from the file
            await trio.sleep(1.0)  # (SQLite opens the WAL of its reading connection then)
        else:
            await primer.run(runner)
    await primer.drop()
    await trio.sleep(1.0)


async def traffic(plan: Plan, port: int, ledger: Ledger, deadline: float) -> None:
    """The workers and the storms, until `deadline` (exchanges in flight then finish)."""
    async with trio.open_nursery() as nursery:
        for index in range(plan.workers):
            worker = Worker(port, ledger, random.Random(f"{plan.seed}/{index}"))
            nursery.start_soon(worker.run_until, deadline, plan.kinds)
        if not plan.kinds or "storm" in plan.kinds:
            nursery.start_soon(storms, port, ledger, random.Random(f"{plan.seed}/storms"),
                               deadline, plan.storm_gap)


async def sampler(plan: Plan, samples: list[Sample], start: float, pid: int, port: int,
                  fake_port: int) -> None:
    while True:
        samples.append(await sample(trio.current_time() - start, pid, port, fake_port))
        await trio.sleep(plan.sample_seconds)


async def wait_drained(fake_port: int, within: float) -> float | None:
    """Seconds until the fake has no stream open after the traffic (None: never)."""
    started = trio.current_time()
    while (await fake_counters(fake_port))["open"]:  # polling another process
        if trio.current_time() - started > within:
            return None
        await trio.sleep(0.05)
    return round(trio.current_time() - started, 2)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ledger_figures(ledger: Ledger) -> dict[str, Any]:
    return {"requests": sum(ledger.kinds.values()), "kinds": dict(ledger.kinds),
            "names": dict(sorted(ledger.names.items())),
            "streams_checked": dict(ledger.streams_checked), "five_xx": dict(ledger.five_xx),
            "left": dict(ledger.left), "streams_played": ledger.streams,
            "slowest": {k: [round(v, 2), name] for k, (v, name) in sorted(ledger.slowest.items())},
            "failures": ledger.failures, "first_failures": ledger.first_failures}


# --- the checks --------------------------------------------------------------------


def memory_check(result: dict[str, Any], plan: Plan) -> dict[str, Any]:
    points = [(s["t"], s["rss_kib"]) for s in result["samples"] if s["t"] >= plan.warm_up]
    slope = slope_per_hour(points)
    mean = sum(v for _, v in points) / len(points) if points else 0.0
    window_hours = (points[-1][0] - points[0][0]) / 3600 if len(points) > 1 else 0.0
    fds = slope_per_hour([(s["t"], s["fds"]) for s in result["samples"]
                          if s["t"] >= plan.warm_up])
    flat = slope <= MEMORY_RATE * mean or slope * window_hours <= plan.memory_floor_kib
    return {"ok": bool(points) and flat, "rss_slope_kib_per_hour": round(slope),
            "rss_slope_percent_per_hour": round(100 * slope / mean, 2) if mean else None,
            "rss_mean_kib": round(mean), "fitted_growth_kib": round(slope * window_hours),
            "window_seconds": round(window_hours * 3600), "samples": len(points),
            "fds_slope_per_hour": round(fds, 1)}


def descriptor_check(result: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """No client connection left, the other descriptors as before the traffic, and after
    a quiet long enough for the pool's sweep (`--idle-seconds` 80 or more), no backend
    connection either."""
    base, end = result["baseline"], result["end"]
    swept = plan.idle_seconds >= POOL_SWEPT_AFTER
    return {"ok": end["clients"] == 0 and end["other"] == base["other"]
            and (not swept or end["upstream"] == 0), "pool_checked": swept,
            "baseline": {k: base[k] for k in ("fds", "clients", "upstream", "other")},
            "end": {k: end[k] for k in ("fds", "clients", "upstream", "other")},
            "peak_fds": max((s["fds"] for s in result["samples"]), default=0)}


def cancellation_check(result: dict[str, Any]) -> dict[str, Any]:
    fake, ledger = result["fake"], result["ledger"]
    reached, at_once = ledger["left"].get("reached", 0), ledger["left"].get("at-once", 0)
    ok = (fake["open"] == 0 and fake["completed"] == ledger["streams_played"]
          and reached <= fake["abandoned"] <= reached + at_once)
    return {"ok": ok, "fake": fake, "streams_played": ledger["streams_played"],
            "left_during_stream": reached, "left_at_once": at_once,
            "drained_seconds": result["drained_seconds"]}


def judge(result: dict[str, Any], plan: Plan) -> dict[str, dict[str, Any]]:
    ledger, log = result["ledger"], result["log"]
    return {
        "memory flat": memory_check(result, plan),
        "descriptors back": descriptor_check(result, plan),
        "every exchange as asked": {"ok": ledger["failures"] == 0,
                                    "failures": ledger["failures"]},
        "no unexpected 5xx": {"ok": not ledger["five_xx"].get("unexpected"),
                              **ledger["five_xx"]},
        "every disconnect cancelled": cancellation_check(result),
        "clean log": {"ok": log["tracebacks"] == 0 and log["error_lines"] == 0,
                      "tracebacks": log["tracebacks"], "error_lines": log["error_lines"]},
    }


# --- the report ----------------------------------------------------------------------


def print_report(result: dict[str, Any], checks: dict[str, dict[str, Any]]) -> None:
    ledger, mem = result["ledger"], checks["memory flat"]
    print(f"\nsoak: {result['traffic_seconds']:g} s of traffic, seed {result['plan']['seed']}, "
          f"{result['plan']['workers']} workers + 429 storms; {ledger['requests']} exchanges "
          f"({ledger['requests'] / result['traffic_seconds']:.0f}/s); CPU: chatmock "
          f"{result['chatmock_cpu_seconds']:g} s, the clients {result['clients_cpu_seconds']:g} s")
    print("  by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(ledger["kinds"].items())))
    print("  slowest: " + ", ".join(f"{k} {v:g} s ({name})"
                                    for k, (v, name) in ledger["slowest"].items()))
    print("  streams checked, per dialect: " + ", ".join(
        f"{k} {v}" for k, v in sorted(ledger["streams_checked"].items())))
    base, end = result["baseline"], result["end"]
    print(f"  RSS: {result['fresh_rss_kib'] / 1024:.1f} MiB fresh, {base['rss_kib'] / 1024:.1f}"
          f" MiB after {result['plan']['prefill']} quick exchanges, {end['rss_kib'] / 1024:.1f}"
          f" MiB at the end; after {result['plan']['warm_up']:g} s of warm-up: mean "
          f"{mem['rss_mean_kib'] / 1024:.1f} MiB, slope {mem['rss_slope_kib_per_hour']} KiB/h "
          f"({mem['rss_slope_percent_per_hour']} %/h), fitted growth "
          f"{mem['fitted_growth_kib']} KiB over {mem['window_seconds']} s")
    fds = checks["descriptors back"]
    print(f"  fds: before {fds['baseline']}, peak {fds['peak_fds']}, after idle {fds['end']}, "
          f"slope {mem['fds_slope_per_hour']}/h")
    cancel = checks["every disconnect cancelled"]
    print(f"  backend streams: {cancel['fake']} for {cancel['streams_played']} played, "
          f"{cancel['left_during_stream']} clients left during a stream, "
          f"{cancel['left_at_once']} right after sending; drained in "
          f"{cancel['drained_seconds']} s")
    print(f"  5xx: {ledger['five_xx'] or 'none'}; log: {result['log']['warnings']} warnings "
          f"{result['log']['warning_kinds']}")
    print("  timeline (s, RSS MiB, fds, backend streams open):")
    step = max(1, len(result["samples"]) // 15)
    for s in result["samples"][::step]:
        print(f"    {s['t']:7.1f} {s['rss_kib'] / 1024:7.1f} {s['fds']:5d} {s['fake_open']:5d}")
    for failure in ledger["first_failures"]:
        print(f"  FAILED {failure}")
    for line in result["log"]["first"]:
        print(f"  LOG {line}")
    for name, check in checks.items():
        print(f"  {'ok  ' if check['ok'] else 'FAIL'} {name}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--minutes", type=float, default=30.0, help="traffic time (default 30)")
    add("--ci", action="store_true", help="the CI-sized soak: 1 minute, 5 s idle, "
        f"{CI_MEMORY_FLOOR_KIB // 1024} MiB memory floor")
    add("--seed", type=int, default=1, help="seeds every random choice (default 1)")
    add("--workers", type=int, default=8, help="concurrent clients besides the storms")
    add("--storm-gap", type=float, default=20.0, help="mean seconds between 429 storms")
    add("--warm-up", type=float, default=None, metavar="SECONDS",
        help="traffic before RSS counts (default: a sixth of the run, at least 30 s)")
    add("--prefill", type=int, default=PREFILL, metavar="EXCHANGES",
        help=f"quick exchanges (normal, chain, websocket) first (default {PREFILL})")
    add("--sample-seconds", type=float, default=2.0)
    add("--idle-seconds", type=float, default=90.0,
        help="quiet before the last sample (80 or more: the upstream pool must be empty)")
    add("--kinds", default="", help="only these kinds, comma-separated: "
        f"{','.join(KINDS)} (to narrow a finding down)")
    add("--fake", choices=("bench", "testing"), default="bench",
        help="bench/fakeserver.py (default) or chatmock.testing.fake_upstream")
    add("--out", type=Path, default=OUT / "soak.json")
    args = parser.parse_args(argv)
    args.kinds = tuple(k for k in args.kinds.split(",") if k)
    if set(args.kinds) - set(KINDS):
        parser.error(f"--kinds: choose from {', '.join(KINDS)}")
    if args.ci:
        args.minutes, args.workers, args.warm_up = 1.0, CI_WORKERS, CI_WARM_UP
        args.idle_seconds, args.storm_gap = 5.0, 15.0
    if args.warm_up is None:
        args.warm_up = max(30.0, args.minutes * 10)
    args.memory_floor_kib = CI_MEMORY_FLOOR_KIB if args.ci else MEMORY_FLOOR_KIB
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(args.minutes * 60, args.workers, args.seed, args.storm_gap,
                args.sample_seconds, args.idle_seconds, args.warm_up, args.prefill, args.kinds,
                args.memory_floor_kib)
    raise_open_file_limit()
    logs = args.out.parent / "soak-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    info = {"command": shlex.join([PYTHON, *sys.argv]), "machine": machine(),
            "plan": asdict(plan)}
    with cleanup_on_signals(), contextlib.ExitStack() as stack:
        try:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-home-")))
            write_auth_file(home)
            _, fake_port = start_fake(stack, args.fake, logs, REPO)
            spec = chatmock_spec("chatmock", REPO, fake_port, home, max_connections=10_000)
            server = start_server(stack, spec, free_port(), logs)
            print(f"[{time.strftime('%H:%M:%S')}] soak: {args.minutes:g} min against "
                  f"chatmock (pid {server.pid}), seed {args.seed}", file=sys.stderr)
            result = {**info, **trio.run(soak, plan, server.pid, server.port, fake_port)}
            server.child.stop()  # its shutdown lines belong in the log too
        except BenchError as exc:
            print(f"soak failed to run: {exc} (logs in {logs})", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: stopping the soak's processes", file=sys.stderr)
            return 130
    result["log"] = log_findings(logs / "chatmock.log")
    result["machine"]["loadavg_at_end"] = loadavg()
    checks = judge(result, plan)
    result["checks"] = checks
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, checks)
    print(f"\nwritten: {args.out}")
    return 0 if all(check["ok"] for check in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
