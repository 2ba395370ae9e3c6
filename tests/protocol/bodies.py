"""Request bodies for property tests: real ones per route (the shapes the acceptance and
unit tests send), and hypothesis strategies that break them.

`request_bodies(seeds)` draws from three kinds, mutations most often:
`mutated(seeds)` takes a real body and applies one to three mutations at random places
(drop a field or element, replace it with random JSON, change its type, put a lone UTF-16
surrogate into a string or key, or bury it under deep nesting); `overlaid` puts random
JSON on a few of the route's own fields of a real body; `shapeless` is valid JSON of
random shape. `single_changes(body)` is the exhaustive complement on a small body:
every value in it dropped, or replaced by one of each JSON type in turn.
`encoded(body)` writes a body as JSON bytes: surrogates as `\\udXXX`
escapes, or (now and then) as raw bytes, which are not UTF-8.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

JSON = dict[str, Any]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg=="
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                            "parameters": SCHEMA}}
LONE_SURROGATES = ("\ud800", "\udbff", "\ud83d", "\udc00", "\ude00", "\udfff")
DEPTHS = (2, 16, 127, 129)

# The first body of each route is its simplest: few places to mutate, so each is hit often.
CHAT: list[JSON] = [
    {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}],
     "responses_tools": [{"type": "web_search"}]},
    {"model": "gpt-5.4", "stream": False, "tools": [WEATHER], "tool_choice": "auto",
     "messages": [
         {"role": "system", "content": "Be terse."},
         {"role": "user", "content": [
             {"type": "text", "text": "Weather?"},
             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
         {"role": "assistant", "content": "Let me look.", "tool_calls": [
             {"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "22C"}]},
    {"model": "gpt-5.4-high", "messages": [{"role": "user", "content": "hi"}], "stream": True,
     "stream_options": {"include_usage": True}, "reasoning_effort": "low", "n": 1,
     "parallel_tool_calls": False, "temperature": 0.2, "response_format": {
         "type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA, "strict": True}}},
]
COMPLETIONS: list[JSON] = [
    {"model": "gpt-5.4", "prompt": "Say hi", "stream": False, "max_tokens": 16},
    {"model": "gpt-5.4", "prompt": ["hi"]},
    {"model": "gpt-5.4", "prompt": ["Say ", "hi"], "stream": True, "echo": False, "n": 1,
     "suffix": "", "stream_options": {"include_usage": True}, "reasoning_effort": "low"},
]
RESPONSES: list[JSON] = [
    {"model": "gpt-5.4", "input": [{"role": "user", "content": "hi"}], "stream": False,
     "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "low"}},
    {"model": "gpt-5.4", "input": "hi"},
    {"model": "gpt-5.4", "instructions": "Be terse.", "stream": True,
     "input": [
         {"role": "system", "content": "Answer in French."},
         {"type": "message", "role": "user",
          "content": [{"type": "input_text", "text": "Weather?"}]},
         {"type": "function_call", "call_id": "call_1", "name": "get_weather",
          "arguments": '{"city": "Paris"}'},
         {"type": "function_call_output", "call_id": "call_1", "output": "22C"}],
     "tools": [{"type": "function", "name": "get_weather", "parameters": SCHEMA}],
     "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "low"},
     "text": {"verbosity": "low"}, "tool_choice": "auto"},
]
MESSAGES: list[JSON] = [
    {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user",
                                                                   "content": "hi"}]},
    {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": False,
     "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
     "messages": [
         {"role": "user", "content": [
             {"type": "text", "text": "Weather?"},
             {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                          "data": PNG}}]},
         {"role": "assistant", "content": [
             {"type": "text", "text": "Let me look."},
             {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
              "input": {"city": "Paris"}}]},
         {"role": "user", "content": [
             {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"}]}],
     "tools": [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}],
     "tool_choice": {"type": "auto"}},
    {"model": "claude-opus-4-1", "max_tokens": 64, "stream": True,
     "messages": [{"role": "user", "content": "hi"}],
     "thinking": {"type": "enabled", "budget_tokens": 2048}, "temperature": 1},
]
OLLAMA_CHAT: list[JSON] = [
    {"model": "gpt-5.4", "stream": False, "messages": [{"role": "user", "content": "hi"}]},
    {"model": "gpt-5.4", "stream": False, "think": True, "keep_alive": "5m", "tools": [WEATHER],
     "options": {"temperature": 0.2},
     "messages": [
         {"role": "system", "content": "Be terse."},
         {"role": "user", "content": "Weather?", "images": [PNG]},
         {"role": "assistant", "content": "", "tool_calls": [
             {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
         {"role": "tool", "content": "22C", "tool_name": "get_weather"}]},
    {"model": "gpt-5.4:latest", "messages": [{"role": "user", "content": "hi"}],
     "format": SCHEMA, "responses_tools": [{"type": "web_search_preview"}],
     "responses_tool_choice": "auto", "fast_mode": False, "tool_choice": "auto"},
]
OLLAMA_GENERATE: list[JSON] = [
    {"model": "gpt-5.4", "prompt": "hi", "stream": False},
    {"model": "gpt-5.4", "prompt": "Say hi", "system": "Be terse.", "stream": False,
     "images": [PNG]},
    {"model": "gpt-5.4", "prompt": "hi", "format": "json", "think": "low", "keep_alive": 300},
]
SHOW: list[JSON] = [{"model": "gpt-5.4"}, {"name": "gpt-5.4:latest", "verbose": True}]

SCALARS = (st.none() | st.booleans() | st.integers() | st.sampled_from([10**400, -(10**30)])
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
           | st.sampled_from(LONE_SURROGATES))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


def request_bodies(seeds: list[JSON]) -> st.SearchStrategy[Any]:
    """Bodies for a route whose real bodies are `seeds` (module docstring)."""
    keys = sorted({key for seed in seeds for key in seed})
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), overlaid(seeds, keys),
                     overlaid(seeds, keys), shapeless(keys))


def shapeless(keys: list[str]) -> st.SearchStrategy[Any]:
    """Valid JSON of random shape; objects' keys mostly the route's field names."""
    names = st.sampled_from(keys) | st.text(max_size=8)
    return st.dictionaries(names, VALUES, max_size=8) | VALUES


@st.composite
def overlaid(draw: st.DrawFn, seeds: list[JSON], keys: list[str]) -> Any:
    """A real body with random JSON in one to three of the route's own fields."""
    changes = draw(st.dictionaries(st.sampled_from(keys), VALUES, min_size=1, max_size=3))
    return {**draw(st.sampled_from(seeds)), **changes}


