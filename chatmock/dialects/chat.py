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
  sampling fields (`temperature`, `max_tokens`, …) are checked and kept out
  of the payload, which the Codex backend would refuse with them; they travel
  beside it as `sampling` for chat-completions providers
  (`chatmock.dialects.sampling`);
* every field read is type-checked (`chatmock.dialects.fields`): a wrong
  type is OpenAI's 400 `invalid_type` with `param` set to its path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chatmock.catalog import Catalog, Resolved
from chatmock.dialects.common import (
    REASONING_INCLUDE,
    WEB_SEARCH_TYPES,
    ExtraTools,
    body_reasoning,
    extra_tools,
    image_url,
    include_usage,
    refuse_choices,
    requested_model,
    service_tier,
)
from chatmock.dialects.fields import OPENAI as fields
from chatmock.dialects.options import Options
from chatmock.dialects.sampling import NONE, Sampling, openai_sampling
from chatmock.dialects.tool_names import NameMap, shorten_tool_names
from chatmock.errors import ClientError

Item = dict[str, Any]
ROLES = ("system", "developer", "user", "assistant", "tool")
_TEXT_PARTS = ("text", "input_text")
_USER_PARTS = ("text", "input_text", "image_url", "input_image", "file")
_ASSISTANT_PARTS = ("text", "output_text", "refusal")
_TOOL_CHOICES = ("auto", "none", "required")
_FORMATS = ("text", "json_object", "json_schema")


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
    sampling: Sampling = NONE  # for chat-completions providers, never in the payload

    def without_extra_tools(self) -> dict[str, Any] | None:
        """The payload to send again if the backend refuses the web-search tools chatmock
        added (`extra`): the client's tools only; None when chatmock added none."""
        if not self.extra.tools:
            return None
        payload = dict(self.payload, tools=self.client_tools)
        if self.extra.tool_choice:
            payload["tool_choice"] = "auto"
        return payload


def chat_request(payload: dict[str, Any], model: str, stream: bool, include_usage: bool,
                 extra: ExtraTools, client_tools: int, sampling: Sampling = NONE) -> ChatRequest:
    """The request of a built payload whose first `client_tools` tools are the client's,
    with the tool names the backend would refuse renamed (`tool_names`)."""
    names = shorten_tool_names(payload)
    return ChatRequest(payload, model, stream, include_usage, extra,
                       payload["tools"][:client_tools], names, sampling)


def parse_chat_request(body: Any, catalog: Catalog, options: Options) -> ChatRequest:
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    model, resolved = requested_model(body, catalog, options)
    tools = convert_tools(body.get("tools"))
    instructions, items = convert_messages(_messages_of(body), custom_names(tools))
    refuse_choices(body, ("n",))
    tool_choice = convert_tool_choice(body.get("tool_choice"))
    extra = extra_tools(body, options, tool_choice, tools)
    payload: dict[str, Any] = {"model": resolved.slug}
    if instructions:
        payload["instructions"] = instructions
    payload.update({
        "input": items,
        "tools": tools + extra.tools,
        "tool_choice": extra.tool_choice or tool_choice,
        "parallel_tool_calls": fields.boolean(body, "parallel_tool_calls", True),
        "store": False,
        "stream": True,
        "include": [REASONING_INCLUDE],
        "reasoning": body_reasoning(body, resolved, catalog, options),
    })
    _add_optional(payload, body, resolved, catalog, options)
    return chat_request(payload, model, fields.boolean(body, "stream", False),
                        include_usage(body), extra, len(tools), openai_sampling(body))


def _add_optional(payload: dict[str, Any], body: dict[str, Any], resolved: Resolved,
                  catalog: Catalog, options: Options) -> None:
    tier = service_tier(body, resolved, catalog, options)
    if tier:
        payload["service_tier"] = tier
    text = text_format(body.get("response_format"))
    verbosity = fields.string(body, "verbosity")
    if verbosity is not None:
        text["verbosity"] = verbosity
    if text:
        payload["text"] = text


def _messages_of(body: dict[str, Any]) -> list[Any]:
    messages = fields.array(body, "messages")
    if messages is None:
        for key in ("prompt", "input"):
            if isinstance(body.get(key), str):
                return [{"role": "user", "content": body[key]}]
        raise fields.missing("messages")
    if not messages:
        raise fields.invalid("messages", "empty array. Expected an array with minimum length "
                             "1, but got an empty array instead.", "empty_array")
    return messages


# -- messages -------------------------------------------------------------------


