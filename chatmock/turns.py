"""A Responses turn as chatmock keeps it, and what a request asks of the store.

Plain data shared by two layers that must not know each other's insides: the
dialect builds a `StoredResponse` from a finished answer and reads a
`StoreAnswer` when it chains (`dialects/responses.py`, `dialects/input_repair.py`),
and the stores keep and find them (`state/response_store*.py`). Living below
both, these types let the dialect stay sans-I/O: the route asks the store
(`StoreQuery`, off the event loop) and hands the dialect the answer.

Contract: treat a `StoredResponse` and its lists/dicts as immutable once stored
(stores keep references; see `state/response_store.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: str
    instructions: str | None
    context: list[Item]  # the full input items sent upstream for that turn
    output: list[Item]  # that turn's output items, already converted to input items
    created_at: float


@dataclass(frozen=True, slots=True)
class StoreQuery:
    """What one request needs from the store: a turn to chain on, items by id."""

    previous_id: str | None = None
    item_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.previous_id is not None or bool(self.item_ids)


@dataclass(frozen=True, slots=True)
class StoreAnswer:
    previous: StoredResponse | None = None
    items: Mapping[str, Item] = field(default_factory=dict)  # only the ids found
