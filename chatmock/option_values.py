"""Parsers of one option's text into its value, and the value types they make.

Each raises ValueError with a message meant for the user; `config` turns it into a
ConfigError naming the flag or the environment variable the text came from."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

Upstream = tuple[str, str, str]
"""(name, base URL, environment variable holding its key or '')."""
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
ModelMap = tuple[tuple[str, str], ...]
DEFAULT_ANTHROPIC_MODELS: ModelMap = (
    ("opus", "gpt-5.5-high"), ("sonnet", "gpt-5.4"), ("haiku", "gpt-5.4-mini"),
    ("fable", "gpt-5.4"))
"""Claude family → upstream model (an effort suffix allowed); `sonnet` is the fallback."""


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS - {''})}")


def lower_word(text: str) -> str:
    """The text trimmed and lower-cased (a choice among fixed words)."""
    return text.strip().lower()


# Patterns are kept as text: `re` compiles (and caches) them when an option that uses
# them is given, not when `serve` imports this module (~0.8 ms).
_FAMILY = r"[a-z][a-z0-9_-]*"


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
        if not equals or not re.fullmatch(_FAMILY, family):
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
_HOST_NAME = r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?"


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
            if not re.fullmatch(_HOST_NAME, entry):
                raise ValueError(f"{entry!r} is not a host name (give it without scheme "
                                 "or port; any port is accepted)") from None
            found.append(entry)
            continue
        found.append(f"[{address}]" if address.version == 6 else str(address))
    return tuple(dict.fromkeys(found))


_PROVIDER_NAME = r"[a-z][a-z0-9_-]*"
_ENTRY_START = r"([a-z][a-z0-9_-]*)=(https?://.*)"
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def parse_upstreams(text: str) -> tuple[Upstream, ...]:
    """`name=URL[,KEY_ENV]`, several separated by commas → (name, url, key_env) entries.

    A piece `name=http(s)://...` starts an entry; a bare variable name after it is
    that entry's key variable. Names are lower-case words; `chatgpt` is refused (its
    backend is `--upstream-url`); a name may not be given twice."""
    entries: list[list[str]] = []
    for piece in _comma_list(text):
        start = re.fullmatch(_ENTRY_START, piece, re.IGNORECASE)
        if start is not None:
            name = start.group(1)
            if not re.fullmatch(_PROVIDER_NAME, name):
                raise ValueError(f"{name!r}: provider names are lower-case words")
            entries.append([name, start.group(2), ""])
        elif entries and not entries[-1][2] and re.fullmatch(_ENV_NAME, piece):
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


def provider_name(text: str) -> str:
    """A provider name: a lower-case word."""
    name = text.strip().lower()
    if not re.fullmatch(_PROVIDER_NAME, name):
        raise ValueError("a provider name is a lower-case word")
    return name


def parse_workers(text: str) -> int:
    """A number of processes, or `auto` (stored as 0: one per core)."""
    word = text.strip().lower()
    count = 0 if word == "auto" else int(word)
    if count < 0:
        raise ValueError("expected a positive number or auto")
    return count


_VERSION = r"\d{1,6}\.\d{1,6}\.\d{1,6}(?:[-+][0-9A-Za-z.-]{1,32})?"
_TOKEN = r"[A-Za-z0-9_.-]{1,64}"


def parse_client_version(text: str) -> str:
    """A Codex CLI version such as 0.169.0 (the backend refuses newer models to older ones)."""
    if not re.fullmatch(_VERSION, text.strip()):
        raise ValueError("expected a version like 0.169.0")
    return text.strip()


def parse_originator(text: str) -> str:
    """An `originator` value: letters, digits, `_`, `.`, `-` (it is also the User-Agent's
    product name)."""
    if not re.fullmatch(_TOKEN, text.strip()):
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
