"""What the fake backend can now produce: custom tool calls, citations, late errors,
failure codes, incomplete reasons and the 429 usage-limit variants (issue 11 §2)."""

from __future__ import annotations

from typing import Any

import pytest

from chatmock.testing.fake_codex import FakeCodex
from chatmock.testing.fake_items import DEFAULT_PATCH, FAILURES

from .test_fake_codex import (
    deltas,
    detail,
    error_body,
    header,
    payload,
    post,
    run,
    squash,
    types,
    user,
)

JSON = dict[str, Any]
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files",
              "format": {"type": "text"}}


def custom_run(text: str, *names: str) -> list[JSON]:
    tools = [{**PATCH_TOOL, "name": name} for name in names or ("apply_patch",)]
    return run(text, tools=tools)


def done_items(events: list[JSON]) -> list[JSON]:
    return [e["item"] for e in events if e["type"] == "response.output_item.done"]


# --- custom tool calls ---------------------------------------------------------------------


def test_custom_tool_call_streams_its_input() -> None:
    events = custom_run("fake:custom_tool=apply_patch")
    assert squash(types(events)) == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done",
        "response.output_item.done", "response.completed"]
    added = events[2]["item"]
    assert added == {"id": added["id"], "type": "custom_tool_call", "status": "in_progress",
                     "input": "", "call_id": added["call_id"], "name": "apply_patch"}
    assert added["id"].startswith("ctc_") and added["call_id"].startswith("call_")
    pieces = deltas(events, "response.custom_tool_call_input.delta")
    assert len(pieces) > 1 and "".join(pieces) == DEFAULT_PATCH
    done_event = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done_event["input"] == DEFAULT_PATCH and done_event["item_id"] == added["id"]
    (item,) = done_items(events)
    assert item == {**added, "status": "completed", "input": DEFAULT_PATCH}
    assert events[-1]["response"]["output"] == [item]


def test_custom_tool_inputs_pair_in_order_and_are_percent_decoded() -> None:
    events = custom_run("fake:custom_tool=a fake:input=line%201%0Aline%202 fake:custom_tool=b",
                        "a", "b")
    assert [(i["name"], i["input"]) for i in done_items(events)] == [
        ("a", "line 1\nline 2"), ("b", DEFAULT_PATCH)]


def test_custom_and_function_calls_with_text() -> None:
    events = custom_run("edit it fake:tool=f fake:custom_tool=apply_patch")
    assert [i["type"] for i in done_items(events)] == ["message", "function_call",
                                                       "custom_tool_call"]


def test_a_custom_tool_call_needs_the_custom_tool_defined() -> None:
    message = detail(post(FakeCodex(), payload("fake:custom_tool=apply_patch")))
    assert "fake:custom_tool=apply_patch" in message and "custom tool" in message
    function_only = [{"type": "function", "name": "apply_patch", "parameters": {}}]
    assert post(FakeCodex(), payload("fake:custom_tool=apply_patch",
                                     tools=function_only)).status == 400


