"""openai-python replaying `response.output` the way clients get it wrong, over HTTP and
`responses.connect()`: reasoning items without their encrypted content, `item_reference`s.

The fake backend answers both with the real backend's 404 ("Items are not persisted
when `store` is set to false"), so each test passes only if chatmock repaired the
input: the upstream request must carry the encrypted content chatmock streamed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from .conftest import Process, last_upstream_body
from .test_responses_websocket import sdk_turn

MODEL = "gpt-5.4"
# openai-python calls websockets' connect() the way websockets 17.1 deprecated.
WS_WARNING = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")
Turn = Callable[..., Any]  # create fields -> the finished Response


def user(text: str) -> Any:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def stripped(output: list[Any]) -> list[Any]:
    """`response.output` as a client that did not keep `encrypted_content` replays it."""
    for item in output:
        if item.type == "reasoning":
            assert item.encrypted_content  # chatmock always asks for it upstream
            item.encrypted_content = None
    return output


@pytest.fixture(scope="module")
def client(chatmock_server: Process) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{chatmock_server.url}/v1", api_key="x", max_retries=0,
                       timeout=20) as shared:
        yield shared


class Refused(Exception):
    """A 400 for the request: a BadRequestError over HTTP, an error frame on the socket."""


@pytest.fixture(params=["http", "websocket"])
def turn(request: pytest.FixtureRequest, client: openai.OpenAI) -> Iterator[Turn]:
    if request.param == "http":
        def over_http(**fields: Any) -> Any:
            try:
                return client.responses.create(model=MODEL, **fields)
            except openai.BadRequestError as error:
                raise Refused(error.message) from None
        yield over_http
        return
    with client.responses.connect() as connection:
        def over_socket(**fields: Any) -> Any:
            events = sdk_turn(connection, model=MODEL, **fields)
            if events[-1].type == "error":
                assert events[-1].status_code == 400  # type: ignore[attr-defined]
                raise Refused(events[-1].error.message)
            return events[-1].response  # type: ignore[union-attr]
        yield over_socket


def sent_reasoning(fake: Process, marker: str) -> list[dict[str, Any]]:
    body = last_upstream_body(fake, marker)
    return [item for item in body["input"] if item.get("type") == "reasoning"]


@WS_WARNING
def test_replayed_output_without_encrypted_content_unchained(turn: Turn,
                                                             fake_upstream: Process) -> None:
    first = turn(input=[user("think first fake:reasoning")])
    minted = next(item.encrypted_content for item in first.output if item.type == "reasoning")
    marker = f"unchained follow-up {first.id}"
    second = turn(input=[user("think first fake:reasoning"), *stripped(first.output),
                         user(marker)])
    assert second.output_text == f"Hello! You said: {marker}"
    assert [item["encrypted_content"] for item in sent_reasoning(fake_upstream, marker)] == [
        minted]


@WS_WARNING
def test_replayed_output_without_encrypted_content_chained(turn: Turn,
                                                           fake_upstream: Process) -> None:
    first = turn(input="think chained fake:reasoning")
    minted = next(item.encrypted_content for item in first.output if item.type == "reasoning")
    marker = f"chained follow-up {first.id}"
    second = turn(previous_response_id=first.id, input=[*stripped(first.output), user(marker)])
    assert second.output_text == f"Hello! You said: {marker}"
    sent = last_upstream_body(fake_upstream, marker)["input"]
    assert [item.get("type") for item in sent] == ["message", "reasoning", "message", "message"]
    assert sent[1]["encrypted_content"] == minted


@WS_WARNING
def test_reasoning_chatmock_never_streamed_is_dropped(turn: Turn, fake_upstream: Process) -> None:
    foreign: dict[str, Any] = {"type": "reasoning", "id": "rs_from_elsewhere", "summary": [],
               "encrypted_content": None}
    second = turn(input=[user("earlier"), foreign, user("after foreign reasoning")])
    assert second.output_text == "Hello! You said: after foreign reasoning"
    assert sent_reasoning(fake_upstream, "after foreign reasoning") == []


@WS_WARNING
def test_item_reference_is_expanded(turn: Turn, fake_upstream: Process) -> None:
    first = turn(input="say something to reference")
    message = next(item for item in first.output if item.type == "message")
    marker = f"after a reference {first.id}"
    second = turn(input=[user("say something to reference"),
                         {"type": "item_reference", "id": message.id}, user(marker)])
    assert second.output_text == f"Hello! You said: {marker}"
    sent = last_upstream_body(fake_upstream, marker)["input"]
    assert sent[1]["id"] == message.id and sent[1]["type"] == "message"
    assert sent[1]["content"][0]["text"] == "Hello! You said: say something to reference"


@WS_WARNING
def test_unknown_item_reference_is_a_400_naming_it(turn: Turn) -> None:
    with pytest.raises(Refused, match="msg_never_seen"):
        turn(input=[user("x"), {"type": "item_reference", "id": "msg_never_seen"}])
