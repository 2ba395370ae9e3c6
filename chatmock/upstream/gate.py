"""A fair concurrency gate in front of one upstream provider (providers.md §5).

A `Gate` holds N permits. `async with gate.slot(client) as permit:` waits for
one and gives it back when the block ends, however it ends: a permit is
released exactly once (`Permit.release` is idempotent and synchronous, so it
is safe in `finally` under cancellation). The caller holds it from the
upstream call until the body has been sent or the client has left.

Fairness: waiting requests are queued per client (`client_key`: a hash of the
access token when one is set, else the peer address) and the clients with
waiters form a ring. Each released permit goes straight to the head of the
*next* client in the ring, which then moves to the back, so one client with a
hundred queued requests and one with a single request alternate instead of
the hundred going first. A new request takes a free permit at once only when
nobody is waiting.

Bounds: a request waits at most `queue_timeout` seconds; at most `max_waiters`
wait in all and `max_waiters_per_client` per client. Beyond any of these it
gets `GateBusy`, an `ApiError` of status 429 with a `Retry-After` of whole
seconds estimated as (queue depth + 1) * mean service time / permits (the
mean is a moving average of how long permits were held; before any was
released, the timeout that just expired stands in for it). Routes render it
in the client's dialect like any other `ApiError`.

No permit is ever lost. The one race in trio's single thread: a waiter's
timeout (or cancellation) fires while a release hands it the permit. The
hand-over marks the waiter granted before waking it, and the waiter checks
that mark after waking whatever woke it: granted and timed out → it keeps the
permit and proceeds; granted and cancelled → it passes the permit on at once.

In fleet mode (`--state redis://...`) each provider's gate is a
`gate_fleet.FleetGate`: this gate, plus a lease in Redis, so that N holds
across every process sharing the Redis.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from chatmock.errors import ApiError

EWMA_WEIGHT = 0.2  # weight of the newest sample in the moving averages


class GateBusy(ApiError):
    """No permit within the queue timeout, or the queue is full: a 429 with Retry-After."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, provider: str, reason: str, retry_after: int) -> None:
        what = ("its request queue is full" if reason == "queue_full"
                else "no upstream slot became free in time")
        super().__init__(f"The {provider} provider is busy: {what}. Retry after "
                         f"{retry_after} s.", code=reason,
                         headers=((b"retry-after", b"%d" % retry_after),))
        self.reason = reason
        self.retry_after = retry_after


def client_key(access_token: str | bytes | None, address: str) -> str:
    """Who a request belongs to for fair queuing: its access token (hashed, never kept
    in clear) if the gateway has one, else the peer address without its port."""
    if access_token:
        raw = access_token.encode() if isinstance(access_token, str) else access_token
        return "token:" + hashlib.sha256(raw).hexdigest()[:16]
    host, colon, port = address.rpartition(":")
    return "addr:" + (host if colon and port.isdigit() else address)


@dataclass(frozen=True, slots=True)
class GateStats:
    """A snapshot for `/health` and `chatmock info`."""

    provider: str
    permits: int
    in_use: int
    waiting: int
    clients_waiting: int
    oldest_wait_seconds: float
    granted: int
    timed_out: int
    rejected: int
    mean_wait_seconds: float
    mean_service_seconds: float
    scope: str = "process"  # "fleet": the limit holds across processes (gate_fleet.py)
    fleet_waiting: int = 0  # holding a local permit, waiting for a fleet one

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class _Waiter:
    __slots__ = ("client", "event", "granted", "since")

    def __init__(self, client: str, since: float) -> None:
        self.client = client
        self.since = since
        self.event = trio.Event()
        self.granted = False


class Permit:
    """One held permit; `release()` gives it back (only the first call counts)."""

    __slots__ = ("_gate", "granted_at", "released")

    def __init__(self, gate: Gate, granted_at: float) -> None:
        self._gate = gate
        self.granted_at = granted_at
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._gate._give_back(self)


