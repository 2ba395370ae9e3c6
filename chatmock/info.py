"""What `chatmock info` shows: the signed-in account, the last usage-limit snapshot and
the response store (`previous_response_id` turns) against its bounds.

The text layout follows ChatMock's (auth.md §7.1) so that users of either see
the same thing; the JSON follows go-chatmock's (auth.md §7.2) without
`available_models`. Unlike ChatMock's `--json`, nothing here ever contains a
token: `account_summary` extracts display fields and drops the tokens, and
both renderers work from that summary only.

Everything is pure: the caller passes the credentials, the snapshot, the
current time and (for tests) the time zone, and prints the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypedDict

from chatmock.auth.tokens import AUTH_CLAIM, Credentials, decode_claims
from chatmock.state.usage_limits import UsageSnapshot, Window

PROVIDER = "ChatGPT"
NOT_SIGNED_IN = "Not signed in"
LOGIN_HINT = "Run: chatmock login"
NO_USAGE = "No usage data available yet. Send a request through chatmock first."
NO_WINDOWS = "Usage data was captured but no limit windows were provided."
UNKNOWN_EMAIL = "<unknown>"
UNKNOWN_PLAN = "Unknown"

PLAN_NAMES = {"plus": "Plus", "pro": "Pro", "free": "Free", "team": "Team",
              "enterprise": "Enterprise"}

BAR_CELLS = 30
BAR_FULL, BAR_PARTIAL, BAR_EMPTY = "█", "▓", "░"
RED, YELLOW, BLUE, GREEN, RESET = "\033[91m", "\033[93m", "\033[94m", "\033[92m", "\033[0m"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# key, label, icon of each window, in display order
_WINDOWS = (("primary", "5 hour limit", "⚡"), ("secondary", "Weekly limit", "📅"))


class StoreSummary(TypedDict, total=False):
    """The response store as `info` found it (commands.store_summary); bounds always,
    figures when the SQLite file could be read, `problem` when it could not."""

    kind: str  # "sqlite", "memory" or "redis" (fleet mode)
    path: str  # SQLite: the file; Redis: its URL, without a password
    entries: int
    bytes: int  # SQLite: compressed payloads
    file_bytes: int  # the database and its WAL on disk
    max_entries: int
    max_bytes: int
    problem: str


class AccountSummary(TypedDict):
    """Display fields of the signed-in account; deliberately no token."""

    signed_in: bool
    email: str | None
    plan: str | None
    account_id: str | None
    token_expires_at: datetime | None
    auth_file: str | None


def account_summary(credentials: Credentials | None) -> AccountSummary:
    """What `info` may show about `credentials`; signed in needs an access and an id token."""
    auth_file = str(credentials.path) if credentials is not None else None
    if credentials is None or not (credentials.access_token and credentials.id_token):
        return AccountSummary(signed_in=False, email=None, plan=None, account_id=None,
                              token_expires_at=None, auth_file=auth_file)
    id_claims = decode_claims(credentials.id_token)
    access_claims = decode_claims(credentials.access_token)
    plan = _plan_claim(access_claims) or _plan_claim(id_claims)
    return AccountSummary(
        signed_in=True,
        email=_text(id_claims, "email") or _text(id_claims, "preferred_username") or UNKNOWN_EMAIL,
        plan=plan_display(plan),
        account_id=credentials.account_id or None,
        token_expires_at=_expiry(access_claims),
        auth_file=auth_file,
    )


def plan_display(raw: object) -> str:
    """auth.md §5: known plans by name, anything else title-cased, missing → Unknown."""
    if not isinstance(raw, str) or not raw.strip():
        return UNKNOWN_PLAN
    raw = raw.strip()
    return PLAN_NAMES.get(raw.lower(), raw.title())


# --- text ---------------------------------------------------------------------------------


def render_text(account: AccountSummary, usage: UsageSnapshot | None, *, now: datetime,
                color: bool, tz: tzinfo | None = None, store: StoreSummary | None = None,
                providers: list[dict[str, Any]] | None = None) -> str:
    """The full `chatmock info` text, ending in a newline; times in `tz` (default: local)."""
    now = _aware(now)
    lines = ["👤 Account", *_account_lines(account, now, tz), "", "📊 Usage Limits",
             *_usage_lines(usage, now, color, tz)]
    if store is not None:
        lines += ["", "🗄 Response Store", *store_lines(store)]
    if providers:
        lines += ["", "🔌 Providers", *provider_lines(providers)]
    return "\n".join(lines) + "\n"


def provider_lines(providers: list[dict[str, Any]]) -> list[str]:
    """One line per provider (`ProviderRegistry` descriptions: never a secret)."""
    lines = []
    for provider in providers:
        state = "ready" if provider["usable"] else "missing " + " and ".join(provider["missing"])
        gate = provider.get("gate")
        fleet = " across the fleet" if gate and gate.get("scope") == "fleet" else ""
        limit = (f", {gate['max_concurrency']} at a time{fleet}, queue "
                 f"{gate['queue_timeout']:g} s" if gate else "")
        default = " (default)" if provider.get("default") else ""
        lines.append(f"  {provider['name']}{default}: {provider['kind']} at "
                     f"{provider['base_url']}, {state}{limit}")
    return lines


def store_lines(store: StoreSummary) -> list[str]:
    """The response store's section: where, how full, against which bounds."""
    bounds = (f"at most {store.get('max_entries', 0):,} turns and "
              f"{format_bytes(store.get('max_bytes', 0))}")
    if store.get("kind") == "memory":
        return ["  • In memory, inside the running server (its GET /health shows how full)",
                f"  • Bounds: {bounds}"]
    if store.get("kind") == "redis":
        return [f"  • Redis (fleet mode): {store.get('path', '?')}",
                "  • Bounds: each turn's TTL, and Redis's own maxmemory"]
    lines = [f"  • SQLite: {store.get('path', '?')}"]
    if "problem" in store:
        return [*lines, f"  • Unreadable: {store['problem']}", f"  • Bounds: {bounds}"]
    return [*lines,
            f"  • Turns: {store.get('entries', 0):,} of at most {store.get('max_entries', 0):,}",
            f"  • Size: {format_bytes(store.get('bytes', 0))} compressed, of at most "
            f"{format_bytes(store.get('max_bytes', 0))} "
            f"({format_bytes(store.get('file_bytes', 0))} on disk)"]


