"""Provider settings (chatmock.config) and the provider registry (chatmock.upstream.providers)."""

from __future__ import annotations

import pytest

from chatmock.cli import main
from chatmock.config import settings_from_argv
from chatmock.errors import ClientError, ConfigError
from chatmock.option_values import parse_upstreams
from chatmock.upstream.providers import ProviderRegistry, build_registry, cookie_pairs

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6InUifQ.c2lnbmF0dXJlLXBhcnQ"


def registry(*argv: str, **env: str) -> ProviderRegistry:
    return build_registry(settings_from_argv(list(argv), env), env)


# -- settings ------------------------------------------------------------------------------


def test_provider_settings_defaults_flags_and_env() -> None:
    settings = settings_from_argv([], {})
    assert (settings.provider, settings.upstreams, settings.max_concurrency,
            settings.queue_timeout) == ("chatgpt", (), 8, 60.0)
    env = {"CHATMOCK_PROVIDER": "XAI", "CHATMOCK_MAX_CONCURRENCY": "2",
           "CHATMOCK_QUEUE_TIMEOUT": "7.5",
           "CHATMOCK_UPSTREAM": "lm=http://127.0.0.1:1234/v1"}
    from_env = settings_from_argv([], env)
    assert (from_env.provider, from_env.max_concurrency, from_env.queue_timeout) == \
        ("xai", 2, 7.5)
    assert from_env.upstreams == (("lm", "http://127.0.0.1:1234/v1", ""),)
    flags = settings_from_argv(["--provider", "lm", "--upstream", "lm=http://127.0.0.1:1/v1",
                                "--max-concurrency", "0", "--queue-timeout", "0"], env)
    assert (flags.provider, flags.max_concurrency, flags.queue_timeout) == ("lm", 0, 0.0)
    assert flags.upstreams == (("lm", "http://127.0.0.1:1/v1", ""),)


def test_upstream_is_repeatable_and_comma_separated() -> None:
    settings = settings_from_argv([
        "--upstream", "vllm=https://gpu.example.com/v1,VLLM_KEY,lm=http://localhost:1234/v1",
        "--upstream", "xai=http://127.0.0.1:9999/v1"], {})
    assert settings.upstreams == (("vllm", "https://gpu.example.com/v1", "VLLM_KEY"),
                                  ("lm", "http://localhost:1234/v1", ""),
                                  ("xai", "http://127.0.0.1:9999/v1", ""))


