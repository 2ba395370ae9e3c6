"""`--state`: where fleet state lives, as a Redis URL (no trio here: config reads it).

    redis://[user:password@]host[:port][/db]     plain TCP
    rediss://[user:password@]host[:port][/db]    TLS, verified with the system trust store

User and password are percent-decoded (`%40` for `@`); without a user, AUTH is
sent with the password alone (the `default` user). The database is a number
(default 0). A URL never appears in a log with its password: `str(target)`
leaves it out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

EMBEDDED = "embedded"
DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class RedisTarget:
    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False

    def __str__(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}/{self.db}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_redis_url(text: str) -> RedisTarget:
    """The target a redis:// or rediss:// URL names; ValueError saying what is wrong."""
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError("expected redis://[user:password@]host:port/db or rediss://...")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.query or parts.fragment:
        raise ValueError("a query or fragment is not understood; give the database as /N")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError("the port is not a number between 0 and 65535") from None
    path = parts.path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise ValueError(f"the database {path!r} is not a number")
    return RedisTarget(parts.hostname, port, int(path or 0), unquote(parts.username or ""),
                       unquote(parts.password or ""), scheme == "rediss")


def parse_state(text: str) -> str:
    """`embedded` (this machine's files, the default) or a Redis URL, checked here so
    that a bad one stops the start, not a request."""
    word = text.strip()
    if word.lower() == EMBEDDED:
        return EMBEDDED
    parse_redis_url(word)
    return word
