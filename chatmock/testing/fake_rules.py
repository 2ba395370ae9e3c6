"""What the fake Codex backend accepts: model catalog and request validation.

``validate_payload`` raises ``Rejected`` for every request the real backend is
known to refuse (upstream.md sections 3 and 9): non-streaming or stored
requests, any top-level parameter outside ``ACCEPTED_PARAMETERS``, unknown
models or efforts, system messages in ``input``, tool outputs without their
call (or answering a call of the other kind), malformed items, a
``text.format`` json_schema without its ``name`` or ``schema``, and a
Chat-shaped ``tool_choice`` object. ``check_headers`` refuses a request
without the headers every Codex client sends. Messages follow the backend's
``{"detail": ...}`` shape.

Where the spec names no message, the fake answers with the wording of the
OpenAI Responses API's own validator ("Missing required parameter: 'x'.",
"Unknown parameter: 'x'.", "Invalid value for 'x'"), which the Codex backend
is known to share for the refusals the spec records ("Unsupported parameter:
x" for a top-level field it does not take).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chatmock.testing.fake_events import JSON, dump_json

_ALL8 = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
_LMH = ("low", "medium", "high")
_LMHX = (*_LMH, "xhigh")
MODEL_EFFORTS: dict[str, tuple[str, ...]] = {
    "gpt-5": _ALL8,
    "gpt-5.1": _LMH,
    "gpt-5.2": _LMHX,
    "gpt-5.4": ("none", *_LMHX),
    "gpt-5.4-mini": _LMHX,
    "gpt-5.5": ("none", *_LMHX),
    "gpt-5.6-sol": (*_LMHX, "max", "ultra"),
    "gpt-5.6-terra": (*_LMHX, "max", "ultra"),
    "gpt-5.6-luna": (*_LMHX, "max"),
    "gpt-5.3-codex": _LMHX,
    "gpt-5.3-codex-spark": _LMHX,
    "gpt-5-codex": _ALL8,
    "gpt-5.2-codex": _LMHX,
    "gpt-5.1-codex": _LMH,
    "gpt-5.1-codex-max": _LMHX,
    "gpt-5.1-codex-mini": _LMH,
    "codex-mini-latest": _ALL8,
}
"""Every upstream slug of upstream.md §9.4 with its allowed efforts."""

ACCEPTED_PARAMETERS = frozenset(
    {"model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls",
     "reasoning", "store", "stream", "include", "service_tier", "prompt_cache_key", "text",
     "client_metadata", "previous_response_id"}
)  # fmt: skip
"""The top-level fields the backend takes: those the Codex CLI sends (its
``ResponsesApiRequest``: model … text, client_metadata) plus
``previous_response_id``, which it knows but cannot resolve with store=false.
Anything else (``max_output_tokens``, ``temperature``, ``metadata``, ``user``,
``stream_options``, ``truncation``, …) is ``400 Unsupported parameter: X``."""
REQUIRED_HEADERS = (b"chatgpt-account-id", b"originator", b"user-agent")
SESSION_HEADERS = (b"session-id", b"session_id")
"""The backend has taken the session id under both spellings (upstream.md §2.2)."""
TOOL_TYPES = frozenset(
    {"function", "custom", "web_search", "web_search_preview", "namespace",
     "local_shell", "image_generation"}
)  # fmt: skip
SUMMARIES = ("auto", "concise", "detailed")
SERVICE_TIERS = ("auto", "default", "flex", "priority")
_DATA_IMAGE = re.compile(r"data:image/[\w.+-]+;base64,(.*)", re.DOTALL)


class Rejected(Exception):
    """A request the fake refuses, carrying the whole error reply."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = ((b"content-type", content_type), *headers)


def reject(status: int, body: JSON, *headers: tuple[bytes, bytes]) -> Rejected:
    return Rejected(status, dump_json(body), headers=headers)


def bad_request(detail: str) -> Rejected:
    return reject(400, {"detail": detail})


INVALID_JSON: Any = object()
"""Stands for a body that is not JSON at all."""


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return INVALID_JSON


