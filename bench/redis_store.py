"""Fleet mode's cost: `python bench/redis_store.py [--turns N] [--chains N] [--out FILE]`.

Three measurements, each printed and written to bench/out/redis_store.json:

1. RESP: microseconds per reply parsed (`ReplyParser`, fed a pipeline of 1,000
   replies in 16 KiB reads) for the replies the store meets, and per command
   encoded. This is the figure that decides whether a C parser (hiredis) would
   earn its dependency.
2. The response store, in this process: `put` then `look_up` of a realistic
   agent turn (a growing context of prose, tool calls, source-file outputs and
   encrypted reasoning blobs), the Redis store against the SQLite default (its
   write-behind thread is flushed before the look-ups, as a turn's duration
   would). Wall time per call and this process's CPU per call (threads included).
3. End to end: chains of chained `/v1/responses` requests (each turn adds ~4 KB
   to the context) through real chatmock processes against the fake backend:
   embedded (SQLite), fleet on one process, fleet alternating two processes.
   Median and p90 latency per chained request, and chatmock's CPU per request
   (read from /proc).

A throwaway redis-server (`chatmock.testing.redis_server`) runs on a free
loopback port; nothing leaves loopback. Absolute figures move with the load of
a shared machine; compare the columns of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import trio
from procs import HOST, free_port, spawn
from procstat import cpu_seconds
from servers import wait_ready

from chatmock.net.redis import RedisClient
from chatmock.net.resp import NEED_DATA, ReplyParser, encode_command, encode_commands
from chatmock.redis_url import parse_redis_url
from chatmock.state.response_store import AsyncResponseStore
from chatmock.state.response_store_redis import RedisResponseStore
from chatmock.state.response_store_sqlite import SqliteResponseStore
from chatmock.state.stores import LocalStore
from chatmock.testing.credentials import write_auth_file
from chatmock.testing.redis_server import RedisServer
from chatmock.turns import StoredResponse, StoreQuery

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SOURCES = sorted((REPO / "chatmock").rglob("*.py"))


# --- 1. RESP -------------------------------------------------------------------


def per_reply_us(wire: bytes, count: int, read: int = 16384) -> float:
    parser = ReplyParser()
    started = time.perf_counter()
    seen = 0
    for start in range(0, len(wire), read):
        parser.feed(wire[start:start + read])
        while parser.next_reply() is not NEED_DATA:
            seen += 1
    assert seen == count
    return (time.perf_counter() - started) / count * 1e6


def resp_figures(rounds: int = 5) -> dict[str, float]:
    body = os.urandom(30_000)
    kinds = {"+OK": b"+OK\r\n", ":1 (integer)": b":1\r\n", "nil": b"$-1\r\n",
             "1 KB bulk": b"$1024\r\n" + b"x" * 1024 + b"\r\n",
             "30 KB bulk (a turn)": b"$30000\r\n" + body + b"\r\n",
             "array of 10 bulk": b"*10\r\n" + (b"$20\r\n" + b"y" * 20 + b"\r\n") * 10}
    figures = {name: min(per_reply_us(reply * 1000, 1000) for _ in range(rounds))
               for name, reply in kinds.items()}
    command: list[bytes | str | int] = ["SET", "chatmock:turn:resp_0123456789abcdef", body,
                                        "PX", 3_600_000]
    started = time.perf_counter()
    for _ in range(1000):
        encode_command(command)
    figures["encode SET 30 KB"] = (time.perf_counter() - started) / 1000 * 1e6
    started = time.perf_counter()
    encode_commands([["GET", f"chatmock:item:rs_{n}"] for n in range(1000)])
    figures["encode GET (in a pipeline)"] = (time.perf_counter() - started) / 1000 * 1e6
    return figures


# --- 2. the store ----------------------------------------------------------------


def source_text(rng: random.Random, size: int) -> str:
    text = rng.choice(SOURCES).read_text()
    return text[:size].replace("fake:", "fake ")  # not a directive to the fake backend


def agent_turn(number: int, rng: random.Random, context: list[dict[str, Any]]) -> StoredResponse:
    """Turn `number` of an agent loop: the context so far, a reasoning item, a tool call
    and a message as output."""
    call_id = f"call_{number}"
    output: list[dict[str, Any]] = [
        {"type": "reasoning", "id": f"rs_{number}_{rng.randrange(1 << 30)}", "summary": [],
         "encrypted_content": os.urandom(1500).hex()},
        {"type": "function_call", "call_id": call_id, "name": "read_file",
         "arguments": json.dumps({"path": f"chatmock/file_{number}.py"})},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Reading the next file. " * 8}]}]
    context = [*context, {"type": "function_call_output", "call_id": call_id,
                          "output": source_text(rng, 3000)},
               {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": f"step {number}: go on"}]}]
    return StoredResponse(f"resp_{number:06d}_{rng.randrange(1 << 30)}", "You are an agent.",
                          context, output, time.time())


def agent_turns(count: int) -> list[StoredResponse]:
    rng = random.Random(16)
    turns: list[StoredResponse] = []
    context: list[dict[str, Any]] = []
    for number in range(count):
        turn = agent_turn(number % 30, rng, context if number % 30 else [])
        context = turn.context + turn.output
        turns.append(turn)
    return turns


async def store_figures(store: AsyncResponseStore, turns: list[StoredResponse],
                        flush: Callable[[], Coroutine[Any, Any, None]]) -> dict[str, float]:
    puts: list[float] = []
    gets: list[float] = []
    cpu = time.process_time()
    for turn in turns:
        started = time.perf_counter()
        await store.put(turn)
        puts.append(time.perf_counter() - started)
    await flush()
    put_cpu = time.process_time() - cpu
    cpu = time.process_time()
    for turn in turns:
        started = time.perf_counter()
        answer = await store.look_up(StoreQuery(turn.response_id))
        gets.append(time.perf_counter() - started)
        assert answer.previous is not None
    get_cpu = time.process_time() - cpu
    count = len(turns)
    return {"put median us": statistics.median(puts) * 1e6,
            "put cpu us": put_cpu / count * 1e6,
            "look_up median us": statistics.median(gets) * 1e6,
            "look_up cpu us": get_cpu / count * 1e6}


async def both_stores(redis_url: str, folder: Path, count: int) -> dict[str, Any]:
    turns = agent_turns(count)
    sizes = [len(json.dumps([t.context, t.output])) for t in turns]
    sqlite = SqliteResponseStore(folder / "bench.sqlite3")
    local = LocalStore(sqlite)

    async def flush_sqlite() -> None:
        await trio.to_thread.run_sync(sqlite.flush)

    async def nothing() -> None:
        return None

    results: dict[str, Any] = {"turns": count,
                               "median turn JSON KB": statistics.median(sizes) / 1024}
    results["sqlite"] = await store_figures(local, turns, flush_sqlite)
    await local.aclose()
    client = RedisClient(parse_redis_url(redis_url))
    results["redis"] = await store_figures(RedisResponseStore(client), turns, nothing)
    await client.aclose()
    return results


# --- 3. end to end ---------------------------------------------------------------


def start_fake_backend(stack: contextlib.ExitStack, logs: Path) -> int:
    """The fake backend (chatmock/testing/fake_upstream.py) on a free port; that port."""
    fake = spawn(stack, "fake", [sys.executable, "-m", "chatmock.testing.fake_upstream",
                                 "--host", HOST, "--port", "0"], logs=logs, cwd=REPO,
                 read_stdout=True)
    return int(fake.next_line(30).rsplit(":", 1)[1].split("/")[0])


def write_results(out: Path, results: dict[str, Any]) -> None:
    """Print the figures and keep them in `out` (bench/out/...)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def start_chatmock(stack: contextlib.ExitStack, logs: Path, fake_port: int, home: Path,
                   name: str, *flags: str) -> tuple[int, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATGPT_LOCAL_", "CHATMOCK_"))}
    env.update(CHATGPT_LOCAL_HOME=str(home), PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "chatmock", "serve", "--host", HOST, "--port", str(port),
            "--upstream-url", f"http://{HOST}:{fake_port}/backend-api/codex",
            "--no-model-sync", *flags]
    child = spawn(stack, name, argv, logs=logs, cwd=REPO, env=env)
    wait_ready(child, port)
    return port, child.pid


def chained_request(connection: http.client.HTTPConnection, previous: str | None,
                    text: str) -> tuple[str, float]:
    body: dict[str, Any] = {"model": "gpt-5.4", "input": text}
    if previous:
        body["previous_response_id"] = previous
    started = time.perf_counter()
    connection.request("POST", "/v1/responses", json.dumps(body),
                       {"content-type": "application/json"})
    reply = connection.getresponse()
    document = json.loads(reply.read())
    elapsed = time.perf_counter() - started
    if reply.status != 200:
        raise RuntimeError(f"status {reply.status}: {document}")
    return str(document["id"]), elapsed


def run_chains(ports: list[int], pids: list[int], chains: int, turns: int,
               rng: random.Random) -> tuple[list[float], float]:
    """Latencies of the chained requests (the first turn of a chain is not chained) and
    the servers' CPU seconds over all requests."""
    connections = [http.client.HTTPConnection(HOST, port, timeout=30) for port in ports]
    latencies: list[float] = []
    cpu = sum(cpu_seconds(pid) for pid in pids)
    for chain in range(chains):
        previous = None
        for turn in range(turns):
            text = f"chain {chain} turn {turn} " + source_text(rng, 4000)
            connection = connections[turn % len(connections)]
            previous, elapsed = chained_request(connection, previous, text)
            if turn:
                latencies.append(elapsed)
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
    for connection in connections:
        connection.close()
    return latencies, cpu


def end_to_end(stack: contextlib.ExitStack, folder: Path, redis: RedisServer, chains: int,
               turns: int) -> dict[str, Any]:
    """Each configuration in turn, one chain at a time, in a rotating order: a busy moment
    of the machine falls on all of them."""
    logs = folder / "logs"
    logs.mkdir()
    fake_port = start_fake_backend(stack, logs)
    homes = [folder / name for name in ("embedded", "fleet-one", "fleet-two")]
    for home in homes:
        write_auth_file(home)
    embedded = start_chatmock(stack, logs, fake_port, homes[0], "embedded")
    fleet = [start_chatmock(stack, logs, fake_port, home, home.name, "--state", redis.url)
             for home in homes[1:]]
    configs = {"embedded (sqlite)": [embedded], "fleet, one process": fleet[:1],
               "fleet, two alternating": fleet}
    measured: dict[str, tuple[list[float], float]] = {name: ([], 0.0) for name in configs}
    rng = random.Random(7)
    for round_number in range(chains + 1):  # round 0 warms up
        names = list(configs)
        names = names[round_number % 3:] + names[:round_number % 3]
        for name in names:
            servers = configs[name]
            latencies, cpu = run_chains([p for p, _ in servers], [pid for _, pid in servers],
                                        1, turns, rng)
            if round_number:
                measured[name][0].extend(latencies)
                measured[name] = (measured[name][0], measured[name][1] + cpu)
    results: dict[str, Any] = {}
    for name, (latencies, cpu) in measured.items():
        latencies.sort()
        results[name] = {"requests": chains * turns,
                         "median ms": statistics.median(latencies) * 1e3,
                         "p90 ms": latencies[int(len(latencies) * 0.9)] * 1e3,
                         "chatmock cpu ms per request": cpu / (chains * turns) * 1e3}
    return results


# --- main -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=300, help="store turns (part 2)")
    parser.add_argument("--chains", type=int, default=12,
                        help="chains of 25 turns per configuration (part 3)")
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "redis_store.json")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        redis = RedisServer(folder / "redis").start()
        stack.callback(redis.stop)
        results = {"resp us per reply or command": resp_figures(),
                   "store": trio.run(both_stores, redis.url, folder, args.turns),
                   "end to end": end_to_end(stack, folder, redis, args.chains, 25)}
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
