"""A provider gate whose limit holds across a fleet (`--state redis://...`, issue 16).

`FleetGate` is the local `Gate` (per-client round-robin among this process's
requests, `--queue-timeout`, the 429 with `Retry-After`) plus a lease in Redis
(`chatmock.state.gate_leases`): a request whose local turn came asks Redis for
one of the provider's `--max-concurrency` N fleet-wide permits, and holds the
local permit while it waits, so each process has at most N requests in the
fleet queue. Both waits share one deadline: `queue_timeout` from arrival.

Waiting for a fleet permit is polling rather than a pub/sub wake-up: the RESP
client pools its connections and has no subscriber mode (a subscribed
connection cannot carry commands), and a wake-up would still miss the permits
that free themselves when a dead process's lease expires. Each attempt answers
how many permits must come free before this request's turn (`ahead`); the next
attempt comes after `ahead` * 5 ms (jittered, at most 100 ms), or at once when a
permit is released in this process (its release travels in the same pipeline
as that attempt). So the head of the fleet queue notices a permit freed
elsewhere within about 5 ms, and requests far back cost little: only requests
holding a local permit poll, at most N per process.

Redis down: the gate falls back to counting in this process only (the local
gate's N), logs it once, and goes back to Redis as soon as an attempt answers.
Refusing every request while Redis is away would turn a state outage into a
full outage for requests that need no shared state (issue 16); the price is
that during the outage each process admits up to N, and leases taken before it
expire on their own (nothing to clean up afterwards). A Redis that stops answering
(rather than refusing connections) holds the first waiting requests up to the
client's timeout (5 s) or their own deadline, whichever comes first (a 429);
the client then fails fast during its backoff and the gate counts locally.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import replace

import trio

from chatmock.net.redis import RedisError
from chatmock.state.gate_leases import GateLeases
from chatmock.upstream.gate import Gate, GateBusy, GateStats, Permit
from chatmock.upstream.gate import gates as local_gates

log = logging.getLogger("chatmock.gate")

POLL_STEP = 0.005
POLL_CAP = 0.1


class FleetGate(Gate):
    """See the module docstring."""

    def __init__(self, provider: str, permits: int, *, queue_timeout: float,
                 leases: GateLeases, poll_step: float = POLL_STEP,
                 poll_cap: float = POLL_CAP) -> None:
        super().__init__(provider, permits, queue_timeout=queue_timeout)
        self.leases = leases
        self.poll_step = poll_step
        self.poll_cap = poll_cap
        self._leased: dict[Permit, str] = {}
        self._fleet_waiting = 0
        self._local_only = False
        self._freed = trio.Event()  # set when a leased permit is given back here

    async def acquire(self, client: str) -> Permit:
        deadline = trio.current_time() + self.queue_timeout
        permit = await super().acquire(client)
        try:
            holder = await self._lease(deadline)
        except BaseException:
            self._unused(permit)
            raise
        if holder is None:
            self._unused(permit)
            self._timed_out += 1
            raise GateBusy(self.provider, "queue_timeout", self.retry_after())
        if holder:
            self._leased[permit] = holder
        return permit

    def stats(self) -> GateStats:
        scope = "process (Redis unavailable)" if self._local_only else "fleet"
        return replace(super().stats(), scope=scope, fleet_waiting=self._fleet_waiting)

    async def _lease(self, deadline: float) -> str | None:
        """A fleet lease's holder id; '' when Redis cannot answer (local only); None
        when the deadline passed first."""
        holder = self.leases.holder()
        self._fleet_waiting += 1
        try:
            with trio.move_on_at(deadline):
                while ahead := await self.leases.take(self.provider, self.permits, holder):
                    self._fleet_answers()
                    with trio.move_on_after(min(self.poll_cap, ahead * self.poll_step)
                                            * random.uniform(0.5, 1.0)):
                        await self._freed.wait()
                self._fleet_answers()
                return holder
        except RedisError as error:
            self._fleet_unavailable(error)
            return ""
        except BaseException:
            self.leases.release(self.provider, holder)
            raise
        finally:
            self._fleet_waiting -= 1
        self.leases.release(self.provider, holder)  # its place in the fleet queue
        return None

    def _unused(self, permit: Permit) -> None:
        """Give back a local permit whose request never ran (no service time to count)."""
        permit.released = True
        self._hand_over()

    def _give_back(self, permit: Permit) -> None:
        holder = self._leased.pop(permit, None)
        if holder:
            self.leases.release(self.provider, holder)
            self._freed.set()
            self._freed = trio.Event()
        super()._give_back(permit)

    def _fleet_answers(self) -> None:
        if self._local_only:
            self._local_only = False
            log.info("gate %s: Redis answers again; the limit is fleet-wide again",
                     self.provider)

    def _fleet_unavailable(self, error: RedisError) -> None:
        if not self._local_only:
            self._local_only = True
            log.warning("gate %s: Redis is unavailable (%s); counting permits in this "
                        "process only until it answers", self.provider, error)


def gates(providers: Iterable[str], permits: int, queue_timeout: float,
          leases: GateLeases | None) -> dict[str, Gate]:
    """Fleet gates when the state is in Redis (`leases`), else the local ones."""
    if leases is None or permits == 0:
        return local_gates(providers, permits, queue_timeout)
    return {name: FleetGate(name, permits, queue_timeout=queue_timeout, leases=leases)
            for name in providers}
