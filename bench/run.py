"""chatmock benchmark runner: `python bench/run.py [--quick] [--ab REV] [--peer NAME=CMD] ...`.

Starts the fake Codex backend (`bench/fakeserver.py`), the servers under test
(chatmock; nginx as the byte-relay floor; optionally another chatmock commit and
peers, see `servers.py`) and, per measurement, the load generator
(`bench/loadgen.py`), all as separate processes on 127.0.0.1. Every phase runs
on each server in turn, in a rotating order, so a slow moment of a shared
machine falls on all of them; the figures are read from /proc, outside the
processes. See bench/README.md for what each figure means. Prints a table (with
ratios to the nginx floor and to the A/B commit) and writes bench/out/latest.json;
the processes' stderr goes to bench/out/logs/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from phases import (
    Plan,
    capacity,
    idle_phase,
    latency_phase,
    paced_phase,
    quiesce,
    startup_phase,
    stream_phase,
    warm_up,
)
from procs import BenchError, free_port, raise_open_file_limit
from procstat import loadavg, machine
from report import print_report
from servers import (
    CHAT_DIALECTS,
    PYTHON,
    Server,
    ServerSpec,
    ab_worktree,
    chatmock_spec,
    check_imports_from,
    compile_tree,
    find_nginx,
    log_file_name,
    nginx_spec,
    peer_spec,
    start_fake,
    start_server,
    trio_relay_spec,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
PHASES = ("startup", "burst", "coalesced", "paced", "latency")


# --- set-up -----------------------------------------------------------------


def server_specs(args: argparse.Namespace, stack: contextlib.ExitStack, plan: Plan,
                 fake_port: int, home: Path, notes: list[str]) -> list[ServerSpec]:
    """nginx (the floor) first, then chatmock, the A/B commit and the peers."""
    specs = []
    nginx = None if args.no_nginx else find_nginx(args.nginx)
    if nginx:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nginx-")))
        specs.append(nginx_spec(nginx, root, fake_port, raise_open_file_limit()))
    else:
        notes.append("nginx " + ("left out (--no-nginx)" if args.no_nginx else
                                 "not found") + ": no byte-relay floor, no ratios to it")
    if args.trio_relay:
        specs.append(trio_relay_spec(fake_port))
    max_connections = max(plan.paced_streams, default=0) + 1000
    specs.append(chatmock_spec("chatmock", REPO, fake_port, home, max_connections))
    if args.ab:
        tree, short = ab_worktree(stack, REPO, args.ab)
        specs.append(chatmock_spec(f"chatmock@{short}", tree, fake_port, home,
                                   max_connections))
    for spec in specs:
        if spec.kind == "chatmock":
            check_imports_from(spec)
            compile_tree(spec)
    specs += [peer_spec(peer, fake_port, home) for peer in args.peer]
    return specs


def rotated(servers: list[Server], turn: int) -> list[Server]:
    shift = turn % len(servers)
    return servers[shift:] + servers[:shift]


# --- the run ----------------------------------------------------------------


class Run:
    """One bench run: the shared fake, the servers, and the phases in their order."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args, self.stack = args, stack
        self.plan = make_plan(args)
        self.wanted = set(args.phases)
        self.notes: list[str] = []
        self.turn = 0
        self.home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-home-")))
        _write_credentials(self.home)
        self.fake, self.fake_port = start_fake(stack, args.fake, LOGS, REPO)
        self.specs = server_specs(args, stack, self.plan, self.fake_port, self.home, self.notes)
        self.servers: list[Server] = []

    def each(self, label: str, measure: Callable[[Server], dict[str, Any]],
             **fields: Any) -> dict[str, Any]:
        """One phase on every server, in this turn's order, each starting once the fake and
        the servers are idle. A paced phase gets a fresh, briefly warmed-up process of
        each server: its RSS per stream is then not hidden by a heap an earlier phase
        grew, and no backlog of an overloaded earlier phase is still being worked off."""
        phase(label)
        results = {}
        for server in rotated(self.servers, self.turn):
            if fields.get("kind") == "paced":
                server = self.fresh(server)
            quiesce([self.fake.pid, *(s.pid for s in self.servers)])
            results[server.name] = measure(server)
        self.turn += 1
        order = [server.name for server in self.servers]
        return {"label": label, **fields, "results": {n: results[n] for n in order}}

    def fresh(self, server: Server) -> Server:
        """A new process of `server`, warmed up with a few chat streams, in its place."""
        server.child.stop()
        new = start_server(self.stack, server.spec, free_port(), LOGS)
        warm_up(self.stack, LOGS, new, self.plan, dialects=(new.spec.dialect("chat"),))
        self.servers[self.servers.index(server)] = new
        return new

    def run(self) -> dict[str, Any]:
        started, plan, stack = time.monotonic(), self.plan, self.stack
        result: dict[str, Any] = {"plan": plan.__dict__, "phases": [],
                                  "fake": self.args.fake, "notes": self.notes}
        if "startup" in self.wanted:
            phase("startup")
            result["startup"] = startup_phase(LOGS, self.specs, plan.startup_runs)
        for spec in self.specs:
            self.servers.append(start_server(stack, spec, free_port(), LOGS))
        for server in self.servers:
            phase(f"warm-up {server.name}")
            self.notes += warm_up(stack, LOGS, server, plan)
        result["idle"] = {server.name: idle_phase(server) for server in self.servers}
        result["phases"] = self.measured_phases()
        if "latency" in self.wanted:
            phase(f"latency, {plan.latency_requests} requests each")
            result["latency"] = latency_phase(stack, LOGS, self.servers, self.fake_port, plan)
        paced = [p for p in result["phases"] if p["kind"] == "paced"]
        result["capacity"] = {s.name: capacity([p["results"][s.name] for p in paced])
                              for s in self.servers} if paced else {}
        for server in self.servers:
            server.child.stop()
        result["servers"] = {s.name: {"kind": s.spec.kind, "command": s.spec.command,
                                      "log": log_findings(s)} for s in self.servers}
        result["seconds"] = round(time.monotonic() - started, 1)
        return result

    def measured_phases(self) -> list[dict[str, Any]]:
        return [self.each(label, measure, **fields) for label, measure, fields in self.plans()]

    def plans(self) -> Iterator[tuple[str, Callable[[Server], dict[str, Any]], dict[str, Any]]]:
        """(label, measurement of one server, fields) of every measured phase, in order."""
        plan = self.plan
        stream = partial(stream_phase, self.stack, LOGS, fake=self.fake, plan=plan)
        paced = partial(paced_phase, self.stack, LOGS, fake=self.fake, plan=plan)
        if "burst" in self.wanted:
            for dialect in CHAT_DIALECTS:
                yield (f"burst {dialect}", partial(stream, dialect=dialect),
                       {"kind": "burst", "dialect": dialect})
        if "coalesced" in self.wanted:
            yield ("coalesced chat (extra: old framing)",
                   partial(stream, dialect="chat", coalesce=True),
                   {"kind": "coalesced", "dialect": "chat"})
        if "paced" in self.wanted:
            for delay in plan.paced_delays_ms:
                for streams in plan.paced_streams:
                    yield (f"paced {delay:g} ms N={streams}",
                           partial(paced, streams=streams, delay_ms=delay),
                           {"kind": "paced", "delay_ms": delay, "streams": streams})


