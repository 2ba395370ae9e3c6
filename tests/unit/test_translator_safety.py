"""Whatever bytes the backend sends, the chat stream chatmock writes stays valid JSON."""

from __future__ import annotations

import json

import pytest

from chatmock.dialects.chat_stream import ChatStreamTranslator


def delta_event(raw_delta: bytes) -> bytes:
    return (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            b'"item_id":"m","delta":"' + raw_delta + b'"}\n\n')


def payloads(chunks: list[bytes]) -> list[object]:
    translator = ChatStreamTranslator(model="m", created=1, compat="think-tags",
                                      include_usage=False)
    out = b"".join(translator.feed(chunk) for chunk in chunks) + translator.finish()
    lines = [line[6:] for line in out.split(b"\n") if line.startswith(b"data: ")]
    return [json.loads(line) for line in lines if line != b"[DONE]"]


@pytest.mark.parametrize("raw", [b"\x80bad utf-8", b"tab\there", b"bad \\x escape",
                                 b"short \\u12", b"ends in \\"])
def test_unsafe_deltas_never_reach_the_client_raw(raw: bytes) -> None:
    parsed = payloads([delta_event(b"fine"), delta_event(raw)])
    contents = [p["choices"][0]["delta"].get("content") for p in parsed  # type: ignore[index]
                if "choices" in p]  # type: ignore[operator]
    assert "fine" in contents


def test_valid_escapes_and_unicode_are_copied() -> None:
    parsed = payloads([delta_event(b'a \\"quote\\", \\\\ and \\u00e9 and \xc3\xa9')])
    assert parsed[1]["choices"][0]["delta"]["content"] == 'a "quote", \\ and é and é'  # type: ignore[index]


def test_an_unsafe_first_half_keeps_the_event_on_the_careful_path() -> None:
    event = delta_event(b"x\x01y")
    completed = (b'event: response.completed\ndata: {"type":"response.completed",'
                 b'"response":{"id":"r"}}\n\n')
    parsed = payloads([delta_event(b"ok") + event[:-10], event[-10:] + completed])
    contents = [p["choices"][0]["delta"].get("content") for p in parsed  # type: ignore[index]
                if p.get("choices")]  # type: ignore[attr-defined]
    assert "ok" in contents and not any("\x01" in (c or "") for c in contents)
