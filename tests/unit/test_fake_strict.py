"""The fake backend refuses what the real one refuses: parameters, `text.format`,
`tool_choice` shapes and tool outputs of the wrong kind (issue 11 §2)."""

from __future__ import annotations

from typing import Any

import pytest

from chatmock.testing.fake_codex import FakeCodex
from chatmock.testing.fake_rules import ACCEPTED_PARAMETERS

from .test_fake_codex import detail, payload, post, user

JSON = dict[str, Any]
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


def status(body: JSON) -> int:
    return post(FakeCodex(), body).status


def with_text(text: object) -> JSON:
    """A payload with this `text` parameter (`payload`'s own first argument is the prompt)."""
    return {**payload(), "text": text}


def test_the_codex_cli_parameters_are_accepted() -> None:
    codex_cli = {"instructions": "be brief", "tools": [], "tool_choice": "auto",
                 "parallel_tool_calls": True, "reasoning": {"effort": "low", "summary": "auto"},
                 "include": ["reasoning.encrypted_content"], "service_tier": "priority",
                 "prompt_cache_key": "k", "text": {"verbosity": "low"},
                 "client_metadata": {"x-codex-installation-id": "i"}}
    assert set(codex_cli) | {"model", "input", "stream", "store", "previous_response_id"} == \
        ACCEPTED_PARAMETERS
    assert status({**payload(), **codex_cli}) == 200


def test_the_first_unknown_parameter_is_named() -> None:
    body = payload(prompt_cache_key="k", top_logprobs=2, safety_identifier="u")
    assert detail(post(FakeCodex(), body)) == "Unsupported parameter: top_logprobs"


@pytest.mark.parametrize("fmt", [
    {"type": "text"},
    {"type": "json_object"},
    {"type": "json_schema", "name": "answer", "schema": SCHEMA},
    {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True},
])
def test_text_formats_the_backend_takes(fmt: JSON) -> None:
    assert status(with_text({"format": fmt, "verbosity": "medium"})) == 200


@pytest.mark.parametrize(("text", "message"), [
    ({"format": {"type": "json_schema", "schema": SCHEMA}},
     "Missing required parameter: 'text.format.name'."),
    ({"format": {"type": "json_schema", "name": 5, "schema": SCHEMA}},
     "Missing required parameter: 'text.format.name'."),
    ({"format": {"type": "json_schema", "name": "a"}},
     "Missing required parameter: 'text.format.schema'."),
    ({"format": {"type": "xml"}}, "Invalid value for 'text.format.type'"),
    ({"format": "json"}, "Invalid value for 'text.format.type'"),
    ({"verbosity": "loud"}, "Invalid value for 'text.verbosity'"),
    ("json", "Invalid type for 'text'"),
])
def test_text_formats_the_backend_refuses(text: object, message: str) -> None:
    assert detail(post(FakeCodex(), with_text(text))).startswith(message)


@pytest.mark.parametrize("choice", [
    "auto", "none", "required",
    {"type": "function", "name": "f"},
    {"type": "custom", "name": "apply_patch"},
    {"type": "web_search"},
    {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
])
def test_responses_shaped_tool_choice(choice: object) -> None:
    assert status(payload(tool_choice=choice)) == 200


def test_chat_shaped_tool_choice_is_refused() -> None:
    chat_shape = {"type": "function", "function": {"name": "f"}}
    assert detail(post(FakeCodex(), payload(tool_choice=chat_shape))) == \
        "Missing required parameter: 'tool_choice.name'."
    both = {"type": "function", "name": "f", "function": {"name": "f"}}
    assert detail(post(FakeCodex(), payload(tool_choice=both))) == \
        "Unknown parameter: 'tool_choice.function'."
    assert "tool_choice.type" in detail(post(FakeCodex(), payload(tool_choice={"type": "x"})))


CUSTOM_CALL = {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch",
               "input": "*** Begin Patch"}
FUNCTION_CALL = {"type": "function_call", "call_id": "call_p", "name": "f", "arguments": "{}"}


def test_a_tool_output_must_answer_a_call_of_its_kind() -> None:
    custom_output = {"type": "custom_tool_call_output", "call_id": "call_p", "output": "ok"}
    function_output = {"type": "function_call_output", "call_id": "call_p", "output": "ok"}
    assert status(payload(input=[user("q"), CUSTOM_CALL, custom_output])) == 200
    assert status(payload(input=[user("q"), FUNCTION_CALL, function_output])) == 200
    assert detail(post(FakeCodex(), payload(input=[user("q"), FUNCTION_CALL, custom_output]))) \
        == "No tool call found for custom tool call output with call_id call_p."
    assert detail(post(FakeCodex(), payload(input=[user("q"), CUSTOM_CALL, function_output]))) \
        == "No tool call found for function call output with call_id call_p."
