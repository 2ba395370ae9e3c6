"""Which upstream providers this server can reach, and how to address each one.

`build_registry(settings, env)` turns the settings (`--provider`, `--upstream`)
and the environment (the credentials) into a `ProviderRegistry`, once at
start and without any network call; a `--provider` that names no provider,
or names one whose credentials are missing, is a `ConfigError` (exit 2).

| name       | kind  | base URL                        | credentials                       |
|------------|-------|---------------------------------|-----------------------------------|
| chatgpt    | codex | `--upstream-url`                | `chatmock login` (auth.json)      |
| xai        | chat  | https://api.x.ai/v1             | XAI_API_KEY                       |
| openrouter | chat  | https://openrouter.ai/api/v1    | OPENROUTER_API_KEY                |
| qwen       | qwen  | https://chat.qwen.ai            | QWEN_AUTH_TOKEN (+ QWEN_COOKIES)  |
| openai     | chat  | OPENAI_BASE_URL                 | OPENAI_API_KEY, if set            |
| NAME       | chat  | `--upstream NAME=URL[,KEY_ENV]` | KEY_ENV, if given                 |

`--upstream xai=URL` (or openrouter, qwen, openai) moves a built-in provider
to another base URL, keeping its kind and credentials (a local fake, a
proxy). `openai` is configured only by `--upstream openai=URL` or
`OPENAI_BASE_URL`: an `OPENAI_API_KEY` alone does not send traffic to
api.openai.com. Qwen's token may also come from the `token` cookie inside
`QWEN_COOKIES`; the `Cookie` header always carries `token=<jwt>` (§3.2).
OpenRouter requests carry the attribution headers `X-OpenRouter-Title` and
`X-Title` (`ChatMock`), and `HTTP-Referer` when `OPENROUTER_REFERER` holds the
app's URL (OpenRouter wants a URL there, not a name).

A provider without its credentials stays known (`chatmock info` shows what it
misses) but is `usable` False: left out of model lists, and a request for it
gets `not_configured()`, a 400 naming the missing variable (not a 401:
clients such as Claude Code answer a 401 by asking the user to sign in to
chatmock again).

Choosing a provider per request (`ProviderRegistry.select`): `?provider=`,
else a `provider/model` prefix whose first segment names a usable provider
(`xai/grok-4`, `openrouter/anthropic/claude-sonnet-4.5`), else the default.
While the default is the Codex backend, a prefix naming a provider without
credentials gets that provider's 400 (`not_configured`).
The prefix rule is literal: with the default on OpenRouter and an `openai`
(or `qwen`) provider usable, `openai/gpt-5` goes to that provider; write
`openrouter/openai/gpt-5` to keep it on OpenRouter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chatmock.config import BUILTIN_PROVIDERS, Settings, check_upstream_url
from chatmock.errors import ClientError, ConfigError

XAI_URL = "https://api.x.ai/v1"
OPENROUTER_URL = "https://openrouter.ai/api/v1"
QWEN_URL = "https://chat.qwen.ai"
APP_TITLE = b"ChatMock"
Header = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Provider:
    """One upstream provider. Secrets are kept out of `repr`.

    `kind`: codex (the ChatGPT backend), chat (OpenAI chat completions) or qwen
    (the chat.qwen.ai web API). `has_responses_api`: True where `/responses` is
    known to exist, None where it must be probed (fall back to chat on a 404).
    `required`: the variables that must be set; `missing`: those that are not."""

    name: str
    kind: str
    base_url: str
    key_env: str = ""
    required: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    has_responses_api: bool | None = False
    models_path: str = "/models"
    models_need_key: bool = True
    extra_headers: tuple[Header, ...] = ()
    api_key: str = field(default="", repr=False)
    cookie: str = field(default="", repr=False)

    @property
    def usable(self) -> bool:
        return not self.missing

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def auth_headers(self) -> list[Header]:
        """Credentials and fixed headers of every request (Codex requests get theirs from
        the credential store instead)."""
        headers = list(self.extra_headers)
        if self.api_key:
            headers.insert(0, (b"authorization", b"Bearer " + self.api_key.encode()))
        if self.cookie:
            headers.append((b"cookie", self.cookie.encode("latin-1")))
        return headers

    def not_configured(self) -> ClientError:
        """The 400 a request for this provider gets while its credentials are missing."""
        needed = " and ".join(self.missing)
        return ClientError(f"The {self.name} provider is not configured: set {needed} in "
                           "chatmock's environment and restart it.",
                           code="provider_not_configured")

    def describe(self) -> dict[str, Any]:
        """What `chatmock info` and `/health` may show: no secret, only whether it is set."""
        return {"name": self.name, "kind": self.kind, "base_url": self.base_url,
                "usable": self.usable, "missing": list(self.missing),
                "responses_api": self.has_responses_api}


@dataclass(frozen=True, slots=True)
class ProviderRegistry:
    default: str
    providers: dict[str, Provider]

    def get(self, name: str) -> Provider | None:
        return self.providers.get(name)

    def usable(self) -> list[Provider]:
        """Providers whose models are listed and whose requests go out."""
        return [p for p in self.providers.values() if p.usable]

    def secrets(self) -> list[str]:
        """Every credential value, for the log redaction filter."""
        found: list[str] = []
        for provider in self.providers.values():
            found += [provider.api_key, provider.cookie]
            found += [value for value in cookie_pairs(provider.cookie).values() if len(value) >= 8]
        return [value for value in dict.fromkeys(found) if value]

    def split_model(self, model: str) -> tuple[str | None, str]:
        """(`provider`, `rest`) when the first path segment of `model` names a usable
        provider other than the rest being empty, else (None, `model`)."""
        head, slash, rest = model.partition("/")
        provider = self.providers.get(head)
        if slash and rest and provider is not None and provider.usable:
            return head, rest
        return None, model

    def _unusable_prefix(self, model: str) -> str | None:
        """A `provider/model` prefix naming a provider without credentials, while the
        default is the Codex backend (which could not serve such a name anyway): that
        request gets the provider's "not configured" 400, not a confusing model error."""
        head, slash, _ = model.partition("/")
        provider = self.providers.get(head) if slash else None
        if provider is None or provider.usable or self.providers[self.default].kind != "codex":
            return None
        return head

    def select(self, model: str, query_provider: str | None = None) -> tuple[Provider, str]:
        """The provider of one request and the model name to send it; ClientError for an
        unknown `?provider=` or a provider without credentials."""
        if query_provider:
            chosen = self.providers.get(query_provider.strip().lower())
            if chosen is None:
                raise ClientError(f"Unknown provider {query_provider!r}; this server knows "
                                  f"{', '.join(self.providers)}.", code="unknown_provider")
            name, rest = self.split_model(model)
            if name == chosen.name:
                model = rest
        else:
            name, model = self.split_model(model)
            chosen = self.providers[name or self._unusable_prefix(model) or self.default]
        if not chosen.usable:
            raise chosen.not_configured()
        return chosen, model


