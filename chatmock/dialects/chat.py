"""Chat Completions request → Codex Responses payload.

Mapping (spec: translation.md §1.4, §1.5, §2.1), with these choices where the
references differ or fall short:

* leading `system` messages become `instructions`; a `system` message later
  in the conversation becomes a `developer` message in place, so its
  position is kept; `developer` messages stay `developer` (the Codex CLI
  sends its own prompt that way);
* an assistant message's text comes before its tool calls, as the model
  produced them;
* `tool_choice: "required"` is forwarded, and both the Chat form
  `{"type":"function","function":{"name":…}}` and the Responses form are
  accepted; `parallel_tool_calls` keeps OpenAI's default (true);
* `response_format` becomes `text.format` (structured output);
* custom (freeform) tools, in OpenAI's Chat form `{"type":"custom","custom":
  {"name","description","format"}}` or the Responses form, go upstream as
  `custom` tools. Their calls come back as *function* tool calls whose
  arguments are `{"input": "<the freeform text>"}` (`events.arguments_of`),
  because a streamed Chat delta can only carry function calls; a call the
  client sends back for a tool it defined as custom (by name, or in OpenAI's
  `{"type":"custom","custom":{"name","input"}}` form) becomes a
  `custom_tool_call` with that input again, and the `tool` message answering
  it a `custom_tool_call_output`: the backend wants both in its own terms;
* what cannot be expressed upstream (audio parts, `n` > 1, unknown roles or
  tool types) is refused with a 400 naming the field, never dropped silently;
  sampling fields the backend rejects (`temperature`, `max_tokens`, …) are
  dropped, as every OpenAI-compatible backend without them does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chatmock.config import Settings
from chatmock.dialects.common import (
    REASONING_INCLUDE,
    ExtraTools,
    body_reasoning,
    extra_tools,
    image_url,
    include_usage,
    requested_model,
    service_tier,
)
from chatmock.dialects.tool_names import NameMap, shorten_tool_names
from chatmock.errors import ClientError
from chatmock.state.catalog import Catalog, Resolved

Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request, ready to go upstream."""

    payload: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    extra: ExtraTools
    client_tools: list[Item]  # as sent upstream (names the backend refuses renamed)
    tool_names: NameMap = field(default_factory=dict)  # upstream name -> the client's


def chat_request(payload: dict[str, Any], model: str, stream: bool, include_usage: bool,
                 extra: ExtraTools, client_tools: int) -> ChatRequest:
    """The request of a built payload whose first `client_tools` tools are the client's,
    with the tool names the backend would refuse renamed (`tool_names`)."""
    names = shorten_tool_names(payload)
    return ChatRequest(payload, model, stream, include_usage, extra,
                       payload["tools"][:client_tools], names)


def parse_chat_request(body: Any, catalog: Catalog, settings: Settings) -> ChatRequest:
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    model, resolved = requested_model(body, catalog, settings)
    tools = convert_tools(body.get("tools"))
    instructions, items = convert_messages(_messages_of(body), custom_names(tools))
    if body.get("n") not in (None, 1):
        raise ClientError("n > 1 is not supported", code="unsupported_parameter")
    tool_choice = convert_tool_choice(body.get("tool_choice"))
    extra = extra_tools(body, settings, tool_choice, tools)
    payload: dict[str, Any] = {"model": resolved.slug}
    if instructions:
        payload["instructions"] = instructions
    payload.update({
        "input": items,
        "tools": tools + extra.tools,
        "tool_choice": extra.tool_choice or tool_choice,
        "parallel_tool_calls": _bool(body.get("parallel_tool_calls"), True),
        "store": False,
        "stream": True,
        "include": [REASONING_INCLUDE],
        "reasoning": body_reasoning(body, resolved, catalog, settings),
    })
    _add_optional(payload, body, resolved, catalog, settings)
    return chat_request(payload, model, bool(body.get("stream")), include_usage(body), extra,
                        len(tools))


def _add_optional(payload: dict[str, Any], body: dict[str, Any], resolved: Resolved,
                  catalog: Catalog, settings: Settings) -> None:
    tier = service_tier(body, resolved, catalog, settings)
    if tier:
        payload["service_tier"] = tier
    text = text_format(body.get("response_format"))
    verbosity = body.get("verbosity")
    if isinstance(verbosity, str):
        text["verbosity"] = verbosity
    if text:
        payload["text"] = text


def _messages_of(body: dict[str, Any]) -> list[Any]:
    messages = body.get("messages")
    if messages is None:
        for key in ("prompt", "input"):
            if isinstance(body.get(key), str):
                return [{"role": "user", "content": body[key]}]
    if not isinstance(messages, list) or not messages:
        raise ClientError("Request must include messages: [] with at least one message",
                          code="invalid_messages")
    return messages


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