def convert_messages(messages: list[Any],
                     custom: frozenset[str] = frozenset()) -> tuple[str, list[Item]]:
    """(instructions, input items) of a Chat `messages` list; calls of the `custom` tools
    (names) and their results go upstream as custom tool items."""
    instructions: list[str] = []
    items: list[Item] = []
    custom_calls: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        fields.check(message, ("object",), where)
        role = fields.choice(message, "role", ROLES, where)
        if role is None:
            raise fields.missing(f"{where}.role")
        if role == "system" and not items:
            instructions.extend(_texts(message.get("content"), where))
        elif role in ("system", "developer", "user"):
            upstream_role = "user" if role == "user" else "developer"
            _append_message(items, upstream_role, _user_parts(message.get("content"), where))
        elif role == "assistant":
            items.extend(_assistant_items(message, where, custom, custom_calls))
        else:
            items.append(_tool_output(message, where, custom_calls))
    return "\n\n".join(t for t in instructions if t), items


def _append_message(items: list[Item], role: str, parts: list[Item]) -> None:
    if parts:
        items.append({"type": "message", "role": role, "content": parts})


def _content(content: Any, where: str) -> str | list[Any] | None:
    """A message's `content`: a string, a list of parts, or None."""
    if content is None or isinstance(content, str | list):
        return content
    raise fields.wrong_type(f"{where}.content", ("string", "array"), content)


def _part_type(part: Any, where: str, allowed: tuple[str, ...]) -> str:
    """The `type` of a content part, refused unless it is one of `allowed`."""
    fields.check(part, ("object",), where)
    kind = fields.string(part, "type", where)
    if kind is None:
        raise fields.missing(f"{where}.type")
    if kind not in allowed:
        raise ClientError(f"{where}: content parts of type {kind!r} are not supported here "
                          f"(use {', '.join(allowed)})", code="invalid_value",
                          param=f"{where}.type")
    return kind


def _texts(content: Any, where: str) -> list[str]:
    content = _content(content, where)
    if content is None or isinstance(content, str):
        return [] if content is None else [content]
    texts = []
    for number, part in enumerate(content):
        at = f"{where}.content[{number}]"
        _part_type(part, at, _TEXT_PARTS)
        texts.append(fields.string(part, "text", at) or "")
    return texts


def _user_parts(content: Any, where: str) -> list[Item]:
    content = _content(content, where)
    if content is None or isinstance(content, str):
        return [{"type": "input_text", "text": content}] if content else []
    parts = []
    for number, part in enumerate(content):
        converted = _user_part(part, f"{where}.content[{number}]")
        if converted is not None:
            parts.append(converted)
    return parts


def _user_part(part: Any, where: str) -> Item | None:
    kind = _part_type(part, where, _USER_PARTS)
    if kind in _TEXT_PARTS:
        text = fields.string(part, "text", where)
        if text is None:
            raise fields.missing(f"{where}.text")
        return {"type": "input_text", "text": text} if text else None
    if kind == "file":
        file = fields.obj(part, "file", where) or {}
        for key in ("file_data", "file_id", "filename"):
            fields.string(file, key, f"{where}.file")
        converted: Item = {key: file[key] for key in ("file_data", "file_id", "filename")
                           if file.get(key) is not None}
        if not converted:
            raise fields.missing(f"{where}.file.file_data")
        return {"type": "input_file", **converted}
    url = fields.get(part, "image_url", ("string", "object"), where)
    if isinstance(url, dict):
        url = fields.string(url, "url", f"{where}.image_url")
    if not url:
        raise fields.missing(f"{where}.image_url.url")
    return {"type": "input_image", "image_url": image_url(url)}


def _assistant_items(message: dict[str, Any], where: str, custom: frozenset[str],
                     custom_calls: set[str]) -> list[Item]:
    items: list[Item] = []
    texts = [t for t in _assistant_texts(message.get("content"), where) if t]
    if texts:
        items.append({"type": "message", "role": "assistant",
                      "content": [{"type": "output_text", "text": t} for t in texts]})
    calls = fields.array(message, "tool_calls", where) or []
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
        at = f"{where}.content[{number}]"
        key = "refusal" if _part_type(part, at, _ASSISTANT_PARTS) == "refusal" else "text"
        texts.append(fields.string(part, key, at) or "")
    return texts


