"""A fleet gate's cost: `python bench/gate_fleet.py [--cycles N] [--out FILE]`.

Two measurements against a throwaway redis-server on a free loopback port,
printed and written to bench/out/gate_fleet.json:

1. Uncontended: microseconds (wall, and this process's CPU) per acquire and
   release of a permit, the local `Gate` against the `FleetGate` (one Redis round
   trip per acquire: the previous release travels in the same pipeline).
2. Contended: two `GateLeases` (two processes' worth) share N permits among many
   tasks holding each for a few milliseconds; how busy the permits were (summed
   hold time / (N * wall)): what the polling costs in idle permits, and the most
   held at once (never above N).

Absolute figures move with the load of a shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from chatmock.net.redis import RedisClient
from chatmock.redis_url import parse_redis_url
from chatmock.state.gate_leases import GateLeases
from chatmock.testing.redis_server import RedisServer
from chatmock.upstream.gate import Gate
from chatmock.upstream.gate_fleet import FleetGate

BENCH = Path(__file__).resolve().parent


def leases(url: str) -> GateLeases:
    return GateLeases(RedisClient(parse_redis_url(url)))


async def close(process: GateLeases) -> None:
    """Give back what is left (as the server does when it stops), then disconnect."""
    await process.sync()
    await process.redis.aclose()


async def cycle_cost(gate: Gate, cycles: int) -> dict[str, float]:
    for _ in range(50):  # warm up: connections, the script cached on the server
        (await gate.acquire("warm")).release()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(cycles):
        (await gate.acquire("bench")).release()
    return {"wall us": round((time.perf_counter() - wall) / cycles * 1e6, 1),
            "cpu us": round((time.process_time() - cpu) / cycles * 1e6, 1)}


async def uncontended(url: str, cycles: int) -> dict[str, Any]:
    fleet = leases(url)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fleet.maintain)
        results = {"local": await cycle_cost(Gate("xai", 4, queue_timeout=10), cycles),
                   "fleet": await cycle_cost(
                       FleetGate("xai", 4, queue_timeout=10, leases=fleet), cycles)}
        nursery.cancel_scope.cancel()
    await close(fleet)
    return results


async def contended(url: str, permits: int, tasks: int, hold: float,
                    seconds: float) -> dict[str, Any]:
    processes = [leases(url), leases(url)]
    gates = [FleetGate("xai", permits, queue_timeout=60, leases=p) for p in processes]
    held, most, busy, served = 0, 0, 0.0, 0
    started = trio.current_time()

    async def worker(number: int) -> None:
        nonlocal held, most, busy, served
        while trio.current_time() - started < seconds:
            async with gates[number % 2].slot(f"client{number % 7}"):
                held += 1
                most = max(most, held)
                await trio.sleep(hold)
                busy += hold
                served += 1
                held -= 1

    async with trio.open_nursery() as nursery:
        for process in processes:
            nursery.start_soon(process.maintain)
        async with trio.open_nursery() as workers:
            for number in range(tasks):
                workers.start_soon(worker, number)
        nursery.cancel_scope.cancel()
    wall = trio.current_time() - started
    for process in processes:
        await close(process)
    return {"permits": permits, "tasks": tasks, "hold ms": hold * 1000, "served": served,
            "most held at once": most, "permits busy": round(busy / (permits * wall), 3)}


async def run(url: str, cycles: int) -> dict[str, Any]:
    return {"acquire + release": await uncontended(url, cycles),
            "contended, two processes": [
                await contended(url, 4, 32, hold, 3.0) for hold in (0.005, 0.05)]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "gate_fleet.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        redis = RedisServer(Path(temp) / "redis").start()
        try:
            results = trio.run(run, redis.url, args.cycles)
        finally:
            redis.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
