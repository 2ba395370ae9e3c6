"""What `chatmock serve` prints: the start banner and one line per request, as text and as
JSON (`--log-format json`), read from the server's own output.

Each request line must carry the model, the status, the time to first byte and the
token counts the backend reported, for a streamed and for a whole answer; in JSON
every line of the output is one object, and secrets are redacted there too.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from .conftest import Process, start_chatmock

TOKEN = "access-log-token-0123456789"
WAIT_SECONDS = 10.0


@pytest.fixture(scope="module", params=["text", "json"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           fake_upstream: Process) -> Iterator[Process]:
    tmp = tmp_path_factory.mktemp(f"log-{request.param}")
    process = start_chatmock(tmp, fake_upstream, "--log-format", request.param,
                             "--access-token", TOKEN)
    process.log_format = request.param  # type: ignore[attr-defined]
    yield process
    process.stop()


def wait_for_line(server: Process, match: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = [line for line in server.log.read_text().splitlines() if match(line)]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.05)


def access_fields(server: Process, path: str, model: str) -> dict[str, Any]:
    """The access line of the request to `path` for `model`, as fields."""
    if server.log_format == "json":  # type: ignore[attr-defined]
        line = wait_for_line(server, lambda text: f'"path": "{path}"' in text
                             and f'"model": "{model}"' in text)
        fields: dict[str, Any] = json.loads(line)
        return fields
    line = wait_for_line(server, lambda text: f'"POST {path}"' in text
                         and f"model={model} " in text)
    words = line.split('"')[2].split()
    parsed: dict[str, Any] = {"status": int(words[0]), "duration_ms": float(words[1][:-2])}
    for word in words[2:]:
        key, _, value = word.partition("=")
        parsed[key] = value
    parsed["ttfb_ms"] = float(parsed["ttfb"][:-2])
    return parsed


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_each_request_line_has_model_status_ttfb_and_tokens(server: Process,
                                                            stream: bool) -> None:
    model = "gpt-5.4-mini" if stream else "gpt-5.4"
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0) as client:
        messages: Any = [{"role": "user", "content": "log me"}]
        if stream:
            for _ in client.chat.completions.create(model=model, messages=messages,
                                                    stream=True):
                pass
        else:
            client.chat.completions.create(model=model, messages=messages)
    fields = access_fields(server, "/v1/chat/completions", model)
    assert fields["status"] == 200 and fields["model"] == model
    assert int(fields["input_tokens"]) > 0 and int(fields["output_tokens"]) > 0
    assert 0 < fields["ttfb_ms"] <= fields["duration_ms"]
    if server.log_format == "json":  # type: ignore[attr-defined]
        assert fields["stream"] is stream and fields["method"] == "POST"
        assert fields["level"] == "INFO" and fields["logger"] == "chatmock.access"


def test_the_banner_names_every_base_url_and_the_account(server: Process) -> None:
    base = f"http://127.0.0.1:{server.port}"
    signed_in = wait_for_line(server, lambda line: "signed in as" in line)
    assert "user@example.com (Plus plan)" in signed_in
    log = server.log.read_text()
    if server.log_format == "json":  # type: ignore[attr-defined]
        listening = json.loads(wait_for_line(server, lambda line: "listening on" in line))
        assert listening["openai_base_url"] == base + "/v1"
        assert listening["anthropic_base_url"] == listening["ollama_base_url"] == base
        assert listening["status_page"] == base + "/"
        assert json.loads(signed_in)["email"] == "user@example.com"
    else:
        for line in (f"OpenAI base URL     {base}/v1", f"Anthropic base URL  {base}",
                     f"Ollama base URL     {base}", f"Status page         {base}/"):
            assert line in log


def test_secrets_are_redacted_and_json_lines_are_json(server: Process) -> None:
    path = f"/v1/models/{TOKEN}-sk-abcdefgh12345678"
    request = urllib.request.Request(server.url + path,
                                     headers={"authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    assert refused.value.code == 404
    line = wait_for_line(server, lambda text: "/v1/models/" in text and "404" in text)
    assert "[redacted]" in line
    log = server.log.read_text()
    assert TOKEN not in log and "sk-abcdefgh12345678" not in log
    if server.log_format == "json":  # type: ignore[attr-defined]
        documents = [json.loads(text) for text in log.splitlines()]  # every line, no stray text
        [refusal] = [doc for doc in documents if doc.get("status") == 404]
        assert refusal["path"].startswith("/v1/models/[redacted]")
        assert "does not exist" in refusal["error"]
