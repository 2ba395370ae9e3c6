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
from chatmock.net.redis_url import parse_state

DEFAULT_UPSTREAM_URL = "https://chatgpt.com/backend-api/codex"
DEFAULT_ISSUER = "https://auth.openai.com"
DEFAULT_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ENV_PREFIX = "CHATGPT_LOCAL_"
DEFAULT_CLIENT_VERSION = "0.169.0"  # the Codex CLI release chatmock presents itself as
DEFAULT_ORIGINATOR = "codex_cli_rs"  # the Codex CLI's own originator

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
SUMMARIES = ("auto", "concise", "detailed", "none")
COMPAT_MODES = ("think-tags", "o3", "legacy", "current")
RESPONSE_FORMATS = ("route", "input")
RESPONSE_STORES = ("sqlite", "memory")
LOG_FORMATS = ("text", "json")
BUILTIN_PROVIDERS = ("chatgpt", "xai", "openrouter", "qwen", "openai")
Upstream = tuple[str, str, str]
"""(name, base URL, environment variable holding its key or '')."""
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
    state: str = "embedded"


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


_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_origins(text: str) -> tuple[str, ...]:
    """`scheme://host[:port],...` or `*` → origins as browsers serialise them.

    Lower-cased, without a trailing `/` or a default port, so that the request's
    `Origin` is compared byte for byte. `null` is refused: sandboxed frames, local
    files and redirects all send it, so allowing it would allow any page."""
    found: list[str] = []
    for entry in _comma_list(text):
        if entry == "*":
            found.append(entry)
            continue
        if entry.lower() == "null":
            raise ValueError("the origin 'null' is sent by sandboxed frames and local files "
                             "of any site; it cannot be allowed (use * for any origin)")
        parts = urlsplit(entry.lower())
        port = parts.port if parts.netloc else None  # ValueError for a bad port
        if (not parts.scheme or not parts.hostname or parts.path not in ("", "/")
                or parts.query or parts.fragment or "@" in parts.netloc):
            raise ValueError(f"{entry!r} is not an origin like http://example.com:3000")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
            host += f":{port}"
        found.append(f"{parts.scheme}://{host}")
    return tuple(dict.fromkeys(found))


def parse_hosts(text: str) -> tuple[str, ...]:
    """Host names (or IP addresses) the `Host` header may carry, any port; lower-cased,
    IPv6 addresses in brackets as they appear in a `Host` header."""
    found: list[str] = []
    for entry in _comma_list(text.lower()):
        bare = entry.strip("[]")
        try:
            address = ipaddress.ip_address(bare)
        except ValueError:
            if not _HOST_NAME.fullmatch(entry):
                raise ValueError(f"{entry!r} is not a host name (give it without scheme "
                                 "or port; any port is accepted)") from None
            found.append(entry)
            continue
        found.append(f"[{address}]" if address.version == 6 else str(address))
    return tuple(dict.fromkeys(found))


_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_ENTRY_START = re.compile(r"([a-z][a-z0-9_-]*)=(https?://.*)", re.IGNORECASE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_upstreams(text: str) -> tuple[Upstream, ...]:
    """`name=URL[,KEY_ENV]`, several separated by commas → (name, url, key_env) entries.

    A piece `name=http(s)://...` starts an entry; a bare variable name after it is
    that entry's key variable. Names are lower-case words; `chatgpt` is refused (its
    backend is `--upstream-url`); a name may not be given twice."""
    entries: list[list[str]] = []
    for piece in _comma_list(text):
        start = _ENTRY_START.fullmatch(piece)
        if start is not None:
            name = start.group(1)
            if not _PROVIDER_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: provider names are lower-case words")
            entries.append([name, start.group(2), ""])
        elif entries and not entries[-1][2] and _ENV_NAME.fullmatch(piece):
            entries[-1][2] = piece
        else:
            raise ValueError(f"{piece!r} is neither name=http(s)://URL nor the name of the "
                             "environment variable holding the key of the entry before it")
    names = [entry[0] for entry in entries]
    for name in names:
        if name == "chatgpt":
            raise ValueError("the chatgpt backend is set with --upstream-url")
        if names.count(name) > 1:
            raise ValueError(f"{name!r} is given twice")
    if not entries:
        raise ValueError("expected name=URL[,KEY_ENV] entries")
    return tuple((name, url, key) for name, url, key in entries)


def _provider_name(text: str) -> str:
    name = text.strip().lower()
    if not _PROVIDER_NAME.fullmatch(name):
        raise ValueError("a provider name is a lower-case word")
    return name


def parse_workers(text: str) -> int:
    """A number of processes, or `auto` (stored as 0: one per core)."""
    word = text.strip().lower()
    count = 0 if word == "auto" else int(word)
    if count < 0:
        raise ValueError("expected a positive number or auto")
    return count


def worker_count(settings: Settings) -> int:
    return settings.workers or os.cpu_count() or 1


_VERSION = re.compile(r"\d{1,6}\.\d{1,6}\.\d{1,6}(?:[-+][0-9A-Za-z.-]{1,32})?")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_client_version(text: str) -> str:
    """A Codex CLI version such as 0.169.0 (the backend refuses newer models to older ones)."""
    if not _VERSION.fullmatch(text.strip()):
        raise ValueError("expected a version like 0.169.0")
    return text.strip()


def parse_originator(text: str) -> str:
    """An `originator` value: letters, digits, `_`, `.`, `-` (it is also the User-Agent's
    product name)."""
    if not _TOKEN.fullmatch(text.strip()):
        raise ValueError("expected letters, digits, '_', '.' or '-' (at most 64)")
    return text.strip()


def parse_base_instructions(text: str) -> str:
    """`none`, `codex`, or the path of a readable file (its text is read at start-up)."""
    word = text.strip()
    if word.lower() in ("none", "codex"):
        return word.lower()
    if not word or not Path(word).expanduser().is_file():
        raise ValueError("expected none, codex or the path of a file")
    return word


OPTIONS: tuple[Option, ...] = (
    Option("host", "address to listen on"),
    Option("port", "port to listen on", int),
    Option("verbose", "log request and upstream bodies (secrets redacted)", is_bool=True),
    Option("verbose_obfuscation", "also log every raw upstream SSE event", is_bool=True),
    Option("debug", "log full inbound requests and upstream responses", is_bool=True),
    Option("log_format", "log lines as text, or as JSON objects (one a line, for log "
           "shippers)", _lower, LOG_FORMATS),
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
           "restarts)", _lower, RESPONSE_STORES),
    Option("responses_ttl", "seconds a stored turn stays chainable", float),
    Option("responses_capacity", "stored turns at most", int),
    Option("responses_max_bytes", "stored turns' total size at most, in bytes (sqlite: "
           "compressed; memory: estimated JSON size)", int),
    Option("anthropic_models", "Claude family → upstream model on /v1/messages, as "
           "family=model pairs separated by commas (e.g. opus=gpt-5.5-high,haiku=gpt-5.4-mini)",
           parse_model_map),
    Option("provider", "the default upstream provider (a `provider/model` prefix or "
           "?provider= picks another per request)", _provider_name, env_name="CHATMOCK_PROVIDER",
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
           parse_state, env_name="CHATMOCK_STATE", also_env="CHATGPT_LOCAL_STATE",
           metavar="{embedded,redis://...}"),
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