def format_bytes(count: int) -> str:
    """`512 B`, `1.5 KiB`, `256.0 MiB`, `2.0 GiB`."""
    if count < 1024:
        return f"{count} B"
    size = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def _account_lines(account: AccountSummary, now: datetime, tz: tzinfo | None) -> list[str]:
    if not account["signed_in"]:
        return [f"  • {NOT_SIGNED_IN}", f"  • {LOGIN_HINT}"]
    lines = [f"  • Signed in with {PROVIDER}",
             f"  • Login: {account['email'] or UNKNOWN_EMAIL}",
             f"  • Plan: {account['plan'] or UNKNOWN_PLAN}"]
    if account["account_id"]:
        lines.append(f"  • Account ID: {account['account_id']}")
    expires = account["token_expires_at"]
    if expires is not None:
        note = _expiry_note(expires, now)
        lines.append(f"  • Token expires: {format_local(expires, tz)} ({note})")
    if account["auth_file"]:
        lines.append(f"  • Auth file: {account['auth_file']}")
    return lines


def _expiry_note(expires: datetime, now: datetime) -> str:
    seconds = (expires - now).total_seconds()
    return f"in {format_duration(seconds)}" if seconds > 0 else "expired"


def _usage_lines(usage: UsageSnapshot | None, now: datetime, color: bool,
                 tz: tzinfo | None) -> list[str]:
    if usage is None:
        return [f"  {NO_USAGE}"]
    lines = [f"Last updated: {format_local(usage.captured_at, tz)}"]
    views = _window_views(usage, now)
    if not views:
        return [*lines, "", f"  {NO_WINDOWS}"]
    for view in views:
        lines += ["", *_window_lines(view, color, tz)]
    return lines


def _window_lines(view: _WindowView, color: bool, tz: tzinfo | None) -> list[str]:
    bar = render_bar(view.used_percent)
    used = f"{view.used_percent:5.1f}% used"
    left = f"{view.remaining_percent:5.1f}% left"
    if color:
        tint = usage_color(view.used_percent)
        meter = f"{tint}{bar}{RESET} {tint}{used}{RESET} | {left}"
    else:
        meter = f"{bar} {used} | {left}"
    lines = [f"{view.icon} {view.label}", meter]
    resets_at = format_local(view.resets_at, tz) if view.resets_at is not None else None
    if view.resets_in is not None and resets_at is not None:
        lines.append(f"    ⏳ Resets in: {view.resets_in} at {resets_at}")
    elif view.resets_in is not None:
        lines.append(f"    ⏳ Resets in: {view.resets_in}")
    elif resets_at is not None:
        lines.append(f"    ⏳ Resets at: {resets_at}")
    return lines


def render_bar(percent: float) -> str:
    """30 cells: █ per used cell, ▓ for a last cell more than half used, ░ for the rest."""
    exact = clamp_percent(percent) / 100.0 * BAR_CELLS
    filled = int(exact)
    partial = exact - filled > 0.5
    if partial:
        filled += 1
    filled = min(filled, BAR_CELLS)
    full = filled - 1 if partial else filled
    cells = BAR_FULL * full + (BAR_PARTIAL if partial else "") + BAR_EMPTY * (BAR_CELLS - filled)
    return f"[{cells}]"


def usage_color(percent: float) -> str:
    """ANSI colour of a window: ≥90 red, ≥75 yellow, ≥50 blue, else green."""
    if percent >= 90:
        return RED
    if percent >= 75:
        return YELLOW
    if percent >= 50:
        return BLUE
    return GREEN


