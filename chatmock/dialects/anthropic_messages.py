"""Anthropic `system` and `messages` → Codex Responses `instructions` and input items.

Mapping (spec: translation.md §5.3, going beyond go-chatmock, which drops
images, documents and thinking), with these choices:

* `system`, a string or text blocks (`cache_control` ignored), becomes the
  instructions, blocks joined by a blank line;
* a `role: "system"` message inside `messages` (Claude Code's
  mid-conversation system beta) becomes a `developer` message in place;
* consecutive text blocks of one message share one message item; empty
  texts are skipped;
* a user turn's `tool_result` blocks become `function_call_output` items,
  followed by one user message with the turn's text, images and documents
  (Anthropic requires tool results to come first in a turn, so this keeps the
  order). Tool outputs are strings upstream, so images and PDFs a tool
  returned travel in that user message behind a note naming the call, and
  the output says they follow. `is_error: true` prefixes the output with
  `Error: ` so the model sees the failure;
* `tool_use` → `function_call` (arguments: compact JSON of `input`);
* `thinking` blocks whose `signature` chatmock minted for this account →
  `reasoning` items (the signature wraps the upstream's encrypted reasoning,
  see `chatmock.dialects.signatures`). Any other block is dropped with its
  text: without a signature there is nothing to restore, and a foreign one
  (real Anthropic, another account) would make the backend refuse the whole
  history. `redacted_thinking` (chatmock never sends one) likewise: its
  `data` counts only if chatmock minted it;
* documents: a text or content source → text; a base64 PDF → `input_file`
  with a data URL and a filename; any other source is refused;
* every other shape is refused with a 400 naming the field in Anthropic's
  dotted style (`messages.0.content.1.type: ...`), a wrong type in pydantic's
  words as Anthropic's API answers (`...: Input should be a valid string`).
"""

from __future__ import annotations

import json
from typing import Any

from chatmock.dialects.common import image_url
from chatmock.dialects.fields import ANTHROPIC as fields
from chatmock.dialects.signatures import unwrap
from chatmock.errors import ClientError

Item = dict[str, Any]
ROLES = ("user", "assistant", "system")
PDF = "application/pdf"


def invalid(where: str, message: str) -> ClientError:
    """A 400 `invalid_request_error` naming the field, as Anthropic words them."""
    return fields.invalid(where, message)


def convert_system(system: Any) -> str:
    """The instructions of a `system` field ('' when absent)."""
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise invalid("system", "Input should be a valid string or a list of text blocks")
    texts = [_text_of(block, f"system.{number}") for number, block in enumerate(system)]
    return "\n\n".join(text for text in texts if text)


def convert_messages(messages: Any, account_tag: str = "") -> list[Item]:
    """The input items of a `messages` list (thinking blocks kept only when signed for
    `account_tag`)."""
    if messages is None:
        raise invalid("messages", "Field required")
    if not isinstance(messages, list):
        raise invalid("messages", "Input should be a valid list")
    if not messages:
        raise invalid("messages", "at least one message is required")
    items: list[Item] = []
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise invalid(where, "Input should be a valid dictionary")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(f"{where}.role", "Input should be 'user', 'assistant' or 'system'")
        blocks = _blocks(message.get("content"), where)
        if role == "assistant":
            items.extend(_assistant_items(blocks, where, account_tag))
        elif role == "user":
            items.extend(_user_items(blocks, where))
        else:
            texts = [_text_of(block, f"{where}.content.{n}") for n, block in enumerate(blocks)]
            _append_message(items, "developer", [_input_text(t) for t in texts if t])
    return items


def _blocks(content: Any, where: str) -> list[Item]:
    if content is None:
        raise invalid(f"{where}.content", "Field required")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise invalid(f"{where}.content", "Input should be a valid string or a list of blocks")
    for number, block in enumerate(content):
        at = f"{where}.content.{number}"
        fields.check(block, ("object",), at)
        if fields.string(block, "type", at) is None:
            raise fields.missing(f"{at}.type")
    return content


def _text_of(block: Any, where: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text":
        raise invalid(f"{where}.type", "only text blocks are allowed here")
    text = fields.string(block, "text", where)
    if text is None:
        raise fields.missing(f"{where}.text")
    return text


def _input_text(text: str) -> Item:
    return {"type": "input_text", "text": text}


def _append_message(items: list[Item], role: str, parts: list[Item]) -> None:
    if parts:
        items.append({"type": "message", "role": role, "content": parts})


# -- assistant turns ---------------------------------------------------------------------


def _assistant_items(blocks: list[Item], where: str, account_tag: str) -> list[Item]:
    items: list[Item] = []
    texts: list[Item] = []
    for number, block in enumerate(blocks):
        at = f"{where}.content.{number}"
        kind = block["type"]
        if kind == "text":
            text = _text_of(block, at)
            if text:
                texts.append({"type": "output_text", "text": text})
            continue
        _append_message(items, "assistant", texts)
        texts = []
        if kind == "tool_use":
            items.append(_function_call(block, at))
        elif kind in ("thinking", "redacted_thinking"):
            reasoning = _reasoning(block, at, account_tag)
            if reasoning is not None:
                items.append(reasoning)
        else:
            raise invalid(f"{at}.type", f"blocks of type {kind!r} are not supported in "
                          "assistant messages (text, tool_use, thinking, redacted_thinking)")
    _append_message(items, "assistant", texts)
    return items


def _function_call(block: Item, where: str) -> Item:
    call_id = _required_string(block, "id", where)
    name = _required_string(block, "name", where)
    arguments = block.get("input")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise invalid(f"{where}.input", "Input should be a valid dictionary")
    return {"type": "function_call", "call_id": call_id, "name": name,
            "arguments": json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))}