def log_findings(server: Server) -> dict[str, Any]:
    """Counts of worrying lines in a server's stderr, and the first few of them."""
    path = LOGS / f"{log_file_name(server.name)}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    bad = [line for line in text.splitlines() if re.search(
        r"Traceback| ERROR | CRITICAL | WARNING |\[(warn|error|crit|alert|emerg)\]|panic:", line)]
    return {"worrying_lines": len(bad), "tracebacks": text.count("Traceback"),
            "first": bad[:5], "log": str(path.relative_to(REPO))}


def _write_credentials(home: Path) -> None:
    sys.path.insert(0, str(REPO))
    from chatmock.testing.credentials import write_auth_file

    write_auth_file(home)


def phase(name: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)


# --- command line -----------------------------------------------------------


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    return Plan(connections=args.connections,
                stream_deltas=args.stream_deltas or (50_000 if quick else 200_000),
                deltas_per_request=1000, warm_up_requests=2 if quick else 6,
                latency_requests=args.latency_requests or (300 if quick else 2000),
                latency_warmup=50,
                paced_streams=args.paced_streams or ((100, 500) if quick else
                                                     (100, 500, 1000, 2000)),
                paced_delays_ms=args.paced_delays or (20.0, 100.0),
                paced_seconds=args.paced_seconds or (3.0 if quick else 10.0),
                start_rate=args.start_rate,
                startup_runs=args.startup_runs or (3 if quick else 5),
                history_kib=args.paced_history_kib)


def numbers(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    return lambda text: tuple(kind(part) for part in text.split(",") if part)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--quick", action="store_true", help="smaller numbers (paced N=100,500 for 3 s)")
    add("--phases", type=lambda t: tuple(t.split(",")), default=PHASES,
        help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    add("--connections", type=int, default=16, help="connections of the burst phases")
    add("--stream-deltas", type=int, help="deltas per burst phase (default 200000, quick 50000)")
    add("--paced-streams", type=numbers(int), help="default 100,500,1000,2000 (quick 100,500)")
    add("--paced-delays", type=numbers(float), help="ms between events, default 20,100")
    add("--paced-seconds", type=float, help="length of a paced stream (default 10, quick 3)")
    add("--start-rate", type=float, default=1000.0, help="paced streams started per second")
    add("--paced-history-kib", type=int, default=0,
        help="earlier turns, about this many KiB, sent with every paced request")
    add("--latency-requests", type=int, help="per target (default 2000, quick 300)")
    add("--startup-runs", type=int, help="default 5, quick 3")
    add("--nginx", help="the nginx binary (default: nginx on PATH or /usr/sbin/nginx)")
    add("--no-nginx", action="store_true", help="leave the byte-relay floor out")
    add("--trio-relay", action="store_true",
        help="also run bench/trio_relay.py, the byte relay in Python and trio")
    add("--ab", metavar="REV", help="also run the chatmock of commit REV (a git worktree)")
    add("--peer", action="append", default=[], metavar="NAME=COMMAND",
        help="another server; COMMAND may use {port} {upstream} {fake} {home} {host}")
    add("--fake", choices=("bench", "testing"), default="bench",
        help="bench/fakeserver.py (default) or chatmock.testing.fake_upstream")
    add("--out", type=Path, default=OUT / "latest.json")
    args = parser.parse_args(argv)
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return args


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
            result = {"command": command, "mode": "quick" if args.quick else "full",
                      "machine": info, **Run(args, stack).run()}
        except BenchError as exc:
            print(f"bench failed: {exc} (logs in {LOGS})", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            # A second Ctrl-C must not cut the clean-up short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("interrupted: stopping the bench processes", file=sys.stderr)
            return 130
    result["machine"]["loadavg_at_end"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
