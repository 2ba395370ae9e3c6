"""Model discovery: parsing `GET /models` answers, and ModelSync against the fake backend.

The fake backend is served in-process over TCP (as in the upstream client tests);
interval and retry logic runs on trio's autojump clock.
"""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from chatmock.auth.oauth import TokenSet
from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import Credentials
from chatmock.catalog import (
    ALL_EFFORTS,
    STATIC_MODELS,
    Catalog,
    ModelSpec,
    catalog_from_discovery,
)
from chatmock.net.client import HTTPClient
from chatmock.server.exchange import Handler, Request, Responder
from chatmock.testing.credentials import fake_tokens, make_jwt, write_account_file, write_auth_file
from chatmock.testing.fake_codex import LISTED_MODELS, MODELS_ETAG, MODELS_PATH, FakeCodex
from chatmock.testing.fake_rules import MODEL_EFFORTS
from chatmock.testing.fake_upstream import FakeUpstreamApp
from chatmock.upstream.accounts import Account, AccountPool
from chatmock.upstream.codex import ClientIdentity, CodexBackend
from chatmock.upstream.model_sync import CACHE_FILE, RETRY_SECONDS, ModelSync, cache_path

from ..protocol.helpers import serve_on_loopback

JSON = dict[str, Any]
FAKE_LISTED = [slug for slug, _, visibility, _ in LISTED_MODELS if visibility == "list"]
STATIC_IDS = Catalog().listed_ids(expose_variants=False)


def fake_document() -> JSON:
    reply = FakeCodex().handle("GET", MODELS_PATH + "?client_version=1",
                               {b"authorization": b"Bearer x"}, b"")
    assert reply.status == 200
    document = json.loads(reply.body)
    assert isinstance(document, dict)
    return document


def discovered(*entries: JSON) -> Catalog:
    catalog = catalog_from_discovery({"models": list(entries)})
    assert catalog is not None
    return catalog


def entry(slug: str, *efforts: Any, priority: Any = None, **extra: Any) -> JSON:
    found: JSON = {"slug": slug, "visibility": "list",
                   "supported_reasoning_levels": [{"effort": e, "description": e}
                                                  for e in efforts]}
    if priority is not None:
        found["priority"] = priority
    return {**found, **extra}


# -- parsing ---------------------------------------------------------------------------------


def test_the_fake_backend_catalog() -> None:
    catalog = catalog_from_discovery(fake_document())
    assert catalog is not None
    assert catalog.listed_ids(expose_variants=False) == FAKE_LISTED
    assert "gpt-5.1-codex-mini" not in FAKE_LISTED  # visibility "hide"
    sol = catalog.lookup("gpt-5.6-sol")
    assert sol is not None
    assert sol.efforts == sol.variants == MODEL_EFFORTS["gpt-5.6-sol"]
    assert sol.display_name == "GPT-5.6 Sol"
    assert sol.priority_tier and not catalog.supports_priority("gpt-5.5")
    assert catalog.allowed_efforts("gpt-5.4") == ("none", "low", "medium", "high", "xhigh")


@pytest.mark.parametrize("visibility", ["hide", "none", "hidden", "", None, "List"])
def test_only_visibility_list_is_exposed(visibility: Any) -> None:
    document = {"models": [entry("gpt-5.4", "low"), {**entry("secret", "low"),
                                                     "visibility": visibility}]}
    catalog = catalog_from_discovery(document)
    assert catalog is not None
    assert catalog.listed_ids(expose_variants=True) == ["gpt-5.4", "gpt-5.4-low"]
    assert catalog.resolve("secret").spec is None


def test_priority_orders_the_list_and_missing_goes_last() -> None:
    catalog = discovered(entry("c", "low"), entry("a", "low", priority=5),
                         entry("b", "low", priority=1), entry("d", "low", priority=True),
                         entry("e", "low", priority=5), entry("f", "low", priority="2"))
    assert catalog.listed_ids(expose_variants=False) == ["b", "a", "e", "c", "d", "f"]


