"""The human-readable table of a bench result (the JSON holds everything).

One column per server, in the run's order (nginx, chatmock, the A/B commit, peers).
A chatmock or peer figure is followed by its ratio to nginx's figure from the same
phase (`2.10x ng`), and with `--ab` chatmock's also by its ratio to the other
commit's (`0.95x @abc1234`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

NOISY_CORES = 0.1
"""Other programs using more than this (in cores) during a phase earn a warning."""
FLOOR = "nginx"

Figure = Callable[[dict[str, Any]], float | None]


def num(value: float | None, spec: str = ".2f") -> str:
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else format(value, spec)


class Table:
    def __init__(self, result: dict[str, Any]) -> None:
        self.names = list(result["servers"])
        self.ab = next((n for n in self.names if n.startswith("chatmock@")), None)
        self.rows: list[tuple[str, list[str]]] = []

    def ratios(self, name: str, values: dict[str, float | None]) -> str:
        """`value (r x ng, r x @ref)` for one server's cell."""
        value = values.get(name)
        notes = []
        if name != FLOOR and self._ratio(value, values.get(FLOOR)):
            notes.append(f"{self._ratio(value, values.get(FLOOR))}x ng")
        if name == "chatmock" and self.ab and self._ratio(value, values.get(self.ab)):
            notes.append(f"{self._ratio(value, values.get(self.ab))}x @{self.ab[9:]}")
        return num(value) + (f" ({', '.join(notes)})" if notes else "")

    @staticmethod
    def _ratio(value: float | None, floor: float | None) -> str:
        return f"{value / floor:.2f}" if value is not None and floor and floor > 0 else ""

    def compared(self, label: str, results: dict[str, dict[str, Any]], figure: Figure) -> None:
        """A row of one figure per server, with ratios."""
        values = {name: figure(results[name]) if name in results else None
                  for name in self.names}
        self.rows.append((label, [self.ratios(name, values) for name in self.names]))

    def plain(self, label: str, cell: Callable[[str], str]) -> None:
        self.rows.append((label, [cell(name) for name in self.names]))

    def print(self) -> None:
        header = ("", self.names)
        rows = [header, *self.rows]
        first = max(len(label) for label, _ in rows)
        widths = [max(len(cells[i]) for _, cells in rows) for i in range(len(self.names))]
        for label, cells in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            print(f"  {label:<{first}}  {line}".rstrip())


def errors_of(results: dict[str, dict[str, Any]], name: str) -> str:
    errors = results.get(name, {}).get("errors")
    return str(errors) if errors else "0"


def stream_rows(table: Table, phase: dict[str, Any]) -> None:
    results = phase["results"]
    table.compared(f"{phase['label']}: CPU ms / 1k deltas", results,
                   lambda r: r["cpu_ms_per_1k_deltas"])
    table.plain("  user / sys ms, errors", lambda n: user_sys(results.get(n))
                + f", {errors_of(results, n)}")


def user_sys(result: dict[str, Any] | None) -> str:
    if not result:
        return "-"
    return f"{num(result['user_ms_per_1k_deltas'])} / {num(result['sys_ms_per_1k_deltas'])}"


def paced_rows(table: Table, phase: dict[str, Any]) -> None:
    results = phase["results"]
    table.compared(f"{phase['label']}: CPU ms / 1k deltas", results,
                   lambda r: r["cpu_ms_per_1k_deltas"])
    table.plain("  user / sys ms", lambda n: user_sys(results.get(n)))
    table.plain("  open at once / N (all started in s)", lambda n: f"{r['peak_open']} / "
                f"{r['streams']} ({r['start_seconds']:.2f})" if (r := results.get(n)) else "-")
    table.compared("  TTFC p50 ms", results, lambda r: r["ttfc_ms"].get("p50"))
    table.compared("  TTFC p99 ms", results, lambda r: r["ttfc_ms"].get("p99"))
    table.compared("  RSS per open stream KiB", results, lambda r: r["rss_per_open_stream_kib"])
    table.plain("  errors", lambda n: errors_of(results, n))
    table.plain("  fake / loadgen ms / 1k deltas", lambda n: f"{num(r['fake_ms_per_1k_deltas'])}"
                f" / {num(r['loadgen_ms_per_1k_deltas'])}" if (r := results.get(n)) else "-")


def figure_at(key: str) -> Figure:
    return lambda values: values.get(key)


def summary_rows(table: Table, result: dict[str, Any]) -> None:
    for delay in sorted({key for c in result.get("capacity", {}).values() for key in c},
                        key=float):
        table.compared(f"largest N, 0 errors, TTFC p99 < 1 s ({delay} ms)",
                       result["capacity"], figure_at(delay))
    latency = result.get("latency")
    if latency:
        targets = latency["targets"]
        table.compared("added latency p50 ms", targets, lambda t: t["added_ms"]["p50"])
        table.compared("added latency p99 ms", targets, lambda t: t["added_ms"]["p99"])
    if "startup" in result:
        table.compared("start-up to first /health ms", result["startup"],
                       lambda s: s["median_ms"])
    table.compared("idle RSS MiB", result["idle"], lambda i: round(i["rss_kib"] / 1024, 1))


def print_noise(result: dict[str, Any]) -> None:
    """Say how much CPU other programs took during the timed phases."""
    other = [r.get("other_cpu_cores") for p in result["phases"] for r in p["results"].values()]
    found = [value for value in other if value is not None]
    if not found:
        return
    print(f"\nother programs' CPU during the phases: {min(found):.2f} to {max(found):.2f} "
          f"cores (median {sorted(found)[len(found) // 2]:.2f}); loadavg at start "
          f"{' '.join(result['machine']['loadavg_at_start'])}, at end "
          f"{' '.join(result['machine'].get('loadavg_at_end', ['?']))}")
    if max(found) > NOISY_CORES:
        print(f"  warning: more than {NOISY_CORES} of a core went to other programs in some "
              "phases; rely on the ratios (wall-clock figures suffer most)")


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\ncommand: {result['command']}")
    print(f"machine: {m['nproc']} CPUs, {m['cpu_model']}, Python {m['python']}, "
          f"kernel {m['kernel']}")
    print(f"chatmock: {m['chatmock_commit'][:12]}{' (dirty)' if m['chatmock_dirty'] else ''}"
          f"  mode: {result['mode']}  fake: {result['fake']}  total {result['seconds']:.0f} s")
    for note in result["notes"]:
        print(f"note: {note}")
    print()
    table = Table(result)
    for phase in result["phases"]:
        (paced_rows if phase["kind"] == "paced" else stream_rows)(table, phase)
    summary_rows(table, result)
    table.print()
    print_noise(result)
    print("\nservers:")
    for name, server in result["servers"].items():
        log = server["log"]
        print(f"  {name}: {server['command']}\n    stderr: {log['worrying_lines']} warning/error "
              f"lines, {log['tracebacks']} tracebacks ({log['log']})")
        for line in log["first"]:
            print(f"      {line[:160]}")
    print("\nload-generator commands (PORT: the server's):")
    for phase in result["phases"]:
        commands = {re.sub(r"--port \d+", "--port PORT", r["command"]): None
                    for r in phase["results"].values()}
        for command in commands:
            print(f"  {phase['label']}: {command}")
    if "latency" in result:
        print(f"  latency: {result['latency']['command']}")
