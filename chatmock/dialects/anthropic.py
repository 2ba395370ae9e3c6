"""Anthropic Messages request → Codex Responses payload (spec: translation.md §5).

Messages and system: `chatmock.dialects.anthropic_messages`. Here, with these
choices where Anthropic's API has no upstream counterpart:

* headers (`check_anthropic_headers`): `anthropic-version` must be present
  (any value; clients send 2023-06-01 or 2026-10-21), and one of
  `x-api-key`, `Authorization` or `Proxy-Authorization` (value not checked
  here: the router checks `--access-token`); `anthropic-beta` is ignored;
* `max_tokens` is required, as Anthropic requires it; it, `stop_sequences`,
  `temperature`, `top_p` and `top_k` are checked and kept out of the payload
  (the Codex backend refuses sampling fields), carried beside it as
  `sampling` for chat-completions providers (`chatmock.dialects.sampling`);
  `metadata`, `context_management`, `service_tier` and `cache_control` are
  dropped (no upstream equivalents);
* reasoning: `thinking.type: "disabled"` → the model's lowest effort and no
  summary, whatever else is asked; otherwise `output_config.effort` (Claude
  Code's low/medium/high; `max` falls back to `xhigh`), then a
  `thinking.budget_tokens` bucket (< 4096 low, < 16384 medium, < 32768 high,
  else xhigh, stepping down when the model lacks it), then the model's effort
  suffix and the server default (`reasoning_param`). `adaptive` leaves the
  effort to those defaults;
* structured output: `output_config.format` (`{"type": "json_schema",
  "schema": ...}`, what the SDK's `messages.parse(output_format=...)` sends)
  becomes the Responses `text.format` json_schema, not strict: Anthropic
  schemas may leave properties optional, which OpenAI's strict mode refuses;
* tools: client tools keep `input_schema` verbatim as `parameters` and their
  names (clients match them case-sensitively); names the backend refuses
  (Claude Code's MCP tools beyond 64 characters) go upstream renamed and come
  back as sent (`chatmock.dialects.tool_names`); Anthropic's
  `web_search_*` server tool becomes `{"type": "web_search"}`; other server
  tools (bash, text editor, computer, code execution) are refused;
* `tool_choice`: auto → auto, any → required, none → none, tool → the
  function object; `disable_parallel_tool_use` turns `parallel_tool_calls`
  off (default on);
* models: `resolve_claude_model`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatmock.catalog import DEFAULT_MODEL, Catalog, Resolved
from chatmock.dialects.anthropic_messages import convert_messages, convert_system, invalid
from chatmock.dialects.common import (
    REASONING_INCLUDE,
    lowest_effort,
    reasoning_param,
    service_tier,
)
from chatmock.dialects.fields import ANTHROPIC as fields
from chatmock.dialects.options import Options
from chatmock.dialects.sampling import NONE, Sampling, anthropic_sampling
from chatmock.dialects.tool_names import NameMap, shorten_tool_names
from chatmock.errors import ClientError

Item = dict[str, Any]
ATTACHMENT_TOKENS = 1600  # an image or file in count_tokens: Anthropic's per-image ceiling
_AUTH_HEADERS = (b"x-api-key", b"authorization", b"proxy-authorization")
_BUDGET_BUCKETS = ((4096, ("low",)), (16384, ("medium",)), (32768, ("high",)))
_CONTEXT_SUFFIX = re.compile(r"\[[^\]]*\]$")  # claude-opus-4-8[1m]
_DATE_SUFFIX = re.compile(r"-\d{8}$")  # claude-haiku-4-5-20251001


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """A validated Messages request, ready to go upstream."""

    payload: dict[str, Any]
    model: str  # the requested id, echoed in responses
    stream: bool
    thinking: bool  # the client asked for thinking blocks (enabled or adaptive)
    tool_names: NameMap = field(default_factory=dict)  # upstream name -> the client's
    sampling: Sampling = NONE  # for chat-completions providers, never in the payload


def check_anthropic_headers(headers: Mapping[bytes, bytes]) -> None:
    """400 without `anthropic-version`, 401 without any credentials header (spec §5.1)."""
    if not headers.get(b"anthropic-version", b"").strip():
        raise ClientError("Missing required header: anthropic-version",
                          code="invalid_request_error")
    if not any(headers.get(name, b"").strip() for name in _AUTH_HEADERS):
        raise ClientError("Missing auth header: provide x-api-key or Authorization",
                          status=401, error_type="authentication_error",
                          code="authentication_error")


def parse_messages_request(body: Any, headers: Mapping[bytes, bytes], catalog: Catalog,
                           options: Options, account_tag: str = "") -> MessagesRequest:
    """The upstream payload of a `POST /v1/messages` body.

    `headers` are accepted for beta flags; none changes the mapping today.
    `account_tag` (`signatures.account_tag`) decides which thinking blocks are ours."""
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("model", "Field required" if model is None
                      else "Input should be a non-empty string")
    _check_max_tokens(body)
    resolved = resolve_claude_model(model, catalog, options)
    instructions = convert_system(body.get("system"))
    items = convert_messages(body.get("messages"), account_tag)
    tools = convert_tools(body.get("tools"))
    tool_choice, parallel = convert_tool_choice(body.get("tool_choice"))
    if not tools and options.enable_web_search and tool_choice != "none":
        tools = [{"type": "web_search"}]
    reasoning, thinking = messages_reasoning(body, resolved, catalog, options)
    payload: dict[str, Any] = {"model": resolved.slug}
    if instructions:
        payload["instructions"] = instructions
    payload.update({"input": items, "tools": tools, "tool_choice": tool_choice,
                    "parallel_tool_calls": parallel, "store": False, "stream": True,
                    "include": [REASONING_INCLUDE], "reasoning": reasoning})
    # Anthropic's own `service_tier` values mean nothing upstream: only --fast-mode counts.
    tier = service_tier({}, resolved, catalog, options)
    if tier:
        payload["service_tier"] = tier
    text_format = output_format(body.get("output_config"))
    if text_format:
        payload["text"] = {"format": text_format}
    return MessagesRequest(payload, model, fields.boolean(body, "stream", False), thinking,
                           shorten_tool_names(payload), anthropic_sampling(body))


def _check_max_tokens(body: dict[str, Any]) -> None:
    if fields.integer(body, "max_tokens", minimum=1) is None:
        raise fields.missing("max_tokens")


# -- models ----------------------------------------------------------------------------------


def resolve_claude_model(name: str, catalog: Catalog, options: Options) -> Resolved:
    """What a Messages `model` means upstream.

    A `[1m]`-style suffix, an `@date` and a `-YYYYMMDD` suffix are stripped;
    a known upstream slug (with or without an effort suffix) passes through;
    a name containing a family word of `--anthropic-models` (opus, sonnet,
    haiku, fable, ...) takes that family's model; anything else, including
    unknown Claude ids, takes the sonnet mapping. `--debug-model` wins.
    """
    if options.names_provider(name.strip()):  # `xai/grok-4`: another provider's model
        return Resolved(name.strip(), name.strip(), None, None)
    base = _DATE_SUFFIX.sub("", _CONTEXT_SUFFIX.sub("", name.strip()).split("@", 1)[0])
    if catalog.resolve(base).spec is not None:
        return catalog.resolve(base, options.debug_model)
    families = dict(options.anthropic_models)
    lowered = base.lower()
    target = next((model for family, model in families.items() if family in lowered),
                  families.get("sonnet", DEFAULT_MODEL))
    return catalog.resolve(target, options.debug_model)


# -- reasoning -------------------------------------------------------------------------------


def messages_reasoning(body: dict[str, Any], resolved: Resolved, catalog: Catalog,
                       options: Options) -> tuple[dict[str, str], bool]:
    """(the upstream `reasoning` object, whether the client asked for thinking)."""
    thinking = fields.obj(body, "thinking") or {}
    kind = fields.choice(thinking, "type", ("enabled", "disabled", "adaptive"), "thinking")
    if kind == "disabled":
        return {"effort": lowest_effort(resolved, catalog)}, False
    efforts = _output_config_efforts(body.get("output_config"))
    if kind == "enabled":
        efforts += budget_efforts(thinking.get("budget_tokens"))
    return reasoning_param(resolved, catalog, options, efforts), kind is not None


def _output_config_efforts(config: Any) -> tuple[str, ...]:
    if config is None:
        return ()
    if not isinstance(config, dict):
        raise invalid("output_config", "Input should be a valid dictionary")
    effort = fields.string(config, "effort", "output_config")
    if effort is None:
        return ()
    effort = effort.lower()
    return (effort, "xhigh") if effort == "max" else (effort,)


def output_format(config: Any) -> dict[str, Any] | None:
    """`output_config.format` → the Responses `text.format` (see the module docstring)."""
    wanted = config.get("format") if isinstance(config, dict) else None
    if wanted is None:
        return None
    if not isinstance(wanted, dict) or wanted.get("type") != "json_schema":
        raise invalid("output_config.format.type", "Input should be 'json_schema'")
    schema = wanted.get("schema")
    if not isinstance(schema, dict):
        raise invalid("output_config.format.schema", "Field required" if schema is None
                      else "Input should be a valid dictionary")
    return {"type": "json_schema", "name": "output", "schema": schema, "strict": False}


def budget_efforts(budget: Any) -> tuple[str, ...]:
    """The effort bucket of `thinking.budget_tokens`, with the fallbacks to try in order."""
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise invalid("thinking.enabled.budget_tokens", "Field required")
    for limit, efforts in _BUDGET_BUCKETS:
        if budget < limit:
            return efforts
    return ("xhigh", "high")


# -- tools -----------------------------------------------------------------------------------


def convert_tools(tools: Any) -> list[Item]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools", "Input should be a valid list")
    converted = [_tool(tool, f"tools.{number}") for number, tool in enumerate(tools)]
    searches = [tool for tool in converted if tool["type"] == "web_search"]
    functions = [tool for tool in converted if tool["type"] != "web_search"]
    return functions + searches[:1]


def _tool(tool: Any, where: str) -> Item:
    if not isinstance(tool, dict):
        raise invalid(where, "Input should be a valid dictionary")
    kind = tool.get("type")
    if isinstance(kind, str) and kind.startswith("web_search"):
        return {"type": "web_search"}
    if kind not in (None, "custom"):
        raise invalid(f"{where}.type", f"tools of type {kind!r} are not supported "
                      "(client tools with input_schema, and web_search)")
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"{where}.name", "Field required")
    schema = tool.get("input_schema")
    if schema is None:
        schema = {"type": "object", "properties": {}}
    elif not isinstance(schema, dict):
        raise invalid(f"{where}.input_schema", "Input should be a valid dictionary")
    return {"type": "function", "name": name,
            "description": fields.string(tool, "description", where) or "",
            "strict": False, "parameters": schema}


def convert_tool_choice(choice: Any) -> tuple[Any, bool]:
    """(upstream `tool_choice`, `parallel_tool_calls`) of an Anthropic `tool_choice`."""
    if choice is None:
        return "auto", True
    if isinstance(choice, str):
        choice = {"type": choice}
    if not isinstance(choice, dict):
        raise invalid("tool_choice", "Input should be a valid dictionary")
    parallel = not fields.boolean(choice, "disable_parallel_tool_use", False, "tool_choice")
    kind = choice.get("type")
    if kind in ("auto", "none"):
        return kind, parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("tool_choice.name", "Field required")
        return {"type": "function", "name": name}, parallel
    raise invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")


# -- count_tokens ----------------------------------------------------------------------------


def count_tokens(body: Any, catalog: Catalog, options: Options) -> int:
    """A local estimate of a body's input tokens (no upstream call; spec §5.6).

    `system`, `messages` and `tools` are converted and validated as for
    `/v1/messages` (`model` and `max_tokens` are not needed), then measured by
    `estimate_tokens`. It is an estimate, not the upstream tokenizer's count."""
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    return estimate_tokens(convert_system(body.get("system")),
                           convert_messages(body.get("messages")),
                           convert_tools(body.get("tools")))


