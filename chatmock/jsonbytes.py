"""Find JSON string values in raw bytes without decoding the document.

The hot path of every translator is "take the `delta` string of this event
and put it into that chunk". A JSON string's escaped form is valid inside any
other JSON string, so the bytes between the quotes can be copied as they are:
no `json.loads`, no `json.dumps`, no UTF-8 round trip.

Why a plain substring search is sound here: in valid JSON a `"` byte inside a
string is always escaped, so the pattern `"key"` followed by `:` can only be a
member name. It is a member of the *top-level* object exactly when no `{`
precedes it (after the opening brace): nesting needs a `{`, and a `{` inside
an earlier string only makes us give up, never answer wrongly. Every function
returns None when the fast path does not apply; callers then parse the
document normally.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_QUOTE = 34  # ord('"')
# String content whose every backslash starts a valid JSON escape (consumed in pairs, so
# linear); anything else would make the copied value invalid JSON.
_ESCAPED_TEXT = re.compile(rb'(?:[^\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*')
# Raw control characters are invalid inside JSON strings (LF and CR frame SSE and are
# checked apart). Deleting them with bytes.translate and comparing lengths runs at C speed.
_CONTROL = bytes(c for c in range(32) if c not in (10, 13))
_BACKSLASH = 92  # ord("\\")
_WHITESPACE = b" \t\r\n"


_compact_patterns: dict[bytes, bytes] = {}


def raw_string(doc: bytes, quoted_key: bytes) -> bytes | None:
    """Escaped content of the top-level string member named by `quoted_key` (b'"name"')."""
    # Fast path for compact JSON (`"key":"value"` with no escaped quote in the value).
    pattern = _compact_patterns.get(quoted_key)
    if pattern is None:
        pattern = _compact_patterns[quoted_key] = quoted_key + b':"'
    at = doc.find(pattern)
    if at > 0 and doc[at - 1] != _BACKSLASH and doc.find(b"{", 1, at) < 0:
        begin = at + len(pattern)
        end = doc.find(b'"', begin)
        if end > begin and doc[end - 1] != _BACKSLASH:
            body = doc[begin:end]
            if b"\n" not in body and b"\r" not in body and (
                    b"\\" not in body or _ESCAPED_TEXT.fullmatch(body)):
                return body
        elif end == begin:
            return b""
    start = _value_start(doc, quoted_key)
    if start < 0 or doc[start] != _QUOTE:
        return None
    return _string_body(doc, start + 1)


def _value_start(doc: bytes, quoted_key: bytes) -> int:
    """Index of the first byte of the member's value, or -1."""
    at = doc.find(quoted_key)
    while at >= 0:
        if doc.find(b"{", 1, at) >= 0:
            return -1
        if doc[at - 1:at] == b"\\":
            # An escaped quote: these bytes sit inside a string (a key like `x"name`).
            at = doc.find(quoted_key, at + 1)
            continue
        after = at + len(quoted_key)
        if doc[after:after + 1] == b":":
            after += 1
        else:
            after = _skip_whitespace(doc, after)
            if doc[after:after + 1] != b":":
                at = doc.find(quoted_key, after)
                continue
            after += 1
        if doc[after:after + 1] in (b" ", b"\t", b"\r", b"\n"):
            after = _skip_whitespace(doc, after)
        return after if after < len(doc) else -1
    return -1


def _skip_whitespace(doc: bytes, pos: int) -> int:
    while pos < len(doc) and doc[pos] in _WHITESPACE:
        pos += 1
    return pos


def _string_body(doc: bytes, start: int) -> bytes | None:
    end = doc.find(b'"', start)
    while end >= 0:
        back = end - 1
        while back >= start and doc[back] == _BACKSLASH:
            back -= 1
        if (end - 1 - back) % 2 == 0:
            body = doc[start:end]
            # Raw line breaks are invalid JSON and would break SSE/NDJSON framing.
            if b"\n" in body or b"\r" in body or not _ESCAPED_TEXT.fullmatch(body):
                return None
            return body
        end = doc.find(b'"', end + 1)
    return None


def string_at(doc: bytes, start: int) -> bytes | None:
    """Escaped content of the JSON string whose first content byte is at `start` (just
    after its opening quote), or None if it does not end or holds an invalid escape."""
    return _string_body(doc, start)


def safe_to_copy(data: bytes) -> bool:
    """True if `data` holds no raw control character and is valid UTF-8.

    Checked once per network read: only then may string values be copied as
    raw bytes (callers parse and re-encode otherwise)."""
    if len(data.translate(None, _CONTROL)) != len(data):
        return False
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_string(raw: bytes) -> str:
    """Turn escaped string content (as `raw_string` returns it) into text."""
    if _BACKSLASH not in raw:
        return raw.decode("utf-8", "replace")
    try:
        value = json.loads(b'"' + raw + b'"')
    except ValueError:  # the backend's JSON was malformed after all: keep what is readable
        return raw.decode("utf-8", "replace")
    assert isinstance(value, str)
    return value


def quote(text: str) -> bytes:
    """A JSON string literal, quotes included, with non-ASCII kept as UTF-8."""
    return _utf8(json.dumps(text, ensure_ascii=False), text)


def escape(text: str) -> bytes:
    """The escaped content of a JSON string, without the quotes."""
    return quote(text)[1:-1]


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (no spaces), non-ASCII as UTF-8.

    orjson writes them: the upstream payload of an agent's request with 64 KiB of
    history took the json module ~240 us and takes orjson ~9 (`bench/json_cost.py`;
    bench/RESULTS.md, "orjson").
    What orjson refuses (a lone surrogate, an integer beyond 64 bits, a key that is not
    a string) goes through the json module as before. Two spellings differ from it:
    NaN and the infinities become null (the json module writes `NaN`, which no JSON
    parser reads; request bodies refuse them anyway), and an exponent has no `+`
    (`1e16`, both valid JSON)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        return _utf8(json.dumps(value, ensure_ascii=False, separators=(",", ":")), value)


def _utf8(text: str, value: Any) -> bytes:
    """UTF-8 of serialised JSON; lone surrogates (valid in JSON text) fall back to escapes."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()
