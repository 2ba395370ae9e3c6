"""The chunks of a fake chat-completions answer, framed per flavor.

`ChatAnswer` turns a `Scenario` (the Codex fake's `fake:` directives, see
`fake_events.parse_scenario`) into `chat.completion.chunk` events, or into one
`chat.completion` object for `stream: false`. What each flavor changes is
described in `fake_chat_flavors`. The order of a streamed answer:

    [: OPENROUTER PROCESSING]   role chunk   reasoning deltas   [comment]
    content deltas   tool calls   finish chunk   [usage chunk]   [data: [DONE]]

Endings, as in the Codex fake: `fake:error_event` puts an in-stream error
before any content, `fake:fail` one after two content deltas (on OpenRouter
the chunk with `finish_reason: "error"`), neither followed by `[DONE]`;
`fake:cut` stops the body after two deltas (the server drops the connection);
`fake:incomplete` finishes with `length`; `fake:empty` sends no event at all.
Like the Codex fake's streams, this one is generated while the caller pulls.
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from chatmock.testing.fake_chat_flavors import FakeModel, Flavor, stream_error
from chatmock.testing.fake_events import (
    JSON,
    TRUNCATE_AFTER,
    Scenario,
    answer_deltas,
    dump_json,
)
from chatmock.testing.fake_events import _paced as paced  # the Codex fake's pacing rules
from chatmock.testing.fake_items import ItemPlan, split_arguments

COMMENT = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
Chunk = tuple[float, bytes]
_PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic", "x-ai": "xAI",
              "moonshotai": "Moonshot AI", "meta-llama": "Together"}


@dataclass(frozen=True, slots=True)
class ChatSeed:
    """What is fixed before the answer starts."""

    completion_id: str
    created: int
    model: FakeModel
    prompt_tokens: int
    calls: tuple[ItemPlan, ...]
    include_usage: bool
    show_reasoning: bool
    """The reasoning is streamed as text (the model shows it and it was not excluded)."""


def reasoning_deltas(scenario: Scenario) -> list[str]:
    return [f"thought {i} " for i in range(scenario.reasoning or 0)]


class ChatAnswer:
    """One answer's chunks; counts tokens while they are generated."""

    def __init__(self, flavor: Flavor, scenario: Scenario, seed: ChatSeed) -> None:
        self.flavor = flavor
        self.scenario = scenario
        self.seed = seed
        self.completion_tokens = 0
        self.reasoning_tokens = 0
        self.text: list[str] = []
        self.reasoning: list[str] = []

    # -- streamed ----------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """Lazy `(seconds to wait, bytes)` pieces of the whole SSE body."""
        return paced(self._frames(), self.scenario)

    def _frames(self) -> Iterator[bytes]:
        ending = self.scenario.ending
        if self.flavor.comments:
            yield COMMENT
        if ending == "empty":
            return
        yield self._event(self._choice({"role": "assistant", "content": ""}))
        if ending == "error_event":
            yield self._error("Rate limit exceeded, please retry later.",
                              "rate_limit_exceeded", 429)
            return
        yield from self._reasoning_frames()
        if not (yield from self._content_frames()):
            return
        yield from self._tool_frames()
        yield from self._finish_frames("length" if ending == "incomplete" else self._reason())

    def _reasoning_frames(self) -> Iterator[bytes]:
        pieces = reasoning_deltas(self.scenario)
        for index, piece in enumerate(pieces):
            self.reasoning_tokens += 1
            self.completion_tokens += 1
            if self.seed.show_reasoning:
                self.reasoning.append(piece)
                yield self._event(self._choice(self._reasoning_delta(piece, index)))
        if pieces and self.seed.show_reasoning and self._encrypted_details():
            yield self._event(self._choice(self._encrypted_delta(len(pieces))))
        if pieces and self.flavor.comments:
            yield COMMENT

    def _content_frames(self) -> Generator[bytes, None, bool]:
        """Content deltas; False when the stream ends inside them (fail, cut)."""
        if not self.scenario.wants_message:
            return True
        truncated = self.scenario.ending in ("cut", "fail")
        deltas = answer_deltas(self.scenario)
        for piece in islice(deltas, TRUNCATE_AFTER) if truncated else deltas:
            self.text.append(piece)
            self.completion_tokens += 1
            yield self._event(self._choice({"content": piece}))
        if self.scenario.ending == "fail":
            yield self._error("The provider failed this response (fake).", "server_error", 502)
        return not truncated

    def _tool_frames(self) -> Iterator[bytes]:
        for index, call in enumerate(self.seed.calls):
            self.completion_tokens += 1
            if self.flavor.whole_tool_calls:
                yield self._event(self._choice({"tool_calls": [
                    self._call(index, call, call.arguments)]}))
                continue
            yield self._event(self._choice({"tool_calls": [self._call(index, call, "")]}))
            for piece in split_arguments(call.arguments):
                entry: JSON = {"index": index, "function": {"arguments": piece}}
                yield self._event(self._choice({"tool_calls": [entry]}))

    def _call(self, index: int, call: ItemPlan, arguments: str) -> JSON:
        entry: JSON = {"id": call.call_id, "type": "function",
                       "function": {"name": call.name, "arguments": arguments}}
        if self.flavor.tool_index:
            entry["index"] = index
        if index == 0 and not self.flavor.first_tool_id:
            del entry["id"]
        return entry

    def _finish_frames(self, reason: str) -> Iterator[bytes]:
        finish = self._choice({}, reason)
        usage = self.usage()
        usage_mode = self.flavor.usage
        if usage_mode == "on_finish":
            finish["usage"] = usage
            finish["timings"] = self._timings()
        yield self._event(finish)
        if usage_mode == "always_after_finish":
            after = self._choice({"role": "assistant", "content": ""}, None)
            after["usage"] = usage
            yield self._event(after)
        elif usage_mode == "include_usage" and self.seed.include_usage:
            yield self._event({**self._head(), "choices": [], "usage": usage})
        if self.flavor.done_marker:
            yield DONE

    def _reason(self) -> str:
        return "tool_calls" if self.seed.calls else "stop"

    def _error(self, message: str, code: str, status: int) -> bytes:
        error = stream_error(self.flavor, message, code, status)
        if self.flavor.name == "openrouter":
            chunk = self._choice({"content": ""}, "error")
            return self._event({**chunk, **error})
        return b"data: " + dump_json(error) + b"\n\n"

    # -- pieces ------------------------------------------------------------------------

    def _head(self) -> JSON:
        head: JSON = {"id": self.seed.completion_id, "object": "chat.completion.chunk",
                      "created": self.seed.created, "model": self.served_model}
        if self.flavor.name == "openrouter":
            head["provider"] = _PROVIDERS.get(self.seed.model.owner, "Fake Provider")
        elif self.flavor.name == "xai":
            head["system_fingerprint"] = "fp_fake0001"
        return head

    def _choice(self, delta: JSON, finish: str | None = None) -> JSON:
        choice: JSON = {"index": 0, "delta": delta, "finish_reason": finish}
        if self.flavor.name == "openrouter":
            choice["native_finish_reason"] = finish
            choice["logprobs"] = None
        return {**self._head(), "choices": [choice]}

    def _event(self, chunk: JSON) -> bytes:
        return b"data: " + dump_json(chunk) + b"\n\n"

    @property
    def served_model(self) -> str:
        model = self.seed.model
        return model.served_as or model.id

    def _reasoning_delta(self, piece: str, index: int) -> JSON:
        field = self.flavor.reasoning_field
        if field != "openrouter":
            return {field: piece}
        if self._encrypted_details():
            detail: JSON = {"type": "reasoning.summary", "summary": piece,
                            "format": "openai-responses-v1", "index": 0}
        else:
            detail = {"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}
        return {"role": "assistant", "content": "", "reasoning": piece,
                "reasoning_details": [detail]}

    def _encrypted_details(self) -> bool:
        return self.flavor.name == "openrouter" and self.seed.model.owner == "openai"

    def _encrypted_delta(self, count: int) -> JSON:
        data = "gAAAAB" + base64.b64encode(f"fake-reasoning:{count}".encode()).decode()
        detail = {"type": "reasoning.encrypted", "data": data, "id": f"rs_{self.seed.created}",
                  "format": "openai-responses-v1", "index": 1}
        return {"role": "assistant", "content": "", "reasoning": None,
                "reasoning_details": [detail]}

    def usage(self) -> JSON:
        prompt, completion = self.seed.prompt_tokens, self.completion_tokens
        usage: JSON = {"prompt_tokens": prompt, "completion_tokens": completion,
                       "total_tokens": prompt + completion}
        if self.flavor.name in ("xai", "openrouter", "openai"):
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        if self.flavor.name == "xai":
            usage["num_sources_used"] = 0
        if self.flavor.name == "openrouter":
            usage.update(cost=round((prompt + completion) * 3e-6, 9), is_byok=False,
                         cost_details={"upstream_inference_cost": None})
        return usage

    def _timings(self) -> JSON:
        predicted = self.completion_tokens
        return {"prompt_n": self.seed.prompt_tokens, "prompt_ms": 12.5,
                "prompt_per_token_ms": 0.5, "prompt_per_second": 2000.0,
                "predicted_n": predicted, "predicted_ms": 20.0 * predicted,
                "predicted_per_token_ms": 20.0, "predicted_per_second": 50.0}

    # -- one piece (stream: false) -----------------------------------------------------

    def completion(self) -> JSON:
        """The `chat.completion` object of a non-streamed answer."""
        for _ in self._frames():  # the same generation, for the same texts and counts
            pass
        message: JSON = {"role": "assistant", "content": "".join(self.text) or None}
        if self.reasoning:
            field = self.flavor.reasoning_field
            message["reasoning" if field == "openrouter" else field] = "".join(self.reasoning)
        if self.seed.calls:
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.seed.calls]
        reason = "length" if self.scenario.ending == "incomplete" else self._reason()
        choice: JSON = {"index": 0, "message": message, "finish_reason": reason}
        return {**self._head(), "object": "chat.completion", "choices": [choice],
                "usage": self.usage()}


def response_format_text(response_format: Any) -> JSON | None:
    """Chat `response_format` in the Responses `text` shape `structured_answer` reads."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {"format": {"type": "json_object"}}
    spec = response_format.get("json_schema")
    if kind == "json_schema" and isinstance(spec, dict):
        return {"format": {"type": "json_schema", "schema": spec.get("schema")}}
    return None
