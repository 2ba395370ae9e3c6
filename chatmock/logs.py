"""Logging setup with a filter that scrubs secrets from every record.

Whatever a log line holds (a request body, an upstream error, an exception
text), bearer tokens, JWTs, API keys, refresh tokens and the configured
access token are replaced before the record is formatted.
"""

from __future__ import annotations

import logging
import re
import sys

_PATTERNS = (
    re.compile(rb"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(rb"eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*"),
    re.compile(rb"(?i)(\"?(?:access_token|refresh_token|id_token|api_key|x-api-key|"
               rb"authorization|code_verifier|code)\"?\s*[:=]\s*\"?)[^\",&\s]{4,}"),
    re.compile(rb"\bsk-[A-Za-z0-9_-]{8,}"),
)
REDACTED = b"[redacted]"


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    data = text.encode("utf-8", "replace")
    for pattern in _PATTERNS:
        data = pattern.sub(lambda m: (m.group(1) if m.groups() else b"") + REDACTED, data)
    for secret in extra_secrets:
        if secret:
            data = data.replace(secret.encode(), REDACTED)
    return data.decode("utf-8", "replace")


class RedactingFilter(logging.Filter):
    def __init__(self, extra_secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra_secrets = extra_secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message, self.extra_secrets)
        record.args = ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.extra_secrets)
        return True


def setup(verbose: bool, extra_secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(extra_secrets))
    root = logging.getLogger("chatmock")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
