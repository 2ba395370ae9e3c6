"""chatmock.config: flag > environment > default, validated once at start-up."""

from __future__ import annotations

import dataclasses
import os

import pytest

from chatmock.config import (
    DEFAULT_UPSTREAM_URL,
    OPTIONS,
    Settings,
    build_settings,
    check_upstream_url,
    replace,
    settings_from_argv,
    worker_count,
)
from chatmock.errors import ConfigError

ENV = "CHATGPT_LOCAL_"


def from_argv(*argv: str, **env: str) -> Settings:
    return settings_from_argv(list(argv), {ENV + k.upper(): v for k, v in env.items()})


def test_defaults() -> None:
    assert from_argv() == Settings()
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.reasoning_compat == "think-tags" and settings.fast_mode is False
    assert settings.upstream_url == DEFAULT_UPSTREAM_URL


def test_string_precedence() -> None:
    assert from_argv().debug_model == ""
    assert from_argv(debug_model="gpt-5.5").debug_model == "gpt-5.5"
    assert from_argv("--debug-model", "gpt-5.4", debug_model="gpt-5.5").debug_model == "gpt-5.4"


def test_bool_precedence() -> None:
    assert from_argv().fast_mode is False
    assert from_argv(fast_mode="yes").fast_mode is True
    assert from_argv("--fast-mode").fast_mode is True
    assert from_argv("--no-fast-mode", fast_mode="yes").fast_mode is False
    assert from_argv("--fast-mode", fast_mode="no").fast_mode is True
    assert from_argv(model_sync="off").model_sync is False
    assert from_argv("--no-model-sync").model_sync is False


@pytest.mark.parametrize(("word", "value"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False),
])
def test_bool_words(word: str, value: bool) -> None:
    assert from_argv(enable_web_search=word).enable_web_search is value


def test_int_precedence() -> None:
    assert from_argv().port == 8000
    assert from_argv(port="9000").port == 9000
    assert from_argv("--port", "9100", port="9000").port == 9100


def test_float_precedence() -> None:
    assert from_argv().header_timeout == 30.0
    assert from_argv(header_timeout="2.5").header_timeout == 2.5
    assert from_argv("--header-timeout", "0.25", header_timeout="2.5").header_timeout == 0.25


def test_body_timeout_and_store_bytes() -> None:
    assert (Settings().body_timeout, Settings().responses_max_bytes) == (60.0, 256 * 1024 * 1024)
    assert from_argv(body_timeout="90").body_timeout == 90.0
    assert from_argv("--body-timeout", "5", body_timeout="90").body_timeout == 5.0
    assert from_argv(responses_max_bytes="1048576").responses_max_bytes == 1048576
    from chatmock.cli import limits_of  # the server's connections get it

    assert limits_of(replace(Settings(), body_timeout=7.5)).body_timeout == 7.5


def test_choices_are_normalised() -> None:
    assert from_argv(reasoning_effort=" HIGH ").reasoning_effort == "high"
    assert from_argv("--reasoning-summary", "Detailed").reasoning_summary == "detailed"
    assert from_argv("--response-format", "input").response_format == "input"


def test_current_compat_is_legacy() -> None:
    assert from_argv("--reasoning-compat", "current").reasoning_compat == "legacy"
    assert from_argv(reasoning_compat="CURRENT").reasoning_compat == "legacy"
    assert from_argv("--reasoning-compat", "o3").reasoning_compat == "o3"


