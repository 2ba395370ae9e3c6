"""A request's JSON body: parsed once, with what JSON allows but nothing else can hold
made safe before any route sees it.

* Lone surrogates. JSON may escape a UTF-16 half on its own (`"\\ud800"`);
  JavaScript clients produce one when they cut a string inside an emoji, and
  Python decodes it to a `str` that cannot be encoded as UTF-8, so it would
  fail wherever the text is written out (upstream, logs, hashes). Each lone
  escape is replaced by `\\ufffd` (U+FFFD, the replacement character) in the
  raw bytes before parsing, keys included, so the request still works. Paired
  escapes (an emoji as `\\ud83d\\ude00`) are left alone. Raw bytes that are not
  UTF-8 (encoded surrogates among them) are refused: RFC 8259 requires UTF-8.
  Cost: one scan of the raw bytes at C speed; only bodies with a surrogate
  escape go further, and proper pairs are skipped at C speed as well.
* Depth. Containers nested deeper than `MAX_DEPTH` are refused with a 400
  before any route walks them (the parser itself, `json.dumps` upstream and
  the translators all recurse). Real requests stay far below: a JSON schema
  of a tool rarely passes 20 levels. Cost: one visit per value of the parsed
  body, level by level (cheaper than any scan of the bytes of a large body).
* `NaN`, `Infinity` and numbers too large for a float are not JSON (Python's
  parser accepts the first two); they are refused, as they could not be sent
  upstream as JSON either.

Sans-I/O: bytes in, a Python value or a `ClientError` out.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from chatmock.errors import ClientError

MAX_DEPTH = 128
_BOM = b"\xef\xbb\xbf"
_HEX2 = rb"[0-9a-fA-F]{2}"
_HIGH = rb"\\u[dD][89abAB]" + _HEX2  # the first half of a UTF-16 pair, escaped
_LOW = rb"\\u[dD][c-fC-F]" + _HEX2  # the second half
_ANY_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
# Escapes that may be lone: a high half not followed by a low one; a low half not preceded
# by a high one, or preceded by one that may be plain text (`\\ud83d\ude00`). `_repaired`
# decides each exactly; pairs are skipped at C speed.
_LONE_CANDIDATE = re.compile(
    rb"\\u[dD](?:[89abAB]" + _HEX2 + rb"(?!" + _LOW + rb")|[c-fC-F]" + _HEX2
    + rb"(?:(?<!" + _HIGH + _LOW + rb")|(?<=\\" + _HIGH + _LOW + rb")))")
_HIGH_ESCAPE = re.compile(_HIGH)
_LOW_ESCAPE = re.compile(_LOW)
_REPLACEMENT_ESCAPE = b"\\ufffd"
_BACKSLASH = 92


def parse_json(raw: bytes, what: str = "body") -> Any:
    """The JSON value of a request body (or a WebSocket frame: `what`), or a 400 that says
    what is wrong with it."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    if not raw.strip():
        raise ClientError(f"Request {what} is empty; expected a JSON object",
                          code="invalid_json")
    if b"\\" in raw and _ANY_SURROGATE.search(raw):
        raw = _LONE_CANDIDATE.sub(lambda match: _repaired(raw, match), raw)
    try:
        value = json.loads(raw.decode("utf-8"), strict=False, parse_constant=_not_json,
                           parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise invalid_json(what, f"not UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise invalid_json(what, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise invalid_json(what, str(exc)) from None
    if deeper_than(value, MAX_DEPTH):
        raise invalid_json(what, f"nested deeper than {MAX_DEPTH} levels")
    return value


def invalid_json(what: str, reason: str) -> ClientError:
    return ClientError(f"Invalid JSON {what}: {reason}", code="invalid_json")


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


def _repaired(raw: bytes, match: re.Match[bytes]) -> bytes:
    """The candidate escape itself, or `\\ufffd` if it is a lone half (as json decodes it)."""
    start, end = match.span()
    found = match.group()
    if not _starts_escape(raw, start):
        return found  # `\\ud800`: an escaped backslash, then plain text
    if _HIGH_ESCAPE.fullmatch(found):
        paired = _LOW_ESCAPE.match(raw, end) is not None
    else:
        before = start - len(found)
        paired = before >= 0 and _HIGH_ESCAPE.match(raw, before, start) is not None \
            and _starts_escape(raw, before)
    return found if paired else _REPLACEMENT_ESCAPE


def _starts_escape(raw: bytes, at: int) -> bool:
    """The backslash at `at` starts an escape: an even number of backslashes precede it."""
    run = 0
    while at - run - 1 >= 0 and raw[at - run - 1] == _BACKSLASH:
        run += 1
    return run % 2 == 0


def deeper_than(value: Any, limit: int) -> bool:
    """Containers nest more than `limit` levels in `value` (walked level by level, so
    the cost is one visit per value, with no recursion)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [child for node in level
                 for child in (node.values() if type(node) is dict else node)
                 if type(child) is dict or type(child) is list]
        if not level:
            return False
    return bool(level)
