"""Child processes of the bench: started with their stderr in a log, always stopped.

`spawn` registers every child on an ExitStack, so an exception or Ctrl-C in the
runner stops them all (SIGTERM, then SIGKILL after a grace period), newest first.
"""

from __future__ import annotations

import contextlib
import queue
import resource
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"


class BenchError(Exception):
    """A phase could not run (a process died, a deadline passed)."""


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[str]
    lines: queue.Queue[str | None] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def next_line(self, timeout: float) -> str:
        """The next stdout line; raises BenchError on EOF or after `timeout` seconds."""
        line = self.poll_line(timeout)
        if line is None:
            raise BenchError(f"{self.name}: no output within {timeout:g} s")
        return line

    def poll_line(self, timeout: float) -> str | None:
        """The next stdout line, None if none came within `timeout` seconds; raises
        BenchError on EOF."""
        assert self.lines is not None
        try:
            line = self.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if line is None:
            raise BenchError(f"{self.name} exited (status {self.popen.wait()})")
        return line

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; safe to call twice."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def spawn(stack: contextlib.ExitStack, name: str, argv: Sequence[str], *, logs: Path,
          cwd: Path, env: dict[str, str] | None = None, read_stdout: bool = False,
          write_stdin: bool = False) -> Child:
    """Start a child whose stderr goes to `logs`/<name>.log; stopped when `stack` closes."""
    log = stack.enter_context((logs / f"{name}.log").open("a"))
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE if read_stdout else subprocess.DEVNULL,
                             stdin=subprocess.PIPE if write_stdin else subprocess.DEVNULL,
                             stderr=log, env=env, text=True, cwd=cwd)
    child = Child(name, popen)
    stack.callback(child.stop)
    if read_stdout:
        assert popen.stdout is not None
        child.lines = queue.Queue()
        threading.Thread(target=_pump, args=(popen.stdout, child.lines), daemon=True).start()
    return child


def raise_open_file_limit() -> int:
    """Soft NOFILE limit up to the hard one, here and (inherited) in every child."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
