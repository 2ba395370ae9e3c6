"""One task that carries every quiet relayed stream of the process (issue 13).

A paced stream gets one backend event at a time. Carried by its own task, each
event costs a trio wake-up: the task's wait re-armed in trio's epoll (two
`epoll_ctl`), a cancel scope for the bounded wait, the resume through the await
chain and a pass of the run loop, about as much as the translation itself.

The hub removes that per-event machinery. It owns a level-triggered
`select.epoll` in which each parked stream's backend socket is registered once,
and waits for that epoll's descriptor with one `wait_readable`. Woken, it asks
the epoll (without waiting) for every ready socket and calls the stream's `step`
for each, synchronously, on the hub's task: the step reads, translates and writes
without ever awaiting (`routes/relay.py` supplies it). A step that cannot go on
without waiting (the client's socket is full, the stream ended, anything
unusual) returns what it has; the hub unregisters the socket and wakes the
stream's own task with it. So a stream costs its task one wait for all its
events, not one per event, and the hub one wake-up per batch of ready streams.

Timers stay with the streams: `park` takes a deadline (the heartbeat or the read
timeout) and returns None when it passes; the hub notes in `Parked.active_at` when
it last stepped a stream, so the task can tell a silent backend from one whose
events the hub carried meanwhile, and park again. The task is parked with
`wait_task_rescheduled`: a cancellation (the client left, a drain) removes it
from the hub at once. The deadlines wait in one heap, watched by one timer task
with one cancel scope (`_time`): a cancel scope per parked stream held ~0.7 KiB
for the stream's whole life (its `CancelStatus` has two sets), and cost its
creation and teardown at every stay.

The hub is per trio run (`RunVar`), started on first use as a system task, and
can be turned off for an A/B with `CHATMOCK_RELAY_HUB=0`.
"""

from __future__ import annotations

import heapq
import math
import os
import select
from collections.abc import Callable
from contextlib import suppress

import outcome
import trio

ENV_SWITCH = "CHATMOCK_RELAY_HUB"
LINGER_SWITCH = "CHATMOCK_RELAY_LINGER_MS"
DEFAULT_LINGER_MS = "5"
BATCH = 256  # ready sockets stepped per wake-up before other tasks get their turn

Step = Callable[[], object]


def linger_seconds() -> float:
    """How long the hub waits, after a pass that found events, before it looks again
    (`CHATMOCK_RELAY_LINGER_MS`, default 5; 0: wait for the next event at once)."""
    try:
        return max(0.0, float(os.environ.get(LINGER_SWITCH, DEFAULT_LINGER_MS))) / 1000
    except ValueError:
        return float(DEFAULT_LINGER_MS) / 1000


