"""Codex Responses events → Anthropic Messages, streamed (SSE events) or whole.

Both renderings share one content-block state machine (`Blocks`), so a
streamed message and a non-stream one carry the same blocks in the same order:

* each reasoning item → a `thinking` block (opened when the item starts, so a
  client shows "thinking" at once), its summary deltas as `thinking_delta`s
  (later summary parts preceded by "\\n", as in chat; raw `reasoning_text`
  deltas, rare here, join the same block after a blank line), and one
  `signature_delta` before the stop carrying the item's `encrypted_content`,
  tagged as chatmock's for this account (`chatmock.dialects.signatures`): a
  thinking block sent back next turn restores the reasoning from it, and a
  block chatmock did not mint can be told apart. An item without
  `encrypted_content` gets the empty signature `""`
  (nothing to restore; the request side can drop such blocks). Blocks are
  only rendered when the client asked for thinking; the collector keeps them
  and `message_object` filters.
* each message item (a `commentary` preamble, the final answer) → its own
  `text` block, opened by its first delta and closed when the item is done;
  the deltas are copied still escaped.
* each function call → a `tool_use` block opened when the item starts, with
  `input_json_delta`s as the argument deltas arrive (raw copies); if none
  came, the item's full arguments in one delta when it is done.
* a custom (freeform) tool call → a `tool_use` block whose input is
  `{"input": "<the freeform text>"}`, sent whole when the call is done.
* server-side web searches are not surfaced (the client did not define such
  a tool; the results are part of the answer's text), as in chat. Their
  `url_citation` annotations are dropped: an Anthropic text-block citation
  (`web_search_result_location`) must carry the source's `cited_text` and an
  `encrypted_index` that only Anthropic's own search issues, and the backend
  gives neither; the links stay in the text as the model wrote them.

Exactly one block is open at a time and indexes count up from 0: the
official SDKs index their snapshot by `index` and reject overlap.

Stream framing: `message_start` + `ping` on `response.created`; `ping` as
heartbeat every 10 s (before `message_start` an SSE comment instead, since
some clients want `message_start` first); `message_delta` (stop reason and
usage) + `message_stop` at the end. A failure writes only `event: error`
after whatever was already sent, open blocks left open, as Anthropic does.

Usage follows Anthropic's split: `input_tokens` excludes cached tokens,
which are reported as `cache_read_input_tokens` (the upstream counts them
inside `input_tokens`); `cache_creation_input_tokens` is always 0.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any, ClassVar

from chatmock import jsonbytes
from chatmock.dialects.chat_stream import KEEP_ALIVE
from chatmock.dialects.events import (
    TOOL_CALLS,
    UpstreamTranslator,
    arguments_of,
    content_filtered,
    failure_kind,
)
from chatmock.dialects.machine import BLOCKS, Block, BlockMove, Paragraphs
from chatmock.dialects.signatures import mint

if TYPE_CHECKING:
    from chatmock.dialects.collectors import CollectedBlock, MessagesCollector


# Enum members as module constants: reading one off its class costs ~70 ns on Python 3.11,
# and these are read for every delta.
_NONE, _TEXT, _THINKING, _TOOL_USE = Block.NONE, Block.TEXT, Block.THINKING, Block.TOOL_USE
_CLOSE = BlockMove.CLOSE

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_NEWLINE = b"\\n"
_DELTA_END = b'"}}\n\n'
_DELTA_HEAD = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
               b'"delta":{"type":"')
_DELTA_FIELD = {"text": b'text_delta","text":"', "thinking": b'thinking_delta","thinking":"',
                "tool_use": b'input_json_delta","partial_json":"'}
_EMPTY_BLOCK = {"text": {"type": "text", "text": ""},
                "thinking": {"type": "thinking", "thinking": "", "signature": ""}}


def message_id(response_id: str) -> str:
    """The upstream response id is the message id (stable across stream and non-stream,
    and traceable in logs); a random `msg_` id only when the backend gave none."""
    return response_id or f"msg_{secrets.token_hex(12)}"


def stop_reason(response: dict[str, Any], incomplete: bool, saw_tool_use: bool) -> str:
    """`max_tokens` (or `refusal` for a content filter) when cut short, else by content."""
    if incomplete:
        return "refusal" if content_filtered(response) else "max_tokens"
    return "tool_use" if saw_tool_use else "end_turn"


def usage_of(response: dict[str, Any], input_estimate: int) -> dict[str, Any]:
    """Responses usage → Anthropic usage (see the module docstring); the estimate and
    zeros when the backend reported none."""
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return {"input_tokens": input_estimate, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": 0}
    cached = _tokens(usage.get("input_tokens_details"), "cached_tokens")
    mapped: dict[str, Any] = {
        "input_tokens": max(0, _tokens(usage, "input_tokens") - cached),
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached,
        "output_tokens": _tokens(usage, "output_tokens")}
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and "reasoning_tokens" in details:
        mapped["output_tokens_details"] = {
            "thinking_tokens": _tokens(details, "reasoning_tokens")}
    return mapped


def _tokens(parent: Any, key: str) -> int:
    value = parent.get(key) if isinstance(parent, dict) else None
    try:
        return max(0, int(value)) if value is not None else 0
    except (TypeError, ValueError, OverflowError):
        return 0


def error_type(code: str) -> str:
    """Anthropic's error type for an upstream error code (`events.failure_kind`):
    `invalid_request_error` for a prompt beyond the context window or flagged,
    `rate_limit_error`, `overloaded_error` (also a `server_error`),
    `authentication_error`, else `api_error`."""
    return f"{failure_kind(code)}_error"


def error_event(message: str, code: str) -> bytes:
    body = {"type": "error", "error": {"type": error_type(code), "message": message}}
    return b"event: error\ndata: " + jsonbytes.dumps(body) + b"\n\n"



def _call_key(item: dict[str, Any]) -> str:
    return str(item.get("id") or item.get("call_id") or "")


class Blocks(UpstreamTranslator):
    """The content-block state machine; subclasses render `_begin`, `_append`, `_end`."""

    def __init__(self, *, thinking: bool, account_tag: str = "") -> None:
        super().__init__()
        self.thinking = thinking
        self.account_tag = account_tag  # signatures are minted for this account
        self.index = -1  # of the last block begun
        self.block = _NONE  # the open block (machine.BLOCKS: one at a time)
        self.saw_tool_use = False
        self._open_call = ""  # item key of the open tool_use block
        self._calls: set[str] = set()  # item keys of every tool_use block begun
        self._streamed = False  # the open tool_use block got argument deltas
        self._paragraphs = Paragraphs()
        self._reasoning_kind: bool | None = None  # summary? of the last thinking delta

    # -- rendering (subclasses) -------------------------------------------------

    def _begin(self, kind: str, block: dict[str, Any]) -> None: ...
    def _append(self, raw: bytes) -> None: ...
    def _end(self, signature: str | None) -> None: ...

    # -- block moves --------------------------------------------------------------

    def _start(self, move: BlockMove, block: dict[str, Any]) -> None:
        self._close()
        self.index += 1
        self.block = BLOCKS.next(self.block, move)
        self._begin(self.block.value, block)

    def _close(self, signature: str = "") -> None:
        if self.block is not _NONE:
            self._end(signature if self.block is _THINKING else None)
            self.block = BLOCKS.next(self.block, _CLOSE)

    def _start_thinking(self) -> None:
        self._start(BlockMove.THINKING, _EMPTY_BLOCK["thinking"])
        self._paragraphs = Paragraphs()
        self._reasoning_kind = None

    def _start_call(self, item: dict[str, Any]) -> None:
        self.saw_tool_use = True
        self._start(BlockMove.TOOL_USE, {"type": "tool_use",
                                         "id": item.get("call_id") or _call_key(item),
                                         "name": item.get("name") or "", "input": {}})
        self._open_call = _call_key(item)
        self._calls.add(self._open_call)
        self._streamed = False

    # -- hooks --------------------------------------------------------------------

    def on_item_added(self, item: dict[str, Any]) -> None:
        self._close()
        kind = item.get("type")
        if kind == "reasoning" and self.thinking:
            self._start_thinking()
        elif kind in TOOL_CALLS:
            self._start_call(item)

    def on_text(self, raw: bytes) -> None:
        if self.block is not _TEXT:
            self._start(BlockMove.TEXT, _EMPTY_BLOCK["text"])
        self._append(raw)

    def on_summary_part(self) -> None:
        self._paragraphs.part()

    def on_reasoning(self, raw: bytes, summary: bool) -> None:
        if self.block is not _THINKING:
            # Also without thinking, so text blocks split the same whether or not
            # thinking blocks are shown (the collector always keeps them).
            self._close()
            if not self.thinking:
                return
            self._start_thinking()
        new_paragraph = summary and self._paragraphs.take()
        if self._reasoning_kind is not None and self._reasoning_kind != summary:
            raw = _NEWLINE + _NEWLINE + raw
        elif new_paragraph:
            raw = _NEWLINE + raw
        self._reasoning_kind = summary
        self._append(raw)

    def on_arguments(self, item_id: bytes, raw: bytes) -> None:
        if self.block is _TOOL_USE and jsonbytes.decode_string(item_id) == self._open_call:
            self._streamed = True
            self._append(raw)

    def on_item_done(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind in TOOL_CALLS:
            self._call_done(item)
        elif kind == "reasoning" and self.thinking:
            content = item.get("encrypted_content")
            if self.block is not _THINKING:  # no `added` event: a block for the signature
                self._start_thinking()
            self._close(mint(content, self.account_tag) if isinstance(content, str) else "")
        elif kind == "message" and self.block is _TEXT:
            self._close()

    def _call_done(self, item: dict[str, Any]) -> None:
        """Full arguments unless they were streamed. Blocks cannot reopen, so a call whose
        block another item closed first keeps only what it had by then (the backend
        streams items one after another; chat handles interleaving, this cannot)."""
        if self.block is not _TOOL_USE or self._open_call != _call_key(item):
            if _call_key(item) in self._calls:
                return
            self._start_call(item)
        arguments = arguments_of(item)
        if not self._streamed and arguments:
            self._append(jsonbytes.escape(arguments))
        self._close()


class MessagesStreamTranslator(Blocks):
    """Streaming Anthropic Messages; see the module docstring."""

    heartbeat_seconds: ClassVar[float] = 10.0

    def __init__(self, *, model: str, thinking: bool, input_tokens: int,
                 account_tag: str = "") -> None:
        super().__init__(thinking=thinking, account_tag=account_tag)
        self.model = model
        self.input_tokens = input_tokens
        self.started = False
        self._delta_prefix = b""

    def heartbeat(self) -> bytes:
        return PING if self.started else KEEP_ALIVE

    def _message_start(self, response_id: str) -> None:
        self.started = True
        usage = {"input_tokens": self.input_tokens, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0, "output_tokens": 0}
        message: dict[str, Any] = {
            "id": message_id(response_id), "type": "message", "role": "assistant",
            "model": self.model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": usage}
        self.out.append(b'event: message_start\ndata: {"type":"message_start","message":'
                        + jsonbytes.dumps(message) + b"}\n\n" + PING)

    def _begin(self, kind: str, block: dict[str, Any]) -> None:
        if not self.started:
            self._message_start("")
        self.out.append(b'event: content_block_start\ndata: {"type":"content_block_start",'
                        b'"index":%d,"content_block":' % self.index
                        + jsonbytes.dumps(block) + b"}\n\n")
        self._delta_prefix = _DELTA_HEAD % self.index + _DELTA_FIELD[kind]

    def _append(self, raw: bytes) -> None:
        self.out.append(self._delta_prefix + raw + _DELTA_END)

    def _end(self, signature: str | None) -> None:
        if signature is not None:
            self.out.append(_DELTA_HEAD % self.index + b'signature_delta","signature":'
                            + jsonbytes.quote(signature) + b"}}\n\n")
        self.out.append(b'event: content_block_stop\ndata: {"type":"content_block_stop",'
                        b'"index":%d}\n\n' % self.index)

    def on_created(self, response: dict[str, Any]) -> None:
        if not self.started:
            self._message_start(str(response.get("id") or ""))

    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None:
        if not self.started:
            self._message_start(str(response.get("id") or ""))
        self._close()
        delta = {"stop_reason": stop_reason(response, incomplete, self.saw_tool_use),
                 "stop_sequence": None}
        body = {"type": "message_delta", "delta": delta,
                "usage": usage_of(response, self.input_tokens)}
        self.out.append(b"event: message_delta\ndata: " + jsonbytes.dumps(body) + b"\n\n"
                        + MESSAGE_STOP)

    def on_failed(self, message: str, code: str) -> None:
        self.out.append(error_event(message, code))


def tool_input(arguments: str) -> dict[str, Any]:
    """Parsed arguments object; `{}` when empty, `{"raw": …}` when not a JSON object."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"raw": arguments}
    return value if isinstance(value, dict) else {"raw": arguments}


def _render(block: CollectedBlock) -> dict[str, Any]:
    text = jsonbytes.decode_string(b"".join(block.pieces))
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": text, "signature": block.signature}
    if block.kind == "tool_use":
        return {**block.meta, "input": tool_input(text)}
    return {"type": "text", "text": text}


def message_object(collector: MessagesCollector, *, model: str, thinking: bool,
                   input_tokens: int = 0) -> dict[str, Any]:
    """The non-stream Anthropic message of a collected answer (`input_tokens`: the
    estimate reported when the backend gave no usage)."""
    content = [_render(block) for block in collector.blocks
               if thinking or block.kind != "thinking"]
    return {"id": message_id(collector.response_id), "type": "message", "role": "assistant",
            "model": model, "content": content,
            "stop_reason": stop_reason(collector.response, collector.incomplete,
                                       collector.saw_tool_use),
            "stop_sequence": None, "usage": usage_of(collector.response, input_tokens)}
