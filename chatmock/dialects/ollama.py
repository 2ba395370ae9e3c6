"""Ollama `/api/chat` and `/api/generate` requests → Codex Responses payload.

Spec: translation.md §6.1 and §6.4, clients.md (ollama-python). The Ollama
body is first rewritten as Chat Completions messages, then mapped with the
chat helpers (`convert_messages`, `convert_tools`), so both dialects build
the same upstream input. Choices:

* model names: `resolve_model` = the catalog's resolution (`:latest` and
  `:effort` tags), plus any other `:tag` on a known model maps to the model
  (`gpt-5.4:cloud` → `gpt-5.4`); the requested name is echoed as `model`.
  A missing model is a 400 (`model is required`), as in Ollama;
* the first `system` messages become `instructions` (later ones stay in
  place as developer messages), as in chat; `role` defaults to `user`;
* `images` (base64, or data:/http(s) URLs left alone) become image parts of
  their message, the MIME type sniffed from the base64 prefix (`image_url`);
  images on other roles than user cannot be expressed upstream: 400;
* tool round trips without ids: every assistant tool call without `id` gets
  `ollama_call_<n>` (n = its position among the request's calls, so the ids
  are the same on every turn); a `tool` message without `tool_call_id`
  answers the oldest unanswered call with its `tool_name`, else the oldest
  unanswered call; a tool message with nothing to answer is a 400;
  `arguments` may be an object (Ollama) or a JSON string;
* `think`: absent → model suffix / server default effort, reasoning shown per
  `--reasoning-compat` (see `ollama_stream`); `true` → the same effort and
  reasoning shown as `thinking` (summary `auto` when the server default is
  `none`); `false` → the model's lowest effort, no summary, nothing shown;
  an effort word (`low`, `medium`, `high`, …) → that effort, shown;
* `format`: `"json"` → `json_object`; a JSON schema → `json_schema` named
  `response`, strict false; `""` → none;
* `options`: the sampling ones (`temperature`, `top_p`, `top_k`,
  `num_predict`, `stop`, `seed`, penalties) are checked and carried beside the
  payload as `sampling`, for chat-completions providers
  (`chatmock.dialects.sampling`; the Codex backend has no sampling knobs);
  the other options, `keep_alive`, `template`, `raw` and `context` are
  accepted and never forwarded (there is no template);
  `suffix` (fill-in-the-middle) is refused: the backend cannot do it;
* `stream` defaults to true when absent or null;
* an empty `messages` list (chat) or prompt (generate) is Ollama's load
  request: `LoadAck` (`unload` when `keep_alive` is 0), no upstream call;
* Ollama's own `tool_choice` does not exist; chat's `tool_choice`,
  `parallel_tool_calls`, `responses_tools` and `fast_mode` are honoured;
* every field read is type-checked (`chatmock.dialects.fields`): a wrong type
  is a 400 `{"error": "..."}` whose message names the field's path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chatmock.catalog import Catalog, Resolved
from chatmock.config import EFFORTS
from chatmock.dialects.chat import (
    ChatRequest,
    chat_request,
    convert_messages,
    convert_tool_choice,
    convert_tools,
    text_format,
)
from chatmock.dialects.common import (
    REASONING_INCLUDE,
    extra_tools,
    image_url,
    lowest_effort,
    reasoning_param,
    service_tier,
)
from chatmock.dialects.fields import OPENAI as fields
from chatmock.dialects.options import Options
from chatmock.dialects.sampling import ollama_sampling
from chatmock.errors import ClientError

Item = dict[str, Any]
CALL_ID_PREFIX = "ollama_call_"
_MIME_PREFIXES = (("/9j/", "image/jpeg"), ("iVBORw0KGgo", "image/png"),
                  ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))
_ZERO_DURATION = re.compile(r"\s*0+(\.0*)?\s*(ns|us|µs|ms|s|m|h)?\s*")


@dataclass(frozen=True, slots=True)
class OllamaRequest:
    """A validated Ollama request, ready to go upstream (`chat`: the chat request it maps to)."""

    chat: ChatRequest
    model: str
    stream: bool
    think: bool | None  # None: not asked; True: show as `thinking`; False: reasoning off


@dataclass(frozen=True, slots=True)
class LoadAck:
    """Ollama's answer to a request with nothing to generate (a model load or unload)."""

    model: str
    reason: str  # "load" or "unload"


