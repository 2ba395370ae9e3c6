"""The official `openai` package's legacy `completions` against `chatmock serve` and the fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from .conftest import Process, last_upstream_body


@pytest.fixture(scope="module")
def client(chatmock_server: Process) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{chatmock_server.url}/v1", api_key="sk-unused",
                       max_retries=0, timeout=20) as shared:
        yield shared


def stream_text(stream: Iterator[Any]) -> tuple[str, list[Any], list[str]]:
    """(text, chunks, finish reasons) of a completion stream."""
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks
                if c.choices and c.choices[0].finish_reason]
    return text, chunks, finishes


def test_non_stream(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="gpt-5.4", prompt="hi there", max_tokens=50,
                                      temperature=0.3, stop=["\n\n"])
    assert reply.object == "text_completion"
    assert reply.model == "gpt-5.4"
    (choice,) = reply.choices
    assert choice.text == "Hello! You said: hi there"
    assert choice.finish_reason == "stop" and choice.logprobs is None and choice.index == 0
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_stream_with_escapes(client: openai.OpenAI) -> None:
    stream = client.completions.create(model="gpt-5.4", prompt="x fake:deltas=30", stream=True)
    text, chunks, finishes = stream_text(stream)
    assert text.count("tok") == 30
    assert '"' in text and "\\" in text and "\n" in text and "é" in text
    assert finishes == ["stop"]
    assert {c.object for c in chunks} == {"text_completion"}
    assert len({c.id for c in chunks}) == 1


def test_stream_hides_reasoning(client: openai.OpenAI) -> None:
    stream = client.completions.create(model="gpt-5.4-high", prompt="why fake:reasoning_text",
                                       stream=True)
    text, _, finishes = stream_text(stream)
    assert text == "Hello! You said: why"
    assert finishes == ["stop"]


def test_include_usage_chunk_has_no_choices(client: openai.OpenAI) -> None:
    stream = client.completions.create(model="gpt-5.4", prompt="usage", stream=True,
                                       stream_options={"include_usage": True})
    _, chunks, finishes = stream_text(stream)
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_prompt_list_and_options_reach_the_backend(client: openai.OpenAI,
                                                   fake_upstream: Process) -> None:
    reply = client.completions.create(model="gpt-5.4-low", prompt=["list ", "prompt check"],
                                      extra_body={"fast_mode": True})
    assert reply.choices[0].text == "Hello! You said: list prompt check"
    assert reply.model == "gpt-5.4-low"
    sent = last_upstream_body(fake_upstream, "list prompt check")
    assert sent["input"] == [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "list prompt check"}]}]
    assert sent["model"] == "gpt-5.4" and sent["reasoning"]["effort"] == "low"
    assert sent["service_tier"] == "priority"
    assert sent["tools"] == [] and "instructions" not in sent
    assert sent["store"] is False and sent["stream"] is True
    assert "max_tokens" not in sent and "temperature" not in sent


def test_incomplete_answer_finishes_with_length(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="gpt-5.4", prompt="x fake:incomplete")
    assert reply.choices[0].finish_reason == "length"
    _, _, finishes = stream_text(client.completions.create(
        model="gpt-5.4", prompt="x fake:incomplete", stream=True))
    assert finishes == ["length"]


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"echo": True}, "echo is not supported"),
    ({"suffix": "}"}, "suffix is not supported"),
    ({"n": 2}, "n > 1 is not supported"),
    ({"best_of": 3}, "best_of > 1 is not supported"),
    ({"prompt": [1, 2, 3]}, "token arrays are not supported"),
])
def test_unsupported_requests_are_clear_400s(client: openai.OpenAI, fields: dict[str, Any],
                                             fragment: str) -> None:
    arguments: dict[str, Any] = {"model": "gpt-5.4", "prompt": "hi", **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(**arguments)
    assert fragment in caught.value.message


def test_echo_is_refused_when_streaming_too(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gpt-5.4", prompt="hi", echo=True, stream=True)
    assert "echo" in caught.value.message


def test_429_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.completions.create(model="gpt-5.4", prompt="x fake:error=429")
    assert caught.value.response.headers["retry-after"] == "120"
    assert "usage limit" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_a_server_error(client: openai.OpenAI, status: int, stream: bool) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.completions.create(model="gpt-5.4", prompt=f"x fake:error={status}",
                                  stream=stream)
    assert caught.value.status_code == status
    assert "overloaded" in caught.value.message


@pytest.mark.parametrize("directive", ["fake:cut", "fake:fail", "fake:empty",
                                       "fake:error_event"])
def test_broken_stream_raises_instead_of_ending_quietly(client: openai.OpenAI,
                                                        directive: str) -> None:
    stream = client.completions.create(model="gpt-5.4", prompt=f"x {directive}", stream=True)
    with pytest.raises(openai.APIError):
        list(stream)


@pytest.mark.parametrize("directive", ["fake:cut", "fake:fail"])
def test_broken_non_stream_is_a_502(client: openai.OpenAI, directive: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.completions.create(model="gpt-5.4", prompt=f"x {directive}")
    assert caught.value.status_code == 502
