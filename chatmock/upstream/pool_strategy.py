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

Processes that share no affinity (the workers of `serve --workers` without
Redis) cannot count turns together: there `round-robin` places a conversation
by its key instead (`by_conversation`: rendezvous hashing, the account whose
hash with the conversation's key is highest), which spreads conversations as
evenly and gives every worker the same answer for a turn it has not seen the
start of; when an account stops being available only its conversations move.
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

    def __init__(self, name: str = DEFAULT_STRATEGY, *, by_conversation: bool = False) -> None:
        if name not in STRATEGIES:
            raise ValueError(f"unknown account strategy {name!r} "
                             f"(choose from {', '.join(STRATEGIES)})")
        self.name = name
        self.by_conversation = by_conversation and name == "round-robin"
        self._turns = itertools.count()

    def pick(self, available: Sequence[T], used: Callable[[T], float],
             rank: Callable[[T], bytes] | None = None) -> T:
        """One of `available` (not empty, in pool order); `used`: percent used, 0..100;
        `rank`: the account's hash with the conversation's key (`by_conversation`)."""
        if self.by_conversation and rank is not None:
            return max(available, key=rank)
        if self.name == "round-robin":
            return available[next(self._turns) % len(available)]
        if self.name == "least-used":
            return min(available, key=used)  # min keeps the first of equals
        return available[0]
