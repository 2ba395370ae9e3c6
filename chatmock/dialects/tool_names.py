"""Tool names the backend would refuse, renamed on the way up and restored on the way back.

The backend takes tool names of at most 64 characters from `^[a-zA-Z0-9_-]+$`
and answers anything else with a 400 (`Invalid 'tools[0].name': string too
long` / `does not match pattern`), for the tools and for the calls replayed in
the history alike. Clients do send such names: Claude Code's MCP tools are
`mcp__<server>__<tool>` and easily pass 64 characters, and some clients put
dots or slashes in theirs.

Once per request, after a dialect has built the upstream payload,
`shorten_tool_names` renames every refused name, wherever the payload holds
one: `tools` (function and custom), `tool_choice`, and the `function_call` /
`custom_tool_call` items of the history. A name with other characters has
them replaced by `_` (`files.read` → `files_read`); a name still too long, or
one that would clash with another name of the request, keeps a readable
prefix and gets `_` and a hash of the original (`mcp__…__very_long_na_3f2a9c1b`).
The mapping depends only on the request's own names, so every turn of a
conversation renames alike. Valid names are never touched, so a request
whose names are all valid costs one regular-expression match per name.

The returned map (upstream name → client name) is the only state: the
translators restore the client's exact name in the tool-call items they
read (`restore_item`, `restore_response`), never in deltas, which carry no
names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

Item = dict[str, Any]
NameMap = Mapping[str, str]  # upstream name -> the client's name; empty: nothing renamed

MAX_LENGTH = 64
_VALID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_REFUSED_CHARACTERS = re.compile(r"[^a-zA-Z0-9_-]")
_NAMED_TOOLS = ("function", "custom")
_NAMED_ITEMS = ("function_call", "custom_tool_call")


def shorten_tool_names(payload: dict[str, Any]) -> dict[str, str]:
    """Rename the refused tool names of an upstream payload; the map to restore them.

    Lists and items that change are replaced, never mutated: the client's own
    objects (and lists a caller kept, such as the turn a store keeps) stay as sent."""
    names = set(_names_in(payload))
    refused = sorted(name for name in names if not _VALID.fullmatch(name))
    if not refused:
        return {}
    taken = names.difference(refused)
    renamed: dict[str, str] = {}
    for name in refused:
        renamed[name] = upstream_name(name, taken)
        taken.add(renamed[name])
    _rename(payload, renamed)
    return {upstream: client for client, upstream in renamed.items()}


def upstream_name(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The name the backend accepts for `name`, avoiding the names in `taken`."""
    escaped = _REFUSED_CHARACTERS.sub("_", name) or "_"
    if len(escaped) <= MAX_LENGTH and escaped not in taken:
        return escaped
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    for size in (8, 16, 32, 63):  # longer only if a shorter one clashes
        candidate = f"{escaped[:MAX_LENGTH - size - 1]}_{digest[:size]}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free upstream name for tool {name!r}")  # 2**252 clashes


def _names_in(payload: dict[str, Any]) -> Iterator[str]:
    for tool in _list(payload.get("tools")):
        if _is_named(tool, _NAMED_TOOLS):
            yield tool["name"]
    choice = payload.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        yield choice["name"]
    for item in _list(payload.get("input")):
        if _is_named(item, _NAMED_ITEMS):
            yield item["name"]


def _rename(payload: dict[str, Any], names: Mapping[str, str]) -> None:
    if isinstance(payload.get("tools"), list):
        payload["tools"] = [_renamed(tool, names) if _is_named(tool, _NAMED_TOOLS) else tool
                            for tool in payload["tools"]]
    if isinstance(payload.get("tool_choice"), dict):
        payload["tool_choice"] = _renamed(payload["tool_choice"], names)
    if isinstance(payload.get("input"), list):
        payload["input"] = [_renamed(item, names) if _is_named(item, _NAMED_ITEMS) else item
                            for item in payload["input"]]


def restore_item(item: Item, names: NameMap) -> Item:
    """`item` with the client's name back if it is a renamed tool call (else itself)."""
    return _renamed(item, names) if item.get("type") in _NAMED_ITEMS else item


def restore_response(response: Item, names: NameMap) -> Item:
    """A response object (or its echoed fields) with the client's names in its output,
    `tools` and `tool_choice`."""
    restored = dict(response)
    if isinstance(response.get("output"), list):
        restored["output"] = [restore_item(item, names) if isinstance(item, dict) else item
                              for item in response["output"]]
    if isinstance(response.get("tools"), list):
        restored["tools"] = [_renamed(tool, names) if _is_named(tool, _NAMED_TOOLS) else tool
                             for tool in response["tools"]]
    if isinstance(response.get("tool_choice"), dict):
        restored["tool_choice"] = _renamed(response["tool_choice"], names)
    return restored


def restore_event(event: Item, names: NameMap) -> Item:
    """A Responses stream event with the client's names in its item, response, or own
    `name` (`response.function_call_arguments.done` may carry one)."""
    restored = dict(event)
    if isinstance(event.get("item"), dict):
        restored["item"] = restore_item(event["item"], names)
    if isinstance(event.get("response"), dict):
        restored["response"] = restore_response(event["response"], names)
    return _renamed(restored, names)


def _renamed(named: Item, names: Mapping[str, str]) -> Item:
    name = named.get("name")
    if isinstance(name, str) and name in names:
        return {**named, "name": names[name]}
    return named


def _is_named(value: Any, kinds: tuple[str, ...]) -> bool:
    return (isinstance(value, dict) and value.get("type", "function") in kinds
            and isinstance(value.get("name"), str))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
