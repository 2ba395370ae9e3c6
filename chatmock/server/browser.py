"""What a web browser may do with chatmock: the Host, Origin and Content-Type rules.

Any page the user opens can make the browser send requests to 127.0.0.1, and
chatmock spends the user's ChatGPT quota on whatever reaches a route. The
rules below (argued in the README, "Browsers and security") let local tools
and the origins the user names in, and nothing else:

- Host (DNS rebinding): on a loopback bind, `Host` must name this server:
  `localhost`, `127.0.0.1`, `[::1]`, the bound address or an `--allowed-hosts`
  name, with any port; else 403. A page whose own name was re-pointed at
  127.0.0.1 sends its own name here. A request without `Host` (HTTP/1.0 only;
  h11 refuses an HTTP/1.1 one) passes: browsers always send it. On another
  bind the check is off and the access token guards the server.
- Origin: a request that carries `Origin` (every cross-origin request a
  browser makes, WebSocket handshakes and `no-cors` POSTs included) is
  served only for an allowed origin: loopback pages (`http(s)://localhost`,
  `127.0.0.1`, `[::1]`, any port), the app schemes `app://`, `tauri://`,
  `vscode-webview://`, and `--cors-origins`; else 403 before any route runs,
  so a "simple" request spends nothing. `null` is never allowed unless `*`
  was configured. An allowed origin gets `access-control-allow-origin: <it>`;
  `*` is sent only when the user configured `*`, and never with credentials.
- Preflights grant the route's own methods and, of the request headers
  asked for, those in `ALLOWED_REQUEST_HEADERS` (plus the SDKs' `x-stainless-*`).
- Content-Type: a JSON body must say so (`application/json`, any `+json`);
  anything else, notably the CORS-simple `text/plain`, form and multipart
  types a page can send without a preflight, is a 415. A missing
  Content-Type is read as JSON: many CLI clients omit it, and a browser
  sending a body cross-origin also sends `Origin`, which the rule above
  already judged.

Everything here is a pure function of the request's headers and a
`BrowserPolicy` computed once at start; the router calls `admit` once per
request and `require_json` once per JSON route.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chatmock.config import Settings, is_loopback
from chatmock.errors import ClientError

Headers = Mapping[bytes, bytes]
HeaderList = list[tuple[bytes, bytes]]

LOOPBACK_NAMES = frozenset({b"localhost", b"127.0.0.1", b"[::1]"})
APP_SCHEMES = (b"app://", b"tauri://", b"vscode-webview://")
ALLOWED_REQUEST_HEADERS = frozenset({
    b"accept", b"authorization", b"content-type", b"idempotency-key", b"x-api-key",
    b"anthropic-version", b"anthropic-beta", b"anthropic-dangerous-direct-browser-access",
    b"openai-beta", b"openai-organization", b"openai-project",
    b"x-session-id", b"session_id", b"session-id", b"x-claude-code-session-id"})
SDK_HEADER_PREFIX = b"x-stainless-"
JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})
PREFLIGHT_MAX_AGE = b"600"
_VARY = (b"vary", b"Origin")
_QUOTED_LIMIT = 100


@dataclass(frozen=True, slots=True)
class BrowserPolicy:
    """The sets the rules compare against, built once from the settings."""

    origins: frozenset[bytes] = frozenset()
    any_origin: bool = False
    hosts: frozenset[bytes] | None = LOOPBACK_NAMES  # None: no Host check

    @classmethod
    def from_settings(cls, settings: Settings) -> BrowserPolicy:
        hosts = None
        if is_loopback(settings.host):
            bound = f"[{settings.host}]" if ":" in settings.host else settings.host
            names = [*LOOPBACK_NAMES, bound.lower().encode(),
                     *(name.encode() for name in settings.allowed_hosts)]
            hosts = frozenset(names)
        origins = frozenset(origin.encode() for origin in settings.cors_origins)
        return cls(origins - {b"*"}, b"*" in origins, hosts)


def admit(policy: BrowserPolicy, headers: Headers) -> HeaderList:
    """The CORS headers every answer to this request carries.

    Raises ClientError(403) for a Host that does not name this server or an
    Origin that is not allowed; the answer to those carries no CORS header."""
    if policy.hosts is not None:
        host = headers.get(b"host")
        if host is not None and host_name(host) not in policy.hosts:
            raise ClientError(f"Host {_quoted(host)} is not this server (DNS rebinding "
                              "protection): reach chatmock as localhost or 127.0.0.1, or "
                              "add the name with --allowed-hosts", status=403,
                              code="host_not_allowed")
    origin = headers.get(b"origin")
    if origin is None:
        return [_VARY]
    if not origin_allowed(policy, origin):
        raise ClientError(f"Origin {_quoted(origin)} is not allowed: chatmock answers web "
                          "pages from loopback origins only; add this one with "
                          "--cors-origins", status=403, code="origin_not_allowed")
    allowed = b"*" if policy.any_origin else origin
    return [(b"access-control-allow-origin", allowed), _VARY]


def origin_allowed(policy: BrowserPolicy, origin: bytes) -> bool:
    if policy.any_origin:
        return True
    origin = origin.lower()
    if origin in policy.origins or origin.startswith(APP_SCHEMES):
        return True
    scheme, separator, authority = origin.partition(b"://")
    return (separator == b"://" and scheme in (b"http", b"https")
            and host_name(authority) in LOOPBACK_NAMES)


def host_name(authority: bytes) -> bytes:
    """`name` of `name[:port]` or `[v6][:port]`, lower-cased; b"" when malformed."""
    if authority.startswith(b"["):
        end = authority.find(b"]") + 1
        name, rest = authority[:end], authority[end:]
    else:
        name = authority.partition(b":")[0]
        rest = authority[len(name):]
    if not name or (rest and (rest[:1] != b":" or not rest[1:].isdigit())):
        return b""
    return name.lower()


def preflight(headers: Headers, methods: Iterable[str]) -> HeaderList:
    """What an admitted preflight is granted on a route with `methods`."""
    offered = set(methods)
    if "GET" in offered:
        offered.add("HEAD")
    asked = headers.get(b"access-control-request-headers", b"").lower().split(b",")
    granted = [name for name in (entry.strip() for entry in asked)
               if name in ALLOWED_REQUEST_HEADERS or name.startswith(SDK_HEADER_PREFIX)]
    return [(b"access-control-allow-methods", ", ".join(sorted(offered)).encode()),
            (b"access-control-allow-headers", b", ".join(granted)),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE)]


def require_json(headers: Headers) -> None:
    """Raises ClientError(415) unless the body is declared JSON (or not declared at all)."""
    declared = headers.get(b"content-type")
    if declared is None:
        return
    media = declared.partition(b";")[0].strip().lower()
    if media == b"application/json" or (media.endswith(b"+json") and b"/" in media):
        return
    raise ClientError(f"Content-Type {_quoted(declared)} is not JSON: send the body with "
                      "`Content-Type: application/json` (curl: -H 'Content-Type: "
                      "application/json')", status=415, code="unsupported_media_type")


def _quoted(value: bytes) -> str:
    text = value[:_QUOTED_LIMIT].decode("latin-1")
    return repr(text + ("..." if len(value) > _QUOTED_LIMIT else ""))
