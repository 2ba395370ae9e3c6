"""`chatmock doctor`: is everything in place for `serve`? One line per check.

Every check answers OK, FAIL with what to do, or SKIP when an earlier failure
leaves it nothing to look at. In order:

* settings: the `serve` options (flags and CHATGPT_LOCAL_* variables) are valid;
  doctor takes serve's options, so it checks the configuration serve would run;
* auth: an auth.json of the search order exists and parses (its path is shown);
* token: when the access token expires, and whether a refresh token renews it;
* port: serve could listen on its address, or a chatmock already answers there;
* tls: SSL_CERT_FILE / SSL_CERT_DIR, when set, hold certificates, and the TLS
  handshake with the backend verifies;
* upstream: a real `GET {upstream}/models` with the credentials, as model
  discovery sends it, through chatmock's own client. A token that is due is
  refreshed first, exactly as serve would (and written back to auth.json);
* clock: the local clock against the `Date` header of that answer.

Nothing printed holds a token: details are built from paths, claims and
statuses, and pass through the log redaction with the auth file's tokens too.

Extension point: `CHECKS` is the list of async functions run in order, each
taking the shared `Doctor` context and returning one `Finding`; a check per
configured provider is added there. Checks may leave facts in the context
for later ones (`upstream` leaves the backend's answer for `clock`).
"""

from __future__ import annotations

import errno
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import trio

from chatmock import __version__, logs
from chatmock.auth.oauth import OAuthClient
from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import Credentials, auth_search_paths, find_auth
from chatmock.catalog import catalog_from_discovery
from chatmock.config import Settings, build_settings, home_dir
from chatmock.errors import ApiError, ConfigError, UpstreamError
from chatmock.info import account_summary, format_duration, format_local
from chatmock.net.client import HTTPClient
from chatmock.net.transport import Origin, split_url, tls_context
from chatmock.upstream.codex import CodexBackend, installation_id, upstream_error
from chatmock.upstream.model_sync import MAX_BODY, models_url

Status = Literal["ok", "fail", "skip"]
LABELS: dict[Status, str] = {"ok": "OK", "fail": "FAIL", "skip": "SKIP"}
PROBE_SECONDS = 10.0
HEALTH_SECONDS = 3.0
SKEW_LIMIT_SECONDS = 60.0
LOGIN = "run `chatmock login`"


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    status: Status
    detail: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The head of the backend's answer to the model list, for the clock check."""

    status: int
    date: str
    received_at: float


@dataclass(slots=True)
class Doctor:
    """What the checks share: the settings, one HTTP client, the auth file, the clock."""

    settings: Settings
    env: Mapping[str, str]
    http: HTTPClient
    clock: Callable[[], float] = time.time
    credentials: Credentials | None = None
    auth_problems: list[str] = field(default_factory=list)
    answer: Answer | None = None


Check = Callable[[Doctor], Awaitable[Finding]]


# --- the auth file --------------------------------------------------------------------------


async def check_auth(doctor: Doctor) -> Finding:
    credentials, problems = doctor.credentials, doctor.auth_problems
    if credentials is None:
        places = ", ".join(str(path) for path in auth_search_paths(doctor.env))
        found = f" ({'; '.join(problems)})" if problems else ""
        return Finding("auth", "fail", f"no usable auth.json in {places}{found}: {LOGIN}")
    if not credentials.account_id:
        return Finding("auth", "fail", f"{credentials.path} names no ChatGPT account (the id "
                                       f"token lacks chatgpt_account_id): {LOGIN}")
    summary = account_summary(credentials)
    who = (f"{summary['email']}, plan {summary['plan']}" if summary["signed_in"]
           else "no access token yet")
    ignored = f"; ignored {'; '.join(problems)}" if problems else ""
    return Finding("auth", "ok", f"{credentials.path} ({who}){ignored}")


