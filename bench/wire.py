"""HTTP/1.1 on raw sockets for the bench's load generator: requests built by hand,
responses parsed with as little work as possible.

Nothing is JSON-decoded: a response's head is split at its CRLFs, chunked framing
is undone, and a content delta is one occurrence of its dialect's needle in the
de-chunked body (`DIALECTS`): for chat `"delta":{"content":`, which the role
chunk (`"delta":{"role":...}`) and the finish chunk do not match; for the
Responses API (and the fake backend's own stream, `raw`)
`"type":"response.output_text.delta"`; for Ollama's `/api/chat` `"done":false`
(every line but the last); for Anthropic's Messages API `"type":"text_delta"`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

RECEIVE_SIZE = 65536
DELTA = b'"delta":{"content":'
DONE = b"data: [DONE]"
FAKE_COMPLETED = b"event: response.completed"
RESPONSES_DELTA = b'"type":"response.output_text.delta"'
RESPONSES_COMPLETED = b"event: response.completed"
OLLAMA_DELTA = b'"done":false'
OLLAMA_DONE = b'"done":true'
ANTHROPIC_DELTA = b'"type":"text_delta"'
ANTHROPIC_STOP = b"event: message_stop"
CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
OLLAMA_CHAT_PATH = "/api/chat"
MESSAGES_PATH = "/v1/messages"
ANTHROPIC_HEADERS = (("anthropic-version", "2023-06-01"), ("x-api-key", "x"))
FAKE_PATH = "/backend-api/codex/responses"


class ProtocolError(Exception):
    """The peer closed early or sent something this parser does not accept."""


# --- requests ---------------------------------------------------------------


def build_request(host: str, port: int, path: str, body: dict[str, Any],
                  headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A complete HTTP/1.1 POST with a JSON body, ready for `send_all`."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}",
             "content-type: application/json", f"content-length: {len(payload)}",
             *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def chat_body(text: str, stream: bool, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return body


def fake_body(text: str, model: str) -> dict[str, Any]:
    message = {"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": text}]}
    return {"model": model, "input": [message], "stream": True, "store": False}


# What every Codex client sends and the fake backend requires (chatmock.testing.credentials).
FAKE_HEADERS = (("authorization", "Bearer x"), ("chatgpt-account-id", "acc"),
                ("originator", "codex_cli_rs"), ("user-agent", "codex_cli_rs/0.169.0 bench"),
                ("session-id", "00000000-0000-4000-8000-00000000feed"))


def responses_body(text: str, model: str) -> dict[str, Any]:
    return {"model": model, "input": text, "stream": True}


def ollama_body(text: str, model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": True}


def anthropic_body(text: str, model: str) -> dict[str, Any]:
    """Claude Code's shape; `claude-sonnet-5` maps to a GPT model (`--model` is ignored)."""
    return {"model": "claude-sonnet-5", "max_tokens": 64000, "stream": True,
            "messages": [{"role": "user", "content": text}]}


def with_history(body: dict[str, Any], kib: int) -> dict[str, Any]:
    """`body` with about `kib` KiB of earlier turns before its message: an agent's request
    carries its whole conversation, which a server may keep for as long as the stream."""
    turns = [("user" if number % 2 == 0 else "assistant",
              f"turn {number}: " + "lorem ipsum " * 84) for number in range(max(kib, 0))]
    if "messages" in body:
        messages = [{"role": role, "content": text} for role, text in turns]
        return {**body, "messages": messages + body["messages"]}
    items = [{"type": "message", "role": role, "content": [
        {"type": "input_text" if role == "user" else "output_text", "text": text}]}
        for role, text in turns]
    last = body["input"]  # a Responses input: a string is one user message
    last = [{"role": "user", "content": last}] if isinstance(last, str) else last
    return {**body, "input": items + last}


@dataclass(frozen=True)
class Dialect:
    """How to ask one API for a streamed answer and how to count what comes back."""

    path: str
    body: Callable[[str, str], dict[str, Any]]
    """(prompt text, model) -> the JSON body of a streamed request."""
    delta: bytes
    """Occurs once per content delta in the de-chunked body, and nowhere else."""
    end: bytes
    """Occurs exactly once in a complete answer: its successful end."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers the API wants."""


