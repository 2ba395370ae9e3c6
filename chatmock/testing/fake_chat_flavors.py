"""What sets each OpenAI-compatible server apart: quirks, models, error bodies.

A `Flavor` bundles the wire quirks of one server family (providers.md §1, §2,
§4) with the models it serves. The fake chat-completions server
(`fake_chat.py`) reads everything flavor-specific from here, so a test can
also build its own `Flavor` (e.g. `dataclasses.replace(FLAVORS["vllm"],
done_marker=False)`) to combine quirks.

| flavor     | tool-call deltas             | usage                               | reasoning |
|------------|------------------------------|-------------------------------------|-----------|
| xai        | each call whole in one chunk | `choices: []` chunk after finish    | (1)       |
| openrouter | split arguments, with index  | always, on a chunk after finish     | (2)       |
| vllm       | split arguments, with index  | `choices: []` chunk (include_usage) | reasoning |
| llamacpp   | split arguments, with index  | on the finish chunk, with `timings` | (3)       |
| ollama     | whole, no `index`, 1st no id | `choices: []` chunk (include_usage) | reasoning |
| openai     | split arguments, with index  | `choices: []` chunk (include_usage) | none      |

(1) `reasoning_content`, grok-3-mini only; (2) `reasoning` + `reasoning_details`;
(3) `reasoning_content`.

Other per-flavor facts: OpenRouter sends `: OPENROUTER PROCESSING` comment
lines; llama.cpp ends without `data: [DONE]`; xAI answers a wrong key with
400 and a body whose `error` is a string, a body without a JSON content type
with 415; Ollama ignores the API key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatmock.testing.fake_events import JSON

XAI_KEY = "xai-fake-0123456789abcdef"
OPENROUTER_KEY = "sk-or-v1-fake0123456789abcdef"


@dataclass(frozen=True, slots=True)
class FakeModel:
    """One served model and what it accepts.

    `efforts`: the reasoning efforts it takes, None when the effort parameter
    is refused (xAI's "does not support parameter reasoningEffort").
    `reasoning_text`: it streams its reasoning as text; `reasoning`: it thinks
    at all (reasoning tokens are counted, sampling penalties are refused on xAI).
    `served_as`: the model name answers carry (a retired alias redirected).
    `needs_reasoning_details`: an assistant tool-call turn sent back without
    its `reasoning_details` is refused (OpenRouter-routed DeepSeek, Kimi).
    """

    id: str
    efforts: tuple[str, ...] | None = None
    reasoning: bool = False
    reasoning_text: bool = False
    vision: bool = False
    served_as: str = ""
    needs_reasoning_details: bool = False
    context: int = 131072
    owner: str = ""


@dataclass(frozen=True, slots=True)
class Flavor:
    """The quirks of one server family; see the module docstring."""

    name: str
    prefix: str = "/v1"
    api_key: str | None = None
    whole_tool_calls: bool = False
    tool_index: bool = True
    first_tool_id: bool = True
    usage: str = "include_usage"  # include_usage | always_after_finish | on_finish
    reasoning_field: str = "reasoning"  # reasoning | reasoning_content | openrouter
    comments: bool = False
    done_marker: bool = True
    timings: bool = False
    wrong_key_status: int = 401
    json_content_type: bool = False
    checks_key: bool = True
    models: tuple[FakeModel, ...] = field(default_factory=tuple)

    def model(self, name: str) -> FakeModel | None:
        return next((m for m in self.models if m.id == name), None)


_XAI_MODELS = (
    FakeModel("grok-4.5", ("low", "medium", "high"), reasoning=True, vision=True, context=500000),
    FakeModel("grok-4.3", ("none", "low", "medium", "high"), reasoning=True, vision=True,
              context=1000000),
    FakeModel("grok-4.20-0309-reasoning", None, reasoning=True, vision=True, context=2000000),
    FakeModel("grok-4.20-0309-non-reasoning", None, vision=True, context=2000000),
    FakeModel("grok-4.20-multi-agent", ("low", "medium", "high", "xhigh"), reasoning=True,
              context=2000000),
    FakeModel("grok-code-fast-1", None, reasoning=True, context=256000),
    FakeModel("grok-4", None, reasoning=True, vision=True, context=256000),
    FakeModel("grok-4-0709", None, reasoning=True, vision=True, context=256000),
    FakeModel("grok-4-fast-reasoning", None, reasoning=True, vision=True, served_as="grok-4.3",
              context=2000000),
    FakeModel("grok-3-mini", ("low", "high"), reasoning=True, reasoning_text=True),
)
_OPENROUTER_MODELS = (
    FakeModel("openai/gpt-5", ("minimal", "low", "medium", "high"), reasoning=True,
              reasoning_text=True, vision=True, context=400000, owner="openai"),
    FakeModel("anthropic/claude-sonnet-4.5", ("low", "medium", "high"), reasoning=True,
              reasoning_text=True, vision=True, context=1000000, owner="anthropic"),
    FakeModel("x-ai/grok-4", None, reasoning=True, vision=True, context=256000, owner="x-ai"),
    FakeModel("moonshotai/kimi-k2-thinking", ("low", "medium", "high"), reasoning=True,
              reasoning_text=True, needs_reasoning_details=True, context=262144,
              owner="moonshotai"),
    FakeModel("meta-llama/llama-3.3-70b-instruct:free", context=131072, owner="meta-llama"),
)
FLAVORS: dict[str, Flavor] = {
    "xai": Flavor("xai", api_key=XAI_KEY, whole_tool_calls=True,
                  reasoning_field="reasoning_content", wrong_key_status=400,
                  json_content_type=True, models=_XAI_MODELS),
    "openrouter": Flavor("openrouter", prefix="/api/v1", api_key=OPENROUTER_KEY,
                         usage="always_after_finish", reasoning_field="openrouter",
                         comments=True, models=_OPENROUTER_MODELS),
    "vllm": Flavor("vllm", models=(
        FakeModel("Qwen/Qwen3-8B", ("low", "medium", "high"), reasoning=True,
                  reasoning_text=True, context=40960, owner="vllm"),)),
    "llamacpp": Flavor("llamacpp", usage="on_finish", reasoning_field="reasoning_content",
                       done_marker=False, timings=True, models=(
                           FakeModel("qwen3-8b-q4_k_m.gguf", None, reasoning=True,
                                     reasoning_text=True, context=32768, owner="llamacpp"),)),
    "ollama": Flavor("ollama", whole_tool_calls=True, tool_index=False, first_tool_id=False,
                     checks_key=False, models=(
                         FakeModel("gpt-oss:20b", ("low", "medium", "high"), reasoning=True,
                                   reasoning_text=True, owner="library"),
                         FakeModel("llama3.2-vision:11b", vision=True, owner="library"))),
    "openai": Flavor("openai", models=(FakeModel("local-model", owner="organization-owner"),)),
}


# -- error bodies ----------------------------------------------------------------------

_STATUS_TEXT = {
    400: "Client specified an invalid argument", 401: "Unauthenticated",
    402: "Payment required", 403: "Permission denied", 404: "Some requested entity was not found",
    405: "Method not allowed", 408: "Request timed out", 415: "Unsupported media type",
    422: "Unprocessable entity", 429: "Too many requests", 500: "Internal error",
    502: "Bad gateway", 503: "Service unavailable", 504: "Deadline exceeded",
}
_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


def error_body(flavor: Flavor, status: int, message: str, metadata: JSON | None = None) -> JSON:
    """The error document `flavor` answers with for `status`."""
    if flavor.name == "xai":
        return {"code": _STATUS_TEXT.get(status, "Unknown"), "error": message}
    if flavor.name == "openrouter":
        error: JSON = {"code": status, "message": message}
        if metadata:
            error["metadata"] = metadata
        return {"error": error}
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if flavor.name == "llamacpp":
        return {"code": status, "message": message, "type": kind}
    if flavor.name == "vllm" and status == 401:
        return {"error": "Unauthorized"}
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def stream_error(flavor: Flavor, message: str, code: str, status: int) -> JSON:
    """What an in-stream error event carries (without OpenRouter's chunk fields)."""
    if flavor.name == "xai":
        return {"code": _STATUS_TEXT.get(status, "Unknown"), "error": message}
    if flavor.name == "openrouter":
        return {"error": {"code": code, "message": message}}
    return {"error": {"message": message, "type": "server_error", "param": None, "code": code}}


# -- model lists -----------------------------------------------------------------------

CREATED = 1767225600  # 2026-01-01, a fixed timestamp so lists compare equal


def models_list(flavor: Flavor) -> JSON:
    """`GET <prefix>/models` as the flavor answers it."""
    if flavor.name == "openrouter":
        return {"data": [_openrouter_entry(m) for m in flavor.models]}
    owner = {"xai": "xai", "ollama": "library"}.get(flavor.name)
    entries = []
    for model in flavor.models:
        entry: JSON = {"id": model.id, "object": "model", "created": CREATED,
                       "owned_by": owner or model.owner or "organization-owner"}
        if flavor.name == "vllm":
            entry.update(root=model.id, parent=None, max_model_len=model.context)
        entries.append(entry)
    return {"object": "list", "data": entries}


def xai_language_models(flavor: Flavor) -> JSON:
    """xAI's `GET /v1/language-models` (prices in USD cents per 100M tokens)."""
    return {"models": [{
        "id": m.id, "fingerprint": "fp_fake", "created": CREATED, "object": "model",
        "owned_by": "xai", "version": "1.0.0", "aliases": [f"{m.id}-latest"],
        "input_modalities": ["text", "image"] if m.vision else ["text"],
        "output_modalities": ["text"], "prompt_text_token_price": 30000,
        "cached_prompt_text_token_price": 7500, "completion_text_token_price": 150000,
    } for m in flavor.models if not m.served_as]}


def _openrouter_entry(model: FakeModel) -> JSON:
    inputs = ["text", "image"] if model.vision else ["text"]
    parameters = ["tools", "tool_choice", "max_tokens", "temperature", "response_format"]
    if model.reasoning:
        parameters += ["reasoning", "include_reasoning"]
    free = model.id.endswith(":free")
    price = "0" if free else "0.000003"
    return {
        "id": model.id, "canonical_slug": model.id.removesuffix(":free"),
        "name": model.id.split("/", 1)[1], "created": CREATED,
        "description": f"{model.id} (fake catalog)", "context_length": model.context,
        "architecture": {"modality": "+".join(inputs) + "->text", "input_modalities": inputs,
                         "output_modalities": ["text"], "tokenizer": "Other",
                         "instruct_type": None},
        "pricing": {"prompt": price, "completion": price, "request": "0", "image": "0",
                    "web_search": "0", "internal_reasoning": "0"},
        "top_provider": {"context_length": model.context, "max_completion_tokens": 32768,
                         "is_moderated": model.owner in ("openai", "anthropic")},
        "per_request_limits": None, "supported_parameters": parameters,
        "default_parameters": {},
    }


def openrouter_filter(entries: list[Any], query: dict[str, str]) -> list[Any]:
    """`?supported_parameters=a,b` keeps models that take them all."""
    wanted = [p for p in query.get("supported_parameters", "").split(",") if p]
    return [e for e in entries if all(p in e["supported_parameters"] for p in wanted)]
