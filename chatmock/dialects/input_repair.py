"""Items in a Responses client's input that the backend cannot find, repaired.

chatmock always sends `store: false` (the backend insists on it), so the
backend keeps nothing: an item that stands for something stored upstream is
answered with `404 Item with id '…' not found. Items are not persisted when
store is set to false…`, and the whole turn fails. Clients do send such items:

* a `reasoning` item with its `id` but no `encrypted_content`: clients that
  replay `response.output` without having asked for
  `include: ["reasoning.encrypted_content"]`, or that strip the blob. chatmock
  always asks for it upstream and keeps the output items it streamed (the
  local response store, `--responses-ttl`), so the item is put back whole;
  when it is not there (another server, expired), the item is dropped: the
  turn still works, the model only loses that reasoning;
* an `item_reference` (`{"type": "item_reference", "id": …}`): expanded to the
  stored item, or refused with a 400 naming the id (there is nothing to drop
  it for: the client meant that item to be there).

Everything else passes unchanged; in particular the ids of `function_call`
items (`fc_…`) and the `msg_…`/`fco_…` ids clients mint are accepted upstream
(the Codex CLI replays them every turn).

Sans-I/O: `store_query` says which stored items a body needs, the route looks
them up (off the event loop), and `restore_items` works on what it found.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from chatmock.dialects.fields import OPENAI as fields
from chatmock.errors import ClientError
from chatmock.turns import StoreQuery

Item = dict[str, Any]


def store_query(body: Any) -> StoreQuery:
    """What a Responses body needs from the local store: its `previous_response_id`, and
    the ids of the items to restore or expand. Bodies of other shapes need nothing
    (the parser refuses them)."""
    if not isinstance(body, dict):
        return StoreQuery()
    raw = body.get("input")
    items = raw if isinstance(raw, list) else [raw]
    return StoreQuery(previous_response_id(body), tuple(dict.fromkeys(_wanted_ids(items))))


def previous_response_id(body: dict[str, Any]) -> str | None:
    previous = fields.string(body, "previous_response_id")
    if previous == "":
        raise ClientError("previous_response_id must be a non-empty string",
                          code="invalid_previous_response_id", param="previous_response_id")
    return previous


def _wanted_ids(items: list[Any]) -> Iterator[str]:
    for item in items:
        if _needs_store(item) and isinstance(item.get("id"), str):
            yield item["id"]


def _needs_store(item: Any) -> bool:
    """An item the backend would look up by id (see the module docstring)."""
    if not isinstance(item, dict):
        return False
    kind = item.get("type")
    return kind == "item_reference" or (kind == "reasoning"
                                        and not item.get("encrypted_content"))


def restore_items(items: list[Item], found: Mapping[str, Item]) -> tuple[list[Item], list[str]]:
    """(`items` with stored items put back, ids of the reasoning items dropped).

    `found` maps the ids `store_query` asked for to the stored items (missing
    when not found). An unknown `item_reference` is a 400."""
    if not any(_needs_store(item) for item in items):
        return items, []
    repaired: list[Item] = []
    dropped: list[str] = []
    for item in items:
        if not _needs_store(item):
            repaired.append(item)
            continue
        item_id = item.get("id")
        stored = found.get(item_id) if isinstance(item_id, str) else None
        if item["type"] == "item_reference":
            repaired.append(_referenced(item_id, stored))
        elif stored is not None and stored.get("encrypted_content"):
            repaired.append(stored)
        else:
            dropped.append(str(item_id or "(no id)"))
    return repaired, dropped


def _referenced(item_id: Any, stored: Item | None) -> Item:
    if stored is None:
        raise ClientError(f"Item with id {item_id!r} (an item_reference in input) is not in "
                          "chatmock's local store: only the output of responses chatmock "
                          "streamed can be referenced, until they expire. Send the item "
                          "itself instead.", code="item_not_found")
    return stored
