"""chatmock.dialects.fields: typed field reads and the 400s they give, in each API's words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatmock.dialects.errors import Dialect, render
from chatmock.dialects.fields import ANTHROPIC, OPENAI, is_kind, type_name
from chatmock.errors import ClientError


def error_of(read: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        read()
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(("value", "name"), [
    (None, "null"), (True, "a boolean"), (3, "an integer"), (1.5, "a number"),
    ("x", "a string"), ([], "an array"), ({}, "an object")])
def test_type_names(value: Any, name: str) -> None:
    assert type_name(value) == name


def test_booleans_are_not_numbers() -> None:
    assert not is_kind(True, ("integer", "number"))
    assert is_kind(2, ("number",)) and is_kind(2.5, ("number",))
    assert not is_kind(2.5, ("integer",))


def test_absent_and_null_give_the_default() -> None:
    assert OPENAI.boolean({}, "stream", True) is True
    assert OPENAI.boolean({"stream": None}, "stream", False) is False
    assert OPENAI.boolean({"stream": False}, "stream", True) is False
    assert OPENAI.string({}, "model") is None
    assert OPENAI.integer({"n": 3}, "n", minimum=1) == 3


def test_openai_wording_code_and_param() -> None:
    error = error_of(lambda: OPENAI.boolean({"stream": "false"}, "stream", False))
    assert error.message == ("Invalid type for 'stream': expected a boolean, but got a string "
                             "instead.")
    assert (error.code, error.param, error.error_type) == ("invalid_type", "stream",
                                                           "invalid_request_error")
    nested = error_of(lambda: OPENAI.string({"text": 5}, "text", "messages[2].content[0]"))
    assert nested.param == "messages[2].content[0].text"
    assert "expected a string, but got an integer instead" in nested.message
    value = error_of(lambda: OPENAI.choice({"role": "critic"}, "role", ("user", "tool", "x")))
    assert value.message == ("Invalid value: 'critic'. Supported values are: 'user', 'tool', "
                             "and 'x'.")
    assert value.code == "invalid_value"
    assert OPENAI.missing("messages").message == "Missing required parameter: 'messages'."
    low = error_of(lambda: OPENAI.integer({"n": 0}, "n", minimum=1))
    assert low.message == ("Invalid 'n': integer below minimum value. Expected a value >= 1, "
                           "but got 0 instead.")


def test_anthropic_wording() -> None:
    error = error_of(lambda: ANTHROPIC.boolean({"stream": "yes"}, "stream", False))
    assert error.message == "stream: Input should be a valid boolean"
    assert error.code == "invalid_request_error" and error.param == "stream"
    error = error_of(lambda: ANTHROPIC.get({"content": 5}, "content", ("string", "array"),
                                           "messages.0"))
    assert error.message == ("messages.0.content: Input should be a valid string or a valid "
                             "list")
    assert ANTHROPIC.missing("max_tokens").message == "max_tokens: Field required"
    value = ANTHROPIC.invalid_value("tool_choice.type", "x", ("auto", "any", "tool"))
    assert value.message == "tool_choice.type: Input should be 'auto', 'any' or 'tool'"


def test_long_values_are_cut_in_messages() -> None:
    error = OPENAI.invalid_value("role", "x" * 1000, ("user",))
    assert len(error.message) < 200


def test_the_param_reaches_each_error_shape() -> None:
    error = OPENAI.invalid_value("tool_choice", "any", ("auto", "none"))
    assert json.loads(render(error, Dialect.OPENAI))["error"]["param"] == "tool_choice"
    ollama = json.loads(render(error, Dialect.OLLAMA))["error"]
    assert ollama.startswith("tool_choice: Invalid value: 'any'")
    named = OPENAI.wrong_type("stream", ("boolean",), "x")
    assert json.loads(render(named, Dialect.OLLAMA))["error"] == named.message
    anthropic = ANTHROPIC.wrong_type("messages.0.content", ("array",), 5)
    body = json.loads(render(anthropic, Dialect.ANTHROPIC))
    assert body["error"] == {"type": "invalid_request_error",
                             "message": "messages.0.content: Input should be a valid list"}
