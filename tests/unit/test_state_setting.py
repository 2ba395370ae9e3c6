"""`--state`: embedded by default, a Redis URL for fleet mode, checked at start."""

from __future__ import annotations

import pytest

from chatmock.commands import store_summary
from chatmock.config import settings_from_argv
from chatmock.errors import ConfigError
from chatmock.info import store_lines


def test_embedded_is_the_default() -> None:
    assert settings_from_argv([], {}).state == "embedded"
    assert settings_from_argv(["--state", "EMBEDDED"], {}).state == "embedded"


def test_flag_then_either_variable() -> None:
    url = "redis://127.0.0.1:6380/1"
    assert settings_from_argv(["--state", url], {}).state == url
    assert settings_from_argv([], {"CHATMOCK_STATE": url}).state == url
    assert settings_from_argv([], {"CHATGPT_LOCAL_STATE": url}).state == url
    both = {"CHATMOCK_STATE": url, "CHATGPT_LOCAL_STATE": "redis://elsewhere/2"}
    assert settings_from_argv([], both).state == url
    assert settings_from_argv(["--state", "embedded"], both).state == "embedded"


@pytest.mark.parametrize("bad", ["redis://:hunter2@host:port/0", "http://host",
                                 "redis://user:hunter2@host/zero", "sqlite"])
def test_a_bad_url_stops_the_start_without_showing_its_password(bad: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_from_argv([], {"CHATMOCK_STATE": bad})
    assert "CHATMOCK_STATE" in str(refused.value) and "hunter2" not in str(refused.value)


def test_info_names_the_fleet_store_without_its_password() -> None:
    summary = store_summary({"CHATMOCK_STATE": "redis://:hunter2@10.0.0.5:6380/3"})
    assert summary["kind"] == "redis" and summary["path"] == "redis://10.0.0.5:6380/3"
    assert store_lines(summary)[0] == "  • Redis (fleet mode): redis://10.0.0.5:6380/3"
