"""Legacy Completions (`POST /v1/completions`) ⇄ Codex Responses.

Request (spec: translation.md §3, §1.2, §1.7): the prompt becomes one user
message and nothing else is sent (no instructions, no tools). Choices where
the references fall short:

* `prompt` is a string, or a list of strings joined with no separator (a
  one-element list is the common form); token-id arrays cannot be
  expressed upstream and are refused, as is a missing or empty prompt;
* what would silently change the answer's meaning is refused with a 400
  instead of ignored: `echo`, a non-empty `suffix` (insert mode), `n` > 1 and
  `best_of` > 1;
* sampling fields (`max_tokens`, `temperature`, `top_p`, `stop`, `seed`,
  penalties) are checked and carried beside the payload as `sampling`, for
  chat-completions providers, as on the chat route (the Codex backend
  rejects them); `logprobs`, `logit_bias`, `user` are dropped;
* `reasoning` / `reasoning_effort` / a model-name suffix, `fast_mode` /
  `service_tier` and `stream_options.include_usage` work as on the chat route.

Response: chunks and the whole object both use `"object": "text_completion"`
(what OpenAI sends and its SDK's `Completion` model requires, not the
`text_completion.chunk` of the references). Text deltas are copied into the
chunk bytes still escaped (`chatmock.jsonbytes`), reasoning is never shown,
the text of several message items is joined by a blank line (as on the chat
route), and exactly one chunk carries a `finish_reason` (`stop`, `length`
for an incomplete response, `content_filter`), sent at the terminal event.
The optional usage chunk has `choices: []`; failures and cut streams end with
`data: {"error": …}` and `[DONE]`. The non-stream object is rendered from the
chat route's `ResponseCollector`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatmock.catalog import Catalog
from chatmock.dialects.chat_stream import (
    OpenAIChunkStream,
    fallback_id,
    finish_reason,
)
from chatmock.dialects.common import (
    REASONING_INCLUDE,
    body_reasoning,
    include_usage,
    refuse_choices,
    requested_model,
    service_tier,
)
from chatmock.dialects.events import UpstreamTranslator, map_usage
from chatmock.dialects.fields import OPENAI as fields
from chatmock.dialects.options import Options
from chatmock.dialects.sampling import NONE, Sampling, openai_sampling
from chatmock.errors import ClientError

if TYPE_CHECKING:
    from chatmock.dialects.collectors import ResponseCollector


ID_PREFIX = "cmpl"
_NEWLINE = b"\\n"
_UNSUPPORTED = "unsupported_parameter"


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A validated legacy completion request, ready to go upstream."""

    payload: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    sampling: Sampling = NONE  # for chat-completions providers, never in the payload


def parse_completion_request(body: Any, catalog: Catalog,
                             options: Options) -> CompletionRequest:
    if not isinstance(body, dict):
        raise ClientError("Request body must be a JSON object")
    model, resolved = requested_model(body, catalog, options)
    prompt = prompt_text(body.get("prompt"))
    _refuse_unsupported(body)
    payload: dict[str, Any] = {
        "model": resolved.slug,
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": prompt}]}],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "store": False,
        "stream": True,
        "include": [REASONING_INCLUDE],
        "reasoning": body_reasoning(body, resolved, catalog, options),
    }
    tier = service_tier(body, resolved, catalog, options)
    if tier:
        payload["service_tier"] = tier
    return CompletionRequest(payload, model, fields.boolean(body, "stream", False),
                             include_usage(body), openai_sampling(body))


def prompt_text(prompt: Any) -> str:
    """The text of `prompt`: a string, or a list of strings joined with no separator."""
    if isinstance(prompt, list):
        if any(_is_tokens(part) for part in prompt):
            raise ClientError("prompt: token arrays are not supported; send the prompt as text",
                              code="invalid_prompt", param="prompt")
        for number, part in enumerate(prompt):
            fields.check(part, ("string",), f"prompt[{number}]")
        prompt = "".join(prompt)
    if prompt is None:
        raise ClientError("prompt is required", code="invalid_prompt", param="prompt")
    fields.check(prompt, ("string", "array"), "prompt")
    if not prompt:
        raise ClientError("prompt must not be empty", code="invalid_prompt", param="prompt")
    return str(prompt)


def _is_tokens(part: Any) -> bool:
    """A token id, or a list of them (one prompt of a batch of token prompts)."""
    if isinstance(part, list):
        return bool(part) and all(_is_tokens(token) and not isinstance(token, list)
                                  for token in part)
    return isinstance(part, int) and not isinstance(part, bool)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if fields.boolean(body, "echo", False):
        raise ClientError("echo is not supported: the backend cannot return the prompt with "
                          "the completion", code=_UNSUPPORTED, param="echo")
    if fields.string(body, "suffix"):
        raise ClientError("suffix is not supported (insert mode is not available)",
                          code=_UNSUPPORTED, param="suffix")
    refuse_choices(body, ("n", "best_of"))


# -- streaming --------------------------------------------------------------------------


_EVENTS = (b"response.created", b"response.output_item.added", b"response.output_text.delta",
           b"response.completed", b"response.incomplete", b"response.failed", b"error")


class CompletionStreamTranslator(OpenAIChunkStream):
    """Streaming legacy completions; see the module docstring."""

    object_name = b"text_completion"
    choice_start = b',"choices":[{"index":0,"text":"'
    id_prefix = ID_PREFIX
    # Reasoning and tool events are not even looked at: nothing of them is shown.
    handlers = {kind: UpstreamTranslator.handlers[kind] for kind in _EVENTS}

    def _choice(self, raw: bytes, reason: bytes) -> None:
        self._ensure_open()
        self.out.append(self._prefix + raw + b'","logprobs":null,"finish_reason":' + reason
                        + b"}]}\n\n")

    def on_item_added(self, item: dict[str, Any]) -> None:
        self._note_item(item)

    def on_text(self, raw: bytes) -> None:
        self._choice(self._text(raw), b"null")

    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None:
        self._ensure_open(response)
        reason = finish_reason(response, incomplete, saw_tool_call=False)
        self._choice(b"", b'"' + reason.encode() + b'"')
        self._end(response)


# -- non-streaming ----------------------------------------------------------------------


def text_completion(collected: ResponseCollector, *, model: str, created: int) -> dict[str, Any]:
    """The non-stream `text_completion` object of a collected answer."""
    result: dict[str, Any] = {
        "id": collected.response_id or fallback_id(ID_PREFIX), "object": "text_completion",
        "created": created, "model": model,
        "choices": [{"index": 0, "text": collected.text, "logprobs": None,
                     "finish_reason": finish_reason(collected.response, collected.incomplete,
                                                    saw_tool_call=False)}]}
    usage = map_usage(collected.response.get("usage"))
    if usage is not None:
        result["usage"] = usage
    return result
