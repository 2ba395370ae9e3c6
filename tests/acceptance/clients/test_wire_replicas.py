"""What Open WebUI and Cline put on the wire, sent to chatmock over a socket as they send it.

Neither is installed by the tests (see the README's guides for why), so each test
builds the request the client's source builds (path, headers, body, streaming) and
reads the answer the way that client does, failing where the client would:

- Open WebUI (backend/open_webui/routers/ollama.py and openai.py, aiohttp): an Ollama
  connection checks `/api/version`, lists `/api/tags` and streams `/api/chat` with the
  model's `options`; an OpenAI connection lists `/models` and streams
  `/chat/completions`; titles and tags are asked for with `stream: false`.
- Cline's *OpenAI Compatible* provider (src/core/api/providers/openai.ts, openai-js):
  for a GPT-5 model the system prompt goes as a `developer` message, with
  `reasoning_effort`, `stream_options.include_usage` and its tools; it reads text,
  tool-call deltas and the usage chunk.
- Cline's *Ollama* provider (src/core/api/providers/ollama.ts, ollama-js): `/api/chat`
  streamed with `options.num_ctx`, reading `eval_count` and `prompt_eval_count`.
- Continue's Ollama provider (core/llm/llms/Ollama.ts): `/api/show` with `name`, whose
  `parameters` lines it parses for `num_ctx` and whose template decides whether it
  sends fill-in-the-middle `suffix` (which chatmock refuses); chats carry
  `keep_alive` in seconds, and a request with tools is sent with `stream: false`.
"""

from __future__ import annotations

import http.client
import json
import re
from typing import Any

from tests.acceptance.clients.conftest import upstream_with
from tests.acceptance.conftest import Process

AIOHTTP = {"User-Agent": "Python/3.11 aiohttp/3.12.15", "Accept": "*/*",
           "Content-Type": "application/json"}
OPENAI_JS = {"User-Agent": "OpenAI/JS 4.104.0", "Accept": "application/json",
             "Content-Type": "application/json", "Authorization": "Bearer unused",
             "X-Stainless-Lang": "js", "X-Stainless-Retry-Count": "0"}
OLLAMA_JS = {"User-Agent": "ollama-js/0.6.4 (x64 linux Node.js/v20.20.2)",
             "Accept": "application/json", "Content-Type": "application/json"}
NODE_FETCH = {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "node"}


