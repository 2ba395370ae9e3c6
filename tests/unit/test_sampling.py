"""chatmock.dialects.sampling: each dialect's sampling parameters, read beside the Codex
payload (which never carries them) and mapped to a provider's chat-completions names."""

from __future__ import annotations

from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.dialects.anthropic import parse_messages_request
from chatmock.dialects.chat import parse_chat_request
from chatmock.dialects.chat_upstream_request import chat_request
from chatmock.dialects.completions import parse_completion_request
from chatmock.dialects.ollama import OllamaRequest, parse_chat, parse_generate
from chatmock.dialects.options import Options
from chatmock.dialects.responses import parse_responses_request
from chatmock.dialects.sampling import NONE, Sampling
from chatmock.testing.fake_chat_flavors import FLAVORS
from chatmock.testing.fake_chat_rules import validate_chat

from .helpers import JSON, accepted_upstream, refused

CATALOG = Catalog()
OPTIONS = Options()
HEADERS = {b"anthropic-version": b"2023-06-01", b"x-api-key": b"k"}
HI = [{"role": "user", "content": "hi"}]
SAMPLED = Sampling(temperature=0.0, top_p=0.5, max_tokens=50, stop=("END",), seed=7,
                   presence_penalty=0.25, frequency_penalty=-0.5)
SAMPLING_KEYS = {"temperature", "top_p", "max_tokens", "max_completion_tokens",
                 "max_output_tokens", "stop", "stop_sequences", "seed", "presence_penalty",
                 "frequency_penalty", "top_k", "options"}


def chat(**body: Any) -> tuple[JSON, Sampling]:
    parsed = parse_chat_request({"model": "gpt-5.4", "messages": HI, **body}, CATALOG, OPTIONS)
    return parsed.payload, parsed.sampling


def completion(**body: Any) -> tuple[JSON, Sampling]:
    parsed = parse_completion_request({"model": "gpt-5.4", "prompt": "hi", **body}, CATALOG,
                                      OPTIONS)
    return parsed.payload, parsed.sampling


def responses(**body: Any) -> tuple[JSON, Sampling]:
    parsed = parse_responses_request({"model": "gpt-5.4", "input": "hi", **body}, CATALOG,
                                     OPTIONS)
    return parsed.payload, parsed.sampling


def messages(**body: Any) -> tuple[JSON, Sampling]:
    body = {"model": "gpt-5.4", "max_tokens": 1024, "messages": HI, **body}
    parsed = parse_messages_request(body, HEADERS, CATALOG, OPTIONS)
    return parsed.payload, parsed.sampling


def ollama(generate: bool = False, **body: Any) -> tuple[JSON, Sampling]:
    parse = parse_generate if generate else parse_chat
    content: JSON = {"prompt": "hi"} if generate else {"messages": HI}
    parsed = parse({"model": "gpt-5.4", **content, **body}, CATALOG, OPTIONS)
    assert isinstance(parsed, OllamaRequest)
    return parsed.chat.payload, parsed.chat.sampling


def test_openai_chat_reads_every_parameter_and_the_payload_carries_none() -> None:
    payload, sampling = chat(temperature=0, top_p=0.5, max_tokens=50, stop="END", seed=7,
                             presence_penalty=0.25, frequency_penalty=-0.5)
    assert sampling == SAMPLED
    assert not SAMPLING_KEYS & set(payload)
    assert payload == chat()[0]
    accepted_upstream(payload)


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert chat(max_tokens=10, max_completion_tokens=20)[1].max_tokens == 20
    assert chat(stop=["a", "b"])[1].stop == ("a", "b")
    assert chat()[1] == NONE


def test_legacy_completions_read_the_chat_parameters() -> None:
    payload, sampling = completion(temperature=0, top_p=0.5, max_tokens=50, stop=["END"],
                                   seed=7, presence_penalty=0.25, frequency_penalty=-0.5)
    assert sampling == SAMPLED
    assert not SAMPLING_KEYS & set(payload)
    accepted_upstream(payload)


def test_responses_reads_temperature_top_p_and_max_output_tokens() -> None:
    payload, sampling = responses(temperature=0.3, top_p=0.9, max_output_tokens=64)
    assert sampling == Sampling(temperature=0.3, top_p=0.9, max_tokens=64)
    assert not SAMPLING_KEYS & set(payload)
    accepted_upstream(payload)


def test_anthropic_reads_max_tokens_top_k_and_stop_sequences() -> None:
    payload, sampling = messages(max_tokens=50, temperature=0.2, top_p=0.8, top_k=40,
                                 stop_sequences=["END", "STOP"])
    assert sampling == Sampling(temperature=0.2, top_p=0.8, top_k=40, max_tokens=50,
                                stop=("END", "STOP"))
    assert not SAMPLING_KEYS & set(payload)
    accepted_upstream(payload)


