"""`serve --workers N`: N server processes on one port, and the supervisor that keeps them.

One trio loop uses one core; under thousands of paced streams that core is the
limit (bench/RESULTS.md). N workers, each a whole server with its own event loop
and its own connections, use N cores.

**One bind, inherited.** The supervisor binds the listening sockets once, then
forks the workers, which all accept from those same sockets. The alternative,
SO_REUSEPORT (a socket per worker on one port), was set aside: the kernel hands
each connection to a socket by a hash of its addresses, blind to load, so a
worker busy with a burst keeps receiving its share while another idles, and the
connections queued on a worker's socket are reset when that worker dies. With
one shared queue a connection goes to whichever worker asks first -- the least
busy one, since a busy loop comes back to `accept` later -- and a dead worker
loses nothing queued: the others, and its successor, take it. The port also
stays bound while a worker restarts, and `--port 0` gives every worker the same
port.

**Forked, not spawned.** The supervisor forks after importing what serving needs
and before any thread or event loop exists, so a worker (and a restarted one)
starts in tens of milliseconds, and every worker runs the same code even if the
files on disk change meanwhile. Each worker builds its own app after the fork
(its SQLite writer thread, upstream pool, model sync).

**Lifecycle.** A worker that dies is restarted at once if it had run for
`STABLE_SECONDS`, else after a backoff that doubles per quick death (0.5 s up to
`MAX_BACKOFF`). One that exits with `EXIT_CONFIG` (a setting only the app could
check, such as an unreadable prompt file) will not do better the next time: the
supervisor stops the others and exits with that code. SIGTERM or SIGINT to the
supervisor closes its copy of the sockets and is forwarded to every worker,
which drains as a lone server does (a second signal, forwarded too, stops them at
once); the supervisor exits when all have stopped. Workers run in a process
group of their own, so a terminal's Ctrl-C reaches them once, through the
supervisor. A worker whose supervisor vanished (SIGKILL) sees the end of a pipe
the supervisor held open and drains by itself.

**Shared state** lives in files the workers already share: auth.json under its
lock (one refresh per token across processes, chatmock/auth/store.py), the
SQLite response store (WAL; a turn stored by one worker is found by another,
chatmock/state/response_store_sqlite.py), usage_limits.json (newest snapshot
wins, chatmock/state/usage_limits.py). Prompt-cache session ids are derived from
a key made before the fork, so every worker gives a conversation the same id
(chatmock/state/prompt_cache.py). Per process: the model catalog (each worker
syncs it), Ollama's `/api/ps` list, and the upstream connection pool.

**`/health` answers for the worker that took the connection**: its index, pid,
start time and how often its slot was restarted (`WorkerInfo`). A roster file
published by the supervisor was the alternative; it would be one more file to
keep fresh and to clean up, and a status that is always the answering process's
own cannot be stale.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatmock.worker import EXIT_CONFIG, WorkerInfo

log = logging.getLogger("chatmock.supervisor")

STABLE_SECONDS = 10.0
MAX_BACKOFF = 30.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)


@dataclass(frozen=True, slots=True)
class Inherited:
    """What a forked worker gets from its supervisor."""

    sockets: list[socket.socket]
    info: WorkerInfo
    supervisor_alive: int  # a pipe's read end: readable (EOF) once the supervisor is gone


RunWorker = Callable[[Inherited], int]
"""Serves until drained; returns the process's exit code."""


@dataclass(slots=True)
class _Slot:
    index: int
    starts: int = 0
    quick_deaths: int = 0
    started: float = 0.0
    due: float | None = 0.0  # when to start it next; None while it runs


class Supervisor:
    def __init__(self, count: int, sockets: list[socket.socket], run_worker: RunWorker, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        self.sockets = sockets
        self.run_worker = run_worker
        self.clock = clock
        self.slots = [_Slot(index) for index in range(count)]
        self.running: dict[int, _Slot] = {}  # pid -> slot
        self.stopping = False
        self.exit_code = 0
        self._mask: set[int | signal.Signals] = set()

    def run(self) -> int:
        """Start the workers, keep them, and return once they have all stopped."""
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        alive_read, alive_write = os.pipe()
        try:
            while self.running or not self.stopping:
                if not self.stopping:
                    self._start_due(alive_read, alive_write)
                received = signal.sigtimedwait(_SIGNALS, self._wait_seconds())
                if received is not None and received.si_signo != signal.SIGCHLD:
                    self._stop(signal.Signals(received.si_signo))
                self._reap()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            os.close(alive_read)
            os.close(alive_write)
            self._close_sockets()
        return self.exit_code

    def _wait_seconds(self) -> float:
        """Until the next restart is due (at most a second: reaping does not rely on
        SIGCHLD alone)."""
        waits = [slot.due - self.clock() for slot in self.slots if slot.due is not None]
        return max(0.0, min([1.0, *waits])) if not self.stopping else 1.0

    def _start_due(self, alive_read: int, alive_write: int) -> None:
        now = self.clock()
        for slot in self.slots:
            if slot.due is not None and slot.due <= now:
                self._start(slot, alive_read, alive_write)

    def _start(self, slot: _Slot, alive_read: int, alive_write: int) -> None:
        info = WorkerInfo(slot.index, self.count, slot.starts, os.getpid())
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's loop
            os._exit(self._worker(Inherited(self.sockets, info, alive_read), alive_write))
        slot.starts += 1
        slot.started, slot.due = self.clock(), None
        self.running[pid] = slot
        log.info("worker %d/%d started (pid %d)", slot.index + 1, self.count, pid)

    def _worker(self, inherited: Inherited, alive_write: int) -> int:
        code = 70  # EX_SOFTWARE, if the worker raises
        try:
            os.close(alive_write)
            os.setpgid(0, 0)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            code = self.run_worker(inherited)
        except BaseException:
            log.exception("worker %d failed", inherited.info.index + 1)
        finally:
            logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
        return code

    def _stop(self, signum: signal.Signals) -> None:
        """Stop accepting here, and pass the signal on (a second one too)."""
        if not self.stopping:
            log.info("%s received: draining %d workers", signum.name, len(self.running))
        self.stopping = True
        self._close_sockets()
        for pid in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.running.pop(pid, None)
            if slot is not None:
                self._ended(slot, pid, os.waitstatus_to_exitcode(status))

    def _ended(self, slot: _Slot, pid: int, code: int) -> None:
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else \
            f"exited with code {code}"
        if self.stopping:
            log.info("worker %d (pid %d) stopped", slot.index + 1, pid)
            return
        if code == EXIT_CONFIG:
            log.error("worker %d (pid %d) %s: stopping", slot.index + 1, pid, how)
            self.exit_code = EXIT_CONFIG
            self._stop(signal.SIGTERM)
            return
        lived = self.clock() - slot.started
        slot.quick_deaths = 0 if lived >= STABLE_SECONDS else slot.quick_deaths + 1
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (slot.quick_deaths - 1)) if slot.quick_deaths else 0
        slot.due = self.clock() + delay
        log.warning("worker %d (pid %d) %s after %.1f s; restarting it in %.1f s",
                    slot.index + 1, pid, how, lived, delay)

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()
