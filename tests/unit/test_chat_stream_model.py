"""Model-based property of the chat translators: random upstream scripts vs a simple model.

A script is a realistic Responses stream (text, reasoning paragraphs, function calls in any
order, then an ending), written with varying JSON formatting so that both the raw-bytes fast
path and the parsing slow path are exercised. The model below says, in a few lines, what a
client must reassemble from it; stream and collector must agree with the model however the
bytes are chunked.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.dialects.chat_stream import ChatStreamTranslator, chat_completion
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.events import TRUNCATED_MESSAGE

from .helpers import JSON, chunked, run_bytes
from .test_chat_stream import CREATED, MODEL, parse

Event = tuple[str, JSON]


@dataclass
class Expected:
    text: str = ""
    think: str = ""  # content in think-tags mode
    o3: str = ""
    legacy_summary: str = ""
    legacy_reasoning: str = ""
    summary: str = ""  # collector
    full: str = ""
    calls: list[JSON] = field(default_factory=list)
    finish: str | None = None
    error: tuple[str, str] | None = None
    usage: JSON | None = None


class Model:
    """What a client should see, event by event."""

    def __init__(self) -> None:
        self.out = Expected()
        self.think_state = "unopened"
        self.started = False
        self.pending = False
        self.separator_due = False

    def message(self) -> None:
        """A new message item: its text is set apart from earlier text by a blank line."""
        self.separator_due = bool(self.out.text)

    def text(self, delta: str) -> None:
        self._close_think()
        if self.separator_due:
            self.separator_due = False
            delta = "\n\n" + delta
        self.out.text += delta
        self.out.think += delta

    def part(self) -> None:
        self.pending = self.started
        if self.started:
            self.out.summary += "\n"
        self.started = True

    def reasoning(self, delta: str, summary: bool) -> None:
        shown = delta
        if summary:
            self.out.summary += delta
            self.out.legacy_summary += delta
            if self.pending:
                shown = "\n" + delta
                self.pending = False
        else:
            self.out.full += delta
        self.out.legacy_reasoning += delta
        self.out.o3 += shown
        if self.think_state == "unopened":
            self.out.think += "<think>" + shown
            self.think_state = "open"
        elif self.think_state == "open":
            self.out.think += shown

    def call(self, call_id: str, name: str, arguments: str) -> None:
        self._close_think()
        self.out.calls.append({"id": call_id, "name": name, "arguments": arguments})

    def end(self) -> None:
        self._close_think()

    def _close_think(self) -> None:
        if self.think_state == "open":
            self.out.think += "</think>"
        self.think_state = "closed"


deltas = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4)
arguments = st.dictionaries(st.text(max_size=4), st.text(max_size=6) | st.integers(),
                            max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False))
items = st.one_of(
    st.tuples(st.just("text"), deltas),
    st.tuples(st.just("reasoning"), st.lists(deltas, min_size=1, max_size=3),
              st.lists(st.text(min_size=1, max_size=6), max_size=3)),
    st.tuples(st.just("call"), st.text(alphabet="abcdef_", min_size=1, max_size=8), arguments,
              st.integers(min_value=1, max_value=4), st.booleans()),
)
usages = st.none() | st.fixed_dictionaries({
    "input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**6),
    "input_tokens_details": st.fixed_dictionaries({"cached_tokens": st.integers(0, 10)}),
    "output_tokens_details": st.fixed_dictionaries({"reasoning_tokens": st.integers(0, 10)})})
endings = st.sampled_from(["completed", "incomplete", "failed", "error", "cut"])


def script(draw_items: list[Any], ending: str, usage: JSON | None) -> tuple[list[Event],
                                                                              Expected]:
    model = Model()
    events: list[Event] = [("response.created", {"response": {"id": "resp_m"}})]
    for number, item in enumerate(draw_items):
        kind = item[0]
        if kind == "text":
            events.append(("response.output_item.added",
                           {"item": {"type": "message", "id": f"msg_{number}"}}))
            model.message()
            for delta in item[1]:
                events.append(("response.output_text.delta",
                               {"item_id": f"msg_{number}", "delta": delta}))
                model.text(delta)
        elif kind == "reasoning":
            for delta in item[2]:
                events.append(("response.reasoning_text.delta", {"delta": delta}))
                model.reasoning(delta, summary=False)
            for paragraph in item[1]:
                events.append(("response.reasoning_summary_part.added", {"summary_index": 0}))
                model.part()
                for delta in paragraph:
                    events.append(("response.reasoning_summary_text.delta", {"delta": delta}))
                    model.reasoning(delta, summary=True)
        else:
            _, name, args, pieces, announced = item
            fc = {"type": "function_call", "id": f"fc_{number}", "call_id": f"call_{number}",
                  "name": name, "arguments": ""}
            if announced:
                events.append(("response.output_item.added", {"item": fc}))
                size = max(1, -(-len(args) // pieces))
                for start in range(0, len(args), size):
                    events.append(("response.function_call_arguments.delta",
                                   {"item_id": f"fc_{number}", "delta": args[start:start + size]}))
            events.append(("response.output_item.done", {"item": {**fc, "arguments": args}}))
            model.call(f"call_{number}", name, args)
    expected = model.out
    if ending in ("completed", "incomplete"):
        model.end()
        response: JSON = {"id": "resp_m", "usage": usage}
        events.append((f"response.{ending}", {"response": response}))
        expected.finish = ("length" if ending == "incomplete"
                           else "tool_calls" if expected.calls else "stop")
        expected.usage = usage
    elif ending == "failed":
        events.append(("response.failed", {"response": {"error": {"code": "c", "message": "m"}}}))
        expected.error = ("m", "c")
    elif ending == "error":
        events.append(("error", {"code": "rate_limit_exceeded", "message": "slow"}))
        expected.error = ("slow", "rate_limit_exceeded")
    else:
        expected.error = (TRUNCATED_MESSAGE, "upstream_truncated")
    return events, expected


def encode(events: list[Event], styles: list[int]) -> bytes:
    """Each event in one of several legal JSON spellings (and with or without `event:`)."""
    out = []
    for index, (kind, fields) in enumerate(events):
        style = styles[index % len(styles)] if styles else 0
        payload: JSON = {"type": kind, **fields}
        if style == 0:
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        elif style == 1:
            data = json.dumps(payload)
        elif style == 2:  # a nested object first: the fast path must give up
            data = json.dumps({"meta": {"delta": "decoy", "type": "decoy"}, **payload})
        else:  # type last, spread over several data lines
            data = json.dumps({**fields, "type": kind}, indent=1, ensure_ascii=False)
        lines = "".join(f"data: {line}\n" for line in data.split("\n"))
        head = f"event: {kind}\n" if index % 2 else ""
        out.append((head + lines + "\n").encode())
    return b"".join(out)


@settings(max_examples=150, deadline=None)
@given(drawn=st.lists(items, max_size=5), ending=endings, usage=usages,
       styles=st.lists(st.integers(0, 3), max_size=4),
       cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_translators_agree_with_the_model(drawn: list[Any], ending: str, usage: JSON | None,
                                          styles: list[int], cuts: list[int]) -> None:
    events, expected = script(drawn, ending, usage)
    stream = encode(events, styles)
    chunks = chunked(stream, cuts)
    for compat in ("think-tags", "o3", "legacy"):
        out = run_bytes(functools.partial(ChatStreamTranslator, model=MODEL, created=CREATED,
                                          compat=compat, include_usage=True), chunks)
        parsed = parse(out)
        assert parsed.content == (expected.think if compat == "think-tags" else expected.text)
        assert parsed.o3_reasoning == (expected.o3 if compat == "o3" else "")
        assert parsed.legacy_summary == (expected.legacy_summary if compat == "legacy" else "")
        assert parsed.legacy_reasoning == (expected.legacy_reasoning if compat == "legacy"
                                           else "")
        assert parsed.tool_calls == expected.calls
        assert parsed.finish == ([expected.finish] if expected.finish else [])
        assert [(e["message"], e["code"]) for e in parsed.errors] == (
            [expected.error] if expected.error else [])
        assert len(parsed.usage) == (1 if expected.usage is not None else 0)
    collector = ResponseCollector()
    for chunk in chunks:
        collector.feed(chunk)
    collector.finish()
    assert collector.error == expected.error
    assert collector.text == expected.text
    assert collector.summary == expected.summary
    assert collector.full_reasoning == expected.full
    assert [{"id": c["id"], "name": c["name"], "arguments": c["arguments"]}
            for c in collector.tool_calls] == expected.calls
    if expected.error is None:
        result = chat_completion(collector, model=MODEL, created=CREATED, compat="o3")
        (choice,) = result["choices"]
        assert choice["finish_reason"] == expected.finish
        assert choice["message"]["content"] == (expected.text or None)
        assert ("usage" in result) == (expected.usage is not None)


class _GeneralText(ChatStreamTranslator):
    """The chat translator with `on_text` as it reads without its one-piece shortcut."""

    def on_text(self, raw: bytes) -> None:
        self._content(self._close_think() + self._text(raw))


def _one_read_per_event(stream: bytes) -> list[bytes]:
    """A read per SSE block, as the backend frames a paced stream (the decoder's shortcut)."""
    blocks = stream.split(b"\n\n")
    return [block + b"\n\n" for block in blocks[:-1]] + ([blocks[-1]] if blocks[-1] else [])


@settings(max_examples=150, deadline=None)
@given(drawn=st.lists(items, max_size=5), ending=endings, usage=usages,
       styles=st.lists(st.integers(0, 3), max_size=4),
       cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_the_text_shortcut_writes_the_bytes_of_the_general_path(
        drawn: list[Any], ending: str, usage: JSON | None, styles: list[int],
        cuts: list[int]) -> None:
    """Byte for byte, one read per event or split anywhere, in every reasoning mode."""
    stream = encode(script(drawn, ending, usage)[0], styles)
    for chunks in (_one_read_per_event(stream), chunked(stream, cuts)):
        for compat in ("think-tags", "o3", "legacy"):
            made = [functools.partial(kind, model=MODEL, created=CREATED, compat=compat,
                                      include_usage=True)
                    for kind in (ChatStreamTranslator, _GeneralText)]
            fast, general = (run_bytes(make, chunks) for make in made)
            assert fast == general