async def check_token(doctor: Doctor) -> Finding:
    credentials = doctor.credentials
    if credentials is None:
        return Finding("token", "skip", "no auth file (see auth)")
    renews = bool(credentials.refresh_token)
    note = ("a refresh token renews it" if renews
            else f"no refresh token: {LOGIN} when it expires")
    if credentials.expires_at is None:
        if credentials.access_token:
            return Finding("token", "ok", f"expiry unknown (not a JWT); {note}")
        if renews:
            return Finding("token", "ok", "no access token yet; the refresh token gets one")
        return Finding("token", "fail", f"neither an access nor a refresh token: {LOGIN}")
    expires = datetime.fromtimestamp(credentials.expires_at, UTC)
    left = credentials.expires_at - doctor.clock()
    if left > 0:
        return Finding("token", "ok", f"valid until {format_local(expires)} (in "
                                      f"{format_duration(left)}); {note}")
    if renews:
        return Finding("token", "ok", f"expired {format_duration(-left)} ago; serve renews it "
                                      "with the refresh token (see upstream)")
    return Finding("token", "fail", f"expired at {format_local(expires)} and there is no "
                                    f"refresh token: {LOGIN}")


# --- the listening port ---------------------------------------------------------------------


async def check_port(doctor: Doctor) -> Finding:
    host, port = doctor.settings.host, doctor.settings.port
    address = _authority(host, port)
    if port == 0:
        return Finding("port", "ok", "port 0: serve picks a free port and logs it")
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        return await _port_unavailable(doctor, address, exc)
    for listener in listeners:
        await listener.aclose()
    return Finding("port", "ok", f"{address} is free")


async def _port_unavailable(doctor: Doctor, address: str, exc: OSError) -> Finding:
    if exc.errno == errno.EADDRINUSE:
        version = await _chatmock_version_at(doctor)
        if version is not None:
            return Finding("port", "ok", f"{address} is served by a running chatmock {version}")
        return Finding("port", "fail", f"{address} is in use by another program: stop it, or "
                                       "choose another --port")
    if exc.errno == errno.EACCES:
        return Finding("port", "fail", f"not allowed to listen on {address}: choose a --port "
                                       "of 1024 or above")
    return Finding("port", "fail", f"cannot listen on {address} ({exc.strerror or exc}): "
                                   "choose a --host of this machine")


async def _chatmock_version_at(doctor: Doctor) -> str | None:
    """The version a chatmock on serve's port reports at /health; None if it is no chatmock."""
    host = doctor.settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    authority = _authority(host, doctor.settings.port)
    with trio.move_on_after(HEALTH_SECONDS):
        try:
            async with doctor.http.request("GET", f"http://{authority}/health", []) as response:
                document = json.loads(await response.read_all(64 * 1024))
        except (UpstreamError, ValueError):
            return None
        if isinstance(document, dict) and document.get("service") == "chatmock":
            return str(document.get("version", ""))
    return None


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- TLS trust ------------------------------------------------------------------------------


async def check_tls(doctor: Doctor) -> Finding:
    problem = trust_store_problem(doctor.env)
    if problem:
        return Finding("tls", "fail", f"{problem}: point it at a PEM bundle, or unset it")
    cafile = doctor.env.get("SSL_CERT_FILE", "")
    trust = f"SSL_CERT_FILE={cafile}" if cafile else "the system trust store"
    origin, _ = split_url(doctor.settings.upstream_url)
    if origin.scheme != "https":
        return Finding("tls", "ok", f"trusting {trust}; the backend is plain http (no TLS)")
    with trio.move_on_after(PROBE_SECONDS):
        return await _handshake(origin, trust)
    return Finding("tls", "skip", f"{origin.authority} did not answer within "
                                  f"{PROBE_SECONDS:g} s (see upstream)")


def trust_store_problem(env: Mapping[str, str]) -> str:
    """What is wrong with SSL_CERT_FILE / SSL_CERT_DIR, or ""; OpenSSL ignores a bad one
    silently and then every handshake fails."""
    cafile = env.get("SSL_CERT_FILE", "")
    if cafile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cafile=cafile)
        except ssl.SSLError:  # before OSError, its base class
            return f"SSL_CERT_FILE={cafile} holds no PEM certificate"
        except OSError as exc:
            return f"SSL_CERT_FILE={cafile} cannot be read ({exc.strerror or exc})"
        if not context.cert_store_stats()["x509_ca"]:
            return f"SSL_CERT_FILE={cafile} holds no CA certificate"
    capath = env.get("SSL_CERT_DIR", "")
    if capath and not Path(capath).is_dir():
        return f"SSL_CERT_DIR={capath} is not a folder"
    return ""


