"""The RESP parser and command encoder: every reply type, every split point, garbage."""

from __future__ import annotations

import contextlib
import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.net.resp import (
    MAX_DEPTH,
    MAX_LINE_BYTES,
    NEED_DATA,
    ProtocolError,
    Push,
    Reply,
    ReplyError,
    ReplyParser,
    encode_command,
    encode_commands,
)


def serialize(value: Any) -> bytes:
    """RESP3 bytes for `value`, written independently of the parser under test."""
    if value is None:
        return b"_\r\n"
    if isinstance(value, bool):
        return b"#t\r\n" if value else b"#f\r\n"
    if isinstance(value, int):
        return f":{value}\r\n".encode()
    if isinstance(value, float):
        return f",{value!r}\r\n".encode()
    if isinstance(value, bytes):
        return f"${len(value)}\r\n".encode() + value + b"\r\n"
    if isinstance(value, str):
        return f"+{value}\r\n".encode()
    if isinstance(value, ReplyError):
        return f"-{value.message}\r\n".encode()
    if isinstance(value, Push):
        return f">{len(value)}\r\n".encode() + b"".join(map(serialize, value))
    if isinstance(value, list):
        return f"*{len(value)}\r\n".encode() + b"".join(map(serialize, value))
    if isinstance(value, dict):
        return f"%{len(value)}\r\n".encode() + b"".join(
            serialize(key) + serialize(item) for key, item in value.items())
    raise TypeError(type(value))


def feed_all(parser: ReplyParser, chunks: list[bytes]) -> list[Reply]:
    replies: list[Reply] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (reply := parser.next_reply()) is not NEED_DATA:
            replies.append(reply)  # type: ignore[arg-type]
    return replies


def parse_all(chunks: list[bytes]) -> list[Reply]:
    parser = ReplyParser()
    replies = feed_all(parser, chunks)
    assert parser.buffered == 0
    return replies


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({min(point, len(data)) for point in points})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


simple_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
                      max_size=20)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False) | st.binary(max_size=40) | simple_text
           | simple_text.map(ReplyError))
keys = st.binary(max_size=8) | st.integers() | simple_text
replies = st.recursive(scalars, lambda inner: (
    st.lists(inner, max_size=5) | st.lists(inner, max_size=5).map(Push)
    | st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=300)
@given(st.lists(replies, min_size=1, max_size=5), st.lists(st.integers(0, 2000), max_size=8))
def test_replies_survive_any_split(values: list[Any], points: list[int]) -> None:
    wire = b"".join(map(serialize, values))
    assert parse_all(split_at(wire, points)) == values


@given(st.lists(replies, min_size=1, max_size=3))
def test_replies_fed_byte_by_byte(values: list[Any]) -> None:
    wire = b"".join(map(serialize, values))
    assert parse_all([wire[i:i + 1] for i in range(len(wire))]) == values


@settings(max_examples=500)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_garbage_raises_only_protocol_error(data: bytes, points: list[int]) -> None:
    with contextlib.suppress(ProtocolError):
        feed_all(ReplyParser(), split_at(data, points))


@given(st.lists(st.binary(max_size=30) | simple_text | st.integers(), min_size=1, max_size=6))
def test_an_encoded_command_is_an_array_of_bulk_strings(args: list[Any]) -> None:
    expected = [arg if isinstance(arg, bytes) else str(arg).encode() for arg in args]
    assert parse_all([encode_command(args)]) == [expected]


def test_resp2_replies_as_redis_sends_them() -> None:
    wire = (b"+OK\r\n-WRONGTYPE Operation against a key\r\n:-42\r\n$5\r\nhe\r\no\r\n"
            b"$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n")
    assert parse_all([wire]) == ["OK", ReplyError("WRONGTYPE Operation against a key"), -42,
                                 b"he\r\no", b"", None, None, [], [b"a", [1]]]
    assert ReplyError("NOSCRIPT No matching script").kind == "NOSCRIPT"


def test_resp3_only_types() -> None:
    wire = (b"(3492890328409238509324850943850943825024385\r\n,inf\r\n,-1.5e3\r\n"
            b"!21\r\nSYNTAX invalid syntax\r\n=15\r\ntxt:Some string\r\n~2\r\n:1\r\n:2\r\n"
            b"|1\r\n+ttl\r\n:3600\r\n$2\r\nok\r\n%0\r\n")
    assert parse_all([wire]) == [3492890328409238509324850943850943825024385, math.inf,
                                 -1500.0, ReplyError("SYNTAX invalid syntax"), "Some string",
                                 [1, 2], b"ok", {}]
    nan = parse_all([b",nan\r\n"])[0]
    assert isinstance(nan, float) and math.isnan(nan)


def test_an_attribute_inside_an_array_is_dropped() -> None:
    assert parse_all([b"*2\r\n|1\r\n+key\r\n+meta\r\n:1\r\n:2\r\n"]) == [[1, 2]]


@pytest.mark.parametrize("wire", [
    b":+5\r\n", b": 5\r\n", b":1_0\r\n", b":\r\n", b"$-2\r\n", b"$3\r\nabcd\r\n",
    b"*-2\r\n", b"%-1\r\n", b"#x\r\n", b"_x\r\n", b",1_0\r\n", b", 1\r\n", b",\r\n",
    b"=3\r\nabc\r\n", b"?\r\n", b"\r\n", b"%1\r\n*0\r\n:1\r\n", b"!-1\r\n",
    b"$" + str(2**40).encode() + b"\r\n",
])
def test_malformed_replies(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_all([wire])


def test_a_line_without_end_is_bounded() -> None:
    parser = ReplyParser()
    parser.feed(b"+" + b"x" * (MAX_LINE_BYTES - 1))
    assert parser.next_reply() is NEED_DATA
    parser.feed(b"xx")
    with pytest.raises(ProtocolError):
        parser.next_reply()


def test_nesting_is_bounded() -> None:
    with pytest.raises(ProtocolError):
        parse_all([b"*1\r\n" * (MAX_DEPTH + 1) + b":1\r\n"])
    assert parse_all([b"*1\r\n" * (MAX_DEPTH - 1) + b":1\r\n"])


def test_a_large_bulk_arriving_in_pieces() -> None:
    payload = bytes(range(256)) * 4096
    wire = serialize(payload) + b"+OK\r\n"
    assert parse_all([wire[i:i + 65536] for i in range(0, len(wire), 65536)]) == [payload, "OK"]


def test_the_encoder() -> None:
    assert encode_command(["SET", b"k", 10, 1.5]) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n10\r\n$3\r\n1.5\r\n")
    assert encode_command(["ECHO", "é"]) == b"*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n"
    assert encode_commands([["PING"], ["PING"]]) == b"*1\r\n$4\r\nPING\r\n" * 2
    with pytest.raises(TypeError):
        encode_command(["SET", "k", True])
    with pytest.raises(TypeError):
        encode_command(["SET", "k", None])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        encode_command([])
