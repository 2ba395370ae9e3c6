"""Shared helpers for the sans-I/O unit tests: fake upstream streams, feeding, parsing."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import pytest

from chatmock.errors import ClientError
from chatmock.testing.credentials import codex_headers
from chatmock.testing.fake_codex import FakeCodex

JSON = dict[str, Any]
RESPONSES_PATH = "/backend-api/codex/responses"
AUTH = codex_headers()
TOOL_TEXT = 'hi fake:reasoning fake:tool=get_weather fake:args={"city":"Paris"}'


class Feedable(Protocol):
    def feed(self, chunk: bytes) -> Any: ...
    def finish(self) -> Any: ...


def upstream_body(text: str, model: str = "gpt-5.4") -> JSON:
    """A request body the fake Codex backend accepts, with `text` as the user message."""
    return {"model": model,
            "input": [{"type": "message", "role": "user",
                       "content": [{"type": "input_text", "text": text}]}],
            "stream": True, "store": False, "tools": [], "tool_choice": "auto",
            "parallel_tool_calls": False}


PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files"}
"""A custom (freeform) tool, which `fake:custom_tool=apply_patch` needs defined."""


def fake_stream(text: str, tools: Sequence[JSON] = (PATCH_TOOL,)) -> bytes:
    """The whole SSE body the fake backend sends for a user message holding `text`."""
    body = json.dumps({**upstream_body(text), "tools": list(tools)}).encode()
    reply = FakeCodex().handle("POST", RESPONSES_PATH, AUTH, body)
    assert reply.status == 200, reply.body
    assert reply.chunks is not None
    return b"".join(data for _, data in reply.chunks)


def frame(event_type: str, fields: JSON | None = None, *, event_line: bool = True) -> bytes:
    """One upstream SSE event, compact JSON with `type` first (as the backend writes it)."""
    payload = json.dumps({"type": event_type, **(fields or {})}, separators=(",", ":"))
    head = f"event: {event_type}\n" if event_line else ""
    return (head + "data: " + payload + "\n\n").encode()


def raw_frame(data: bytes, event_type: bytes = b"") -> bytes:
    head = b"event: " + event_type + b"\n" if event_type else b""
    return head + b"data: " + data + b"\n\n"


def whole_bytewise_and_splits(data: bytes) -> Iterator[list[bytes]]:
    """The feed patterns every decoder must agree on: whole, byte by byte, every two-way split."""
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]


def chunked(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """`data` split at the (unsorted, possibly repeated) offsets in `cuts`."""
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def run_bytes(make: Callable[[], Feedable], chunks: Sequence[bytes]) -> bytes:
    """Feed `chunks` to a fresh translator, then finish it; the concatenated output."""
    translator = make()
    out = [translator.feed(chunk) for chunk in chunks]
    out.append(translator.finish())
    return b"".join(out)


def sse_payloads(out: bytes) -> list[Any]:
    """The `data:` payloads of a chat SSE stream: parsed JSON, or the string "[DONE]".

    Also checks the framing: every block is exactly one `data: ` line.
    """
    assert out.endswith(b"\n\n"), out[-200:]
    payloads: list[Any] = []
    for block in out.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: "), block
        assert b"\n" not in block, block
        body = block[len(b"data: "):]
        payloads.append("[DONE]" if body == b"[DONE]" else json.loads(body))
    return payloads


def accepted_upstream(body: JSON) -> None:
    """The fake backend, which applies the real backend's rules, takes the payload."""
    reply = FakeCodex().handle("POST", RESPONSES_PATH, AUTH, json.dumps(body).encode())
    assert reply.status == 200, reply.body


def refused(parse: Callable[[], object], *fragments: str, code: str | None = None,
            status: int = 400, param: str | None = None) -> ClientError:
    """The ClientError `parse()` raises, checked for status, message fragments, code and
    the path of the field it names (`param`)."""
    with pytest.raises(ClientError) as info:
        parse()
    error = info.value
    assert error.status == status
    for fragment in fragments:
        assert fragment in error.message, error.message
    if code is not None:
        assert error.code == code
    if param is not None:
        assert error.param == param, (error.param, error.message)
    return error