@pytest.mark.parametrize(("argv", "env", "fragment"), [
    (["--reasoning-effort", "turbo"], {}, "--reasoning-effort"),
    ([], {"reasoning_effort": "turbo"}, "CHATGPT_LOCAL_REASONING_EFFORT"),
    (["--reasoning-compat", "r1"], {}, "--reasoning-compat"),
    (["--reasoning-summary", "short"], {}, "--reasoning-summary"),
    (["--port", "eighty"], {}, "--port"),
    ([], {"port": "eighty"}, "CHATGPT_LOCAL_PORT"),
    (["--port", "70000"], {}, "--port"),
    (["--port", "-1"], {}, "--port"),
    ([], {"fast_mode": "maybe"}, "CHATGPT_LOCAL_FAST_MODE"),
    (["--header-timeout", "0"], {}, "--header-timeout"),
    (["--idle-timeout", "-1"], {}, "--idle-timeout"),
    (["--max-body-bytes", "0"], {}, "--max-body-bytes"),
    (["--max-connections", "1.5"], {}, "--max-connections"),
    (["--model-refresh-interval", "-1"], {}, "--model-refresh-interval"),
    (["--shutdown-timeout", "-1"], {}, "--shutdown-timeout"),
    (["--header-timeout", "fast"], {}, "--header-timeout"),
    (["--body-timeout", "0"], {}, "--body-timeout"),
    ([], {"body_timeout": "soon"}, "CHATGPT_LOCAL_BODY_TIMEOUT"),
    (["--responses-max-bytes", "0"], {}, "--responses-max-bytes"),
    (["--responses-max-bytes", "1e6"], {}, "--responses-max-bytes"),
    (["--client-version", "latest"], {}, "--client-version"),
    ([], {"client_version": "0.169"}, "CHATGPT_LOCAL_CLIENT_VERSION"),
    (["--originator", "codex cli"], {}, "--originator"),
    ([], {"originator": "codex\r\nx-evil: 1"}, "CHATGPT_LOCAL_ORIGINATOR"),
])
def test_invalid_values(argv: list[str], env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_argv(*argv, **env)
    assert fragment in str(info.value)


@pytest.mark.parametrize("url", [
    "https://chatgpt.com/backend-api/codex",
    "https://example.com:8443/x",
    "http://127.0.0.1:9999/backend-api/codex",
    "http://127.1.2.3/",
    "http://localhost:8080/backend-api/codex",
    "http://LOCALHOST/",
    "http://[::1]:8080/",
])
def test_upstream_urls_accepted(url: str) -> None:
    check_upstream_url(url)
    assert from_argv("--upstream-url", url).upstream_url == url


@pytest.mark.parametrize("url", [
    "http://example.com/backend-api/codex",
    "http://10.0.0.1/",
    "http://0.0.0.0:8080/",
    "http://localhost.example.com/",
    "http://[::2]/",
    "ftp://127.0.0.1/",
    "chatgpt.com/backend-api/codex",
    "https://",
    "",
])
def test_upstream_urls_rejected(url: str) -> None:
    with pytest.raises(ConfigError):
        check_upstream_url(url)
    with pytest.raises(ConfigError):
        from_argv(upstream_url=url)


def test_build_settings_from_a_mapping() -> None:
    settings = build_settings({"port": "1234", "verbose": True, "host": None},
                              {ENV + "HOST": "0.0.0.0", ENV + "PORT": "1",
                               ENV + "ACCESS_TOKEN": "t"})
    assert (settings.port, settings.verbose, settings.host) == (1234, True, "0.0.0.0")


def test_unrelated_environment_is_ignored() -> None:
    assert settings_from_argv([], {"PORT": "1", "CHATGPT_PORT": "2", "HOME": "/x"}) == Settings()


def test_every_option_has_a_field_flag_and_env() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert {opt.field for opt in OPTIONS} == fields
    for opt in OPTIONS:
        assert opt.flag == "--" + (opt.flag_name or opt.field.replace("_", "-"))
        # The provider options keep the CHATMOCK_* names the multi-provider fork made known.
        assert opt.env == (opt.env_name or ENV + opt.field.upper())
        assert not opt.env_name or opt.env_name.startswith("CHATMOCK_")


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
    changed = replace(settings, port=1)
    assert changed.port == 1 and settings.port == 8000


def test_client_identity_settings() -> None:
    assert (Settings().client_version, Settings().originator) == ("0.169.0", "codex_cli_rs")
    settings = from_argv("--client-version", "0.170.0-alpha.1", originator="codex_exec")
    assert (settings.client_version, settings.originator) == ("0.170.0-alpha.1", "codex_exec")
    assert from_argv(client_version=" 1.2.3 ").client_version == "1.2.3"


def test_workers() -> None:
    assert from_argv().workers == 1 and worker_count(from_argv()) == 1
    assert from_argv("--workers", "3").workers == 3
    assert from_argv(workers="auto").workers == 0
    assert worker_count(from_argv("--workers", "auto")) == (os.cpu_count() or 1)
    for bad in ("-1", "two"):
        with pytest.raises(ConfigError, match="--workers"):
            from_argv("--workers", bad)


def test_workers_need_the_shared_store() -> None:
    with pytest.raises(ConfigError, match="sqlite"):
        from_argv("--workers", "2", "--responses-store", "memory")
    assert from_argv("--workers", "1", "--responses-store", "memory").workers == 1
