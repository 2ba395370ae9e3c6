"""The frozen settings of one `serve` process.

Every option is declared once in `OPTIONS`: its flag, its environment variable
and its default. Precedence is flag > environment > default, and values are
validated here, at start-up, so that no request ever meets a bad setting.
The environment variable of an option is `CHATGPT_LOCAL_` + the flag name in
upper case with `-` turned into `_` (so `--debug-model` reads
`CHATGPT_LOCAL_DEBUG_MODEL`), which matches the names the reference
implementations use.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chatmock.errors import ConfigError

DEFAULT_UPSTREAM_URL = "https://chatgpt.com/backend-api/codex"
DEFAULT_ISSUER = "https://auth.openai.com"
DEFAULT_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ENV_PREFIX = "CHATGPT_LOCAL_"

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
SUMMARIES = ("auto", "concise", "detailed", "none")
COMPAT_MODES = ("think-tags", "o3", "legacy", "current")
RESPONSE_FORMATS = ("route", "input")
RESPONSE_STORES = ("sqlite", "memory")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
ModelMap = tuple[tuple[str, str], ...]
DEFAULT_ANTHROPIC_MODELS: ModelMap = (
    ("opus", "gpt-5.5-high"), ("sonnet", "gpt-5.4"), ("haiku", "gpt-5.4-mini"),
    ("fable", "gpt-5.4"))
"""Claude family → upstream model (an effort suffix allowed); `sonnet` is the fallback."""


def home_dir(env: Mapping[str, str]) -> Path:
    """Where chatmock writes its files."""
    for name in ("CHATGPT_LOCAL_HOME", "CODEX_HOME"):
        if env.get(name):
            return Path(env[name]).expanduser()
    return Path.home() / ".chatgpt-local"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `serve` was configured with; built once, never mutated."""

    host: str = "127.0.0.1"
    port: int = 8000
    verbose: bool = False
    verbose_obfuscation: bool = False
    debug: bool = False
    access_token: str = ""
    debug_model: str = ""
    fast_mode: bool = False
    reasoning_effort: str = "medium"
    reasoning_summary: str = "auto"
    reasoning_compat: str = "think-tags"
    expose_reasoning_models: bool = False
    enable_web_search: bool = False
    model_sync: bool = True
    model_refresh_interval: float = 3600.0
    response_format: str = "route"
    upstream_url: str = DEFAULT_UPSTREAM_URL
    issuer: str = DEFAULT_ISSUER
    client_id: str = DEFAULT_CLIENT_ID
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 64 * 1024 * 1024
    header_timeout: float = 30.0
    idle_timeout: float = 75.0
    write_timeout: float = 120.0
    max_connections: int = 10_000
    h2_max_streams: int = 100
    tls_cert: str = ""
    tls_key: str = ""
    shutdown_timeout: float = 15.0
    upstream_connect_timeout: float = 15.0
    upstream_read_timeout: float = 300.0
    upstream_pool_size: int = 256
    upstream_http2: bool = True
    responses_store: str = "sqlite"
    responses_ttl: float = 3600.0
    responses_capacity: int = 10_000
    anthropic_models: ModelMap = DEFAULT_ANTHROPIC_MODELS


@dataclass(frozen=True, slots=True)
class Option:
    """One `serve` option: where it comes from and how to parse it."""

    field: str
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    is_bool: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS - {''})}")


def _lower(text: str) -> str:
    return text.strip().lower()


_FAMILY = re.compile(r"[a-z][a-z0-9_-]*")


def parse_model_map(text: str) -> ModelMap:
    """`family=model,...` → the default map with those families replaced or added.

    Families are lower-cased words (`opus`, `sonnet`, or a new one); models are
    upstream names, optionally with an effort suffix (`gpt-5.5-high`). Naming
    only some families keeps the defaults of the others.
    """
    found: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        family, equals, model = (part.strip() for part in pair.partition("="))
        family = family.lower()
        if not equals or not _FAMILY.fullmatch(family):
            raise ValueError(f"{pair.strip()!r} is not family=model")
        if not model or any(c.isspace() or c == "=" for c in model):
            raise ValueError(f"{pair.strip()!r} needs a model name after '='")
        if family in found:
            raise ValueError(f"family {family!r} is given twice")
        found[family] = model
    if not found:
        raise ValueError("expected family=model pairs separated by commas")
    return tuple({**dict(DEFAULT_ANTHROPIC_MODELS), **found}.items())