def test_efforts_as_objects_or_strings_deduplicated_in_order() -> None:
    levels = ["high", {"effort": "LOW"}, {"effort": "high"}, " medium ", {"nope": 1}, 7,
              {"effort": ""}, "max"]
    catalog = discovered({"slug": "m", "visibility": "list", "supported_reasoning_levels": levels})
    spec = catalog.lookup("m")
    assert spec is not None
    assert spec.efforts == spec.variants == ("high", "low", "medium", "max")
    assert catalog.listed_ids(expose_variants=True) == ["m", "m-high", "m-low", "m-medium",
                                                        "m-max"]


def test_unknown_effort_words_are_allowed_but_not_listed() -> None:
    spec = discovered(entry("m", "low", "turbo")).lookup("m")
    assert spec is not None
    assert (spec.efforts, spec.variants) == (("low", "turbo"), ("low",))


def test_without_known_efforts_the_static_or_full_set_applies() -> None:
    catalog = discovered(entry("gpt-5.1"), entry("new-model", "turbo"))
    assert catalog.allowed_efforts("gpt-5.1") == ("low", "medium", "high")
    assert catalog.allowed_efforts("new-model") == ALL_EFFORTS
    assert catalog.listed_ids(expose_variants=True) == ["gpt-5.1", "new-model"]


@pytest.mark.parametrize(("tiers", "priority"), [
    ([{"id": "priority"}], True), (["priority"], True), (["flex", {"id": "Priority"}], True),
    ([{"id": "flex"}], False), ([], False), (None, False), ("priority", False),
])
def test_service_tiers_decide_priority_support(tiers: Any, priority: bool) -> None:
    catalog = discovered(entry("gpt-5.4", "low", service_tiers=tiers))
    assert catalog.supports_priority("gpt-5.4") is priority


def test_slug_trimmed_display_name_kept_bad_entries_skipped() -> None:
    catalog = discovered(entry("  gpt-5.4 ", "low", display_name=" GPT-5.4 "),
                         entry("gpt-5.4", "high"), entry("", "low"), entry("   ", "low"),
                         {"visibility": "list"}, {"slug": 5, "visibility": "list"},
                         entry("plain", "low", display_name=3))
    assert catalog.listed_ids(expose_variants=False) == ["gpt-5.4", "plain"]
    first = catalog.lookup("gpt-5.4")
    assert first is not None and first.display_name == "GPT-5.4" and first.efforts == ("low",)
    plain = catalog.lookup("plain")
    assert plain is not None and plain.display_name == ""


@pytest.mark.parametrize("document", [
    None, [], "x", {}, {"models": None}, {"models": {}}, {"models": []},
    {"models": [{"slug": "a", "visibility": "hide"}]}, {"models": ["gpt-5.4", 1, None]},
])
def test_nothing_listed_is_no_catalog(document: Any) -> None:
    assert catalog_from_discovery(document) is None


def test_static_aliases_follow_a_discovered_slug() -> None:
    catalog = discovered(entry("gpt-5.4", "low"), entry("codex-mini-latest", "low"),
                         entry("brand-new", "low"))
    assert catalog.resolve("gpt5.4").slug == "gpt-5.4"
    assert catalog.resolve("gpt-5.4-latest").slug == "gpt-5.4"
    assert catalog.resolve("codex").slug == "codex-mini-latest"
    assert catalog.resolve("codex-mini-high").slug == "codex-mini-latest"
    brand_new = catalog.lookup("brand-new")
    assert brand_new is not None and brand_new.aliases == ()


def test_a_slug_wins_over_another_models_alias() -> None:
    first = ModelSpec("a", ("low",), aliases=("b",))
    second = ModelSpec("b", ("high",))
    catalog = Catalog((first, second))
    assert catalog.lookup("b") is second
    assert catalog.lookup("A") is first


# -- resolution on a discovered catalog --------------------------------------------------------