def exchange(server: Process, method: str, path: str, headers: dict[str, str],
             body: dict[str, Any] | None = None) -> tuple[int, str, bytes]:
    """One request on its own connection: status, content type, whole body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        payload = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=payload, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.getheader("Content-Type", ""), reply.read()
    finally:
        connection.close()


def ndjson(data: bytes) -> list[dict[str, Any]]:
    """The objects of an NDJSON stream, as Ollama clients split it (on newlines)."""
    return [json.loads(line) for line in data.decode().split("\n") if line.strip()]


def sse(data: bytes) -> list[dict[str, Any]]:
    """The `data:` events of a chat completions stream, which must end with [DONE]."""
    payloads = [line[5:].strip() for line in data.decode().splitlines()
                if line.startswith("data:")]
    assert payloads and payloads[-1] == "[DONE]", payloads[-3:]
    return [json.loads(payload) for payload in payloads[:-1]]


def ollama_text(chunks: list[dict[str, Any]]) -> str:
    assert not [chunk for chunk in chunks if "error" in chunk], chunks
    assert chunks[-1]["done"] is True and all(not c["done"] for c in chunks[:-1])
    return "".join(chunk["message"]["content"] for chunk in chunks)


def test_open_webui_ollama_connection(chatmock_server: Process, fake_upstream: Process,
                                      marker: str) -> None:
    status, _, version = exchange(chatmock_server, "GET", "/api/version", AIOHTTP)
    assert status == 200 and re.fullmatch(r"\d+\.\d+\.\d+", json.loads(version)["version"])
    status, _, tags = exchange(chatmock_server, "GET", "/api/tags", AIOHTTP)
    names = [model["model"] for model in json.loads(tags)["models"]]
    assert status == 200 and "gpt-5.4" in names
    body = {"model": "gpt-5.4:latest", "stream": True, "keep_alive": "5m",
            "options": {"temperature": 0.7, "num_ctx": 8192, "seed": 3},
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": f"Hello {marker}"}]}
    status, kind, data = exchange(chatmock_server, "POST", "/api/chat", AIOHTTP, body)
    assert status == 200 and kind.startswith("application/x-ndjson")
    assert ollama_text(ndjson(data)).endswith(f"You said: Hello {marker}")
    title = {**body, "stream": False, "messages": [
        {"role": "user", "content": f"Generate a concise title for: Hello {marker}"}]}
    status, _, answer = exchange(chatmock_server, "POST", "/api/chat", AIOHTTP, title)
    assert status == 200 and json.loads(answer)["done"] is True
    assert len(upstream_with(fake_upstream, marker)) == 2


def test_open_webui_openai_connection(chatmock_server: Process, marker: str) -> None:
    headers = {**AIOHTTP, "Authorization": "Bearer unused"}
    status, _, models = exchange(chatmock_server, "GET", "/v1/models", headers)
    assert status == 200 and "gpt-5.4" in [model["id"] for model in json.loads(models)["data"]]
    body = {"model": "gpt-5.4", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"Hello {marker}"}]}
    status, kind, data = exchange(chatmock_server, "POST", "/v1/chat/completions",
                                  headers, body)
    assert status == 200 and kind.startswith("text/event-stream")
    chunks = sse(data)
    text = "".join(choice["delta"].get("content") or ""
                   for chunk in chunks for choice in chunk["choices"])
    assert text.endswith(f"You said: Hello {marker}")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def cline_openai_body(marker: str, prompt: str) -> dict[str, Any]:
    tool = {"type": "function", "function": {
        "name": "read_file", "description": "Read a file in the workspace.",
        "parameters": {"type": "object", "required": ["path"],
                       "properties": {"path": {"type": "string"}}}}}
    return {"model": "gpt-5.4", "reasoning_effort": "medium", "stream": True,
            "stream_options": {"include_usage": True}, "tools": [tool],
            "messages": [{"role": "developer", "content": f"You are Cline. {marker}"},
                         {"role": "user", "content": [{"type": "text", "text": prompt}]}]}


def test_cline_openai_compatible_text_and_usage(chatmock_server: Process,
                                                fake_upstream: Process, marker: str) -> None:
    body = cline_openai_body(marker, f"<task>Hello {marker}</task>")
    status, _, data = exchange(chatmock_server, "POST", "/v1/chat/completions", OPENAI_JS,
                               body)
    assert status == 200
    chunks = sse(data)
    text = "".join(chunk["choices"][0]["delta"].get("content") or ""
                   for chunk in chunks if chunk["choices"])
    assert f"Hello {marker}" in text
    usage = [chunk["usage"] for chunk in chunks if chunk.get("usage")]
    assert usage and usage[-1]["prompt_tokens"] > 0
    [record] = upstream_with(fake_upstream, marker)
    assert record["body"]["reasoning"]["effort"] == "medium"
    assert [tool["name"] for tool in record["body"]["tools"]] == ["read_file"]


def test_cline_openai_compatible_tool_call(chatmock_server: Process, marker: str) -> None:
    prompt = f'fake:tool=read_file fake:args={{"path":"{marker}.txt"}}'
    status, _, data = exchange(chatmock_server, "POST", "/v1/chat/completions", OPENAI_JS,
                               cline_openai_body(marker, prompt))
    assert status == 200
    deltas = [call for chunk in sse(data) if chunk["choices"]
              for call in chunk["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas[0]["function"]["name"] == "read_file" and deltas[0]["id"]
    arguments = "".join(delta["function"].get("arguments") or "" for delta in deltas)
    assert json.loads(arguments) == {"path": f"{marker}.txt"}


def test_cline_ollama_provider(chatmock_server: Process, marker: str) -> None:
    body = {"model": "gpt-5.4", "stream": True, "options": {"num_ctx": 32768},
            "messages": [{"role": "system", "content": "You are Cline."},
                         {"role": "user", "content": f"Hello {marker}"}]}
    status, _, data = exchange(chatmock_server, "POST", "/api/chat", OLLAMA_JS, body)
    assert status == 200
    chunks = ndjson(data)
    assert ollama_text(chunks).endswith(f"You said: Hello {marker}")
    assert chunks[-1]["eval_count"] > 0 and chunks[-1]["prompt_eval_count"] > 0


def test_continue_ollama_provider_reads_show(chatmock_server: Process) -> None:
    status, _, data = exchange(chatmock_server, "POST", "/api/show", NODE_FETCH,
                               {"name": "gpt-5.4"})
    assert status == 200
    shown = json.loads(data)
    for line in shown["parameters"].split("\n"):  # Continue gives up on a line it can't split
        assert re.match(r'^(\S+)\s+((?:".*")|\S+)$', line), line
    assert re.search(r"^num_ctx\s+\d+$", shown["parameters"], re.MULTILINE)
    assert ".Suffix" not in shown["template"]  # else autocomplete would send `suffix`


def test_continue_ollama_provider_chat_and_tools(chatmock_server: Process,
                                                 marker: str) -> None:
    options = {"temperature": 0.5, "num_predict": 4096, "num_ctx": 272000}
    chat = {"model": "gpt-5.4", "options": options, "keep_alive": 1800, "stream": True,
            "messages": [{"role": "user", "content": f"Hello {marker}"}]}
    status, _, data = exchange(chatmock_server, "POST", "/api/chat", NODE_FETCH, chat)
    assert status == 200 and ollama_text(ndjson(data)).endswith(f"You said: Hello {marker}")
    tool = {"type": "function", "function": {
        "name": "read_file", "description": "Read a file",
        "parameters": {"type": "object", "properties": {"filepath": {"type": "string"}}}}}
    prompt = f'fake:tool=read_file fake:args={{"filepath":"{marker}"}}'
    with_tools = {**chat, "stream": False, "tools": [tool],
                  "messages": [{"role": "user", "content": prompt}]}
    status, _, data = exchange(chatmock_server, "POST", "/api/chat", NODE_FETCH, with_tools)
    assert status == 200
    [call] = json.loads(data)["message"]["tool_calls"]
    assert call["function"]["name"] == "read_file"
    assert call["function"]["arguments"] == {"filepath": marker}  # an object, as Ollama's


def test_continue_ollama_autocomplete_without_suffix(chatmock_server: Process,
                                                     marker: str) -> None:
    body = {"model": "gpt-5.4", "prompt": f"def hello_{marker.replace('-', '_')}():",
            "raw": True, "keep_alive": 1800, "stream": True,
            "options": {"temperature": 0.01, "num_predict": 256, "stop": ["\n\n"]}}
    status, _, data = exchange(chatmock_server, "POST", "/api/generate", NODE_FETCH, body)
    assert status == 200
    chunks = ndjson(data)
    assert chunks[-1]["done"] is True and not [c for c in chunks if "error" in c]
    assert "".join(chunk["response"] for chunk in chunks)
