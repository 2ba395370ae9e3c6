"""Router behaviour shared by all routes: access token, error shapes (the browser rules:
test_browser_router.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing

from chatmock.app import build_app
from chatmock.config import Settings
from chatmock.routes import TABLE
from chatmock.server.exchange import ConnectionLimits
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.router import Router

from .helpers import RawClient


def connect(nursery: trio.Nursery, tmp_path: Path, **settings: object) -> RawClient:
    settings.setdefault("model_sync", False)  # never reach for a real backend from a test
    app = build_app(Settings(**settings), env={"CHATGPT_LOCAL_HOME": str(tmp_path)})  # type: ignore[arg-type]
    client_stream, server_stream = trio.testing.memory_stream_pair()
    router = Router(app, TABLE)
    nursery.start_soon(H1Connection(server_stream, router, ConnectionLimits(), Lifecycle()).serve)
    return RawClient(client_stream)


async def test_health_and_root(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Both answer 200 with the JSON status; `/` only when JSON is asked for, as it
    otherwise answers Ollama's "Ollama is running" (tests/protocol/test_ollama_meta.py)."""
    client = connect(nursery, tmp_path)
    for path in ("/", "/health"):
        reply = await client.request("GET", path, headers=[("accept", "application/json")])
        assert reply.status == 200
        assert json.loads(reply.body)["status"] == "ok"
    assert (await client.request("GET", "/")).body == b"Ollama is running"


async def test_health_shows_how_full_the_memory_store_is(nursery: trio.Nursery,
                                                         tmp_path: Path) -> None:
    client = connect(nursery, tmp_path, responses_store="memory", responses_capacity=50,
                     responses_max_bytes=123_456)
    figures = json.loads((await client.request("GET", "/health")).body)["responses_store"]
    assert figures == {"kind": "memory", "entries": 0, "bytes": 0, "max_entries": 50,
                       "max_bytes": 123_456}
    client = connect(nursery, tmp_path)
    figures = json.loads((await client.request("GET", "/health")).body)["responses_store"]
    assert figures == {"kind": "sqlite"}


async def test_unknown_path_is_404_in_openai_shape(nursery: trio.Nursery,
                                                   tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("GET", "/v1/nope")
    assert reply.status == 404
    assert json.loads(reply.body)["error"]["message"].startswith("no route")


async def test_error_shapes_follow_the_dialect(nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    ollama = await client.request("GET", "/api/nope")
    assert json.loads(ollama.body) == {"error": "no route for GET /api/nope"}
    anthropic = await client.request("GET", "/v1/nope", headers=[("anthropic-version", "x")])
    body = json.loads(anthropic.body)
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"


async def test_wrong_method_is_405_with_allow(nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("GET", "/v1/chat/completions")
    assert reply.status == 405
    assert reply.headers[b"allow"] == b"POST"


@pytest.mark.parametrize(("header", "value", "status"), [
    (None, None, 401),
    ("authorization", "Bearer wrong", 401),
    ("authorization", "Bearer s3cret-token", 200),
    ("x-api-key", "s3cret-token", 200),
])
async def test_access_token_is_required_on_api_routes(
        nursery: trio.Nursery, tmp_path: Path, header: str | None, value: str | None,
        status: int) -> None:
    client = connect(nursery, tmp_path, access_token="s3cret-token")
    headers = [(header, value)] if header and value else []
    reply = await client.request("GET", "/v1/models", headers=headers)
    assert reply.status == status
    assert (await client.request("GET", "/health")).status == 200


async def test_malformed_json_is_400_and_connection_survives(nursery: trio.Nursery,
                                                             tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    reply = await client.request("POST", "/v1/chat/completions", b"{not json",
                                 [("content-type", "application/json")])
    assert reply.status == 400
    assert "Invalid JSON" in json.loads(reply.body)["error"]["message"]
    assert (await client.request("GET", "/health")).status == 200


async def test_missing_credentials_is_401_naming_login(nursery: trio.Nursery, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    client = connect(nursery, tmp_path)
    body = json.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]})
    reply = await client.request("POST", "/v1/chat/completions", body.encode())
    assert reply.status == 401
    assert "chatmock login" in json.loads(reply.body)["error"]["message"]


async def test_models_list_and_single_model(nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path, expose_reasoning_models=True)
    listed = json.loads((await client.request("GET", "/v1/models")).body)
    ids = [entry["id"] for entry in listed["data"]]
    assert "gpt-5.4" in ids and "gpt-5.4-high" in ids
    assert all(entry["object"] == "model" and "owned_by" in entry for entry in listed["data"])
    one = await client.request("GET", "/v1/models/gpt-5.4-high")
    assert json.loads(one.body)["id"] == "gpt-5.4-high"
    missing = await client.request("GET", "/v1/models/not-a-model")
    assert missing.status == 404


async def test_models_in_anthropic_shape_when_anthropic_headers_are_sent(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    client = connect(nursery, tmp_path)
    headers = [("anthropic-version", "2023-06-01")]
    listed = json.loads((await client.request("GET", "/v1/models", headers=headers)).body)
    assert listed["has_more"] is False
    assert listed["first_id"] == listed["data"][0]["id"]
    assert listed["last_id"] == listed["data"][-1]["id"]
    first = listed["data"][0]
    assert first["type"] == "model" and first["display_name"] and first["created_at"]
    one = json.loads((await client.request("GET", "/v1/models/gpt-5.4", headers=headers)).body)
    assert one["type"] == "model" and one["id"] == "gpt-5.4"
