"""Logging setup with a filter that scrubs secrets from every record, in two formats.

Whatever a log line holds (a request body, an upstream error, an exception
text), bearer tokens, JWTs, API keys, refresh tokens and the configured
access token are replaced before the record is formatted.

`--log-format text` (the default) writes `time LEVEL logger: message`;
`--log-format json` writes one JSON object per line for log shippers:
`time` (UTC, RFC 3339 with milliseconds), `level`, `logger`, `message`, the
record's structured fields if it has any (the access line's: see
`access_line`), and `exception` when there is a traceback. The fields are
redacted like the message, before they are serialised, so a redaction never
cuts through JSON syntax.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_PATTERNS = (
    re.compile(rb"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(rb"(?i)(authorization\"?\s*[:=]\s*\"?basic\s+)[A-Za-z0-9+/=]+"),
    re.compile(rb"eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*"),
    re.compile(rb"(?i)(\"?(?:access_token|refresh_token|id_token|api_key|x-api-key|"
               rb"authorization|code_verifier|code)\"?\s*[:=]\s*\"?)[^\",&\s]{4,}"),
    re.compile(rb"\bsk-[A-Za-z0-9_-]{8,}"),
)
REDACTED = b"[redacted]"


# Every pattern above needs one of these words (any case): a line with none of them, no
# extra secret and only ASCII (nothing to re-encode) is its own redaction. That is most
# lines, the access line of every request among them, and the check costs an eighth of
# the patterns.
# (Matched against the lower-cased text: an `(?i)` search took ten times as long.)
_MAYBE_SECRET = re.compile(
    r"bearer|eyj|access_token|refresh_token|id_token|api_key|x-api-key|authorization|code|sk-")


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    if text.isascii() and not _MAYBE_SECRET.search(text.lower()) and not any(
            secret and secret in text for secret in extra_secrets):
        return text
    return scrub(text, extra_secrets)


def scrub(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """`redact` without the shortcut: every pattern and secret replaced, the text made
    UTF-8-safe (a lone surrogate becomes `?`)."""
    data = text.encode("utf-8", "replace")
    for pattern in _PATTERNS:
        data = pattern.sub(lambda m: (m.group(1) if m.groups() else b"") + REDACTED, data)
    for secret in extra_secrets:
        if secret:
            data = data.replace(secret.encode(), REDACTED)
    return data.decode("utf-8", "replace")


FIELDS = "fields"  # the LogRecord attribute (`extra={FIELDS: {...}}`) of structured fields
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Redacts the message, the traceback and, when `structured`, the string fields."""

    def __init__(self, extra_secrets: tuple[str, ...] = (), *, structured: bool = False) -> None:
        super().__init__()
        self.extra_secrets = extra_secrets
        self.structured = structured

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message, self.extra_secrets)
        record.args = ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.extra_secrets)
        fields = getattr(record, FIELDS, None)
        if self.structured and isinstance(fields, dict):
            setattr(record, FIELDS, {key: redact(value, self.extra_secrets)
                                     if isinstance(value, str) else value
                                     for key, value in fields.items()})
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z"
        document: dict[str, Any] = {"time": stamp, "level": record.levelname,
                                    "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            document.update((key, value) for key, value in fields.items()
                            if key not in document)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        return json.dumps(document, ensure_ascii=False, default=str)


def access_line(fields: dict[str, Any]) -> str:
    """The text access line of one exchange from its fields (`Exchange.log_fields`):

    `127.0.0.1:53412 "POST /v1/chat/completions" 200 1532.0ms ttfb=120.3ms model=gpt-5.4
    effort=high input_tokens=15 output_tokens=42`, then `(the error message)` for a failure and
    `(client gone)` for a client that left; unknown values are left out."""
    parts = [f'{fields.get("client", "")} "{fields.get("method")} {fields.get("path")}" '
             f'{fields.get("status", "-")} {fields.get("duration_ms", 0.0):.1f}ms']
    if "ttfb_ms" in fields:
        parts.append(f"ttfb={fields['ttfb_ms']:.1f}ms")
    parts += [f"{key}={fields[key]}" for key in ("model", "effort", "input_tokens",
                                                 "output_tokens") if key in fields]
    if "error" in fields:
        parts.append(f"({fields['error']})")
    if fields.get("client_gone"):
        parts.append("(client gone)")
    return " ".join(parts)


def lean_records() -> None:
    """Skip what neither format prints: the caller's file and line (a walk up the stack
    per record; logging's own comment on `_srcfile` offers this), the thread and the
    process. About a third of what a record costs, once per access line."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def setup(verbose: bool, extra_secrets: tuple[str, ...] = (), log_format: str = "text") -> None:
    lean_records()
    handler = logging.StreamHandler(sys.stderr)
    structured = log_format == "json"
    handler.setFormatter(JsonFormatter() if structured else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter(extra_secrets, structured=structured))
    root = logging.getLogger("chatmock")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