def resolve_model(name: str, catalog: Catalog, options: Options) -> Resolved:
    """The catalog's resolution; any other `:tag` on a known model maps to that model."""
    resolved = catalog.resolve(name, options.debug_model)
    base, colon, _ = resolved.requested.rpartition(":")
    if resolved.spec is None and colon and base:
        tagless = catalog.resolve(base)
        if tagless.spec is not None:
            return Resolved(resolved.requested, tagless.slug, tagless.effort, tagless.spec)
    return resolved


def parse_chat(body: Any, catalog: Catalog, options: Options) -> OllamaRequest | LoadAck:
    body = _object(body)
    model = _model(body)
    messages = fields.array(body, "messages")
    if not messages:
        return LoadAck(model, _load_reason(body))
    instructions, items = convert_messages(chat_messages(messages))
    return _build(body, model, instructions, items, convert_tools(body.get("tools")),
                  catalog, options)


def parse_generate(body: Any, catalog: Catalog, options: Options) -> OllamaRequest | LoadAck:
    body = _object(body)
    model = _model(body)
    prompt = fields.string(body, "prompt")
    if fields.string(body, "suffix"):
        raise ClientError("suffix (fill-in-the-middle) is not supported by this model",
                          code="unsupported_parameter", param="suffix")
    if not prompt:
        return LoadAck(model, _load_reason(body))
    system = fields.string(body, "system")
    user = _user_content(prompt, body.get("images"), "images")
    _, items = convert_messages([{"role": "user", "content": user}])
    return _build(body, model, system or "", items, [], catalog, options)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    fields.get(body, "keep_alive", ("string", "number"))  # the route reads it for /api/ps
    return body


def _model(body: dict[str, Any]) -> str:
    model = fields.string(body, "model")
    if model is None or not model.strip():
        raise ClientError("model is required", code="missing_required_parameter",
                          param="model")
    return model


def _load_reason(body: dict[str, Any]) -> str:
    keep_alive = fields.get(body, "keep_alive", ("string", "number"))
    if isinstance(keep_alive, int | float) and not isinstance(keep_alive, bool):
        return "unload" if keep_alive == 0 else "load"
    if isinstance(keep_alive, str) and keep_alive.strip() and _ZERO_DURATION.fullmatch(keep_alive):
        return "unload"
    return "load"


def _build(body: dict[str, Any], model: str, instructions: str, items: list[Item],
           tools: list[Item], catalog: Catalog, options: Options) -> OllamaRequest:
    resolved = resolve_model(model, catalog, options)
    reasoning, think = think_reasoning(body.get("think"), resolved, catalog, options)
    tool_choice = convert_tool_choice(body.get("tool_choice"))
    extra = extra_tools(body, options, tool_choice, tools)
    payload: dict[str, Any] = {"model": resolved.slug}
    if instructions:
        payload["instructions"] = instructions
    payload.update({
        "input": items, "tools": tools + extra.tools,
        "tool_choice": extra.tool_choice or tool_choice,
        "parallel_tool_calls": fields.boolean(body, "parallel_tool_calls", True),
        "store": False, "stream": True, "include": [REASONING_INCLUDE],
        "reasoning": reasoning})
    tier = service_tier(body, resolved, catalog, options)
    if tier:
        payload["service_tier"] = tier
    text = format_text(body.get("format"))
    if text:
        payload["text"] = text
    stream = fields.boolean(body, "stream", True)
    chat = chat_request(payload, model, stream, False, extra, len(tools),
                        ollama_sampling(body))
    return OllamaRequest(chat, model, stream, think)


def think_reasoning(think: Any, resolved: Resolved, catalog: Catalog,
                    options: Options) -> tuple[dict[str, str], bool | None]:
    """(upstream `reasoning`, the `think` mode) of Ollama's `think` (module docstring)."""
    shown = options.reasoning_summary if options.reasoning_summary != "none" else "auto"
    if think is None:
        return reasoning_param(resolved, catalog, options), None
    if think is False:
        return reasoning_param(resolved, catalog, options,
                               (lowest_effort(resolved, catalog),), "none"), False
    if think is True:
        return reasoning_param(resolved, catalog, options, (), shown), True
    if isinstance(think, str) and think.strip().lower() in EFFORTS:
        return reasoning_param(resolved, catalog, options, (think.strip(),), shown), True
    raise ClientError(f"invalid think value: {think!r} (use true, false, low, medium or high)",
                      code="invalid_think", param="think")


