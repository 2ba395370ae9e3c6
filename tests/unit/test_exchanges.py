"""The per-exchange record and the live set: what the access line and the status page read."""

from __future__ import annotations

import trio
import trio.testing

from chatmock.dialects.chat_stream import ChatStreamTranslator
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.events import TRUNCATED_MESSAGE
from chatmock.state import exchanges
from chatmock.state.exchanges import Exchange, Exchanges

from .helpers import fake_stream, frame


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def registry(**kwargs: object) -> tuple[Exchanges, Clock]:
    clock = Clock()
    return Exchanges(clock=clock, wall_clock=lambda: 1_800_000_000.0, **kwargs), clock  # type: ignore[arg-type]


def test_a_streamed_exchange_logs_its_ttfb_model_and_tokens() -> None:
    found, clock = registry()
    exchange = found.begin("POST", "/v1/chat/completions", "127.0.0.1:5000", "openai")
    exchange.note_model("gpt-5.4", {"effort": "high"})
    exchange.streaming = True
    clock.now += 0.120
    exchange.mark_first_byte()
    exchange.sent += 300
    exchange.note_outcome({"input_tokens": 15, "output_tokens": 42, "total_tokens": 57})
    clock.now += 1.412
    found.end(exchange, 200)
    assert exchange.log_fields() == {
        "client": "127.0.0.1:5000", "method": "POST", "path": "/v1/chat/completions",
        "status": 200, "duration_ms": 1532.0, "ttfb_ms": 120.0, "model": "gpt-5.4",
        "effort": "high", "dialect": "openai", "stream": True, "input_tokens": 15,
        "output_tokens": 42}
    assert found.live == {} and not found.errors


def test_an_answer_without_a_first_byte_takes_its_duration_and_unknowns_are_left_out() -> None:
    found, clock = registry()
    exchange = found.begin("GET", "/v1/models")
    clock.now += 0.0025
    found.end(exchange, 200)
    fields = exchange.log_fields()
    assert fields["ttfb_ms"] == fields["duration_ms"] == 2.5
    assert not {"model", "effort", "input_tokens", "output_tokens", "error",
                "client_gone"} & set(fields)


def test_usage_takes_integers_only() -> None:
    exchange = Exchange(1, "POST", "/x")
    exchange.note_outcome({"input_tokens": True, "output_tokens": "7"})
    assert (exchange.input_tokens, exchange.output_tokens) == (None, None)
    exchange.note_outcome(None, "")
    exchange.note_outcome(["not", "usage"])
    exchange.note_model(42, "high")
    assert (exchange.model, exchange.effort, exchange.failure) == ("", "", "")


def test_failures_enter_the_ring_redacted_newest_first_and_bounded() -> None:
    found, _ = registry(secrets=("local-token-123",), capacity=3)
    for number in range(5):
        exchange = found.begin("POST", f"/v1/models/sk-abcdefgh{number:04d}")
        exchange.failure = f"refused local-token-123 #{number}"
        found.end(exchange, 404)
    errors = found.recent_errors()
    assert [error["message"] for error in errors] == [
        "refused [redacted] #4", "refused [redacted] #3", "refused [redacted] #2"]
    assert all(error["path"] == "/v1/models/[redacted]" for error in errors)
    assert errors[0]["status"] == 404 and errors[0]["at"] == 1_800_000_000.0


def test_an_in_band_failure_of_a_200_stream_is_an_error_and_a_client_gone_is_noted() -> None:
    found, _ = registry()
    failed = found.begin("POST", "/v1/messages", dialect="anthropic")
    failed.note_outcome(None, "the backend failed the response")
    found.end(failed, 200)
    gone = found.begin("POST", "/api/chat")
    found.end(gone, 200, client_gone=True)
    assert [error["message"] for error in found.recent_errors()] == [
        "the backend failed the response"]
    assert failed.log_fields()["error"] == "the backend failed the response"
    assert gone.log_fields()["client_gone"] is True


def test_in_flight_lists_exchanges_that_reached_a_backend_until_they_end() -> None:
    found, clock = registry()
    waiting = found.begin("GET", "/status.json")
    streaming = found.begin("POST", "/v1/responses", "127.0.0.1:9", "openai")
    streaming.note_model("gpt-5.5")
    streaming.streaming, streaming.sent = True, 1234
    clock.now += 3.04
    assert found.in_flight() == [{
        "id": streaming.number, "method": "POST", "path": "/v1/responses",
        "model": "gpt-5.5", "effort": "", "dialect": "openai", "client": "127.0.0.1:9",
        "started_at": 1_800_000_000.0, "seconds": 3.0, "streaming": True, "bytes": 1234}]
    found.end(streaming, 200)
    found.end(waiting, 200)
    assert found.in_flight() == [] and found.live == {}


async def test_the_running_exchange_is_the_task_s_own() -> None:
    assert exchanges.current() is None
    exchanges.note_model("ignored")  # outside the router: nothing to note, no error
    detached = exchanges.current_or_detached()
    assert detached.number == 0

    async def serve(name: str, ready: trio.Event, seen: dict[str, str]) -> None:
        token = exchanges.enter(Exchange(1, "POST", name))
        try:
            await ready.wait()
            exchanges.note_model(name + "-model")
            found = exchanges.current()
            assert found is not None
            seen[name] = found.model
        finally:
            exchanges.leave(token)

    seen: dict[str, str] = {}
    ready = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, "a", ready, seen)
        nursery.start_soon(serve, "b", ready, seen)
        await trio.testing.wait_all_tasks_blocked()
        ready.set()
    assert seen == {"a": "a-model", "b": "b-model"}
    assert exchanges.current() is None


def test_translators_keep_the_terminal_usage_and_any_failure() -> None:
    collector = ResponseCollector()
    collector.feed(fake_stream("hello"))
    assert collector.usage["input_tokens"] > 0 and collector.usage["output_tokens"] > 0
    assert collector.failure == ""
    failed = ChatStreamTranslator(model="m", created=1, compat="think-tags",
                                  include_usage=False)
    failed.feed(frame("response.failed", {"response": {"error": {
        "code": "server_error", "message": "boom"}}}))
    assert failed.failure == "boom" and failed.usage is None
    cut = ChatStreamTranslator(model="m", created=1, compat="think-tags", include_usage=False)
    cut.feed(frame("response.created", {"response": {"id": "r"}}))
    cut.finish()
    assert cut.failure == TRUNCATED_MESSAGE
    broken = ResponseCollector()
    broken.abort("connection reset")
    assert broken.failure == "connection reset"
