"""Tool names the backend refuses, through the official clients: Claude Code's long
`mcp__…` names on `/v1/messages`, a dotted name on chat completions and `/v1/responses`.

The fake backend refuses names over 64 characters or outside `^[a-zA-Z0-9_-]+$`, in
`tools` and in the replayed calls, so a round trip passes only if chatmock renamed them
on the way up; the client must get its exact name back. The fake model calls the tool
the `fake:tool=` directive names, so the directive names the tool as the backend knows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from openai.types.responses import ResponseFunctionToolCall

from chatmock.dialects.tool_names import upstream_name

from .conftest import Process, last_upstream_body
from .wsclient import WSClient, done_items

MCP_NAME = "mcp__claude_ai_Atlassian_Rovo__getConfluencePageDescendantsWithAllTheirMetadata"
DOTTED = "files.read"
SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}}


def prompt(client_name: str, marker: str) -> str:
    return f'{marker} fake:tool={upstream_name(client_name)} fake:args={{"path":"a.txt"}}'


def assert_upstream_names_valid(fake: Process, marker: str) -> dict[str, Any]:
    body = last_upstream_body(fake, marker)
    names = [tool["name"] for tool in body["tools"] if "name" in tool]
    names += [item["name"] for item in body["input"] if item.get("type") == "function_call"]
    assert names and all(len(name) <= 64 and "." not in name for name in names)
    return body


@pytest.fixture(scope="module")
def claude(chatmock_server: Process) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=chatmock_server.url, api_key="sk-ant-unused",
                             max_retries=0, timeout=20) as shared:
        yield shared


@pytest.mark.parametrize("stream", [False, True])
def test_claude_code_mcp_tool_round_trip(claude: anthropic.Anthropic, fake_upstream: Process,
                                         stream: bool) -> None:
    tools: Any = [{"name": "Bash", "input_schema": SCHEMA},
                  {"name": MCP_NAME, "description": "MCP tool", "input_schema": SCHEMA}]

    def ask(messages: list[Any]) -> anthropic.types.Message:
        if stream:
            with claude.messages.stream(model="claude-opus-4-8", max_tokens=1000, tools=tools,
                                        messages=messages) as events:
                return events.get_final_message()
        return claude.messages.create(model="claude-opus-4-8", max_tokens=1000, tools=tools,
                                      messages=messages)

    marker = f"mcp round trip {stream}"
    question: list[Any] = [{"role": "user", "content": prompt(MCP_NAME, marker)}]
    first = ask(question)
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == MCP_NAME and call.input == {"path": "a.txt"}
    assert_upstream_names_valid(fake_upstream, marker)
    second = ask([*question, {"role": "assistant", "content": first.content},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                "content": "page list"}]}])
    assert second.content[0].text == f"Tool {call.id} returned: page list"  # type: ignore[union-attr]
    body = assert_upstream_names_valid(fake_upstream, "page list")
    assert [item["name"] for item in body["input"] if item.get("type") == "function_call"] == [
        upstream_name(MCP_NAME)]


@pytest.fixture(scope="module")
def openai_client(chatmock_server: Process) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{chatmock_server.url}/v1", api_key="x", max_retries=0,
                       timeout=20) as shared:
        yield shared


CHAT_TOOLS: Any = [{"type": "function",
                    "function": {"name": DOTTED, "description": "Read", "parameters": SCHEMA}}]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_dotted_tool_name(openai_client: openai.OpenAI,
                                           fake_upstream: Process, stream: bool) -> None:
    marker = f"dotted chat {stream}"
    messages: list[Any] = [{"role": "user", "content": prompt(DOTTED, marker)}]
    if stream:
        chunks = list(openai_client.chat.completions.create(
            model="gpt-5.4", messages=messages, tools=CHAT_TOOLS, stream=True,
            tool_choice={"type": "function", "function": {"name": DOTTED}}))
        parts = [part for chunk in chunks if chunk.choices
                 for part in chunk.choices[0].delta.tool_calls or []]
        name = next(part.function.name for part in parts if part.function and part.function.name)
        call_id = next(part.id for part in parts if part.id)
        arguments = "".join(part.function.arguments or "" for part in parts if part.function)
    else:
        reply = openai_client.chat.completions.create(
            model="gpt-5.4", messages=messages, tools=CHAT_TOOLS,
            tool_choice={"type": "function", "function": {"name": DOTTED}})
        tool_call: Any = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
        name, call_id, arguments = tool_call.function.name, tool_call.id, \
            tool_call.function.arguments
    assert name == DOTTED and json.loads(arguments) == {"path": "a.txt"}
    assert assert_upstream_names_valid(fake_upstream, marker)["tool_choice"]["name"] == \
        "files_read"
    follow = openai_client.chat.completions.create(model="gpt-5.4", tools=CHAT_TOOLS, messages=[
        *messages, {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": DOTTED, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": f"contents {stream}"}])
    assert follow.choices[0].message.content == f"Tool {call_id} returned: contents {stream}"


def test_responses_dotted_tool_name_streamed_and_chained(openai_client: openai.OpenAI,
                                                          fake_upstream: Process) -> None:
    tools: Any = [{"type": "function", "name": DOTTED, "parameters": SCHEMA, "strict": False}]
    events = list(openai_client.responses.create(
        model="gpt-5.4", input=prompt(DOTTED, "dotted responses"), tools=tools, stream=True))
    named = [event.item.name for event in events
             if event.type in ("response.output_item.added", "response.output_item.done")
             and event.item.type == "function_call"]
    assert named == [DOTTED, DOTTED]
    final = events[-1].response  # type: ignore[union-attr]
    assert [tool.name for tool in final.tools] == [DOTTED]  # type: ignore[union-attr]
    call = next(item for item in final.output if item.type == "function_call")
    assert isinstance(call, ResponseFunctionToolCall) and call.name == DOTTED
    result: Any = {"type": "function_call_output", "call_id": call.call_id, "output": "read it"}
    second = openai_client.responses.create(
        model="gpt-5.4", tools=tools, previous_response_id=final.id, input=[result])
    assert second.output_text == f"Tool {call.call_id} returned: read it"
    assert_upstream_names_valid(fake_upstream, "read it")


def test_responses_websocket_frames_carry_the_clients_name(chatmock_server: Process) -> None:
    tools = [{"type": "function", "name": MCP_NAME, "parameters": SCHEMA}]
    with WSClient(chatmock_server.port) as socket:
        events = socket.create(model="gpt-5.4", tools=tools,
                               input=prompt(MCP_NAME, "mcp over the socket"))
    calls = [item["name"] for item in done_items(events) if item["type"] == "function_call"]
    assert calls == [MCP_NAME]
    assert [tool["name"] for tool in events[-1]["response"]["tools"]] == [MCP_NAME]
    assert upstream_name(MCP_NAME) not in json.dumps(events)
