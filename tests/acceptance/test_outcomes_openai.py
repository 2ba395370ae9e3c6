"""What the backend can end a turn with, through the official `openai` package: failure
codes, content filter and output limits, the 429 usage-limit variants, custom tool calls,
citations and an error after output started (chat, legacy completions, Responses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import openai
import pytest

from chatmock.testing.fake_items import DEFAULT_PATCH, FAILURES

from .conftest import Process, last_upstream_body

PATCH_TOOL: Any = {"type": "custom", "custom": {"name": "apply_patch",
                                                "description": "Edit files with a patch"}}


@pytest.fixture(scope="module")
def client(chatmock_server: Process) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{chatmock_server.url}/v1", api_key="x", max_retries=0,
                       timeout=20) as shared:
        yield shared


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def chat(client: openai.OpenAI, text: str, **fields: Any) -> Any:
    return client.chat.completions.create(model="gpt-5.4", messages=user(text), **fields)


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["context_length_exceeded", "invalid_prompt"])
def test_a_prompt_the_backend_cannot_take_is_a_400(client: openai.OpenAI, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat(client, f"long fake:fail={code}")
    assert caught.value.code == code and caught.value.message.endswith(FAILURES[code])
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="gpt-5.4", prompt=f"p fake:fail={code}")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-5.4", input=f"r fake:fail={code}")


def test_a_streamed_failure_raises_with_its_code(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError) as caught:
        list(chat(client, "long fake:fail=context_length_exceeded", stream=True))
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.type == "invalid_request_error"


def test_a_rate_limited_response_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, "x fake:fail=rate_limit_exceeded")
    assert caught.value.response.headers["retry-after"] == "8"


def test_an_error_after_output_started_ends_the_stream_as_an_error(
        client: openai.OpenAI) -> None:
    stream = chat(client, "one two three four fake:late_error", stream=True)
    received = ""
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert received == "Hello! You " and caught.value.code == "server_error"
    with pytest.raises(openai.InternalServerError):
        chat(client, "one two three fake:late_error")
    events = list(client.responses.create(model="gpt-5.4", input="a b c fake:late_error",
                                          stream=True))
    assert events[-1].type == "error" and not any(e.type == "response.completed"
                                                   for e in events)


# -- finish reasons -------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "finish"), [("max_output_tokens", "length"),
                                                ("content_filter", "content_filter")])
def test_incomplete_answers_finish_with_their_reason(client: openai.OpenAI, reason: str,
                                                     finish: str) -> None:
    text = f"x fake:incomplete={reason}"
    assert chat(client, text).choices[0].finish_reason == finish
    chunks = list(chat(client, text, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == finish
    completion = client.completions.create(model="gpt-5.4", prompt=text)
    assert completion.choices[0].finish_reason == finish
    response = client.responses.create(model="gpt-5.4", input=text)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == reason


# -- 429 usage limits -----------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "retry"), [("resets_in", 120), ("resets_at", 1800),
                                                ("headers_only", 345600),
                                                ("plain", 345600)])
def test_usage_limits_are_rate_limit_errors_with_retry_after(client: openai.OpenAI,
                                                             variant: str, retry: int) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, f"x fake:usage_limit={variant}")
    assert retry - 3 <= int(caught.value.response.headers["retry-after"]) <= retry
    assert "resets in" in caught.value.message
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="gpt-5.4", input=f"x fake:usage_limit={variant}")


def test_a_plan_without_codex_says_so(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, "x fake:usage_limit=not_included")
    assert "plan does not include Codex" in caught.value.message
    assert caught.value.code == "usage_not_included"
    assert "retry-after" not in caught.value.response.headers


# -- custom tool calls ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_custom_tool_round_trip_on_chat(client: openai.OpenAI, fake_upstream: Process,
                                        stream: bool) -> None:
    prompt = f"patch please {stream} fake:custom_tool=apply_patch"
    if stream:
        with client.chat.completions.stream(model="gpt-5.4", messages=user(prompt),
                                            tools=[PATCH_TOOL]) as events:
            message: Any = events.get_final_completion().choices[0].message
    else:
        message = chat(client, prompt, tools=[PATCH_TOOL]).choices[0].message
    (call,) = message.tool_calls
    assert call.type == "function" and call.function.name == "apply_patch"
    assert json.loads(call.function.arguments) == {"input": DEFAULT_PATCH}
    sent = last_upstream_body(fake_upstream, prompt)
    assert sent["tools"] == [{"type": "custom", "name": "apply_patch",
                              "description": "Edit files with a patch"}]
    history = [*user(prompt), message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "Patched!"}]
    answer = client.chat.completions.create(model="gpt-5.4", messages=history,
                                            tools=[PATCH_TOOL])
    assert answer.choices[0].message.content == f"Tool {call.id} returned: Patched!"
    replayed = last_upstream_body(fake_upstream, "Patched!")["input"][-2:]
    assert replayed == [
        {"type": "custom_tool_call", "call_id": call.id, "name": "apply_patch",
         "input": DEFAULT_PATCH},
        {"type": "custom_tool_call_output", "call_id": call.id, "output": "Patched!"}]


def test_custom_tool_round_trip_on_responses(client: openai.OpenAI) -> None:
    tool: Any = {"type": "custom", "name": "apply_patch", "description": "Edit files"}
    prompt = "patch it fake:custom_tool=apply_patch fake:input=hello%0Aworld"
    with client.responses.stream(model="gpt-5.4", input=prompt, tools=[tool]) as events:
        deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
        response = events.get_final_response()
    (call,) = [item for item in response.output if item.type == "custom_tool_call"]
    assert call.input == "".join(deltas) == "hello\nworld"
    answer = client.responses.create(model="gpt-5.4", tools=[tool], input=[
        {"role": "user", "content": prompt},
        {"type": "custom_tool_call", "call_id": call.call_id, "name": call.name,
         "input": call.input},
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "ok"}])
    assert answer.output_text == f"Tool {call.call_id} returned: ok"


# -- citations ------------------------------------------------------------------------------


def check_citations(content: str, annotations: list[Any]) -> None:
    assert len(annotations) == 2
    for note in annotations:
        cited = note["url_citation"]
        assert note["type"] == "url_citation" and cited["url"].startswith("https://")
        assert content[cited["start_index"]:cited["end_index"]] == \
            f"[{cited['title']}]({cited['url']})"


def test_citations_reach_chat_as_annotations(client: openai.OpenAI) -> None:
    message = chat(client, "news fake:reasoning fake:citations").choices[0].message
    check_citations(message.content, [a.model_dump() for a in message.annotations])
    content, annotations = "", list[Any]()
    for chunk in chat(client, "news fake:reasoning fake:citations", stream=True):
        delta = chunk.choices[0].delta if chunk.choices else None
        content += delta.content or "" if delta else ""
        annotations += (delta.model_extra or {}).get("annotations") or [] if delta else []
    check_citations(content, annotations)
    assert content == message.content


def test_citations_reach_responses_clients_untouched(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt-5.4", input="n fake:citations",
                                          stream=True))
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    final: Any = events[-1]
    assert final.type == "response.completed" and len(added) == 2
    text = final.response.output_text
    notes = final.response.output[-1].content[0].annotations
    assert [n.model_dump() for n in notes] == [dict(cast(Any, e.annotation)) for e in added]
    for note in notes:
        assert text[note.start_index:note.end_index] == f"[{note.title}]({note.url})"