# -- messages -------------------------------------------------------------------


def convert_messages(messages: list[Any],
                     custom: frozenset[str] = frozenset()) -> tuple[str, list[Item]]:
    """(instructions, input items) of a Chat `messages` list; calls of the `custom` tools
    (names) and their results go upstream as custom tool items."""
    instructions: list[str] = []
    items: list[Item] = []
    custom_calls: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ClientError(f"messages[{index}] must be an object", code="invalid_messages")
        role = message.get("role")
        where = f"messages[{index}]"
        if role == "system" and not items:
            instructions.extend(_texts(message.get("content"), where))
        elif role in ("system", "developer", "user"):
            upstream_role = "user" if role == "user" else "developer"
            _append_message(items, upstream_role, _user_parts(message.get("content"), where))
        elif role == "assistant":
            items.extend(_assistant_items(message, where, custom, custom_calls))
        elif role == "tool":
            items.append(_tool_output(message, where, custom_calls))
        else:
            raise ClientError(f"{where}.role {role!r} is not supported "
                              "(use system, developer, user, assistant or tool)",
                              code="invalid_messages")
    return "\n\n".join(t for t in instructions if t), items


def _append_message(items: list[Item], role: str, parts: list[Item]) -> None:
    if parts:
        items.append({"type": "message", "role": role, "content": parts})


