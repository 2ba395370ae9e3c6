"""Scenario directives and SSE event sequences for the fake Codex backend.

Tests pick what the fake answers by writing ``fake:<name>`` or
``fake:<name>=<value>`` tokens into the last user message (see
``parse_scenario``).  ``sse_chunks`` then turns a scenario into the byte
chunks of a Responses API event stream.

Everything here is lazy: events are generated while the caller pulls chunks,
so a stream with millions of deltas costs no memory up front.  Only the
finished text of an item is kept, because ``*.done`` events and the terminal
response object must repeat it.  Item ids are fixed before streaming starts
(``plan_items``) so that they do not depend on how concurrent streams
interleave.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from chatmock.testing.fake_mint import encrypted_reasoning

JSON = dict[str, Any]
Event = tuple[str, JSON]
"""An event type and its fields other than ``type`` and ``sequence_number``."""
ItemEvents = Generator[Event, None, bool]
"""Events of one output item; returns False when the stream stops inside it."""

FLAGS = frozenset(
    {"reasoning_text", "commentary", "fail", "cut", "incomplete", "empty", "error_event"}
)
ENDINGS = ("empty", "error_event", "cut", "fail", "incomplete")
"""Flags that change how a stream ends, strongest first."""
COMMENTARY_TEXT = "Let me look into that first."
TRUNCATE_AFTER = 2
"""Text deltas written before ``fake:fail`` / ``fake:cut`` end the stream."""
_DIRECTIVE = re.compile(r"[ \t]*(?<!\S)fake:\S+")
_WORD = re.compile(r"\s*\S+\s*|\s+")


class DirectiveError(ValueError):
    """A ``fake:`` token that names no directive or carries a bad value."""


@dataclass(slots=True)
class Scenario:
    """What one response should look like, as chosen by directives."""

    answer: str = ""
    has_text: bool = True
    deltas: int | None = None
    burst: int = 1
    delay_ms: float = 0.0
    first_delay_ms: float = 0.0
    reasoning: int | None = None
    tools: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    websearch: str | None = None
    error: int | None = None
    flags: set[str] = field(default_factory=set)

    @property
    def ending(self) -> str:
        """``completed`` or the strongest ending flag."""
        return next((name for name in ENDINGS if name in self.flags), "completed")

    @property
    def wants_message(self) -> bool:
        """Tool calls alone produce no message item, unless text was asked for."""
        return (
            not self.tools
            or self.has_text
            or self.deltas is not None
            or self.ending in ("cut", "fail", "incomplete")
        )


def parse_scenario(user_text: str) -> Scenario:
    """Build a scenario from the directives in ``user_text``.

    Raises DirectiveError for unknown names and malformed values.
    """
    scenario = Scenario()
    for token in user_text.split():
        if token.startswith("fake:"):
            try:
                _apply(scenario, token)
            except DirectiveError as exc:
                raise DirectiveError(f"{token}: {exc}") from None
    if "reasoning_text" in scenario.flags and scenario.reasoning is None:
        scenario.reasoning = 3
    visible = _DIRECTIVE.sub("", user_text).strip()
    scenario.has_text = bool(visible)
    scenario.answer = f"Hello! You said: {visible}"
    return scenario


def tool_result_scenario(call_id: str, output: str) -> Scenario:
    """The answer to a tool round trip; directives do not apply."""
    return Scenario(answer=f"Tool {call_id} returned: {output}")


def _apply(scenario: Scenario, token: str) -> None:
    name, sep, value = token[len("fake:") :].partition("=")
    if name in FLAGS:
        if sep:
            raise DirectiveError("takes no value")
        scenario.flags.add(name)
    elif name in ("tool", "args"):
        if not value:
            raise DirectiveError("needs a value")
        (scenario.tools if name == "tool" else scenario.args).append(value)
    elif name in _SETTERS:
        if not sep and name != "reasoning":
            raise DirectiveError("needs a value")
        setattr(scenario, name, _SETTERS[name](value))
    else:
        raise DirectiveError("unknown directive")


def _number(text: str, low: float, high: float = float("inf")) -> float:
    try:
        number = float(text)
    except ValueError:
        raise DirectiveError(f"not a number: {text!r}") from None
    _check_range(number, low, high)
    return number


def _integer(text: str, low: int, high: int = 2**62) -> int:
    if not (text.isascii() and text.isdigit()):
        raise DirectiveError(f"not a whole number: {text!r}")
    number = int(text)
    _check_range(number, low, high)
    return number


def _check_range(number: float, low: float, high: float) -> None:
    if not low <= number <= high:  # also rejects nan
        raise DirectiveError(f"{number} is outside {low}..{high}")


_SETTERS: dict[str, Callable[[str], object]] = {
    "deltas": lambda v: _integer(v, 0),
    "burst": lambda v: _integer(v, 1),
    "delay_ms": lambda v: _number(v, 0),
    "first_delay_ms": lambda v: _number(v, 0),
    "reasoning": lambda v: _integer(v, 1) if v else 3,
    "websearch": str,
    "error": lambda v: _integer(v, 400, 599),
}
"""Directives that set one Scenario field of the same name from their value."""


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """One output item: ``kind`` is reasoning, commentary, web_search,
    message or function_call."""

    kind: str
    item_id: str
    call_id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ResponseSeed:
    """Everything about a response that is fixed before streaming starts."""

    response_id: str
    created_at: int
    model: str
    input_tokens: int
    echo: JSON
    """Request fields repeated in every response object."""
    items: tuple[ItemPlan, ...]


def plan_items(scenario: Scenario, next_id: Callable[[], int]) -> tuple[ItemPlan, ...]:
    """Allocate the output items of ``scenario`` in stream order."""
    items: list[ItemPlan] = []
    if scenario.reasoning is not None:
        items.append(ItemPlan("reasoning", f"rs_{next_id()}"))
    if "commentary" in scenario.flags:
        items.append(ItemPlan("commentary", f"msg_{next_id()}"))
    if scenario.websearch is not None:
        items.append(ItemPlan("web_search", f"ws_{next_id()}"))
    if scenario.wants_message:
        items.append(ItemPlan("message", f"msg_{next_id()}"))
    for index, name in enumerate(scenario.tools):
        n = next_id()
        args = scenario.args[index] if index < len(scenario.args) else "{}"
        items.append(ItemPlan("function_call", f"fc_{n}", f"call_{n}", name, args))
    return tuple(items)


def dump_json(value: object) -> bytes:
    """Compact JSON with raw UTF-8; lone surrogates fall back to escapes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def frame(event_type: str, sequence_number: int, fields: JSON) -> bytes:
    """One SSE event; ``type`` and ``sequence_number`` lead the payload."""
    payload = {"type": event_type, "sequence_number": sequence_number, **fields}
    return b"event: %s\ndata: %s\n\n" % (event_type.encode(), dump_json(payload))


