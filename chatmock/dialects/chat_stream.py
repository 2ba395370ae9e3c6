"""Codex Responses events → Chat Completions, streamed (SSE chunks) or whole.

Streaming chunk bytes are assembled from a per-stream prefix, the delta's
JSON and a fixed suffix; text, reasoning and argument deltas are copied in
still escaped (see `chatmock.jsonbytes`), so a delta costs a few byte
concatenations and no JSON work.

Stream contract kept here: the first chunk carries `role: "assistant"`;
tool calls get a stable `index` in order of appearance, their name in the
first chunk and their arguments as the backend streams them; exactly one
`finish_reason` ends the choice (`tool_calls` if any call was made, `length`
for an incomplete response, else `stop`); the optional usage chunk has
`choices: []`; failures become `data: {"error": …}` followed by `[DONE]`.

Reasoning reaches the client per `--reasoning-compat` (spec §1.3):
`think-tags` wraps it in `<think>…</think>` inside `content` (the block is
closed by the first visible text or tool call and never reopened, so later
reasoning is dropped), `o3` sends `delta.reasoning.content[].text`, `legacy`
sends `reasoning_summary` and `reasoning` strings.

The text of several message items (a `commentary` preamble, then the final
answer) is joined by a blank line. Custom tool calls come as function tool
calls with the arguments `{"input": "<freeform text>"}`, whole when the call
is done (see `chatmock.dialects.chat`). Web-search citations (`url_citation`
annotations of the backend's text) become the message's `annotations` in
OpenAI's Chat shape (`{"type": "url_citation", "url_citation": {start_index,
end_index, url, title}}`), their indices moved to where the item's text sits
in `content`; streamed, they come in one `delta.annotations` chunk when the
item is done. The position is known from finished items alone (`ContentPlaces`),
so no delta is ever counted. Server-side web searches are not reported
as tool calls: the client did not define such a tool and could not answer it;
their results are already part of the answer's text.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, ClassVar

from chatmock import jsonbytes
from chatmock.dialects.errors import failure_type
from chatmock.dialects.events import (
    TOOL_CALLS,
    UpstreamTranslator,
    arguments_of,
    content_filtered,
    map_usage,
)
from chatmock.dialects.machine import CLOSE, CLOSED, OPEN, REASON, THINK_TAGS, UNOPENED, Paragraphs

if TYPE_CHECKING:
    from chatmock.dialects.collectors import ResponseCollector


DONE_LINE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"  # an SSE comment: every client skips it
_NEWLINE = b"\\n"
_DELTA_END = b',"finish_reason":null}]}\n\n'  # after a chunk's delta object
_CONTENT_END = b'"}' + _DELTA_END  # after a content delta's text


def fallback_id(prefix: str = "chatcmpl") -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def error_chunk(message: str, code: str, error_type: str = "api_error") -> bytes:
    return b"data: " + jsonbytes.dumps({"error": {"message": message, "type": error_type,
                                                  "param": None, "code": code}}) + b"\n\n"


class ReasoningFormat:
    """Where reasoning text goes in a chat delta or message, per compat mode."""

    __slots__ = ("compat",)  # one per open stream: no instance dict (issue 13)

    def __init__(self, compat: str) -> None:
        self.compat = compat

    def delta(self, raw: bytes, summary: bool) -> bytes:
        """Delta JSON for reasoning in `o3` / `legacy` modes."""
        if self.compat == "o3":
            return b'{"reasoning":{"content":[{"type":"text","text":"' + raw + b'"}]}}'
        if summary:
            return b'{"reasoning_summary":"' + raw + b'","reasoning":"' + raw + b'"}'
        return b'{"reasoning":"' + raw + b'"}'


class OpenAIChunkStream(UpstreamTranslator):
    """The skeleton every OpenAI chunk stream shares: a per-stream chunk head built
    once, a blank line between message items, the usage chunk, `[DONE]`, and failures
    as an in-band error chunk. Subclasses say what a choice looks like."""

    object_name: ClassVar[bytes]
    choice_start: ClassVar[bytes]  # after the head, up to the choice's varying part
    id_prefix: ClassVar[str] = "chatcmpl"

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        super().__init__()
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self._prefix = b""  # the chunk's head and `choice_start`, once the id is known
        self._text_sent = False
        self._separator_due = False

    def heartbeat(self) -> bytes:
        return KEEP_ALIVE

    def _open(self, response_id: str) -> None:
        self._prefix = (b'data: {"id":' + jsonbytes.quote(response_id) + b',"object":"'
                        + self.object_name + b'","created":%d,"model":' % self.created
                        + jsonbytes.quote(self.model) + self.choice_start)

    def _ensure_open(self, response: dict[str, Any] | None = None) -> None:
        if not self._prefix:
            self._open(str((response or {}).get("id") or fallback_id(self.id_prefix)))

    def on_created(self, response: dict[str, Any]) -> None:
        self._ensure_open(response)

    def _note_item(self, item: dict[str, Any]) -> None:
        if item.get("type") == "message" and self._text_sent:
            self._separator_due = True

    def _text(self, raw: bytes) -> bytes:
        """A text delta, set apart from an earlier message item's text by a blank line."""
        self._text_sent = True
        if self._separator_due:
            self._separator_due = False
            return _NEWLINE + _NEWLINE + raw
        return raw

    def _end(self, response: dict[str, Any]) -> None:
        """After the finish chunk: the usage chunk if asked for, then `[DONE]`."""
        usage = map_usage(response.get("usage"))
        if self.include_usage and usage is not None:
            head = self._prefix[:-len(self.choice_start)]  # not kept per stream: used once
            self.out.append(head + b',"choices":[],"usage":' + jsonbytes.dumps(usage)
                            + b"}\n\n")
        self.out.append(DONE_LINE)

    def on_failed(self, message: str, code: str) -> None:
        self.out.append(error_chunk(message, code, failure_type(code)))
        self.out.append(DONE_LINE)