@pytest.mark.parametrize("generate", [False, True])
def test_ollama_options_map_to_chat_names(generate: bool) -> None:
    options = {"temperature": 0, "top_p": 0.5, "top_k": 20, "num_predict": 50,
               "stop": ["END"], "seed": 7, "presence_penalty": 0.25,
               "frequency_penalty": -0.5, "num_ctx": 8192, "repeat_penalty": 1.1, "min_p": 0.05}
    payload, sampling = ollama(generate, options=options)
    assert sampling == Sampling(temperature=0, top_p=0.5, top_k=20, max_tokens=50,
                                stop=("END",), seed=7, presence_penalty=0.25,
                                frequency_penalty=-0.5)
    assert not SAMPLING_KEYS & set(payload)
    accepted_upstream(payload)


def test_ollama_unlimited_num_predict_sets_no_limit() -> None:
    assert ollama(options={"num_predict": -1})[1] == NONE
    assert ollama(options={"num_predict": -2, "temperature": 1.5})[1] == \
        Sampling(temperature=1.5)
    assert ollama(options={})[1] == NONE


@pytest.mark.parametrize("parse, fields, param", [
    (chat, {"temperature": "hot"}, "temperature"),
    (chat, {"temperature": 3}, "temperature"),
    (chat, {"top_p": 1.5}, "top_p"),
    (chat, {"max_tokens": 0}, "max_tokens"),
    (chat, {"max_completion_tokens": 1.5}, "max_completion_tokens"),
    (chat, {"stop": 5}, "stop"),
    (chat, {"stop": ["a", 5]}, "stop[1]"),
    (chat, {"seed": "x"}, "seed"),
    (chat, {"presence_penalty": -3}, "presence_penalty"),
    (completion, {"temperature": "hot"}, "temperature"),
    (completion, {"max_tokens": -1}, "max_tokens"),
    (responses, {"temperature": "hot"}, "temperature"),
    (responses, {"max_output_tokens": "many"}, "max_output_tokens"),
    (messages, {"temperature": "hot"}, "temperature"),
    (messages, {"temperature": 1.5}, "temperature"),
    (messages, {"top_k": -1}, "top_k"),
    (messages, {"stop_sequences": "END"}, "stop_sequences"),
    (messages, {"stop_sequences": ["END", 1]}, "stop_sequences.1"),
    (ollama, {"options": "hot"}, "options"),
    (ollama, {"options": {"temperature": "hot"}}, "options.temperature"),
    (ollama, {"options": {"num_predict": 1.5}}, "options.num_predict"),
    (ollama, {"options": {"stop": [1]}}, "options.stop[0]"),
])
def test_malformed_values_are_a_400_naming_the_field(parse: Any, fields: JSON,
                                                      param: str) -> None:
    refused(lambda: parse(**fields), param=param)


def test_anthropic_errors_use_pydantic_wording() -> None:
    refused(lambda: messages(temperature="hot"), "temperature: Input should be a valid number")
    refused(lambda: chat(temperature="hot"), "Invalid type for 'temperature'")
    refused(lambda: chat(temperature=3), "between 0 and 2")


# -- the provider's request -------------------------------------------------------------


def provider_body(flavor: str, model: str, sampling: Sampling) -> JSON:
    payload, _ = chat()
    mapped = "openai" if flavor in ("vllm", "ollama", "llamacpp") else flavor
    body = chat_request(payload, model=model, flavor=mapped, sampling=sampling.chat_fields())
    validate_chat(FLAVORS[flavor], body)
    return body


@pytest.mark.parametrize("flavor, model", [("openrouter", "openai/gpt-5"),
                                           ("vllm", "Qwen/Qwen3-8B"),
                                           ("xai", "grok-4.20-0309-non-reasoning")])
def test_every_parameter_arrives_under_the_chat_name(flavor: str, model: str) -> None:
    body = provider_body(flavor, model, SAMPLED)
    assert {key: body[key] for key in SAMPLED.chat_fields()} == {
        "temperature": 0.0, "top_p": 0.5, "max_tokens": 50, "stop": ["END"], "seed": 7,
        "presence_penalty": 0.25, "frequency_penalty": -0.5}
    assert "max_completion_tokens" not in body


def test_top_k_goes_to_openrouter_only() -> None:
    sampling = Sampling(top_k=40, temperature=0.5)
    assert provider_body("openrouter", "openai/gpt-5", sampling)["top_k"] == 40
    for flavor, model in (("vllm", "Qwen/Qwen3-8B"), ("xai", "grok-4.3")):
        body = provider_body(flavor, model, sampling)
        assert "top_k" not in body and body["temperature"] == 0.5


def test_xai_reasoning_models_keep_what_they_take() -> None:
    body = provider_body("xai", "grok-4.3", SAMPLED)
    assert not {"stop", "presence_penalty", "frequency_penalty"} & set(body)
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.0, 50, 7)


def test_nothing_set_adds_nothing() -> None:
    body = provider_body("vllm", "Qwen/Qwen3-8B", NONE)
    assert not SAMPLING_KEYS & set(body)