def sse_chunks(scenario: Scenario, seed: ResponseSeed) -> Iterator[tuple[float, bytes]]:
    """Lazy ``(seconds to wait, bytes)`` chunks of the whole stream."""
    events = _StreamState(scenario, seed).events()
    frames = (frame(kind, seq, fields) for seq, (kind, fields) in enumerate(events))
    return _paced(frames, scenario)


def _paced(frames: Iterable[bytes], scenario: Scenario) -> Iterator[tuple[float, bytes]]:
    wait = scenario.first_delay_ms / 1000
    batch: list[bytes] = []
    sent = False
    for data in frames:
        batch.append(data)
        if len(batch) >= scenario.burst:
            yield wait, b"".join(batch)
            wait, batch, sent = scenario.delay_ms / 1000, [], True
    if batch:
        yield wait, b"".join(batch)
    elif not sent and wait > 0:
        yield wait, b""  # an empty stream that still keeps the client waiting


def answer_deltas(scenario: Scenario) -> Iterator[str]:
    """The text deltas of the final message."""
    if scenario.deltas is None:
        return split_words(scenario.answer)
    return (numbered_delta(i) for i in range(scenario.deltas))


def split_words(text: str) -> Iterator[str]:
    """Split per word, keeping whitespace, so the pieces join back to ``text``."""
    return (match.group() for match in _WORD.finditer(text))