def _reasoning(block: Item, where: str, account_tag: str) -> Item | None:
    if block["type"] == "redacted_thinking":
        content = unwrap(_required_string(block, "data", where), account_tag)
        return None if content is None else {"type": "reasoning", "summary": [],
                                             "encrypted_content": content}
    thinking = fields.string(block, "thinking", where)
    if thinking is None:
        raise fields.missing(f"{where}.thinking")
    signature = fields.string(block, "signature", where)
    content = unwrap(signature, account_tag) if signature else None
    if content is None:
        return None
    summary = [{"type": "summary_text", "text": thinking}] if thinking else []
    return {"type": "reasoning", "summary": summary, "encrypted_content": content}


def _required_string(block: Item, key: str, where: str) -> str:
    value = fields.string(block, key, where)
    if not value:
        raise fields.missing(f"{where}.{key}")
    return value


# -- user turns --------------------------------------------------------------------------


def _user_items(blocks: list[Item], where: str) -> list[Item]:
    outputs: list[Item] = []
    parts: list[Item] = []
    for number, block in enumerate(blocks):
        at = f"{where}.content.{number}"
        if block["type"] == "tool_result":
            output, attachments = _tool_result(block, at)
            outputs.append(output)
            parts.extend(attachments)
        else:
            parts.extend(_user_parts(block, at))
    _append_message(outputs, "user", parts)
    return outputs


def _user_parts(block: Item, where: str) -> list[Item]:
    kind = block["type"]
    if kind == "text":
        text = _text_of(block, where)
        return [_input_text(text)] if text else []
    if kind == "image":
        return [{"type": "input_image", "image_url": _image_source(block, where)}]
    if kind == "document":
        return _document(block, where)
    raise invalid(f"{where}.type", f"blocks of type {kind!r} are not supported in user "
                  "messages (text, image, document, tool_result)")


def _source(block: Item, where: str) -> Item:
    source = fields.obj(block, "source", where)
    if source is None:
        raise fields.missing(f"{where}.source")
    return source


def _image_source(block: Item, where: str) -> str:
    source = _source(block, where)
    kind = source.get("type")
    if kind == "base64":
        media = _required_string(source, "media_type", f"{where}.source")
        data = _required_string(source, "data", f"{where}.source")
        return image_url(f"data:{media};base64,{data}")
    if kind == "url":
        return _required_string(source, "url", f"{where}.source")
    raise invalid(f"{where}.source.type", f"image sources of type {kind!r} are not supported "
                  "(use base64 or url)")


def _document(block: Item, where: str) -> list[Item]:
    source = _source(block, where)
    kind = source.get("type")
    if kind == "text":
        text = _required_string(source, "data", f"{where}.source")
        return [_input_text(text)]
    if kind == "content":
        blocks = _blocks(source.get("content"), f"{where}.source")
        return [part for number, inner in enumerate(blocks)
                for part in _user_parts(inner, f"{where}.source.content.{number}")]
    if kind == "base64" and source.get("media_type") == PDF:
        data = _required_string(source, "data", f"{where}.source")
        title = fields.string(block, "title", where)
        filename = title if title and title.strip() else "document.pdf"
        return [{"type": "input_file", "filename": filename,
                 "file_data": f"data:{PDF};base64,{data}"}]
    described = f"{kind} ({source.get('media_type')})" if kind == "base64" else repr(kind)
    raise invalid(f"{where}.source", f"document sources of type {described} are not "
                  "supported (use text, content, or a base64 application/pdf)")


def _tool_result(block: Item, where: str) -> tuple[Item, list[Item]]:
    call_id = _required_string(block, "tool_use_id", where)
    content = block.get("content")
    texts: list[str] = []
    attachments: list[Item] = []
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        for number, inner in enumerate(_blocks(content, where)):
            at = f"{where}.content.{number}"
            for part in _user_parts(inner, at):
                if part["type"] == "input_text":
                    texts.append(part["text"])
                else:
                    attachments.append(part)
    output = "\n".join(texts)
    if fields.boolean(block, "is_error", False, where):
        output = f"Error: {output}" if output else "Error"
    if attachments:
        note = f"[{len(attachments)} attachment(s) of this result follow in the next message]"
        output = f"{output}\n{note}" if output else note
        attachments.insert(0, _input_text(f"Attachments returned by tool call {call_id}:"))
    return {"type": "function_call_output", "call_id": call_id, "output": output}, attachments
