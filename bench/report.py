"""The human-readable table of a bench result (the JSON holds everything)."""

from __future__ import annotations

from typing import Any

NOISY_CORES = 0.1
"""Other programs using more than this (in cores) during a phase earn a warning."""


def stream_phases(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The streaming phases (`stream_*` keys) in run order, by their short label:
    `burst=50` for chat, `responses burst=50` for another dialect."""
    phases = {}
    for key, phase in r.items():
        if key.startswith("stream_") and isinstance(phase, dict):
            dialect = phase.get("dialect", "chat")
            prefix = "" if dialect == "chat" else f"{dialect} "
            phases[f"{prefix}burst={phase['burst']}"] = phase
    return phases


def report_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    hold, lat = r["hold"], r["latency"]
    capacity = (f"{hold['open_at_release']}/{hold['target']} open, "
                f"errors {hold['errors'] or 0}")
    streams = [(f"server CPU / 1k deltas, {label}", f"{num(s['cpu_ms_per_1k_deltas'])} ms"
                f"  ({s['deltas']:,} deltas, {s['deltas_per_second']:,}/s, errors "
                f"{s['errors'] or 0})") for label, s in stream_phases(r).items()]
    return [
        *streams,
        ("server CPU / 1k deltas, held streams", f"{num(hold['held_cpu_ms_per_1k_deltas'])} ms"
         f"  ({hold['held_deltas']:,} deltas over {hold['held_seconds']:g} s, one event "
         f"every {hold['delay_ms']:g} ms per stream)"),
        ("idle RSS", f"{r['idle']['rss_kib'] / 1024:.1f} MiB  (idle CPU "
         f"{r['idle']['cpu_ms_per_second']} ms/s)"),
        ("RSS per open stream", f"{num(hold['rss_per_stream_kib'], '.1f')} KiB  "
         f"(N={hold['open_when_ramped']}, {hold['rss_before_kib'] / 1024:.1f} -> "
         f"{hold['rss_with_streams_kib'] / 1024:.1f} MiB)"),
        ("open-stream capacity", capacity + f"  (ramp {hold['ramp_seconds']} s, closed "
         f"{hold['release_seconds']} s after release)"),
        ("added latency p50 / p99", f"{num(lat['added_ms']['p50'])} / "
         f"{num(lat['added_ms']['p99'])} ms  (chatmock {_pair(lat['chatmock_ms'])}, "
         f"fake direct {_pair(lat['fake_direct_ms'])}, errors {_errors(lat['errors'])})"),
        ("startup to first /health 200", f"{r['startup']['median_ms']:.0f} ms  (median of "
         f"{len(r['startup']['runs_ms'])})"),
    ]


def _pair(ms: dict[str, float]) -> str:
    return f"{num(ms.get('p50'))}/{num(ms.get('p99'))}"


def _errors(by_target: dict[str, dict[str, int]]) -> str:
    return str({k: v for k, v in by_target.items() if v} or 0)


def num(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_noise(result: dict[str, Any]) -> None:
    """Say how much CPU other programs took during the timed phases."""
    phases = {**stream_phases(result), "latency": result["latency"]}
    other = {name: phase.get("other_cpu_cores") for name, phase in phases.items()}
    print("\nother programs' CPU during the phases (cores): "
          + ", ".join(f"{name} {num(value)}" for name, value in other.items()))
    if any(value is not None and value > NOISY_CORES for value in other.values()):
        print(f"  warning: more than {NOISY_CORES} of a core went to other programs; "
              "rerun on a quiet machine (wall-clock figures suffer most)")


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\ncommand: {result['command']}")
    print(f"machine: {m['nproc']} CPUs, {m['cpu_model']}, Python {m['python']}, "
          f"kernel {m['kernel']}, loadavg at start {' '.join(m['loadavg_at_start'])}")
    print(f"chatmock: {m['chatmock_commit'][:12]}{' (dirty)' if m['chatmock_dirty'] else ''}"
          f"  mode: {result['mode']}  total {result['seconds']:.0f} s\n")
    rows = report_rows(result)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print_noise(result)
    findings = result["chatmock_log"]
    print(f"\nchatmock stderr: {findings['worrying_lines']} warning/error lines, "
          f"{findings['tracebacks']} tracebacks ({findings['log']})")
    for line in findings["first"]:
        print(f"  {line[:160]}")
