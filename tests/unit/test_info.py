"""chatmock.info: the account summary and the `info` text and JSON renderings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chatmock.auth.tokens import AUTH_CLAIM, Credentials, read_auth_file
from chatmock.info import (
    AccountSummary,
    account_summary,
    format_duration,
    format_local,
    format_rfc3339,
    plan_display,
    render_bar,
    render_json,
    render_text,
    usage_color,
)
from chatmock.state.usage_limits import UsageSnapshot, Window
from chatmock.testing.credentials import TEST_ACCOUNT_ID, make_jwt, write_auth_file

BERLIN = ZoneInfo("Europe/Berlin")
CAPTURED = datetime(2026, 7, 26, 10, 15, 30, 123456, tzinfo=UTC)
SNAPSHOT = UsageSnapshot(CAPTURED, Window(42.0, 300, 7200), Window(12.5, 10080, 400000))
EXPIRES = CAPTURED + timedelta(minutes=42, seconds=30)
AUTH_PATH = Path("/home/user/.chatgpt-local/auth.json")
REFRESH = "rt_secret_refresh_token_value"


def credentials(id_claims: dict[str, Any] | None = None,
                access_claims: dict[str, Any] | None = None,
                account_id: str = TEST_ACCOUNT_ID) -> Credentials:
    auth = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus"}
    id_claims = {"email": "user@example.com", AUTH_CLAIM: auth} if id_claims is None else id_claims
    access_claims = ({"exp": int(EXPIRES.timestamp()), AUTH_CLAIM: auth}
                     if access_claims is None else access_claims)
    id_token, access_token = make_jwt(id_claims), make_jwt(access_claims)
    raw = {"tokens": {"id_token": id_token, "access_token": access_token,
                      "refresh_token": REFRESH, "account_id": account_id}}
    return Credentials(AUTH_PATH, access_token, account_id, id_token, REFRESH, raw)


SIGNED_IN = account_summary(credentials())
SIGNED_OUT = account_summary(None)


# --- account summary --------------------------------------------------------------------


def test_account_summary() -> None:
    summary = account_summary(credentials())
    assert summary == AccountSummary(signed_in=True, email="user@example.com", plan="Plus",
                                     account_id=TEST_ACCOUNT_ID,
                                     token_expires_at=EXPIRES.replace(microsecond=0),
                                     auth_file=str(AUTH_PATH))


def test_account_summary_from_an_auth_file(tmp_path: Path) -> None:
    path = write_auth_file(tmp_path, email="me@example.org", plan="pro", expires_in=600)
    found = read_auth_file({"CHATGPT_LOCAL_HOME": str(tmp_path)})
    summary = account_summary(found)
    assert summary["signed_in"] and summary["email"] == "me@example.org"
    assert summary["plan"] == "Pro" and summary["auth_file"] == str(path)
    expires = summary["token_expires_at"]
    assert expires is not None and expires.tzinfo is UTC
    assert abs((expires - datetime.now(UTC)).total_seconds() - 600) < 60


def test_not_signed_in() -> None:
    summary = account_summary(None)
    assert summary == AccountSummary(signed_in=False, email=None, plan=None, account_id=None,
                                     token_expires_at=None, auth_file=None)
    without_id = credentials()
    without_id = Credentials(AUTH_PATH, without_id.access_token, TEST_ACCOUNT_ID, "")
    assert account_summary(without_id) == AccountSummary(
        signed_in=False, email=None, plan=None, account_id=None, token_expires_at=None,
        auth_file=str(AUTH_PATH))
    without_access = Credentials(AUTH_PATH, "", TEST_ACCOUNT_ID, credentials().id_token)
    assert not account_summary(without_access)["signed_in"]


@pytest.mark.parametrize(("claims", "expected"), [
    ({"email": "a@example.com", "preferred_username": "alice"}, "a@example.com"),
    ({"email": "", "preferred_username": "alice"}, "alice"),
    ({"preferred_username": "alice"}, "alice"),
    ({"email": None, "preferred_username": 7}, "<unknown>"),
    ({}, "<unknown>"),
])
def test_email_fallbacks(claims: dict[str, Any], expected: str) -> None:
    assert account_summary(credentials(id_claims=claims))["email"] == expected


def test_unparseable_tokens_still_count_as_signed_in() -> None:
    broken = Credentials(AUTH_PATH, "not-a-jwt", "", "also.not.jwt")
    assert account_summary(broken) == AccountSummary(
        signed_in=True, email="<unknown>", plan="Unknown", account_id=None,
        token_expires_at=None, auth_file=str(AUTH_PATH))


@pytest.mark.parametrize(("raw", "expected"), [
    ("plus", "Plus"), ("pro", "Pro"), ("free", "Free"), ("team", "Team"),
    ("enterprise", "Enterprise"), ("PLUS", "Plus"), (" pro ", "Pro"), ("business", "Business"),
    ("edu", "Edu"), ("free_workspace", "Free_Workspace"), ("unknown", "Unknown"),
    (None, "Unknown"), ("", "Unknown"), ("  ", "Unknown"), (5, "Unknown"), (["plus"], "Unknown"),
])
def test_plan_display(raw: object, expected: str) -> None:
    assert plan_display(raw) == expected


def plan_of(id_plan: object = None, access_plan: object = None) -> str | None:
    def claims(plan: object) -> dict[str, Any]:
        return {} if plan is None else {AUTH_CLAIM: {"chatgpt_plan_type": plan}}

    return account_summary(credentials(claims(id_plan), claims(access_plan)))["plan"]


def test_plan_comes_from_the_access_token_then_the_id_token() -> None:
    assert plan_of("free", "pro") == "Pro"
    assert plan_of("team", None) == "Team"
    assert plan_of("team", "") == "Team"
    assert plan_of("team", 3) == "Team"
    assert plan_of(None, None) == "Unknown"


@pytest.mark.parametrize("exp", [None, "1785060000", True, 10**20, float("nan")])
def test_unusable_expiry_is_none(exp: object) -> None:
    claims: dict[str, Any] = {} if exp is None else {"exp": exp}
    assert account_summary(credentials(access_claims=claims))["token_expires_at"] is None


# --- helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("percent", "bar"), [
    (0, "[" + "░" * 30 + "]"),
    (-5, "[" + "░" * 30 + "]"),
    (1, "[" + "░" * 30 + "]"),  # 0.3 cells
    (2, "[▓" + "░" * 29 + "]"),  # 0.6 cells
    (12.5, "[" + "█" * 3 + "▓" + "░" * 26 + "]"),  # 3.75 cells
    (42, "[" + "█" * 12 + "▓" + "░" * 17 + "]"),  # 12.6 cells
    (50, "[" + "█" * 15 + "░" * 15 + "]"),
    (51.5, "[" + "█" * 15 + "░" * 15 + "]"),  # 15.45 cells
    (95, "[" + "█" * 28 + "░" * 2 + "]"),  # 28.5 cells: exactly half is not "more than half"
    (99, "[" + "█" * 29 + "▓" + "]"),  # 29.7 cells
    (100, "[" + "█" * 30 + "]"),
    (250, "[" + "█" * 30 + "]"),
    (float("nan"), "[" + "░" * 30 + "]"),
])
def test_render_bar(percent: float, bar: str) -> None:
    assert render_bar(percent) == bar
    assert len(bar) == 32


@pytest.mark.parametrize(("percent", "code"), [
    (0, "\033[92m"), (49.9, "\033[92m"), (50, "\033[94m"), (74.9, "\033[94m"),
    (75, "\033[93m"), (89.9, "\033[93m"), (90, "\033[91m"), (100, "\033[91m"),
])
def test_usage_color(percent: float, code: str) -> None:
    assert usage_color(percent) == code


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0m"), (-30, "0m"), (0.9, "0m"), (1, "under 1m"), (59, "under 1m"), (59.99, "under 1m"),
    (60, "1m"), (61, "1m"), (3599, "59m"), (3600, "1h"), (3660, "1h 1m"), (7200, "2h"),
    (86400, "1d"), (86460, "1d 1m"), (90000, "1d 1h"), (90061, "1d 1h 1m"),
    (400000, "4d 15h 6m"), (30 * 86400, "30d"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_local() -> None:
    assert format_local(CAPTURED, BERLIN) == "Jul 26, 2026 12:15 CEST"
    assert format_local(datetime(2026, 1, 5, 23, 59, 59, tzinfo=UTC), BERLIN) == \
        "Jan 06, 2026 00:59 CET"
    assert format_local(CAPTURED, UTC) == "Jul 26, 2026 10:15 UTC"
    assert format_local(CAPTURED.replace(tzinfo=None), UTC) == "Jul 26, 2026 10:15 UTC"
    local = CAPTURED.astimezone()
    assert format_local(CAPTURED) == \
        f"{local.strftime('%b %d, %Y %H:%M')} {local.tzname()}"


def test_format_rfc3339() -> None:
    assert format_rfc3339(CAPTURED) == "2026-07-26T10:15:30Z"
    assert format_rfc3339(CAPTURED.astimezone(BERLIN)) == "2026-07-26T10:15:30Z"


# --- text -------------------------------------------------------------------------------

ACCOUNT_TEXT = f"""\
👤 Account
  • Signed in with ChatGPT
  • Login: user@example.com
  • Plan: Plus
  • Account ID: {TEST_ACCOUNT_ID}
  • Token expires: Jul 26, 2026 12:58 CEST (in 42m)
  • Auth file: /home/user/.chatgpt-local/auth.json

