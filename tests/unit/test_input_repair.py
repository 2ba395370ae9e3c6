"""Repairs of a Responses client's input (chatmock.dialects.input_repair) and how
`parse_responses_request` applies them, checked against the fake backend's rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.dialects.input_repair import restore_items, store_query
from chatmock.dialects.options import Options
from chatmock.dialects.responses import parse_responses_request, replayable
from chatmock.errors import ClientError
from chatmock.testing.fake_codex import FakeCodex
from chatmock.testing.fake_mint import encrypted_reasoning
from chatmock.turns import StoreAnswer, StoredResponse, StoreQuery

from .helpers import AUTH, RESPONSES_PATH, accepted_upstream

USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
AGAIN = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "again"}]}
STORED_RS = {"type": "reasoning", "id": "rs_1", "summary": [],
             "encrypted_content": encrypted_reasoning("rs_1", "acc")}
STRIPPED_RS: dict[str, Any] = {"type": "reasoning", "id": "rs_1", "summary": [],
                               "encrypted_content": None}
MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant",
           "content": [{"type": "output_text", "text": "hello"}]}
CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
        "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "ok"}
REFERENCE = {"type": "item_reference", "id": "msg_1"}


def parse(body: dict[str, Any], stored: StoreAnswer | None = None) -> Any:
    return parse_responses_request({"model": "gpt-5.4", **body}, Catalog(), Options(), stored)


def test_the_query_names_only_what_the_store_must_supply() -> None:
    assert store_query({"input": "hi"}) == StoreQuery()
    assert not store_query("not an object") and not store_query({"input": 5})
    body = {"previous_response_id": "resp_1", "input": [
        USER, STRIPPED_RS, {**STRIPPED_RS, "id": "rs_2", "encrypted_content": ""},
        {"type": "reasoning", "id": "rs_3", "summary": []}, STORED_RS, REFERENCE, REFERENCE,
        MESSAGE, CALL, OUTPUT, {"type": "reasoning", "summary": []}, "junk"]}
    assert store_query(body) == StoreQuery("resp_1", ("rs_1", "rs_2", "rs_3", "msg_1"))
    assert store_query({"input": REFERENCE}).item_ids == ("msg_1",)


@pytest.mark.parametrize(("previous", "code"), [("", "invalid_previous_response_id"),
                                              (5, "invalid_type"), (["resp_1"], "invalid_type")])
def test_a_bad_previous_response_id_is_a_400(previous: Any, code: str) -> None:
    with pytest.raises(ClientError) as caught:
        store_query({"previous_response_id": previous})
    assert (caught.value.code, caught.value.param) == (code, "previous_response_id")


def test_reasoning_without_content_is_restored_from_the_store() -> None:
    items, dropped = restore_items([USER, STRIPPED_RS, MESSAGE], {"rs_1": STORED_RS})
    assert items == [USER, STORED_RS, MESSAGE] and dropped == []


def test_reasoning_the_store_lacks_is_dropped() -> None:
    no_id = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]}
    not_usable = {**STORED_RS, "encrypted_content": ""}  # found, but nothing to restore
    items, dropped = restore_items([USER, STRIPPED_RS, no_id, MESSAGE], {"rs_1": not_usable})
    assert items == [USER, MESSAGE] and dropped == ["rs_1", "(no id)"]


def test_item_references_are_expanded_or_refused() -> None:
    items, _ = restore_items([USER, REFERENCE, AGAIN], {"msg_1": MESSAGE})
    assert items == [USER, MESSAGE, AGAIN]
    with pytest.raises(ClientError) as caught:
        restore_items([USER, {"type": "item_reference", "id": "msg_gone"}], {})
    assert caught.value.status == 400 and caught.value.code == "item_not_found"
    assert "msg_gone" in caught.value.message


def test_other_items_pass_untouched_and_unrepaired_input_is_the_same_list() -> None:
    items: list[dict[str, Any]] = [USER, STORED_RS, MESSAGE, CALL, OUTPUT]
    repaired, dropped = restore_items(items, {})
    assert repaired is items and dropped == []


def test_parse_repairs_before_sending_and_reports_what_it_dropped() -> None:
    gone = {**STRIPPED_RS, "id": "rs_gone"}
    parsed = parse({"input": [USER, STRIPPED_RS, gone, REFERENCE, CALL, OUTPUT, AGAIN]},
                   StoreAnswer(items={"rs_1": STORED_RS, "msg_1": MESSAGE}))
    assert parsed.payload["input"] == [USER, STORED_RS, MESSAGE, CALL, OUTPUT, AGAIN]
    assert parsed.dropped == ("rs_gone",)
    accepted_upstream(parsed.payload)


@pytest.mark.parametrize("item", [STRIPPED_RS, REFERENCE])
def test_unrepaired_items_are_what_the_fake_backend_refuses(item: dict[str, Any]) -> None:
    """The other half of the proof: sent as the client wrote them, the backend 404s."""
    body = {"model": "gpt-5.4", "stream": True, "store": False, "input": [USER, item, AGAIN]}
    reply = FakeCodex().handle("POST", RESPONSES_PATH, AUTH, json.dumps(body).encode())
    assert reply.status == 404


def turn(context: list[dict[str, Any]], *output: dict[str, Any]) -> StoredResponse:
    return StoredResponse("resp_1", None, context, list(replayable(list(output))), 0.0)


@pytest.mark.parametrize("resent", [
    [],  # only the new items, as `previous_response_id` means
    [USER, STORED_RS, MESSAGE],  # everything again
    [STORED_RS, MESSAGE],  # the previous output appended (client replays response.output)
    [STRIPPED_RS, {**MESSAGE, "status": "completed"}],  # ... without the encrypted content
])
def test_chaining_sends_the_history_once(resent: list[dict[str, Any]]) -> None:
    stored = StoreAnswer(turn([USER], STORED_RS, MESSAGE), {"rs_1": STORED_RS})
    parsed = parse({"previous_response_id": "resp_1", "input": [*resent, AGAIN]}, stored)
    sent = parsed.payload["input"]  # the client's own copies are kept as it sent them
    assert len(sent) == 4 and replayable(sent) == [USER, STORED_RS, MESSAGE, AGAIN]
    accepted_upstream(parsed.payload)


def test_an_unknown_previous_response_is_a_400() -> None:
    with pytest.raises(ClientError) as caught:
        parse({"previous_response_id": "resp_gone", "input": "x"}, StoreAnswer())
    assert caught.value.code == "previous_response_not_found"
