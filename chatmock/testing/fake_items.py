"""Event sequences of single output items, and the payloads of in-stream failures.

``OutputItems`` generates the events of one reasoning, web search, function
call or custom tool call item at a time and keeps the stream's running totals
(finished items, output and reasoning tokens); ``fake_events`` builds the
whole stream (messages, endings, framing) on top of it.

A custom tool call (the Codex CLI's freeform tools such as ``apply_patch``)
streams its input as ``response.custom_tool_call_input.delta`` events, then
``.done`` with the whole input, as the backend does for ``custom`` tools.

Citations (``fake:citations``): the answer ends with two markdown links to
web sources, each covered by a ``url_citation`` annotation (``start_index`` /
``end_index`` in characters of the message text, ``url``, ``title``)
announced by ``response.output_text.annotation.added`` right after the delta
that completes it, and repeated in the finished message's ``annotations``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatmock.testing.fake_mint import encrypted_reasoning

if TYPE_CHECKING:
    from chatmock.testing.fake_events import Scenario

JSON = dict[str, Any]
Event = tuple[str, JSON]
"""An event type and its fields other than ``type`` and ``sequence_number``."""
ItemEvents = Generator[Event, None, bool]
"""Events of one output item; returns False when the stream stops inside it."""

FAILURES: dict[str, str] = {
    "server_error": "The fake backend failed this response",
    "context_length_exceeded": "Your input exceeds the context window of this model. "
                               "Please shorten the input and try again.",
    "rate_limit_exceeded": "Rate limit reached for the fake backend on tokens per min (TPM): "
                           "Limit 30000, Used 29000, Requested 4000. Please try again in 7.5s.",
    "invalid_prompt": "Invalid prompt: this request was flagged as potentially violating "
                      "the usage policy.",
    "server_is_overloaded": "The fake backend is overloaded. Please try again later.",
}
"""``response.failed`` / ``error`` codes the Codex CLI is known to receive, each with the
message it carries (in the fake's words; the rate limit names its delay as the backend's
"try again in Ns" does)."""
INCOMPLETE_REASONS = ("max_output_tokens", "content_filter")
USAGE_LIMIT_VARIANTS = ("resets_in", "resets_at", "not_included", "headers_only", "plain")
"""The 429 answers of ``fake:usage_limit`` (see ``fake_failures``)."""
RATE_LIMIT_EVENT: JSON = {
    "code": "rate_limit_exceeded",
    "message": "Rate limit reached for the fake backend. Please try again later.",
    "param": None,
}
"""The ``error`` event of ``fake:error_event`` (before any output)."""
DEFAULT_PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+Hello, "world"!\n*** End Patch\n'
"""The input of ``fake:custom_tool`` unless ``fake:input`` gives one."""
CITED_SOURCES = (("Example Docs", "https://example.com/docs?utm_source=openai"),
                 ("Example News", "https://example.org/news?utm_source=openai"))


def failure(code: str) -> JSON:
    """The ``error`` object of a ``response.failed`` with this code."""
    return {"code": code, "message": FAILURES[code]}


def error_event(code: str) -> JSON:
    """The fields of an ``error`` event with this code."""
    return {"code": code, "message": FAILURES[code], "param": None}


def citation_deltas(start: int) -> Iterator[tuple[str, JSON | None]]:
    """(delta, annotation completed by it or None) of the sources sentence that follows
    ``start`` characters of answer text."""
    yield " Sources: ", None
    offset = start + len(" Sources: ")
    for number, (title, url) in enumerate(CITED_SOURCES):
        if number:
            yield ", ", None
            offset += 2
        link = f"[{title}]({url})"
        yield link, {"type": "url_citation", "start_index": offset,
                     "end_index": offset + len(link), "url": url, "title": title}
        offset += len(link)
    yield ".", None


def split_arguments(arguments: str, pieces: int = 4) -> list[str]:
    size = max(1, -(-len(arguments) // pieces))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """One output item: ``kind`` is reasoning, commentary, web_search, message,
    function_call or custom_tool_call (whose ``arguments`` hold its input)."""

    kind: str
    item_id: str
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class OutputItems:
    """Events of the non-message items, and the totals the response object reports."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.output: list[JSON] = []
        self.output_tokens = 0
        self.reasoning_tokens = 0

    def added(self, index: int, item: JSON) -> Event:
        return "response.output_item.added", {"output_index": index, "item": item}

    def done(self, index: int, item: JSON) -> Event:
        self.output.append(item)
        return "response.output_item.done", {"output_index": index, "item": item}

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
        content = encrypted_reasoning(item_id, self.scenario.account)
        item = {**item, "summary": summary, "encrypted_content": content}
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
        action = {"type": "search", "query": self.scenario.websearch or "fake sources"}
        item = {"type": "web_search_call", "id": item_id, "status": "completed", "action": action}
        yield self.done(index, item)
        return True

    def function_call(self, index: int, plan: ItemPlan) -> ItemEvents:
        return self._call(index, plan, "arguments", "response.function_call_arguments")

    def custom_tool_call(self, index: int, plan: ItemPlan) -> ItemEvents:
        return self._call(index, plan, "input", "response.custom_tool_call_input")

    def _call(self, index: int, plan: ItemPlan, field: str, events: str) -> ItemEvents:
        """A call item whose ``field`` (arguments, or a custom tool's input) streams as
        ``<events>.delta`` pieces and one ``<events>.done``."""
        kind = "function_call" if field == "arguments" else "custom_tool_call"
        item: JSON = {"id": plan.item_id, "type": kind, "status": "in_progress", field: "",
                      "call_id": plan.call_id, "name": plan.name}
        yield self.added(index, item)
        where: JSON = {"item_id": plan.item_id, "output_index": index}
        for delta in split_arguments(plan.arguments):
            self.output_tokens += 1
            yield f"{events}.delta", {**where, "delta": delta}
        yield f"{events}.done", {**where, field: plan.arguments}
        yield self.done(index, {**item, "status": "completed", field: plan.arguments})
        return True


def _summary(text: str) -> JSON:
    return {"type": "summary_text", "text": text}