def validate_payload(payload: Any) -> None:
    """Raise Rejected (400) for anything the real backend refuses."""
    if payload is INVALID_JSON:
        raise bad_request("Invalid JSON body")
    if not isinstance(payload, dict):
        raise bad_request("Request body must be a JSON object")
    if payload.get("stream") is not True:
        raise bad_request("Stream must be set to true")
    if payload.get("store") is not False:
        raise bad_request("Store must be set to false")
    for name in payload:
        if name not in ACCEPTED_PARAMETERS:
            raise bad_request(f"Unsupported parameter: {name}")
    _check_model(payload)
    _check_input(payload.get("input"))
    _check_options(payload)


def check_headers(headers: Mapping[bytes, bytes]) -> None:
    """400 for a request without the account, client or session headers.

    The spec records no message for these; the fake names the missing header.
    (A missing bearer is refused earlier, with the 401 of the auth layer.)"""
    for name in REQUIRED_HEADERS:
        if not headers.get(name, b"").strip():
            raise bad_request(f"Missing required header: {name.decode()}")
    if not any(headers.get(name, b"").strip() for name in SESSION_HEADERS):
        raise bad_request("Missing required header: session-id")


def _check_model(payload: JSON) -> None:
    model = payload.get("model")
    if not isinstance(model, str):
        raise bad_request("Missing required parameter: 'model'.")
    efforts = MODEL_EFFORTS.get(model)
    if efforts is None:
        raise bad_request(
            f"The '{model}' model is not supported when using Codex with a ChatGPT account."
        )
    reasoning = payload.get("reasoning", {})
    if not isinstance(reasoning, dict):
        raise bad_request("Invalid type for 'reasoning': expected an object.")
    effort = reasoning.get("effort")
    if effort is not None and effort not in efforts:
        raise bad_request(
            f"Unsupported value: 'reasoning.effort' does not support '{effort}' with this "
            f"model. Supported values are: {_quoted(efforts)}."
        )
    _check_choice("reasoning.summary", reasoning.get("summary"), (None, *SUMMARIES))


def _check_options(payload: JSON) -> None:
    if "instructions" in payload and not isinstance(payload["instructions"], str):
        raise bad_request("Invalid type for 'instructions': expected a string.")
    _check_tools(payload.get("tools", []))
    _check_tool_choice(payload.get("tool_choice", "auto"))
    _check_text(payload.get("text", {}))
    include = payload.get("include", [])
    if not (isinstance(include, list) and all(isinstance(v, str) for v in include)):
        raise bad_request("Invalid type for 'include': expected an array of strings.")
    _check_choice("service_tier", payload.get("service_tier", "auto"), SERVICE_TIERS)
    previous = payload.get("previous_response_id")
    if previous is not None:  # with store=false there is nothing to continue from
        raise bad_request(f"Previous response with id '{previous}' not found.")


def _check_choice(where: str, value: object, allowed: Iterable[object]) -> None:
    if not (value is None or isinstance(value, str)) or value not in allowed:
        named = _quoted(str(v) for v in allowed if v is not None)
        raise bad_request(
            f"Invalid value for '{where}': {json.dumps(value)}. Supported values are: {named}."
        )


def _check_tool_choice(choice: object) -> None:
    """A mode string, or a Responses-shaped object: ``{"type": "function", "name": …}``.

    The Chat shape ``{"type": "function", "function": {"name": …}}`` lacks the
    top-level ``name`` and is refused as the Responses validator does."""
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        _check_choice("tool_choice", choice, ("auto", "none", "required"))
        return
    kind = choice["type"]
    _check_choice("tool_choice.type", kind, _CHOICE_TYPES)
    if kind in ("function", "custom"):
        _require("tool_choice", choice, "name")
        if "function" in choice:
            raise bad_request("Unknown parameter: 'tool_choice.function'.")


_CHOICE_TYPES = (*sorted(TOOL_TYPES - {"namespace"}), "allowed_tools", "mcp")


def _check_text(text: object) -> None:
    """``text.verbosity`` and ``text.format`` (a json_schema needs ``name`` and ``schema``)."""
    if not isinstance(text, dict):
        raise bad_request("Invalid type for 'text': expected an object.")
    _check_choice("text.verbosity", text.get("verbosity"), (None, "low", "medium", "high"))
    wanted = text.get("format")
    if wanted is None:
        return
    kind = wanted.get("type") if isinstance(wanted, dict) else None
    _check_choice("text.format.type", kind, ("text", "json_object", "json_schema"))
    if isinstance(wanted, dict) and kind == "json_schema":
        _require("text.format", wanted, "name")
        if not isinstance(wanted.get("schema"), dict):
            raise bad_request("Missing required parameter: 'text.format.schema'.")