"""

EXPECTED_PLAIN = ACCOUNT_TEXT + """\
📊 Usage Limits
Last updated: Jul 26, 2026 12:15 CEST

⚡ 5 hour limit
[████████████▓░░░░░░░░░░░░░░░░░]  42.0% used |  58.0% left
    ⏳ Resets in: 2h at Jul 26, 2026 14:15 CEST

📅 Weekly limit
[███▓░░░░░░░░░░░░░░░░░░░░░░░░░░]  12.5% used |  87.5% left
    ⏳ Resets in: 4d 15h 6m at Jul 31, 2026 03:22 CEST
"""

G, R = "\033[92m", "\033[0m"
EXPECTED_COLOUR = ACCOUNT_TEXT + f"""\
📊 Usage Limits
Last updated: Jul 26, 2026 12:15 CEST

⚡ 5 hour limit
{G}[████████████▓░░░░░░░░░░░░░░░░░]{R} {G} 42.0% used{R} |  58.0% left
    ⏳ Resets in: 2h at Jul 26, 2026 14:15 CEST

📅 Weekly limit
{G}[███▓░░░░░░░░░░░░░░░░░░░░░░░░░░]{R} {G} 12.5% used{R} |  87.5% left
    ⏳ Resets in: 4d 15h 6m at Jul 31, 2026 03:22 CEST
