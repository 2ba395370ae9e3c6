"""Sampling parameters: the official SDKs set them, a chat-completions provider receives them
under its own names, and the Codex backend (which refuses them) never sees them.

Providers are the fakes of `chatmock.testing.fake_chat` (OpenRouter, a vLLM-like server
named `local`, xAI) behind one chatmock; each request carries a marker so that its
recorded upstream body is found among the others. The Codex side is the session's fake
backend, which answers 400 "Unsupported parameter" to any sampling field.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import ollama
import openai
import pytest

from .conftest import Process, last_upstream_body
from .test_providers import (  # the SDK clients of the module's `server`
    anthropic_client,
    ollama_client,
    openai_client,
    provider_fakes,
    start_with_providers,
)
from .wsclient import WSClient

__all__ = ["anthropic_client", "ollama_client", "openai_client"]  # fixtures used here

MODELS = {"openrouter": "openrouter/openai/gpt-5", "local": "local/Qwen/Qwen3-8B",
          "xai": "xai/grok-4.20-0309-non-reasoning"}
FLAVORS = {"openrouter": "openrouter", "local": "vllm", "xai": "xai"}
CHAT_SAMPLING = {"temperature": 0.0, "top_p": 0.5, "max_tokens": 50, "stop": ["END"],
                 "seed": 7, "presence_penalty": 0.25, "frequency_penalty": -0.5}
OPENAI_ARGUMENTS: Any = CHAT_SAMPLING  # typed loosely: the SDK's overloads want literals
SAMPLING_KEYS = {"temperature", "top_p", "max_tokens", "max_completion_tokens",
                 "max_output_tokens", "stop", "stop_sequences", "seed", "presence_penalty",
                 "frequency_penalty", "top_k", "options"}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Process]]:
    with provider_fakes(tmp_path_factory.mktemp("sampling-fakes"), FLAVORS) as started:
        yield started


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           fakes: dict[str, Process]) -> Iterator[Process]:
    process = start_with_providers(tmp_path_factory.mktemp("chatmock-sampling"), fakes)
    yield process
    process.stop()


def marker() -> str:
    return f"sampling-{uuid.uuid4().hex[:12]}"


def sent(fakes: dict[str, Process], provider: str, mark: str) -> dict[str, Any]:
    return last_upstream_body(fakes[provider], mark)


def sampling_of(body: dict[str, Any]) -> dict[str, Any]:
    return {key: body[key] for key in SAMPLING_KEYS if key in body}


# -- OpenAI chat completions, legacy completions, Responses ----------------------------


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_parameters_reach_the_provider(openai_client: openai.OpenAI,
                                                   fakes: dict[str, Process], provider: str,
                                                   stream: bool) -> None:
    mark = marker()
    messages: Any = [{"role": "user", "content": mark}]
    if stream:
        chunks = openai_client.chat.completions.create(
            model=MODELS[provider], messages=messages, stream=True, **OPENAI_ARGUMENTS)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks
                       if chunk.choices)
    else:
        reply = openai_client.chat.completions.create(
            model=MODELS[provider], messages=messages, **OPENAI_ARGUMENTS)
        assert reply.choices[0].message.content
    assert sampling_of(sent(fakes, provider, mark)) == CHAT_SAMPLING


def test_max_completion_tokens_arrives_as_max_tokens(openai_client: openai.OpenAI,
                                                     fakes: dict[str, Process]) -> None:
    mark = marker()
    openai_client.chat.completions.create(
        model=MODELS["local"], messages=[{"role": "user", "content": mark}],
        max_completion_tokens=64, stop="END")
    assert sampling_of(sent(fakes, "local", mark)) == {"max_tokens": 64, "stop": ["END"]}


def test_legacy_completion_parameters_reach_the_provider(openai_client: openai.OpenAI,
                                                         fakes: dict[str, Process]) -> None:
    mark = marker()
    openai_client.completions.create(model=MODELS["local"], prompt=mark, temperature=0.2,
                                     top_p=0.9, max_tokens=16, stop=["\n"], seed=3)
    assert sampling_of(sent(fakes, "local", mark)) == {
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 16, "stop": ["\n"], "seed": 3}


def test_responses_parameters_reach_the_provider(openai_client: openai.OpenAI,
                                                 fakes: dict[str, Process]) -> None:
    mark = marker()
    reply = openai_client.responses.create(model=MODELS["openrouter"], input=mark,
                                           temperature=0.3, top_p=0.8, max_output_tokens=40)
    assert reply.output_text
    assert sampling_of(sent(fakes, "openrouter", mark)) == {
        "temperature": 0.3, "top_p": 0.8, "max_tokens": 40}


def test_responses_websocket_parameters_reach_the_provider(server: Process,
                                                           fakes: dict[str, Process]) -> None:
    mark = marker()
    with WSClient(server.port) as client:
        events = client.create(model=MODELS["local"], input=mark, temperature=0.1,
                               max_output_tokens=30)
    assert events[-1]["type"] == "response.completed"
    assert sampling_of(sent(fakes, "local", mark)) == {"temperature": 0.1, "max_tokens": 30}


# -- Anthropic messages ------------------------------------------------------------------

# The 2.x SDK's `messages.create` no longer names temperature, top_p and top_k; older SDKs
# and other clients (LangChain, LiteLLM) still send them, as `extra_body` does here.
ANTHROPIC_SAMPLING = {"temperature": 0.2, "top_p": 0.8, "top_k": 40}


@pytest.mark.parametrize("provider, top_k", [("openrouter", {"top_k": 40}), ("local", {})])
def test_anthropic_parameters_reach_the_provider(anthropic_client: anthropic.Anthropic,
                                                 fakes: dict[str, Process], provider: str,
                                                 top_k: dict[str, int]) -> None:
    mark = marker()
    reply = anthropic_client.messages.create(
        model=MODELS[provider], max_tokens=50, extra_body=ANTHROPIC_SAMPLING,
        stop_sequences=["END", "STOP"], messages=[{"role": "user", "content": mark}])
    assert reply.content
    assert sampling_of(sent(fakes, provider, mark)) == {
        "max_tokens": 50, "temperature": 0.2, "top_p": 0.8, "stop": ["END", "STOP"], **top_k}


# -- Ollama chat and generate ------------------------------------------------------------


OLLAMA_OPTIONS = {"temperature": 0, "top_p": 0.5, "top_k": 20, "num_predict": 50,
                  "stop": ["END"], "seed": 7, "presence_penalty": 0.25,
                  "frequency_penalty": -0.5, "num_ctx": 8192, "repeat_penalty": 1.1}


@pytest.mark.parametrize("provider", ["openrouter", "local"])
def test_ollama_chat_options_reach_the_provider(ollama_client: ollama.Client,
                                                fakes: dict[str, Process],
                                                provider: str) -> None:
    mark = marker()
    reply = ollama_client.chat(model=MODELS[provider], stream=False, options=OLLAMA_OPTIONS,
                               messages=[{"role": "user", "content": mark}])
    assert reply.message.content
    top_k = {"top_k": 20} if provider == "openrouter" else {}
    assert sampling_of(sent(fakes, provider, mark)) == {**CHAT_SAMPLING, **top_k}


def test_ollama_generate_options_reach_the_provider(ollama_client: ollama.Client,
                                                    fakes: dict[str, Process]) -> None:
    mark = marker()
    streamed = "".join(part.response or "" for part in ollama_client.generate(
        model=MODELS["local"], prompt=mark, stream=True,
        options={"temperature": 0.7, "num_predict": -1, "seed": 1}))
    assert streamed
    assert sampling_of(sent(fakes, "local", mark)) == {"temperature": 0.7, "seed": 1}


def test_qwen_web_api_gets_none_of_them(openai_client: openai.OpenAI,
                                        fakes: dict[str, Process]) -> None:
    """Its completion request has no sampling field (providers.md §3.4): all dropped."""
    mark = marker()
    reply = openai_client.chat.completions.create(
        model="qwen/qwen3.7-plus", messages=[{"role": "user", "content": mark}],
        **OPENAI_ARGUMENTS)
    assert reply.choices[0].message.content
    body = sent(fakes, "qwen", mark)
    assert body["messages"] and not SAMPLING_KEYS & set(body)


# -- malformed values: a 400 in each dialect's shape, before any upstream call --------------


def test_openai_malformed_values_are_400s(openai_client: openai.OpenAI) -> None:
    hot: Any = "hot"
    with pytest.raises(openai.BadRequestError) as chat:
        openai_client.chat.completions.create(model=MODELS["local"], temperature=hot,
                                              messages=[{"role": "user", "content": "hi"}])
    assert chat.value.code == "invalid_type" and chat.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as legacy:
        openai_client.completions.create(model=MODELS["local"], prompt="hi", max_tokens=0)
    assert legacy.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError) as responses:
        openai_client.responses.create(model=MODELS["local"], input="hi", top_p=hot)
    assert responses.value.param == "top_p"


def test_anthropic_malformed_value_is_a_400(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(model=MODELS["local"], max_tokens=50,
                                         extra_body={"temperature": "hot"},
                                         messages=[{"role": "user", "content": "hi"}])
    body: Any = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "temperature: Input should be a valid number" in body["error"]["message"]


def test_ollama_malformed_value_is_a_400(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.chat(model=MODELS["local"], options={"temperature": "hot"},
                           messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 400 and "options.temperature" in info.value.error


# -- the Codex backend never sees them ---------------------------------------------------


def test_the_codex_payload_carries_no_sampling_parameter(chatmock_server: Process,
                                                         fake_upstream: Process) -> None:
    """The fake backend answers 400 to any of them; every dialect still gets its answer
    and no recorded Codex body has one."""
    marks = [marker() for _ in range(5)]
    with openai.OpenAI(base_url=chatmock_server.url + "/v1", api_key="unused",
                       max_retries=0) as client:
        client.chat.completions.create(model="gpt-5.4", messages=[
            {"role": "user", "content": marks[0]}], **OPENAI_ARGUMENTS)
        client.completions.create(model="gpt-5.4", prompt=marks[1], temperature=0.2,
                                  max_tokens=16, stop=["\n"])
        client.responses.create(model="gpt-5.4", input=marks[2], temperature=0.3, top_p=0.8,
                                max_output_tokens=40)
    with anthropic.Anthropic(base_url=chatmock_server.url, api_key="unused",
                             max_retries=0) as claude:
        claude.messages.create(model="gpt-5.4", max_tokens=50, extra_body=ANTHROPIC_SAMPLING,
                               stop_sequences=["END"],
                               messages=[{"role": "user", "content": marks[3]}])
    local = ollama.Client(host=chatmock_server.url)
    local.chat(model="gpt-5.4", options=OLLAMA_OPTIONS,
               messages=[{"role": "user", "content": marks[4]}])
    local.close()  # type: ignore[no-untyped-call]
    for mark in marks:
        assert not SAMPLING_KEYS & set(last_upstream_body(fake_upstream, mark))
