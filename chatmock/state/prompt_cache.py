"""Session ids: one value sent as the `session-id` header and as `prompt_cache_key`.

A client may name its session (`X-Session-Id` or `session_id` header; Claude
Code sends `X-Claude-Code-Session-Id`).
Otherwise the conversation is fingerprinted by its instructions and first
user message, so every turn of one conversation lands on the same backend
cache. A fingerprint becomes an id through a keyed hash (HMAC-SHA-256, the
first 128 bits as a UUID): nothing to keep per conversation, nothing the
backend could link to the conversation's text, and the same id in every
worker of `serve --workers`, which all inherit `PROCESS_KEY` (made at import,
before the supervisor forks them). Another process gets other ids, as the
random ids kept per process did before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

_HEADERS = (b"x-session-id", b"session_id", b"session-id", b"x-claude-code-session-id")
PROCESS_KEY = os.urandom(32)


class SessionIds:
    def __init__(self, key: bytes = PROCESS_KEY) -> None:
        self._key = key

    def for_request(self, headers: Mapping[bytes, bytes], instructions: str | None,
                    input_items: Sequence[Any]) -> str:
        for name in _HEADERS:
            value = headers.get(name, b"").strip()
            if value:
                return value.decode("latin-1")
        digest = hmac.digest(self._key, fingerprint(instructions, input_items).encode(),
                             "sha256")
        return str(uuid.UUID(bytes=digest[:16], version=4))


def fingerprint(instructions: str | None, input_items: Sequence[Any]) -> str:
    canonical: dict[str, Any] = {}
    if instructions and instructions.strip():
        canonical["instructions"] = instructions.strip()
    first = _first_user_message(input_items)
    if first is not None:
        canonical["first_user_message"] = first
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _first_user_message(items: Sequence[Any]) -> dict[str, Any] | None:
    for item in items:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        parts = []
        for part in item.get("content") or ():
            if not isinstance(part, dict):
                continue
            if part.get("type") == "input_text" and part.get("text"):
                parts.append({"type": "input_text", "text": part["text"]})
            elif part.get("type") == "input_image" and part.get("image_url"):
                parts.append({"type": "input_image", "image_url": part["image_url"]})
        if parts:
            return {"type": "message", "role": "user", "content": parts}
    return None