DISCOVERED = discovered(
    entry("gpt-5.4", "none", "low", "medium", "high", "xhigh", priority=1),
    entry("gpt-5.1-codex-max", "low", "medium", "high", "xhigh", priority=2),
    entry("gpt-5.6-sol", "low", "medium", "high", "xhigh", "max", "ultra", priority=3),
    entry("gpt-5.6-luna", "low", "medium", "high", "xhigh", "max", priority=4),
)


@pytest.mark.parametrize(("name", "expected"), [
    ("gpt-5.1-codex-max", ("gpt-5.1-codex-max", None)),
    ("GPT-5.1-Codex-Max", ("gpt-5.1-codex-max", None)),
    ("gpt-5.1-codex-max-high", ("gpt-5.1-codex-max", "high")),
    ("gpt-5.1-codex-max:xhigh", ("gpt-5.1-codex-max", "xhigh")),
    ("gpt-5.1-codex-max:latest", ("gpt-5.1-codex-max", None)),
    ("gpt-5.6-sol-max", ("gpt-5.6-sol", "max")),
    ("gpt-5.6-sol-ultra", ("gpt-5.6-sol", "ultra")),
    ("gpt-5.6-sol:ultra", ("gpt-5.6-sol", "ultra")),
    ("gpt-5.6-luna_max", ("gpt-5.6-luna", "max")),
    ("gpt-5.4:latest", ("gpt-5.4", None)),
    ("gpt5.4:latest", ("gpt-5.4", None)),
    ("GPT-5.4:High", ("gpt-5.4", "high")),
    ("gpt-5.4-none", ("gpt-5.4", "none")),
    ("gpt-5.4", ("gpt-5.4", None)),
    (None, ("gpt-5.4", None)),
])
def test_resolve_on_a_discovered_catalog(name: str | None,
                                         expected: tuple[str, str | None]) -> None:
    result = DISCOVERED.resolve(name)
    assert (result.slug, result.effort) == expected
    assert result.spec is DISCOVERED.lookup(expected[0])


@pytest.mark.parametrize("name", ["foo-high", "gpt-5.1-codex-high", "mystery:latest",
                                  "My-Model", "gpt-5.6-terra-max"])
def test_unknown_names_pass_through_a_discovered_catalog(name: str) -> None:
    result = DISCOVERED.resolve(name)
    assert (result.slug, result.effort, result.spec) == (name, None, None)


def test_listed_ids_with_variants_follow_catalog_effort_order() -> None:
    assert DISCOVERED.listed_ids(expose_variants=True)[:8] == [
        "gpt-5.4", "gpt-5.4-none", "gpt-5.4-low", "gpt-5.4-medium", "gpt-5.4-high",
        "gpt-5.4-xhigh", "gpt-5.1-codex-max", "gpt-5.1-codex-max-low"]
    for model_id in DISCOVERED.listed_ids(expose_variants=True):
        assert DISCOVERED.resolve(model_id).spec is not None


def test_static_table_is_untouched() -> None:
    assert all(spec.display_name == "" for spec in STATIC_MODELS)
    assert STATIC_IDS[0] == "gpt-5"


# -- ModelSync against the fake backend --------------------------------------------------------


@dataclass
class Recorder:
    """Wraps an app; keeps (method, target, headers) of every request it saw."""

    app: Callable[[Request, Responder], Awaitable[None]]
    seen: list[tuple[str, str, dict[bytes, bytes]]] = field(default_factory=list)

    async def __call__(self, request: Request, out: Responder) -> None:
        target = request.path + ("?" + request.query if request.query else "")
        self.seen.append((request.method, target, dict(request.headers)))
        await self.app(request, out)

    def models_requests(self) -> list[dict[bytes, bytes]]:
        return [headers for _, target, headers in self.seen if target.startswith(MODELS_PATH)]


