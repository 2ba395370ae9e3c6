"""How the fake Codex backend refuses a turn with an HTTP error reply.

``error_reply`` answers what was chosen by ``fake:error=<status>`` and
``fake:usage_limit=<variant>``. The 429 variants are the usage-limit answers
of upstream.md §12.3 and what the Codex CLI parses:

* ``resets_in``: ``usage_limit_reached`` with ``resets_in_seconds`` and a
  ``Retry-After`` header (what ``fake:error=429`` sends);
* ``resets_at``: ``usage_limit_reached`` with ``resets_at`` (unix seconds), no
  ``Retry-After``;
* ``not_included``: ``usage_not_included`` (the plan does not include Codex),
  no message and no reset: waiting does not help;
* ``headers_only``: an empty body, only the ``x-codex-*`` headers tell which
  window is spent (the weekly one here) and when it resets;
* ``plain``: the same headers with a ``text/plain`` body that is not JSON.

Every usage-limit 429 carries ``x-codex-*`` headers that show a spent window.
Failures inside a stream (``fake:fail``, ``fake:late_error``,
``fake:error_event``) are in ``fake_items``.
"""

from __future__ import annotations

from chatmock.testing.fake_items import JSON
from chatmock.testing.fake_rules import Rejected, reject

Header = tuple[bytes, bytes]
RESETS_IN_SECONDS = 120
RESETS_AT_SECONDS = 1800
WEEKLY_RESET_SECONDS = 345600


def window_headers(primary: tuple[float, int, int],
                   secondary: tuple[float, int, int]) -> list[Header]:
    """``x-codex-*`` headers of two windows, each (used percent, minutes, reset seconds)."""
    headers: list[Header] = []
    for window, (used, minutes, reset) in (("primary", primary), ("secondary", secondary)):
        prefix = f"x-codex-{window}-"
        headers += [
            (f"{prefix}used-percent".encode(), str(used).encode()),
            (f"{prefix}window-minutes".encode(), str(minutes).encode()),
            (f"{prefix}reset-after-seconds".encode(), str(reset).encode()),
        ]
    return headers


def error_reply(status: int, usage_limit: str | None, now: float) -> Rejected:
    """The error chosen by ``fake:error=<status>`` or ``fake:usage_limit=<variant>``."""
    if usage_limit is not None:
        return usage_limit_reply(usage_limit, now)
    if status == 400:
        return reject(400, {"detail": "Bad request from fake"})
    if status == 403:
        return Rejected(403, _CLOUDFLARE_PAGE, b"text/html; charset=UTF-8", _CLOUDFLARE_HEADERS)
    if status == 429:
        return usage_limit_reply("resets_in", now)
    if status in (500, 502, 503):
        error = {"message": "Upstream overloaded (fake)", "type": "server_error"}
        return reject(status, {"error": error})
    return reject(status, {"detail": f"Fake error {status}"})


def usage_limit_reply(variant: str, now: float) -> Rejected:
    """One of the 429 variants of the module docstring."""
    spent_primary = window_headers((100.0, 300, RESETS_AT_SECONDS), (20.0, 10080, 400000))
    if variant == "resets_in":
        body = _usage_limit({"resets_in_seconds": RESETS_IN_SECONDS})
        retry = (b"retry-after", str(RESETS_IN_SECONDS).encode())
        return reject(429, body, retry, *window_headers(
            (100.0, 300, RESETS_IN_SECONDS), (20.0, 10080, 400000)))
    if variant == "resets_at":
        body = _usage_limit({"resets_at": int(now) + RESETS_AT_SECONDS})
        return reject(429, body, *spent_primary)
    if variant == "not_included":
        return reject(429, {"error": {"type": "usage_not_included", "plan_type": "free"}},
                      *spent_primary)
    spent_weekly = window_headers((35.0, 300, 7200), (100.0, 10080, WEEKLY_RESET_SECONDS))
    if variant == "plain":
        return Rejected(429, b"Too Many Requests\n", b"text/plain; charset=utf-8",
                        tuple(spent_weekly))
    return Rejected(429, b"", b"text/plain; charset=utf-8", tuple(spent_weekly))


def _usage_limit(reset: JSON) -> JSON:
    return {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                      "plan_type": "plus", **reset}}


_CLOUDFLARE_HEADERS = ((b"server", b"cloudflare"), (b"cf-ray", b"8f00fake00000000-SJC"))
_CLOUDFLARE_PAGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    b'<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head>'
    b'<body><div class="main-wrapper" role="main"><h1>chatgpt.com</h1>'
    b"<p>Enable JavaScript and cookies to continue</p></div></body></html>"
)
