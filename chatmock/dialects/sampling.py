"""A request's sampling parameters, read from each dialect, for chat-completions providers.

The Codex backend refuses sampling parameters (`temperature`, `top_p`,
`max_output_tokens`, ...: "Unsupported parameter"), so the Codex payload every
dialect builds never carries them. A chat-completions provider (xAI,
OpenRouter, a local vLLM, llama.cpp, LM Studio or Ollama `/v1`) takes them, and
a client that sets `temperature: 0` or `max_tokens: 50` expects them to work
there. So each parser also reads them into a `Sampling`, a value that travels
*beside* the payload (in the route's `Plan`, then `Upstreams.open`) rather than
inside it: the Codex payload stays byte for byte what it was (nothing to strip,
nothing that could leak through the fallback payload, the session fingerprint
or the stored turn), and only a provider's request mapping
(`chat_upstream_request.chat_request`) reads it.

What each dialect gives (names are the provider's, chat-completions):

* OpenAI chat and legacy completions: `temperature`, `top_p`,
  `max_completion_tokens` (else `max_tokens`), `stop`, `seed`,
  `presence_penalty`, `frequency_penalty`;
* Responses: `temperature`, `top_p`, `max_output_tokens`;
* Anthropic messages: `max_tokens`, `temperature`, `top_p`, `top_k`,
  `stop_sequences`;
* Ollama chat/generate `options`: `temperature`, `top_p`, `top_k`,
  `num_predict` (a negative value, Ollama's "no limit", sets none), `stop`,
  `seed`, `presence_penalty`, `frequency_penalty`; the others (`num_ctx`,
  `repeat_penalty`, `min_p`, ...) have no chat-completions counterpart and
  are dropped.

The output limit goes out as `max_tokens`, the one name every
OpenAI-compatible server reads (OpenRouter lists it among a model's
`supported_parameters`; vLLM, llama.cpp and Ollama `/v1` take it).

Values are checked as the dialect's own API checks them: a wrong type or a
value out of range is a 400 in the dialect's shape naming the field
(`chatmock.dialects.fields`), on every provider, the Codex backend included.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from chatmock.dialects.fields import ANTHROPIC, OPENAI, Fields, join

_NUMBER = ("number",)


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling parameters under their chat-completions names; None: not set."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None

    def chat_fields(self) -> dict[str, Any]:
        """The parameters that are set, as a chat-completions body carries them."""
        values: dict[str, Any] = {}
        for spec in dataclass_fields(self):
            value = getattr(self, spec.name)
            if value is not None:
                values[spec.name] = list(value) if isinstance(value, tuple) else value
        return values


NONE = Sampling()


def _number(reader: Fields, source: dict[str, Any], key: str, at: str = "",
            low: float | None = None, high: float | None = None) -> float | None:
    """A number within [low, high] (either bound may be open), else a 400."""
    value: float | None = reader.get(source, key, _NUMBER, at)
    if value is None:
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if low is not None and high is not None \
            else f">= {low:g}" if low is not None else f"<= {high:g}"
        raise reader.invalid(join(at, key), f"expected a value {bounds}, but got {value} "
                                            "instead.", "decimal_out_of_range")
    return value


def _stop(reader: Fields, source: dict[str, Any], key: str, at: str = "",
          single: bool = True) -> tuple[str, ...] | None:
    """A stop string or list of strings (`single`: a lone string allowed too)."""
    kinds = ("string", "array") if single else ("array",)
    value = reader.get(source, key, kinds, at)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    path = join(at, key)
    for number, item in enumerate(value):
        reader.check(item, ("string",), f"{path}.{number}" if reader.pydantic
                     else f"{path}[{number}]")
    return tuple(value)


def openai_sampling(body: dict[str, Any]) -> Sampling:
    """Chat completions and legacy completions (module docstring)."""
    limit = OPENAI.integer(body, "max_completion_tokens", minimum=1)
    if limit is None:
        limit = OPENAI.integer(body, "max_tokens", minimum=1)
    return Sampling(
        temperature=_number(OPENAI, body, "temperature", low=0, high=2),
        top_p=_number(OPENAI, body, "top_p", low=0, high=1),
        max_tokens=limit,
        stop=_stop(OPENAI, body, "stop"),
        seed=OPENAI.integer(body, "seed"),
        presence_penalty=_number(OPENAI, body, "presence_penalty", low=-2, high=2),
        frequency_penalty=_number(OPENAI, body, "frequency_penalty", low=-2, high=2))


def responses_sampling(body: dict[str, Any]) -> Sampling:
    """The Responses API: `temperature`, `top_p`, `max_output_tokens`."""
    return Sampling(temperature=_number(OPENAI, body, "temperature", low=0, high=2),
                    top_p=_number(OPENAI, body, "top_p", low=0, high=1),
                    max_tokens=OPENAI.integer(body, "max_output_tokens", minimum=1))


def anthropic_sampling(body: dict[str, Any]) -> Sampling:
    """Anthropic messages (`max_tokens` is checked as required by the parser)."""
    return Sampling(temperature=_number(ANTHROPIC, body, "temperature", low=0, high=1),
                    top_p=_number(ANTHROPIC, body, "top_p", low=0, high=1),
                    top_k=ANTHROPIC.integer(body, "top_k", minimum=0),
                    max_tokens=ANTHROPIC.integer(body, "max_tokens", minimum=1),
                    stop=_stop(ANTHROPIC, body, "stop_sequences", single=False))


def ollama_sampling(body: dict[str, Any]) -> Sampling:
    """Ollama's `options` (module docstring); a missing `options` sets nothing."""
    options = OPENAI.obj(body, "options")
    if not options:
        return NONE
    at = "options"
    predict = OPENAI.integer(options, "num_predict", at)
    return Sampling(
        temperature=_number(OPENAI, options, "temperature", at, low=0),
        top_p=_number(OPENAI, options, "top_p", at, low=0, high=1),
        top_k=OPENAI.integer(options, "top_k", at, minimum=0),
        max_tokens=predict if predict is not None and predict > 0 else None,
        stop=_stop(OPENAI, options, "stop", at),
        seed=OPENAI.integer(options, "seed", at),
        presence_penalty=_number(OPENAI, options, "presence_penalty", at),
        frequency_penalty=_number(OPENAI, options, "frequency_penalty", at))
