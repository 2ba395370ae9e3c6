"""Typed reads of request fields: a wrong shape is a 400 naming the field's path.

Every parser reads its body through one of two `Fields` readers, so a
`"stream": "false"` or an `n: true` is refused the same way everywhere, with
the path of the field in the error (`param` in OpenAI's shape) and the words
the real API uses for the same mistake:

* `OPENAI` (OpenAI and Ollama routes): `Invalid type for 'messages[2].content':
  expected a string, but got an integer instead.` (code `invalid_type`),
  `Invalid value: 'x'. Supported values are: 'a' and 'b'.` (`invalid_value`),
  `Missing required parameter: 'messages'.` (`missing_required_parameter`);
  paths index lists with brackets (`tools[0].function.name`);
* `ANTHROPIC`: pydantic's wording, as Anthropic's API answers
  (`messages.0.content: Input should be a valid list`,
  `max_tokens: Field required`); paths index lists with dots.

`null` counts as absent, as in both APIs for optional fields. Callers build
the path prefix (`at`) in their dialect's style; `key` is appended with a dot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatmock.errors import ClientError

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "integer": (int,), "number": (int, float),
    "object": (dict,), "array": (list,)}
_OPENAI_NAMES = {"string": "a string", "boolean": "a boolean", "integer": "an integer",
                 "number": "a decimal", "object": "an object", "array": "an array"}
_PYDANTIC_NAMES = {"string": "a valid string", "boolean": "a valid boolean",
                   "integer": "a valid integer", "number": "a valid number",
                   "object": "a valid dictionary", "array": "a valid list"}
_SHOWN_CHARACTERS = 80


_TYPES_OF: dict[Sequence[str], tuple[type, ...]] = {}


def is_kind(value: Any, kinds: Sequence[str]) -> bool:
    """`value` is a JSON value of one of `kinds` (a boolean is not a number).

    Every field of every message is read through here (a 64-turn history: ~130 calls),
    so the Python types of a `kinds` tuple are looked up once, not rebuilt per call."""
    if isinstance(value, bool):
        return "boolean" in kinds
    try:
        types = _TYPES_OF[kinds]
    except KeyError:
        types = _TYPES_OF[kinds] = tuple(t for kind in kinds for t in _TYPES[kind])
    except TypeError:  # a list of kinds: not a key
        types = tuple(t for kind in kinds for t in _TYPES[kind])
    return isinstance(value, types)


def type_name(value: Any) -> str:
    """What a JSON value is, in OpenAI's words ("an integer", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def shown(value: Any) -> str:
    """A value as an error message quotes it, cut short."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > _SHOWN_CHARACTERS:
        text = text[:_SHOWN_CHARACTERS] + "..."
    return f"'{text}'"


def join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


@dataclass(frozen=True, slots=True)
class Fields:
    """Typed reads from request objects, errors worded as one API words them."""

    pydantic: bool = False

    # -- reads ------------------------------------------------------------------------

    def get(self, source: dict[str, Any], key: str, kinds: Sequence[str], at: str = "") -> Any:
        """`source[key]` if it is one of `kinds`; None if absent or null; else a 400."""
        value = source.get(key)
        if value is None or is_kind(value, kinds):
            return value
        raise self.wrong_type(join(at, key), kinds, value)

    def boolean(self, source: dict[str, Any], key: str, default: bool, at: str = "") -> bool:
        value = self.get(source, key, ("boolean",), at)
        return default if value is None else bool(value)

    def string(self, source: dict[str, Any], key: str, at: str = "") -> str | None:
        value: str | None = self.get(source, key, ("string",), at)
        return value

    def number(self, source: dict[str, Any], key: str, at: str = "") -> float | None:
        value: float | None = self.get(source, key, ("number",), at)
        return value

    def integer(self, source: dict[str, Any], key: str, at: str = "",
                minimum: int | None = None) -> int | None:
        value: int | None = self.get(source, key, ("integer",), at)
        if value is not None and minimum is not None and value < minimum:
            raise self.below_minimum(join(at, key), minimum, value)
        return value

    def obj(self, source: dict[str, Any], key: str, at: str = "") -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.get(source, key, ("object",), at)
        return value

    def array(self, source: dict[str, Any], key: str, at: str = "") -> list[Any] | None:
        value: list[Any] | None = self.get(source, key, ("array",), at)
        return value

    def choice(self, source: dict[str, Any], key: str, choices: Sequence[str],
               at: str = "") -> str | None:
        """A string that must be one of `choices` (None if absent or null)."""
        value = self.string(source, key, at)
        if value is not None and value not in choices:
            raise self.invalid_value(join(at, key), value, choices)
        return value

    def check(self, value: Any, kinds: Sequence[str], path: str) -> Any:
        """`value` itself (a list element, say) if it is one of `kinds`, null not allowed."""
        if not is_kind(value, kinds):
            raise self.wrong_type(path, kinds, value)
        return value

    def check_all(self, source: dict[str, Any], kinds_of: dict[str, tuple[str, ...]],
                  at: str = "") -> None:
        """Type-check the fields of `kinds_of` that `source` has (e.g. accepted and dropped
        sampling parameters)."""
        for key, kinds in kinds_of.items():
            if key in source:
                self.get(source, key, kinds, at)

    # -- errors -----------------------------------------------------------------------

    def wrong_type(self, path: str, kinds: Sequence[str], value: Any) -> ClientError:
        if self.pydantic:
            wanted = " or ".join(_PYDANTIC_NAMES[kind] for kind in kinds)
            return self._error(path, f"{path}: Input should be {wanted}", "invalid_type")
        wanted = " or ".join(_OPENAI_NAMES[kind] for kind in kinds)
        return self._error(path, f"Invalid type for '{path}': expected {wanted}, but got "
                                 f"{type_name(value)} instead.", "invalid_type")

    def invalid_value(self, path: str, value: Any, supported: Sequence[str]) -> ClientError:
        quoted = [f"'{choice}'" for choice in supported]
        if self.pydantic:
            listed = quoted[0] if len(quoted) == 1 else \
                ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
            return self._error(path, f"{path}: Input should be {listed}", "invalid_value")
        if len(quoted) <= 2:
            listed = " and ".join(quoted)
        else:
            listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
        return self._error(path, f"Invalid value: {shown(value)}. Supported values are: "
                                 f"{listed}.", "invalid_value")

    def missing(self, path: str) -> ClientError:
        if self.pydantic:
            return self._error(path, f"{path}: Field required", "missing_required_parameter")
        return self._error(path, f"Missing required parameter: '{path}'.",
                           "missing_required_parameter")

    def below_minimum(self, path: str, minimum: int, value: int) -> ClientError:
        if self.pydantic:
            return self._error(path, f"{path}: Input should be greater than or equal to "
                                     f"{minimum}", "integer_below_min_value")
        return self._error(path, f"Invalid '{path}': integer below minimum value. Expected a "
                                 f"value >= {minimum}, but got {value} instead.",
                           "integer_below_min_value")

    def invalid(self, path: str, message: str, code: str = "invalid_value") -> ClientError:
        """Any other 400 about the field at `path`, in this API's wording."""
        if self.pydantic:
            return self._error(path, f"{path}: {message}", code)
        return self._error(path, f"Invalid '{path}': {message}", code)

    def _error(self, path: str, message: str, code: str) -> ClientError:
        if self.pydantic:  # Anthropic's errors carry no code of their own
            code = "invalid_request_error"
        return ClientError(message, code=code, param=path)


OPENAI = Fields()
ANTHROPIC = Fields(pydantic=True)
