"""Anthropic Messages and Ollama for what the backend can end a turn with: custom tool
calls, citations (dropped), failure codes, incomplete reasons, late errors."""

from __future__ import annotations

from typing import Any

import pytest

from chatmock.dialects.collectors import MessagesCollector, OllamaCollector
from chatmock.dialects.errors import Dialect, failure_error
from chatmock.dialects.ollama_stream import chat_object
from chatmock.testing.fake_items import DEFAULT_PATCH, FAILURES

from .helpers import fake_stream, run_bytes
from .test_anthropic_stream import both, error_of, parse, translate
from .test_ollama import lines, make, parse_stream


def anthropic_collected(text: str) -> MessagesCollector:
    collector = MessagesCollector()
    collector.feed(fake_stream(text))
    collector.finish()
    return collector


def ollama_whole(text: str) -> dict[str, Any]:
    collector = OllamaCollector()
    collector.feed(fake_stream(text))
    collector.finish()
    assert collector.error is None, collector.error
    return chat_object(collector, model="gpt-5.4", created_at="T", think=None,
                       compat="think-tags")


# -- Anthropic --------------------------------------------------------------------------------


def test_anthropic_custom_tool_call_is_a_tool_use_block() -> None:
    message = both("fake:tool=f fake:custom_tool=apply_patch")
    tool_uses = [block for block in message["content"] if block["type"] == "tool_use"]
    assert [block["name"] for block in tool_uses] == ["f", "apply_patch"]
    assert tool_uses[1]["input"] == {"input": DEFAULT_PATCH}
    assert tool_uses[1]["id"].startswith("call_")
    assert message["stop_reason"] == "tool_use"


def test_anthropic_citations_are_dropped_and_the_links_stay() -> None:
    message = both("news fake:citations")
    (block,) = message["content"]
    assert block["type"] == "text" and "citations" not in block
    assert "[Example Docs](https://example.com/docs" in block["text"]


@pytest.mark.parametrize(("reason", "stop"), [("max_output_tokens", "max_tokens"),
                                              ("content_filter", "refusal")])
def test_anthropic_incomplete_reasons(reason: str, stop: str) -> None:
    assert both(f"hi fake:incomplete={reason}")["stop_reason"] == stop


@pytest.mark.parametrize(("code", "kind", "status"), [
    ("context_length_exceeded", "invalid_request_error", 400),
    ("invalid_prompt", "invalid_request_error", 400),
    ("rate_limit_exceeded", "rate_limit_error", 429),
    ("server_is_overloaded", "overloaded_error", 529)])
def test_anthropic_failure_codes(code: str, kind: str, status: int) -> None:
    events = parse(translate(fake_stream(f"long fake:fail={code}")))
    assert [e["type"] for e in events] == ["message_start", "ping", "error"]
    assert error_of(events) == {"type": kind, "message": FAILURES[code]}
    collector = anthropic_collected(f"long fake:fail={code}")
    assert collector.error == (FAILURES[code], code)
    assert failure_error(*collector.error, Dialect.ANTHROPIC).status == status


def test_anthropic_late_error_after_text() -> None:
    events = parse(translate(fake_stream("one two three fake:late_error=rate_limit_exceeded")))
    texts = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(texts) == "Hello! You "
    assert error_of(events)["type"] == "rate_limit_error"
    collector = anthropic_collected("one two three fake:late_error")
    assert collector.error == (FAILURES["server_error"], "server_error")


# -- Ollama -----------------------------------------------------------------------------------


def test_ollama_custom_tool_call() -> None:
    _, _, calls, last = parse_stream(run_bytes(make(), [fake_stream(
        "fake:custom_tool=apply_patch")]))
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("apply_patch", {"input": DEFAULT_PATCH})]
    assert last["done_reason"] == "stop"
    whole = ollama_whole("fake:custom_tool=apply_patch")
    assert whole["message"]["tool_calls"] == calls


def test_ollama_citations_are_dropped_and_the_links_stay() -> None:
    content, _, _, last = parse_stream(run_bytes(make(), [fake_stream("x fake:citations")]))
    assert "](https://example.org/news" in content and "annotations" not in last
    assert ollama_whole("x fake:citations")["message"]["content"] == content


@pytest.mark.parametrize(("reason", "done"), [("max_output_tokens", "length"),
                                              ("content_filter", "content_filter")])
def test_ollama_done_reasons(reason: str, done: str) -> None:
    text = f"x fake:incomplete={reason}"
    assert lines(run_bytes(make(), [fake_stream(text)]))[-1]["done_reason"] == done
    assert ollama_whole(text)["done_reason"] == done


@pytest.mark.parametrize("text", ["x fake:fail=context_length_exceeded",
                                  "one two three fake:late_error", "x fake:fail=invalid_prompt"])
def test_ollama_failures_end_with_an_error_line(text: str) -> None:
    parsed = lines(run_bytes(make(), [fake_stream(text)]))
    assert set(parsed[-1]) == {"error"} and not any(p.get("done") for p in parsed)


@pytest.mark.parametrize(("code", "status"), [("context_length_exceeded", 400),
                                              ("rate_limit_exceeded", 429),
                                              ("server_error", 502)])
def test_ollama_failure_status(code: str, status: int) -> None:
    assert failure_error(FAILURES[code], code, Dialect.OLLAMA).status == status
