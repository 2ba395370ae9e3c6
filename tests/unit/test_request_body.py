"""chatmock.dialects.request_body: lone surrogates repaired, depth limited, non-JSON refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatmock.dialects.request_body import MAX_DEPTH, deeper_than, parse_json
from chatmock.errors import ClientError

# Characters that make escapes interesting: halves of UTF-16 pairs, and the text of an
# escape (`\`, `u`, hex digits) so that `\\ud83d` (a backslash, then text) shows up too.
TRICKY = st.text(st.sampled_from(["\ud800", "\udbff", "\ud83d", "\ude00", "\udc00", "\\",
                                  "u", "d", "8", "3", "e", "0", "a", "é", "😀"]), max_size=24)


def expected(text: str) -> str:
    """What JSON decoding gives for `text` sent as escapes: adjacent halves pair up (as
    `json.loads` pairs them), each lone half becomes U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def refused(raw: bytes, *fragments: str) -> ClientError:
    with pytest.raises(ClientError) as info:
        parse_json(raw)
    assert info.value.status == 400 and info.value.code == "invalid_json"
    for fragment in fragments:
        assert fragment in info.value.message
    return info.value


@given(TRICKY, TRICKY)
@example("\ud800", "x")
@example("\\\ud83d", "\\ud83d\ude00")
@settings(max_examples=300, deadline=None)
def test_lone_surrogates_become_replacement_characters(key: str, value: str) -> None:
    raw = json.dumps({key: [value, {"k": value}]}).encode()  # ensure_ascii: \udXXX escapes
    parsed = parse_json(raw)
    assert parsed == {expected(key): [expected(value), {"k": expected(value)}]}
    json.dumps(parsed, ensure_ascii=False).encode()  # now writable as UTF-8


@pytest.mark.parametrize(("raw", "value"), [
    (rb'"\ud800"', "\ufffd"), (rb'"\uDFFF tail"', "\ufffd tail"),
    (rb'"\ud83d\ude00"', "😀"), (rb'"\ud83d\ud83d\ude00"', "\ufffd😀"),
    (rb'"\\ud800"', "\\ud800"), (rb'"\\\ud800"', "\\\ufffd"),
    (rb'"\\ud83d\ude00"', "\\ud83d\ufffd"),
])
def test_escapes_decode_as_json_pairs_them(raw: bytes, value: str) -> None:
    assert parse_json(raw) == value


def test_bodies_without_surrogates_are_parsed_as_they_are() -> None:
    body = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "tab\there \\ud é"}]}
    assert parse_json(json.dumps(body).encode()) == body
    assert parse_json(b'\xef\xbb\xbf{"a": "raw\x01control"}') == {"a": "raw\x01control"}


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"", "empty"), (b"  \n", "empty"), (b"{nope", "Invalid JSON body"),
    (b'{"a": NaN}', "NaN"), (b"[Infinity]", "Infinity"), (b"[-Infinity]", "Infinity"),
    (b"[1e400]", "out of range"), (b'["\xed\xa0\x80"]', "not UTF-8"),
    (b'["\xff"]', "not UTF-8"), ("[1]".encode("utf-16"), "not UTF-8"),
])
def test_what_is_not_json_is_refused(raw: bytes, fragment: str) -> None:
    refused(raw, fragment)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 999, 1_000, 100_000])
def test_deep_nesting_is_refused(depth: int) -> None:
    refused(b"[" * depth + b"]" * depth, f"nested deeper than {MAX_DEPTH} levels")
    refused(b'{"a":' * depth + b"1" + b"}" * depth, "nested deeper")


def test_nesting_up_to_the_limit_is_accepted() -> None:
    deepest: Any = []
    for _ in range(MAX_DEPTH - 1):
        deepest = [deepest]
    assert parse_json(json.dumps(deepest).encode()) == deepest
    brackets_in_strings = json.dumps({"text": "[[[{{{" * 500}).encode()
    assert parse_json(brackets_in_strings)["text"].startswith("[[[")


@pytest.mark.parametrize(("value", "limit", "deeper"), [
    (1, 0, False), ([], 0, True), ([], 1, False), ([[]], 1, True),
    ({"a": [{"b": 1}]}, 3, False), ({"a": [{"b": {}}]}, 3, True), ("[[[", 0, False)])
def test_deeper_than(value: Any, limit: int, deeper: bool) -> None:
    assert deeper_than(value, limit) is deeper
