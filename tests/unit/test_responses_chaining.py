"""`previous_response_id` in dialects/responses.py: the stored turn put back in front of
the new input (once), instructions inherited, a result whose call is found nowhere
refused, and what a finished turn keeps. Plain data in and out: the store's answer is
built here, as a route hands it."""

from __future__ import annotations

from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.dialects.options import Options
from chatmock.dialects.responses import (
    ResponsesRequest,
    parse_responses_request,
    replayable,
    stored_turn,
)
from chatmock.errors import ClientError
from chatmock.turns import StoreAnswer, StoredResponse

Item = dict[str, Any]


def user(text: str) -> Item:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def said(text: str) -> Item:
    return {"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]}


CALL = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
RESULT = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
FIRST = user("first")
ANSWER = said("answer")
STORED = StoredResponse("resp_1", "Be brief.", [FIRST], [ANSWER, CALL], 0.0)


def chain(*items: Item, stored: StoredResponse | None = STORED, **fields: Any) -> ResponsesRequest:
    body = {"model": "gpt-5.4", "previous_response_id": "resp_1", "input": list(items),
            **fields}
    return parse_responses_request(body, Catalog(), Options(), StoreAnswer(stored))


def test_the_stored_turn_goes_in_front_of_the_new_input() -> None:
    parsed = chain(RESULT)
    assert parsed.payload["input"] == [FIRST, ANSWER, CALL, RESULT]
    assert "previous_response_id" not in parsed.payload
    assert list(parsed.context) == parsed.payload["input"]


@pytest.mark.parametrize("resent", [[FIRST, ANSWER, CALL], [ANSWER, CALL]],
                         ids=["the whole history", "the previous output"])
def test_a_resent_history_is_not_doubled(resent: list[Item]) -> None:
    assert chain(*resent, RESULT).payload["input"] == [FIRST, ANSWER, CALL, RESULT]


def test_instructions_are_inherited_unless_the_request_has_its_own() -> None:
    assert chain(RESULT).payload["instructions"] == "Be brief."
    assert chain(RESULT, instructions="Be long.").payload["instructions"] == "Be long."
    plain = StoredResponse("resp_1", None, [FIRST], [ANSWER], 0.0)
    assert "instructions" not in chain(user("next"), stored=plain).payload


def test_a_partial_resend_is_not_recognised_and_gets_the_history_in_front() -> None:
    """Only the whole history or the whole previous output count as resent."""
    parsed = chain(FIRST, ANSWER, RESULT)
    assert parsed.payload["input"] == [FIRST, ANSWER, CALL, FIRST, ANSWER, RESULT]


def test_a_result_for_a_call_found_nowhere_is_a_400_naming_it() -> None:
    stray = {**RESULT, "call_id": "call_9"}
    with pytest.raises(ClientError) as caught:
        chain(stray)
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400, "tool_call_not_found", "input")
    assert "call_9" in caught.value.message and "resp_1" in caught.value.message


def test_an_unknown_turn_is_a_400_naming_the_id() -> None:
    with pytest.raises(ClientError) as caught:
        chain(user("x"), stored=None)
    assert caught.value.param == "previous_response_id" and "resp_1" in caught.value.message


def test_a_finished_turn_keeps_what_the_next_can_replay() -> None:
    parsed = chain(RESULT)
    output = [said("done") | {"status": "completed"},
              {"type": "reasoning", "id": "rs_1", "summary": []},  # no encrypted content
              {"type": "reasoning", "id": "rs_2", "encrypted_content": "blob", "summary": []},
              {"type": "web_search_call", "id": "ws_1", "status": "completed"}]
    turn = stored_turn("resp_2", parsed, output, 5.0)
    assert turn.context == [FIRST, ANSWER, CALL, RESULT]
    assert turn.output == [said("done"), output[2]]
    assert (turn.response_id, turn.instructions, turn.created_at) == ("resp_2", "Be brief.", 5.0)


def test_replayable_drops_only_what_cannot_be_sent_back() -> None:
    assert replayable([CALL, RESULT, ANSWER]) == [CALL, RESULT, ANSWER]
    assert replayable([{"type": "reasoning", "summary": []}]) == []
