"""The SSE stream of one fake Qwen web completion (providers.md §3.5).

    data: {"response.created":{"chat_id":C,"parent_id":U,"response_id":R,"response_index":"0"}}
    [data: {"response.info":{"action":"keep_alive",...}}]        (a slow first answer)
    data: {"choices":[{"delta":{..."phase":"think"|"thinking_summary"...}}],...}
    data: {"choices":[{"delta":{"content":"...","phase":"answer","status":"typing"}}],
           "response_id":R,"usage":{...cumulative...},"timestamp":...}
    data: {"choices":[{"delta":{"content":"","role":"assistant","status":"finished",
           "phase":"answer"}}],"response_id":R}
    [data: [DONE]]

Reasoning (`fake:reasoning=N` with `feature_config.thinking_enabled`) comes as
the `think` phase (`thinking_format: "detail"`: text in `content`) or the
`thinking_summary` phase (`"summary"`: `content` empty, the text in
`extra.summary_thought.content`, a cumulative snapshot), each closed by a
`status: "finished"` delta. Without `output_schema: "phase"` deltas carry no
`phase`. Without `incremental_output: true` each answer delta repeats the
whole text so far. There is never a `finish_reason`.

Errors in the stream are `{"error":{"code":...,"details":...},"response_id":R}`
lines, after which the stream ends: `fake:error_event` (RateLimited, before any
content), `fake:fail` (Internal_Server_Error after two answer deltas),
`fake:error=429` / `=500` / `=503` (Too_Many_Requests / Internal_Server_Error /
Server_Busy, before content). `fake:cut` stops after two answer deltas.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from itertools import islice

from chatmock.testing.fake_events import (
    JSON,
    TRUNCATE_AFTER,
    Scenario,
    answer_deltas,
    dump_json,
)
from chatmock.testing.fake_events import _paced as paced  # the Codex fake's pacing rules

STREAM_ERRORS = {429: "Too_Many_Requests", 500: "Internal_Server_Error", 503: "Server_Busy"}


@dataclass(frozen=True, slots=True)
class QwenSeed:
    """What is fixed before the stream starts."""

    chat_id: str
    parent_id: str
    response_id: str
    created: int
    input_tokens: int
    phases: bool
    incremental: bool
    thinking: str | None
    """None (no reasoning), "detail" (think phase) or "summary" (thinking_summary)."""
    done_marker: bool


def event(value: JSON) -> bytes:
    return b"data: " + dump_json(value) + b"\n\n"


class QwenAnswer:
    """One completion's stream; `on_end` runs once when it stops, however it stops."""

    def __init__(self, scenario: Scenario, seed: QwenSeed, stopped: Callable[[], bool],
                 on_end: Callable[[], None]) -> None:
        self.scenario = scenario
        self.seed = seed
        self.stopped = stopped
        self.on_end = on_end
        self.output_tokens = 0
        self.reasoning_tokens = 0
        self.text = ""

    def chunks(self) -> Iterator[tuple[float, bytes]]:
        return paced(self._guarded(), self.scenario)

    def _guarded(self) -> Iterator[bytes]:
        try:
            yield from self._frames()
        finally:
            self.on_end()

    def _frames(self) -> Iterator[bytes]:
        seed, scenario = self.seed, self.scenario
        if scenario.ending == "empty":
            return
        yield event({"response.created": {"chat_id": seed.chat_id, "parent_id": seed.parent_id,
                                          "response_id": seed.response_id,
                                          "response_index": "0"}})
        if scenario.first_delay_ms > 0:
            yield event({"response.info": {"action": "keep_alive",
                                           "response_id": seed.response_id}})
        chosen = STREAM_ERRORS.get(scenario.error or 0)
        if chosen or scenario.ending == "error_event":
            yield self._error(chosen or "RateLimited", "Too many requests, slow down (fake).")
            return
        if seed.thinking is not None and scenario.reasoning:
            yield from self._thinking(seed.thinking)
        if not (yield from self._answer()):
            return
        yield event({"choices": [{"delta": self._delta("", "answer", "finished")}],
                     "response_id": seed.response_id})
        if seed.done_marker:
            yield b"data: [DONE]\n\n"

    def _thinking(self, form: str) -> Iterator[bytes]:
        phase = "think" if form == "detail" else "thinking_summary"
        thoughts: list[str] = []
        for index in range(self.scenario.reasoning or 0):
            piece = f"thought {index} "
            thoughts.append(piece)
            self.output_tokens += 1
            self.reasoning_tokens += 1
            yield self._chunk(self._thought(phase, piece, thoughts, "typing"))
        yield self._chunk(self._thought(phase, "", thoughts, "finished"))

    def _thought(self, phase: str, piece: str, thoughts: list[str], status: str) -> JSON:
        if phase == "think":
            return self._delta(piece, phase, status)
        delta = self._delta("", phase, status)
        delta["extra"] = {"summary_title": {"content": ["Thinking it over"]},
                          "summary_thought": {"content": list(thoughts)}}
        return delta

    def _answer(self) -> Generator[bytes, None, bool]:
        """Answer deltas; False when the stream ends inside them."""
        truncated = self.scenario.ending in ("cut", "fail")
        deltas = answer_deltas(self.scenario)
        for piece in islice(deltas, TRUNCATE_AFTER) if truncated else deltas:
            if self.stopped():
                return True
            self.text += piece
            self.output_tokens += 1
            shown = piece if self.seed.incremental else self.text
            yield self._chunk(self._delta(shown, "answer", "typing"))
        if self.scenario.ending == "fail":
            yield self._error("Internal_Server_Error", "The model failed this answer (fake).")
        return not truncated

    def _delta(self, content: str, phase: str, status: str) -> JSON:
        delta: JSON = {"role": "assistant", "content": content, "phase": phase,
                       "status": status}
        if not self.seed.phases:
            del delta["phase"]
        return delta

    def _chunk(self, delta: JSON) -> bytes:
        return event({"choices": [{"delta": delta}], "response_id": self.seed.response_id,
                      "usage": self.usage(), "timestamp": self.seed.created})

    def _error(self, code: str, details: str) -> bytes:
        return event({"error": {"code": code, "details": details},
                      "response_id": self.seed.response_id})

    def usage(self) -> JSON:
        tokens_in, tokens_out = self.seed.input_tokens, self.output_tokens
        return {"input_tokens": tokens_in, "output_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out, "characters": 0,
                "input_tokens_details": {"text_tokens": tokens_in},
                "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens,
                                          "text_tokens": tokens_out - self.reasoning_tokens},
                "prompt_tokens_details": {"cached_tokens": 0}}