def fixed(status: int, body: bytes, delay: float = 0.0) -> Callable[[Request, Responder],
                                                                     Awaitable[None]]:
    async def app(request: Request, out: Responder) -> None:
        await trio.sleep(delay)
        await out.respond(status, [(b"content-type", b"application/json")], body)
    return app


class ScriptedOAuth:
    """Stands in for OAuthClient.refresh: new tokens for the same account."""

    def __init__(self) -> None:
        self.calls = 0

    async def refresh(self, refresh_token: str) -> TokenSet:
        self.calls += 1
        fresh = fake_tokens(expires_in=3600)
        return TokenSet(fresh["id_token"], make_jwt({"exp": int(time.time()) + 3600,
                                                     "n": self.calls}), f"rt-{self.calls}")


@dataclass
class Setup:
    home: Path
    base: str
    recorder: Recorder
    http: HTTPClient
    oauth: ScriptedOAuth | None = None

    def sync(self, **kwargs: Any) -> ModelSync:
        env = {"CHATGPT_LOCAL_HOME": str(self.home)}
        store = CredentialStore(env, oauth=self.oauth, recheck_seconds=0)  # type: ignore[arg-type]
        backend = CodexBackend(self.base, self.http, store, "install-1")
        return ModelSync(backend, self.base, cache_path(env), **kwargs)


async def serve_app(nursery: trio.Nursery, app: Handler) -> str:
    return f"http://127.0.0.1:{await serve_on_loopback(nursery, app)}/backend-api/codex"


@pytest.fixture
async def http() -> AsyncIterator[HTTPClient]:
    client = HTTPClient(connect_timeout=2, read_timeout=30)
    yield client
    await client.aclose()


async def setup(nursery: trio.Nursery, tmp_path: Path, http: HTTPClient,
                app: Any = None, **auth: Any) -> Setup:
    write_auth_file(tmp_path, **auth)
    recorder = Recorder(app or FakeUpstreamApp())
    return Setup(tmp_path, await serve_app(nursery, recorder), recorder, http)


async def test_discovery_replaces_the_static_list(nursery: trio.Nursery, tmp_path: Path,
                                                  http: HTTPClient) -> None:
    env = await setup(nursery, tmp_path, http)
    models = env.sync()
    assert models.source == "static" and models.catalog.listed_ids(False) == STATIC_IDS
    assert await models.refresh() is True
    assert models.source == "discovery"
    assert models.catalog.listed_ids(expose_variants=False) == FAKE_LISTED
    assert "gpt-5.6-sol-ultra" in models.catalog.listed_ids(expose_variants=True)
    assert models.catalog.resolve("gpt-5.1-codex-mini").spec is None  # hidden upstream
    [(method, target, headers)] = env.recorder.seen
    assert (method, target) == ("GET", MODELS_PATH + "?client_version=0.169.0")
    assert headers[b"authorization"].startswith(b"Bearer ey")
    assert headers[b"chatgpt-account-id"] == fake_tokens()["account_id"].encode()
    assert headers[b"accept"] == b"application/json"
    assert headers[b"originator"] == b"codex_cli_rs"
    assert headers[b"user-agent"].startswith(b"codex_cli_rs/0.169.0 ")
    assert headers[b"x-codex-installation-id"] == b"install-1"
    assert b"if-none-match" not in headers


async def test_the_models_answer_reports_its_rate_limit_headers(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient) -> None:
    env = await setup(nursery, tmp_path, http)
    models = env.sync()
    seen: list[list[tuple[bytes, bytes]]] = []
    models.backend.on_headers = seen.append
    assert await models.refresh() is True
    [headers] = seen
    assert b"x-codex-primary-used-percent" in dict(headers)


async def test_etag_gives_a_304_that_keeps_the_catalog(nursery: trio.Nursery, tmp_path: Path,
                                                       http: HTTPClient) -> None:
    env = await setup(nursery, tmp_path, http)
    models = env.sync(interval=100)
    assert await models.refresh()
    catalog, first_due = models.catalog, models.next_due()
    await trio.sleep(0.01)
    assert await models.refresh()
    assert models.catalog is catalog
    assert models.next_due() > first_due
    second = env.recorder.models_requests()[1]
    assert second[b"if-none-match"] == MODELS_ETAG