def test_custom_tool_round_trip_answer() -> None:
    call = {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch",
            "input": DEFAULT_PATCH}
    result = {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"}
    events = run("", input=[user("patch fake:custom_tool=apply_patch"), call, result],
                 tools=[PATCH_TOOL])
    assert "".join(deltas(events)) == "Tool call_p returned: Done!"


# --- citations -----------------------------------------------------------------------------


def test_citations_annotate_the_links_of_the_answer() -> None:
    events = run("news fake:citations")
    kinds = [i["type"] for i in done_items(events)]
    assert kinds == ["web_search_call", "message"]
    text = "".join(deltas(events))
    assert text.startswith("Hello! You said: news Sources: [Example Docs](https://")
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert [e["annotation_index"] for e in added] == [0, 1]
    annotations = [e["annotation"] for e in added]
    for annotation in annotations:
        assert annotation["type"] == "url_citation"
        span = text[annotation["start_index"]:annotation["end_index"]]
        assert span == f"[{annotation['title']}]({annotation['url']})"
    message = done_items(events)[-1]
    assert message["content"][0]["annotations"] == annotations
    part_done = next(e for e in events if e["type"] == "response.content_part.done")
    assert part_done["part"]["annotations"] == annotations


def test_an_annotation_follows_the_delta_that_completes_its_link() -> None:
    events = run("x fake:citations")
    for number, event in enumerate(events):
        if event["type"] == "response.output_text.annotation.added":
            before = "".join(deltas(events[:number]))
            assert len(before) == event["annotation"]["end_index"]


def test_citations_after_numbered_deltas_and_a_named_search() -> None:
    events = run("fake:deltas=3 fake:citations fake:websearch=weather")
    assert done_items(events)[0]["action"]["query"] == "weather"
    text = "".join(deltas(events))
    annotation = done_items(events)[-1]["content"][0]["annotations"][0]
    assert text.startswith("tok0 tok1 tok2  Sources: ")
    assert text[annotation["start_index"]] == "["


# --- failures, late errors, incomplete ---------------------------------------------------


def test_late_error_event_after_output_started() -> None:
    events = run("one two three four fake:late_error")
    assert types(events)[-3:] == ["response.output_text.delta"] * 2 + ["error"]
    assert events[-1] == {"type": "error", "sequence_number": len(events) - 1,
                          "code": "server_error", "message": FAILURES["server_error"],
                          "param": None}
    coded = run("one two three fake:late_error=rate_limit_exceeded")
    assert coded[-1]["code"] == "rate_limit_exceeded"
    assert "try again in" in coded[-1]["message"]


@pytest.mark.parametrize("code", ["context_length_exceeded", "rate_limit_exceeded",
                                  "invalid_prompt", "server_is_overloaded"])
def test_failure_codes_fail_before_any_output(code: str) -> None:
    events = run(f"long prompt fake:fail={code}")
    assert types(events) == ["response.created", "response.in_progress", "response.failed"]
    response = events[-1]["response"]
    assert response["error"] == {"code": code, "message": FAILURES[code]}
    assert response["output"] == [] and response["usage"] is None


def test_fail_with_server_error_is_the_default() -> None:
    assert run("a b c d fake:fail=server_error") == run("a b c d fake:fail")


@pytest.mark.parametrize("directive", ["fake:fail=oops", "fake:late_error=x",
                                       "fake:incomplete=length", "fake:usage_limit=soon",
                                       "fake:input="])
def test_bad_codes_are_directive_errors(directive: str) -> None:
    assert directive in detail(post(FakeCodex(), payload(f"x {directive}")))


@pytest.mark.parametrize("reason", ["max_output_tokens", "content_filter"])
def test_incomplete_reasons(reason: str) -> None:
    events = run(f"a b fake:incomplete={reason}")
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": reason}
    assert done_items(events)[0]["status"] == "incomplete"


# --- 429 usage-limit variants --------------------------------------------------------------


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def limit_reply(variant: str) -> Any:
    return post(FakeCodex(clock=Clock()), payload(f"x fake:usage_limit={variant}"))


def windows(reply: Any) -> dict[str, bytes]:
    found = {name.decode(): value for name, value in reply.headers
             if name.startswith(b"x-codex-")}
    assert len(found) == 6, reply.headers
    return found


def test_usage_limit_resets_in_is_the_plain_429() -> None:
    reply = limit_reply("resets_in")
    assert reply.status == 429 and header(reply, b"retry-after") == b"120"
    assert error_body(reply)["error"]["resets_in_seconds"] == 120
    assert windows(reply)["x-codex-primary-used-percent"] == b"100.0"


def test_usage_limit_resets_at() -> None:
    reply = limit_reply("resets_at")
    error = error_body(reply)["error"]
    assert reply.status == 429 and error["type"] == "usage_limit_reached"
    assert error["resets_at"] == int(Clock.now) + 1800
    assert "resets_in_seconds" not in error
    assert not [v for k, v in reply.headers if k == b"retry-after"]
    assert windows(reply)["x-codex-primary-reset-after-seconds"] == b"1800"


def test_usage_not_included() -> None:
    reply = limit_reply("not_included")
    assert reply.status == 429
    assert error_body(reply) == {"error": {"type": "usage_not_included", "plan_type": "free"}}
    assert not [v for k, v in reply.headers if k == b"retry-after"]


@pytest.mark.parametrize(("variant", "body"), [("headers_only", b""),
                                               ("plain", b"Too Many Requests\n")])
def test_usage_limit_told_by_headers_only(variant: str, body: bytes) -> None:
    reply = limit_reply(variant)
    assert reply.status == 429 and reply.body == body
    assert header(reply, b"content-type").startswith(b"text/plain")
    found = windows(reply)
    assert found["x-codex-secondary-used-percent"] == b"100.0"
    assert found["x-codex-secondary-reset-after-seconds"] == b"345600"
    assert found["x-codex-primary-used-percent"] == b"35.0"


def test_a_usage_limit_wins_over_other_directives() -> None:
    reply = post(FakeCodex(), payload("fake:deltas=5 fake:usage_limit=plain fake:fail"))
    assert reply.status == 429 and reply.chunks is None
