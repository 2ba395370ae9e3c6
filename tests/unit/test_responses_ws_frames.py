"""Frames of the `/v1/responses` WebSocket route: what a client frame becomes, error frames."""

from __future__ import annotations

import json

import pytest

from chatmock.errors import ClientError
from chatmock.routes.responses_ws import error_frame, parse_frame


def test_create_frame_becomes_a_create_body() -> None:
    body, generate = parse_frame(json.dumps({"type": "response.create", "model": "gpt-5.4",
                                             "input": "hi", "generate": False}))
    assert body == {"model": "gpt-5.4", "input": "hi"}
    assert generate is False
    assert parse_frame('{"type": "response.create", "input": "x"}')[1] is True


@pytest.mark.parametrize(("message", "code"), [
    ("{nope", "invalid_json"),
    ("[1, 2]", "invalid_frame"),
    ('{"type": "response.steer"}', "unsupported_frame_type"),
    ('{"input": "no type"}', "unsupported_frame_type"),
    (b'{"type": "response.create"}', "invalid_frame"),
    ('{"type": "response.create", "generate": "false"}', "invalid_type"),
    ("[" * 200 + "]" * 200, "invalid_json"),
    ("", "invalid_json"),
])
def test_other_frames_are_client_errors(message: str | bytes, code: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_frame(message)
    assert caught.value.status == 400 and caught.value.code == code


def test_error_frame_shape() -> None:
    frame = json.loads(error_frame(429, "slow down", "usage_limit_reached",
                                   ((b"retry-after", b"120"),)))
    assert frame == {"type": "error", "status_code": 429,
                     "error": {"message": "slow down", "code": "usage_limit_reached"},
                     "headers": {"retry-after": "120"}}


def test_lone_surrogates_in_a_frame_are_replaced() -> None:
    body, _ = parse_frame('{"type": "response.create", "input": "cut \\ud83d", "\\udc00": 1}')
    assert body == {"input": "cut \ufffd", "\ufffd": 1}


def test_error_frame_names_the_field() -> None:
    frame = json.loads(error_frame(400, "Invalid type", "invalid_type", param="include"))
    assert frame["error"] == {"message": "Invalid type", "code": "invalid_type",
                              "param": "include"}