@pytest.mark.parametrize("text, needle", [
    ("vllm", "neither"),
    ("vllm=ftp://x", "neither"),
    ("a=http://127.0.0.1/v1,KEY,OTHER", "neither"),
    ("Big=http://127.0.0.1/v1", "lower-case"),
    ("chatgpt=https://example.com", "--upstream-url"),
    ("a=http://127.0.0.1/v1,a=http://127.0.0.1/v2", "twice"),
    (",", "expected"),
])
def test_bad_upstream_entries(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_upstreams(text)


@pytest.mark.parametrize("argv, needle", [
    (["--provider", "nope"], "is not one of"),
    (["--provider", "Not a name"], "lower-case word"),
    (["--upstream", "lm=http://10.0.0.5:8000/v1"], "plain http is allowed only to loopback"),
    (["--upstream", "lm"], "--upstream"),
    (["--max-concurrency", "-1"], "must not be negative"),
    (["--queue-timeout", "-1"], "must not be negative"),
])
def test_bad_provider_settings_are_config_errors(argv: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        settings_from_argv(argv, {})


# -- the registry --------------------------------------------------------------------------


def test_builtin_providers_and_their_credentials() -> None:
    found = registry(XAI_API_KEY="xai-key", OPENROUTER_API_KEY="sk-or-v1-key")
    assert found.default == "chatgpt"
    assert [p.name for p in found.usable()] == ["chatgpt", "xai", "openrouter"]
    xai = found.providers["xai"]
    assert (xai.kind, xai.base_url, xai.has_responses_api) == ("chat", "https://api.x.ai/v1",
                                                                True)
    assert xai.auth_headers() == [(b"authorization", b"Bearer xai-key")]
    assert xai.url("/chat/completions") == "https://api.x.ai/v1/chat/completions"
    router = found.providers["openrouter"]
    assert (b"x-openrouter-title", b"ChatMock") in router.auth_headers()
    assert not router.models_need_key
    qwen = found.providers["qwen"]
    assert not qwen.usable and qwen.missing == ("QWEN_AUTH_TOKEN",)
    assert "openai" not in found.providers  # no base URL: not configured at all
    assert "xai-key" not in repr(xai)


def test_a_missing_key_is_a_400_naming_the_variable() -> None:
    found = registry()
    error = found.providers["xai"].not_configured()
    assert (error.status, error.code) == (400, "provider_not_configured")
    assert "XAI_API_KEY" in error.message
    with pytest.raises(ClientError, match="OPENROUTER_API_KEY"):
        found.select("gpt-5.4", "openrouter")
    assert found.providers["xai"].describe() == {
        "name": "xai", "kind": "chat", "base_url": "https://api.x.ai/v1", "usable": False,
        "missing": ["XAI_API_KEY"], "responses_api": True}


def test_openrouter_referer_needs_a_url() -> None:
    with_url = registry(OPENROUTER_API_KEY="k", OPENROUTER_REFERER="https://example.org/app")
    assert with_url.providers["openrouter"].auth_headers()[1] == \
        (b"http-referer", b"https://example.org/app")
    named = registry(OPENROUTER_API_KEY="k", OPENROUTER_REFERER="ChatMock")
    assert b"http-referer" not in dict(named.providers["openrouter"].auth_headers())


def test_qwen_token_and_cookies() -> None:
    found = registry(QWEN_AUTH_TOKEN=JWT, QWEN_COOKIES="ssxmod_itna=abc=; token=old; x=\"q\"")
    qwen = found.providers["qwen"]
    assert qwen.usable and qwen.models_path == "/api/models" and qwen.has_responses_api is False
    headers = dict(qwen.auth_headers())
    assert headers[b"authorization"] == b"Bearer " + JWT.encode()
    assert headers[b"cookie"] == b'ssxmod_itna=abc=; token=' + JWT.encode() + b'; x="q"'
    from_cookie = registry(QWEN_COOKIES=f"a=1; token={JWT}").providers["qwen"]
    assert from_cookie.usable and from_cookie.api_key == JWT
    assert dict(registry(QWEN_AUTH_TOKEN=JWT).providers["qwen"].auth_headers())[b"cookie"] == \
        b"token=" + JWT.encode()


def test_named_and_moved_upstreams() -> None:
    found = registry("--upstream", "vllm=https://gpu.example.com/v1,VLLM_KEY",
                     "--upstream", "lm=http://127.0.0.1:1234/v1",
                     "--upstream", "xai=http://127.0.0.1:9/v1", XAI_API_KEY="k")
    vllm, lm, xai = (found.providers[n] for n in ("vllm", "lm", "xai"))
    assert not vllm.usable and vllm.missing == ("VLLM_KEY",)
    assert lm.usable and lm.auth_headers() == [] and lm.has_responses_api is None
    assert xai.base_url == "http://127.0.0.1:9/v1" and xai.api_key == "k"
    keyed = registry("--upstream", "vllm=https://gpu.example.com/v1,VLLM_KEY", VLLM_KEY="v")
    assert keyed.providers["vllm"].auth_headers() == [(b"authorization", b"Bearer v")]


def test_the_openai_provider_needs_a_base_url() -> None:
    assert "openai" not in registry(OPENAI_API_KEY="sk-x").providers
    found = registry(OPENAI_BASE_URL="http://127.0.0.1:8000/v1", OPENAI_API_KEY="sk-x")
    assert found.providers["openai"].auth_headers() == [(b"authorization", b"Bearer sk-x")]
    assert registry(OPENAI_BASE_URL="http://127.0.0.1:8000/v1").providers["openai"].usable
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        registry(OPENAI_BASE_URL="http://10.1.1.1/v1")


@pytest.mark.parametrize("argv, env, needle", [
    (["--provider", "xai"], {}, "XAI_API_KEY not set"),
    (["--provider", "openai"], {}, "OPENAI_BASE_URL"),
    (["--provider", "qwen"], {"QWEN_COOKIES": "a=b"}, "QWEN_AUTH_TOKEN"),
])
def test_a_default_provider_without_credentials_stops_the_start(
        argv: list[str], env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        registry(*argv, **env)


def test_serve_exits_2_naming_the_missing_variable(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    assert main(["serve", "--provider", "xai"]) == 2
    assert "XAI_API_KEY" in capsys.readouterr().err


def test_provider_model_prefixes() -> None:
    found = registry("--provider", "openrouter", OPENROUTER_API_KEY="k", XAI_API_KEY="x")
    assert found.split_model("xai/grok-4") == ("xai", "grok-4")
    assert found.split_model("openrouter/anthropic/claude-sonnet-4.5") == \
        ("openrouter", "anthropic/claude-sonnet-4.5")
    assert found.split_model("anthropic/claude-sonnet-4.5") == \
        (None, "anthropic/claude-sonnet-4.5")
    assert found.split_model("qwen/qwen3-max") == (None, "qwen/qwen3-max")  # qwen not usable
    assert found.split_model("xai/") == (None, "xai/")
    provider, model = found.select("anthropic/claude-sonnet-4.5")
    assert (provider.name, model) == ("openrouter", "anthropic/claude-sonnet-4.5")
    provider, model = found.select("xai/grok-4")
    assert (provider.name, model) == ("xai", "grok-4")


def test_query_provider_wins_and_unknown_ones_are_400() -> None:
    found = registry(XAI_API_KEY="x")
    provider, model = found.select("grok-4", "XAI")
    assert (provider.name, model) == ("xai", "grok-4")
    assert found.select("xai/grok-4", "xai")[1] == "grok-4"
    assert found.select("gpt-5.4", "chatgpt")[0].name == "chatgpt"
    with pytest.raises(ClientError, match="Unknown provider 'grok'") as info:
        found.select("grok-4", "grok")
    assert info.value.code == "unknown_provider"


def test_secrets_for_log_redaction() -> None:
    found = registry(XAI_API_KEY="xai-secret-key", QWEN_AUTH_TOKEN=JWT,
                     QWEN_COOKIES="ssxmod_itna=0123456789abcdef; short=ab")
    secrets = found.secrets()
    assert {"xai-secret-key", JWT, "0123456789abcdef"} <= set(secrets)
    assert "ab" not in secrets


def test_cookie_pairs_keep_raw_values() -> None:
    assert cookie_pairs(' a=1; b="x y"; broken; c=d=e ;') == {"a": "1", "b": '"x y"',
                                                               "c": "d=e"}
