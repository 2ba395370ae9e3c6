"""Ollama's model and server routes over the router: tags, show, ps, version, `/`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from chatmock.app import App, build_app
from chatmock.catalog import Catalog, ModelSpec
from chatmock.config import Settings
from chatmock.routes import TABLE
from chatmock.routes.ollama_meta import CONTEXT_LENGTH
from chatmock.server.exchange import ConnectionLimits
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.router import Router
from chatmock.state.recent_models import RecentModels

from .helpers import RawClient

DETAIL_KEYS = {"parent_model", "format", "family", "families", "parameter_size",
               "quantization_level"}


def connect(nursery: trio.Nursery, tmp_path: Path, **settings: object) -> tuple[RawClient, App]:
    settings.setdefault("model_sync", False)
    app = build_app(Settings(**settings), env={"CHATGPT_LOCAL_HOME": str(tmp_path)})  # type: ignore[arg-type]
    client_stream, server_stream = trio.testing.memory_stream_pair()
    router = Router(app, TABLE)
    nursery.start_soon(H1Connection(server_stream, router, ConnectionLimits(), Lifecycle()).serve)
    return RawClient(client_stream), app


async def get_json(client: RawClient, method: str, path: str,
                   body: Any = None) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    reply = await client.request(method, path, raw, [("content-type", "application/json")])
    assert reply.headers[b"content-type"] == b"application/json"
    return reply.status, json.loads(reply.body)


async def test_tags_list_the_openai_ids(nursery: trio.Nursery, tmp_path: Path) -> None:
    client, app = connect(nursery, tmp_path)
    status, body = await get_json(client, "GET", "/api/tags")
    assert status == 200
    names = [entry["name"] for entry in body["models"]]
    assert names == app.catalog.listed_ids(expose_variants=False)
    entry = body["models"][0]
    assert entry["model"] == entry["name"] == "gpt-5"
    assert entry["digest"] == hashlib.sha256(b"gpt-5").hexdigest()
    assert entry["modified_at"].endswith("Z") and entry["size"] > 0
    assert set(entry["details"]) == DETAIL_KEYS
    assert entry["details"]["families"] == [entry["details"]["family"]]


async def test_tags_with_variants_add_colon_tags(nursery: trio.Nursery, tmp_path: Path) -> None:
    client, app = connect(nursery, tmp_path, expose_reasoning_models=True)
    _, body = await get_json(client, "GET", "/api/tags")
    names = [entry["name"] for entry in body["models"]]
    assert set(app.catalog.listed_ids(expose_variants=True)) <= set(names)
    assert {"gpt-5.4", "gpt-5.4-high", "gpt-5.4:high", "gpt-5.4:none"} <= set(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("key", ["model", "name"])
async def test_show_accepts_model_and_name(nursery: trio.Nursery, tmp_path: Path,
                                           key: str) -> None:
    client, _ = connect(nursery, tmp_path)
    status, body = await get_json(client, "POST", "/api/show", {key: "gpt-5.4"})
    assert status == 200
    for field in ("modelfile", "parameters", "template", "modified_at"):
        assert isinstance(body[field], str) and body[field]
    assert "FROM gpt-5.4" in body["modelfile"]
    assert set(body["details"]) == DETAIL_KEYS
    info = body["model_info"]
    assert info[f"{info['general.architecture']}.context_length"] == CONTEXT_LENGTH
    assert isinstance(info["general.parameter_count"], int)
    assert body["capabilities"] == ["completion", "tools", "vision", "thinking"]


@pytest.mark.parametrize("name", ["gpt-5.4:latest", "gpt-5.4:high", "gpt-5.4-high",
                                  "gpt5.4", "GPT-5.4:8b", "gpt-5.4-high:latest"])
async def test_show_maps_tags_and_aliases(nursery: trio.Nursery, tmp_path: Path,
                                          name: str) -> None:
    client, _ = connect(nursery, tmp_path)
    status, body = await get_json(client, "POST", "/api/show", {"model": name})
    assert status == 200
    assert body["model_info"]["general.basename"] == "gpt-5.4"


async def test_show_without_reasoning_has_no_thinking(nursery: trio.Nursery,
                                                      tmp_path: Path) -> None:
    client, app = connect(nursery, tmp_path)
    app.models.catalog = Catalog((ModelSpec("plain", ("none",)),))
    _, body = await get_json(client, "POST", "/api/show", {"model": "plain"})
    assert body["capabilities"] == ["completion", "tools", "vision"]


@pytest.mark.parametrize("body", [{}, {"model": ""}, {"model": 5}, {"name": "  "}, []])
async def test_show_without_a_model_is_400(nursery: trio.Nursery, tmp_path: Path,
                                           body: Any) -> None:
    client, _ = connect(nursery, tmp_path)
    status, answer = await get_json(client, "POST", "/api/show", body)
    assert (status, answer) == (400, {"error": "model is required"})


async def test_show_errors_are_in_ollama_shape(nursery: trio.Nursery, tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path)
    status, answer = await get_json(client, "POST", "/api/show", {"model": "llama3:8b"})
    assert (status, answer) == (404, {"error": "model 'llama3:8b' not found"})
    reply = await client.request("POST", "/api/show", b"{broken")
    assert reply.status == 400
    assert list(json.loads(reply.body)) == ["error"]
    status, answer = await get_json(client, "GET", "/api/show")
    assert status == 405 and isinstance(answer["error"], str)


async def test_version_is_a_numeric_triple(nursery: trio.Nursery, tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path)
    status, body = await get_json(client, "GET", "/api/version")
    assert status == 200
    assert [int(part) for part in body["version"].split(".")] >= [0, 9, 0]


async def test_ps_lists_recent_models(nursery: trio.Nursery, tmp_path: Path) -> None:
    client, app = connect(nursery, tmp_path)
    assert await get_json(client, "GET", "/api/ps") == (200, {"models": []})
    app.recent.touch("gpt-5.4")
    app.recent.touch("gpt-5.4-mini:latest")
    _, body = await get_json(client, "GET", "/api/ps")
    assert [entry["name"] for entry in body["models"]] == ["gpt-5.4-mini:latest", "gpt-5.4"]
    entry = body["models"][1]
    assert entry["model"] == "gpt-5.4" and entry["size_vram"] == entry["size"] > 0
    assert entry["expires_at"].endswith("Z") and entry["context_length"] == CONTEXT_LENGTH
    assert set(entry["details"]) == DETAIL_KEYS


def test_recent_models_expire_and_stay_bounded() -> None:
    now = [1000.0]
    recent = RecentModels(capacity=2, clock=lambda: now[0])
    recent.touch("a")
    recent.touch("b", keep_alive=10)
    recent.touch("forever", keep_alive=-1)
    assert [entry.name for entry in recent.active()] == ["forever", "b"]
    now[0] += 11
    assert [entry.name for entry in recent.active()] == ["forever"]
    recent.touch("forever", keep_alive=0)  # keep_alive 0 unloads at once
    assert recent.active() == []


async def test_ps_survives_keep_alives_beyond_any_date(nursery: trio.Nursery,
                                                     tmp_path: Path) -> None:
    """Regression: a keep_alive of 1e20 s (or an integer beyond float's range) used to give
    an expiry no date can hold, and /api/ps answered 500 from then on."""
    client, _ = connect(nursery, tmp_path)
    for model, keep_alive in (("a", b"1e20"), ("b", b"1" + b"0" * 400), ("c", b'"1e400s"'),
                              ("d", b'"nan"'), ("e", b"-" + b"9" * 400)):
        body = b'{"model": "%s", "keep_alive": %s}' % (model.encode(), keep_alive)
        reply = await client.request("POST", "/api/generate", body,
                                     [("content-type", "application/json")])
        assert reply.status == 200, reply.body
    status, listed = await get_json(client, "GET", "/api/ps")
    assert status == 200
    expiry = {entry["name"]: entry["expires_at"] for entry in listed["models"]}
    assert expiry["a"] == expiry["b"] == expiry["c"] == expiry["e"] == "9999-12-31T23:59:59Z"
    assert expiry["d"] < "9999"  # not a number: the default five minutes


async def test_root_answers_like_ollama(nursery: trio.Nursery, tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path)
    for accept in ([], [("accept", "*/*")], [("accept", "text/plain")]):
        reply = await client.request("GET", "/", headers=accept)
        assert (reply.status, reply.body) == (200, b"Ollama is running")
        assert reply.headers[b"content-type"].startswith(b"text/plain")
    head = await client.request("HEAD", "/")
    assert (head.status, head.body) == (200, b"")
    assert head.headers[b"content-type"].startswith(b"text/plain")
    assert head.headers[b"content-length"] == b"17"


async def test_root_and_health_give_json_status(nursery: trio.Nursery, tmp_path: Path) -> None:
    client, _ = connect(nursery, tmp_path, access_token="s3cret")
    reply = await client.request("GET", "/", headers=[("accept", "application/json")])
    assert json.loads(reply.body)["status"] == "ok"
    for accept in ([], [("accept", "text/plain")]):
        reply = await client.request("GET", "/health", headers=accept)
        assert json.loads(reply.body)["status"] == "ok"
    assert (await client.request("GET", "/api/tags")).status == 401  # open paths stay few
