"""What one small non-streamed chat request costs chatmock before any I/O:
`python bench/request_cost.py`.

The latency phase's request (`POST /v1/chat/completions`, `fake:deltas=5`, not
streamed) taken through chatmock's own sans-I/O pieces, in the order the server
meets them, with no socket, task or event loop: the client's request head, the
body parsed and translated, the session id, the upstream request's bytes, the
backend's response head and usage headers, its chunked SSE body (the bench
fake's exact bytes, `FakeCodex`, in one read) collected into the answer, the
answer's JSON and the access line. Microseconds per step, best of five rounds.

The sum is a lower bound of what chatmock adds to a request on top of relaying
its bytes: a byte relay in trio (`bench/trio_relay.py`, the latency phase's
`--trio-relay`) pays the sockets, the tasks and the loopback hop and none of
this. So the relay's added latency plus this sum is the least chatmock's present
translation could add, on I/O as cheap as the relay's, on the machine that ran both
(bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

from wire import FAKE_HEADERS, build_request, chat_body

from chatmock import jsonbytes
from chatmock.catalog import Catalog
from chatmock.dialects.chat import parse_chat_request
from chatmock.dialects.chat_stream import chat_completion
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.options import Options
from chatmock.logs import access_line, redact
from chatmock.net.chunked import ChunkedBody
from chatmock.net.h1wire import Outgoing, ResponseHead, parse_head
from chatmock.routes.answer import Plan
from chatmock.routes.openai import chat_plan
from chatmock.routes.relay import parse_json
from chatmock.server.h1fast import parse_request
from chatmock.state.prompt_cache import SessionIds
from chatmock.state.usage_limits import parse_limit_headers
from chatmock.testing.fake_codex import FakeCodex

HOST = b"127.0.0.1:9"
UPSTREAM_PATH = "/backend-api/codex/responses"


def backend_answer(payload: bytes) -> tuple[bytes, bytes]:
    """The bench fake's response to `payload`: (its head, its chunked body), as written."""
    headers = {name.encode(): value.encode() for name, value in FAKE_HEADERS}
    reply = FakeCodex().handle("POST", UPSTREAM_PATH, headers, payload)
    assert reply.status == 200 and reply.chunks is not None, reply
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(
        name + b": " + value + b"\r\n" for name, value in reply.headers)
    head += b"transfer-encoding: chunked\r\n\r\n"
    chunks = [b"%x\r\n%b\r\n" % (len(data), data) for _, data in reply.chunks if data]
    return head, b"".join(chunks) + b"0\r\n\r\n"


def steps() -> list[tuple[str, Callable[[], object]]]:
    """Each step as a call, run once here so that a broken one fails before timing."""
    request = build_request("127.0.0.1", 9, "/v1/chat/completions",
                            chat_body("fake:deltas=5", False, "gpt-5.4"))
    body = request.partition(b"\r\n\r\n")[2]
    catalog, options, sessions = Catalog(), Options(), SessionIds()

    def plan() -> Plan:
        return chat_plan(parse_chat_request(parse_json(body), catalog, options), "think-tags")

    payload = plan().payload
    session = sessions.for_request({}, payload.get("instructions"), payload["input"])
    upstream_headers = [(b"authorization", b"Bearer x"), (b"chatgpt-account-id", b"acc"),
                        (b"session-id", session.encode()), (b"thread-id", session.encode()),
                        (b"originator", b"codex_cli_rs"), (b"accept", b"text/event-stream"),
                        (b"content-type", b"application/json")]
    head, chunked = backend_answer(jsonbytes.dumps(payload))
    parsed = parse_head(head)
    assert isinstance(parsed, ResponseHead), parsed
    response_head = parsed.head

    def collect() -> ResponseCollector:
        collector = ResponseCollector()
        collector.feed(ChunkedBody(b"POST", response_head).feed(chunked))
        return collector

    collected = collect()
    assert collected.text == "tok0 tok1 tok2 tok3 tok4 ", collected.text
    fields = {"client": "127.0.0.1:53412", "method": "POST", "path": "/v1/chat/completions",
              "status": 200, "duration_ms": 1.2, "ttfb_ms": 1.1, "model": "gpt-5.4",
              "effort": "medium", "input_tokens": 110, "output_tokens": 5}
    return [
        ("client request head (h1fast)", lambda: parse_request(request, 65536)),
        ("body parsed and translated", plan),
        ("session id", lambda: sessions.for_request({}, payload.get("instructions"),
                                                     payload["input"])),
        ("upstream request bytes", lambda: Outgoing(
            "POST", UPSTREAM_PATH, HOST, upstream_headers, jsonbytes.dumps(payload)).wire),
        ("backend head and usage headers", lambda: usage_of(head)),
        ("SSE body decoded and collected", collect),
        ("answer's JSON", lambda: jsonbytes.dumps(chat_completion(
            collected, model="gpt-5.4", created=0, compat="think-tags"))),
        ("access line", lambda: redact(access_line(fields))),
    ]


def usage_of(head: bytes) -> object:
    parsed = parse_head(head)
    assert isinstance(parsed, ResponseHead)
    return parse_limit_headers(parsed.headers)


def best_us(call: Callable[[], object], number: int = 5000) -> float:
    return min(timeit.repeat(call, number=number, repeat=5 if number > 1 else 1)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true",
                        help="run every step once, untimed (tests/unit/test_request_cost.py)")
    args = parser.parse_args()
    total = 0.0
    for name, call in steps():
        cost = best_us(call, number=1 if args.once else 5000)
        total += cost
        print(f"  {name:<34} {cost:7.1f} us")
    print(f"  {'sum':<34} {total:7.1f} us")


if __name__ == "__main__":
    main()
