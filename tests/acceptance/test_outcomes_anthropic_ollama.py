"""What the backend can end a turn with, through the official `anthropic` and `ollama`
packages: failure codes, content filter and output limits, 429 usage limits, an error
after output started, citations. (Neither dialect can define a custom tool, so their
custom tool calls are covered by the translator tests.)"""

from __future__ import annotations

from typing import Any

import anthropic
import ollama
import pytest

from chatmock.testing.fake_items import FAILURES

MODEL = "claude-sonnet-5"


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def ask(client: anthropic.Anthropic, text: str) -> anthropic.types.Message:
    return client.messages.create(model=MODEL, max_tokens=1000, messages=user(text))


def ask_streamed(client: anthropic.Anthropic, text: str) -> anthropic.types.Message:
    with client.messages.stream(model=MODEL, max_tokens=1000, messages=user(text)) as stream:
        return stream.get_final_message()


# -- Anthropic --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["context_length_exceeded", "invalid_prompt"])
def test_anthropic_prompt_the_backend_cannot_take(anthropic_client: anthropic.Anthropic,
                                                  code: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(anthropic_client, f"long fake:fail={code}")
    assert caught.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error", "message": FAILURES[code]}
    with pytest.raises(anthropic.APIStatusError) as streamed:
        ask_streamed(anthropic_client, f"long fake:fail={code}")
    assert streamed.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.parametrize(("code", "raised", "kind"), [
    ("rate_limit_exceeded", anthropic.RateLimitError, "rate_limit_error"),
    ("server_is_overloaded", anthropic.OverloadedError, "overloaded_error")])
def test_anthropic_failure_types(anthropic_client: anthropic.Anthropic, code: str,
                                 raised: type[Exception], kind: str) -> None:
    with pytest.raises(raised) as caught:
        ask(anthropic_client, f"x fake:fail={code}")
    assert caught.value.body["error"]["type"] == kind  # type: ignore[attr-defined]


@pytest.mark.parametrize(("reason", "stop"), [("max_output_tokens", "max_tokens"),
                                              ("content_filter", "refusal")])
def test_anthropic_stop_reasons(anthropic_client: anthropic.Anthropic, reason: str,
                                stop: str) -> None:
    assert ask(anthropic_client, f"x fake:incomplete={reason}").stop_reason == stop
    assert ask_streamed(anthropic_client, f"y fake:incomplete={reason}").stop_reason == stop


@pytest.mark.parametrize("variant", ["resets_at", "headers_only", "not_included"])
def test_anthropic_usage_limits(anthropic_client: anthropic.Anthropic, variant: str) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(anthropic_client, f"x fake:usage_limit={variant}")
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    retry = caught.value.response.headers.get("retry-after")
    assert (retry is None) == (variant == "not_included")


def test_anthropic_error_after_output_started(anthropic_client: anthropic.Anthropic) -> None:
    text = ""
    with pytest.raises(anthropic.APIStatusError) as caught, anthropic_client.messages.stream(
            model=MODEL, max_tokens=1000,
            messages=user("one two three fake:late_error=rate_limit_exceeded")) as stream:
        for piece in stream.text_stream:
            text += piece
    assert text == "Hello! You "
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_anthropic_citations_leave_the_links_in_the_text(
        anthropic_client: anthropic.Anthropic) -> None:
    message = ask_streamed(anthropic_client, "news fake:citations")
    (block,) = message.content
    assert block.type == "text" and not block.citations
    assert "[Example News](https://example.org/news" in block.text


# -- Ollama -----------------------------------------------------------------------------------


def test_ollama_context_length(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.chat(model="gpt-5.4", messages=user("x fake:fail=context_length_exceeded"))
    assert caught.value.status_code == 400
    assert caught.value.error == FAILURES["context_length_exceeded"]
    with pytest.raises(ollama.ResponseError) as streamed:
        list(ollama_client.chat(model="gpt-5.4", stream=True,
                        messages=user("x fake:fail=context_length_exceeded")))
    assert streamed.value.error == FAILURES["context_length_exceeded"]


@pytest.mark.parametrize(("reason", "done"), [("max_output_tokens", "length"),
                                              ("content_filter", "content_filter")])
def test_ollama_done_reasons(ollama_client: ollama.Client, reason: str, done: str) -> None:
    text = f"x fake:incomplete={reason}"
    assert ollama_client.chat(model="gpt-5.4", messages=user(text)).done_reason == done
    parts = list(ollama_client.chat(model="gpt-5.4", messages=user(text), stream=True))
    assert parts[-1].done_reason == done
    assert ollama_client.generate(model="gpt-5.4", prompt=text).done_reason == done


@pytest.mark.parametrize("variant", ["resets_in", "not_included"])
def test_ollama_usage_limits(ollama_client: ollama.Client, variant: str) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.chat(model="gpt-5.4", messages=user(f"x fake:usage_limit={variant}"))
    assert caught.value.status_code == 429


def test_ollama_error_after_output_started(ollama_client: ollama.Client) -> None:
    parts: list[Any] = []
    with pytest.raises(ollama.ResponseError) as caught:
        for part in ollama_client.chat(model="gpt-5.4", stream=True,
                               messages=user("one two three fake:late_error")):
            parts.append(part)  # noqa: PERF402 (the parts before the error are wanted)
    assert "".join(p.message.content for p in parts) == "Hello! You "
    assert not any(p.done for p in parts)
    assert caught.value.error == FAILURES["server_error"]
