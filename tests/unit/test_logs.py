"""Log formats: the text access line, one JSON object per line, redaction in both."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from chatmock import logs
from chatmock.logs import FIELDS, JsonFormatter, RedactingFilter, access_line

FULL = {"client": "127.0.0.1:53412", "method": "POST", "path": "/v1/chat/completions",
        "status": 200, "duration_ms": 1532.04, "ttfb_ms": 120.3, "model": "gpt-5.4",
        "effort": "high", "dialect": "openai", "stream": True, "input_tokens": 15,
        "output_tokens": 42}


def test_the_access_line_names_each_value() -> None:
    assert access_line(FULL) == ('127.0.0.1:53412 "POST /v1/chat/completions" 200 1532.0ms '
                                 "ttfb=120.3ms model=gpt-5.4 effort=high input_tokens=15 "
                                 "output_tokens=42")


def test_the_access_line_ends_with_the_error_then_client_gone() -> None:
    fields = {"client": "c", "method": "GET", "path": "/x", "duration_ms": 3.0,
              "ttfb_ms": 3.0, "error": "no route for GET /x", "client_gone": True}
    line = access_line(fields)
    assert line == 'c "GET /x" - 3.0ms ttfb=3.0ms (no route for GET /x) (client gone)'


def record(message: str, fields: dict[str, Any] | None = None,
           exc_info: Any = None) -> logging.LogRecord:
    made = logging.LogRecord("chatmock.access", logging.INFO, __file__, 1, "%s", (message,),
                             exc_info)
    if fields is not None:
        setattr(made, FIELDS, fields)
    return made


def test_a_json_line_carries_the_message_and_the_fields() -> None:
    line = JsonFormatter().format(record(access_line(FULL), FULL))
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "INFO" and document["logger"] == "chatmock.access"
    assert document["message"].startswith('127.0.0.1:53412 "POST')
    assert document["time"].endswith("Z") and "T" in document["time"]
    assert {key: document[key] for key in FULL} == FULL


def test_a_json_line_keeps_a_traceback_in_one_field() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        made = record("failed", exc_info=sys.exc_info())
    document = json.loads(JsonFormatter().format(made))
    assert "ValueError: bad" in document["exception"] and document["message"] == "failed"


SECRET = "local-access-token-1234567890"
TRICKY = 'code=abc\\"def authorization: Bearer abc.def.ghi sk-abcdefgh12345678 ' + SECRET


@pytest.mark.parametrize("structured", [False, True], ids=["text", "json"])
def test_secrets_are_redacted_from_the_message_and_the_fields(structured: bool) -> None:
    made = record(TRICKY, {"path": "/v1/models/sk-abcdefgh12345678", "model": TRICKY,
                           "status": 404})
    RedactingFilter((SECRET,), structured=structured).filter(made)
    formatter = JsonFormatter() if structured else logging.Formatter(logs.TEXT_FORMAT)
    line = formatter.format(made)
    for secret in (SECRET, "abc.def.ghi", "sk-abcdefgh12345678", "abc\\"):
        assert secret not in line
    if structured:
        document = json.loads(line)  # redaction happened before serialising: still JSON
        assert document["path"] == "/v1/models/[redacted]" and document["status"] == 404
        assert SECRET not in document["model"]


@pytest.fixture
def chatmock_logger() -> Iterator[logging.Logger]:
    """`logs.setup` replaces the chatmock logger's handlers; put them back afterwards."""
    logger = logging.getLogger("chatmock")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_setup_writes_the_chosen_format(chatmock_logger: logging.Logger, log_format: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(False, (SECRET,), log_format)
    logging.getLogger("chatmock.access").info("%s", access_line(FULL),
                                              extra={FIELDS: {**FULL, "path": "/" + SECRET}})
    logging.getLogger("chatmock.test").debug("not at INFO")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and SECRET not in lines[0]
    if log_format == "json":
        assert json.loads(lines[0])["path"] == "/[redacted]"
    else:
        assert " INFO chatmock.access: 127.0.0.1:53412 " in lines[0]
