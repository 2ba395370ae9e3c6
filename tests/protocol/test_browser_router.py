"""The browser rules through the router, over the HTTP/1.1 server: refusals come
before any route (a route would answer these requests with a 401, as no credentials
exist here), in the dialect's error shape, and grant no CORS header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing

from .helpers import RawClient
from .test_router import connect

EVIL = ("origin", "http://evil.example")
CHAT_BODY = json.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]})
POSTS = [  # path, body, extra headers, how the dialect's error shape is read
    ("/v1/chat/completions", CHAT_BODY, [], lambda body: body["error"]["message"]),
    ("/api/chat", CHAT_BODY, [], lambda body: body["error"]),
    ("/v1/messages", json.dumps({"model": "claude-sonnet-4", "max_tokens": 5, "messages": []}),
     [("anthropic-version", "2023-06-01")], lambda body: body["error"]["message"]),
]


def grants(headers: dict[bytes, bytes]) -> set[bytes]:
    return {name for name in headers if name.startswith(b"access-control-")}


@pytest.mark.parametrize(("path", "body", "extra", "message"), POSTS)
@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
async def test_a_foreign_simple_post_is_a_403_before_the_route(
        nursery: trio.Nursery, tmp_path: Path, path: str, body: str,
        extra: list[tuple[str, str]], message: object, origin: str) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("POST", path, body.encode(), [
        ("origin", origin), ("content-type", "text/plain;charset=UTF-8"), *extra])
    assert reply.status == 403
    assert "is not allowed" in message(json.loads(reply.body))  # type: ignore[operator]
    assert not grants(reply.headers)
    assert (await client.request("GET", "/health")).status == 200  # the connection serves on


async def test_anthropic_refusals_are_permission_errors(nursery: trio.Nursery,
                                                        tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("POST", "/v1/messages", b"{}", [EVIL])
    assert json.loads(reply.body)["error"]["type"] == "permission_error"


async def test_a_foreign_preflight_gets_no_grant(nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    for origin in ("http://evil.example", "null"):
        reply = await client.request("OPTIONS", "/v1/chat/completions", headers=[
            ("origin", origin), ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type")])
        assert reply.status == 403
        assert not grants(reply.headers)


async def test_a_loopback_preflight_gets_the_route_methods_and_known_headers(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("OPTIONS", "/v1/chat/completions", headers=[
        ("origin", "http://localhost:3000"), ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization, content-type, x-evil")])
    assert reply.status == 204
    assert reply.headers[b"access-control-allow-origin"] == b"http://localhost:3000"
    assert reply.headers[b"vary"] == b"Origin"
    assert reply.headers[b"access-control-allow-methods"] == b"POST"
    assert reply.headers[b"access-control-allow-headers"] == b"authorization, content-type"
    models = await client.request("OPTIONS", "/v1/models/gpt-5.4", headers=[
        ("origin", "http://127.0.0.1:5173"), ("access-control-request-method", "GET")])
    assert models.headers[b"access-control-allow-methods"] == b"GET, HEAD"
    missing = await client.request("OPTIONS", "/v1/nope", headers=[
        ("origin", "http://localhost:3000"), ("access-control-request-method", "POST")])
    assert missing.status == 404


async def test_a_plain_options_lists_the_methods(nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("OPTIONS", "/v1/responses")
    assert reply.status == 204
    assert reply.headers[b"allow"] == b"GET, POST"
    assert not grants(reply.headers)


async def test_answers_echo_an_allowed_origin_and_nothing_without_one(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path, cors_origins=("https://chat.example.com",))
    plain = await client.request("GET", "/v1/models")
    assert plain.status == 200
    assert not grants(plain.headers) and plain.headers[b"vary"] == b"Origin"
    for origin in ("https://chat.example.com", "vscode-webview://abc", "http://[::1]:8000"):
        reply = await client.request("GET", "/v1/models", headers=[("origin", origin)])
        assert reply.status == 200
        assert reply.headers[b"access-control-allow-origin"] == origin.encode()
    refused = await client.request("GET", "/v1/models", headers=[EVIL])
    assert refused.status == 403


async def test_a_star_is_answered_with_a_star(nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path, cors_origins=("*",))
    reply = await client.request("GET", "/v1/models", headers=[EVIL])
    assert reply.status == 200
    assert reply.headers[b"access-control-allow-origin"] == b"*"
    assert b"access-control-allow-credentials" not in reply.headers


async def test_a_refused_origin_is_checked_before_the_token(nursery: trio.Nursery,
                                                            tmp_path: Path) -> None:
    client = connect(nursery, tmp_path, access_token="tok")
    reply = await client.request("GET", "/v1/models",
                                 headers=[EVIL, ("authorization", "Bearer tok")])
    assert reply.status == 403


@pytest.mark.parametrize("host", ["evil.example:8000", "127.0.0.1.nip.io", "localhost.evil"])
async def test_a_foreign_host_is_a_403_on_a_loopback_bind(nursery: trio.Nursery, tmp_path: Path,
                                                          host: str) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("GET", "/v1/models", headers=[("host", host)])
    assert reply.status == 403
    assert "DNS rebinding" in json.loads(reply.body)["error"]["message"]
    health = await client.request("GET", "/health", headers=[("host", host)])
    assert health.status == 403


async def test_allowed_hosts_and_public_binds_pass_the_host_check(nursery: trio.Nursery,
                                                                  tmp_path: Path) -> None:
    named = connect(nursery, tmp_path, allowed_hosts=("chatmock.internal",))
    reply = await named.request("GET", "/v1/models", headers=[("host", "chatmock.internal:80")])
    assert reply.status == 200
    public = connect(nursery, tmp_path, host="0.0.0.0", access_token="tok")
    reply = await public.request("GET", "/v1/models", headers=[
        ("host", "my-box.lan:8000"), ("authorization", "Bearer tok")])
    assert reply.status == 200


async def test_an_http10_request_without_host_is_served(nursery: trio.Nursery,
                                                        tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    await client.stream.send_all(b"GET /health HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := await client.stream.receive_some(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(("path", "body", "extra", "message"), POSTS)
@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x"])
async def test_a_non_json_body_is_a_415_in_the_dialect_shape(
        nursery: trio.Nursery, tmp_path: Path, path: str, body: str,
        extra: list[tuple[str, str]], message: object, kind: str) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("POST", path, body.encode(), [
        ("origin", "http://localhost:3000"), ("content-type", kind), *extra])
    assert reply.status == 415
    text = message(json.loads(reply.body))  # type: ignore[operator]
    assert "Content-Type: application/json" in text
    assert reply.headers[b"access-control-allow-origin"] == b"http://localhost:3000"


async def test_json_content_types_reach_the_route(nursery: trio.Nursery, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Without credentials the route answers 401: the body was let through."""
    monkeypatch.setenv("HOME", str(tmp_path))
    client = connect(nursery, tmp_path)
    for kind in ("application/json; charset=utf-8", "application/vnd.openai+json", None):
        headers = [("content-type", kind)] if kind else []
        reply = await client.request("POST", "/v1/chat/completions", CHAT_BODY.encode(), headers)
        assert reply.status == 401, reply.body


async def upgrade(client: RawClient, origin: str | None) -> bytes:
    head = (b"GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n")
    if origin is not None:
        head += b"Origin: " + origin.encode() + b"\r\n"
    await client.stream.send_all(head + b"\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += await client.stream.receive_some(65536)
    return answer


@pytest.mark.parametrize(("origin", "status"), [
    ("http://evil.example", b"403"), ("null", b"403"), ("http://localhost:3000", b"101"),
    (None, b"101")])
async def test_websocket_handshakes_follow_the_origin_rule(
        nursery: trio.Nursery, tmp_path: Path, origin: str | None, status: bytes) -> None:
    answer = await upgrade(connect(nursery, tmp_path), origin)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"access-control-" not in answer.lower()  # browsers apply no CORS to WebSockets
