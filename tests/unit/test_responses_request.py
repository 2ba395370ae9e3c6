"""chatmock.dialects.responses: what the Responses parser reads is type-checked."""

from __future__ import annotations

from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.dialects.common import REASONING_INCLUDE
from chatmock.dialects.options import Options
from chatmock.dialects.responses import ResponsesRequest, parse_responses_request
from chatmock.errors import ClientError
from chatmock.state.prompt_cache import fingerprint
from chatmock.turns import StoreAnswer

from .helpers import JSON, accepted_upstream, refused

CATALOG = Catalog()


def parse(body: Any) -> ResponsesRequest:
    return parse_responses_request(body, CATALOG, Options(), StoreAnswer())


def request(**fields: Any) -> JSON:
    return {"model": "gpt-5.4", "input": "hi", **fields}


def rejected(body: Any, param: str, code: str = "invalid_type") -> ClientError:
    return refused(lambda: parse(body), code=code, param=param)


def test_a_valid_request_goes_upstream() -> None:
    parsed = parse(request(stream=True, include=["message.output_text.logprobs"],
                           tools=[{"type": "function", "function": {"name": "f"}}],
                           tool_choice="auto", reasoning={"effort": "low", "summary": None},
                           input=[{"role": "user", "content": "hi"},
                                  {"type": "message", "role": "user",
                                   "content": [{"type": "input_text", "text": "x"}]}]))
    assert parsed.stream is True
    assert parsed.payload["include"] == ["message.output_text.logprobs", REASONING_INCLUDE]
    assert parsed.payload["tools"][0]["name"] == "f"
    accepted_upstream(parsed.payload)
    assert parse(request(stream=None)).stream is False


@pytest.mark.parametrize(("fields", "param"), [
    ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
    ({"input": [{"role": "user", "content": True}]}, "input[0].content"),
    ({"input": [{"type": "message", "role": "user", "content": {}}]}, "input[0].content"),
    ({"input": {"role": "user", "content": 5}}, "input.content"),
    ({"input": ["hi"]}, "input[0]"),
    ({"input": [{"role": 5, "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": [], "content": "x"}]}, "input[0].type"),
    ({"input": [{"type": "function_call_output", "call_id": {}, "output": "x"}]},
     "input[0].call_id"),
    ({"input": [{"type": "function_call", "call_id": [], "name": "f"}]}, "input[0].call_id"),
    ({"input": 5}, "input"),
    ({"include": "reasoning.encrypted_content"}, "include"),
    ({"include": 5}, "include"),
    ({"include": [5]}, "include[0]"),
    ({"tools": {"type": "web_search"}}, "tools"),
    ({"tools": ["web_search"]}, "tools[0]"),
    ({"tools": [{"type": "function", "function": {"name": 5}}]}, "tools[0].function.name"),
    ({"tool_choice": 5}, "tool_choice"),
    ({"reasoning": "high"}, "reasoning"),
    ({"reasoning": {"effort": 1}}, "reasoning.effort"),
    ({"stream": "true"}, "stream"),
    ({"model": ["gpt-5.4"]}, "model"),
    ({"instructions": 5}, "instructions"),
    ({"previous_response_id": 5}, "previous_response_id"),
    ({"fast_mode": []}, "fast_mode"),
])
def test_wrong_types_are_refused_with_their_path(fields: JSON, param: str) -> None:
    rejected(request(**fields), param)


def test_missing_input_is_refused() -> None:
    rejected({"model": "gpt-5.4"}, "input", code="missing_required_parameter")
    rejected(request(input=None), "input", code="missing_required_parameter")


def test_chat_shaped_bodies_name_chat_paths() -> None:
    rejected({"messages": [{"role": "user", "content": 5}]}, "messages[0].content")


def test_unknown_previous_response_names_the_field() -> None:
    rejected(request(previous_response_id="resp_nope"), "previous_response_id",
             code="previous_response_not_found")


def test_checked_items_are_safe_to_fingerprint() -> None:
    """The session fingerprint walks each user message's content (it crashed on numbers)."""
    parsed = parse(request(input=[{"role": "user", "content": "plain"},
                                  {"role": "user", "content": [{"type": "input_text",
                                                                "text": "x"}, "odd"]}]))
    assert fingerprint(None, parsed.payload["input"])
