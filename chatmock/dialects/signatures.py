"""Thinking-block signatures: the encrypted reasoning chatmock hands Anthropic clients.

An Anthropic `thinking` block carries an opaque `signature` that the client
must send back unchanged. chatmock puts the backend's `encrypted_content`
there, so a block sent back next turn becomes a reasoning item again. But a
client's history may also hold blocks chatmock never minted: a conversation
begun on the real Anthropic API, or one chatmock served under another
ChatGPT account. Forwarded as `encrypted_content`, such a block gets 400
`invalid_encrypted_content` from the backend, on this turn and every later
one, since the history keeps it.

So chatmock tags what it mints: `chatmock.1.<account tag>.<encrypted content>`,
where the account tag is a hash of the ChatGPT account id (the backend binds
encrypted content to the account, and the tag reveals nothing about it).
`unwrap` gives the encrypted content back only for that exact prefix; any
other signature is foreign and its block is dropped, thinking text and all.
"""

from __future__ import annotations

import hashlib

_PREFIX = "chatmock.1."


def account_tag(account_id: str) -> str:
    """The short, stable tag of a ChatGPT account (computed once per request)."""
    return hashlib.sha256(b"chatmock thinking signature:" + account_id.encode()).hexdigest()[:16]


def mint(encrypted_content: str, tag: str) -> str:
    """The signature of a thinking block carrying `encrypted_content` ('' stays '')."""
    return f"{_PREFIX}{tag}.{encrypted_content}" if encrypted_content else ""


def unwrap(signature: str, tag: str) -> str | None:
    """The encrypted content of a signature chatmock minted for this account, else None."""
    prefix = f"{_PREFIX}{tag}."
    if signature.startswith(prefix) and len(signature) > len(prefix):
        return signature[len(prefix):]
    return None
