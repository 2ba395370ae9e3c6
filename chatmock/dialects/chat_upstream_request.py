"""Codex Responses payload → an OpenAI chat-completions request (xAI, OpenRouter, others).

Every dialect produces the Codex payload (`instructions`, `input` items,
Responses `tools`, `tool_choice`, `reasoning`, `text`); `chat_request` maps it
for a provider that speaks `POST /chat/completions`. `flavor` is `xai`,
`openrouter` or anything else for a generic OpenAI-compatible server.

* `instructions` → a leading `system` message; `developer` messages →
  `system` (many servers' chat templates know no `developer` role).
* Messages: text parts → text; `input_image` → an `image_url` part (with its
  `detail`); `input_file` → a `file` part on OpenRouter, refused elsewhere;
  assistant `output_text` / `refusal` → content text.
* `function_call` items → `tool_calls` of one assistant message (with the
  text that came just before them); `function_call_output` → `tool` messages
  (text output, or the texts of an output part list).
* `reasoning` items: only OpenRouter takes reasoning back, as
  `reasoning_details` on the next assistant message: the details chatmock got
  from OpenRouter travel inside `encrypted_content` (`pack_reasoning_details`),
  else the summary text becomes one `reasoning.text` detail (models such as
  Kimi refuse tool turns without it). Other providers get none back.
* Tools: Responses function tools → chat function tools; `web_search` →
  OpenRouter's `plugins: [{"id": "web"}]`, refused elsewhere; other tool
  types (custom, namespace, local shell) are refused. `tool_choice` follows.
* Reasoning effort (Codex efforts none…ultra): OpenRouter
  `reasoning: {effort}` (`max`/`ultra` → `xhigh`), with `exclude: true` when
  no summary was asked for; xAI `reasoning_effort` only for a model known to
  take it (`XAI_EFFORTS`, or the `efforts` passed in), moved to the nearest
  effort it allows (ties go lower); other servers `reasoning_effort` in
  low/medium/high.
* `text.format` → `response_format`; `stream: true` with
  `stream_options.include_usage` (never relied on: providers differ).
* `sampling`: the client's sampling parameters, which travel beside the
  Codex payload (`chatmock.dialects.sampling.Sampling.chat_fields`:
  temperature, top_p, max_tokens, stop, seed, penalties, top_k), under the
  same names. xAI reasoning models refuse penalties and `stop`, so those are
  dropped for them; `top_k` (not an OpenAI parameter) goes to OpenRouter
  only, which documents it: xAI's and OpenAI's own API refuse it, and a
  generic server may be either. Only these keys leave (`SAMPLING`).

Whatever cannot be expressed is a 400 naming the provider, never dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from chatmock.config import EFFORTS
from chatmock.errors import ClientError

Item = dict[str, Any]
Message = dict[str, Any]
DETAILS_PREFIX = "chatmock.reasoning_details.v1:"
XAI_EFFORTS: dict[str, tuple[str, ...]] = {
    "grok-3-mini": ("low", "high"),
    "grok-4.3": ("none", "low", "medium", "high"),
    "grok-4.5": ("low", "medium", "high"),
    "grok-4.20-multi-agent": ("low", "medium", "high", "xhigh"),
}
"""xAI models known to take `reasoning_effort` (providers.md §1.2); others refuse it."""
XAI_REASONING_PREFIXES = ("grok-3-mini", "grok-4", "grok-code")
OPENROUTER_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
GENERIC_EFFORTS = ("low", "medium", "high")
SAMPLING = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
            "presence_penalty", "frequency_penalty")


def pack_reasoning_details(details: list[Any]) -> str:
    """OpenRouter's `reasoning_details` as a Responses `encrypted_content` string."""
    raw = json.dumps(details, separators=(",", ":"), ensure_ascii=False).encode()
    return DETAILS_PREFIX + base64.urlsafe_b64encode(raw).decode()


def unpack_reasoning_details(text: Any) -> list[Any] | None:
    """The details `pack_reasoning_details` packed, or None for any other string."""
    if not isinstance(text, str) or not text.startswith(DETAILS_PREFIX):
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text[len(DETAILS_PREFIX):]))
    except (ValueError, binascii.Error):
        return None
    return value if isinstance(value, list) else None


