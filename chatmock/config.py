"""The frozen settings of one `serve` process.

Every option is declared once in `OPTIONS`: its flag, its environment variable
and its default. Precedence is flag > environment > default, and values are
validated here, at start-up, so that no request ever meets a bad setting.
The environment variable of an option is `CHATGPT_LOCAL_` + the flag name in
upper case with `-` turned into `_` (so `--debug-model` reads
`CHATGPT_LOCAL_DEBUG_MODEL`), which matches the names the reference
implementations use; the provider options read the `CHATMOCK_*` names the
multi-provider fork made known (`CHATMOCK_PROVIDER`, `CHATMOCK_MAX_CONCURRENCY`,
`CHATMOCK_QUEUE_TIMEOUT`, `CHATMOCK_UPSTREAM`).

Providers: `--provider` picks the default upstream (`chatgpt`, `xai`,
`openrouter`, `qwen`, `openai`, or a name given with `--upstream`);
`--upstream name=URL[,KEY_ENV]` (repeatable, or several separated by commas)
names an OpenAI-compatible server whose key is read from the environment
variable KEY_ENV, or, for a built-in name other than `chatgpt`, moves that
provider to another base URL (a local fake, a proxy). Credentials are never
options: `chatmock.upstream.providers` reads them from the environment.
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
from chatmock.option_values import (
    DEFAULT_ANTHROPIC_MODELS,
    ModelMap,
    Upstream,
    lower_word,
    parse_base_instructions,
    parse_bool,
    parse_client_version,
    parse_hosts,
    parse_model_map,
    parse_originator,
    parse_origins,
    parse_upstreams,
    parse_workers,
    provider_name,
)

DEFAULT_UPSTREAM_URL = "https://chatgpt.com/backend-api/codex"
DEFAULT_ISSUER = "https://auth.openai.com"
DEFAULT_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ENV_PREFIX = "CHATGPT_LOCAL_"
DEFAULT_CLIENT_VERSION = "0.169.0"  # the Codex CLI release chatmock presents itself as
DEFAULT_ORIGINATOR = "codex_cli_rs"  # the Codex CLI's own originator

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
SUMMARIES = ("auto", "concise", "detailed", "none")
COMPAT_MODES = ("think-tags", "o3", "legacy", "current")
ACCOUNT_STRATEGIES = ("fill-first", "round-robin", "least-used")  # upstream/pool_strategy.py
RESPONSE_FORMATS = ("route", "input")
RESPONSE_STORES = ("sqlite", "memory")
LOG_FORMATS = ("text", "json")
BUILTIN_PROVIDERS = ("chatgpt", "xai", "openrouter", "qwen", "openai")
EMBEDDED_STATE = "embedded"  # `--state`'s default: redis_url.EMBEDDED, not imported (~1 ms)


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
    log_format: str = "text"
    access_token: str = ""
    access_token_file: str = ""
    insecure_no_auth: bool = False
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
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
    body_timeout: float = 60.0
    idle_timeout: float = 75.0
    write_timeout: float = 120.0
    max_connections: int = 10_000
    workers: int = 1  # 0: one per core (see `worker_count`)
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
    responses_max_bytes: int = 256 * 1024 * 1024
    anthropic_models: ModelMap = DEFAULT_ANTHROPIC_MODELS
    provider: str = "chatgpt"
    upstreams: tuple[Upstream, ...] = ()
    max_concurrency: int = 8
    queue_timeout: float = 60.0
    client_version: str = DEFAULT_CLIENT_VERSION
    originator: str = DEFAULT_ORIGINATOR
    base_instructions: str = "none"
    state: str = EMBEDDED_STATE
    account_strategy: str = "fill-first"


@dataclass(frozen=True, slots=True)
class Option:
    """One `serve` option: where it comes from and how to parse it."""

    field: str
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    is_bool: bool = False
    env_name: str = ""  # instead of CHATGPT_LOCAL_<FIELD>
    repeatable: bool = False  # the flag may be given several times (values joined by ",")
    metavar: str = ""
    flag_name: str = ""  # instead of --<field>
    also_env: str = ""  # a second environment variable, read when the first is unset

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.field.replace("_", "-"))

    @property
    def env(self) -> str:
        return self.env_name or ENV_PREFIX + self.field.upper()


def worker_count(settings: Settings) -> int:
    return settings.workers or os.cpu_count() or 1


def _parse_state(text: str) -> str:
    """`--state` (chatmock/redis_url.py, imported when the option is given: ~1 ms)."""
    from chatmock.redis_url import parse_state

    return parse_state(text)


OPTIONS: tuple[Option, ...] = (
    Option("host", "address to listen on"),
    Option("port", "port to listen on", int),
    Option("verbose", "log request and upstream bodies (secrets redacted)", is_bool=True),
    Option("verbose_obfuscation", "also log every raw upstream SSE event", is_bool=True),
    Option("debug", "log full inbound requests and upstream responses", is_bool=True),
    Option("log_format", "log lines as text, or as JSON objects (one a line, for log "
           "shippers)", lower_word, LOG_FORMATS),
    Option("access_token", "require this bearer token (or x-api-key) on API routes"),
    Option("access_token_file", "read the access token from this file (not visible in `ps`)"),
    Option("insecure_no_auth", "allow a non-loopback --host without an access token",
           is_bool=True),
    Option("cors_origins", "browser origins allowed besides loopback ones, comma-separated "
           "(scheme://host[:port], or * for any)", parse_origins),
    Option("allowed_hosts", "extra names the Host header may carry on a loopback bind, "
           "comma-separated", parse_hosts),
    Option("debug_model", "use this upstream model for every request"),
    Option("fast_mode", "ask for priority processing by default", is_bool=True),
    Option("reasoning_effort", "default reasoning effort", lower_word, EFFORTS),
    Option("reasoning_summary", "default reasoning summary", lower_word, SUMMARIES),
    Option("reasoning_compat", "how reasoning reaches chat clients", lower_word, COMPAT_MODES),
    Option("expose_reasoning_models", "list <model>-<effort> variants", is_bool=True),
    Option("enable_web_search", "add the web_search tool by default", is_bool=True),
    Option("model_sync", "discover models from the backend", is_bool=True),
    Option("model_refresh_interval", "seconds between model discoveries", float),
    Option("response_format", "`input`: chat bodies with `input` get Responses output",
           lower_word, RESPONSE_FORMATS),
    Option("upstream_url", "base URL of the Codex backend"),
    Option("issuer", "OAuth issuer"),
    Option("client_id", "OAuth client id"),
    Option("max_header_bytes", "largest request head accepted (431 beyond)", int),
    Option("max_body_bytes", "largest request body accepted (413 beyond)", int),
    Option("header_timeout", "seconds a client may take to send its request head, in total "
           "(and to send each piece of a body)", float),
    Option("body_timeout", "seconds a client may take to send its request body, in total "
           "(408 beyond)", float),
    Option("idle_timeout", "seconds an idle keep-alive connection stays open", float),
    Option("write_timeout", "seconds a client may refuse to read before it is dropped", float),
    Option("max_connections", "open client connections at most (more wait)", int),
    Option("workers", "server processes sharing the port, each with its own event loop "
           "(auto: one per core)", parse_workers, metavar="{N,auto}"),
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
           "restarts)", lower_word, RESPONSE_STORES),
    Option("responses_ttl", "seconds a stored turn stays chainable", float),
    Option("responses_capacity", "stored turns at most", int),
    Option("responses_max_bytes", "stored turns' total size at most, in bytes (sqlite: "
           "compressed; memory: estimated JSON size)", int),
    Option("anthropic_models", "Claude family → upstream model on /v1/messages, as "
           "family=model pairs separated by commas (e.g. opus=gpt-5.5-high,haiku=gpt-5.4-mini)",
           parse_model_map),
    Option("provider", "the default upstream provider (a `provider/model` prefix or "
           "?provider= picks another per request)", provider_name, env_name="CHATMOCK_PROVIDER",
           metavar="{" + ",".join(BUILTIN_PROVIDERS) + ",NAME}"),
    Option("upstreams", "OpenAI-compatible servers as name=URL[,KEY_ENV] (repeatable or "
           "comma-separated); a built-in name moves that provider to URL", parse_upstreams,
           env_name="CHATMOCK_UPSTREAM", repeatable=True, metavar="NAME=URL[,KEY_ENV]",
           flag_name="upstream"),
    Option("max_concurrency", "requests in flight per provider at most (0: no limit); more "
           "wait their turn, fairly per client", int, env_name="CHATMOCK_MAX_CONCURRENCY"),
    Option("queue_timeout", "seconds a request may wait for its turn before a 429", float,
           env_name="CHATMOCK_QUEUE_TIMEOUT"),
    Option("client_version", "Codex CLI version chatmock presents upstream (`version` header, "
           "User-Agent, model discovery); newer models need a recent one",
           parse_client_version),
    Option("originator", "`originator` header chatmock sends upstream (also the User-Agent's "
           "product)", parse_originator),
    Option("base_instructions", "instructions sent when a client sends none: none, codex (the "
           "bundled Codex prompts) or a file's path", parse_base_instructions),
    Option("state", "where shared state lives: embedded (this machine's files) or "
           "redis://[user:password@]host:port/db (rediss:// for TLS) to serve as one fleet",
           _parse_state, env_name="CHATMOCK_STATE", also_env="CHATGPT_LOCAL_STATE",
           metavar="{embedded,redis://...}"),
    Option("account_strategy", "which account of the pool (`chatmock accounts`) a new "
           "conversation goes to", lower_word, ACCOUNT_STRATEGIES,
           env_name="CHATMOCK_ACCOUNT_STRATEGY", also_env="CHATGPT_LOCAL_ACCOUNT_STRATEGY"),
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every option on `parser`, with None meaning "not given"."""
    defaults = {field.name: field.default for field in dataclasses.fields(Settings)}
    for opt in OPTIONS:
        env = f"{opt.env} or {opt.also_env}" if opt.also_env else opt.env
        help_text = f"{opt.help} (default: {_shown(defaults[opt.field])}; env {env})"
        if opt.is_bool:
            parser.add_argument(opt.flag, dest=opt.field, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            metavar = opt.metavar or ("{" + ",".join(opt.choices) + "}" if opt.choices
                                      else "VALUE")
            parser.add_argument(opt.flag, dest=opt.field, default=None, metavar=metavar,
                                help=help_text, action="append" if opt.repeatable else "store")


def _shown(default: Any) -> str:
    """A default as `serve --help` shows it."""
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        pairs = (f"{item[0]}={item[1]}" if isinstance(item, tuple) else str(item)
                 for item in default)
        return ",".join(pairs) or "none"
    return str(default) if default != "" else "none"


def build_settings(args: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Resolve flag > env > default for every option and validate the result."""
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        given = args.get(opt.field)
        source = opt.flag
        for name in (opt.env, opt.also_env):
            if given is None and name and name in env:
                given, source = env[name], name
        if given is None:
            continue
        values[opt.field] = _convert(opt, given, source)
    if values.get("access_token_file"):
        if values.get("access_token"):
            raise ConfigError("--access-token and --access-token-file are mutually exclusive")
        values["access_token"] = read_token_file(values["access_token_file"])
    settings = Settings(**values)
    _validate(settings)
    return settings


def read_token_file(path: str) -> str:
    """The token in `path`, without its trailing newline; ConfigError if unreadable or empty."""
    try:
        token = Path(path).expanduser().read_text("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--access-token-file {path!r}: cannot read it "
                          f"({getattr(exc, 'strerror', None) or exc})") from None
    if not token.strip():
        raise ConfigError(f"--access-token-file {path!r} is empty")
    return token


_USERINFO = re.compile(r"(://[^/@\s]*?:)[^/@\s]*@")


def _convert(opt: Option, given: Any, source: str) -> Any:
    if isinstance(given, bool):
        return given
    if isinstance(given, list):  # a repeated flag
        given = ",".join(given)
    try:
        value = parse_bool(given) if opt.is_bool else opt.parse(given)
    except ValueError as exc:
        shown = _USERINFO.sub(r"\1***@", given)  # a URL's password stays out of the message
        raise ConfigError(f"{source}: invalid value {shown!r} ({exc})") from None
    if opt.choices and value not in opt.choices:
        raise ConfigError(f"{source}: {given!r} is not one of {', '.join(opt.choices)}")
    if opt.field == "reasoning_compat" and value == "current":
        value = "legacy"
    return value


def _validate(settings: Settings) -> None:
    positive = ("max_header_bytes", "max_body_bytes", "header_timeout", "body_timeout",
                "idle_timeout", "write_timeout", "max_connections", "h2_max_streams",
                "upstream_connect_timeout", "upstream_read_timeout", "responses_ttl",
                "responses_capacity", "responses_max_bytes")
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
    _validate_providers(settings)
    if settings.responses_store == "memory" and worker_count(settings) > 1:
        raise ConfigError("--responses-store memory keeps turns inside one process: with "
                          "--workers the store must be sqlite, which they share")
    if not is_loopback(settings.host) and not settings.access_token \
            and not settings.insecure_no_auth:
        raise ConfigError(f"--host {settings.host!r} is not a loopback address: anyone who can "
                          "reach it could use your ChatGPT account; set --access-token or "
                          "--access-token-file, or pass --insecure-no-auth")


def _validate_providers(settings: Settings) -> None:
    if settings.max_concurrency < 0:
        raise ConfigError("--max-concurrency must not be negative (0: no limit)")
    if settings.queue_timeout < 0:
        raise ConfigError("--queue-timeout must not be negative")
    for name, url, _ in settings.upstreams:
        check_upstream_url(url, f"--upstream {name}=")
    known = dict.fromkeys([*BUILTIN_PROVIDERS, *(name for name, _, _ in settings.upstreams)])
    if settings.provider not in known:
        raise ConfigError(f"--provider {settings.provider!r} is not one of {', '.join(known)} "
                          "(name more with --upstream name=URL)")


def check_upstream_url(url: str, flag: str = "--upstream-url ") -> None:
    """Allow https anywhere, plain http only to loopback: tokens never cross a network clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{flag}{url!r} must be an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{flag}{url!r}: plain http is allowed only to loopback")


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
