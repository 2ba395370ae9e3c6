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
(unless the client already resent them, or resent the output), instructions are inherited when the
new request has none, and a `function_call_output` whose call is missing gets
the stored `function_call` put back in front of it. An unknown or expired id,
or a call id found nowhere, is a 400 that names it. Items the backend could
not find by id (reasoning without its encrypted content, `item_reference`s)
are repaired first (`chatmock.dialects.input_repair`).

Sans-I/O: the stored turn and items come in a `StoreAnswer` the route looked
up for the body's `store_query`; nothing here reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatmock.config import Settings
from chatmock.dialects.chat import (
    as_object,
    convert_messages,
    convert_tool_choice,
    convert_tools,
)
from chatmock.dialects.common import (
    REASONING_INCLUDE,
    WEB_SEARCH_TYPES,
    reasoning_param,
    service_tier,
)
from chatmock.dialects.input_repair import previous_response_id, restore_items
from chatmock.dialects.tool_names import NameMap, shorten_tool_names
from chatmock.errors import ClientError
from chatmock.state.catalog import Catalog
from chatmock.state.response_store import StoreAnswer, StoredResponse

Item = dict[str, Any]

# Fields the backend answers with "Unsupported parameter" (upstream.md §3.3).
UNSUPPORTED_FIELDS = ("max_output_tokens", "max_tokens", "max_completion_tokens", "metadata",
                      "user", "stream_options", "prompt_cache_retention", "temperature", "top_p",
                      "top_logprobs", "frequency_penalty", "presence_penalty", "seed", "n",
                      "stop", "logprobs", "response_format", "background", "safety_identifier",
                      "truncation", "fast_mode")
# Output item fields that describe the answer but are not valid in a request's input.
_OUTPUT_ONLY = ("status",)


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    payload: dict[str, Any]
    stream: bool
    instructions: str | None
    dropped: tuple[str, ...] = ()  # ids of reasoning items that could not be restored
    context: tuple[Item, ...] = ()  # the input with the client's tool names (to store)
    tool_names: NameMap = field(default_factory=dict)  # upstream -> client, if renamed


def parse_responses_request(body: Any, catalog: Catalog, settings: Settings,
                            stored: StoreAnswer | None = None) -> ResponsesRequest:
    """The upstream payload of a Responses body; `stored`: what the route found in the
    local store for `input_repair.store_query(body)`."""
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    payload = {key: value for key, value in body.items() if key not in UNSUPPORTED_FIELDS}
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ClientError("model must be a string", code="invalid_model")
    resolved = catalog.resolve(model, settings.debug_model)
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
    _complete(payload, body, resolved, catalog, settings)
    context = tuple(items)
    return ResponsesRequest(payload, body.get("stream") is True, instructions or None,
                            tuple(dropped), context, shorten_tool_names(payload))


def _input_of(body: dict[str, Any]) -> tuple[str, list[Item]]:
    """(instructions, input items) of a Responses body, or of a chat-shaped one."""
    own = body.get("instructions")
    if own is not None and not isinstance(own, str):
        raise ClientError("instructions must be a string", code="invalid_instructions")
    if "input" not in body and isinstance(body.get("messages"), list):
        system, items = convert_messages(body["messages"])
        return _join(own, system), items
    raw = body.get("input", body.get("prompt"))
    if isinstance(raw, str):
        items = [{"type": "message", "role": "user",
                  "content": [{"type": "input_text", "text": raw}]}]
    elif isinstance(raw, dict):
        items = [raw]
    elif isinstance(raw, list):
        items = [item for item in raw if isinstance(item, dict)]
    else:
        raise ClientError("input must be a string or a list of input items",
                          code="invalid_input")
    system, items = _lift_system_messages(items)
    return _join(own, system), items


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
                          code="previous_response_not_found")
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
    calls = {item.get("call_id"): item for item in history
             if item.get("type") in ("function_call", "custom_tool_call")}
    seen: set[Any] = set()
    restored: list[Item] = []
    for item in items:
        kind = item.get("type")
        if kind in ("function_call", "custom_tool_call"):
            seen.add(item.get("call_id"))
        elif kind in ("function_call_output", "custom_tool_call_output") and \
                item.get("call_id") not in seen:
            call = calls.get(item.get("call_id"))
            if call is None:
                raise ClientError(f"No tool call found for call_id '{item.get('call_id')}' in "
                                  f"this input or in response '{previous}'.",
                                  code="tool_call_not_found")
            restored.append(call)
            seen.add(item.get("call_id"))
        restored.append(item)
    return restored


def _complete(payload: dict[str, Any], body: dict[str, Any], resolved: Any, catalog: Catalog,
              settings: Settings) -> None:
    reasoning = as_object(body.get("reasoning"))
    kept = {key: value for key, value in reasoning.items() if key not in ("effort", "summary")}
    payload["reasoning"] = {**kept, **reasoning_param(
        resolved, catalog, settings, (reasoning.get("effort"),), reasoning.get("summary"))}
    include = [i for i in body.get("include") or [] if isinstance(i, str)]
    payload["include"] = [*dict.fromkeys([*include, REASONING_INCLUDE])]
    tools = body.get("tools")
    if isinstance(tools, list):
        payload["tools"] = [_responses_tool(tool) for tool in tools]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        payload["tool_choice"] = convert_tool_choice(choice)  # the backend refuses Chat's shape
    elif settings.enable_web_search and body.get("tool_choice") != "none":
        payload["tools"] = [{"type": "web_search"}]
    tier = service_tier(body, resolved, catalog, settings)
    if tier:
        payload["service_tier"] = tier
    else:
        payload.pop("service_tier", None)


def _responses_tool(tool: Any) -> Any:
    """Chat-form function tools become Responses ones; everything else passes as sent."""
    if isinstance(tool, dict) and tool.get("type", "function") == "function" and \
            isinstance(tool.get("function"), dict):
        return convert_tools([tool])[0]
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
