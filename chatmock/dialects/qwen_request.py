"""Codex Responses payload → a chat.qwen.ai web completion (providers.md §3.3, §3.4, §3.6).

The web API takes exactly one new user message per request and keeps the
history itself, so a conversation reaches it in one of two ways:

* a fresh chat (`POST /api/v2/chats/new`, `new_chat_body`): the instructions
  and every earlier turn are folded into the text of the one message
  (`fold_content`), under plain headings; a lone user message with no
  instructions is sent as it is;
* a chat that already holds the first `since` input items (the caller keeps
  the chat id, the last `response_id` and that count): only the newer items are
  sent, with `parent_id` = that response id. `can_continue` says whether the
  newer items are user-side only (user messages, tool results); if not, the
  caller starts a fresh chat.

What the web API cannot take is a 400 naming the provider: images and files
(they need the web app's upload flow), function tools (unless `tool_choice` is
`none`: then they are left out) and other tool types. A `web_search` tool
turns the chat type to `search`. Structured output is asked for in the folded
text (the web API has no parameter for it). Reasoning effort picks the
thinking mode: none/minimal → Fast (no thinking), low/medium → Auto,
high and above → Thinking; thinking text comes as the `think` phase
(`thinking_format: "detail"`, incremental), answers with `output_schema:
"phase"` so that deltas carry their phase.

`web_headers` are the browser headers the web API (and its WAF) expect.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from chatmock.errors import ClientError

Item = dict[str, Any]
Header = tuple[bytes, bytes]
WEB_VERSION = "0.2.83"
BX_VERSION = "2.5.36"
USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/140.0.0.0 Safari/537.36")
_ASSISTANT_SIDE = ("function_call", "reasoning", "web_search_call")


def new_chat_body(model: str, now: float) -> dict[str, Any]:
    """The body of `POST /api/v2/chats/new`."""
    return {"title": "New Chat", "models": [model], "chat_mode": "normal", "chat_type": "t2t",
            "timestamp": int(now * 1000), "project_id": "", "chatId": ""}


def web_headers(base_url: str, chat_id: str | None, *, stream: bool, now: float | None = None,
                request_id: str | None = None) -> list[Header]:
    """The browser's headers for one call (credentials come from the provider)."""
    stamp = time.gmtime(time.time() if now is None else now)
    zone = time.strftime("%a %b %d %Y %H:%M:%S GMT+0000", stamp)
    origin = base_url.rstrip("/")
    return [(b"user-agent", USER_AGENT.encode()),
            (b"accept", b"text/event-stream" if stream else b"application/json"),
            (b"content-type", b"application/json"),
            (b"source", b"web"), (b"version", WEB_VERSION.encode()),
            (b"bx-v", BX_VERSION.encode()), (b"timezone", zone.encode()),
            (b"x-request-id", (request_id or str(uuid.uuid4())).encode()),
            (b"x-accel-buffering", b"no"), (b"origin", origin.encode()),
            (b"referer", (f"{origin}/c/{chat_id}" if chat_id else f"{origin}/").encode())]


def can_continue(payload: Mapping[str, Any], since: int) -> bool:
    """Whether the input items after the first `since` hold only user-side items (so that
    a chat holding those first items can take them as its next message)."""
    items = _items(payload)
    newer = items[since:]
    return 0 < since <= len(items) and bool(newer) and not any(_assistant_side(i)
                                                                 for i in newer)