async def test_failure_keeps_the_static_list_and_never_raises(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient,
        caplog: pytest.LogCaptureFixture, autojump_clock: trio.abc.Clock) -> None:
    env = await setup(nursery, tmp_path, http, fixed(500, b'{"detail":"boom"}'))
    models = env.sync()
    with caplog.at_level(logging.DEBUG, logger="chatmock.models"):
        assert await models.refresh() is False
        assert not models.due()
        await trio.sleep(RETRY_SECONDS - 1)
        assert not models.due()
        await models.ensure_fresh()  # not due: no request
        await trio.sleep(1)
        assert models.due()
        assert await models.refresh() is False
    assert models.source == "static" and models.catalog.listed_ids(False) == STATIC_IDS
    assert len(env.recorder.models_requests()) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 500: boom" in warnings[0].getMessage()
    assert not (tmp_path / CACHE_FILE).exists()


@pytest.mark.parametrize("body", [b"not json", b'{"models":[]}',
                                  b'{"models":[{"slug":"x","visibility":"hide"}]}'])
async def test_an_answer_without_listed_models_is_refused(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient, body: bytes) -> None:
    env = await setup(nursery, tmp_path, http, fixed(200, body))
    models = env.sync()
    assert await models.refresh() is False
    assert models.source == "static"


async def test_unreachable_backend_and_missing_credentials(tmp_path: Path,
                                                           http: HTTPClient) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    env = Setup(tmp_path, f"http://127.0.0.1:{port}/backend-api/codex", Recorder(fixed(200, b"")),
                http)
    assert await env.sync().refresh() is False  # no auth.json yet
    write_auth_file(tmp_path)
    models = env.sync()
    assert await models.refresh() is False
    assert models.catalog.listed_ids(False) == STATIC_IDS


async def test_a_later_failure_keeps_the_discovered_list(nursery: trio.Nursery, tmp_path: Path,
                                                         http: HTTPClient) -> None:
    answers: list[Callable[[Request, Responder], Awaitable[None]]] = [
        FakeUpstreamApp(), fixed(503, b"down")]

    async def app(request: Request, out: Responder) -> None:
        await answers[0](request, out)

    env = await setup(nursery, tmp_path, http, app)
    models = env.sync()
    assert await models.refresh()
    answers.pop(0)
    assert await models.refresh() is False
    assert models.source == "discovery"
    assert models.catalog.listed_ids(False) == FAKE_LISTED


async def test_cache_is_private_and_reused_for_the_same_account(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient) -> None:
    env = await setup(nursery, tmp_path, http)
    assert await env.sync().refresh()
    path = tmp_path / CACHE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cached = json.loads(path.read_text())
    assert set(cached) == {"fetched_at", "etag", "client_version", "account_id", "models"}
    assert cached["etag"] == MODELS_ETAG.decode()
    assert cached["client_version"] == "0.169.0"
    assert cached["account_id"] == fake_tokens()["account_id"]
    assert cached["fetched_at"].endswith("Z")
    assert len(cached["models"]) == len(LISTED_MODELS)  # raw objects, hidden ones too

    again = env.sync()
    assert again.source == "cache"
    assert again.catalog.listed_ids(expose_variants=True) == \
        catalog_from_discovery(cached).listed_ids(expose_variants=True)  # type: ignore[union-attr]
    assert await again.refresh()
    assert env.recorder.models_requests()[-1][b"if-none-match"] == MODELS_ETAG
    assert again.source == "discovery"

    write_auth_file(tmp_path, account_id="someone-else")
    other = env.sync()
    assert other.source == "static" and other.catalog.listed_ids(False) == STATIC_IDS
    assert await other.refresh()
    assert b"if-none-match" not in env.recorder.models_requests()[-1]
    assert json.loads(path.read_text())["account_id"] == "someone-else"


