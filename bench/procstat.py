"""Readings from /proc about the bench's processes and the machine.

Everything is read from outside the measured process, so measuring costs it
nothing. CPU times come in clock ticks (`SC_CLK_TCK`, usually 100 a second),
which is why the timed phases last seconds, not milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procs import BenchError

CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of `pid` in seconds: fields 14 and 15 of /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a server may run worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(current := todo.pop())
        todo += children.get(current, [])
    return tree


def tree_cpu_times(pids: list[int]) -> tuple[float, float]:
    """(utime, stime) summed over `pids`; a process that exited meanwhile counts 0."""
    user = system = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            u, s = cpu_times(pid)
            user, system = user + u, system + s
    return user, system


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def tree_rss_kib(pids: list[int]) -> int:
    return _tree_sum(pids, rss_kib)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def tree_open_fds(pids: list[int]) -> int:
    return _tree_sum(pids, open_fds)


def _tree_sum(pids: list[int], reading: Callable[[int], int]) -> int:
    """`reading` summed over `pids`; a process that exited meanwhile counts 0."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += reading(pid)
    return total


def machine_busy_seconds() -> float:
    """CPU time all CPUs of the machine spent busy since boot (/proc/stat, first line)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK  # minus idle and iowait


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


class Meter:
    """CPU of a server (its process tree) and the fake over one phase, and of everything
    else on the machine.

    `other_cpu_cores` is machine busy time minus the bench's own processes, per wall
    second: near 0 on a quiet machine; 0.5 means another job took half a core.
    """

    def __init__(self, server_pid: int, fake_pid: int) -> None:
        self.pids = process_tree(server_pid)
        self.fake = fake_pid
        self.wall = time.monotonic()
        self.busy = machine_busy_seconds()
        self.mine = resource.getrusage(resource.RUSAGE_SELF)
        self.user, self.sys = tree_cpu_times(self.pids)
        self.fake_cpu = cpu_seconds(fake_pid)

    def stop(self, loadgen_cpu: float | None) -> dict[str, Any]:
        """Readings since construction; `loadgen_cpu` (if known) enables `other_cpu_cores`."""
        user, sys_ = tree_cpu_times(self.pids)
        user, sys_ = user - self.user, sys_ - self.sys
        fake_cpu = cpu_seconds(self.fake) - self.fake_cpu
        wall = time.monotonic() - self.wall
        readings: dict[str, float | None] = {
            "server_cpu_seconds": round(user + sys_, 3),
            "server_user_seconds": round(user, 3), "server_sys_seconds": round(sys_, 3),
            "fake_cpu_seconds": round(fake_cpu, 3), "wall_seconds": round(wall, 3)}
        if loadgen_cpu is not None:
            mine = resource.getrusage(resource.RUSAGE_SELF)
            runner = (mine.ru_utime - self.mine.ru_utime) + (mine.ru_stime - self.mine.ru_stime)
            other = (machine_busy_seconds() - self.busy - user - sys_ - fake_cpu - loadgen_cpu
                     - runner)
            readings["other_cpu_cores"] = round(max(0.0, other) / wall, 2) if wall else None
        return readings


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_model": model[1] if model else "?",
            "python": platform.python_version(), "kernel": platform.release(),
            "loadavg_at_start": loadavg(),
            "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "chatmock_commit": _git("rev-parse", "HEAD"),
            "chatmock_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), *args],
                              capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return done.stdout.strip()
