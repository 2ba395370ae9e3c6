"""chatmock's CPU per streamed delta: a chat-completions provider against the Codex path.

One chatmock serves both: the fake Codex backend (`chatmock.testing.fake_upstream`)
as its default upstream and the fake chat-completions server
(`chatmock.testing.fake_chat`, generic flavor) as `--upstream local=URL`. The same
streamed chat completions (`/v1/chat/completions`, `fake:deltas=N`, the deltas paced
`fake:delay_ms` apart so that each arrives in a read of its own, as from a real
model) are sent to `gpt-5.4` (Codex) and to `local/local-model` (provider), in
alternating rounds; chatmock's CPU time (user + system, from /proc) over the deltas
its clients received is the figure. Everything on 127.0.0.1.

    .venv/bin/python bench/provider_cpu.py [--streams 20] [--deltas 300] [--rounds 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from procstat import cpu_seconds

from chatmock.testing.credentials import write_auth_file

ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(rb"listening on https?://[^:]+:(\d+)")


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None,
          ) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("wb") as sink:
        child = subprocess.Popen([sys.executable, *args], stdout=sink, stderr=subprocess.STDOUT,
                                 env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_bytes())
        if found:
            return child, int(found.group(1))
        time.sleep(0.05)
    child.kill()
    raise RuntimeError(log.read_text())


def stream(port: int, model: str, prompt: str) -> int:
    """One streamed completion; the number of content deltas received."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/v1/chat/completions", json.dumps({
        "model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}),
        {"content-type": "application/json"})
    reply = connection.getresponse()
    deltas = sum(1 for line in reply.read().split(b"\n\n") if b'"content":"' in line)
    connection.close()
    return deltas


def round_of(port: int, pid: int, model: str, streams: int, prompt: str) -> tuple[float, int]:
    """(chatmock CPU seconds, deltas) of `streams` concurrent streams."""
    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(stream(port, model, prompt)))
               for _ in range(streams)]
    before = cpu_seconds(pid)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return cpu_seconds(pid) - before, sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--deltas", type=int, default=300)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=4)
    options = parser.parse_args()
    prompt = f"bench fake:deltas={options.deltas} fake:delay_ms={options.delay_ms:g}"
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        children = []
        try:
            codex, codex_port = spawn(["-m", "chatmock.testing.fake_upstream", "--port", "0"],
                                      logs / "codex.log")
            chat, chat_port = spawn(["-m", "chatmock.testing.fake_chat", "--port", "0"],
                                    logs / "chat.log")
            children += [codex, chat]
            home = logs / "home"
            write_auth_file(home)
            env = {**os.environ, "CHATGPT_LOCAL_HOME": str(home)}
            server, port = spawn(["-m", "chatmock", "serve", "--port", "0", "--upstream-url",
                                  f"http://127.0.0.1:{codex_port}/backend-api/codex",
                                  "--upstream", f"local=http://127.0.0.1:{chat_port}/v1",
                                  "--max-concurrency", "0"], logs / "chatmock.log", env)
            children.append(server)
            measure(port, server.pid, options, prompt)
        finally:
            for child in children:
                child.terminate()
                child.wait(10)


def measure(port: int, pid: int, options: argparse.Namespace, prompt: str) -> None:
    models = {"codex": "gpt-5.4", "provider": "local/local-model"}
    for model in models.values():  # warm up both paths
        round_of(port, pid, model, 4, prompt)
    totals = {name: [0.0, 0] for name in models}
    for number in range(options.rounds):
        order = list(models) if number % 2 == 0 else list(reversed(models))
        for name in order:
            cpu, deltas = round_of(port, pid, models[name], options.streams, prompt)
            totals[name][0] += cpu
            totals[name][1] += int(deltas)
            print(f"round {number + 1} {name:8} {cpu:6.2f} s CPU  {deltas:6d} deltas  "
                  f"{cpu / max(deltas, 1) * 1e6:6.1f} µs/delta", flush=True)
    per = {name: cpu / max(deltas, 1) * 1e6 for name, (cpu, deltas) in totals.items()}
    print(json.dumps({"streams": options.streams, "deltas_per_stream": options.deltas,
                      "delay_ms": options.delay_ms, "rounds": options.rounds,
                      "us_per_delta": {k: round(v, 1) for k, v in per.items()},
                      "provider_over_codex": round(per["provider"] / per["codex"], 3)}))


if __name__ == "__main__":
    main()