def clamp_percent(value: float) -> float:
    return 0.0 if math.isnan(value) else min(100.0, max(0.0, value))


def format_duration(seconds: float) -> str:
    """`Xd Yh Zm` with zero parts left out; `under 1m` for seconds only; `0m` for none."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m"))
             if value]
    if parts:
        return " ".join(parts)
    return "under 1m" if rest else "0m"


def format_local(moment: datetime, tz: tzinfo | None = None) -> str:
    """`Mon DD, YYYY HH:MM TZ` in `tz` (default: the local zone); English month names."""
    local = _aware(moment).astimezone(tz)
    return (f"{_MONTHS[local.month - 1]} {local.day:02d}, {local.year} "
            f"{local.hour:02d}:{local.minute:02d} {local.tzname() or 'local'}")


def format_rfc3339(moment: datetime) -> str:
    """UTC, whole seconds, `Z` suffix: what go-chatmock prints."""
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- JSON ---------------------------------------------------------------------------------


def render_json(account: AccountSummary, usage: UsageSnapshot | None, *, now: datetime,
                tz: tzinfo | None = None, store: StoreSummary | None = None,
                providers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """go-chatmock's `info --json` document without `available_models`, plus our fields
    (the RFC 3339 times, `responses_store`, `providers`)."""
    now = _aware(now)
    document: dict[str, Any] = {"account": _account_json(account),
                                "usage_limits": _usage_json(usage, now, tz)}
    if store is not None:
        document["responses_store"] = dict(store)
    if providers is not None:
        document["providers"] = providers
    return document


def _account_json(account: AccountSummary) -> dict[str, Any]:
    if not account["signed_in"]:
        return {"signed_in": False, "message": NOT_SIGNED_IN, "hint": LOGIN_HINT}
    document: dict[str, Any] = {"signed_in": True, "provider": PROVIDER,
                                "login": account["email"] or UNKNOWN_EMAIL,
                                "plan": account["plan"] or UNKNOWN_PLAN}
    if account["account_id"]:
        document["account_id"] = account["account_id"]
    if account["token_expires_at"] is not None:
        document["token_expires_at"] = format_rfc3339(account["token_expires_at"])
    if account["auth_file"]:
        document["auth_file"] = account["auth_file"]
    return document


def _usage_json(usage: UsageSnapshot | None, now: datetime,
                tz: tzinfo | None) -> dict[str, Any]:
    if usage is None:
        return {"message": NO_USAGE}
    document: dict[str, Any] = {"last_updated": format_local(usage.captured_at, tz),
                                "last_updated_rfc3339": format_rfc3339(usage.captured_at)}
    views = _window_views(usage, now)
    if not views:
        document["message"] = NO_WINDOWS
    else:
        document["windows"] = [_window_json(view, tz) for view in views]
    return document


def _window_json(view: _WindowView, tz: tzinfo | None) -> dict[str, Any]:
    document: dict[str, Any] = {"key": view.key, "label": view.label,
                                "used_percent": view.used_percent,
                                "remaining_percent": view.remaining_percent}
    optional = {"window_minutes": view.window.window_minutes,
                "resets_in_seconds": view.window.resets_in_seconds,
                "resets_in": view.resets_in}
    document.update({key: value for key, value in optional.items() if value is not None})
    if view.resets_at is not None:
        document["resets_at"] = format_local(view.resets_at, tz)
        document["resets_at_rfc3339"] = format_rfc3339(view.resets_at)
    return document


# --- shared -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WindowView:
    """One window as both renderers show it."""

    key: str
    label: str
    icon: str
    window: Window
    used_percent: float
    remaining_percent: float
    resets_at: datetime | None
    resets_in: str | None


def _window_views(usage: UsageSnapshot, now: datetime) -> list[_WindowView]:
    """The present windows in display order.

    "Resets in" counts from `now` to captured_at + resets_in_seconds rather than
    repeating the delay as captured, so it stays true when the snapshot is old.
    """
    views = []
    for key, label, icon in _WINDOWS:
        window: Window | None = getattr(usage, key)
        if window is None:
            continue
        used = clamp_percent(window.used_percent)
        resets_at = usage.resets_at(window)
        resets_in = (format_duration((resets_at - now).total_seconds())
                     if resets_at is not None else None)
        views.append(_WindowView(key, label, icon, window, used, max(0.0, 100.0 - used),
                                 resets_at, resets_in))
    return views


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (all of ours are aware; this guards callers)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _text(claims: dict[str, Any], key: str) -> str:
    value = claims.get(key)
    return value if isinstance(value, str) else ""


def _plan_claim(claims: dict[str, Any]) -> str:
    auth = claims.get(AUTH_CLAIM)
    value = auth.get("chatgpt_plan_type") if isinstance(auth, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _expiry(claims: dict[str, Any]) -> datetime | None:
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
