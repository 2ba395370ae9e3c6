"""Ollama's model and server routes: `/api/tags`, `/api/show`, `/api/ps`, `/api/version`, `/`.

Choices, where Ollama has no upstream equivalent (spec: translation.md §6.5 to §6.7):

* Names. `/api/tags` lists the ids `/v1/models` lists, untagged (`gpt-5.4`,
  not `gpt-5.4:latest`): the `ollama` package validates no tag, clients send
  the listed name back unchanged, and that name is then exactly the OpenAI id.
  With `--expose-reasoning-models` each effort variant is listed twice, as
  `gpt-5.4-high` (the `/v1/models` id) and `gpt-5.4:high` (Ollama's own
  `model:tag` form, which clients split on `:`). Any `:tag` on a known model
  resolves: an effort tag picks the effort, any other tag (`:latest`, `:8b`)
  is dropped (`find_spec`).
* Placeholders. Size, quantization, format and parameter count mean nothing for
  a remote model; they are constant and plausible (an 8B Q4_0 GGUF, the
  reference implementations' values), the digest is the SHA-256 of the name
  (stable across runs and processes) and `modified_at` is the fixed date the
  OpenAI list uses as `created`.
* Architecture `gpt` and a context length of 272,000 tokens: the input window
  the Codex backend gives the GPT-5 family (400,000 in all, 128,000 of it kept
  for output). Clients read `model_info["<arch>.context_length"]` to size the
  prompts they send, so the input window is the figure that matters.
* Capabilities: completion, tools and vision for every model, thinking for
  models with a reasoning effort other than `none`. `template` mentions
  `.Tools` too, as older clients look for it there instead.
* Version `0.12.10`: what both reference implementations answer; it is recent
  enough for every client's feature gate (tools 0.3, structured outputs 0.5,
  thinking 0.9, Copilot's minimum 0.6.4) and compares as plain `x.y.z`.
* `/` serves three masters: Ollama clients and curl check `GET /` for 200 and
  `Ollama is running` (text/plain), chatmock's own health check wants a JSON
  status, and a person opening it in a browser wants the status page. A request
  whose `Accept` names `application/json` gets the JSON status (`/health` always
  does); else one whose `Accept` names `text/html` (every browser's) gets the
  status page (`routes/status.py`); every other request gets Ollama's text. HEAD
  answers the same head without a body (the router maps HEAD to GET, the
  HTTP/1.1 layer drops the body).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from chatmock.app import App
from chatmock.catalog import Catalog, ModelSpec
from chatmock.errors import ClientError
from chatmock.routes import status
from chatmock.routes.common import health
from chatmock.routes.relay import parse_json
from chatmock.server.exchange import Request, Responder, send_json

OLLAMA_VERSION = "0.12.10"
MODIFIED_AT = "2025-08-01T00:00:00Z"  # models.CREATED as RFC 3339
ARCHITECTURE = "gpt"
CONTEXT_LENGTH = 272_000
MODEL_SIZE = 4_661_224_676  # bytes of an 8B Q4_0 GGUF
PARAMETER_COUNT = 8_030_261_248
DETAILS: dict[str, Any] = {"parent_model": "", "format": "gguf", "family": ARCHITECTURE,
                           "families": [ARCHITECTURE], "parameter_size": "8.0B",
                           "quantization_level": "Q4_0"}
RUNNING_TEXT = b"Ollama is running"
TEXT_HEADERS = ((b"content-type", b"text/plain; charset=utf-8"),)
TEMPLATE = ("{{- if .System }}<|system|>{{ .System }}<|end|>{{ end }}"
            "{{- if .Tools }}<|tools|>{{ range .Tools }}{{ . }}{{ end }}<|end|>{{ end }}"
            "{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}<|end|>{{ end }}<|assistant|>")
PARAMETERS = f"num_ctx                        {CONTEXT_LENGTH}"


# --- names --------------------------------------------------------------------


def tag_names(catalog: Catalog, expose_variants: bool) -> list[str]:
    """`/v1/models`' ids, each model followed by its `-effort` and `:effort` variants."""
    names: list[str] = []
    for spec in catalog.specs:
        names.append(spec.slug)
        if expose_variants:
            names.extend(f"{spec.slug}-{effort}" for effort in spec.variants)
            names.extend(f"{spec.slug}:{effort}" for effort in spec.variants)
    return names