def _function_call(call: Any, where: str, custom: frozenset[str]) -> Item:
    """A tool call of an assistant message: a function call, or a custom tool's call (in
    OpenAI's custom form, or as a function call naming a tool defined as custom)."""
    fields.check(call, ("object",), where)
    kind = fields.choice(call, "type", ("function", "custom"), where) or "function"
    function = fields.obj(call, kind, where)
    if function is None:
        raise fields.missing(f"{where}.{kind}")
    call_id = fields.string(call, "id", where) or fields.string(call, "call_id", where)
    name = fields.string(function, "name", f"{where}.{kind}")
    if not call_id:
        raise fields.missing(f"{where}.id")
    if not name:
        raise fields.missing(f"{where}.{kind}.name")
    if kind == "custom":
        return _custom_call(call_id, name, fields.string(function, "input", f"{where}.custom")
                            or "")
    arguments = fields.get(function, "arguments", ("string", "object"), f"{where}.function")
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
    call_id = fields.string(message, "tool_call_id", where)
    if not call_id:
        raise fields.missing(f"{where}.tool_call_id")
    content = message.get("content")
    if content is None or isinstance(content, str | list):
        output = "\n".join(_texts(content, where))
    else:  # a tool's result as a JSON value: its JSON text
        output = json.dumps(content)
    kind = "custom_tool_call_output" if call_id in custom_calls else "function_call_output"
    return {"type": kind, "call_id": call_id, "output": output}


# -- tools ------------------------------------------------------------------------


def convert_tools(tools: Any) -> list[Item]:
    if tools is None:
        return []
    fields.check(tools, ("array",), "tools")
    return [convert_tool(tool, f"tools[{number}]") for number, tool in enumerate(tools)]


def convert_tool(tool: Any, where: str) -> Item:
    """One tool in the Chat form (`{"type": "function", "function": {...}}`) or the
    Responses one (the function's fields on the tool itself); web search as sent."""
    checked: Item = fields.check(tool, ("object",), where)
    kind = fields.string(checked, "type", where) or "function"
    if kind in WEB_SEARCH_TYPES:
        return checked
    if kind == "custom":
        return _custom_tool(checked, where)
    if kind != "function":
        raise ClientError(f"{where}: tools of type {kind!r} are not supported",
                          code="invalid_value", param=f"{where}.type")
    function = fields.obj(tool, "function", where)
    at = where if function is None else f"{where}.function"
    function = tool if function is None else function
    name = fields.string(function, "name", at)
    if not name:
        raise fields.missing(f"{at}.name")
    parameters = fields.obj(function, "parameters", at)
    return {"type": "function", "name": name,
            "description": fields.string(function, "description", at) or "",
            "strict": fields.boolean(function, "strict", False, at),
            "parameters": {"type": "object", "properties": {}} if parameters is None
            else parameters}


def _custom_tool(tool: dict[str, Any], where: str) -> Item:
    """A custom tool in the Chat form (`{"custom": {...}}`) or already in the Responses form."""
    spec = fields.obj(tool, "custom", where)
    at = where if spec is None else f"{where}.custom"
    spec = tool if spec is None else spec
    name = fields.string(spec, "name", at)
    if not name:
        raise fields.missing(f"{at}.name")
    converted: Item = {"type": "custom", "name": name}
    description = fields.string(spec, "description", at)
    if description:
        converted["description"] = description
    grammar = fields.obj(spec, "format", at)
    if grammar:
        converted["format"] = grammar
    return converted


def custom_names(tools: list[Item]) -> frozenset[str]:
    """Names of the custom tools among converted tools."""
    return frozenset(tool["name"] for tool in tools if tool.get("type") == "custom")


def convert_tool_choice(choice: Any) -> Any:
    if choice is None:
        return "auto"
    fields.check(choice, ("string", "object"), "tool_choice")
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise fields.invalid_value("tool_choice", choice, _TOOL_CHOICES)
        return choice
    kind = fields.choice(choice, "type", ("function", "custom", *_TOOL_CHOICES), "tool_choice")
    if kind is None:
        raise fields.missing("tool_choice.type")
    if kind not in ("function", "custom"):
        return kind
    named = fields.obj(choice, kind, "tool_choice")
    at = "tool_choice" if named is None else f"tool_choice.{kind}"
    name = fields.string(choice if named is None else named, "name", at)
    if not name:
        raise fields.missing(f"{at}.name")
    return {"type": kind, "name": name}


def text_format(response_format: Any) -> dict[str, Any]:
    """Chat `response_format` → Responses `text` (structured output)."""
    if response_format is None:
        return {}
    fields.check(response_format, ("object",), "response_format")
    kind = fields.choice(response_format, "type", _FORMATS, "response_format")
    if kind in (None, "text"):
        return {}
    if kind == "json_object":
        return {"format": {"type": "json_object"}}
    at = "response_format.json_schema"
    spec = fields.obj(response_format, "json_schema", "response_format")
    if spec is None:
        raise fields.missing(at)
    converted = {"type": "json_schema", "name": fields.string(spec, "name", at) or "response",
                 "schema": fields.obj(spec, "schema", at) or {}}
    strict = fields.get(spec, "strict", ("boolean",), at)
    if strict is not None:
        converted["strict"] = strict
    description = fields.string(spec, "description", at)
    if description:
        converted["description"] = description
    return {"format": converted}