class Gate:
    """Fair permits for one provider; see the module docstring."""

    def __init__(self, provider: str, permits: int, *, queue_timeout: float,
                 max_waiters: int = 256, max_waiters_per_client: int = 32) -> None:
        if permits < 1 or queue_timeout < 0 or max_waiters < 0 or max_waiters_per_client < 0:
            raise ValueError("permits must be at least 1, the limits not negative")
        self.provider = provider
        self.permits = permits
        self.queue_timeout = queue_timeout
        self.max_waiters = max_waiters
        self.max_waiters_per_client = max_waiters_per_client
        self._free = permits
        self._queues: dict[str, deque[_Waiter]] = {}
        self._ring: deque[str] = deque()
        self._waiting = 0
        self._granted = self._timed_out = self._rejected = 0
        self._mean_wait = 0.0
        self._mean_service: float | None = None

    @property
    def free(self) -> int:
        """Permits neither held nor promised to a waiter."""
        return self._free

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[Permit]:
        """Hold a permit for the duration of the block."""
        permit = await self.acquire(client)
        try:
            yield permit
        finally:
            permit.release()

    async def acquire(self, client: str) -> Permit:
        """A permit, or GateBusy; the caller must `release()` it exactly once."""
        await trio.lowlevel.checkpoint_if_cancelled()
        now = trio.current_time()
        if self._free > 0 and not self._ring:
            self._free -= 1
            await trio.lowlevel.cancel_shielded_checkpoint()
            return self._grant(now, now)
        self._check_room(client)
        waiter = _Waiter(client, now)
        self._enqueue(waiter)
        try:
            with trio.move_on_after(self.queue_timeout):
                await waiter.event.wait()
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.granted:  # also when the timeout fired as the permit was handed over
            return self._grant(waiter.since, trio.current_time())
        self._abandon(waiter)
        self._timed_out += 1
        raise GateBusy(self.provider, "queue_timeout", self.retry_after())

    def retry_after(self) -> int:
        """Whole seconds a refused client should wait: (depth + 1) * mean service / permits."""
        service = self._mean_service if self._mean_service is not None else self.queue_timeout
        return max(1, math.ceil((self._waiting + 1) * service / self.permits))

    def stats(self) -> GateStats:
        now = trio.current_time()
        oldest = min((queue[0].since for queue in self._queues.values() if queue), default=now)
        # Permits handed to a waiter that has not woken yet count as in use.
        return GateStats(self.provider, self.permits, self.permits - self._free,
                         self._waiting, len(self._ring), now - oldest, self._granted,
                         self._timed_out, self._rejected, self._mean_wait,
                         self._mean_service or 0.0)

    # -- internals ---------------------------------------------------------------------

    def _check_room(self, client: str) -> None:
        queued = len(self._queues.get(client, ()))
        if self._waiting >= self.max_waiters or queued >= self.max_waiters_per_client:
            self._rejected += 1
            raise GateBusy(self.provider, "queue_full", self.retry_after())

    def _enqueue(self, waiter: _Waiter) -> None:
        queue = self._queues.get(waiter.client)
        if queue is None:
            queue = self._queues[waiter.client] = deque()
            self._ring.append(waiter.client)
        queue.append(waiter)
        self._waiting += 1

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter leaves: pass its permit on if it had been handed one, else unqueue it."""
        if waiter.granted:
            self._hand_over()
            return
        queue = self._queues[waiter.client]
        queue.remove(waiter)
        self._waiting -= 1
        if not queue:
            del self._queues[waiter.client]
            self._ring.remove(waiter.client)

    def _grant(self, since: float, now: float) -> Permit:
        self._granted += 1
        self._mean_wait += EWMA_WEIGHT * ((now - since) - self._mean_wait)
        return Permit(self, now)

    def _give_back(self, permit: Permit) -> None:
        held = trio.current_time() - permit.granted_at
        previous = self._mean_service
        self._mean_service = held if previous is None else \
            previous + EWMA_WEIGHT * (held - previous)
        self._hand_over()

    def _hand_over(self) -> None:
        """A permit came free: the head of the next client in the ring gets it, else the pool."""
        if not self._ring:
            self._free += 1
            return
        client = self._ring.popleft()
        queue = self._queues[client]
        waiter = queue.popleft()
        self._waiting -= 1
        if queue:
            self._ring.append(client)
        else:
            del self._queues[client]
        waiter.granted = True
        waiter.event.set()


def gates(providers: Iterable[str], permits: int, queue_timeout: float) -> dict[str, Gate]:
    """One gate per provider (`--max-concurrency`, `--queue-timeout`); none when `permits` is
    0, which means no limit."""
    if permits == 0:
        return {}
    return {name: Gate(name, permits, queue_timeout=queue_timeout) for name in providers}
