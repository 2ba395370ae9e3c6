"""What the fake chat-completions server refuses, per flavor.

`validate_chat` raises `Rejected` (carrying the flavor's own error body) for
every request the real servers are known to refuse (providers.md §1.2, §1.4,
§2.3, §2.5, §4), and returns the model that will answer:

* a body that is not a JSON object; on xAI a missing JSON content type is a
  415 before anything else is read;
* an unknown model (xAI 404, OpenRouter 400, vLLM/Ollama 404; llama.cpp
  serves its one loaded model whatever the name);
* `messages` missing or empty, a role outside system/developer/user/assistant/
  tool, content of the wrong shape, an image part for a model without vision,
  a malformed `tool_calls` entry;
* on xAI, OpenRouter and the plain OpenAI flavor (strict tool ordering): a tool
  message that answers no earlier call, an assistant call left unanswered
  before the next non-tool message;
* tools that are not functions with a valid name, a `tool_choice` naming no
  tool, more than 200 tools on xAI;
* `stream_options` without `stream: true`;
* reasoning: on xAI `reasoning_effort` for a model that does not take it
  ("Model X does not support parameter reasoningEffort") or a value it does not
  list, penalties or `stop` for a reasoning model; on OpenRouter `reasoning`
  with both `effort` and `max_tokens`, or an unknown effort; an assistant
  tool-call turn without its `reasoning_details` for models that need them;
* sampling parameters of the wrong type (`temperature` not a number, `stop`
  not a string or list of strings, ...) or out of the OpenAI API's ranges
  (`temperature` 0-2, `top_p` 0-1, penalties -2..2, token limits >= 1).
"""

from __future__ import annotations

import re
from typing import Any

from chatmock.testing.fake_chat_flavors import FakeModel, Flavor, error_body
from chatmock.testing.fake_events import JSON
from chatmock.testing.fake_rules import INVALID_JSON, Rejected, reject
from chatmock.testing.fake_rules import _valid_image as valid_image  # one image rule for all

ROLES = ("system", "developer", "user", "assistant", "tool")
STRICT_ORDER = ("xai", "openrouter", "openai")
OPENROUTER_EFFORTS = ("xhigh", "high", "medium", "low", "minimal", "none")
MAX_XAI_TOOLS = 200
SAMPLING_KINDS: dict[str, Any] = {
    "temperature": (int, float), "top_p": (int, float), "presence_penalty": (int, float),
    "frequency_penalty": (int, float), "max_tokens": int, "max_completion_tokens": int,
    "seed": int, "top_k": int, "stop": "stop"}
SAMPLING_RANGES = {"temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2),
                   "frequency_penalty": (-2, 2), "max_tokens": (1, None),
                   "max_completion_tokens": (1, None), "top_k": (0, None)}
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def refuse(flavor: Flavor, status: int, message: str, metadata: JSON | None = None,
           *headers: tuple[bytes, bytes]) -> Rejected:
    return reject(status, error_body(flavor, status, message, metadata), *headers)


def validate_chat(flavor: Flavor, payload: Any) -> FakeModel:
    """The answering model, or Rejected; see the module docstring."""
    if payload is INVALID_JSON or not isinstance(payload, dict):
        raise refuse(flavor, 400, "Failed to deserialize the JSON body into the target type")
    model = _check_model(flavor, payload.get("model"))
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise refuse(flavor, 400, "Invalid 'messages': expected a non-empty array of messages.")
    for index, message in enumerate(messages):
        _check_message(flavor, model, message, f"messages[{index}]")
    if flavor.name in STRICT_ORDER:
        _check_tool_order(flavor, messages)
    _check_tools(flavor, payload.get("tools"), payload.get("tool_choice"))
    if "stream_options" in payload and payload.get("stream") is not True:
        raise refuse(flavor, 400, "The 'stream_options' parameter is only allowed when "
                     "'stream' is enabled.")
    _check_reasoning(flavor, model, payload)
    _check_sampling(flavor, payload)
    return model


def _check_model(flavor: Flavor, name: Any) -> FakeModel:
    if not isinstance(name, str) or not name:
        raise refuse(flavor, 400, "Missing required parameter: 'model'.")
    model = flavor.model(name)
    if model is not None:
        return model
    if flavor.name == "llamacpp":
        return flavor.models[0]
    if flavor.name == "openrouter":
        raise refuse(flavor, 400, f"{name} is not a valid model ID")
    if flavor.name == "xai":
        raise refuse(flavor, 404, f"The model {name} does not exist or your team does not "
                     "have access to it.")
    if flavor.name == "ollama":
        raise refuse(flavor, 404, f'model "{name}" not found, try pulling it first')
    raise refuse(flavor, 404, f"The model `{name}` does not exist.")


