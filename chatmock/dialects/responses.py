"""Responses API requests → the Codex backend, with a local `previous_response_id`.

The route is a near passthrough: the client's body goes upstream with only
what the backend insists on changed (spec: translation.md §4.6):
`model` normalised, `store: false`, `stream: true`, `system` input messages
moved into `instructions`, parameters it rejects removed, Chat-form function
tools and a Chat-shaped `tool_choice` object put in the Responses shape,
`reasoning` and `include` completed, fast mode and the default web search
applied. Every other field survives as sent (custom and `namespace` tools,
`text`, `client_metadata`, input item ids).

The backend keeps no state, so `previous_response_id` is resolved here: the
stored turn's full input and its output are put in front of the new input
(unless the client already resent them, or resent the output), instructions
are inherited when the new request has none, and a `function_call_output` whose call is missing gets
the stored `function_call` put back in front of it. An unknown or expired id,
or a call id found nowhere, is a 400 that names it. Items the backend could
not find by id (reasoning without its encrypted content, `item_reference`s)
are repaired first (`chatmock.dialects.input_repair`).

What chatmock reads is type-checked (`chatmock.dialects.fields`; OpenAI's
400 `invalid_type` with `param`): `model`, `instructions`, `input` (a string,
an item, or a list of items; in each item `type`, `role`, a message's
`content` and a call's `call_id`), `include`, `tools`, `tool_choice`,
`reasoning`, `stream`, `previous_response_id` and the fast-mode fields. The
rest passes through for the backend to judge. `temperature`, `top_p` and
`max_output_tokens` are checked too and, kept out of the payload, carried as
`sampling` for chat-completions providers (`chatmock.dialects.sampling`).

Sans-I/O: the stored turn and items come in a `StoreAnswer` the route looked
up for the body's `store_query`; nothing here reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatmock.catalog import Catalog
from chatmock.dialects.chat import convert_messages, convert_tool, convert_tool_choice
from chatmock.dialects.common import (
    REASONING_INCLUDE,
    WEB_SEARCH_TYPES,
    reasoning_param,
    service_tier,
)
from chatmock.dialects.fields import OPENAI as fields
from chatmock.dialects.input_repair import previous_response_id, restore_items
from chatmock.dialects.options import Options
from chatmock.dialects.sampling import NONE, Sampling, responses_sampling
from chatmock.dialects.tool_names import NameMap, shorten_tool_names
from chatmock.errors import ClientError
from chatmock.turns import StoreAnswer, StoredResponse

Item = dict[str, Any]

# Fields the backend answers with "Unsupported parameter" (upstream.md §3.3).
UNSUPPORTED_FIELDS = ("max_output_tokens", "max_tokens", "max_completion_tokens", "metadata",
                      "user", "stream_options", "prompt_cache_retention", "temperature", "top_p",
                      "top_logprobs", "frequency_penalty", "presence_penalty", "seed", "n",
                      "stop", "logprobs", "response_format", "background", "safety_identifier",
                      "truncation", "fast_mode")
# Output item fields that describe the answer but are not valid in a request's input.
_OUTPUT_ONLY = ("status",)
_CALL_TYPES = ("function_call", "custom_tool_call")
_OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    payload: dict[str, Any]
    stream: bool
    instructions: str | None
    dropped: tuple[str, ...] = ()  # ids of reasoning items that could not be restored
    context: tuple[Item, ...] = ()  # the input with the client's tool names (to store)
    tool_names: NameMap = field(default_factory=dict)  # upstream -> client, if renamed
    sampling: Sampling = NONE  # for chat-completions providers, never in the payload


def parse_responses_request(body: Any, catalog: Catalog, options: Options,
                            stored: StoreAnswer | None = None) -> ResponsesRequest:
    """The upstream payload of a Responses body; `stored`: what the route found in the
    local store for `input_repair.store_query(body)`."""
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    payload = {key: value for key, value in body.items() if key not in UNSUPPORTED_FIELDS}
    resolved = catalog.resolve(fields.string(body, "model"), options.debug_model)
    payload["model"] = resolved.slug
    stored = stored or StoreAnswer()
    instructions, items = _input_of(body)
    items, dropped = restore_items(items, stored.items)
    previous = previous_response_id(body)
    payload.pop("previous_response_id", None)
    if previous is not None:
        instructions, items = _chain(previous, instructions, items, stored.previous)
    if instructions:
        payload["instructions"] = instructions
    else:
        payload.pop("instructions", None)
    payload["input"] = items
    payload.pop("messages", None)
    payload.pop("prompt", None)
    payload.update(store=False, stream=True)
    _complete(payload, body, resolved, catalog, options)
    context = tuple(items)
    return ResponsesRequest(payload, fields.boolean(body, "stream", False), instructions or None,
                            tuple(dropped), context, shorten_tool_names(payload),
                            responses_sampling(body))


def _input_of(body: dict[str, Any]) -> tuple[str, list[Item]]:
    """(instructions, input items) of a Responses body, or of a chat-shaped one."""
    own = fields.string(body, "instructions")
    if "input" not in body and isinstance(body.get("messages"), list):
        system, items = convert_messages(body["messages"])
        return _join(own, system), items
    key = "input" if "input" in body or "prompt" not in body else "prompt"
    raw = fields.get(body, key, ("string", "object", "array"))
    if raw is None:
        raise fields.missing("input")
    if isinstance(raw, str):
        items = [{"type": "message", "role": "user",
                  "content": [{"type": "input_text", "text": raw}]}]
    elif isinstance(raw, dict):
        items = [input_item(raw, key)]
    else:
        items = [input_item(item, f"{key}[{number}]") for number, item in enumerate(raw)]
    system, items = _lift_system_messages(items)
    return _join(own, system), items


def input_item(item: Any, where: str) -> Item:
    """An input item, with the fields chatmock reads type-checked."""
    checked: Item = fields.check(item, ("object",), where)
    kind = fields.string(checked, "type", where)
    fields.string(checked, "role", where)
    if kind in (None, "message"):
        fields.get(checked, "content", ("string", "array"), where)
    elif kind in _CALL_TYPES or kind in _OUTPUT_TYPES:
        fields.string(checked, "call_id", where)
    return checked


def _lift_system_messages(items: list[Item]) -> tuple[str, list[Item]]:
    """The backend refuses `system` input messages: their text joins the instructions."""
    texts: list[str] = []
    kept: list[Item] = []
    for item in items:
        if item.get("role") == "system" and item.get("type", "message") == "message":
            texts.append(_message_text(item))
        else:
            kept.append(item)
    return "\n\n".join(t for t in texts if t), kept


def _message_text(item: Item) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(str(part.get("text") or "") for part in parts
                     if isinstance(part, dict) and part.get("type") in ("input_text", "text"))


def _join(*texts: str | None) -> str:
    return "\n\n".join(text for text in texts if text)


def _chain(previous: str, instructions: str, items: list[Item],
           stored: StoredResponse | None) -> tuple[str, list[Item]]:
    if stored is None:
        raise ClientError(f"Previous response with id '{previous}' not found (unknown, or "
                          "expired from chatmock's local store).", status=400,
                          code="previous_response_not_found", param="previous_response_id")
    history = [*stored.context, *stored.output]
    return (instructions or stored.instructions or "",
            _restore_calls(_with_history(items, stored), history, previous))


def _with_history(items: list[Item], stored: StoredResponse) -> list[Item]:
    """The stored turn in front of `items`, minus what the client resent: the whole
    history, or just the previous output (clients that append `response.output`)."""
    history = [*stored.context, *stored.output]
    if replayable(items[:len(history)]) == history:
        return items
    if stored.output and replayable(items[:len(stored.output)]) == stored.output:
        return [*stored.context, *items]
    return history + items


def _restore_calls(items: list[Item], history: list[Item], previous: str) -> list[Item]:
    """Put a stored `function_call` back in front of an output whose call is missing."""
    calls = {item.get("call_id"): item for item in history if item.get("type") in _CALL_TYPES}
    seen: set[Any] = set()
    restored: list[Item] = []
    for item in items:
        kind = item.get("type")
        if kind in _CALL_TYPES:
            seen.add(item.get("call_id"))
        elif kind in _OUTPUT_TYPES and item.get("call_id") not in seen:
            call = calls.get(item.get("call_id"))
            if call is None:
                raise ClientError(f"No tool call found for call_id '{item.get('call_id')}' in "
                                  f"this input or in response '{previous}'.",
                                  code="tool_call_not_found", param="input")
            restored.append(call)
            seen.add(item.get("call_id"))
        restored.append(item)
    return restored


def _complete(payload: dict[str, Any], body: dict[str, Any], resolved: Any, catalog: Catalog,
              options: Options) -> None:
    reasoning = fields.obj(body, "reasoning") or {}
    kept = {key: value for key, value in reasoning.items() if key not in ("effort", "summary")}
    payload["reasoning"] = {**kept, **reasoning_param(
        resolved, catalog, options, (fields.string(reasoning, "effort", "reasoning"),),
        fields.string(reasoning, "summary", "reasoning"))}
    include = fields.array(body, "include") or []
    for number, entry in enumerate(include):
        fields.check(entry, ("string",), f"include[{number}]")
    payload["include"] = [*dict.fromkeys([*include, REASONING_INCLUDE])]
    tools = fields.array(body, "tools")
    choice = fields.get(body, "tool_choice", ("string", "object"))
    if tools is not None:
        payload["tools"] = [_responses_tool(tool, f"tools[{n}]") for n, tool in enumerate(tools)]
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        payload["tool_choice"] = convert_tool_choice(choice)  # the backend refuses Chat's shape
    if tools is None and options.enable_web_search and choice != "none":
        payload["tools"] = [{"type": "web_search"}]
    tier = service_tier(body, resolved, catalog, options)
    if tier:
        payload["service_tier"] = tier
    else:
        payload.pop("service_tier", None)


def _responses_tool(tool: Any, where: str) -> Any:
    """Chat-form function tools become Responses ones; everything else passes as sent."""
    fields.check(tool, ("object",), where)
    if tool.get("type", "function") == "function" and isinstance(tool.get("function"), dict):
        return convert_tool(tool, where)
    return tool


def stored_turn(response_id: str, request: ResponsesRequest, output: list[Item],
                created_at: float) -> StoredResponse:
    """What to keep of a finished turn so that the next one can chain on it."""
    return StoredResponse(response_id=response_id, instructions=request.instructions,
                          context=list(request.context or request.payload["input"]),
                          output=replayable(output), created_at=created_at)


def replayable(output: list[Item]) -> list[Item]:
    """Output items as input items: messages, tool calls, reasoning that can be resent."""
    kept: list[Item] = []
    for item in output:
        kind = item.get("type")
        if kind == "reasoning" and not item.get("encrypted_content"):
            continue
        if kind in WEB_SEARCH_TYPES or kind == "web_search_call":
            continue
        kept.append({key: value for key, value in item.items() if key not in _OUTPUT_ONLY})
    return kept
