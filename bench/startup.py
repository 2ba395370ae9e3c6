"""Where `chatmock serve`'s start-up goes: `python bench/startup.py [--runs 9]`.

Three measurements, each the minimum and median over fresh processes (the bench's
start-up phase gives the median of spawn to first `/health` 200 beside nginx):

- the floor: the same interpreter started bare, importing trio, trio and h11 (also
  with the garbage collector off, as `python -m chatmock` imports: chatmock/__main__.py),
  everything `serve` imports (`chatmock.cli`), and `serve` up to its first
  `/health` 200, the six taking turns run by run so that a busy moment of the
  machine falls on all of them;
- what `serve` imports before it accepts: `python -X importtime -m chatmock serve`,
  cut at its "listening on" line, the least self-time of each module over the
  runs, summed by package (chatmock's by sub-package).

Run it from the tree to measure, with its virtualenv's Python; chatmock is
compiled first (`compileall`), as an installed package is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")
TRIO_FAMILY = ("trio", "attr", "attrs", "outcome", "sniffio", "sortedcontainers", "idna")


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGPT_LOCAL_")}
    env.update(CHATGPT_LOCAL_HOME=str(home), PYTHONPATH=str(REPO))
    return env


def serve_argv(port: int, *flags: str) -> list[str]:
    return [PYTHON, *flags, "-m", "chatmock", "serve", "--port", str(port),
            "--upstream-url", "http://127.0.0.1:9/backend-api/codex"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_health(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def time_serve(env: dict[str, str]) -> float:
    port = free_port()
    started = time.perf_counter()
    child = subprocess.Popen(serve_argv(port), env=env, stderr=subprocess.DEVNULL)
    try:
        while not answers_health(port):
            if child.poll() is not None:
                raise SystemExit("serve exited before answering")
            time.sleep(0.003)
        return (time.perf_counter() - started) * 1000
    finally:
        child.terminate()
        child.wait()


def post_chat(port: int) -> float:
    """ms to the whole answer of one non-streamed chat completion (connection: close)."""
    payload = json.dumps({"model": "gpt-5.4", "messages": [
        {"role": "user", "content": "fake:deltas=5 hello"}]}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            "content-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(payload)}\r\n\r\n").encode()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + payload)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if not answer.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"chat completion failed: {answer[:300]!r}")
    return (time.perf_counter() - started) * 1000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_ms(pid: int) -> float:
    """CPU time of every thread of `pid` so far (/proc/PID/task/*/schedstat, in ns):
    what a busy machine changes least, unlike wall-clock times."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e6


def first_request(env: dict[str, str], upstream: str, delay: float) -> dict[str, float]:
    """One `serve`: spawn to /health, then (`delay` s later) two chat completions in a
    row, and its CPU time and RSS."""
    port = free_port()
    argv = serve_argv(port)
    argv[argv.index("--upstream-url") + 1] = upstream
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)
    try:
        while not answers_health(port):
            if child.poll() is not None:
                raise SystemExit("serve exited before answering")
            time.sleep(0.003)
        figures = {"/health": (time.perf_counter() - started) * 1000,
                   "CPU to /health": cpu_ms(child.pid),
                   "RSS at /health MiB": rss_mib(child.pid)}
        time.sleep(delay)
        figures["first chat request"] = post_chat(port)
        figures["spawn to first chat answer"] = (time.perf_counter() - started) * 1000
        figures["second chat request"] = post_chat(port)
        time.sleep(0.5)
        figures["CPU after the requests"] = cpu_ms(child.pid)
        figures["RSS after the requests MiB"] = rss_mib(child.pid)
        return figures
    finally:
        child.terminate()
        child.wait()


def first_requests(env: dict[str, str], runs: int, delay: float) -> None:
    fake = subprocess.Popen([PYTHON, str(REPO / "bench" / "fakeserver.py"), "--port", "0"],
                            env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:(\d+)", fake.stdout.readline())
        if not found:
            raise SystemExit("the fake backend did not say where it listens")
        upstream = f"http://127.0.0.1:{found[1]}/backend-api/codex"
        runs_seen = [first_request(env, upstream, delay) for _ in range(runs)]
    finally:
        fake.terminate()
        fake.wait()
    for name in runs_seen[0]:
        values = [run[name] for run in runs_seen]
        unit = "" if name.endswith("MiB") else " ms"
        print(f"  {name:28} min {min(values):6.1f}  median {statistics.median(values):6.1f}{unit}")


def time_code(env: dict[str, str], code: str) -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], env=env, check=True)
    return (time.perf_counter() - started) * 1000


def floor(env: dict[str, str], runs: int) -> None:
    cases = {"python -c pass": "pass", "import trio": "import trio",
             "import trio, h11": "import trio, h11",
             "same, collector off": "import gc; gc.disable(); import trio, h11",
             "import chatmock.cli": "import chatmock.cli"}
    times: dict[str, list[float]] = {name: [] for name in [*cases, "serve to first /health"]}
    for _ in range(runs):
        for name, code in cases.items():
            times[name].append(time_code(env, code))
        times["serve to first /health"].append(time_serve(env))
    for name, values in times.items():
        print(f"  {name:24} min {min(values):6.1f}  median {statistics.median(values):6.1f} ms")


def imports_before_listening(env: dict[str, str]) -> dict[str, int]:
    """module -> self time in µs, of one `serve` up to its "listening on" line."""
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(serve_argv(free_port(), "-X", "importtime"), env=env,
                                 stderr=log)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                log.seek(0)
                text = log.read()
                if "listening on" in text:
                    break
                time.sleep(0.01)
        finally:
            child.terminate()
            child.wait()
    before = text.split("listening on")[0]
    return {m.group(2): int(m.group(1)) for m in IMPORT_LINE.finditer(before)}


def package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "chatmock":
        return ".".join(parts[:2])
    if parts[0] in TRIO_FAMILY:
        return "trio, attrs, outcome, sniffio, sortedcontainers, idna"
    if parts[0] == "h11":
        return "h11"
    if parts[0].startswith("__editable__"):
        return "the editable install's import hook (a virtualenv with pip -e only)"
    return "standard library"


def breakdown(env: dict[str, str], runs: int) -> None:
    seen = [imports_before_listening(env) for _ in range(runs)]
    common = set.intersection(*(set(run) for run in seen))
    least = {module: min(run[module] for run in seen) for module in common}
    groups: Counter[str] = Counter()
    for module, micros in least.items():
        groups[package(module)] += micros
    print(f"  {len(least)} modules, {sum(least.values()) / 1000:.1f} ms of import (self time)")
    for name, micros in groups.most_common():
        print(f"  {micros / 1000:6.1f} ms  {name}")
    own = sorted((m for m in least if m.startswith("chatmock")), key=lambda m: -least[m])
    print("  largest chatmock modules: " + ", ".join(
        f"{m} {least[m] / 1000:.1f}" for m in own[:10]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--parts", default="floor,imports,first",
                        help="which measurements, comma-separated (default: all three)")
    parser.add_argument("--first-delay", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long after /health before the first request")
    args = parser.parse_args()
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(REPO / "chatmock")], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        home = Path(folder)
        env = environment(home)
        subprocess.run([PYTHON, "-c", "import sys; from pathlib import Path; from chatmock."
                        "testing.credentials import write_auth_file; "
                        "write_auth_file(Path(sys.argv[1]))", str(home)], env=env, check=True)
        parts = args.parts.split(",")
        if "floor" in parts:
            print(f"start-up floor ({args.runs} runs each, taking turns):")
            floor(env, args.runs)
        if "imports" in parts:
            print(f"imported before the first accept (least of {args.runs} runs per module):")
            breakdown(env, args.runs)
        if "first" in parts:
            print(f"the first request (serve in front of bench/fakeserver.py, {args.runs} runs,"
                  f" sent {args.first_delay:g} s after /health):")
            first_requests(env, args.runs, args.first_delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
