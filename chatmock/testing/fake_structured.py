"""How the fake backend answers a structured-output request.

A request whose `text.format` is `json_object` or `json_schema` gets JSON text
back, as from the real backend: the scenario's answer wrapped in a value of
the requested shape. For a schema that value is built by walking it: every
string is the answer, integers and numbers its length, booleans true, an
array holds one element, an object has every listed property, and `$ref`
into `$defs`, `enum`, `const` and the first branch of `anyOf` / `oneOf` /
`allOf` are followed. Enough for the schemas SDKs generate from a class;
not a general instance generator.
"""

from __future__ import annotations

import json
from typing import Any

JSON = dict[str, Any]


def structured_answer(text: Any, answer: str) -> str | None:
    """The JSON text that answers a request with this `text` parameter, or None
    when it asks for plain text."""
    wanted = text.get("format") if isinstance(text, dict) else None
    kind = wanted.get("type") if isinstance(wanted, dict) else None
    if kind == "json_object":
        return json.dumps({"answer": answer})
    if kind == "json_schema":
        schema = wanted.get("schema") if isinstance(wanted, dict) else None
        root = schema if isinstance(schema, dict) else {}
        return json.dumps(schema_instance(root, answer, root.get("$defs") or {}))
    return None


def schema_instance(schema: Any, answer: str, defs: JSON) -> Any:
    """A value of `schema` made around `answer` (see the module docstring)."""
    if not isinstance(schema, dict):
        return answer
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return schema_instance(defs.get(ref.removeprefix("#/$defs/")), answer, defs)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return schema_instance(schema[combinator][0], answer, defs)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((name for name in kind if name != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: schema_instance(sub, answer, defs) for name, sub in properties.items()}
    if kind == "array":
        return [schema_instance(schema.get("items"), answer, defs)]
    scalars: JSON = {"integer": len(answer), "number": float(len(answer)), "boolean": True,
                     "null": None}
    return scalars.get(str(kind), answer)