async def _handshake(origin: Origin, trust: str) -> Finding:
    try:
        tcp = await trio.open_tcp_stream(origin.host, origin.port)
    except OSError as exc:
        return Finding("tls", "skip", f"cannot connect to {origin.authority} "
                                      f"({exc.strerror or exc}; see upstream)")
    stream = trio.SSLStream(tcp, tls_context(), server_hostname=origin.host,
                            https_compatible=True)
    try:
        await stream.do_handshake()
    except (trio.BrokenResourceError, ssl.SSLError) as exc:
        reason = str(exc.__cause__ or exc) or type(exc).__name__
        return Finding("tls", "fail", f"the handshake with {origin.authority} failed "
                                      f"({reason}), trusting {trust}: behind a proxy that "
                                      "re-signs TLS, point SSL_CERT_FILE at a bundle holding "
                                      "its CA")
    finally:
        await trio.aclose_forcefully(stream)
    return Finding("tls", "ok", f"handshake with {origin.authority} verified, trusting {trust}")


# --- the backend ----------------------------------------------------------------------------


async def check_upstream(doctor: Doctor) -> Finding:
    url = models_url(doctor.settings.upstream_url, doctor.settings.client_version)
    try:
        with trio.fail_after(PROBE_SECONDS):
            if doctor.credentials is None:  # still worth knowing: can the backend be reached?
                status, _, _ = await _get(doctor, url, [(b"accept", b"application/json")])
                return Finding("upstream", "skip", f"GET {url}: {status} without credentials; "
                                                   "sign in to check the model list")
            backend = _backend(doctor)
            status, headers, body = await _fetch_models(doctor, backend, url)
    except trio.TooSlowError:
        return Finding("upstream", "fail", f"no answer from {url} within {PROBE_SECONDS:g} s: "
                                           "check the network and any proxy")
    except ApiError as exc:
        hint = "; check the network, any proxy and --upstream-url" \
            if isinstance(exc, UpstreamError) else ""
        return Finding("upstream", "fail", exc.message + hint)
    return _models_finding(url, status, headers, body, backend.credentials.refresh_count > 0)


def _backend(doctor: Doctor) -> CodexBackend:
    """The backend client serve would build: same credentials store, same headers."""
    settings = doctor.settings
    store = CredentialStore(doctor.env, oauth=OAuthClient(settings.issuer, settings.client_id,
                                                          doctor.http))
    return CodexBackend(settings.upstream_url, doctor.http, store,
                        installation_id(home_dir(doctor.env)))


def _models_finding(url: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
                    refreshed: bool) -> Finding:
    if status != 200:
        return Finding("upstream", "fail", f"GET {url}: {status}: "
                                           f"{upstream_error(status, headers, body).message}")
    after = " after refreshing the access token" if refreshed else ""
    catalog = catalog_from_discovery(_json(body))
    if catalog is None:
        return Finding("upstream", "fail", f"GET {url}: 200{after}, but the answer lists "
                                           "no model")
    return Finding("upstream", "ok", f"GET {url}: 200{after}, "
                                     f"{len(catalog.specs)} models listed")


