"""chatmock.jsonbytes: string members found in raw JSON bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.jsonbytes import decode_string, dumps, escape, quote, raw_string

K = b'"k"'


# -- raw_string ---------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "raw"), [
    (b'{"k":"v"}', b"v"),
    (b'{"k":""}', b""),
    (b'{"a":1,"k":"v","z":2}', b"v"),
    (b'{"k" : "v"}', b"v"),
    (b'{"k"\t:\t"v"}', b"v"),
    (b'{"k"\r\n:\r\n  "v"}', b"v"),
    (b'{\n  "k": "v"\n}', b"v"),
    (b'{"k":"say \\"hi\\""}', b'say \\"hi\\"'),
    (b'{"k":"ends with backslash \\\\"}', b"ends with backslash \\\\"),
    (b'{"k":"\\\\\\\\"}', b"\\\\\\\\"),
    (b'{"k":"\\\\\\"","x":"y"}', b'\\\\\\"'),
    (b'{"k":"\\n\\u00e9\\ud83d\\ude00"}', b"\\n\\u00e9\\ud83d\\ude00"),
    ('{"k":"é😀"}'.encode(), "é😀".encode()),
    (b'{"a":"k","k":"v"}', b"v"),  # the key first appears as a value
    (b'{"a":["k"],"k":"v"}', b"v"),
    (b'{"kk":"x","k":"v"}', b"v"),
])
def test_raw_string_finds_top_level_members(doc: bytes, raw: bytes) -> None:
    assert raw_string(doc, K) == raw
    assert decode_string(raw) == json.loads(doc)["k"]


@pytest.mark.parametrize("doc", [
    b'{"o":{"k":"nested"},"k":"top"}',  # a nested member comes first: give up
    b'{"o":{"k":"nested"}}',
    b'[{"k":"v"}]',
    b'{"k":1}',
    b'{"k":null}',
    b'{"k":["v"]}',
    b'{"k":{"v":"w"}}',
    b'{"k":true}',
    b'{"a":"k"}',  # only as a value
    b'{"a":"k"',
    b'{"k":"raw\nnewline"}',
    b'{"k":"raw\rcr"}',
    b'{"k":"unterminated',
    b'{"k":"unterminated\\"}',
    b'{"k":',
    b'{"k"',
    b'{"k" ',
    b"",
    b"{}",
    b'{"a":"{","k":"v"}',  # a brace inside a string only makes it give up
])
def test_raw_string_returns_none_when_it_cannot_answer_safely(doc: bytes) -> None:
    assert raw_string(doc, K) is None


@pytest.mark.parametrize("doc", [
    # The bytes `"k"` followed by `:` inside a key that merely ends in `"k`.
    b'{"x\\"k":"wrong"}',
    b'{"\\"k":"wrong"}',
    b'{"x\\"k" : "wrong","y":1}',
])
def test_raw_string_is_not_fooled_by_escaped_quotes_in_keys(doc: bytes) -> None:
    assert "k" not in json.loads(doc)
    assert raw_string(doc, K) is None


def test_raw_string_skips_an_escaped_lookalike_and_finds_the_real_key() -> None:
    doc = b'{"x\\"k":"wrong","k":"right"}'
    assert raw_string(doc, K) == b"right"


def test_raw_string_other_keys() -> None:
    doc = b'{"type":"response.output_text.delta","item_id":"msg_1","delta":"Hi"}'
    assert raw_string(doc, b'"type"') == b"response.output_text.delta"
    assert raw_string(doc, b'"item_id"') == b"msg_1"
    assert raw_string(doc, b'"delta"') == b"Hi"
    assert raw_string(doc, b'"missing"') is None


# -- decode / quote / escape / dumps ----------------------------------------------------


def test_decode_string() -> None:
    assert decode_string(b"plain") == "plain"
    assert decode_string("é".encode()) == "é"
    assert decode_string(b'a\\"b\\\\c\\n\\t\\u00e9\\ud83d\\ude00') == 'a"b\\c\n\té😀'
    assert decode_string(b"") == ""


def test_quote_escape_dumps() -> None:
    assert quote('a"b\\c\né') == '"a\\"b\\\\c\\né"'.encode()
    assert escape('a"b') == b'a\\"b'
    assert escape("") == b""
    assert dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()


@given(st.text())
def test_escape_round_trips(text: str) -> None:
    assert decode_string(escape(text)) == text
    assert json.loads(quote(text)) == text


@given(before=st.text(max_size=5), after=st.text(max_size=5),
       surrogate=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
def test_lone_surrogates_still_give_valid_json(before: str, after: str, surrogate: str) -> None:
    # Python strings decoded from JSON can hold lone surrogates ("\\ud83d" alone).
    text = before + surrogate + after
    assert json.loads(quote(text)) == text
    assert json.loads(dumps({"t": text})) == {"t": text}
    assert decode_string(escape(text)) == text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(JSON_VALUES)
def test_dumps_writes_what_the_json_module_reads_back(value: Any) -> None:
    # orjson writes, and the json module takes over what orjson refuses: integers
    # beyond 64 bits and lone surrogates among them.
    assert json.loads(dumps(value)) == value


def test_what_orjson_refuses_the_json_module_writes() -> None:
    assert dumps({"n": 2**70}) == b'{"n":1180591620717411303424}'
    assert dumps({1: "a"}) == b'{"1":"a"}'  # a key that is not a string
    assert dumps({"t": "\ud800"}) == b'{"t":"\\ud800"}'
    assert dumps((1, "é")) == '[1,"é"]'.encode()


def test_non_finite_numbers_become_null_not_nan() -> None:
    # The json module would write NaN, which no JSON parser reads.
    assert dumps([float("nan"), float("inf"), 0.5]) == b"[null,null,0.5]"


# -- properties ------------------------------------------------------------------------

FORMATS: list[dict[str, Any]] = [
    {"separators": (",", ":")},
    {"separators": (", ", ": ")},
    {"indent": 2},
    {"indent": "\t", "separators": (",", " : ")},
]


@settings(max_examples=300)
@given(value=st.text(), others=st.dictionaries(st.text(max_size=8), st.text(max_size=12),
                                               max_size=5),
       position=st.integers(min_value=0, max_value=5), ascii_only=st.booleans(),
       fmt=st.sampled_from(FORMATS))
def test_raw_string_decodes_to_the_value(value: str, others: dict[str, str], position: int,
                                         ascii_only: bool, fmt: dict[str, Any]) -> None:
    others.pop("k", None)
    items = list(others.items())
    items.insert(min(position, len(items)), ("k", value))
    doc = json.dumps(dict(items), ensure_ascii=ascii_only, **fmt).encode()
    raw = raw_string(doc, K)
    if raw is not None:
        assert decode_string(raw) == value
    # The answer may be withheld only because a brace precedes the member (module docstring).
    clean_prefix = all("{" not in k + v for k, v in items[:items.index(("k", value))])
    assert raw is not None or not clean_prefix


@settings(max_examples=200)
@given(doc=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["k", "a", 'x"k', "k\\", "{"]), children, max_size=3),
    max_leaves=10))
def test_raw_string_never_lies_about_arbitrary_documents(doc: Any) -> None:
    for ascii_only in (True, False):
        for fmt in FORMATS:
            encoded = json.dumps(doc, ensure_ascii=ascii_only, **fmt).encode()
            raw = raw_string(encoded, K)
            if raw is not None:
                assert isinstance(doc, dict) and isinstance(doc.get("k"), str)
                assert decode_string(raw) == doc["k"]


@given(st.binary(max_size=60))
def test_raw_string_on_garbage_never_raises(garbage: bytes) -> None:
    raw_string(garbage, K)
    raw_string(b'{"k":' + garbage, K)
    raw_string(b'{"k":"' + garbage, K)
