"""How the fake backend answers a structured-output request.

A request whose `text.format` is `json_object` or `json_schema` gets JSON text
back, as from the real backend: the scenario's answer wrapped in a value of
the requested shape. For a schema that value is built by walking it: every
string is the answer, integers and numbers its length, booleans true, an
array holds one element, an object has every listed property, and `$ref`
into `$defs`, `enum`, `const` and the first branch of `anyOf` / `oneOf` /
`allOf` are followed. Enough for the schemas SDKs generate from a class;
not a general instance generator.

A schema whose keywords have the wrong shape (`properties` that is no object,
an empty `anyOf`, a `$ref` to nothing, ...) is refused with a 400, as the
real backend refuses an invalid schema; a recursive one (a tree type) stops
expanding at `MAX_DEPTH` with an empty object or array.
"""

from __future__ import annotations

import json
from typing import Any

from chatmock.testing.fake_rules import bad_request

JSON = dict[str, Any]
MAX_DEPTH = 32


class SchemaError(ValueError):
    """A schema keyword whose value has the wrong shape."""


def structured_answer(text: Any, answer: str) -> str | None:
    """The JSON text that answers a request with this `text` parameter, or None
    when it asks for plain text."""
    wanted = text.get("format") if isinstance(text, dict) else None
    wanted = wanted if isinstance(wanted, dict) else {}
    kind = wanted.get("type")
    if kind == "json_object":
        return json.dumps({"answer": answer})
    if kind == "json_schema":
        schema = wanted.get("schema")
        root = schema if isinstance(schema, dict) else {}
        try:
            return json.dumps(schema_instance(root, answer, _shaped(root, "$defs", dict, {})))
        except SchemaError as exc:
            raise bad_request(f"Invalid schema for response_format '{wanted.get('name')}': "
                              f"{exc}") from None
    return None


def schema_instance(schema: Any, answer: str, defs: JSON, depth: int = 0) -> Any:
    """A value of `schema` made around `answer` (see the module docstring)."""
    if not isinstance(schema, dict):
        return answer
    if depth > 2 * MAX_DEPTH:  # only references or combinators all the way down
        raise SchemaError("references or combinators nest too deeply")
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name not in defs:
            raise SchemaError(f"reference {ref} names no definition")
        schema = defs[name]
        return schema_instance(schema, answer, defs, depth + 1)
    if schema.get("enum") is not None:
        return _shaped(schema, "enum", list, None)[0]
    if "const" in schema:
        return schema["const"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator) is not None:
            return schema_instance(_shaped(schema, combinator, list, None)[0], answer, defs,
                                   depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((name for name in kind if name != "null"), "null")
    if kind == "object":
        properties = _shaped(schema, "properties", dict, {})
        if depth >= MAX_DEPTH:
            return {}
        return {name: schema_instance(sub, answer, defs, depth + 1)
                for name, sub in properties.items()}
    if kind == "array":
        return [] if depth >= MAX_DEPTH else [
            schema_instance(schema.get("items"), answer, defs, depth + 1)]
    scalars: JSON = {"integer": len(answer), "number": float(len(answer)), "boolean": True,
                     "null": None}
    return scalars.get(str(kind), answer)


def _shaped(schema: JSON, keyword: str, kind: type, default: Any) -> Any:
    """`schema[keyword]` if it is a `kind` (non-empty, for lists); `default` if absent."""
    value = schema.get(keyword)
    if value is None and default is not None:
        return default
    if not isinstance(value, kind) or (kind is list and not value):
        raise SchemaError(f"'{keyword}' must be a{' non-empty' if kind is list else 'n'} "
                          f"{'array' if kind is list else 'object'}")
    return value