def find_spec(catalog: Catalog, name: str) -> ModelSpec | None:
    """The known model `name` means, with any Ollama `:tag` understood; None if unknown."""
    spec = catalog.resolve(name).spec
    if spec is None and ":" in name:
        spec = catalog.resolve(name.rpartition(":")[0]).spec
    return spec


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def capabilities(spec: ModelSpec) -> list[str]:
    thinks = any(effort != "none" for effort in spec.efforts)
    return ["completion", "tools", "vision", *(["thinking"] if thinks else [])]


# --- routes -------------------------------------------------------------------


async def tags(app: App, request: Request, out: Responder) -> None:
    await app.models.ensure_fresh()
    names = tag_names(app.catalog, app.settings.expose_reasoning_models)
    names += [model_id for model_id, _ in await app.provider_model_ids()]
    await send_json(out, 200, {"models": [tag_entry(name) for name in names]})


def tag_entry(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": MODIFIED_AT, "size": MODEL_SIZE,
            "digest": digest(name), "details": dict(DETAILS)}


async def show(app: App, request: Request, out: Responder) -> None:
    name = requested_model(parse_json(await request.body()))
    spec = find_spec(app.catalog, name)
    if spec is None:
        raise ClientError(f"model '{name}' not found", status=404,
                          error_type="not_found_error", code="model_not_found")
    await send_json(out, 200, show_body(name, spec))


def requested_model(body: Any) -> str:
    """Ollama's rule: `model`, else the older `name`; 400 when neither is a non-empty string."""
    for key in ("model", "name"):
        value = body.get(key) if isinstance(body, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise ClientError("model is required", code="missing_model")


def show_body(name: str, spec: ModelSpec) -> dict[str, Any]:
    return {"license": "", "modelfile": modelfile(name), "parameters": PARAMETERS,
            "template": TEMPLATE, "details": dict(DETAILS),
            "model_info": {"general.architecture": ARCHITECTURE,
                           "general.basename": spec.slug, "general.file_type": 2,
                           "general.parameter_count": PARAMETER_COUNT,
                           "general.quantization_version": 2,
                           f"{ARCHITECTURE}.context_length": CONTEXT_LENGTH},
            "capabilities": capabilities(spec), "modified_at": MODIFIED_AT}


def modelfile(name: str) -> str:
    return ('# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {name}\n\n"
            f"FROM {name}\n"
            f'TEMPLATE """{TEMPLATE}"""\n'
            f"PARAMETER num_ctx {CONTEXT_LENGTH}\n")


async def ps(app: App, request: Request, out: Responder) -> None:
    models = [{"name": entry.name, "model": entry.name, "size": MODEL_SIZE,
               "digest": digest(entry.name), "details": dict(DETAILS),
               "expires_at": rfc3339(entry.expires_at), "size_vram": MODEL_SIZE,
               "context_length": CONTEXT_LENGTH}
              for entry in app.recent.active()]
    await send_json(out, 200, {"models": models})


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


async def version(app: App, request: Request, out: Responder) -> None:
    await send_json(out, 200, {"version": OLLAMA_VERSION})


async def root(app: App, request: Request, out: Responder) -> None:
    """Ollama's liveness text, chatmock's JSON status for clients that ask for JSON, or
    the status page for a browser."""
    accept = request.headers.get(b"accept", b"").lower()
    if b"application/json" in accept:
        await health(app, request, out)
    elif b"text/html" in accept:
        await status.page(app, request, out)
    else:
        await out.respond(200, TEXT_HEADERS, RUNNING_TEXT)
