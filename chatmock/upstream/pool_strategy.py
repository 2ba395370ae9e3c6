"""Which account a new conversation goes to: `--account-strategy`.

* `fill-first`: the first available account in pool order (the default
  account, then the named ones by name): one account is used up before the
  next is touched, the others keep their windows whole;
* `round-robin`: new conversations take the available accounts in turn;
* `least-used`: the account whose recorded usage (the `x-codex-*` headers of
  its last answer, the fuller of its 5-hour and weekly windows) is lowest;
  an account with no figures yet counts as unused; ties go in pool order.

Only new (or moved) conversations are placed: a conversation stays on its
account while that account is available (`chatmock.upstream.accounts`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

from chatmock.config import ACCOUNT_STRATEGIES as STRATEGIES

DEFAULT_STRATEGY = STRATEGIES[0]

T = TypeVar("T")


class Strategy:
    """Picks one of the available accounts for a new conversation."""

    def __init__(self, name: str = DEFAULT_STRATEGY) -> None:
        if name not in STRATEGIES:
            raise ValueError(f"unknown account strategy {name!r} "
                             f"(choose from {', '.join(STRATEGIES)})")
        self.name = name
        self._turns = itertools.count()

    def pick(self, available: Sequence[T], used: Callable[[T], float]) -> T:
        """One of `available` (not empty, in pool order); `used`: percent used, 0..100."""
        if self.name == "round-robin":
            return available[next(self._turns) % len(available)]
        if self.name == "least-used":
            return min(available, key=used)  # min keeps the first of equals
        return available[0]