def build_registry(settings: Settings, env: Mapping[str, str]) -> ProviderRegistry:
    """Every provider the settings and environment describe; see the module docstring."""
    moved = {name: (url, key) for name, url, key in settings.upstreams}
    providers = {"chatgpt": Provider("chatgpt", "codex", settings.upstream_url,
                                     has_responses_api=True)}
    for name in BUILTIN_PROVIDERS[1:]:
        built = _builtin(name, moved.get(name), env)
        if built is not None:
            providers[name] = built
    for name, (url, key_env) in moved.items():
        if name not in BUILTIN_PROVIDERS:
            providers[name] = _keyed(Provider(name, "chat", url, has_responses_api=None),
                                     key_env, env, required=bool(key_env))
    chosen = providers.get(settings.provider)
    if chosen is None:
        raise ConfigError(f"--provider {settings.provider}: give its base URL with --upstream "
                          f"{settings.provider}=URL" + (" or OPENAI_BASE_URL"
                                                        if settings.provider == "openai" else ""))
    if not chosen.usable:
        raise ConfigError(f"--provider {chosen.name}: {' and '.join(chosen.missing)} "
                          "not set in the environment")
    return ProviderRegistry(settings.provider, providers)


def _builtin(name: str, moved: tuple[str, str] | None, env: Mapping[str, str]) -> Provider | None:
    url, key_env = moved if moved is not None else ("", "")
    if name == "xai":
        return _keyed(Provider(name, "chat", url or XAI_URL, has_responses_api=True),
                      key_env or "XAI_API_KEY", env)
    if name == "openrouter":
        return _keyed(Provider(name, "chat", url or OPENROUTER_URL, has_responses_api=True,
                               models_need_key=False, extra_headers=_attribution(env)),
                      key_env or "OPENROUTER_API_KEY", env)
    if name == "qwen":
        return _qwen(url or QWEN_URL, key_env or "QWEN_AUTH_TOKEN", env)
    if not url and env.get("OPENAI_BASE_URL", "").strip():
        url = env["OPENAI_BASE_URL"].strip()
        check_upstream_url(url, "OPENAI_BASE_URL ")
    if not url:
        return None
    return _keyed(Provider(name, "chat", url, has_responses_api=None), key_env or "OPENAI_API_KEY",
                  env, required=bool(key_env))


def _keyed(provider: Provider, key_env: str, env: Mapping[str, str], *,
           required: bool = True) -> Provider:
    key = env.get(key_env, "").strip() if key_env else ""
    needed = (key_env,) if required and key_env else ()
    missing = needed if not key else ()
    return replace(provider, key_env=key_env, required=needed, missing=missing, api_key=key)


def _qwen(url: str, key_env: str, env: Mapping[str, str]) -> Provider:
    pairs = cookie_pairs(env.get("QWEN_COOKIES", ""))
    token = env.get(key_env, "").strip() or pairs.get("token", "")
    if token:
        pairs["token"] = token
    cookie = "; ".join(f"{name}={value}" for name, value in pairs.items())
    provider = Provider("qwen", "qwen", url, key_env=key_env, required=(key_env,),
                        missing=() if token else (key_env,), models_path="/api/models")
    return replace(provider, api_key=token, cookie=cookie)


def cookie_pairs(text: str) -> dict[str, str]:
    """A browser's `Cookie` string as name → raw value, in order (values are not unquoted:
    they go back out exactly as the browser sent them)."""
    pairs: dict[str, str] = {}
    for piece in text.split(";"):
        name, equals, value = piece.strip().partition("=")
        if equals and name.strip():
            pairs[name.strip()] = value.strip()
    return pairs


def _attribution(env: Mapping[str, str]) -> tuple[Header, ...]:
    headers: list[Header] = [(b"x-openrouter-title", APP_TITLE), (b"x-title", APP_TITLE)]
    referer = env.get("OPENROUTER_REFERER", "").strip()
    if referer.startswith(("https://", "http://")):
        headers.insert(0, (b"http-referer", referer.encode("latin-1", "replace")))
    return tuple(headers)