def _check_message(flavor: Flavor, model: FakeModel, message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise refuse(flavor, 400, f"Invalid type for '{where}': expected an object.")
    role = message.get("role")
    if role not in ROLES:
        raise refuse(flavor, 400, f"Invalid value for '{where}.role': {role!r}. Supported "
                     "values are: 'system', 'developer', 'user', 'assistant' and 'tool'.")
    content = message.get("content")
    if role == "assistant":
        _check_assistant(flavor, message, where)
    elif role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise refuse(flavor, 400, f"Missing required parameter: '{where}.tool_call_id'.")
    elif content is None or (role in ("system", "developer") and not isinstance(content, str)
                             and not _all_text(content)):
        raise refuse(flavor, 400, f"Invalid type for '{where}.content': expected a string "
                     "or an array of text parts.")
    if isinstance(content, list):
        for number, part in enumerate(content):
            _check_part(flavor, model, part, f"{where}.content[{number}]")
    elif content is not None and not isinstance(content, str):
        raise refuse(flavor, 400, f"Invalid type for '{where}.content': expected a string "
                     "or an array of content parts.")


def _all_text(content: Any) -> bool:
    return isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" for p in content)


def _check_part(flavor: Flavor, model: FakeModel, part: Any, where: str) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not valid_image({"image_url": url}):
            raise refuse(flavor, 400, f"Invalid image URL in '{where}.image_url.url'.")
        if not model.vision:
            raise refuse(flavor, 400, f"Model {model.id} does not support image input.")
        return
    raise refuse(flavor, 400, f"Invalid content part '{where}': expected a text or "
                 "image_url part.")


def _check_assistant(flavor: Flavor, message: JSON, where: str) -> None:
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise refuse(flavor, 400, f"Invalid type for '{where}.tool_calls': expected an array.")
    for number, call in enumerate(calls):
        at = f"{where}.tool_calls[{number}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(call, dict) and isinstance(call.get("id"), str)
                and call.get("type", "function") == "function" and isinstance(function, dict)
                and isinstance(function.get("name"), str)
                and isinstance(function.get("arguments"), str)):
            raise refuse(flavor, 400, f"Invalid '{at}': expected an object with id, "
                         "type 'function' and function.name / function.arguments strings.")


def _check_tool_order(flavor: Flavor, messages: list[JSON]) -> None:
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if message["tool_call_id"] not in open_calls:
                raise refuse(flavor, 400, f"Invalid parameter: messages[{index}] with role "
                             "'tool' must be a response to a preceding message with "
                             "'tool_calls'.")
            open_calls.discard(message["tool_call_id"])
            continue
        if open_calls:
            raise refuse(flavor, 400, "An assistant message with 'tool_calls' must be followed "
                         "by tool messages responding to each 'tool_call_id'. The following "
                         f"tool_call_ids did not have response messages: "
                         f"{', '.join(sorted(open_calls))}")
        if role == "assistant":
            open_calls = {call["id"] for call in message.get("tool_calls") or []}


def _check_tools(flavor: Flavor, tools: Any, choice: Any) -> None:
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise refuse(flavor, 400, "Invalid type for 'tools': expected an array.")
    if flavor.name == "xai" and len(tools) > MAX_XAI_TOOLS:
        raise refuse(flavor, 400, f"A maximum of {MAX_XAI_TOOLS} tools is supported.")
    names = set()
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if tool.get("type") != "function" or not isinstance(name, str) \
                or not _TOOL_NAME.fullmatch(name):
            raise refuse(flavor, 400, f"Invalid 'tools[{index}]': expected a function tool "
                         "with a name of letters, digits, '_' or '-' (at most 64).")
        names.add(name)
    if choice is None or choice in ("auto", "none", "required"):
        return
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if name not in names:
        raise refuse(flavor, 400, "Invalid 'tool_choice': it must be auto, none, required or "
                     "name one of the tools.")


def _check_reasoning(flavor: Flavor, model: FakeModel, payload: JSON) -> None:
    if flavor.name == "xai":
        _check_xai_reasoning(flavor, model, payload)
    elif flavor.name == "openrouter":
        _check_openrouter_reasoning(flavor, model, payload)


def _check_xai_reasoning(flavor: Flavor, model: FakeModel, payload: JSON) -> None:
    effort = payload.get("reasoning_effort")
    if effort is not None:
        if model.efforts is None:
            raise refuse(flavor, 400, f"Model {model.id} does not support parameter "
                         "reasoningEffort")
        if effort not in model.efforts:
            raise refuse(flavor, 400, f"Invalid reasoning effort {effort!r} for model "
                         f"{model.id}: expected one of {', '.join(model.efforts)}")
    if model.reasoning:
        for name in ("presence_penalty", "frequency_penalty", "stop"):
            if name in payload:
                raise refuse(flavor, 400, f"Model {model.id} does not support parameter "
                             f"{_camel(name)}.")


def _check_sampling(flavor: Flavor, payload: JSON) -> None:
    for name, value in payload.items():
        kind = SAMPLING_KINDS.get(name)
        if kind is None or value is None:
            continue
        if kind == "stop":
            good = isinstance(value, str) or (isinstance(value, list) and all(
                isinstance(item, str) for item in value))
        else:
            good = isinstance(value, kind) and not isinstance(value, bool)
        if not good:
            raise refuse(flavor, 400, f"Invalid type for '{name}'.")
        low, high = SAMPLING_RANGES.get(name, (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            raise refuse(flavor, 400, f"Invalid value for '{name}': {value} is out of range.")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _check_openrouter_reasoning(flavor: Flavor, model: FakeModel, payload: JSON) -> None:
    reasoning = payload.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise refuse(flavor, 400, "Invalid 'reasoning': expected an object.")
        if "effort" in reasoning and "max_tokens" in reasoning:
            raise refuse(flavor, 400, "Only one of 'reasoning.effort' and "
                         "'reasoning.max_tokens' may be given.")
        if "effort" in reasoning and reasoning["effort"] not in OPENROUTER_EFFORTS:
            raise refuse(flavor, 400, f"Invalid 'reasoning.effort': {reasoning['effort']!r}.")
    if model.needs_reasoning_details:
        for message in payload["messages"]:
            if message["role"] == "assistant" and message.get("tool_calls") \
                    and not message.get("reasoning_details"):
                raw = ("thinking is enabled but reasoning_content is missing in assistant "
                       "tool call message")
                raise refuse(flavor, 400, "Provider returned error",
                             {"provider_name": "Moonshot AI", "raw": raw, "is_byok": False})
