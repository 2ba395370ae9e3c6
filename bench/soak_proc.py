"""What the soak reads about chatmock from outside: its RSS, its descriptors by kind, the
fake backend's stream counters, its log, and the least-squares slope of a series.

Descriptors are split by what they are: `clients` (TCP connections to chatmock's port),
`upstream` (TCP connections to the fake backend: the pool) and `other` (the listener,
files, the SQLite store, epoll, pipes). A socket's ports come from /proc/net/tcp{,6},
matched by inode.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procstat import rss_kib
from soak_http import Client, request_bytes

LISTEN = "0A"


@dataclass(frozen=True)
class Sample:
    t: float
    """Seconds since the traffic started."""
    rss_kib: int
    fds: int
    clients: int
    upstream: int
    other: int
    fake_open: int


def tcp_sockets() -> dict[int, tuple[int, int, str]]:
    """inode -> (local port, remote port, state) of every TCP socket in this namespace."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
            found[int(fields[9])] = (local, remote, fields[3])
    return found


def fd_kinds(pid: int, port: int, fake_port: int) -> Counter[str]:
    """chatmock's descriptors: clients, upstream, other (see the module docstring)."""
    sockets = tcp_sockets()
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        local, remote, state = sockets.get(int(target[8:-1]), (0, 0, "")) \
            if target.startswith("socket:[") else (0, 0, "")
        if local == port and state != LISTEN:
            kinds["clients"] += 1
        elif remote == fake_port:
            kinds["upstream"] += 1
        else:
            kinds["other"] += 1
    return kinds


def other_fds(pid: int, port: int, fake_port: int) -> list[str]:
    """What the `other` descriptors are (sockets by state and ports), to tell which one
    stayed open."""
    sockets, found = tcp_sockets(), []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            local, remote, state = sockets.get(int(target[8:-1]), (0, 0, "?"))
            if (local == port and state != LISTEN) or remote == fake_port:
                continue
            target = f"tcp {local}->{remote} state {state}" if state != "?" else "socket"
        found.append(f"{fd}: {target}")
    return found


async def fake_counters(fake_port: int) -> dict[str, int]:
    """The fake's `GET /__fake__/streams`: open, completed, abandoned."""
    client = await Client.connect(fake_port)
    try:
        await client.send(request_bytes(fake_port, "GET", "/__fake__/streams",
                                        content_type=None))
        found: dict[str, int] = (await client.reply()).json()
    finally:
        await client.aclose()
    return found


async def sample(t: float, pid: int, port: int, fake_port: int) -> Sample:
    kinds = fd_kinds(pid, port, fake_port)
    return Sample(round(t, 1), rss_kib(pid), sum(kinds.values()), kinds["clients"],
                  kinds["upstream"], kinds["other"], (await fake_counters(fake_port))["open"])


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour (0 with fewer than 2)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx * 3600 if sxx else 0.0


def log_findings(path: Path) -> dict[str, Any]:
    """Tracebacks, ERROR/CRITICAL and WARNING lines of chatmock's log (stderr)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    bad = [line for line in lines if re.search(r"Traceback| ERROR | CRITICAL ", line)]
    warnings = Counter(_shape(line) for line in lines if " WARNING " in line)
    return {"tracebacks": text.count("Traceback"), "error_lines": len(bad), "first": bad[:5],
            "warnings": sum(warnings.values()), "warning_kinds": dict(warnings.most_common(8)),
            "log": str(path)}


def _shape(line: str) -> str:
    """A warning without its timestamp and numbers, to count alike ones together."""
    return re.sub(r"\d+", "N", line.split(" WARNING ", 1)[1])[:120]