"""


def test_render_text_without_colour() -> None:
    text = render_text(SIGNED_IN, SNAPSHOT, now=CAPTURED, color=False, tz=BERLIN)
    assert text == EXPECTED_PLAIN
    assert "\033" not in text


def test_render_text_with_colour() -> None:
    text = render_text(SIGNED_IN, SNAPSHOT, now=CAPTURED, color=True, tz=BERLIN)
    assert text == EXPECTED_COLOUR


def test_colours_follow_each_window() -> None:
    snapshot = UsageSnapshot(CAPTURED, Window(95.0, 300, 60), Window(80.0))
    lines = render_text(SIGNED_OUT, snapshot, now=CAPTURED, color=True, tz=UTC).splitlines()
    assert lines[lines.index("⚡ 5 hour limit") + 1] == \
        f"\033[91m[{'█' * 28}░░]{R} \033[91m 95.0% used{R} |   5.0% left"
    assert lines[lines.index("📅 Weekly limit") + 1] == \
        f"\033[93m[{'█' * 24}{'░' * 6}]{R} \033[93m 80.0% used{R} |  20.0% left"


def test_percentages_are_clamped() -> None:
    snapshot = UsageSnapshot(CAPTURED, Window(130.0), Window(-4.0))
    text = render_text(SIGNED_OUT, snapshot, now=CAPTURED, color=False, tz=UTC)
    assert f"[{'█' * 30}] 100.0% used |   0.0% left" in text
    assert f"[{'░' * 30}]   0.0% used | 100.0% left" in text


def test_not_signed_in_and_no_data() -> None:
    text = render_text(SIGNED_OUT, None, now=CAPTURED, color=True, tz=BERLIN)
    assert text == (
        "👤 Account\n"
        "  • Not signed in\n"
        "  • Run: chatmock login\n"
        "\n"
        "📊 Usage Limits\n"
        "  No usage data available yet. Send a request through chatmock first.\n"
    )


def test_signed_in_without_data() -> None:
    text = render_text(SIGNED_IN, None, now=CAPTURED, color=False, tz=BERLIN)
    assert text == ACCOUNT_TEXT + "📊 Usage Limits\n" \
        "  No usage data available yet. Send a request through chatmock first.\n"


def test_snapshot_without_windows() -> None:
    text = render_text(SIGNED_OUT, UsageSnapshot(CAPTURED), now=CAPTURED, color=False, tz=UTC)
    assert text.endswith("📊 Usage Limits\nLast updated: Jul 26, 2026 10:15 UTC\n\n"
                         "  Usage data was captured but no limit windows were provided.\n")


def test_only_the_weekly_window() -> None:
    snapshot = UsageSnapshot(CAPTURED, None, Window(12.5, 10080, 400000))
    text = render_text(SIGNED_OUT, snapshot, now=CAPTURED, color=False, tz=BERLIN)
    assert text.endswith("Last updated: Jul 26, 2026 12:15 CEST\n\n📅 Weekly limit\n"
                         f"[███▓{'░' * 26}]  12.5% used |  87.5% left\n"
                         "    ⏳ Resets in: 4d 15h 6m at Jul 31, 2026 03:22 CEST\n")
    assert "5 hour limit" not in text


def test_labels_do_not_depend_on_window_minutes() -> None:
    snapshot = UsageSnapshot(CAPTURED, Window(1.0, 60), Window(2.0, 43200))
    text = render_text(SIGNED_OUT, snapshot, now=CAPTURED, color=False, tz=UTC)
    assert "⚡ 5 hour limit\n" in text and "📅 Weekly limit\n" in text


def test_window_without_reset_has_no_reset_line() -> None:
    snapshot = UsageSnapshot(CAPTURED, Window(42.0, 300, None))
    text = render_text(SIGNED_OUT, snapshot, now=CAPTURED, color=False, tz=UTC)
    assert "Resets" not in text
    assert text.endswith(f"[{'█' * 12}▓{'░' * 17}]  42.0% used |  58.0% left\n")


@pytest.mark.parametrize(("resets_in", "elapsed", "expected"), [
    (7200, 0, "2h at Jul 26, 2026 12:15 UTC"),
    (7200, 3600, "1h at Jul 26, 2026 12:15 UTC"),  # counted from now, not from capture
    (7200, 7170, "under 1m at Jul 26, 2026 12:15 UTC"),
    (7200, 7200, "0m at Jul 26, 2026 12:15 UTC"),
    (7200, 86400, "0m at Jul 26, 2026 12:15 UTC"),  # already reset
    (0, 0, "0m at Jul 26, 2026 10:15 UTC"),
    (45, 0, "under 1m at Jul 26, 2026 10:16 UTC"),
    (-60, 0, "0m at Jul 26, 2026 10:14 UTC"),
    (90061, 0, "1d 1h 1m at Jul 27, 2026 11:16 UTC"),
])
def test_resets_line(resets_in: int, elapsed: int, expected: str) -> None:
    snapshot = UsageSnapshot(CAPTURED, Window(10.0, 300, resets_in))
    now = CAPTURED + timedelta(seconds=elapsed)
    text = render_text(SIGNED_OUT, snapshot, now=now, color=False, tz=UTC)
    assert f"\n    ⏳ Resets in: {expected}\n" in text


def test_token_expiry_line() -> None:
    def line(now: datetime) -> str:
        text = render_text(SIGNED_IN, None, now=now, color=False, tz=UTC)
        return next(x for x in text.splitlines() if "Token expires" in x)

    assert line(CAPTURED) == "  • Token expires: Jul 26, 2026 10:58 UTC (in 42m)"
    assert line(EXPIRES - timedelta(seconds=20)) == \
        "  • Token expires: Jul 26, 2026 10:58 UTC (in under 1m)"
    assert line(EXPIRES) == "  • Token expires: Jul 26, 2026 10:58 UTC (expired)"
    assert line(EXPIRES + timedelta(days=3)) == \
        "  • Token expires: Jul 26, 2026 10:58 UTC (expired)"


def test_account_lines_left_out_when_unknown() -> None:
    summary = AccountSummary(signed_in=True, email=None, plan=None, account_id=None,
                             token_expires_at=None, auth_file=None)
    text = render_text(summary, None, now=CAPTURED, color=False, tz=UTC)
    assert text.startswith("👤 Account\n  • Signed in with ChatGPT\n  • Login: <unknown>\n"
                           "  • Plan: Unknown\n\n📊 Usage Limits\n")


# --- JSON -------------------------------------------------------------------------------


def test_render_json() -> None:
    document = render_json(SIGNED_IN, SNAPSHOT, now=CAPTURED, tz=BERLIN)
    assert document == {
        "account": {"signed_in": True, "provider": "ChatGPT", "login": "user@example.com",
                    "plan": "Plus", "account_id": TEST_ACCOUNT_ID,
                    "token_expires_at": "2026-07-26T10:58:00Z",
                    "auth_file": "/home/user/.chatgpt-local/auth.json"},
        "usage_limits": {
            "last_updated": "Jul 26, 2026 12:15 CEST",
            "last_updated_rfc3339": "2026-07-26T10:15:30Z",
            "windows": [
                {"key": "primary", "label": "5 hour limit", "used_percent": 42.0,
                 "remaining_percent": 58.0, "window_minutes": 300, "resets_in_seconds": 7200,
                 "resets_in": "2h", "resets_at": "Jul 26, 2026 14:15 CEST",
                 "resets_at_rfc3339": "2026-07-26T12:15:30Z"},
                {"key": "secondary", "label": "Weekly limit", "used_percent": 12.5,
                 "remaining_percent": 87.5, "window_minutes": 10080,
                 "resets_in_seconds": 400000, "resets_in": "4d 15h 6m",
                 "resets_at": "Jul 31, 2026 03:22 CEST",
                 "resets_at_rfc3339": "2026-07-31T01:22:10Z"},
            ],
        },
    }
    assert json.loads(json.dumps(document)) == document


def test_render_json_not_signed_in_and_no_data() -> None:
    assert render_json(SIGNED_OUT, None, now=CAPTURED) == {
        "account": {"signed_in": False, "message": "Not signed in",
                    "hint": "Run: chatmock login"},
        "usage_limits": {"message": "No usage data available yet. "
                                    "Send a request through chatmock first."},
    }


def test_render_json_sparse_window() -> None:
    snapshot = UsageSnapshot(CAPTURED, None, Window(130.0))
    usage = render_json(SIGNED_OUT, snapshot, now=CAPTURED, tz=UTC)["usage_limits"]
    assert usage == {"last_updated": "Jul 26, 2026 10:15 UTC",
                     "last_updated_rfc3339": "2026-07-26T10:15:30Z",
                     "windows": [{"key": "secondary", "label": "Weekly limit",
                                  "used_percent": 100.0, "remaining_percent": 0.0}]}


def test_render_json_snapshot_without_windows() -> None:
    usage = render_json(SIGNED_OUT, UsageSnapshot(CAPTURED), now=CAPTURED, tz=UTC)["usage_limits"]
    assert usage == {"last_updated": "Jul 26, 2026 10:15 UTC",
                     "last_updated_rfc3339": "2026-07-26T10:15:30Z",
                     "message": "Usage data was captured but no limit windows were provided."}


def test_resets_in_json_counts_from_now() -> None:
    later = CAPTURED + timedelta(hours=1)
    windows = render_json(SIGNED_OUT, SNAPSHOT, now=later, tz=UTC)["usage_limits"]["windows"]
    assert windows[0]["resets_in"] == "1h" and windows[0]["resets_in_seconds"] == 7200
    assert windows[0]["resets_at_rfc3339"] == "2026-07-26T12:15:30Z"


# --- no secrets -------------------------------------------------------------------------


def test_no_token_anywhere(tmp_path: Path) -> None:
    creds = credentials()
    write_auth_file(tmp_path)
    from_file = read_auth_file({"CHATGPT_LOCAL_HOME": str(tmp_path)})
    assert from_file is not None
    for source in (creds, from_file):
        summary = account_summary(source)
        outputs = [repr(summary), str(summary)]
        for color in (False, True):
            outputs.append(render_text(summary, SNAPSHOT, now=CAPTURED, color=color, tz=BERLIN))
        outputs.append(json.dumps(render_json(summary, SNAPSHOT, now=CAPTURED, tz=BERLIN)))
        for output in outputs:
            for secret in (source.access_token, source.id_token, source.refresh_token):
                assert secret and secret not in output
            assert "eyJ" not in output  # no JWT, nor any part of one
            assert "rt_" not in output


def test_info_lists_providers_without_their_secrets(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from chatmock.commands import run_info

    env = {"CHATGPT_LOCAL_HOME": str(tmp_path), "XAI_API_KEY": "xai-secret-value-123"}
    run_info(as_json=True, env=env)
    document = json.loads(capsys.readouterr().out)
    providers = {p["name"]: p for p in document["providers"]}
    assert providers["xai"]["usable"] and providers["openrouter"]["missing"] == [
        "OPENROUTER_API_KEY"]
    assert providers["xai"]["gate"] == {"max_concurrency": 8, "queue_timeout": 60.0,
                                        "scope": "process"}
    run_info(as_json=False, env=env)
    text = capsys.readouterr().out
    assert "xai: chat at https://api.x.ai/v1, ready, 8 at a time, queue 60 s" in text
    assert "xai-secret-value-123" not in text + json.dumps(document)


def test_info_says_a_fleets_gate_limit_holds_across_the_fleet(tmp_path: Path) -> None:
    from chatmock.commands import providers_summary
    from chatmock.info import provider_lines

    env = {"CHATGPT_LOCAL_HOME": str(tmp_path), "XAI_API_KEY": "xai-key",
           "CHATMOCK_STATE": "redis://127.0.0.1:6379/0"}
    providers = providers_summary(env)
    xai = next(p for p in providers if p["name"] == "xai")
    assert xai["gate"]["scope"] == "fleet"
    assert any("xai" in line and "8 at a time across the fleet" in line
               for line in provider_lines(providers))
