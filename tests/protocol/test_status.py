"""The status page and `/status.json` over the router, and the access record of every route."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from chatmock.app import App, build_app
from chatmock.config import Settings
from chatmock.routes import TABLE
from chatmock.server.exchange import ConnectionLimits
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.router import Router
from chatmock.testing.credentials import write_auth_file
from chatmock.upstream.gate import Gate

from .gateway import Gateway, running_gateway
from .helpers import RawClient

HTML = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]
LIMIT_HEADERS = [(b"x-codex-primary-used-percent", b"62.5"),
                 (b"x-codex-primary-window-minutes", b"300"),
                 (b"x-codex-primary-reset-after-seconds", b"3600")]


def connect(nursery: trio.Nursery, tmp_path: Path, *, signed_in: bool = True,
            **settings: object) -> tuple[RawClient, App]:
    if signed_in:
        write_auth_file(tmp_path, email="ada@example.com", plan="pro")
    app = build_app(Settings(model_sync=False, **settings),  # type: ignore[arg-type]
                    env={"CHATGPT_LOCAL_HOME": str(tmp_path)})
    client_stream, server_stream = trio.testing.memory_stream_pair()
    router = Router(app, TABLE)
    nursery.start_soon(H1Connection(server_stream, router, ConnectionLimits(), Lifecycle()).serve)
    return RawClient(client_stream), app


async def test_a_browser_gets_the_page_with_a_strict_policy(nursery: trio.Nursery,
                                                            tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path)
    reply = await client.request("GET", "/", headers=HTML)
    assert reply.status == 200
    assert reply.headers[b"content-type"] == b"text/html; charset=utf-8"
    assert reply.headers[b"x-frame-options"] == b"DENY"
    assert len(reply.body) < 16_000 and b"http" not in reply.body.split(b"<script>")[0]
    policy = reply.headers[b"content-security-policy"].decode()
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "connect-src 'self'" in policy and "unsafe" not in policy
    for tag in ("script", "style"):  # the inline script and style run: their hashes match
        inline = re.search(rf"<{tag}>(.*?)</{tag}>".encode(), reply.body, re.S)
        assert inline is not None
        digest = base64.b64encode(hashlib.sha256(inline.group(1)).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    head = await client.request("HEAD", "/", headers=HTML)
    assert head.status == 200 and head.body == b""


async def test_status_json_shows_the_account_usage_models_and_providers(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    client, app = connect(nursery, tmp_path, responses_store="memory")
    app.usage.record(LIMIT_HEADERS)
    app.gates["chatgpt"] = Gate("chatgpt", 4, queue_timeout=5)
    reply = await client.request("GET", "/status.json")
    assert reply.status == 200 and reply.headers[b"cache-control"] == b"no-store"
    status = json.loads(reply.body)
    [account] = status["accounts"]
    assert (account["provider"], account["login"], account["plan"]) == (
        "chatgpt", "ada@example.com", "Pro")
    [window] = account["usage_limits"]["windows"]
    assert window["used_percent"] == 62.5 and window["resets_at_rfc3339"].endswith("Z")
    assert "gpt-5.4" in [model["id"] for model in status["models"]["list"]]
    assert status["responses_store"]["kind"] == "memory"
    providers = {provider["name"]: provider for provider in status["providers"]}
    assert providers["chatgpt"]["default"] and providers["chatgpt"]["usable"]
    assert providers["chatgpt"]["gate"]["permits"] == 4
    assert providers["xai"]["gate"] is None and providers["xai"]["missing"] == ["XAI_API_KEY"]
    assert status["server"]["version"] and status["live"] == [] and status["errors"] == []
    credentials = app.backend.credentials.current()
    assert credentials is not None
    for secret in (credentials.access_token, credentials.id_token, credentials.refresh_token):
        assert secret.encode() not in reply.body


async def test_signed_out_and_before_any_answer_the_page_says_so(nursery: trio.Nursery,
                                                                  tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path, signed_in=False)
    status = json.loads((await client.request("GET", "/status.json")).body)
    [account] = status["accounts"]
    assert account == {"signed_in": False, "message": "Not signed in",
                       "hint": "Run: chatmock login", "provider": "chatgpt",
                       "usage_limits": {"message": account["usage_limits"]["message"]}}
    assert "No usage data" in account["usage_limits"]["message"]


async def test_with_an_access_token_the_json_needs_it_and_the_page_does_not(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path, access_token="s3cret-token")
    assert (await client.request("GET", "/status.json")).status == 401
    wrong = await client.request("GET", "/status.json", headers=[("authorization", "Bearer x")])
    assert wrong.status == 401
    right = await client.request("GET", "/status.json",
                                 headers=[("authorization", "Bearer s3cret-token")])
    assert right.status == 200 and json.loads(right.body)["accounts"]
    page = await client.request("GET", "/", headers=HTML)
    assert page.status == 200 and b"s3cret" not in page.body
    errors = json.loads(right.body)["errors"]
    assert [error["status"] for error in errors] == [401, 401]


async def test_the_browser_rules_guard_the_status_too(nursery: trio.Nursery,
                                                      tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path)
    foreign = await client.request("GET", "/status.json",
                                   headers=[("origin", "http://evil.example")])
    assert foreign.status == 403 and b"access-control-allow-origin" not in foreign.headers
    rebound = await client.request("GET", "/", headers=[("host", "evil.example"), *HTML])
    assert rebound.status == 403
    local = await client.request("GET", "/status.json",
                                 headers=[("origin", "http://localhost:3000")])
    assert local.status == 200


# --- against the fake backend ----------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("status-home")) as running:
        yield running


def chat(stream: bool) -> dict[str, Any]:
    return {"model": "gpt-5.4", "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}


def get_json(port: int, path: str) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def test_a_stream_is_live_while_it_runs_and_gone_after(gateway: Gateway) -> None:
    body = {**chat(True), "messages": [{"role": "user", "content": "slow fake:delay_ms=300"}]}
    done = threading.Event()

    def run() -> None:
        gateway.post("/v1/chat/completions", json.dumps(body).encode(), {})
        done.set()

    threading.Thread(target=run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not (live := get_json(gateway.port, "/status.json")["live"]) or not (
            live[0]["streaming"] and live[0]["bytes"]):  # the model is noted before the stream
        assert time.monotonic() < deadline and not done.is_set()
        time.sleep(0.02)
    [entry] = live
    assert (entry["method"], entry["path"], entry["model"]) == (
        "POST", "/v1/chat/completions", "gpt-5.4")
    assert entry["dialect"] == "openai" and entry["client"].startswith("127.0.0.1:")
    assert done.wait(30)
    assert get_json(gateway.port, "/status.json")["live"] == []
