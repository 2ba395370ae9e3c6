"""chatmock.testing.fake_structured: the fake backend's answers to structured-output requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatmock.testing.fake_codex import RESPONSES_PATH, FakeCodex
from chatmock.testing.fake_structured import schema_instance, structured_answer

from .helpers import AUTH

ANSWER = "Hello!"


@pytest.mark.parametrize(("schema", "value"), [
    ({"type": "string"}, ANSWER),
    ({"type": "integer"}, 6),
    ({"type": "number"}, 6.0),
    ({"type": ["null", "boolean"]}, True),
    ({"enum": ["b", "a"]}, "b"),
    ({"const": 7}, 7),
    ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, 6),
    ({"type": "array", "items": {"type": "string"}}, [ANSWER]),
    ({"type": "object", "properties": {"a": {"type": "string"}, "n": {"$ref": "#/$defs/N"}}},
     {"a": ANSWER, "n": {"deep": 6}}),
    ("not a schema", ANSWER),
])
def test_schema_instances(schema: Any, value: Any) -> None:
    defs = {"N": {"type": "object", "properties": {"deep": {"type": "integer"}}}}
    assert schema_instance(schema, ANSWER, defs) == value


def test_text_formats() -> None:
    assert structured_answer(None, ANSWER) is None
    assert structured_answer({"format": {"type": "text"}}, ANSWER) is None
    assert json.loads(structured_answer({"format": {"type": "json_object"}}, ANSWER) or "") == {
        "answer": ANSWER}
    root_ref = {"$ref": "#/$defs/R", "$defs": {"R": {"type": "object",
                                                     "properties": {"r": {"type": "string"}}}}}
    answer = structured_answer({"format": {"type": "json_schema", "schema": root_ref}}, ANSWER)
    assert json.loads(answer or "") == {"r": ANSWER}


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": '{"city": {"type": "string"}}'},
    {"type": "object", "properties": ["city"]},
    {"enum": "ab"}, {"enum": {"a": 1}}, {"anyOf": []}, {"oneOf": {"type": "string"}},
    {"$ref": "#/$defs/Missing"}, {"$defs": [], "type": "string"},
    {"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}},
])
def test_malformed_schemas_are_refused_like_the_real_backend(schema: Any) -> None:
    """Regression: the fake crashed (and chatmock answered 502) on these; the backend
    answers an invalid schema with a 400."""
    body = {"model": "gpt-5.4", "stream": True, "store": False,
            "text": {"format": {"type": "json_schema", "name": "r", "schema": schema}},
            "input": [{"type": "message", "role": "user",
                       "content": [{"type": "input_text", "text": "x"}]}]}
    reply = FakeCodex().handle("POST", RESPONSES_PATH, AUTH, json.dumps(body).encode())
    assert reply.status == 400
    assert json.loads(reply.body)["detail"].startswith("Invalid schema for response_format 'r'")


def test_recursive_schemas_stop_expanding() -> None:
    tree = {"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array",
                                                 "items": {"$ref": "#/$defs/Node"}}}}}}
    answer = structured_answer({"format": {"type": "json_schema", "schema": tree}}, "x")
    value = json.loads(answer or "")
    depth = 0
    while value.get("children"):
        value, depth = value["children"][0], depth + 1
    assert 5 < depth < 40


def test_the_fake_streams_json_text_for_a_json_schema_request() -> None:
    body = {"model": "gpt-5.4", "stream": True, "store": False,
            "text": {"format": {"type": "json_schema", "name": "o", "strict": False,
                                "schema": {"type": "object",
                                           "properties": {"said": {"type": "string"}}}}},
            "input": [{"type": "message", "role": "user",
                       "content": [{"type": "input_text", "text": "shape it"}]}]}
    reply = FakeCodex().handle("POST", RESPONSES_PATH, AUTH, json.dumps(body).encode())
    assert reply.chunks is not None
    stream = b"".join(data for _, data in reply.chunks)
    done = next(line for line in stream.split(b"\n")
                if line.startswith(b"data: ") and b'"response.output_text.done"' in line)
    assert json.loads(json.loads(done[6:])["text"]) == {"said": "Hello! You said: shape it"}
