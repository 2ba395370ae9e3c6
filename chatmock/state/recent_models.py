"""Which models were used lately: what Ollama's `GET /api/ps` reports as "loaded".

chatmock loads nothing, but Ollama clients show `/api/ps` as the list of
running models, and some (Open WebUI, `ollama ps`) poll it. Ollama keeps a
model loaded for `keep_alive` after its last request (default five minutes),
so a name counts as "running" until that long after its last `touch`.
`keep_alive` follows Ollama: 0 unloads at once, a negative value keeps the
model forever. At most `capacity` names are kept; the least recently used
one goes first. Everything is in memory and per process.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_KEEP_ALIVE = 300.0  # Ollama's default keep_alive: 5 minutes
FOREVER = 253_402_300_799.0  # 9999-12-31T23:59:59Z: "never expires" as a timestamp
CAPACITY = 32


@dataclass(frozen=True, slots=True)
class RecentModel:
    name: str
    expires_at: float  # Unix time


class RecentModels:
    """Names touched by chat/generate requests, newest last, with their expiry."""

    __slots__ = ("_clock", "_entries", "capacity")

    def __init__(self, capacity: int = CAPACITY,
                 clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, float] = OrderedDict()

    def touch(self, name: str, keep_alive: float | None = None) -> None:
        """Record a request for `name`; `keep_alive` in seconds (None: five minutes)."""
        self._entries.pop(name, None)
        if keep_alive == 0:
            return
        if keep_alive is None or math.isnan(keep_alive):
            keep_alive = DEFAULT_KEEP_ALIVE
        # Capped: a later expiry (a keep_alive of 1e20 s, say) is no date /api/ps can show.
        expires = FOREVER if keep_alive < 0 else min(self._clock() + keep_alive, FOREVER)
        self._entries[name] = expires
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def active(self) -> list[RecentModel]:
        """The names not yet expired, most recently used first."""
        now = self._clock()
        for name in [name for name, expires in self._entries.items() if expires <= now]:
            del self._entries[name]
        return [RecentModel(name, expires) for name, expires in reversed(self._entries.items())]