@st.composite
def mutated(draw: st.DrawFn, seeds: list[JSON]) -> Any:
    """A real body with one to three mutations (module docstring)."""
    body = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        spots = list(_spots(body))
        if spots:
            parent, key = draw(st.sampled_from(spots))
            _mutate(draw, parent, key)
    return body


def _spots(value: Any) -> Any:
    """(container, key) of every value in the tree."""
    stack = [value]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            yield node, key
            if isinstance(node[key], dict | list):
                stack.append(node[key])


def _mutate(draw: st.DrawFn, parent: Any, key: Any) -> None:
    action = draw(st.sampled_from(["retype", "replace", "drop", "retype", "surrogate", "nest"]))
    value = parent[key]
    if action == "drop":
        del parent[key]
    elif action == "replace":
        parent[key] = draw(VALUES)
    elif action == "retype":
        parent[key] = draw(st.sampled_from(_retyped(value)))
    elif action == "surrogate":
        _insert_surrogate(draw, parent, key)
    else:
        depth = draw(st.sampled_from(DEPTHS))
        for _ in range(depth):
            value = [value] if draw(st.booleans()) else {"x": value}
        parent[key] = value


def _retyped(value: Any) -> list[Any]:
    """The same content as other JSON types: `"false"` for false, `[x]` for x, ..."""
    text = value if isinstance(value, str) else json.dumps(value)
    return [text, [value], {"value": value}, True, False, 0, 1, -1, 2.5, None, "",
            list(value.values()) if isinstance(value, dict) else value]


def _insert_surrogate(draw: st.DrawFn, parent: Any, key: Any) -> None:
    lone = draw(st.sampled_from(LONE_SURROGATES))
    value = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        parent[key + lone] = parent.pop(key)  # in a key
        return
    if not isinstance(value, str):
        parent[key] = lone
        return
    at = draw(st.integers(0, len(value)))
    parent[key] = value[:at] + lone + value[at:]


EACH_TYPE: tuple[Any, ...] = (None, True, 0, -1, 2.5, "x", "\ud800", [], {}, [{}], {"x": []})


def single_changes(body: JSON) -> Any:
    """(what changed, changed copy) for every value of `body`: dropped, then replaced by
    each of `EACH_TYPE`."""
    for index in range(len(list(_spots(body)))):
        for replacement in ("drop", *EACH_TYPE):
            changed = copy.deepcopy(body)
            parent, key = list(_spots(changed))[index]
            what = f"{key!r} of {json.dumps(parent)[:60]} -> {replacement!r}"
            if replacement == "drop":
                del parent[key]
            else:
                parent[key] = copy.deepcopy(replacement)
            yield what, changed


@st.composite
def encoded(draw: st.DrawFn, body: Any) -> bytes:
    """JSON bytes of `body`: lone surrogates escaped, or now and then raw (not UTF-8)."""
    if draw(st.integers(0, 9)) == 0:
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(body).encode()