def format_text(value: Any) -> dict[str, Any]:
    """Ollama `format` → Responses `text` (structured output)."""
    if value is None or value == "":
        return {}
    if value == "json":
        return text_format({"type": "json_object"})
    if isinstance(value, dict):
        return text_format({"type": "json_schema", "json_schema": {
            "name": "response", "schema": value, "strict": False}})
    raise ClientError('format must be "json" or a JSON schema object', code="invalid_format",
                      param="format")


# -- messages -----------------------------------------------------------------------


class CallIds:
    """Invents the call ids Ollama leaves out and pairs tool results with calls."""

    def __init__(self) -> None:
        self.count = 0
        self.pending: list[tuple[str, str]] = []  # (id, name) of unanswered calls, oldest first

    def call(self, given: Any, name: str) -> str:
        call_id = given if isinstance(given, str) and given else f"{CALL_ID_PREFIX}{self.count}"
        self.count += 1
        self.pending.append((call_id, name))
        return call_id

    def answer(self, given: Any, name: Any, where: str) -> str:
        if isinstance(given, str) and given:
            self.pending = [entry for entry in self.pending if entry[0] != given]
            return given
        if not self.pending:
            raise ClientError(f"{where}: this tool message answers no earlier tool call",
                              code="invalid_messages")
        chosen = next((entry for entry in self.pending if entry[1] == name), self.pending[0])
        self.pending.remove(chosen)
        return chosen[0]


def chat_messages(messages: list[Any]) -> list[Item]:
    """Ollama messages → Chat Completions messages (ids invented, images as parts)."""
    ids = CallIds()
    converted: list[Item] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        fields.check(message, ("object",), where)
        role = message.get("role") or "user"
        if role == "assistant":
            converted.append(_assistant(message, ids, where))
        elif role == "tool":
            answered = ids.answer(fields.string(message, "tool_call_id", where),
                                  fields.string(message, "tool_name", where), where)
            converted.append({"role": "tool", "content": message.get("content"),
                              "tool_call_id": answered})
        elif role == "user":
            converted.append({"role": role, "content": _user_content(
                message.get("content"), message.get("images"), f"{where}.images")})
        else:
            if message.get("images"):
                raise ClientError(f"{where}.images: images are only supported on user "
                                  "messages", code="invalid_messages")
            converted.append({"role": role, "content": message.get("content")})
    return converted


def _assistant(message: dict[str, Any], ids: CallIds, where: str) -> Item:
    if message.get("images"):
        raise ClientError(f"{where}.images: images are only supported on user messages",
                          code="invalid_messages")
    calls = fields.array(message, "tool_calls", where) or []
    converted = []
    for number, call in enumerate(calls):
        spot = f"{where}.tool_calls[{number}]"
        fields.check(call, ("object",), spot)
        function = fields.obj(call, "function", spot) or {}
        name = fields.string(function, "name", f"{spot}.function")
        if not name:
            raise fields.missing(f"{spot}.function.name")
        arguments = fields.get(function, "arguments", ("object", "string"), f"{spot}.function")
        given = fields.string(call, "id", spot) or fields.string(call, "call_id", spot)
        converted.append({"id": ids.call(given, name), "type": "function",
                          "function": {"name": name, "arguments": arguments or {}}})
    result: Item = {"role": "assistant", "content": message.get("content")}
    if converted:
        result["tool_calls"] = converted
    return result


def _user_content(content: Any, images: Any, where: str) -> Any:
    """`content` as is, or text plus image parts when the message has images."""
    if images is None or images == []:
        return content
    if not isinstance(images, list):
        raise ClientError(f"{where} must be a list of base64 strings", code="invalid_messages")
    parts: list[Item] = []
    if isinstance(content, str) and content:
        parts.append({"type": "text", "text": content})
    elif isinstance(content, list):
        parts.extend(content)
    for number, image in enumerate(images):
        if not isinstance(image, str) or not image.strip():
            raise ClientError(f"{where}[{number}] must be a base64 string",
                              code="invalid_messages")
        parts.append({"type": "image_url", "image_url": {"url": image_data_url(image)}})
    return parts


def image_data_url(image: str) -> str:
    """A data URL for Ollama's base64 image (MIME type sniffed); URLs are left alone."""
    if image.startswith(("http://", "https://")):
        return image
    if image.startswith("data:"):
        return image_url(image)
    data = "".join(image.split())
    mime = next((kind for prefix, kind in _MIME_PREFIXES if data.startswith(prefix)),
                "image/png")
    return image_url(f"data:{mime};base64,{data}")