def estimate_payload_tokens(payload: dict[str, Any]) -> int:
    """`estimate_tokens` of an upstream payload built by `parse_messages_request`."""
    return estimate_tokens(payload.get("instructions") or "", payload.get("input") or [],
                           payload.get("tools") or [])


def estimate_tokens(instructions: str, items: list[Item], tools: list[Item]) -> int:
    """Characters / 4, at least 1 (spec §5.6), except that each image or file counts
    as 1,600 tokens rather than the length of its data, and encrypted reasoning
    (opaque) counts nothing."""
    chars = len(instructions)
    attachments = 0
    for item in items:
        chars += 8 + sum(_length(item.get(key)) for key in
                         ("type", "role", "name", "call_id", "arguments", "output"))
        for part in item.get("content") or item.get("summary") or ():
            if part.get("type") in ("input_image", "input_file"):
                attachments += 1
            else:
                chars += 4 + _length(part.get("type")) + _length(part.get("text"))
    for tool in tools:
        chars += 12 + sum(_length(tool.get(key)) for key in ("type", "name", "description"))
        if "parameters" in tool:
            chars += len(json.dumps(tool["parameters"], ensure_ascii=False))
    return max(1, math.ceil(chars / 4) + attachments * ATTACHMENT_TOKENS)


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0