def _texts(content: Any, where: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                texts.append(str(part.get("text") or ""))
            else:
                raise ClientError(f"{where}.content may only hold text parts here",
                                  code="invalid_messages")
        return texts
    raise ClientError(f"{where}.content must be a string or a list of parts",
                      code="invalid_messages")


def _user_parts(content: Any, where: str) -> list[Item]:
    if content is None or isinstance(content, str):
        return [{"type": "input_text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ClientError(f"{where}.content must be a string or a list of parts",
                          code="invalid_messages")
    parts = []
    for number, part in enumerate(content):
        converted = _user_part(part, f"{where}.content[{number}]")
        if converted is not None:
            parts.append(converted)
    return parts


def _user_part(part: Any, where: str) -> Item | None:
    if not isinstance(part, dict):
        raise ClientError(f"{where} must be an object", code="invalid_messages")
    kind = part.get("type")
    if kind in ("text", "input_text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise ClientError(f"{where}.text must be a string", code="invalid_messages")
        return {"type": "input_text", "text": text} if text else None
    if kind in ("image_url", "input_image"):
        url = part.get("image_url")
        if isinstance(url, dict):
            url = url.get("url")
        if not isinstance(url, str) or not url:
            raise ClientError(f"{where}.image_url.url must be a string", code="invalid_messages")
        return {"type": "input_image", "image_url": image_url(url)}
    if kind == "file":
        file = as_object(part.get("file"))
        converted: Item = {key: file[key] for key in ("file_data", "file_id", "filename")
                           if key in file}
        if not converted:
            raise ClientError(f"{where}.file needs file_data or file_id", code="invalid_messages")
        return {"type": "input_file", **converted}
    raise ClientError(f"{where}: content parts of type {kind!r} are not supported",
                      code="invalid_messages")


def _assistant_items(message: dict[str, Any], where: str, custom: frozenset[str],
                     custom_calls: set[str]) -> list[Item]:
    items: list[Item] = []
    texts = [t for t in _assistant_texts(message.get("content"), where) if t]
    if texts:
        items.append({"type": "message", "role": "assistant",
                      "content": [{"type": "output_text", "text": t} for t in texts]})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ClientError(f"{where}.tool_calls must be a list", code="invalid_messages")
    for number, call in enumerate(calls):
        item = _function_call(call, f"{where}.tool_calls[{number}]", custom)
        if item["type"] == "custom_tool_call":
            custom_calls.add(item["call_id"])
        items.append(item)
    return items


def _assistant_texts(content: Any, where: str) -> list[str]:
    if not isinstance(content, list):
        return _texts(content, where)
    texts = []
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("text", "output_text", "refusal"):
            raise ClientError(f"{where}.content[{number}]: assistant content parts must be "
                              "text or refusal", code="invalid_messages")
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return texts


def _function_call(call: Any, where: str, custom: frozenset[str]) -> Item:
    if not isinstance(call, dict) or call.get("type", "function") not in ("function", "custom"):
        raise ClientError(f"{where} must be a function tool call", code="invalid_messages")
    kind = call.get("type", "function")
    function = as_object(call.get(kind))
    call_id = call.get("id") or call.get("call_id")
    name = function.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise ClientError(f"{where}.id is required", code="invalid_messages")
    if not isinstance(name, str) or not name:
        raise ClientError(f"{where}.{kind}.name is required", code="invalid_messages")
    if kind == "custom":
        text = function.get("input")
        return _custom_call(call_id, name, text if isinstance(text, str) else "")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    if name in custom:
        return _custom_call(call_id, name, freeform_input(arguments))
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def _custom_call(call_id: str, name: str, text: str) -> Item:
    return {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": text}


def freeform_input(arguments: str) -> str:
    """A custom tool's input from the arguments its call was shown with (`{"input": …}`);
    arguments of another shape are taken as the input itself."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    text = value.get("input") if isinstance(value, dict) else None
    return text if isinstance(text, str) else arguments


def _tool_output(message: dict[str, Any], where: str, custom_calls: set[str]) -> Item:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise ClientError(f"{where}.tool_call_id is required", code="invalid_messages")
    content = message.get("content")
    if isinstance(content, list):
        output = "\n".join(str(part.get("text") or "") for part in content
                           if isinstance(part, dict))
    elif content is None:
        output = ""
    else:
        output = content if isinstance(content, str) else json.dumps(content)
    kind = "custom_tool_call_output" if call_id in custom_calls else "function_call_output"
    return {"type": kind, "call_id": call_id, "output": output}


# -- tools ------------------------------------------------------------------------


def convert_tools(tools: Any) -> list[Item]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise ClientError("tools must be a list", code="invalid_tools")
    return [_tool(tool, f"tools[{number}]") for number, tool in enumerate(tools)]


def _tool(tool: Any, where: str) -> Item:
    if not isinstance(tool, dict):
        raise ClientError(f"{where} must be an object", code="invalid_tools")
    kind = tool.get("type", "function")
    if kind in ("web_search", "web_search_preview"):
        return tool
    if kind == "custom":
        return _custom_tool(tool, where)
    if kind != "function":
        raise ClientError(f"{where}: tools of type {kind!r} are not supported",
                          code="invalid_tools")
    function = as_object(tool.get("function")) or tool
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ClientError(f"{where}.function.name is required", code="invalid_tools")
    parameters = function.get("parameters")
    return {"type": "function", "name": name, "description": function.get("description") or "",
            "strict": function.get("strict") is True,
            "parameters": parameters if isinstance(parameters, dict)
            else {"type": "object", "properties": {}}}


def _custom_tool(tool: dict[str, Any], where: str) -> Item:
    """A custom tool in the Chat form (`{"custom": {...}}`) or already in the Responses form."""
    spec = as_object(tool.get("custom")) or tool
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ClientError(f"{where}.custom.name is required", code="invalid_tools")
    converted: Item = {"type": "custom", "name": name}
    converted.update({key: spec[key] for key in ("description", "format") if spec.get(key)})
    return converted


def custom_names(tools: list[Item]) -> frozenset[str]:
    """Names of the custom tools among converted tools."""
    return frozenset(tool["name"] for tool in tools if tool.get("type") == "custom")


def convert_tool_choice(choice: Any) -> Any:
    if choice is None:
        return "auto"
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        kind = choice.get("type")
        function = choice.get("function")
        if kind == "function" and isinstance(function, dict) and function.get("name"):
            return {"type": "function", "name": function["name"]}
        if kind == "function" and choice.get("name"):
            return {"type": "function", "name": choice["name"]}
        named = as_object(choice.get("custom")).get("name") or choice.get("name")
        if kind == "custom" and isinstance(named, str) and named:
            return {"type": "custom", "name": named}
        if kind in ("auto", "none", "required"):
            return kind
    raise ClientError(f"tool_choice {json.dumps(choice)} is not supported", code="invalid_tools")


def text_format(response_format: Any) -> dict[str, Any]:
    """Chat `response_format` → Responses `text` (structured output)."""
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return {}
    kind = response_format.get("type")
    if kind == "json_object":
        return {"format": {"type": "json_object"}}
    spec = as_object(response_format.get("json_schema"))
    if kind == "json_schema" and spec:
        converted = {"type": "json_schema", "name": spec.get("name") or "response",
                     "schema": spec.get("schema") or {}}
        if "strict" in spec:
            converted["strict"] = bool(spec["strict"])
        if spec.get("description"):
            converted["description"] = spec["description"]
        return {"format": converted}
    raise ClientError("response_format must be text, json_object or json_schema",
                      code="invalid_response_format")
