"""What the fake Codex backend refuses in replayed items and tool names.

With `store: false` the real backend keeps nothing between requests, so it
cannot look an item up by id. Users of clients that replay `response.output`
(opencode, the AI SDK, oh-my-pi) report these answers, reproduced here with
the backend's OpenAI-style error bodies:

* an `item_reference`, or a `reasoning` item that carries an `id` but no
  `encrypted_content` (null, empty or absent): 404 "Item with id '…' not
  found. Items are not persisted when `store` is set to false. …";
* `encrypted_content` it did not mint (another account, another service, a
  made-up string): 400 `invalid_encrypted_content` (`fake_mint` tells);
* a tool name longer than 64 characters or outside `^[a-zA-Z0-9_-]+$`, in
  `tools` (function and custom tools) and in replayed `function_call` /
  `custom_tool_call` items (OpenAI validates the names of replayed calls
  too: `messages[9].tool_calls[0].function.name` on Chat Completions): 400
  naming the field, `string_above_max_length` or `invalid_value`.

Function-call ids (`fc_…`) and the `msg_…`/`fco_…` ids clients mint are
accepted, as the Codex CLI replays them on every turn.
"""

from __future__ import annotations

import re
from typing import Any

from chatmock.testing.fake_mint import minted_here
from chatmock.testing.fake_rules import Rejected, reject

MAX_TOOL_NAME = 64
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_NAMED_TOOLS = ("function", "custom")
_NAMED_ITEMS = ("function_call", "custom_tool_call")


def check_items_and_names(payload: dict[str, Any], account: str = "") -> None:
    """Raise Rejected for the first replayed item or tool name the backend refuses
    (encrypted reasoning must have been minted for `account`).

    `payload` already passed `fake_rules.validate_payload` (shapes are sound)."""
    for index, item in enumerate(payload["input"]):
        _check_item(index, item, account)
    for index, tool in enumerate(payload.get("tools", [])):
        if tool.get("type") in _NAMED_TOOLS:
            _check_name(f"tools[{index}].name", tool["name"])


def _check_item(index: int, item: dict[str, Any], account: str) -> None:
    kind = item.get("type")
    if kind == "item_reference":
        raise item_not_found(item["id"])
    if kind == "reasoning":
        content = item.get("encrypted_content")
        if not content:
            if isinstance(item.get("id"), str):
                raise item_not_found(item["id"])
        elif not (isinstance(content, str) and minted_here(content, account)):
            raise invalid_encrypted_content(item.get("id"), content)
    elif kind in _NAMED_ITEMS:
        _check_name(f"input[{index}].name", item["name"])


def item_not_found(item_id: str) -> Rejected:
    message = (f"Item with id '{item_id}' not found. Items are not persisted when `store` is "
               "set to false. Try again with `store` set to true, or remove this item from "
               "your input.")
    return reject(404, _error(message, "input", None))


def invalid_encrypted_content(item_id: object, content: object) -> Rejected:
    text = content if isinstance(content, str) else str(content)
    what = f"for item {item_id}" if isinstance(item_id, str) else _abridged(text)
    message = (f"The encrypted content {what} could not be verified. "
               "Reason: Encrypted content could not be decrypted or parsed.")
    return reject(400, _error(message, None, "invalid_encrypted_content"))


def _check_name(where: str, name: str) -> None:
    if len(name) > MAX_TOOL_NAME:
        raise reject(400, _error(
            f"Invalid '{where}': string too long. Expected a string with maximum length "
            f"{MAX_TOOL_NAME}, but got a string with length {len(name)} instead.",
            where, "string_above_max_length"))
    if not _TOOL_NAME.fullmatch(name):
        raise reject(400, _error(
            f"Invalid '{where}': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$'.", where, "invalid_value"))


def _abridged(text: str) -> str:
    return text if len(text) <= 8 else f"{text[:4]}...{text[-4:]}"


def _error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param,
                      "code": code}}