@pytest.mark.parametrize("content", ["{broken", "[]", '{"account_id": "%s", "models": []}',
                                     '{"account_id": "%s", "models": "x"}'])
async def test_a_bad_cache_file_is_ignored(tmp_path: Path, http: HTTPClient,
                                           content: str) -> None:
    write_auth_file(tmp_path)
    text = content.replace("%s", fake_tokens()["account_id"])
    (tmp_path / CACHE_FILE).write_text(text)
    env = Setup(tmp_path, "http://127.0.0.1:9/backend-api/codex", Recorder(fixed(200, b"")), http)
    assert env.sync().source == "static"


async def test_sync_off_uses_the_static_list_and_fetches_nothing(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient) -> None:
    env = await setup(nursery, tmp_path, http)
    assert await env.sync().refresh()  # leaves a cache file behind
    models = env.sync(enabled=False)
    assert models.source == "static"
    assert await models.refresh() is False
    await models.ensure_fresh()
    await models.run()  # returns at once
    assert not models.due()
    assert len(env.recorder.seen) == 1


async def test_a_401_refreshes_the_token_and_retries_once(nursery: trio.Nursery, tmp_path: Path,
                                                          http: HTTPClient) -> None:
    write_auth_file(tmp_path)
    first = json.loads((tmp_path / "auth.json").read_text())["tokens"]["access_token"]
    fake = FakeCodex(token_check=lambda token: "revoked" if token == first else None)
    env = await setup(nursery, tmp_path, http, FakeUpstreamApp(fake))
    env.oauth = ScriptedOAuth()
    models = env.sync()
    assert await models.refresh()
    assert env.oauth.calls == 1
    tokens = [h[b"authorization"] for h in env.recorder.models_requests()]
    assert len(tokens) == 2 and tokens[0] == b"Bearer " + first.encode() != tokens[1]
    assert models.source == "discovery"


async def test_a_401_without_a_way_to_refresh_is_a_failure(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient) -> None:
    fake = FakeCodex(token_check=lambda token: "revoked")
    env = await setup(nursery, tmp_path, http, FakeUpstreamApp(fake))
    models = env.sync()
    assert await models.refresh() is False
    assert len(env.recorder.models_requests()) == 1


# -- timing: run, ensure_fresh ----------------------------------------------------------------


async def test_run_refreshes_at_start_and_every_interval(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient,
        autojump_clock: trio.abc.Clock) -> None:
    env = await setup(nursery, tmp_path, http)
    models = env.sync(interval=100)
    with trio.CancelScope() as scope:
        nursery.start_soon(models.run)
        await trio.sleep(1)
        assert len(env.recorder.models_requests()) == 1
        assert models.source == "discovery"
        await trio.sleep(98)
        assert len(env.recorder.models_requests()) == 1
        await trio.sleep(2)
        assert len(env.recorder.models_requests()) == 2
        await trio.sleep(200)
        assert len(env.recorder.models_requests()) == 4
        await models.ensure_fresh()  # fresh: returns without a request
        assert len(env.recorder.models_requests()) == 4
        scope.cancel()
    nursery.cancel_scope.cancel()


async def test_run_retries_failures_after_a_minute(nursery: trio.Nursery, tmp_path: Path,
                                                   http: HTTPClient,
                                                   autojump_clock: trio.abc.Clock) -> None:
    env = await setup(nursery, tmp_path, http, fixed(502, b""))
    models = env.sync(interval=3600)
    nursery.start_soon(models.run)
    await trio.sleep(RETRY_SECONDS * 3 - 1)
    assert len(env.recorder.models_requests()) == 3
    assert models.source == "static"
    nursery.cancel_scope.cancel()


