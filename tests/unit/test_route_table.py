"""The route table gives each path the error shape the router renders through; it is the
one the URL used to imply (the router guessed it from prefixes until the table carried it)."""

from __future__ import annotations

import json

import pytest

from chatmock.dialects.errors import Dialect
from chatmock.errors import ClientError
from chatmock.routes import TABLE

UNROUTED = ["/api", "/api/", "/api/nope", "/apinope", "/v1/messages/nope", "/v1/messagesx",
            "/v1/nope", "/nope", "/v1/models/"]
PATHS = [*TABLE.exact, "/v1/models/gpt-5.4", *UNROUTED]
HEADERS = [{}, {b"anthropic-version": b"2023-06-01"}]


def implied(path: str, headers: dict[bytes, bytes]) -> Dialect:
    """The dialect the router used to derive from the path and headers alone."""
    if path.startswith("/api/") or path == "/api":
        return Dialect.OLLAMA
    if path.startswith("/v1/messages") or b"anthropic-version" in headers:
        return Dialect.ANTHROPIC
    return Dialect.OPENAI


@pytest.mark.parametrize("headers", HEADERS)
@pytest.mark.parametrize("path", PATHS)
def test_each_path_takes_its_dialects_error_shape(path: str, headers: dict[bytes, bytes]) -> None:
    shape = TABLE.errors_of(path, TABLE.find(path)).for_headers(headers)
    assert shape is implied(path, headers)


@pytest.mark.parametrize("path", UNROUTED)
def test_unrouted_paths_find_no_endpoint(path: str) -> None:
    assert TABLE.find(path) is None


def test_a_shape_renders_and_labels_as_its_dialect() -> None:
    error = ClientError("bad", param="model")
    assert json.loads(Dialect.OLLAMA.render(error)) == {"error": "model: bad"}
    assert json.loads(Dialect.ANTHROPIC.render(error))["error"]["type"] == "invalid_request_error"
    assert json.loads(Dialect.OPENAI.render(error))["error"]["param"] == "model"
    assert [d.label for d in Dialect] == ["openai", "anthropic", "ollama"]
