"""Request-side building blocks shared by every dialect.

Reasoning parameters, fast mode (`service_tier`), the web-search extension
fields and image URLs follow the spec (translation.md §1); each function
takes plain values and returns plain values so that dialects compose them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from chatmock.catalog import Catalog, Resolved
from chatmock.config import EFFORTS, SUMMARIES
from chatmock.dialects.fields import OPENAI as fields
from chatmock.dialects.options import Options
from chatmock.errors import ClientError

WEB_SEARCH_TYPES = frozenset({"web_search", "web_search_preview"})
MAX_RESPONSES_TOOLS_BYTES = 32768
REASONING_INCLUDE = "reasoning.encrypted_content"


def reasoning_param(resolved: Resolved, catalog: Catalog, options: Options,
                    efforts: tuple[Any, ...] = (), summary: Any = None) -> dict[str, str]:
    """`{"effort": E, "summary": S}` with per-model validation and server defaults.

    `efforts` are the request's explicit choices in priority order (body
    fields); the first one the model allows wins, then a model-name suffix,
    then the server default, then `medium`.
    """
    allowed = catalog.allowed_efforts(resolved.slug)
    chosen = "medium"
    for candidate in (*efforts, resolved.effort, options.reasoning_effort):
        if isinstance(candidate, str) and candidate.lower() in allowed:
            chosen = candidate.lower()
            break
    param = {"effort": chosen}
    wanted = summary.lower() if isinstance(summary, str) else None
    final = wanted if wanted in SUMMARIES else options.reasoning_summary
    if final != "none":
        param["summary"] = final
    return param


def requested_model(body: dict[str, Any], catalog: Catalog,
                    options: Options) -> tuple[str, Resolved]:
    """(the name to echo back as `model`, its resolution) of a body's `model` (spec §1.1)."""
    model = fields.string(body, "model")
    resolved = catalog.resolve(model, options.debug_model)
    return model or resolved.slug, resolved


def body_reasoning(body: dict[str, Any], resolved: Resolved, catalog: Catalog,
                   options: Options) -> dict[str, str]:
    """`reasoning_param` from a body's `reasoning` object, then `reasoning_effort` (spec §1.2)."""
    found = fields.obj(body, "reasoning") or {}
    return reasoning_param(resolved, catalog, options,
                           (fields.string(found, "effort", "reasoning"),
                            fields.string(body, "reasoning_effort")),
                           fields.string(found, "summary", "reasoning"))


def include_usage(body: dict[str, Any]) -> bool:
    """`stream_options.include_usage`, false by default."""
    options = fields.obj(body, "stream_options") or {}
    return fields.boolean(options, "include_usage", False, "stream_options")


def refuse_choices(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    """`n` (or the legacy `best_of`) above 1: the backend answers with one choice."""
    for key in keys:
        count = fields.integer(body, key, minimum=1)
        if count is not None and count > 1:
            raise ClientError(f"{key} > 1 is not supported", code="unsupported_parameter",
                              param=key)


def lowest_effort(resolved: Resolved, catalog: Catalog) -> str:
    allowed = catalog.allowed_efforts(resolved.slug)
    return next(effort for effort in EFFORTS if effort in allowed)


def service_tier(body: dict[str, Any], resolved: Resolved, catalog: Catalog,
                 options: Options) -> str | None:
    """Fast mode: `fast_mode` > `service_tier` > `--fast-mode` (spec: upstream.md §7)."""
    explicit = True
    fast = _truthy(fields.get(body, "fast_mode", ("boolean", "string")))
    requested = fields.string(body, "service_tier")
    if fast is True:
        tier: str | None = "priority"
    elif fast is False:
        return None
    elif requested is not None and requested.strip():
        tier = requested.strip().lower()
    elif options.fast_mode:
        tier, explicit = "priority", False
    else:
        return None
    if tier == "priority" and not catalog.supports_priority(resolved.slug):
        if explicit:
            raise ClientError(f"Fast mode is not supported for model '{resolved.slug}'. Use a "
                              "supported GPT-5 priority-processing model or disable fast mode "
                              "for this request.")
        return None
    return tier


def _truthy(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
    return None


@dataclass(frozen=True, slots=True)
class ExtraTools:
    """Web-search tools chatmock adds on top of the client's own."""

    tools: list[dict[str, Any]]
    tool_choice: str | None


def extra_tools(body: dict[str, Any], options: Options, tool_choice: Any,
                client_tools: list[dict[str, Any]]) -> ExtraTools:
    """`responses_tools` / `responses_tool_choice` / `--enable-web-search` (spec §1.6).

    The default web search is not added when the client brought its own."""
    requested = body.get("responses_tools")
    tools: list[dict[str, Any]] = []
    if requested is not None:
        if not isinstance(requested, list):
            raise ClientError("responses_tools must be a list", code="RESPONSES_TOOL_UNSUPPORTED",
                              param="responses_tools")
        for number, tool in enumerate(requested):
            if not isinstance(tool, dict):
                continue
            kind = tool.get("type")
            if not isinstance(kind, str) or kind not in WEB_SEARCH_TYPES:
                raise ClientError("Only web_search/web_search_preview are supported in "
                                  "responses_tools", code="RESPONSES_TOOL_UNSUPPORTED",
                                  param=f"responses_tools[{number}].type")
            tools.append(tool)
        if len(json.dumps(tools)) > MAX_RESPONSES_TOOLS_BYTES:
            raise ClientError("responses_tools too large", code="RESPONSES_TOOLS_TOO_LARGE",
                              param="responses_tools")
    choice = body.get("responses_tool_choice")
    choice = choice if choice in ("auto", "none") else None
    has_own = any(tool.get("type") in WEB_SEARCH_TYPES for tool in client_tools)
    if not tools and not has_own and options.enable_web_search and \
            (choice or tool_choice) != "none":
        tools = [{"type": "web_search"}]
    return ExtraTools(tools, choice)


def image_url(url: str) -> str:
    """Normalise a data URL's base64 (URL-quoted, base64url, unpadded) when needed."""
    if not url.startswith("data:"):
        return url
    head, comma, data = url.partition(",")
    if not comma or ";base64" not in head:
        return url
    if not any(c in data for c in "%-_\r\n ") and len(data) % 4 == 0:
        return url
    cleaned = unquote(data).replace("\r", "").replace("\n", "").replace(" ", "")
    cleaned = cleaned.replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return url
    return f"{head},{cleaned}"
