"""The account pool's per-request cost: `python bench/pool_cost.py [--requests N] [--out FILE]`.

Two measurements, printed and written to bench/out/pool_cost.json:

1. In this process: microseconds per request spent choosing the account
   (`AccountPool.turn` then `Turn.open` with a backend that answers at once,
   affinity written for a new conversation, read for the next turns), for one
   account (no state at all), two accounts with the embedded state, and two
   accounts with the state in Redis (one `view` round trip per request, one
   `bind` more for a new conversation).
2. End to end: short chat requests (each conversation 4 turns, the history
   resent) through real chatmock processes against the fake backend: the SQLite
   default with one account, the embedded pool of two accounts, and fleet mode
   (`--state redis://`, the pool's state and the response store in Redis).
   Median and p90 latency, and chatmock's CPU per request (from /proc).

A throwaway redis-server runs on a free loopback port; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio
from procs import HOST
from procstat import cpu_seconds
from redis_store import start_chatmock, start_fake_backend, write_results

from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import Credentials
from chatmock.net.redis import RedisClient
from chatmock.redis_url import parse_redis_url
from chatmock.state.pool_state import MemoryPoolState, PoolState, RedisPoolState
from chatmock.testing.credentials import write_account_file, write_auth_file
from chatmock.testing.redis_server import RedisServer
from chatmock.upstream.accounts import Account, AccountPool

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SECOND = "9d1e3f0a-2222-3333-4444-555566667777"


def pool_home(home: Path, accounts: int) -> Path:
    write_auth_file(home)
    if accounts > 1:
        write_account_file(home, "second", account_id=SECOND, email="second@example.com")
    return home


# --- 1. in process ----------------------------------------------------------------------


async def _answer(account: Account, credentials: Credentials) -> str:
    return account.name


async def choose_us(pool: AccountPool, requests: int) -> float:
    """Microseconds per request to pick an account: conversations of 4 turns."""
    started = time.perf_counter()
    for number in range(requests):
        payload = {"input": [{"type": "message", "role": "user",
                              "content": f"conversation {number // 4}"}]}
        turn = await pool.turn(payload)
        await turn.open(payload, _answer)
    return (time.perf_counter() - started) / requests * 1e6


def in_process(folder: Path, redis_url: str, requests: int) -> dict[str, float]:
    home = pool_home(folder / "in-process", 2)
    stores = [CredentialStore({"CHATGPT_LOCAL_HOME": str(home)}),
              CredentialStore({}, path=home / "accounts" / "second.json")]
    accounts = [Account(name, store) for name, store in zip(("default", "second"), stores,
                                                              strict=True)]

    async def measure() -> dict[str, float]:
        redis = RedisClient(parse_redis_url(redis_url))
        states: dict[str, tuple[list[Account], PoolState]] = {
            "one account (no state)": (accounts[:1], MemoryPoolState()),
            "two accounts, embedded": (accounts, MemoryPoolState(folder / "state.json")),
            "two accounts, redis": (accounts, RedisPoolState(redis))}
        figures = {}
        for name, (members, state) in states.items():
            await choose_us(AccountPool(members, state=state), 200)  # warm up
            figures[name] = await choose_us(AccountPool(members, state=state), requests)
        await redis.aclose()
        return figures

    return trio.run(measure)


# --- 2. end to end ----------------------------------------------------------------------


def chat(connection: http.client.HTTPConnection, messages: list[dict[str, str]]) -> float:
    body = json.dumps({"model": "gpt-5.4", "messages": messages})
    started = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    reply = connection.getresponse()
    document = json.loads(reply.read())
    elapsed = time.perf_counter() - started
    if reply.status != 200:
        raise RuntimeError(f"status {reply.status}: {document}")
    messages.append({"role": "assistant", "content": document["choices"][0]["message"]["content"]})
    return elapsed


def run_conversations(port: int, pid: int, conversations: int) -> tuple[list[float], float]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    latencies: list[float] = []
    cpu = cpu_seconds(pid)
    for number in range(conversations):
        messages: list[dict[str, str]] = []
        for turn in range(4):
            messages.append({"role": "user", "content": f"conversation {number} turn {turn}"})
            latencies.append(chat(connection, messages))
    cpu = cpu_seconds(pid) - cpu
    connection.close()
    return latencies, cpu


def end_to_end(stack: contextlib.ExitStack, folder: Path, redis: RedisServer,
               conversations: int) -> dict[str, Any]:
    logs = folder / "logs"
    logs.mkdir()
    fake_port = start_fake_backend(stack, logs)
    configs = {
        "sqlite default, one account": (1, ()),
        "embedded pool, two accounts": (2, ("--account-strategy", "round-robin")),
        "fleet (redis), two accounts": (2, ("--account-strategy", "round-robin",
                                            "--state", redis.url))}
    servers = {name: start_chatmock(stack, logs, fake_port, pool_home(
        folder / f"home-{index}", accounts), f"chatmock-{index}", *flags)
        for index, (name, (accounts, flags)) in enumerate(configs.items())}
    measured: dict[str, tuple[list[float], float]] = {name: ([], 0.0) for name in configs}
    rounds = 10
    for number in range(rounds + 1):  # round 0 warms up; a rotating order spreads noise
        names = list(configs)[number % 3:] + list(configs)[:number % 3]
        for name in names:
            latencies, cpu = run_conversations(*servers[name], max(1, conversations // rounds))
            if number:
                measured[name] = (measured[name][0] + latencies, measured[name][1] + cpu)
    results = {}
    for name, (latencies, cpu) in measured.items():
        latencies.sort()
        results[name] = {"requests": len(latencies),
                         "median ms": round(statistics.median(latencies) * 1e3, 2),
                         "p90 ms": round(latencies[int(len(latencies) * 0.9)] * 1e3, 2),
                         "chatmock cpu ms per request": round(cpu / len(latencies) * 1e3, 3)}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="in-process requests")
    parser.add_argument("--conversations", type=int, default=150,
                        help="conversations of 4 turns per configuration (end to end)")
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "pool_cost.json")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        redis = RedisServer(folder / "redis").start()
        stack.callback(redis.stop)
        results = {"choosing the account, us per request": in_process(folder, redis.url,
                                                                      args.requests),
                   "end to end": end_to_end(stack, folder, redis, args.conversations)}
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
