"""The official `ollama` package lists, shows and ps-es chatmock's models over a socket."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import ollama
import pytest

from .conftest import Process, start_chatmock


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path_factory.mktemp("ollama-meta"), fake_upstream,
                             "--expose-reasoning-models")
    yield process
    process.stop()


def client(server: Process) -> ollama.Client:
    return ollama.Client(host=server.url)


def test_list_validates_and_has_the_discovered_models(server: Process) -> None:
    with client(server) as ollama_client:
        listed = ollama_client.list()
    names = [model.model for model in listed.models]
    assert "gpt-5.4" in names and "gpt-5.4-high" in names and "gpt-5.4:high" in names
    first = listed.models[0]
    assert first.details is not None and first.details.format == "gguf"
    assert first.size and first.size > 0 and first.modified_at is not None


@pytest.mark.parametrize("name", ["gpt-5.4", "gpt-5.4:latest", "gpt-5.4:high"])
def test_show_validates(server: Process, name: str) -> None:
    with client(server) as ollama_client:
        shown = ollama_client.show(name)
    assert shown.capabilities == ["completion", "tools", "vision", "thinking"]
    assert shown.modelinfo is not None
    arch = shown.modelinfo["general.architecture"]
    assert shown.modelinfo[f"{arch}.context_length"] > 100_000
    assert shown.template and shown.modelfile and shown.parameters
    assert shown.details is not None and shown.details.family == arch


def test_show_of_an_unknown_model_is_a_404(server: Process) -> None:
    with client(server) as ollama_client, pytest.raises(ollama.ResponseError) as caught:
        ollama_client.show("llama3:8b")
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'llama3:8b' not found"


def test_ps_validates(server: Process) -> None:
    with client(server) as ollama_client:
        running = ollama_client.ps()
    assert isinstance(running.models, list)  # chats fill it; none ran in this process


def test_version_and_root_raw(server: Process) -> None:
    with urllib.request.urlopen(f"{server.url}/api/version") as reply:
        version = json.load(reply)["version"]
    assert tuple(int(part) for part in version.split(".")) >= (0, 9, 0)
    with urllib.request.urlopen(f"{server.url}/") as reply:
        assert reply.read() == b"Ollama is running"
    head = urllib.request.Request(f"{server.url}/", method="HEAD")
    with urllib.request.urlopen(head) as reply:
        assert reply.status == 200 and reply.read() == b""



def test_ps_lists_a_model_after_a_chat(chatmock_server: Process) -> None:
    with client(chatmock_server) as ollama_client:
        ollama_client.chat(model="gpt-5.4:latest", stream=False, keep_alive="10m",
                           messages=[{"role": "user", "content": "ps check"}])
        names = [model.model for model in ollama_client.ps().models]
    assert "gpt-5.4:latest" in names