def chat_annotations(item: dict[str, Any], start: int) -> list[dict[str, Any]]:
    """The `url_citation` annotations of a message item's text parts, in Chat's shape,
    with indices moved by `start` (where the item's text begins in the content)."""
    found: list[dict[str, Any]] = []
    for part in _text_parts(item):
        notes = part.get("annotations")
        for note in notes if isinstance(notes, list) else ():
            if isinstance(note, dict) and note.get("type") == "url_citation":
                cited = {key: note.get(key) for key in ("url", "title")}
                for key in ("start_index", "end_index"):
                    index = note.get(key)
                    cited[key] = start + index if isinstance(index, int) else start
                found.append({"type": "url_citation", "url_citation": cited})
        start += len(str(part.get("text") or ""))
    return found


def message_text(item: dict[str, Any]) -> str:
    return "".join(str(part.get("text") or "") for part in _text_parts(item))


def _text_parts(item: dict[str, Any]) -> list[dict[str, Any]]:
    content = item.get("content")
    return [part for part in content if isinstance(part, dict)
            and part.get("type") == "output_text"] if isinstance(content, list) else []


class ContentPlaces:
    """Where a message item's text starts in the streamed `content`, from finished items
    only: each message item's text, a blank line before an item that follows text, and
    a `<think>` block's length (its reasoning items' texts plus the paragraph breaks the
    translator added) once it closes."""

    __slots__ = ("before", "separated", "think")

    def __init__(self) -> None:
        self.before = 0  # characters before the current message item's text
        self.think = 0
        self.separated = False

    def message_added(self, after_text: bool) -> None:
        self.separated = after_text

    def reasoning_done(self, item: dict[str, Any]) -> None:
        for key in ("summary", "content"):
            parts = item.get(key)
            self.think += sum(len(str(part.get("text") or "")) for part in parts
                              if isinstance(part, dict)) if isinstance(parts, list) else 0

    def think_closed(self) -> None:
        self.before += len("<think></think>") + self.think

    def message_done(self, item: dict[str, Any]) -> int:
        """The item's start; moves past its text."""
        text = message_text(item)
        start = self.before + (2 if self.separated and text else 0)
        self.before = start + len(text)
        return start


