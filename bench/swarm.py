"""A swarm on a fleet: `python bench/swarm.py [--conversations N] [--turns N] [--workers N]`.

N chained `/v1/responses` conversations (default 1,000 of 4 turns) from W
client threads at once, over two chatmock processes that share one Redis
(`--state redis://`) and a pool of two accounts (`--account-strategy
round-robin`); each turn goes to the other process than the turn before,
chained on the previous one with `previous_response_id`. Halfway through the
first account is put over its usage limit on the fake backend: its
conversations in flight move to the second account, and both processes learn
it through Redis.

A chain is lost if any of its turns does not answer 200, or if the backend
did not get the whole conversation: every turn carries a marker, and the fake
backend's record of the last turn must hold the markers of every turn before
it (chatmock rebuilt the history from the shared store, whichever process
served the turn before). Printed and written to bench/out/swarm.json: chains
completed and lost, requests per second, latency median and p90, the
requests each account served, and the moves the logs report.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pool_cost import SECOND, pool_home
from procs import HOST
from redis_store import start_chatmock, start_fake_backend, write_results

from chatmock.testing.credentials import TEST_ACCOUNT_ID
from chatmock.testing.redis_server import RedisServer

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


class Swarm:
    def __init__(self, ports: list[int], fake_port: int, turns: int, limit_after: int) -> None:
        self.ports, self.fake_port, self.turns = ports, fake_port, turns
        self.limit_after = limit_after  # requests answered before the first account's limit
        self.local = threading.local()
        self.latencies: list[float] = []
        self.lost: list[str] = []
        self.lock = threading.Lock()

    def connection(self, index: int) -> http.client.HTTPConnection:
        connections = getattr(self.local, "connections", None)
        if connections is None:
            connections = self.local.connections = [
                http.client.HTTPConnection(HOST, port, timeout=60) for port in self.ports]
        connection: http.client.HTTPConnection = connections[index]
        return connection

    def turn(self, index: int, body: dict[str, Any]) -> tuple[int, Any]:
        connection = self.connection(index)
        started = time.perf_counter()
        connection.request("POST", "/v1/responses", json.dumps(body),
                           {"content-type": "application/json"})
        reply = connection.getresponse()
        document = json.loads(reply.read())
        with self.lock:
            self.latencies.append(time.perf_counter() - started)
            limit_now = len(self.latencies) == self.limit_after
        if limit_now:  # mid-way through many conversations: those move
            fake_json(self.fake_port, "/__fake__/accounts/limit",
                      {"account": TEST_ACCOUNT_ID, "seconds": 3600}, "POST")
        return reply.status, document

    def conversation(self, number: int) -> None:
        previous = None
        for turn in range(self.turns):
            body: dict[str, Any] = {"model": "gpt-5.4",
                                    "input": f"swarm c{number} t{turn} marker-{number}-{turn}"}
            if previous:
                body["previous_response_id"] = previous
            status, document = self.turn((number + turn) % len(self.ports), body)
            if status != 200:
                with self.lock:
                    self.lost.append(f"c{number} t{turn}: {status} {document}")
                return
            previous = document["id"]


def fake_json(port: int, path: str, body: object = None, method: str = "GET") -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)


def whole_histories(fake_port: int, turns: int) -> tuple[int, int]:
    """(last turns checked, last turns missing an earlier turn's marker), from the fake's
    record (it keeps the newest requests)."""
    checked = broken = 0
    for record in fake_json(fake_port, "/__fake__/requests"):
        text = json.dumps(record.get("body"))
        if f"t{turns - 1} marker-" not in text:
            continue
        number = text.split(f" t{turns - 1} marker-", 1)[1].split("-", 1)[0]
        checked += 1
        broken += any(f"marker-{number}-{t}" not in text for t in range(turns - 1))
    return checked, broken


def run(folder: Path, stack: contextlib.ExitStack, args: argparse.Namespace) -> dict[str, Any]:
    redis = RedisServer(folder / "redis").start()
    stack.callback(redis.stop)
    logs = folder / "logs"
    logs.mkdir()
    fake_port = start_fake_backend(stack, logs)
    servers = [start_chatmock(stack, logs, fake_port, pool_home(folder / name, 2), name,
                              "--state", redis.url, "--account-strategy", "round-robin")
               for name in ("one", "two")]
    swarm = Swarm([port for port, _ in servers], fake_port, args.turns,
                  args.conversations * args.turns // 2)
    started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(swarm.conversation, range(args.conversations)))
    elapsed = time.perf_counter() - started
    served = fake_json(fake_port, "/__fake__/accounts")
    checked, broken = whole_histories(fake_port, args.turns)
    moves = sum(path.read_text().count("conversation moved") for path in logs.glob("one*")) + \
        sum(path.read_text().count("conversation moved") for path in logs.glob("two*"))
    swarm.latencies.sort()
    return {"conversations": args.conversations, "turns each": args.turns,
            "client threads": args.workers, "chains lost": len(swarm.lost),
            "lost examples": swarm.lost[:3],
            "last turns checked for whole history": checked,
            "last turns missing history": broken,
            "requests per second": round(len(swarm.latencies) / elapsed, 1),
            "median ms": round(statistics.median(swarm.latencies) * 1e3, 2),
            "p90 ms": round(swarm.latencies[int(len(swarm.latencies) * 0.9)] * 1e3, 2),
            "streams per account": {("first" if name == TEST_ACCOUNT_ID else
                                     "second" if name == SECOND else name): value["requests"]
                                    for name, value in served.items()},
            "moves logged": moves}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--workers", type=int, default=32, help="client threads")
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "swarm.json")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as temp:
        results = run(Path(temp), stack, args)
    write_results(args.out, results)
    return 0 if results["chains lost"] == 0 and results["last turns missing history"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
