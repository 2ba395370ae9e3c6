"""Encrypted reasoning as the fake Codex backend mints and verifies it.

The real backend returns `encrypted_content` that only it can decrypt, bound to
the account: content from another account or another service is refused with
400 `invalid_encrypted_content`. The fake stands in for that with an HMAC under
a key drawn once per process over the account and the item id, so content
minted for another account (the `chatgpt-account-id` of the request), or by
another fake process, or any string a client made up, is recognisably foreign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_KEY = secrets.token_bytes(32)
_PREFIX = "gAAAAB"  # what the real blobs start with
_MARKER = "fake-reasoning"


def encrypted_reasoning(item_id: str, account: str = "") -> str:
    """The opaque blob of reasoning item `item_id` minted for `account`: its id, tagged
    with this process's key."""
    text = f"{_MARKER}:{item_id}:{_tag(item_id, account)}"
    return _PREFIX + base64.urlsafe_b64encode(text.encode()).decode()


def minted_here(content: str, account: str = "") -> bool:
    """Whether `content` is an intact blob this process minted for `account`."""
    if not content.startswith(_PREFIX):
        return False
    try:
        text = base64.b64decode(content[len(_PREFIX):], altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeError):
        return False
    head, _, tag = text.rpartition(":")
    marker, _, item_id = head.partition(":")
    return marker == _MARKER and hmac.compare_digest(tag, _tag(item_id, account))


def _tag(item_id: str, account: str) -> str:
    message = f"{account}\0{item_id}".encode()
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()[:32]