def _check_tools(tools: object) -> None:
    if not isinstance(tools, list):
        raise bad_request("Invalid type for 'tools': expected an array.")
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        _check_choice(f"tools[{index}].type", kind, TOOL_TYPES)
        if kind in ("function", "custom"):
            _require(f"tools[{index}]", tool, "name")


_ITEM_FIELDS: dict[str, tuple[str, ...]] = {
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("call_id", "output"),
    "custom_tool_call": ("call_id", "name", "input"),
    "custom_tool_call_output": ("call_id", "output"),
    "local_shell_call": ("call_id",),
    "reasoning": (),
    "web_search_call": (),
    "item_reference": ("id",),
}
"""Non-message input items and the string fields each must have."""


def _check_input(items: object) -> None:
    if not isinstance(items, list):
        raise bad_request("Invalid type for 'input': expected a list of input items.")
    calls: dict[str, str] = {}  # call_id → the kind of output that answers it
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for '{where}': expected an object.")
        kind = item_type(item)
        if kind == "message":
            _check_message(where, item)
            continue
        _check_choice(f"{where}.type", kind, ("message", *_ITEM_FIELDS))
        _require(where, item, *_ITEM_FIELDS[str(kind)])
        if kind == "reasoning" and not isinstance(item.get("summary"), list):
            raise bad_request(f"Missing required parameter: '{where}.summary'.")
        if str(kind).endswith("_output") and calls.get(item["call_id"]) != kind:
            what = str(kind).removesuffix("_output").replace("_", " ")
            raise bad_request(f"No tool call found for {what} output with call_id "
                              f"{item['call_id']}.")
        if "call_id" in item and not str(kind).endswith("_output"):
            calls[item["call_id"]] = f"{kind}_output"


def item_type(item: JSON) -> object:
    """Items without a type but with a role are messages (EasyInputMessage)."""
    kind = item.get("type")
    return "message" if kind is None and "role" in item else kind


def _check_message(where: str, item: JSON) -> None:
    role = item.get("role")
    if role == "system":
        raise bad_request("System messages are not allowed in input; use instructions.")
    _check_choice(f"{where}.role", role, ("user", "assistant", "developer"))
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad_request(f"Invalid type for '{where}.content': expected a string or array.")
    allowed = _ASSISTANT_PARTS if role == "assistant" else _USER_PARTS
    for index, part in enumerate(content):
        part_at = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        _check_choice(f"{part_at}.type", kind, allowed)
        if not allowed[str(kind)](part):
            raise bad_request(f"Invalid content part '{part_at}' of type '{kind}'.")


def _valid_image(part: JSON) -> bool:
    """An http(s) URL or a ``data:image/...;base64,`` URL that decodes."""
    url = part.get("image_url")
    if not isinstance(url, str):
        return False
    if url.startswith(("http://", "https://")):
        return True
    match = _DATA_IMAGE.fullmatch(url)
    try:
        return match is not None and bool(base64.b64decode(match.group(1), validate=True))
    except (binascii.Error, ValueError):
        return False


_USER_PARTS: dict[str, Callable[[JSON], bool]] = {
    "input_text": lambda p: _has_str(p, "text"),
    "input_image": _valid_image,
    "input_file": lambda p: any(_has_str(p, k) for k in ("file_data", "file_id", "file_url")),
}
_ASSISTANT_PARTS: dict[str, Callable[[JSON], bool]] = {
    "output_text": lambda p: _has_str(p, "text"),
    "refusal": lambda p: _has_str(p, "refusal"),
}


def _require(where: str, item: JSON, *keys: str) -> None:
    for key in keys:
        if not _has_str(item, key):
            raise bad_request(f"Missing required parameter: '{where}.{key}'.")


def _has_str(value: object, key: str) -> bool:
    return isinstance(value, dict) and isinstance(value.get(key), str)


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)