def numbered_delta(index: int) -> str:
    """``tok<i> ``; every 7th one also holds characters JSON must escape."""
    if index % 7 == 6:
        emoji = "😀" if index % 14 == 13 else "é"
        return f'tok{index} "q\\{emoji}\n'
    return f"tok{index} "


def split_arguments(arguments: str, pieces: int = 4) -> list[str]:
    size = max(1, -(-len(arguments) // pieces))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


class _StreamState:
    """Generates the events of one response and keeps its running totals."""

    def __init__(self, scenario: Scenario, seed: ResponseSeed) -> None:
        self.scenario = scenario
        self.seed = seed
        self.output: list[JSON] = []
        self.output_tokens = 0
        self.reasoning_tokens = 0

    def events(self) -> Iterator[Event]:
        ending = self.scenario.ending
        if ending == "empty":
            return
        yield "response.created", {"response": self.response("in_progress")}
        if ending == "error_event":
            yield "error", _RATE_LIMIT_EVENT
            return
        yield "response.in_progress", {"response": self.response("in_progress")}
        for index, item in enumerate(self.seed.items):
            if not (yield from self.item(index, item)):
                break
        yield from self.terminal(ending)

    def item(self, index: int, item: ItemPlan) -> ItemEvents:
        if item.kind == "reasoning":
            return self.reasoning(index, item.item_id)
        if item.kind == "commentary":
            return self.message(index, item.item_id, "commentary", split_words(COMMENTARY_TEXT))
        if item.kind == "web_search":
            return self.web_search(index, item.item_id)
        if item.kind == "function_call":
            return self.function_call(index, item)
        return self.message(index, item.item_id, "final_answer", answer_deltas(self.scenario))

    def terminal(self, ending: str) -> Iterator[Event]:
        if ending == "fail":
            failed = self.response("failed", error=_FAILURE)
            yield "response.failed", {"response": failed}
        elif ending == "incomplete":
            details = {"reason": "max_output_tokens"}
            response = self.response("incomplete", incomplete_details=details)
            yield "response.incomplete", {"response": response}
        elif ending == "completed":
            yield "response.completed", {"response": self.response("completed")}

    def response(self, status: str, **extra: object) -> JSON:
        done = status != "in_progress"
        return {
            "id": self.seed.response_id,
            "object": "response",
            "created_at": self.seed.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            **self.seed.echo,
            "model": self.seed.model,
            "output": list(self.output) if done else [],
            "usage": self.usage() if done and status != "failed" else None,
            **extra,
        }

    def usage(self) -> JSON:
        tokens_in, tokens_out = self.seed.input_tokens, self.output_tokens
        return {
            "input_tokens": tokens_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": tokens_out,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": tokens_in + tokens_out,
        }

    def added(self, index: int, item: JSON) -> Event:
        return "response.output_item.added", {"output_index": index, "item": item}

    def done(self, index: int, item: JSON) -> Event:
        self.output.append(item)
        return "response.output_item.done", {"output_index": index, "item": item}

    def message(self, index: int, item_id: str, phase: str, deltas: Iterator[str]) -> ItemEvents:
        ending = self.scenario.ending
        truncated = phase == "final_answer" and ending in ("cut", "fail")
        status = "incomplete" if phase == "final_answer" and ending == "incomplete" else "completed"
        item: JSON = {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "phase": phase,
            "role": "assistant",
        }
        yield self.added(index, item)
        where: JSON = {"item_id": item_id, "output_index": index, "content_index": 0}
        yield "response.content_part.added", {**where, "part": _text_part("")}
        parts: list[str] = []
        for delta in islice(deltas, TRUNCATE_AFTER) if truncated else deltas:
            parts.append(delta)
            self.output_tokens += 1
            yield "response.output_text.delta", {**where, "delta": delta, "logprobs": []}
        if truncated:
            return False
        text = "".join(parts)
        yield "response.output_text.done", {**where, "text": text, "logprobs": []}
        yield "response.content_part.done", {**where, "part": _text_part(text)}
        yield self.done(index, {**item, "status": status, "content": [_text_part(text)]})
        return True

    def reasoning(self, index: int, item_id: str) -> ItemEvents:
        item: JSON = {"id": item_id, "type": "reasoning", "summary": []}
        yield self.added(index, item)
        where: JSON = {"item_id": item_id, "output_index": index}
        raw = ""
        if "reasoning_text" in self.scenario.flags:
            raw = yield from self.reasoning_text(where)
        summary: list[JSON] = []
        for part in range(2):
            text = yield from self.summary_part(where, part)
            summary.append({"type": "summary_text", "text": text})
        item = {**item, "summary": summary, "encrypted_content": encrypted_reasoning(item_id)}
        if raw:
            item["content"] = [{"type": "reasoning_text", "text": raw}]
        yield self.done(index, item)
        return True

    def reasoning_text(self, where: JSON) -> Generator[Event, None, str]:
        at = {**where, "content_index": 0}
        parts = [f"raw{i} " for i in range(self.scenario.reasoning or 0)]
        for delta in parts:
            self.count_reasoning()
            yield "response.reasoning_text.delta", {**at, "delta": delta}
        text = "".join(parts)
        yield "response.reasoning_text.done", {**at, "text": text}
        return text

    def summary_part(self, where: JSON, part: int) -> Generator[Event, None, str]:
        at = {**where, "summary_index": part}
        yield "response.reasoning_summary_part.added", {**at, "part": _summary("")}
        count = self.scenario.reasoning or 0
        parts = [f"**Step {part + 1}**\n\n"] + [f"thought {part + 1}.{i} " for i in range(1, count)]
        for delta in parts:
            self.count_reasoning()
            yield "response.reasoning_summary_text.delta", {**at, "delta": delta}
        text = "".join(parts)
        yield "response.reasoning_summary_text.done", {**at, "text": text}
        yield "response.reasoning_summary_part.done", {**at, "part": _summary(text)}
        return text

    def count_reasoning(self) -> None:
        self.output_tokens += 1
        self.reasoning_tokens += 1

    def web_search(self, index: int, item_id: str) -> ItemEvents:
        yield self.added(index, {"id": item_id, "type": "web_search_call", "status": "in_progress"})
        where: JSON = {"output_index": index, "item_id": item_id}
        for phase in ("in_progress", "searching", "completed"):
            yield f"response.web_search_call.{phase}", dict(where)
        action = {"type": "search", "query": self.scenario.websearch}
        item = {"type": "web_search_call", "id": item_id, "status": "completed", "action": action}
        yield self.done(index, item)
        return True

    def function_call(self, index: int, plan: ItemPlan) -> ItemEvents:
        item: JSON = {
            "id": plan.item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": plan.call_id,
            "name": plan.name,
        }
        yield self.added(index, item)
        where: JSON = {"item_id": plan.item_id, "output_index": index}
        for delta in split_arguments(plan.arguments):
            self.output_tokens += 1
            yield "response.function_call_arguments.delta", {**where, "delta": delta}
        yield "response.function_call_arguments.done", {**where, "arguments": plan.arguments}
        yield self.done(index, {**item, "status": "completed", "arguments": plan.arguments})
        return True


def _text_part(text: str) -> JSON:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _summary(text: str) -> JSON:
    return {"type": "summary_text", "text": text}


_FAILURE: JSON = {"code": "server_error", "message": "The fake backend failed this response"}
_RATE_LIMIT_EVENT: JSON = {
    "code": "rate_limit_exceeded",
    "message": "Rate limit reached for the fake backend. Please try again later.",
    "param": None,
}
