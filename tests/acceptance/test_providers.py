"""Every front door on every provider: the official SDKs against chatmock, chatmock against
the provider fakes (`chatmock.testing.fake_chat`), all through real sockets.

One chatmock serves three chat-completions providers at once, each moved onto its
fake with `--upstream NAME=URL`: xAI (whole tool calls in one chunk,
`reasoning_content`), OpenRouter (comment lines, split arguments with `index`,
`reasoning` + `reasoning_details`, usage after the finish) and a generic vLLM-like
server named `local` (no key), and Ollama's `/v1` named `ollama` (whole tool calls
without `index`, the first without an id). Each dialect and provider pair is driven at least once,
streamed and not: text, a tool call with its arguments, reasoning in the dialect's
own form, usage, and a provider refusal in the dialect's error shape.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest

from chatmock.testing.fake_chat_flavors import OPENROUTER_KEY, XAI_KEY
from chatmock.testing.fake_qwen import QWEN_TOKEN

from .conftest import Process, recorded_requests, spawn, start_chatmock
from .wsclient import WSClient, done_items, output_text

PROMPT = 'hi fake:reasoning=2 fake:tool=lookup fake:args={"q":1}'
MODELS = {"xai": "xai/grok-3-mini", "openrouter": "openrouter/openai/gpt-5",
          "local": "local/Qwen/Qwen3-8B", "ollama": "ollama/gpt-oss:20b"}
FLAVORS = {"xai": "xai", "openrouter": "openrouter", "local": "vllm", "ollama": "ollama"}
PROVIDERS = list(MODELS)
OPENAI_TOOL: Any = {"type": "function", "function": {
    "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "integer"}}}}}
ANSWER = "Hello! You said: hi"


@contextmanager
def provider_fakes(tmp: Path, flavors: dict[str, str]) -> Iterator[dict[str, Process]]:
    """One `fake_chat` server per name, of the flavor `flavors` gives it, and the Qwen
    fake as `qwen`; all stopped when the block ends."""
    started = {name: spawn(["-m", "chatmock.testing.fake_chat", "--flavor", flavor,
                            "--port", "0"], tmp / f"{name}.log")
               for name, flavor in flavors.items()}
    started["qwen"] = spawn(["-m", "chatmock.testing.fake_qwen", "--port", "0"],
                            tmp / "qwen.log")
    try:
        yield started
    finally:
        for process in started.values():
            process.stop()


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Process]]:
    with provider_fakes(tmp_path_factory.mktemp("provider-fakes"), FLAVORS) as started:
        yield started


def upstream_flags(fakes: dict[str, Process]) -> list[str]:
    prefixes = {"xai": "/v1", "openrouter": "/api/v1", "local": "/v1", "ollama": "/v1",
                "qwen": ""}
    flags = []
    for name, process in fakes.items():
        flags += ["--upstream", f"{name}={process.url}{prefixes[name]}"]
    return flags


def start_with_providers(tmp: Path, fakes: dict[str, Process], *flags: str,
                         env: dict[str, str] | None = None) -> Process:
    keys = {"XAI_API_KEY": XAI_KEY, "OPENROUTER_API_KEY": OPENROUTER_KEY,
            "QWEN_AUTH_TOKEN": QWEN_TOKEN, **(env or {})}
    saved = {name: os.environ.get(name) for name in keys}
    os.environ.update(keys)
    try:
        return start_chatmock(tmp, None, *upstream_flags(fakes), *flags)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           fakes: dict[str, Process]) -> Iterator[Process]:
    process = start_with_providers(tmp_path_factory.mktemp("chatmock-providers"), fakes,
                                   "--reasoning-compat", "legacy")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def openai_client(server: Process) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                       timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def anthropic_client(server: Process) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0,
                             timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def ollama_client(server: Process) -> Iterator[ollama.Client]:
    client = ollama.Client(host=server.url, timeout=20)
    yield client
    client.close()  # type: ignore[no-untyped-call]


# -- OpenAI chat completions ------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_chat_streams_text_reasoning_tools_and_usage(
        openai_client: openai.OpenAI, provider: str) -> None:
    stream = openai_client.chat.completions.create(
        model=MODELS[provider], stream=True, stream_options={"include_usage": True},
        tools=[OPENAI_TOOL], reasoning_effort="high",
        messages=[{"role": "user", "content": PROMPT}])
    text, reasoning, usage, finish = "", "", None, None
    calls: dict[int, dict[str, str]] = {}
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            text += choice.delta.content or ""
            reasoning += getattr(choice.delta, "reasoning", None) or ""
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
    assert text == ANSWER
    assert "thought" in reasoning
    assert calls == {0: {"name": "lookup", "arguments": '{"q":1}'}}
    assert finish == "tool_calls"
    assert usage is not None and usage.total_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_chat_collected(openai_client: openai.OpenAI, provider: str) -> None:
    reply = openai_client.chat.completions.create(
        model=MODELS[provider], tools=[OPENAI_TOOL],
        messages=[{"role": "user", "content": PROMPT}])
    message = reply.choices[0].message
    assert message.content == ANSWER
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert call.type == "function" and call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"q": 1}
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_chat_tool_result_turn(openai_client: openai.OpenAI, provider: str) -> None:
    reply = openai_client.chat.completions.create(model=MODELS[provider], messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_7", "type": "function",
            "function": {"name": "lookup", "arguments": '{"q":1}'}}]},
        {"role": "tool", "tool_call_id": "call_7", "content": "sunny"}],
        tools=[OPENAI_TOOL])
    assert reply.choices[0].message.content == "Tool call_7 returned: sunny"


def test_openai_chat_error_in_openai_shape(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.chat.completions.create(
            model=MODELS["openrouter"], messages=[{"role": "user", "content": "fake:error=402"}])
    assert info.value.status_code == 402
    assert "openrouter" in str(info.value.body)


# -- Anthropic messages -----------------------------------------------------------------

ANTHROPIC_TOOL: Any = {"name": "lookup", "input_schema": {
    "type": "object", "properties": {"q": {"type": "integer"}}}}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_stream(anthropic_client: anthropic.Anthropic, provider: str) -> None:
    with anthropic_client.messages.stream(
            model=MODELS[provider], max_tokens=2000, tools=[ANTHROPIC_TOOL],
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": PROMPT}]) as stream:
        message = stream.get_final_message()
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text", "tool_use"]
    thinking, text, call = message.content
    assert thinking.type == "thinking" and "thought" in thinking.thinking
    assert text.type == "text" and text.text == ANSWER
    assert call.type == "tool_use" and call.name == "lookup" and call.input == {"q": 1}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_collected(anthropic_client: anthropic.Anthropic, provider: str) -> None:
    message = anthropic_client.messages.create(
        model=MODELS[provider], max_tokens=2000, tools=[ANTHROPIC_TOOL],
        messages=[{"role": "user", "content": PROMPT}])
    texts = [block.text for block in message.content if block.type == "text"]
    calls = [block for block in message.content if block.type == "tool_use"]
    assert texts == [ANSWER]
    assert [(c.name, c.input) for c in calls] == [("lookup", {"q": 1})]
    assert message.model == MODELS[provider]


def test_anthropic_error_in_anthropic_shape(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(
            model=MODELS["xai"], max_tokens=100,
            messages=[{"role": "user", "content": "fake:error=400"}])
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "error"
    assert "xai" in info.value.body["error"]["message"]


# -- Ollama chat ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ollama_stream(ollama_client: ollama.Client, provider: str) -> None:
    text, thinking = "", ""
    calls: list[Any] = []
    last: Any = None
    for part in ollama_client.chat(model=MODELS[provider], stream=True, think=True,
                                   tools=[OPENAI_TOOL],
                                   messages=[{"role": "user", "content": PROMPT}]):
        text += part.message.content or ""
        thinking += part.message.thinking or ""
        calls += part.message.tool_calls or []
        last = part
    assert text == ANSWER and "thought" in thinking
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("lookup", {"q": 1})]
    assert last.done and last.eval_count > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ollama_collected(ollama_client: ollama.Client, provider: str) -> None:
    reply = ollama_client.chat(model=MODELS[provider], stream=False,
                               messages=[{"role": "user", "content": "hi"}])
    assert reply.message.content == ANSWER
    assert reply.done and reply.prompt_eval_count and reply.prompt_eval_count > 0


def test_ollama_error_in_ollama_shape(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.chat(model=MODELS["local"], stream=False,
                           messages=[{"role": "user", "content": "fake:error=400"}])
    assert info.value.status_code == 400
    assert "local" in info.value.error


# -- OpenAI Responses (translated from the chat stream), legacy completions, Ollama generate --

RESPONSES_TOOL: Any = {"type": "function", "name": "lookup", "strict": False,
                       "parameters": OPENAI_TOOL["function"]["parameters"]}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_stream_and_chain_on_previous_response_id(
        openai_client: openai.OpenAI, provider: str) -> None:
    events = list(openai_client.responses.create(
        model=MODELS[provider], input=PROMPT, tools=[RESPONSES_TOOL], stream=True,
        reasoning={"effort": "high", "summary": "auto"}))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == ANSWER
    assert "response.reasoning_text.delta" in kinds or \
        "response.reasoning_summary_text.delta" in kinds
    final = events[-1].response  # type: ignore[union-attr]
    call: Any = next(item for item in final.output if item.type == "function_call")
    assert call.name == "lookup" and json.loads(call.arguments) == {"q": 1}
    assert final.usage is not None and final.usage.total_tokens > 0
    tool_output: Any = {"type": "function_call_output", "call_id": call.call_id,
                        "output": "sunny"}
    second = openai_client.responses.create(
        model=MODELS[provider], previous_response_id=final.id, tools=[RESPONSES_TOOL],
        input=[tool_output])
    assert second.output_text == f"Tool {call.call_id} returned: sunny"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_websocket(server: Process, provider: str) -> None:
    with WSClient(server.port) as client:
        first = client.create(model=MODELS[provider], input=PROMPT, tools=[RESPONSES_TOOL])
        assert first[-1]["type"] == "response.completed"
        assert output_text(first) == ANSWER
        call = next(item for item in done_items(first) if item["type"] == "function_call")
        second = client.create(model=MODELS[provider], tools=[RESPONSES_TOOL],
                               previous_response_id=first[-1]["response"]["id"],
                               input=[{"type": "function_call_output",
                                       "call_id": call["call_id"], "output": "22C"}])
        assert output_text(second) == f"Tool {call['call_id']} returned: 22C"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_legacy_completions(openai_client: openai.OpenAI, provider: str) -> None:
    reply = openai_client.completions.create(model=MODELS[provider], prompt="hi")
    assert reply.choices[0].text == ANSWER
    streamed = "".join(chunk.choices[0].text for chunk in openai_client.completions.create(
        model=MODELS[provider], prompt="hi", stream=True) if chunk.choices)
    assert streamed == ANSWER


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ollama_generate(ollama_client: ollama.Client, provider: str) -> None:
    reply = ollama_client.generate(model=MODELS[provider], prompt="hi", stream=False)
    assert reply.response == ANSWER
    streamed = "".join(part.response or "" for part in ollama_client.generate(
        model=MODELS[provider], prompt="hi", stream=True))
    assert streamed == ANSWER


# -- Qwen (the chat.qwen.ai web API): no tools; one chat per conversation ---------------

QWEN = "qwen/qwen3.7-plus"
QWEN_PROMPT = "hi fake:reasoning=2"


def qwen_completions(fakes: dict[str, Process]) -> list[dict[str, Any]]:
    return [r for r in recorded_requests(fakes["qwen"]) if "completions" in r["path"]]


def test_qwen_openai_chat_streamed_and_collected(openai_client: openai.OpenAI) -> None:
    text, reasoning = "", ""
    for chunk in openai_client.chat.completions.create(
            model=QWEN, stream=True, reasoning_effort="high",
            messages=[{"role": "user", "content": QWEN_PROMPT}]):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            reasoning += getattr(choice.delta, "reasoning", None) or ""
    assert text == "Hello! You said: hi" and reasoning
    reply = openai_client.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == ANSWER
    assert reply.usage is not None and reply.usage.total_tokens > 0


def test_qwen_refuses_tools_with_a_400(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=QWEN, tools=[OPENAI_TOOL],
                                              messages=[{"role": "user", "content": "hi"}])
    assert "qwen" in str(info.value.body)


def test_qwen_continues_its_chat_across_turns(openai_client: openai.OpenAI,
                                              fakes: dict[str, Process]) -> None:
    first = openai_client.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": "qwen turn one"}])
    answer = first.choices[0].message.content
    second = openai_client.chat.completions.create(model=QWEN, messages=[
        {"role": "user", "content": "qwen turn one"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "qwen turn two"}])
    assert second.choices[0].message.content == "Hello! You said: qwen turn two"
    sent = [r["body"] for r in qwen_completions(fakes)
            if "qwen turn" in json.dumps(r["body"])][-2:]
    assert sent[1]["chat_id"] == sent[0]["chat_id"]  # the same chat, continued
    assert sent[1]["parent_id"] and sent[1]["messages"][0]["content"] == "qwen turn two"


def test_qwen_anthropic_and_ollama(anthropic_client: anthropic.Anthropic,
                                   ollama_client: ollama.Client) -> None:
    with anthropic_client.messages.stream(
            model=QWEN, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": QWEN_PROMPT}]) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[1].type == "text" and message.content[1].text == ANSWER
    collected = anthropic_client.messages.create(
        model=QWEN, max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert collected.content[0].type == "text" and collected.content[0].text == ANSWER
    parts = list(ollama_client.chat(model=QWEN, stream=True, think=True,
                                    messages=[{"role": "user", "content": QWEN_PROMPT}]))
    assert "".join(p.message.content or "" for p in parts) == ANSWER
    assert "".join(p.message.thinking or "" for p in parts)
    assert ollama_client.generate(model=QWEN, prompt="hi", stream=False).response == ANSWER


def test_qwen_responses_chain_and_websocket(openai_client: openai.OpenAI,
                                            server: Process) -> None:
    first = openai_client.responses.create(model=QWEN, input="qwen responses one")
    assert first.output_text == "Hello! You said: qwen responses one"
    second = openai_client.responses.create(model=QWEN, previous_response_id=first.id,
                                            input="qwen responses two")
    assert second.output_text == "Hello! You said: qwen responses two"
    with WSClient(server.port) as client:
        events = client.create(model=QWEN, input="qwen socket")
    assert output_text(events) == "Hello! You said: qwen socket"


def test_qwen_errors_in_each_dialect(openai_client: openai.OpenAI,
                                     ollama_client: ollama.Client) -> None:
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(
            model=QWEN, messages=[{"role": "user", "content": "fake:error=404"}])
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.chat(model=QWEN, stream=False,
                           messages=[{"role": "user", "content": "fake:error=400"}])
    assert info.value.status_code == 400


# -- model lists --------------------------------------------------------------------------


def test_every_usable_providers_models_are_listed(
        openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic,
        ollama_client: ollama.Client) -> None:
    listed = {model.id: model.owned_by for model in openai_client.models.list()}
    assert listed["xai/grok-4"] == "xai" and listed["local/Qwen/Qwen3-8B"] == "local"
    assert listed["openrouter/openai/gpt-5"] == "openrouter"
    assert "qwen/qwen3.7-plus" in listed and "qwen/qwen3-max" not in listed  # inactive
    assert "gpt-5.4" in listed  # the Codex backend's, as before
    assert openai_client.models.retrieve("xai/grok-4").owned_by == "xai"
    claude = {model.id for model in anthropic_client.models.list()}
    assert {"xai/grok-4", "qwen/qwen3.7-plus", "gpt-5.4"} <= claude
    tags = {model.model for model in ollama_client.list().models}
    assert {"openrouter/openai/gpt-5", "local/Qwen/Qwen3-8B"} <= tags


def test_a_provider_without_credentials_is_unlisted_and_named_in_a_400(
        tmp_path: Path, fakes: dict[str, Process]) -> None:
    server = start_with_providers(tmp_path, fakes, env={"OPENROUTER_API_KEY": ""})
    try:
        with openai.OpenAI(base_url=server.url + "/v1", api_key="unused",
                           max_retries=0) as client:
            ids = {model.id for model in client.models.list()}
            assert "xai/grok-4" in ids and not any(i.startswith("openrouter/") for i in ids)
            with pytest.raises(openai.BadRequestError) as info:
                client.chat.completions.create(model="openrouter/openai/gpt-5",
                                               messages=[{"role": "user", "content": "hi"}])
        assert "OPENROUTER_API_KEY" in str(info.value.body)
        with urllib.request.urlopen(server.url + "/health") as reply:
            providers = {p["name"]: p for p in json.load(reply)["providers"]}
        assert providers["openrouter"]["missing"] == ["OPENROUTER_API_KEY"]
        assert OPENROUTER_KEY not in server.log.read_text()
    finally:
        server.stop()


def test_the_provider_query_picks_the_upstream(server: Process) -> None:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                       default_query={"provider": "local"}) as client:
        reply = client.chat.completions.create(model="Qwen/Qwen3-8B",
                                               messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == ANSWER
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                       default_query={"provider": "nowhere"}) as client, \
            pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    assert "nowhere" in str(info.value.body)


def test_a_failure_mid_stream_ends_each_dialects_stream_in_its_shape(
        openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic,
        ollama_client: ollama.Client) -> None:
    """OpenRouter's in-stream error chunk after two deltas: an error event, not a
    silent success, in each dialect."""
    model, prompt = MODELS["openrouter"], "hi fake:fail"
    with pytest.raises(openai.APIError):
        for _ in openai_client.chat.completions.create(
                model=model, stream=True, messages=[{"role": "user", "content": prompt}]):
            pass
    with pytest.raises(anthropic.APIStatusError), anthropic_client.messages.stream(
            model=model, max_tokens=100,
            messages=[{"role": "user", "content": prompt}]) as stream:
        stream.get_final_message()
    with pytest.raises(ollama.ResponseError):
        for _ in ollama_client.chat(model=model, stream=True,
                                    messages=[{"role": "user", "content": prompt}]):
            pass