class ChatStreamTranslator(OpenAIChunkStream):
    """Streaming Chat Completions; see the module docstring."""

    object_name = b"chat.completion.chunk"
    choice_start = b',"choices":[{"index":0,"delta":'

    def __init__(self, *, model: str, created: int, compat: str, include_usage: bool) -> None:
        super().__init__(model=model, created=created, include_usage=include_usage)
        self.reasoning = ReasoningFormat(compat)
        self.think_tags = compat == "think-tags"
        self._think = UNOPENED if self.think_tags else CLOSED
        self._paragraphs = Paragraphs()
        self._tool_index: dict[str, int] = {}
        # Calls whose arguments came as deltas; made at the first (an empty set is 216 B
        # per open stream, and most streams call no tool).
        self._streamed_arguments: set[str] | None = None
        self._saw_tool_call = False
        self._places = ContentPlaces()

    # -- chunk assembly -------------------------------------------------------

    def _open(self, response_id: str) -> None:
        super()._open(response_id)
        self.out.append(self._prefix + b'{"role":"assistant","content":""},'
                        b'"finish_reason":null}]}\n\n')

    def _chunk(self, delta: bytes) -> None:
        self._ensure_open()
        self.out.append(self._prefix + delta + _DELTA_END)

    def _content(self, raw: bytes) -> None:
        self._chunk(b'{"content":"' + raw + b'"}')

    def _close_think(self) -> bytes:
        was = self._think
        if was is CLOSED:  # THINK_TAGS' (CLOSED, CLOSE) move, on every text delta
            return b""
        self._think = THINK_TAGS.next(was, CLOSE)
        if was is OPEN:
            self._places.think_closed()
            return b"</think>"
        return b""

    # -- hooks ----------------------------------------------------------------

    def on_text(self, raw: bytes) -> None:
        if self._think is CLOSED and self._prefix and not self._separator_due:
            # The usual delta, in one piece: what `_content` writes when nothing is
            # to close, open or set apart (every paced event pays for each call).
            self._text_sent = True
            self.out.append(self._prefix + b'{"content":"' + raw + _CONTENT_END)
            return
        self._content(self._close_think() + self._text(raw))

    def on_summary_part(self) -> None:
        self._paragraphs.part()

    def on_reasoning(self, raw: bytes, summary: bool) -> None:
        if summary and self._paragraphs.take() and self.reasoning.compat != "legacy":
            raw = _NEWLINE + raw
            if self._think is not CLOSED:
                self._places.think += 1
        if not self.think_tags:
            self._chunk(self.reasoning.delta(raw, summary))
            return
        was = self._think
        self._think = THINK_TAGS.next(was, REASON)
        if was is UNOPENED:
            self._content(b"<think>" + raw)
        elif was is OPEN:
            self._content(raw)

    def on_item_added(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind in TOOL_CALLS:
            self._start_call(item, arguments="")
            return
        if kind == "message":
            self._places.message_added(self._text_sent)
        self._note_item(item)

    def on_arguments(self, item_id: bytes, raw: bytes) -> None:
        key = jsonbytes.decode_string(item_id)
        index = self._tool_index.get(key)
        if index is None:
            return
        if self._streamed_arguments is None:
            self._streamed_arguments = set()
        self._streamed_arguments.add(key)
        self._chunk(b'{"tool_calls":[{"index":%d,"function":{"arguments":"' % index
                    + raw + b'"}}]}')

    def on_item_done(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "message":
            self._annotate(item)
        elif kind == "reasoning" and self._think is OPEN:
            self._places.reasoning_done(item)
        if kind not in TOOL_CALLS:
            return
        key = str(item.get("id") or item.get("call_id") or "")
        arguments = arguments_of(item)
        if key not in self._tool_index:
            self._start_call(item, arguments)
        elif key not in (self._streamed_arguments or ()) and arguments:
            index = self._tool_index[key]
            self._chunk(b'{"tool_calls":[{"index":%d,"function":{"arguments":' % index
                        + jsonbytes.quote(arguments) + b"}}]}")

    def _annotate(self, item: dict[str, Any]) -> None:
        annotations = chat_annotations(item, self._places.message_done(item))
        if annotations:
            self._chunk(b'{"annotations":' + jsonbytes.dumps(annotations) + b"}")

    def _start_call(self, item: dict[str, Any], arguments: str) -> None:
        key = str(item.get("id") or item.get("call_id") or "")
        index = self._tool_index.setdefault(key, len(self._tool_index))
        self._saw_tool_call = True
        close = self._close_think()
        if close:
            self._content(close)
        call = {"index": index, "id": item.get("call_id") or key, "type": "function",
                "function": {"name": item.get("name") or "", "arguments": arguments}}
        self._chunk(b'{"tool_calls":[' + jsonbytes.dumps(call) + b"]}")

    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None:
        close = self._close_think()
        if close:
            self._content(close)
        self._ensure_open(response)
        reason = finish_reason(response, incomplete, self._saw_tool_call)
        self.out.append(self._prefix + b'{},"finish_reason":"' + reason.encode() + b'"}]}\n\n')
        self._end(response)


def finish_reason(response: dict[str, Any], incomplete: bool, saw_tool_call: bool) -> str:
    if incomplete:
        return "content_filter" if content_filtered(response) else "length"
    return "tool_calls" if saw_tool_call else "stop"



def chat_completion(collected: ResponseCollector, *, model: str, created: int,
                    compat: str) -> dict[str, Any]:
    """The non-stream Chat Completions object of a collected answer."""
    message: dict[str, Any] = {"role": "assistant", "content": collected.text or None}
    if collected.tool_calls:
        message["tool_calls"] = [
            {"id": call["id"], "type": "function",
             "function": {"name": call["name"], "arguments": call["arguments"]}}
            for call in collected.tool_calls]
    plain = len(message["content"] or "")
    _apply_reasoning(message, collected.summary, collected.full_reasoning, compat)
    if collected.annotations:
        message["annotations"] = shifted(collected.annotations,
                                         len(message["content"] or "") - plain)
    result: dict[str, Any] = {
        "id": collected.response_id or fallback_id(), "object": "chat.completion",
        "created": created, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(collected.response, collected.incomplete,
                                                    bool(collected.tool_calls))}]}
    usage = map_usage(collected.response.get("usage"))
    if usage is not None:
        result["usage"] = usage
    return result


def shifted(annotations: list[dict[str, Any]], by: int) -> list[dict[str, Any]]:
    """Chat annotations with their indices moved by `by` (text put before the answer)."""
    return [{**note, "url_citation": {**note["url_citation"],
                                      "start_index": note["url_citation"]["start_index"] + by,
                                      "end_index": note["url_citation"]["end_index"] + by}}
            for note in annotations]


def _apply_reasoning(message: dict[str, Any], summary: str, full: str, compat: str) -> None:
    if not (summary or full):
        return
    if compat == "think-tags":
        combined = "\n\n".join(part for part in (summary, full) if part)
        message["content"] = f"<think>{combined}</think>" + (message["content"] or "")
    elif compat == "o3":
        combined = "\n\n".join(part for part in (summary, full) if part)
        message["reasoning"] = {"content": [{"type": "text", "text": combined}]}
    else:
        if summary:
            message["reasoning_summary"] = summary
        if full:
            message["reasoning"] = full
