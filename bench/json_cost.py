"""What serialising an upstream request costs, json module against orjson:
`python bench/json_cost.py [--kib 0,16,64,256]`.

The payload is what chatmock sends upstream for a Chat Completions request carrying
about K KiB of earlier turns (`wire.with_history`, the bench's agent-sized prompt),
converted by chatmock's own parser. Reported per payload: microseconds per call
(best of five rounds) for `json.dumps(..., ensure_ascii=False, separators=(",", ":"))
.encode()` (what `jsonbytes.dumps` did) and `orjson.dumps` (what it does), and both
parsers of the client's body for comparison (chatmock still parses with the json
module: its error messages and its `strict=False` are the API's contract).
This is the measured reason for orjson as a runtime dependency (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable

import orjson
from wire import chat_body, with_history

from chatmock.catalog import Catalog
from chatmock.dialects.chat import parse_chat_request
from chatmock.dialects.options import Options


def best_us(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def row(kib: int) -> str:
    raw = json.dumps(with_history(chat_body("hi", False, "gpt-5"), kib)).encode()
    payload = parse_chat_request(json.loads(raw), Catalog(), Options()).payload
    number = max(20, 20000 // (kib + 1))
    cells = [best_us(lambda: json.dumps(payload, ensure_ascii=False,
                                        separators=(",", ":")).encode(), number),
             best_us(lambda: orjson.dumps(payload), number),
             best_us(lambda: json.loads(raw), number),
             best_us(lambda: orjson.loads(raw), number)]
    return f"{kib:>5} {len(raw):>8} " + " ".join(
        f"{cell:>{width}.1f}" for cell, width in zip(cells, (11, 13, 11, 13), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", default="0,16,64,256")
    args = parser.parse_args()
    print(f"{'KiB':>5} {'bytes':>8} {'json.dumps':>11} {'orjson.dumps':>13} "
          f"{'json.loads':>11} {'orjson.loads':>13}   (us per call, best of 5)")
    for kib in args.kib.split(","):
        print(row(int(kib)))


if __name__ == "__main__":
    main()
