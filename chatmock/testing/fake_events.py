"""Scenario directives and SSE event sequences for the fake Codex backend.

Tests pick what the fake answers by writing ``fake:<name>`` or
``fake:<name>=<value>`` tokens into the last user message (see
``parse_scenario``).  ``sse_chunks`` then turns a scenario into the byte
chunks of a Responses API event stream.

Directives (several combine; a tool result as the last input item ignores them):

* ``fake:deltas=N``: the answer is N numbered text deltas (every 7th holds
  characters JSON must escape) instead of the echo of the prompt;
* ``fake:burst=N``, ``fake:delay_ms=X``, ``fake:first_delay_ms=X``: pacing, N
  events a chunk, X ms between chunks / before the first;
* ``fake:reasoning[=N]``: a reasoning item (two summary parts of N deltas);
  ``fake:reasoning_text`` adds raw ``reasoning_text`` deltas;
* ``fake:commentary``: a ``commentary``-phase message before the answer;
* ``fake:websearch=QUERY``: a ``web_search_call`` item before the answer;
* ``fake:citations``: the answer ends with two ``url_citation`` annotated
  links (``response.output_text.annotation.added``), after a web search;
* ``fake:tool=NAME`` (repeatable) with ``fake:args=JSON`` (paired in order):
  function calls;
* ``fake:custom_tool=NAME`` (repeatable) with ``fake:input=TEXT`` (paired in
  order, percent-decoded, default an ``apply_patch`` patch): ``custom_tool_call``
  items with ``response.custom_tool_call_input.delta`` / ``.done``; the request
  must define a ``custom`` tool of that name;
* ``fake:error=STATUS``: an HTTP error instead of a stream (``fake_failures``);
  ``fake:usage_limit=VARIANT``: one of the 429 usage-limit answers
  (``resets_in``, ``resets_at``, ``not_included``, ``headers_only``, ``plain``);
* ``fake:fail[=CODE]``: ``response.failed``; ``server_error`` (default) after
  two text deltas, the other codes of ``fake_items.FAILURES``
  (``context_length_exceeded``, ``rate_limit_exceeded``, ``invalid_prompt``,
  ``server_is_overloaded``) before any output;
* ``fake:late_error[=CODE]``: an ``error`` event after two text deltas
  (default ``server_error``); ``fake:error_event``: an ``error`` event
  (``rate_limit_exceeded``) before any output;
* ``fake:incomplete[=REASON]``: ``response.incomplete`` with
  ``incomplete_details.reason`` ``max_output_tokens`` (default) or
  ``content_filter``;
* ``fake:cut``: the connection drops after two text deltas;
  ``fake:empty``: a 200 with no events at all.

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from urllib.parse import unquote

from chatmock.testing.fake_items import (
    DEFAULT_PATCH,
    FAILURES,
    INCOMPLETE_REASONS,
    RATE_LIMIT_EVENT,
    USAGE_LIMIT_VARIANTS,
    ItemEvents,
    ItemPlan,
    OutputItems,
    citation_deltas,
    error_event,
    failure,
)
from chatmock.testing.fake_items import (
    JSON as JSON,
)
from chatmock.testing.fake_items import (
    Event as Event,
)

PACING_FLAGS = frozenset({"coalesce"})
"""Flags that change only how events are framed into chunks (``_paced``)."""
FLAGS = frozenset({"reasoning_text", "commentary", "cut", "empty", "error_event", "citations"})
CODED_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fail": ("fail_code", tuple(FAILURES)),
    "late_error": ("late_code", tuple(FAILURES)),
    "incomplete": ("incomplete_reason", INCOMPLETE_REASONS),
}
"""Flags that may name a code: the Scenario field it sets and the codes allowed."""
LISTS = {"tool": "tools", "args": "args", "custom_tool": "custom_tools", "input": "inputs"}
ENDINGS = ("empty", "error_event", "cut", "late_error", "fail", "incomplete")
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
    custom_tools: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    websearch: str | None = None
    error: int | None = None
    usage_limit: str | None = None
    fail_code: str = "server_error"
    late_code: str = "server_error"
    incomplete_reason: str = "max_output_tokens"
    flags: set[str] = field(default_factory=set)
    account: str = ""  # the request's account: encrypted reasoning is minted for it

    @property
    def ending(self) -> str:
        """``completed`` or the strongest ending flag."""
        return next((name for name in ENDINGS if name in self.flags), "completed")

    @property
    def wants_message(self) -> bool:
        """Tool calls alone produce no message item, unless text was asked for."""
        return (
            not (self.tools or self.custom_tools)
            or self.has_text
            or self.deltas is not None
            or self.ending in ("cut", "fail", "late_error", "incomplete")
        )

    @property
    def fails_early(self) -> bool:
        """A failure the backend reports before producing any output."""
        return self.ending == "fail" and self.fail_code != "server_error"


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
    if name in FLAGS or name in PACING_FLAGS:
        if sep:
            raise DirectiveError("takes no value")
        scenario.flags.add(name)
    elif name in CODED_FLAGS:
        where, codes = CODED_FLAGS[name]
        if sep:
            setattr(scenario, where, _one_of(value, codes))
        scenario.flags.add(name)
    elif name in LISTS:
        if not value:
            raise DirectiveError("needs a value")
        getattr(scenario, LISTS[name]).append(unquote(value) if name == "input" else value)
    elif name == "usage_limit":
        scenario.usage_limit = _one_of(value, USAGE_LIMIT_VARIANTS)
        scenario.error = 429
    elif name in _SETTERS:
        if not sep and name != "reasoning":
            raise DirectiveError("needs a value")
        setattr(scenario, name, _SETTERS[name](value))
    else:
        raise DirectiveError("unknown directive")


def _one_of(text: str, allowed: tuple[str, ...]) -> str:
    if text not in allowed:
        raise DirectiveError(f"expected one of {', '.join(allowed)}")
    return text


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
    if scenario.websearch is not None or "citations" in scenario.flags:
        items.append(ItemPlan("web_search", f"ws_{next_id()}"))
    if scenario.wants_message:
        items.append(ItemPlan("message", f"msg_{next_id()}"))
    for index, name in enumerate(scenario.tools):
        n = next_id()
        args = scenario.args[index] if index < len(scenario.args) else "{}"
        items.append(ItemPlan("function_call", f"fc_{n}", f"call_{n}", name, args))
    for index, name in enumerate(scenario.custom_tools):
        n = next_id()
        text = scenario.inputs[index] if index < len(scenario.inputs) else DEFAULT_PATCH
        items.append(ItemPlan("custom_tool_call", f"ctc_{n}", f"call_{n}", name, text))
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
    """One chunk per event, as the real backend writes its stream.

    Events come in groups of ``burst``: the first event of a group waits
    (``first_delay_ms`` before the first group, ``delay_ms`` before the others),
    the rest of the group follows at once, each event still its own chunk.
    ``fake:coalesce`` joins each group into one chunk instead: no backend frames
    like that, so it exists only for the bench's labelled comparison phase.
    """
    first, later = scenario.first_delay_ms / 1000, scenario.delay_ms / 1000
    burst = scenario.burst
    if "coalesce" in scenario.flags:
        frames, burst = (b"".join(group) for group in _groups(frames, burst)), 1
    sent = False
    for index, data in enumerate(frames):
        yield (first if index == 0 else 0.0 if index % burst else later), data
        sent = True
    if not sent and first > 0:
        yield first, b""  # an empty stream that still keeps the client waiting


def _groups(frames: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    """``frames`` in lists of ``size`` (the last one may be shorter), lazily."""
    iterator = iter(frames)
    while group := list(islice(iterator, size)):
        yield group


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


class _StreamState(OutputItems):
    """Generates the events of one response and keeps its running totals."""

    def __init__(self, scenario: Scenario, seed: ResponseSeed) -> None:
        super().__init__(scenario)
        self.seed = seed

    def events(self) -> Iterator[Event]:
        ending = self.scenario.ending
        if ending == "empty":
            return
        yield "response.created", {"response": self.response("in_progress")}
        if ending == "error_event":
            yield "error", RATE_LIMIT_EVENT
            return
        yield "response.in_progress", {"response": self.response("in_progress")}
        items = () if self.scenario.fails_early else self.seed.items
        for index, item in enumerate(items):
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
        if item.kind == "custom_tool_call":
            return self.custom_tool_call(index, item)
        return self.message(index, item.item_id, "final_answer", answer_deltas(self.scenario))

    def terminal(self, ending: str) -> Iterator[Event]:
        if ending == "fail":
            failed = self.response("failed", error=failure(self.scenario.fail_code))
            yield "response.failed", {"response": failed}
        elif ending == "late_error":
            yield "error", error_event(self.scenario.late_code)
        elif ending == "incomplete":
            details = {"reason": self.scenario.incomplete_reason}
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

    def message(self, index: int, item_id: str, phase: str, deltas: Iterator[str]) -> ItemEvents:
        ending = self.scenario.ending
        final = phase == "final_answer"
        truncated = final and ending in ("cut", "fail", "late_error")
        status = "incomplete" if final and ending == "incomplete" else "completed"
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
            yield self.text_delta(where, parts, delta)
        if truncated:
            return False
        annotations: list[JSON] = []
        if final and "citations" in self.scenario.flags:
            yield from self.citations(where, parts, annotations)
        text = "".join(parts)
        part = _text_part(text, annotations)
        yield "response.output_text.done", {**where, "text": text, "logprobs": []}
        yield "response.content_part.done", {**where, "part": part}
        yield self.done(index, {**item, "status": status, "content": [part]})
        return True

    def text_delta(self, where: JSON, parts: list[str], delta: str) -> Event:
        parts.append(delta)
        self.output_tokens += 1
        return "response.output_text.delta", {**where, "delta": delta, "logprobs": []}

    def citations(self, where: JSON, parts: list[str], annotations: list[JSON]) -> ItemEvents:
        """The sources sentence, each link announced once its delta is out."""
        for delta, annotation in citation_deltas(len("".join(parts))):
            yield self.text_delta(where, parts, delta)
            if annotation is not None:
                yield "response.output_text.annotation.added", {
                    **where, "annotation_index": len(annotations), "annotation": annotation}
                annotations.append(annotation)
        return True


def _text_part(text: str, annotations: list[JSON] | None = None) -> JSON:
    return {"type": "output_text", "annotations": annotations or [], "logprobs": [], "text": text}