def chat_request(payload: Mapping[str, Any], *, model: str, flavor: str,
                 sampling: Mapping[str, Any] | None = None,
                 efforts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The chat-completions body for `payload`; see the module docstring."""
    body: dict[str, Any] = {"model": model,
                            "messages": chat_messages(payload, flavor)}
    _add_tools(body, payload, flavor)
    _add_reasoning(body, payload.get("reasoning"), model, flavor, efforts)
    response_format = _response_format(payload.get("text"))
    if response_format is not None:
        body["response_format"] = response_format
    _add_sampling(body, sampling or {}, model, flavor)
    body.update(stream=True, stream_options={"include_usage": True})
    return body


def _add_sampling(body: dict[str, Any], sampling: Mapping[str, Any], model: str,
                  flavor: str) -> None:
    names = SAMPLING + (("top_k",) if flavor == "openrouter" else ())
    for name in names:
        if sampling.get(name) is not None:
            body[name] = sampling[name]
    if flavor == "xai" and model.startswith(XAI_REASONING_PREFIXES) \
            and not model.endswith("non-reasoning"):
        for name in ("presence_penalty", "frequency_penalty", "stop"):
            body.pop(name, None)


# -- messages -------------------------------------------------------------------------


def chat_messages(payload: Mapping[str, Any], flavor: str) -> list[Message]:
    """The `messages` of the payload's instructions and input items."""
    builder = _Messages(flavor)
    instructions = payload.get("instructions")
    if isinstance(instructions, str) and instructions:
        builder.messages.append({"role": "system", "content": instructions})
    items = payload.get("input")
    for index, item in enumerate(items if isinstance(items, list) else []):
        builder.add(item, f"input[{index}]")
    builder.flush()
    return builder.messages


class _Messages:
    """Collects messages; an assistant turn stays open so that its tool calls and the
    reasoning before it join one message."""

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor
        self.messages: list[Message] = []
        self.turn: Message | None = None
        self.details: list[Any] = []

    def add(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise ClientError(f"{where} must be an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            self._message(item, where)
        elif kind == "function_call":
            self._assistant().setdefault("tool_calls", []).append(_tool_call(item, where))
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise ClientError(f"{where}: a function_call_output needs a call_id")
            self.flush()
            self.messages.append({"role": "tool", "tool_call_id": item["call_id"],
                                  "content": _tool_output(item.get("output"), where)})
        elif kind == "reasoning":
            self._reasoning(item)
        elif kind != "web_search_call":  # a server-side search has nothing to send back
            raise ClientError(f"{where}: input items of type {kind!r} cannot be sent to "
                              f"the {self.flavor} provider", code="unsupported_input")

    def _message(self, item: Item, where: str) -> None:
        role = item.get("role")
        if role == "assistant":
            text = _assistant_text(item.get("content"), where)
            turn = self._assistant()
            if text and turn.get("tool_calls"):  # text after calls starts a new turn
                self.flush()
                turn = self._assistant()
            if text:
                turn["content"] = (turn.get("content") or "") + text
            return
        self.flush()
        chat_role = "user" if role == "user" else "system"
        self.messages.append({"role": chat_role,
                              "content": self._content(item.get("content"), where)})

    def _assistant(self) -> Message:
        if self.turn is None:
            self.turn = {"role": "assistant", "content": None}
            if self.details:
                self.turn["reasoning_details"] = self.details
                self.details = []
        return self.turn

    def flush(self) -> None:
        if self.turn is not None:
            self.messages.append(self.turn)
            self.turn = None

    def _reasoning(self, item: Item) -> None:
        if self.flavor != "openrouter":
            return
        self.flush()
        details = unpack_reasoning_details(item.get("encrypted_content"))
        if details is None:
            text = "\n\n".join(str(part.get("text") or "") for part in item.get("summary") or []
                               if isinstance(part, dict))
            details = [{"type": "reasoning.text", "text": text, "format": "unknown",
                        "index": 0}] if text else []
        self.details += details

    def _content(self, content: Any, where: str) -> Any:
        if isinstance(content, str):
            return content
        parts = [self._part(part, f"{where}.content[{n}]")
                 for n, part in enumerate(content if isinstance(content, list) else [])]
        if all(part["type"] == "text" for part in parts):
            return "".join(part["text"] for part in parts)
        return parts

    def _part(self, part: Any, where: str) -> dict[str, Any]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            return {"type": "text", "text": str(part.get("text") or "")}
        if kind == "input_image":
            image: dict[str, Any] = {"url": part.get("image_url")}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            return {"type": "image_url", "image_url": image}
        if kind == "input_file" and self.flavor == "openrouter" and part.get("file_data"):
            return {"type": "file", "file": {"filename": part.get("filename") or "file",
                                             "file_data": part["file_data"]}}
        raise ClientError(f"{where}: content of type {kind!r} cannot be sent to the "
                          f"{self.flavor} provider", code="unsupported_content")


def _assistant_text(content: Any, where: str) -> str:
    if isinstance(content, str) or content is None:
        return content or ""
    texts = []
    for number, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("output_text", "input_text", "text", "refusal"):
            raise ClientError(f"{where}.content[{number}]: assistant content of type {kind!r} "
                              "cannot be sent to this provider", code="unsupported_content")
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return "".join(texts)


def _tool_call(item: Item, where: str) -> dict[str, Any]:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise ClientError(f"{where}: a function_call needs call_id and name")
    arguments = item.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def _tool_output(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = []
        for part in output:
            if not isinstance(part, dict) or part.get("type") not in ("input_text",
                                                                       "output_text", "text"):
                raise ClientError(f"{where}.output: only text tool results can be sent to "
                                  "this provider", code="unsupported_content")
            texts.append(str(part.get("text") or ""))
        return "\n".join(texts)
    return "" if output is None else json.dumps(output)


# -- tools, reasoning, format -----------------------------------------------------------


def _add_tools(body: dict[str, Any], payload: Mapping[str, Any], flavor: str) -> None:
    functions, web = [], False
    for index, tool in enumerate(payload.get("tools") or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in ("web_search", "web_search_preview") and flavor == "openrouter":
            web = True
        elif kind == "function":
            function = {"name": tool.get("name"), "description": tool.get("description") or "",
                        "parameters": tool.get("parameters") or {"type": "object",
                                                                 "properties": {}}}
            if tool.get("strict") is True:
                function["strict"] = True
            functions.append({"type": "function", "function": function})
        else:
            raise ClientError(f"tools[{index}]: tools of type {kind!r} are not available on "
                              f"the {flavor} provider", code="unsupported_tool")
    if web:
        body["plugins"] = [{"id": "web"}]
    if not functions:
        return
    body["tools"] = functions
    choice = payload.get("tool_choice", "auto")
    if isinstance(choice, dict) and choice.get("type") == "function":
        body["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice in ("auto", "none", "required"):
        body["tool_choice"] = choice
    else:
        raise ClientError(f"tool_choice {json.dumps(choice)} cannot be sent to the {flavor} "
                          "provider", code="unsupported_tool")
    if payload.get("parallel_tool_calls") is False:
        body["parallel_tool_calls"] = False


def _add_reasoning(body: dict[str, Any], reasoning: Any, model: str, flavor: str,
                   efforts: tuple[str, ...] | None) -> None:
    wanted = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if not isinstance(wanted, str) or wanted not in EFFORTS:
        return
    if flavor == "openrouter":
        param: dict[str, Any] = {"effort": nearest(wanted, OPENROUTER_EFFORTS)}
        if not reasoning.get("summary"):
            param["exclude"] = True
        body["reasoning"] = param
        return
    allowed = efforts if efforts is not None else (
        XAI_EFFORTS.get(model) if flavor == "xai" else GENERIC_EFFORTS)
    known = tuple(effort for effort in allowed or () if effort in EFFORTS)
    if known:
        body["reasoning_effort"] = nearest(wanted, known)


def nearest(effort: str, allowed: tuple[str, ...]) -> str:
    """The allowed effort closest to `effort` on the Codex scale; ties go to the lower."""
    rank = EFFORTS.index(effort)
    return min(allowed, key=lambda e: (abs(EFFORTS.index(e) - rank), EFFORTS.index(e)))


def _response_format(text: Any) -> dict[str, Any] | None:
    wanted = text.get("format") if isinstance(text, dict) else None
    kind = wanted.get("type") if isinstance(wanted, dict) else None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema" or not isinstance(wanted, dict):
        return None
    spec = {key: wanted[key] for key in ("name", "schema", "strict", "description")
            if key in wanted}
    spec.setdefault("name", "response")
    return {"type": "json_schema", "json_schema": spec}
