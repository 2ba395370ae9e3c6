"""The fake backend refuses replayed items it cannot find, foreign encrypted content and
tool names the real backend refuses (chatmock.testing.fake_replay, fake_mint)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from chatmock.testing.fake_codex import FakeCodex, FakeReply
from chatmock.testing.fake_mint import encrypted_reasoning, minted_here
from tests.unit.test_fake_codex import payload, post, user

NOT_PERSISTED = ("Items are not persisted when `store` is set to false. Try again with `store` "
                 "set to true, or remove this item from your input.")


def error_of(reply: FakeReply) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(reply.body)["error"]
    assert error["type"] == "invalid_request_error"
    return error


def send(*items: Any, **fields: Any) -> FakeReply:
    return post(FakeCodex(), payload(input=[user("q"), *items], **fields))


def test_an_item_reference_is_not_found() -> None:
    reply = send({"type": "item_reference", "id": "msg_7"})
    assert reply.status == 404
    error = error_of(reply)
    assert error["message"] == f"Item with id 'msg_7' not found. {NOT_PERSISTED}"
    assert error["param"] == "input" and error["code"] is None


@pytest.mark.parametrize("content", [None, "", "absent"])
def test_reasoning_with_an_id_but_no_encrypted_content_is_not_found(content: Any) -> None:
    item: dict[str, Any] = {"type": "reasoning", "id": "rs_3", "summary": []}
    if content != "absent":
        item["encrypted_content"] = content
    reply = send(item)
    assert reply.status == 404
    assert error_of(reply)["message"].startswith("Item with id 'rs_3' not found.")


def test_reasoning_without_id_or_content_passes_and_ids_of_calls_are_fine() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f",
            "arguments": "{}"}
    output = {"type": "function_call_output", "id": "fco_1", "call_id": "c1", "output": "x"}
    message = {"type": "message", "id": "msg_1", "role": "assistant",
               "content": [{"type": "output_text", "text": "a"}]}
    assert send({"type": "reasoning", "summary": []}, message, call, output).status == 200


def test_encrypted_content_minted_here_passes_with_or_without_its_id() -> None:
    content = encrypted_reasoning("rs_9", "acct-1")
    assert minted_here(content, "acct-1")
    assert send({"type": "reasoning", "id": "rs_9", "summary": [],
                 "encrypted_content": content}).status == 200
    assert send({"type": "reasoning", "summary": [], "encrypted_content": content}).status == 200


@pytest.mark.parametrize("content", [
    "gAAAA-made-up", "EqQBCkgIARABGAIiQL8anthropic-signature", encrypted_reasoning("rs_1")[:-4],
    encrypted_reasoning("rs_1") + "AAAA", "gAAAAB!!!"],
    ids=["made-up", "anthropic", "cut-short", "lengthened", "not-base64"])
def test_foreign_encrypted_content_is_refused(content: str) -> None:
    reply = send({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": content})
    assert reply.status == 400
    error = error_of(reply)
    assert error["code"] == "invalid_encrypted_content"
    assert error["message"] == ("The encrypted content for item rs_1 could not be verified. "
                                "Reason: Encrypted content could not be decrypted or parsed.")


def test_foreign_content_without_an_item_id_is_named_abridged() -> None:
    reply = send({"type": "reasoning", "summary": [], "encrypted_content": "gAAAAforeign1234"})
    assert "The encrypted content gAAA...1234 could not be verified." in error_of(reply)["message"]


def test_content_another_fake_process_minted_is_foreign() -> None:
    code = ("from chatmock.testing.fake_mint import encrypted_reasoning as e; "
            "print(e('rs_1'))")
    other = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True).stdout.strip()
    assert other != encrypted_reasoning("rs_1") and not minted_here(other)


def tool(name: str, kind: str = "function") -> dict[str, Any]:
    return {"type": kind, "name": name, "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("name", ["get_weather", "a" * 64, "Read-File_2"])
def test_valid_tool_names_pass(name: str) -> None:
    assert send(tools=[tool(name)]).status == 200


def test_a_tool_name_over_64_characters_is_refused() -> None:
    name = "mcp__claude_ai_server__" + "x" * 50
    reply = send(tools=[tool("ok"), tool(name)])
    assert reply.status == 400
    error = error_of(reply)
    assert error["message"] == ("Invalid 'tools[1].name': string too long. Expected a string "
                                f"with maximum length 64, but got a string with length "
                                f"{len(name)} instead.")
    assert (error["param"], error["code"]) == ("tools[1].name", "string_above_max_length")


@pytest.mark.parametrize("name", ["get.weather", "ns/tool", "with space", "ünï"])
def test_a_tool_name_outside_the_pattern_is_refused(name: str) -> None:
    error = error_of(send(tools=[tool(name, "custom")]))
    assert error["message"] == ("Invalid 'tools[0].name': string does not match pattern. "
                                "Expected a string that matches the pattern "
                                "'^[a-zA-Z0-9_-]+$'.")
    assert error["code"] == "invalid_value"


def test_replayed_calls_with_refused_names_are_refused_too() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "fs.read", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": "x"}
    reply = send(call, output)
    assert reply.status == 400 and error_of(reply)["param"] == "input[1].name"


def test_encrypted_content_of_another_account_is_refused() -> None:
    mine = encrypted_reasoning("rs_3", "acct-1")
    theirs = encrypted_reasoning("rs_3", "acct-2")
    assert minted_here(mine, "acct-1") and not minted_here(theirs, "acct-1")
    reply = send({"type": "reasoning", "summary": [], "encrypted_content": theirs})
    assert reply.status == 400
    assert error_of(reply)["code"] == "invalid_encrypted_content"