def enabled() -> bool:
    """Whether streams may be carried by the hub (`CHATMOCK_RELAY_HUB=0` turns it off)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


class Parked:
    """One stream as the hub knows it: its backend socket's descriptor and its step.

    `step` runs on the hub's task when the socket is readable; it must not await,
    and returns None to stay parked or anything else to wake the stream's task
    with it (an exception it raises is raised in that task instead)."""

    __slots__ = ("active_at", "deadline", "fd", "step", "task")

    def __init__(self, fd: int, step: Step) -> None:
        self.fd = fd
        self.step = step
        self.active_at = trio.current_time()
        self.deadline = math.inf  # of the current stay
        self.task: trio.lowlevel.Task | None = None


class RelayHub:
    """The process's hub (module docstring); `hub()` gives the current run's."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._parked: dict[int, Parked] = {}
        self._running = False
        # (deadline, descriptor) of every stay, stale ones included (dropped when they
        # come due, or all at once when they outnumber the parked streams); the timer
        # task's scope, whose deadline is the earliest.
        self._deadlines: list[tuple[float, int]] = []
        self._alarm = trio.CancelScope()
        self.wakes = 0  # wake-ups, and the ready sockets they found: the batch size
        self.stepped = 0

    @property
    def parked(self) -> int:
        """How many streams the hub carries now."""
        return len(self._parked)

    async def park(self, entry: Parked, deadline: float) -> object | None:
        """Hand the stream to the hub until its step returns something (returned here)
        or raises (raised here); None once `deadline` passed first."""
        if not self._running:
            self._running = True
            trio.lowlevel.spawn_system_task(self._run, name="chatmock relay hub")
            trio.lowlevel.spawn_system_task(self._time, name="chatmock relay hub timer")
        self._epoll.register(entry.fd, select.EPOLLIN)
        self._parked[entry.fd] = entry
        entry.task = trio.lowlevel.current_task()
        self._set_alarm(entry, deadline)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._drop(entry)
            return trio.lowlevel.Abort.SUCCEEDED

        result: object = await trio.lowlevel.wait_task_rescheduled(abort)
        return result

    def _set_alarm(self, entry: Parked, deadline: float) -> None:
        entry.deadline = deadline
        deadlines = self._deadlines
        if len(deadlines) > 2 * len(self._parked) + 64:  # mostly stale: keep the live ones
            deadlines[:] = [(parked.deadline, fd) for fd, parked in self._parked.items()
                            if parked is not entry]
            heapq.heapify(deadlines)
        heapq.heappush(deadlines, (deadline, entry.fd))
        if deadline < self._alarm.deadline:
            self._alarm.deadline = deadline

    async def _time(self) -> None:
        """Hand None back to every parked stream whose deadline passed."""
        deadlines, parked = self._deadlines, self._parked
        while True:
            with trio.CancelScope(deadline=deadlines[0][0] if deadlines else math.inf) as alarm:
                self._alarm = alarm
                await trio.sleep_forever()
            now = trio.current_time()
            while deadlines and deadlines[0][0] <= now:
                deadline, fd = heapq.heappop(deadlines)
                entry = parked.get(fd)
                if entry is not None and entry.deadline == deadline:
                    self._wake(entry, outcome.Value(None))

    def _drop(self, entry: Parked) -> None:
        """Take the stream out of the hub (also from trio's abort callback, which must
        not raise: a descriptor somebody closed meanwhile has left the epoll already)."""
        if self._parked.pop(entry.fd, None) is entry:
            with suppress(OSError, ValueError):
                self._epoll.unregister(entry.fd)
        entry.task = None

    def _wake(self, entry: Parked, result: outcome.Outcome[object]) -> None:
        task = entry.task
        self._drop(entry)
        if task is not None:
            trio.lowlevel.reschedule(task, result)

    async def _run(self) -> None:
        """Wait for any parked socket to be readable; step every ready one.

        After a pass that found events the hub lingers (`linger_seconds`) before it looks
        again, and keeps going while each look finds events: under load one wake-up then
        steps every event that arrived meanwhile, instead of one wake-up per event or two
        (each costs trio's scheduling, ~25 us of Python). An event waits at most the
        linger; a model's tokens come tens of milliseconds apart. Only a look that finds
        nothing returns the hub to waiting on its epoll."""
        epoll, parked = self._epoll, self._parked
        poll, fd_of_epoll = epoll.poll, epoll.fileno()
        wait_readable, clock, sleep = trio.lowlevel.wait_readable, trio.current_time, trio.sleep
        linger = linger_seconds()
        try:
            while True:
                await wait_readable(fd_of_epoll)
                while ready := poll(0, BATCH):
                    self._step_all(ready, clock())
                    if not linger:
                        break
                    await sleep(linger)
        finally:
            for entry in list(parked.values()):
                self._wake(entry, outcome.Error(trio.ClosedResourceError("relay hub closed")))
            epoll.close()

    def _step_all(self, ready: list[tuple[int, int]], now: float) -> None:
        """One pass: call the step of every ready stream (on the hub's task)."""
        parked = self._parked
        self.wakes += 1
        self.stepped += len(ready)
        for fd, _ in ready:
            entry = parked.get(fd)
            if entry is None:
                continue
            entry.active_at = now
            try:
                result = entry.step()
            except Exception as exc:  # the stream's failure, raised in its own task
                self._wake(entry, outcome.Error(exc))
                continue
            if result is not None:
                self._wake(entry, outcome.Value(result))

_HUB: trio.lowlevel.RunVar[RelayHub] = trio.lowlevel.RunVar("chatmock_relay_hub")


def figures() -> dict[str, object]:
    """For `/health`: whether the hub is on, the streams it carries now, and since the
    start its wake-ups and the reads it stepped (their ratio: reads per wake-up)."""
    try:
        found: RelayHub | None = _HUB.get()
    except LookupError:
        found = None
    return {"enabled": enabled(), "parked": found.parked if found else 0,
            "wakes": found.wakes if found else 0, "stepped": found.stepped if found else 0}


def hub() -> RelayHub | None:
    """The current trio run's hub, made on first use; None when turned off."""
    if not enabled():
        return None
    try:
        found = _HUB.get()
    except LookupError:
        found = RelayHub()
        _HUB.set(found)
    return found
