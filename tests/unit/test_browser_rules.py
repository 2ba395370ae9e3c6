"""The browser rules (chatmock/server/browser.py) as pure functions: Host, Origin,
preflight grants, Content-Type."""

from __future__ import annotations

import pytest

from chatmock.config import Settings
from chatmock.errors import ClientError
from chatmock.server.browser import (
    BrowserPolicy,
    admit,
    host_name,
    origin_allowed,
    preflight,
    require_json,
)

DEFAULT = BrowserPolicy.from_settings(Settings())


def policy(**settings: object) -> BrowserPolicy:
    return BrowserPolicy.from_settings(Settings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("origin", [
    b"http://localhost", b"http://localhost:3000", b"https://localhost:8443",
    b"http://127.0.0.1:5173", b"https://127.0.0.1", b"http://[::1]:8080", b"http://[::1]",
    b"HTTP://LOCALHOST:3000", b"app://obsidian.md", b"tauri://localhost",
    b"vscode-webview://1a2b3c4d",
])
def test_loopback_and_app_origins_are_allowed_by_default(origin: bytes) -> None:
    assert origin_allowed(DEFAULT, origin)


@pytest.mark.parametrize("origin", [
    b"null", b"http://evil.example", b"https://evil.example:443", b"http://localhost.evil.example",
    b"http://127.0.0.1.nip.io:8000", b"http://localhost@evil.example", b"http://[::1].evil",
    b"http://localhost:80x", b"http://0.0.0.0:8000", b"http://127.0.0.2", b"file://",
    b"ftp://localhost", b"localhost:3000", b"", b"http://", b"chrome-extension://abc",
    b"http://localhost:3000/path",
])
def test_other_origins_are_refused_by_default(origin: bytes) -> None:
    assert not origin_allowed(DEFAULT, origin)


def test_configured_origins_are_added_exactly() -> None:
    custom = policy(cors_origins=("https://chat.example.com", "http://10.0.0.5:3000"))
    assert origin_allowed(custom, b"https://chat.example.com")
    assert origin_allowed(custom, b"http://10.0.0.5:3000")
    assert origin_allowed(custom, b"http://localhost:3000")  # the defaults stay
    assert not origin_allowed(custom, b"http://chat.example.com")
    assert not origin_allowed(custom, b"https://chat.example.com:8443")
    assert not origin_allowed(custom, b"https://evil.chat.example.com")
    assert not origin_allowed(custom, b"null")


def test_a_star_allows_any_origin_and_is_answered_with_a_star() -> None:
    star = policy(cors_origins=("*",))
    assert origin_allowed(star, b"null") and origin_allowed(star, b"https://any.example")
    headers = admit(star, {b"origin": b"https://any.example"})
    assert (b"access-control-allow-origin", b"*") in headers
    assert not any(name == b"access-control-allow-credentials" for name, _ in headers)


def test_an_allowed_origin_is_echoed_with_vary() -> None:
    headers = admit(DEFAULT, {b"host": b"127.0.0.1:8000", b"origin": b"http://localhost:3000"})
    assert headers == [(b"access-control-allow-origin", b"http://localhost:3000"),
                       (b"vary", b"Origin")]


def test_a_request_without_origin_gets_no_cors_grant() -> None:
    assert admit(DEFAULT, {b"host": b"localhost:8000"}) == [(b"vary", b"Origin")]


@pytest.mark.parametrize("origin", [b"null", b"http://evil.example"])
def test_a_refused_origin_is_a_403(origin: bytes) -> None:
    with pytest.raises(ClientError) as refused:
        admit(DEFAULT, {b"host": b"localhost:8000", b"origin": origin})
    assert refused.value.status == 403
    assert refused.value.code == "origin_not_allowed"
    assert "--cors-origins" in refused.value.message


@pytest.mark.parametrize("host", [
    b"localhost", b"localhost:8000", b"127.0.0.1:8000", b"[::1]:8000", b"[::1]", b"LOCALHOST:1",
])
def test_loopback_host_names_pass(host: bytes) -> None:
    assert admit(DEFAULT, {b"host": host}) == [(b"vary", b"Origin")]


@pytest.mark.parametrize("host", [
    b"evil.example", b"evil.example:8000", b"localhost.evil.example:8000", b"127.0.0.1.nip.io",
    b"localhost:8000:1", b"localhost:x", b"[::1]x", b"", b"[::1", b"0.0.0.0:8000",
    b"localhost.:8000", b"localhost:",
])
def test_other_host_names_are_a_403_on_a_loopback_bind(host: bytes) -> None:
    with pytest.raises(ClientError) as refused:
        admit(DEFAULT, {b"host": host})
    assert refused.value.status == 403
    assert refused.value.code == "host_not_allowed"
    assert "--allowed-hosts" in refused.value.message


def test_the_bound_address_and_allowed_hosts_pass() -> None:
    bound = policy(host="127.0.0.5", allowed_hosts=("chatmock.internal", "[fd00::1]"))
    for host in (b"127.0.0.5:8000", b"chatmock.internal", b"CHATMOCK.internal:80",
                 b"[fd00::1]:8000", b"localhost"):
        admit(bound, {b"host": host})
    with pytest.raises(ClientError):
        admit(bound, {b"host": b"other.internal"})
    ipv6 = policy(host="::1")
    admit(ipv6, {b"host": b"[::1]:9000"})


def test_a_request_without_host_passes() -> None:
    """Only HTTP/1.0 can omit Host (h11 refuses an HTTP/1.1 request without it), and
    browsers always send it, so its absence is no rebinding attempt."""
    assert admit(DEFAULT, {}) == [(b"vary", b"Origin")]


def test_the_host_check_is_off_on_a_public_bind() -> None:
    public = policy(host="0.0.0.0", access_token="t")
    assert public.hosts is None
    admit(public, {b"host": b"my-server.lan:8000"})
    with pytest.raises(ClientError):  # the Origin rule still holds
        admit(public, {b"host": b"my-server.lan:8000", b"origin": b"http://evil.example"})


@pytest.mark.parametrize(("authority", "name"), [
    (b"localhost:8000", b"localhost"), (b"Example.COM", b"example.com"),
    (b"[::1]:1", b"[::1]"), (b"a:b", b""), (b":8000", b""), (b"[::1]:", b""),
])
def test_host_name(authority: bytes, name: bytes) -> None:
    assert host_name(authority) == name


def test_preflight_grants_the_route_methods_and_only_known_headers() -> None:
    asked = {b"access-control-request-method": b"POST",
             b"access-control-request-headers":
                 b"Authorization, content-type,x-stainless-os, X-Evil, cookie, anthropic-version"}
    granted = dict(preflight(asked, {"POST": None}))
    assert granted[b"access-control-allow-methods"] == b"POST"
    assert granted[b"access-control-allow-headers"] == (
        b"authorization, content-type, x-stainless-os, anthropic-version")
    assert granted[b"access-control-max-age"] == b"600"
    both = dict(preflight({}, {"GET": None, "POST": None}))
    assert both[b"access-control-allow-methods"] == b"GET, HEAD, POST"
    assert both[b"access-control-allow-headers"] == b""


@pytest.mark.parametrize("kind", [
    None, b"application/json", b"application/json; charset=utf-8", b"Application/JSON",
    b"application/vnd.api+json", b"application/merge-patch+json;charset=UTF-8",
])
def test_json_bodies_pass(kind: bytes | None) -> None:
    require_json({} if kind is None else {b"content-type": kind})


@pytest.mark.parametrize("kind", [
    b"text/plain", b"text/plain;charset=UTF-8", b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x", b"application/octet-stream", b"", b"+json",
    b"text/json", b"application/jsonp",
])
def test_other_bodies_are_a_415_that_names_the_fix(kind: bytes) -> None:
    with pytest.raises(ClientError) as refused:
        require_json({b"content-type": kind})
    assert refused.value.status == 415
    assert "Content-Type: application/json" in refused.value.message
