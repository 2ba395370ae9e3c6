"""The security settings: --cors-origins, --allowed-hosts, --access-token-file and the
non-loopback bind that needs a token; and what `serve --help` tells about each option."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from chatmock.cli import warn_if_open
from chatmock.config import (
    OPTIONS,
    Settings,
    add_serve_arguments,
    settings_from_argv,
)
from chatmock.errors import ConfigError
from chatmock.option_values import parse_hosts, parse_origins


def from_argv(*argv: str, **env: str) -> Settings:
    return settings_from_argv(list(argv), {"CHATGPT_LOCAL_" + k.upper(): v
                                           for k, v in env.items()})


@pytest.mark.parametrize(("text", "origins"), [
    ("https://Chat.Example.com", ("https://chat.example.com",)),
    ("http://a.example:80, https://b.example:443/", ("http://a.example", "https://b.example")),
    ("http://10.0.0.5:3000,,http://10.0.0.5:3000", ("http://10.0.0.5:3000",)),
    ("http://[FD00::1]:8080", ("http://[fd00::1]:8080",)),
    ("chrome-extension://abcdef", ("chrome-extension://abcdef",)),
    ("*", ("*",)),
    ("", ()),
])
def test_origins_are_normalised_as_browsers_send_them(text: str,
                                                      origins: tuple[str, ...]) -> None:
    assert parse_origins(text) == origins


@pytest.mark.parametrize(("text", "fragment"), [
    ("null", "sandboxed"), ("example.com", "not an origin"),
    ("https://example.com/app", "not an origin"), ("https://user@example.com", "not an origin"),
    ("https://example.com?x=1", "not an origin"), ("http://example.com:99999", "range"),
])
def test_bad_origins_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_origins(text)


def test_origins_come_from_the_flag_or_the_environment() -> None:
    assert from_argv(cors_origins="https://a.example").cors_origins == ("https://a.example",)
    assert from_argv("--cors-origins", "https://b.example",
                     cors_origins="https://a.example").cors_origins == ("https://b.example",)
    with pytest.raises(ConfigError, match="CHATGPT_LOCAL_CORS_ORIGINS"):
        from_argv(cors_origins="null")


@pytest.mark.parametrize(("text", "hosts"), [
    ("chatmock.internal, My-Box.lan", ("chatmock.internal", "my-box.lan")),
    ("::1,[fd00::2],10.1.2.3", ("[::1]", "[fd00::2]", "10.1.2.3")),
])
def test_allowed_hosts(text: str, hosts: tuple[str, ...]) -> None:
    assert parse_hosts(text) == hosts
    assert from_argv("--allowed-hosts", text).allowed_hosts == hosts


@pytest.mark.parametrize("text", ["http://box.lan", "box.lan:8000", "box.lan/x", "-box", "a b"])
def test_bad_allowed_hosts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        parse_hosts(text)


def test_a_public_bind_needs_a_token_or_the_insecure_flag(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "192.168.1.20", "my-box.lan", ""):
        with pytest.raises(ConfigError, match="--insecure-no-auth") as refused:
            from_argv("--host", host)
        assert "\n" not in str(refused.value)
    assert from_argv("--host", "0.0.0.0", "--access-token", "t").access_token == "t"
    assert from_argv("--host", "0.0.0.0", "--insecure-no-auth").insecure_no_auth
    assert from_argv(host="0.0.0.0", insecure_no_auth="1").host == "0.0.0.0"
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.9"):
        assert from_argv("--host", host).host == host


def test_the_token_can_come_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret token\n")
    assert from_argv("--access-token-file", str(token_file)).access_token == "s3cret token"
    token_file.write_text("crlf\r\n")
    assert from_argv(access_token_file=str(token_file)).access_token == "crlf"
    public = from_argv("--host", "0.0.0.0", "--access-token-file", str(token_file))
    assert public.access_token == "crlf"


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "cannot read"), ("", "is empty"), ("\n", "is empty"), (b"\xff\xfe", "cannot read"),
])
def test_an_unusable_token_file_stops_the_start(tmp_path: Path, content: str | bytes | None,
                                                fragment: str) -> None:
    token_file = tmp_path / "token"
    if isinstance(content, bytes):
        token_file.write_bytes(content)
    elif content is not None:
        token_file.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        from_argv("--access-token-file", str(token_file))


def test_token_and_token_file_are_mutually_exclusive(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a")
    with pytest.raises(ConfigError, match="mutually exclusive"):
        from_argv("--access-token-file", str(token_file), "--access-token", "b")
    with pytest.raises(ConfigError, match="mutually exclusive"):
        from_argv("--access-token-file", str(token_file), access_token="b")


def test_help_shows_every_default_and_choice() -> None:
    parser = argparse.ArgumentParser(prog="chatmock serve", formatter_class=lambda prog:
                                     argparse.HelpFormatter(prog, width=10_000))
    add_serve_arguments(parser)
    text = parser.format_help()
    for opt in OPTIONS:
        assert opt.flag in text
        names = f"{opt.env} or {opt.also_env}" if opt.also_env else opt.env
        assert f"env {names})" in text
    assert "(default: 127.0.0.1;" in text and "(default: 8000;" in text
    assert "{none,minimal,low,medium,high,xhigh,max,ultra}" in text
    assert "(default: medium;" in text and "(default: on; env CHATGPT_LOCAL_MODEL_SYNC)" in text
    assert "opus=gpt-5.5-high,sonnet=gpt-5.4" in text
    assert text.count("(default:") == len(OPTIONS)


@pytest.mark.parametrize(("settings", "warned"), [
    (Settings(host="0.0.0.0", insecure_no_auth=True), "without an access token"),
    (Settings(cors_origins=("*",)), "any web page"),
    (Settings(host="0.0.0.0", insecure_no_auth=True, access_token="t"), None),
    (Settings(cors_origins=("*",), access_token="t"), None),
    (Settings(), None),
])
def test_open_configurations_are_warned_about_at_start(
        caplog: pytest.LogCaptureFixture, settings: Settings, warned: str | None) -> None:
    with caplog.at_level(logging.WARNING, logger="chatmock"):
        warn_if_open(settings)
    if warned is None:
        assert not caplog.records
    else:
        assert warned in caplog.text and "INSECURE" in caplog.text
