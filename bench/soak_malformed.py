"""Malformed requests for the soak, and what chatmock must answer to each.

Route-level faults (bad JSON, wrong types, deep nesting, a wrong Content-Type, a bad Host,
an unknown path or method) get a typed 4xx, in the route's error shape where the route
renders it, on a connection that stays usable: the soak sends `GET /health` after it on
the same connection. Protocol-level faults (an oversized head or body, conflicting or
obfuscated framing, garbage) are answered once and the connection is closed: the smuggled
request appended to them must never be answered.

One 5xx is allowed here: a Transfer-Encoding other than plain `chunked` gets h11's 501,
which RFC 9112 §6.1 asks for ("a transfer coding it does not understand SHOULD respond
with 501"); it still closes the connection without reading the rest.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from soak_http import json_bytes, request_bytes
from soak_kinds import APIS, MODEL, Api

SMUGGLED = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
HEALTH = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"


@dataclass(frozen=True)
class Bad:
    name: str
    raw: bytes
    statuses: tuple[int, ...]
    closes: bool = False
    """Answered once, then the connection closed (nothing after it answered)."""
    api: Api | None = None
    """The route whose error shape the answer must have (route-level faults)."""
    may_play: bool = False
    """A 200 is right too (the fault is repaired); then the fake plays a stream."""


def _route(api: Api, port: int, body: bytes, content_type: str = "application/json") -> bytes:
    return request_bytes(port, "POST", api.path, body, api.headers, content_type)


def bad_json(rng: random.Random, port: int, api: Api) -> Bad:
    body = rng.choice((b'{"model": ', b"{bad}", b"", b"\xff\xfe", b'{"a":1}{"b":2}',
                       b"[1,2,3]", b'"text"', b"null"))
    return Bad("bad json", _route(api, port, body), (400,), api=api)


WRONG_TYPES = {"stream": "false", "model": 5, "messages": "hi", "prompt": 7, "input": 5,
               "max_tokens": "many"}


def wrong_type(rng: random.Random, port: int, api: Api) -> Bad:
    body = api.build("soak fake:deltas=2", False)
    field = rng.choice([key for key in body if key in WRONG_TYPES])
    body[field] = WRONG_TYPES[field]
    return Bad(f"wrong type ({field})", _route(api, port, json_bytes(body)), (400,), api=api)


def deep_nesting(rng: random.Random, port: int, api: Api) -> Bad:
    depth = rng.choice((1000, 100_000))
    body = b'{"model":"%s","messages":%b%b}' % (MODEL.encode(), b"[" * depth, b"]" * depth)
    return Bad("deep nesting", _route(api, port, body), (400,), api=api)


def lone_surrogate(rng: random.Random, port: int, api: Api) -> Bad:
    body = json_bytes(api.build("soak \ud800 fake:deltas=3", False))
    return Bad("lone surrogate", _route(api, port, body), (200, 400), api=api, may_play=True)


def content_type(rng: random.Random, port: int, api: Api) -> Bad:
    kind = rng.choice(("text/plain", "application/x-www-form-urlencoded",
                       "multipart/form-data; boundary=x"))
    body = json_bytes(api.build("soak fake:deltas=2", False))
    return Bad("wrong content type", _route(api, port, body, kind), (415,), api=api)


def bad_host(rng: random.Random, port: int, api: Api) -> Bad:
    raw = _route(api, port, json_bytes(api.build("soak", False))).replace(
        f"host: 127.0.0.1:{port}".encode(), rng.choice((b"host: evil.example",
                                                         b"host: 127.0.0.1.nip.io")), 1)
    return Bad("foreign host", raw, (403,))


def unknown_route(rng: random.Random, port: int, api: Api) -> Bad:
    if rng.random() < 0.5:
        return Bad("unknown path", request_bytes(port, "GET", "/v1/nothing-here"), (404,))
    return Bad("wrong method", request_bytes(port, "PUT", api.path, b"{}"), (405,))


def oversized_head(rng: random.Random, port: int, api: Api) -> Bad:
    raw = _route(api, port, b"{}").replace(b"\r\n\r\n", b"\r\nx-pad: %b\r\n\r\n"
                                           % (b"a" * rng.randint(70_000, 200_000)), 1)
    return Bad("oversized head", raw, (431,), closes=True)


def oversized_body(rng: random.Random, port: int, api: Api) -> Bad:
    raw = _route(api, port, b"").replace(b"content-length: 0", b"content-length: %d"
                                         % rng.randint(10**8, 10**12))
    return Bad("oversized body", raw, (413,), closes=True)


FRAMINGS = {
    "smuggling (CL+TE)": (b"content-length: 5\r\ntransfer-encoding: chunked", (400,)),
    "smuggling (two lengths)": (b"content-length: 5\r\ncontent-length: 45", (400,)),
    "smuggling (TE obfuscated)": (b"transfer-encoding: chunked, identity", (400, 501)),
    "smuggling (TE xchunked)": (b"transfer-encoding: xchunked", (400, 501)),
    "smuggling (TE space)": (b"transfer-encoding : chunked", (400,)),
}


def smuggling(rng: random.Random, port: int, api: Api) -> Bad:
    name = rng.choice(list(FRAMINGS))
    framing, statuses = FRAMINGS[name]
    head = f"POST {api.path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n" \
           "content-type: application/json\r\n".encode()
    raw = head + framing + b"\r\n\r\n0\r\n\r\n" + SMUGGLED
    return Bad(name, raw, statuses, closes=True)


def garbage(rng: random.Random, port: int, api: Api) -> Bad:
    raw = rng.choice((b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n",  # and a TLS hello:
                      b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n"))
    return Bad("garbage", raw, (400,), closes=True)


CASES: dict[Callable[[random.Random, int, Api], Bad], int] = {
    bad_json: 4, wrong_type: 4, deep_nesting: 1, lone_surrogate: 2, content_type: 2,
    bad_host: 1, unknown_route: 1, oversized_head: 1, oversized_body: 1, smuggling: 3,
    garbage: 1}


def draw(rng: random.Random, port: int) -> Bad:
    case = rng.choices(list(CASES), list(CASES.values()))[0]
    return case(rng, port, rng.choice(list(APIS.values())))