OPTIONS: tuple[Option, ...] = (
    Option("host", "address to listen on"),
    Option("port", "port to listen on", int),
    Option("verbose", "log request and upstream bodies (secrets redacted)", is_bool=True),
    Option("verbose_obfuscation", "also log every raw upstream SSE event", is_bool=True),
    Option("debug", "log full inbound requests and upstream responses", is_bool=True),
    Option("access_token", "require this bearer token (or x-api-key) on API routes"),
    Option("debug_model", "use this upstream model for every request"),
    Option("fast_mode", "ask for priority processing by default", is_bool=True),
    Option("reasoning_effort", "default reasoning effort", _lower, EFFORTS),
    Option("reasoning_summary", "default reasoning summary", _lower, SUMMARIES),
    Option("reasoning_compat", "how reasoning reaches chat clients", _lower, COMPAT_MODES),
    Option("expose_reasoning_models", "list <model>-<effort> variants", is_bool=True),
    Option("enable_web_search", "add the web_search tool by default", is_bool=True),
    Option("model_sync", "discover models from the backend", is_bool=True),
    Option("model_refresh_interval", "seconds between model discoveries", float),
    Option("response_format", "`input`: chat bodies with `input` get Responses output",
           _lower, RESPONSE_FORMATS),
    Option("upstream_url", "base URL of the Codex backend"),
    Option("issuer", "OAuth issuer"),
    Option("client_id", "OAuth client id"),
    Option("max_header_bytes", "largest request head accepted (431 beyond)", int),
    Option("max_body_bytes", "largest request body accepted (413 beyond)", int),
    Option("header_timeout", "seconds a client may take to send its request", float),
    Option("idle_timeout", "seconds an idle keep-alive connection stays open", float),
    Option("write_timeout", "seconds a client may refuse to read before it is dropped", float),
    Option("max_connections", "open client connections at most (more wait)", int),
    Option("h2_max_streams", "concurrent streams per HTTP/2 client connection", int),
    Option("tls_cert", "serve TLS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM certificate "
           "chain; needs --tls-key"),
    Option("tls_key", "the PEM private key of --tls-cert"),
    Option("shutdown_timeout", "seconds in-flight requests get after SIGINT/SIGTERM", float),
    Option("upstream_connect_timeout", "seconds to connect to the backend", float),
    Option("upstream_read_timeout", "seconds the backend may stay silent mid-answer", float),
    Option("upstream_pool_size", "idle backend connections kept for reuse", int),
    Option("upstream_http2", "offer HTTP/2 to an https backend (one connection carries many "
           "streams); off: HTTP/1.1 only", is_bool=True),
    Option("responses_store", "where previous_response_id turns are kept (sqlite survives "
           "restarts)", _lower, RESPONSE_STORES),
    Option("responses_ttl", "seconds a stored turn stays chainable", float),
    Option("responses_capacity", "stored turns at most", int),
    Option("anthropic_models", "Claude family → upstream model on /v1/messages, as "
           "family=model pairs separated by commas (e.g. opus=gpt-5.5-high,haiku=gpt-5.4-mini)",
           parse_model_map),
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every option on `parser`, with None meaning "not given"."""
    for opt in OPTIONS:
        if opt.is_bool:
            parser.add_argument(opt.flag, dest=opt.field, default=None,
                                action=argparse.BooleanOptionalAction,
                                help=f"{opt.help} (env {opt.env})")
        else:
            parser.add_argument(opt.flag, dest=opt.field, default=None, metavar="VALUE",
                                help=f"{opt.help} (env {opt.env})")


def build_settings(args: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Resolve flag > env > default for every option and validate the result."""
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        given = args.get(opt.field)
        source = opt.flag
        if given is None and opt.env in env:
            given, source = env[opt.env], opt.env
        if given is None:
            continue
        values[opt.field] = _convert(opt, given, source)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _convert(opt: Option, given: Any, source: str) -> Any:
    if isinstance(given, bool):
        return given
    try:
        value = parse_bool(given) if opt.is_bool else opt.parse(given)
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid value {given!r} ({exc})") from None
    if opt.choices and value not in opt.choices:
        raise ConfigError(f"{source}: {given!r} is not one of {', '.join(opt.choices)}")
    if opt.field == "reasoning_compat" and value == "current":
        value = "legacy"
    return value


def _validate(settings: Settings) -> None:
    positive = ("max_header_bytes", "max_body_bytes", "header_timeout", "idle_timeout",
                "write_timeout", "max_connections", "h2_max_streams", "upstream_connect_timeout",
                "upstream_read_timeout", "responses_ttl", "responses_capacity")
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")
    if not 0 <= settings.port <= 65535:
        raise ConfigError("--port must be between 0 and 65535")
    if settings.model_refresh_interval < 0:
        raise ConfigError("--model-refresh-interval must not be negative")
    if settings.shutdown_timeout < 0 or settings.upstream_pool_size < 0:
        raise ConfigError("--shutdown-timeout and --upstream-pool-size must not be negative")
    check_upstream_url(settings.upstream_url)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    if settings.h2_max_streams >= 2**31:
        raise ConfigError("--h2-max-streams must be below 2**31")


def check_upstream_url(url: str) -> None:
    """Allow https anywhere, plain http only to loopback: tokens never cross a network clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--upstream-url {url!r} must be an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"--upstream-url {url!r}: plain http is allowed only to loopback")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from_argv(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `serve` arguments alone, without the CLI around them."""
    parser = argparse.ArgumentParser(prog="chatmock serve")
    add_serve_arguments(parser)
    namespace = parser.parse_args(list(argv))
    return build_settings(vars(namespace), os.environ if env is None else env)


def replace(settings: Settings, **changes: Any) -> Settings:
    """A copy of `settings` with some fields changed (tests, derived settings)."""
    return dataclasses.replace(settings, **changes)