def completion_body(payload: Mapping[str, Any], *, model: str, chat_id: str,
                    parent_id: str | None = None, since: int = 0, now: float | None = None,
                    new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> dict[str, Any]:
    """The body of `POST /api/v2/chat/completions?chat_id=<chat_id>`."""
    stamp = int(time.time() if now is None else now)
    content = fold_content(payload, since=since if parent_id else 0)
    kind = _chat_type(payload)
    message = {
        "id": None, "fid": new_id(), "parentId": parent_id, "childrenIds": [new_id()],
        "role": "user", "content": content, "user_action": "chat", "files": [],
        "timestamp": stamp, "models": [model], "model": "", "chat_type": kind,
        "feature_config": _features(payload.get("reasoning")),
        "extra": {"meta": {"subChatType": kind}}, "sub_chat_type": kind,
        "parent_id": parent_id}
    return {"stream": True, "version": "2.1", "incremental_output": True,
            "chat_id": chat_id, "chatId": chat_id, "chat_mode": "normal", "model": model,
            "parent_id": parent_id, "parentId": parent_id or "", "timestamp": stamp,
            "messages": [message]}


def conversation_keys(payload: Mapping[str, Any]) -> list[str]:
    """keys[n]: the key of the conversation made of the first n input items, as the web
    API's chat holds it (each item's speaker and text as `fold_content` reads them; items
    without text, such as reasoning, leave the key as it was)."""
    key = ""
    keys = [key]
    for number, item in enumerate(_items(payload)):
        speaker, text = _line(item, f"input[{number}]")
        if text:
            key = extend_key(key, speaker, text)
        keys.append(key)
    return keys


def extend_key(key: str, speaker: str, text: str) -> str:
    """The key of conversation `key` followed by one message."""
    return hashlib.sha256((key + json.dumps([speaker, text])).encode()).hexdigest()


def fold_content(payload: Mapping[str, Any], *, since: int = 0) -> str:
    """The text of the one user message (see the module docstring)."""
    items = _items(payload)
    lines = [_line(item, f"input[{n}]") for n, item in enumerate(items)]
    if since:
        return "\n\n".join(text for _, text in lines[since:] if text)
    cut = max((n + 1 for n, item in enumerate(items) if _assistant_side(item)), default=0)
    system = [text for text in (payload.get("instructions") or "", _format_note(payload))
              if text]
    history = [f"{speaker}: {text}" for speaker, text in lines[:cut] if text]
    latest = [text if speaker == "User" else f"{speaker}: {text}"
              for speaker, text in lines[cut:] if text]
    if not system and not history and len(latest) <= 1:
        return latest[0] if latest else ""
    sections = [("System instructions", "\n\n".join(system)),
                ("Conversation so far", "\n\n".join(history)),
                ("New message", "\n\n".join(latest))]
    return "\n\n".join(f"[{title}]\n{body}" for title, body in sections if body)


def _items(payload: Mapping[str, Any]) -> list[Item]:
    items = payload.get("input")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _assistant_side(item: Item) -> bool:
    return item.get("role") == "assistant" or item.get("type") in _ASSISTANT_SIDE


def _line(item: Item, where: str) -> tuple[str, str]:
    """(speaker, text) of one input item, as it reads in the folded conversation."""
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        speaker = {"user": "User", "assistant": "Assistant"}.get(str(role), "System")
        return speaker, _text(item.get("content"), where)
    if kind == "function_call":
        return ("Assistant", f"(called tool {item.get('name')} with {item.get('arguments')}, "
                             f"call id {item.get('call_id')})")
    if kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        return "Tool", f"(result of call {item.get('call_id')}) {text}"
    if kind in ("reasoning", "web_search_call"):
        return "Assistant", ""
    raise ClientError(f"{where}: input items of type {kind!r} cannot be sent to the qwen "
                      "provider", code="unsupported_input")


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for number, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            texts.append(str(part.get("text") or ""))
        elif kind == "refusal":
            texts.append(str(part.get("refusal") or ""))
        else:
            raise ClientError(f"{where}.content[{number}]: content of type {kind!r} cannot be "
                              "sent to the qwen provider (the web API takes text only)",
                              code="unsupported_content")
    return "\n".join(text for text in texts if text)


def _chat_type(payload: Mapping[str, Any]) -> str:
    search = False
    functions = False
    for index, tool in enumerate(payload.get("tools") or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in ("web_search", "web_search_preview"):
            search = True
        elif kind == "function":
            functions = True
        else:
            raise ClientError(f"tools[{index}]: tools of type {kind!r} are not available on "
                              "the qwen provider", code="unsupported_tool")
    if functions and payload.get("tool_choice", "auto") != "none":
        raise ClientError("The qwen provider (the chat.qwen.ai web API) cannot call tools; "
                          "send the request without tools or with tool_choice none.",
                          code="unsupported_tool")
    return "search" if search else "t2t"


def _format_note(payload: Mapping[str, Any]) -> str:
    text = payload.get("text")
    wanted = text.get("format") if isinstance(text, dict) else None
    kind = wanted.get("type") if isinstance(wanted, dict) else None
    if kind == "json_object":
        return "Reply with one JSON object only, no other text."
    if kind == "json_schema" and isinstance(wanted, dict):
        schema = json.dumps(wanted.get("schema") or {}, ensure_ascii=False)
        return f"Reply with one JSON value only, no other text, matching this JSON schema: {schema}"
    return ""


def _features(reasoning: Any) -> dict[str, Any]:
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    mode = {"none": "Fast", "minimal": "Fast", "low": "Auto", "medium": "Auto"}.get(
        str(effort), "Thinking" if effort else "Auto")
    return {"thinking_enabled": mode != "Fast", "output_schema": "phase",
            "thinking_format": "detail", "thinking_mode": mode, "auto_thinking": mode == "Auto",
            "research_mode": "normal", "auto_search": False}