async def _fetch_models(doctor: Doctor, backend: CodexBackend, url: str
                        ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """GET the model list; after a 401 once more with refreshed credentials (as serve does)."""
    credentials = await backend.credentials.usable()
    answer = await _get(doctor, url, backend.model_headers(credentials))
    if answer[0] == 401:
        renewed = await backend.credentials.after_rejection(credentials)
        if renewed is not None:
            answer = await _get(doctor, url, backend.model_headers(renewed))
    return answer


async def _get(doctor: Doctor, url: str, headers: list[tuple[bytes, bytes]]
               ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    async with doctor.http.request("GET", url, headers) as response:
        doctor.answer = Answer(response.status, response.header(b"date"), doctor.clock())
        return response.status, response.headers, await response.read_all(MAX_BODY)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


async def check_clock(doctor: Doctor) -> Finding:
    answer = doctor.answer
    if answer is None:
        return Finding("clock", "skip", "needs an answer from the backend (see upstream)")
    try:
        backend_time = parsedate_to_datetime(answer.date)
    except (TypeError, ValueError):
        return Finding("clock", "skip", "the backend's answer carries no usable Date header")
    if backend_time.tzinfo is None:
        backend_time = backend_time.replace(tzinfo=UTC)
    skew = answer.received_at - backend_time.timestamp()
    if abs(skew) < SKEW_LIMIT_SECONDS:
        return Finding("clock", "ok", f"within {abs(skew):.0f} s of the backend's clock")
    side = "ahead of" if skew > 0 else "behind"
    return Finding("clock", "fail", f"this machine's clock is {format_duration(abs(skew))} "
                                    f"{side} the backend's, and token expiry is judged by it: "
                                    "turn on time sync (e.g. `timedatectl set-ntp true`)")


CHECKS: tuple[Check, ...] = (check_auth, check_token, check_port, check_tls, check_upstream,
                             check_clock)


# --- running and rendering ------------------------------------------------------------------


def settings_finding(settings: Settings) -> Finding:
    guard = "clients must send the access token" if settings.access_token else \
        "no access token"
    return Finding("settings", "ok", f"serve would listen on {settings.host}:{settings.port} "
                                     f"({guard}); upstream {settings.upstream_url}")


async def run_checks(settings: Settings, env: Mapping[str, str], *,
                     clock: Callable[[], float] = time.time,
                     checks: tuple[Check, ...] = CHECKS) -> list[Finding]:
    """The settings line and then every check, in order; tokens redacted."""
    credentials, problems = find_auth(env)
    http = HTTPClient(connect_timeout=PROBE_SECONDS, read_timeout=PROBE_SECONDS, pool_size=4)
    doctor = Doctor(settings, env, http, clock, credentials, problems)
    findings = [settings_finding(settings)]
    try:
        findings += [await _run_one(check, doctor) for check in checks]
    finally:
        await http.aclose()
    secrets = (credentials.access_token, credentials.refresh_token, credentials.id_token,
               settings.access_token) if credentials else (settings.access_token,)
    return [replace(finding, detail=logs.redact(finding.detail, secrets))
            for finding in findings]


async def _run_one(check: Check, doctor: Doctor) -> Finding:
    """A check that breaks is a failed line, not a lost report."""
    try:
        return await check(doctor)
    except Exception as exc:
        name = getattr(check, "__name__", "check").removeprefix("check_")
        return Finding(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}")


def render_text(findings: list[Finding]) -> str:
    width = max(len(finding.name) for finding in findings)
    lines = [f"{LABELS[f.status]:<4}  {f.name:<{width}}  {f.detail}" for f in findings]
    failed = sum(finding.status == "fail" for finding in findings)
    lines.append("all checks passed" if not failed else
                 f"{failed} check{'s' if failed > 1 else ''} failed")
    return "\n".join(lines) + "\n"


def render_json(findings: list[Finding]) -> str:
    document = {"chatmock": __version__,
                "ok": not any(finding.status == "fail" for finding in findings),
                "checks": [{"name": f.name, "status": f.status, "detail": f.detail}
                           for f in findings]}
    return json.dumps(document, indent=2) + "\n"


def run(args: Mapping[str, Any], env: Mapping[str, str], *, as_json: bool) -> int:
    """`chatmock doctor`: print the report; 0 when nothing failed, else 1."""
    logs.setup(False)
    logging.getLogger("chatmock").setLevel(logging.ERROR)  # the report says it all
    try:
        settings = build_settings(args, env)
    except ConfigError as exc:
        findings = [Finding("settings", "fail", f"{exc}: fix that flag or variable")]
    else:
        findings = trio.run(run_checks, settings, env)
    print(render_json(findings) if as_json else render_text(findings), end="")
    return 0 if all(finding.status != "fail" for finding in findings) else 1