async def test_interval_zero_refreshes_on_demand(nursery: trio.Nursery, tmp_path: Path,
                                                 http: HTTPClient,
                                                 autojump_clock: trio.abc.Clock) -> None:
    env = await setup(nursery, tmp_path, http)
    models = env.sync(interval=0)
    nursery.start_soon(models.run)
    await trio.sleep(1000)
    assert len(env.recorder.models_requests()) == 1
    await models.ensure_fresh()
    await models.ensure_fresh()
    requests = env.recorder.models_requests()
    assert len(requests) == 3 and requests[-1][b"if-none-match"] == MODELS_ETAG
    nursery.cancel_scope.cancel()


async def test_ensure_fresh_without_run_fetches_when_due(nursery: trio.Nursery, tmp_path: Path,
                                                         http: HTTPClient) -> None:
    env = await setup(nursery, tmp_path, http)
    models = env.sync(interval=3600)
    await models.ensure_fresh()
    assert models.source == "discovery"
    await models.ensure_fresh()
    assert len(env.recorder.models_requests()) == 1


async def test_ensure_fresh_waits_at_most_six_seconds_and_the_fetch_goes_on(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient,
        autojump_clock: trio.abc.Clock) -> None:
    slow = FakeUpstreamApp()

    async def app(request: Request, out: Responder) -> None:
        await trio.sleep(8)
        await slow(request, out)

    env = await setup(nursery, tmp_path, http, app)
    models = env.sync(interval=0)
    nursery.start_soon(models.run)  # its first fetch is in flight for 8 s
    await trio.sleep(0.5)
    started = trio.current_time()
    await models.ensure_fresh()
    assert trio.current_time() - started == pytest.approx(6)
    assert models.source == "static"
    await trio.sleep(2)
    assert models.source == "discovery"
    assert len(env.recorder.models_requests()) == 1
    nursery.cancel_scope.cancel()


async def test_concurrent_refreshes_share_one_request(nursery: trio.Nursery, tmp_path: Path,
                                                      http: HTTPClient) -> None:
    env = await setup(nursery, tmp_path, http)
    models = env.sync()
    results: list[bool] = []

    async def call() -> None:
        results.append(await models.refresh())

    async with trio.open_nursery() as inner:
        for _ in range(5):
            inner.start_soon(call)
    assert results == [True] * 5
    assert len(env.recorder.models_requests()) == 1


def test_discovery_asks_as_the_configured_client_version(tmp_path: Path) -> None:
    env = {"CHATGPT_LOCAL_HOME": str(tmp_path)}
    backend = CodexBackend("http://127.0.0.1:9/x", HTTPClient(), CredentialStore(env),
                           "install-1", identity=ClientIdentity("0.171.0", "codex_exec"))
    sync = ModelSync(backend, "http://127.0.0.1:9/x", cache_path(env))
    assert sync.url == "http://127.0.0.1:9/x/models?client_version=0.171.0"
    credentials = Credentials(tmp_path / "auth.json", "token", "acct")
    assert dict(backend.model_headers(credentials))[b"version"] == b"0.171.0"


async def test_an_account_the_backend_refuses_hands_discovery_to_the_next(
        nursery: trio.Nursery, tmp_path: Path, http: HTTPClient) -> None:
    write_auth_file(tmp_path)
    refused = json.loads((tmp_path / "auth.json").read_text())["tokens"]["access_token"]
    second = write_account_file(tmp_path, "second", account_id="id-second")
    fake = FakeCodex(token_check=lambda token: "revoked" if token == refused else None)
    env = await setup(nursery, tmp_path, http, FakeUpstreamApp(fake))
    models = env.sync()
    default = models.backend.pool.default
    models.backend.pool = AccountPool([default, Account("second", CredentialStore(
        {"CHATGPT_LOCAL_HOME": str(tmp_path)}, path=second))])
    assert await models.refresh()
    assert models.source == "discovery"
    asked = [h[b"chatgpt-account-id"] for h in env.recorder.models_requests()]
    assert asked == [default.credentials.current().account_id.encode(),  # type: ignore[union-attr]
                     b"id-second"]