DIALECTS = {
    "chat": Dialect(CHAT_PATH, lambda text, model: chat_body(text, True, model), DELTA, DONE),
    "responses": Dialect(RESPONSES_PATH, responses_body, RESPONSES_DELTA, RESPONSES_COMPLETED),
    # Every NDJSON line before the final `"done":true` one carries one content delta.
    "ollama": Dialect(OLLAMA_CHAT_PATH, ollama_body, OLLAMA_DELTA, OLLAMA_DONE),
    "anthropic": Dialect(MESSAGES_PATH, anthropic_body, ANTHROPIC_DELTA, ANTHROPIC_STOP,
                         ANTHROPIC_HEADERS),
    # The fake backend's own protocol, for a byte relay (nginx) that translates nothing.
    "raw": Dialect(FAKE_PATH, fake_body, RESPONSES_DELTA, FAKE_COMPLETED, FAKE_HEADERS),
}


# --- responses --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    chunked: bool
    length: int | None
    keep_alive: bool


class Tally:
    """Counts a pattern across pieces of a byte stream, even when a piece splits it."""

    __slots__ = ("carry", "count", "needle")

    def __init__(self, needle: bytes) -> None:
        self.needle = needle
        self.carry = b""
        self.count = 0

    def feed(self, data: bytes) -> None:
        keep = len(self.needle) - 1
        straddle = self.carry + data[:keep]
        self.count += data.count(self.needle) + straddle.count(self.needle)
        self.carry = (self.carry + data)[-keep:] if len(data) < keep else data[-keep:]


class Connection:
    """One keep-alive client connection: write raw requests, read responses."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.received = 0

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(await trio.open_tcp_stream(host, port))

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)

    async def _fill(self) -> None:
        data = await self.stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise ProtocolError("connection closed by peer")
        self.received += len(data)
        self.buf += data

    async def read_head(self) -> Head:
        searched = 0
        while (end := self.buf.find(b"\r\n\r\n", searched)) < 0:
            searched = max(0, len(self.buf) - 3)
            await self._fill()
        head = parse_head(bytes(self.buf[:end]))
        del self.buf[: end + 4]
        return head

    async def read_body(self, head: Head, sink: Callable[[bytes], None]) -> None:
        """Hand the de-chunked body to `sink`, about one call per network read."""
        if head.chunked:
            await self._read_chunked(sink)
        elif head.length is not None:
            await self._read_length(head.length, sink)
        else:
            raise ProtocolError("response without length or chunked framing")

    async def _read_length(self, length: int, sink: Callable[[bytes], None]) -> None:
        while len(self.buf) < length:
            await self._fill()
        sink(bytes(self.buf[:length]))
        del self.buf[:length]

    async def _read_chunked(self, sink: Callable[[bytes], None]) -> None:
        buf = self.buf
        while True:
            parts, used, finished = parse_chunks(buf)
            if parts:
                sink(b"".join(parts))
            del buf[:used]
            if finished:
                return
            await self._fill()


def parse_head(raw: bytes) -> Head:
    """A response head without its final blank line."""
    lines = raw.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ProtocolError(f"bad status line {lines[0][:80]!r}") from None
    headers = dict(parse_header(line) for line in lines[1:])
    chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
    length = None if chunked else int(headers.get(b"content-length", b"-1"))
    keep_alive = headers.get(b"connection", b"").lower() != b"close"
    return Head(status, chunked, None if length == -1 else length, keep_alive)


def parse_header(line: bytes) -> tuple[bytes, bytes]:
    name, _, value = line.partition(b":")
    return name.strip().lower(), value.strip()


def parse_chunks(buf: bytearray) -> tuple[list[bytes], int, bool]:
    """Complete chunks at the front of `buf`: (data pieces, bytes used, last chunk seen)."""
    parts: list[bytes] = []
    pos = 0
    while (eol := buf.find(b"\r\n", pos)) >= 0:
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # no trailers: the CRLFs are adjacent
            return (parts, end + 4, True) if end >= 0 else (parts, pos, False)
        start = eol + 2
        if len(buf) < start + size + 2:
            break
        parts.append(bytes(buf[start : start + size]))
        pos = start + size + 2
    return parts, pos, False


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "timeout"
    if isinstance(exc, ProtocolError):
        return "closed_early"
    if isinstance(exc, OSError | trio.BrokenResourceError):
        return "socket_error"
    return type(exc).__name__


# --- figures --------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_ms(samples: Sequence[float]) -> dict[str, float]:
    values = sorted(s * 1000 for s in samples)
    if not values:
        return {}
    return {"p50": round(percentile(values, 0.50), 3), "p90": round(percentile(values, 0.90), 3),
            "p99": round(percentile(values, 0.99), 3), "min": round(values[0], 3),
            "max": round(values[-1], 3), "mean": round(sum(values) / len(values), 3)}


