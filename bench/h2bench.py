"""HTTP/2 figures for chatmock: `python bench/h2bench.py [--streams 1000] [--rounds 3]`.

Everything runs in one go on one machine, and the figures that matter are
ratios of servers measured side by side, so a busy machine moves both sides:

1. CPU per 1,000 deltas (streamed `/v1/responses`, bursts of 50, loadgen's
   stream mode) of three chatmock servers taking turns: the fake backend behind
   TLS spoken to in HTTP/2 (`h2`), the same in HTTP/1.1 (`h1-tls`,
   `--no-upstream-http2`), and bench/run.py's plain-HTTP/1.1 setup (`h1`).
   Target: h2 within 15 % of h1-tls (the same TLS work on both sides).
2. Backend connections held for N concurrent streams (`hold-h1` below),
   counted from /proc: h2 (target <= 10 for 1,000) against h1-tls.
3. RSS per open stream, on two fresh servers warmed alike: N streams held over
   inbound HTTP/2 (`hold-h2` below, 100 streams a connection) with the h2
   backend, against N streams over inbound HTTP/1.1 with the plain HTTP/1.1
   backend (bench/run.py's figure).
4. Inbound HTTP/2 clients: `curl --http2-prior-knowledge` and httpx with
   `http2=True` stream a chat completion whole.

`python bench/h2bench.py hold-h2 --port P --streams N` is the HTTP/2 hold client
(h2 package, trio; `hold-h1` the HTTP/1.1 one, a connection per stream): it
prints {"event": "held", ...} once every stream got its first delta, and closes
them on a stdin line. Logs go to bench/out/logs/.
(Not `bench/h2.py`: scripts here import their neighbours by name, and that
name would hide the h2 package from this script, httpx included.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procs import HOST, BenchError, Child, free_port, raise_open_file_limit, spawn
from procstat import cpu_seconds, rss_kib
from wire import CHAT_PATH, chat_body

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LOGS = BENCH / "out" / "logs"
PYTHON = sys.executable
LOADGEN = str(BENCH / "loadgen.py")
SERVERS = ("h1", "h1-tls", "h2")


def start(stack: contextlib.ExitStack, name: str, argv: list[str], **options: Any) -> Child:
    return spawn(stack, name, argv, logs=LOGS, cwd=REPO, **options)


def start_fake(stack: contextlib.ExitStack, name: str, tls: list[str]) -> int:
    fake = start(stack, name, [PYTHON, "-m", "chatmock.testing.fake_upstream", "--host", HOST,
                               "--port", "0", *tls], read_stdout=True)
    match = re.search(r"https?://127\.0\.0\.1:(\d+)", fake.next_line(timeout=30))
    if not match:
        raise BenchError(f"{name} did not announce its port")
    return int(match[1])


def start_chatmock(stack: contextlib.ExitStack, name: str, upstream: str, env: dict[str, str],
                   *flags: str) -> tuple[Child, int]:
    port = free_port()
    server = start(stack, name, [PYTHON, "-m", "chatmock", "serve", "--host", HOST, "--port",
                                 str(port), "--upstream-url", f"{upstream}/backend-api/codex",
                                 "--max-connections", "20000", "--no-model-sync", *flags],
                   env=env)
    deadline = time.monotonic() + 30
    while not _healthy(port):
        if server.popen.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{name} did not start; see {LOGS / (name + '.log')}")
        time.sleep(0.02)
    return server, port


def _healthy(port: int) -> bool:
    import socket

    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def loadgen(stack: contextlib.ExitStack, port: int, mode: str, *options: object,
            ) -> Child:
    return start(stack, "loadgen", [PYTHON, LOADGEN, mode, "--port", str(port),
                                    *map(str, options)], read_stdout=True,
)


def last_json(child: Child, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event: dict[str, Any] = json.loads(child.next_line(deadline - time.monotonic()))
        if event.get("event") == "result":
            child.popen.wait(10)
            return event


def stream_cpu(stack: contextlib.ExitStack, server: Child, port: int, requests: int,
               connections: int) -> float:
    """Server CPU ms per 1,000 deltas over one loadgen stream run."""
    before = cpu_seconds(server.pid)
    result = last_json(loadgen(stack, port, "stream", "--dialect", "responses", "--connections",
                               connections, "--requests", requests, "--deltas", 1000,
                               "--burst", 50), 600)
    if result["errors"]:
        raise BenchError(f"stream errors: {result['errors']}")
    return float((cpu_seconds(server.pid) - before) * 1e6 / result["deltas"])


def backend_connections(pid: int, port: int) -> int:
    """Established TCP connections of `pid` to `port` (from /proc/<pid>/fd and /proc/net)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if (int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01"
                    and fields[9] in inodes):
                count += 1
    return count


def measure_hold(stack: contextlib.ExitStack, server: Child, argv: list[str], settle: float,
         measure: Any) -> dict[str, Any]:
    """Hold streams with a client process; `measure()` while they are open."""
    before = rss_kib(server.pid)
    client = start(stack, "holder", argv, read_stdout=True, write_stdin=True)
    held = json.loads(client.next_line(timeout=180))
    time.sleep(settle)
    readings = {"rss_before_kib": before, "rss_held_kib": rss_kib(server.pid),
                "open": held["open"], **measure()}
    assert client.popen.stdin is not None
    client.popen.stdin.write("release\n")
    client.popen.stdin.flush()
    client.stop(grace=30)
    readings["rss_per_stream_kib"] = round(
        (readings["rss_held_kib"] - before) / max(1, held["open"]), 2)
    return readings


def inbound_clients(port: int) -> dict[str, Any]:
    """curl and httpx over HTTP/2 with prior knowledge: version and deltas seen."""
    body = json.dumps(chat_body("bench h2 fake:deltas=200 fake:burst=10", True, "gpt-5.4"))
    found: dict[str, Any] = {}
    curl = shutil.which("curl")
    if curl:
        done = subprocess.run([curl, "-sS", "-N", "--http2-prior-knowledge", "-w",
                               "\\n%{http_version}", "-H", "content-type: application/json",
                               "-d", body, f"http://{HOST}:{port}{CHAT_PATH}"],
                              capture_output=True, timeout=60, check=False)
        text, _, version = done.stdout.rpartition(b"\n")
        found["curl"] = {"http_version": version.decode(),
                         "deltas": text.count(b'"delta":{"content":'),
                         "done": text.rstrip().endswith(b"data: [DONE]")}
    import httpx

    with httpx.Client(http1=False, http2=True, timeout=60) as client, \
            client.stream("POST", f"http://{HOST}:{port}{CHAT_PATH}", content=body,
                          headers={"content-type": "application/json"}) as reply:
        text_bytes = b"".join(reply.iter_bytes())
        found["httpx"] = {"http_version": reply.http_version,
                          "deltas": text_bytes.count(b'"delta":{"content":'),
                          "done": text_bytes.rstrip().endswith(b"data: [DONE]")}
    return found


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatmock-h2-bench-")))
    sys.path.insert(0, str(REPO))
    import trustme

    from chatmock.testing.credentials import write_auth_file

    write_auth_file(tmp / "home")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp / "key.pem"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGPT_LOCAL_")}
    env.update(CHATGPT_LOCAL_HOME=str(tmp / "home"), SSL_CERT_FILE=str(tmp / "ca.pem"))
    plain = start_fake(stack, "fake_plain", [])
    tls = start_fake(stack, "fake_tls", ["--tls-cert", str(tmp / "cert.pem"),
                                          "--tls-key", str(tmp / "key.pem")])
    servers = {"h1": start_chatmock(stack, "chatmock_h1", f"http://{HOST}:{plain}", env),
               "h1-tls": start_chatmock(stack, "chatmock_h1tls", f"https://127.0.0.1:{tls}",
                                        env, "--no-upstream-http2"),
               "h2": start_chatmock(stack, "chatmock_h2", f"https://127.0.0.1:{tls}", env)}
    phase("warm-up")
    for name in SERVERS:
        stream_cpu(stack, *servers[name], requests=3, connections=args.connections)
    cpu: dict[str, list[float]] = {name: [] for name in SERVERS}
    for number in range(args.rounds):
        phase(f"CPU round {number + 1} of {args.rounds}")
        for name in SERVERS:
            cpu[name].append(stream_cpu(stack, *servers[name], requests=args.requests,
                                        connections=args.connections))
    medians = {name: round(statistics.median(values), 2) for name, values in cpu.items()}
    result: dict[str, Any] = {
        "cpu_ms_per_1k_deltas": {name: [round(v, 2) for v in values]
                                 for name, values in cpu.items()},
        "cpu_median_ms_per_1k_deltas": medians,
        "cpu_h2_over_h1_tls": round(medians["h2"] / medians["h1-tls"], 3),
        "cpu_h2_over_h1_plain": round(medians["h2"] / medians["h1"], 3)}
    hold_argv = [PYTHON, str(Path(__file__)), "hold-h1", "--streams", str(args.streams)]
    for name in ("h1-tls", "h2"):
        phase(f"{args.streams} streams held through {name}: backend connections")
        server, port = servers[name]
        result[f"hold_{name}"] = measure_hold(
            stack, server, [*hold_argv, "--port", str(port)], 2.0,
            lambda pid=server.pid: {"backend_connections": backend_connections(pid, tls)})
    phase(f"RSS: {args.streams} streams over HTTP/2 both ways, and over HTTP/1.1 both ways")
    rss = {"h2": start_chatmock(stack, "chatmock_rss_h2", f"https://127.0.0.1:{tls}", env),
           "h1": start_chatmock(stack, "chatmock_rss_h1", f"http://{HOST}:{plain}", env)}
    for name in ("h2", "h1"):  # fresh servers, warmed alike: no heap left over by a hold
        stream_cpu(stack, *rss[name], requests=2, connections=args.connections)
    server, port = rss["h2"]
    result["rss_inbound_h2_upstream_h2"] = measure_hold(
        stack, server, [PYTHON, str(Path(__file__)), "hold-h2", "--port", str(port),
                        "--streams", str(args.streams)], 2.0,
        lambda pid=server.pid: {"backend_connections": backend_connections(pid, tls)})
    server, port = rss["h1"]
    result["rss_inbound_h1_upstream_h1"] = measure_hold(
        stack, server, [*hold_argv, "--port", str(port)], 2.0, dict)
    result["rss_per_stream_h2_over_h1"] = round(
        result["rss_inbound_h2_upstream_h2"]["rss_per_stream_kib"]
        / result["rss_inbound_h1_upstream_h1"]["rss_per_stream_kib"], 3)
    phase("inbound HTTP/2 clients")
    result["inbound_clients"] = inbound_clients(servers["h2"][1])
    return result


# --- the hold clients -------------------------------------------------------

HOLD_PROMPT = "bench hold fake:deltas=600 fake:delay_ms=500 fake:burst=1"
"""Five minutes of one delta every 500 ms: streams that stay open while they are measured."""


def hold_body() -> bytes:
    return json.dumps(chat_body(HOLD_PROMPT, True, "gpt-5.4")).encode()


async def hold_h2_connection(port: int, streams: int, opened: Callable[[object], None]) -> None:
    """`streams` chat streams multiplexed on one HTTP/2 connection (prior knowledge)."""
    import h2.config
    import h2.connection
    import h2.events
    import trio

    sock = await trio.open_tcp_stream(HOST, port)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.increment_flow_control_window(2**30)
    body = hold_body()
    for _ in range(streams):
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, [
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", CHAT_PATH.encode()),
            (b":authority", HOST.encode()), (b"content-type", b"application/json")])
        conn.send_data(stream_id, body, end_stream=True)
    await sock.send_all(conn.data_to_send())
    while data := await sock.receive_some(65536):
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                opened((sock, event.stream_id))
        await sock.send_all(conn.data_to_send())


async def hold_h1_connection(port: int, streams: int, opened: Callable[[object], None]) -> None:
    """One chat stream on its own HTTP/1.1 connection (`streams` is always 1 here)."""
    import trio

    sock = await trio.open_tcp_stream(HOST, port)
    body = hold_body()
    await sock.send_all(b"POST %b HTTP/1.1\r\nhost: %b\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%b"
                        % (CHAT_PATH.encode(), HOST.encode(), len(body), body))
    received = b""
    while data := await sock.receive_some(65536):
        received = (received + data)[-65536:]
        head_end = received.find(b"\r\n\r\n")
        if head_end >= 0 and len(received) > head_end + 4:
            opened(sock)


async def hold(args: argparse.Namespace) -> None:
    """Open `--streams` streams, print {"event": "held", "open": N} once each got a delta
    (or after 180 s), and keep them open until a line comes on stdin."""
    import trio

    h2_client = args.mode == "hold-h2"
    per, run_connection = ((args.per_connection, hold_h2_connection) if h2_client
                           else (1, hold_h1_connection))
    open_streams: set[object] = set()
    all_open = trio.Event()

    def opened(key: object) -> None:
        open_streams.add(key)
        if len(open_streams) >= args.streams:
            all_open.set()

    async with trio.open_nursery() as nursery:
        for number in range(math.ceil(args.streams / per)):
            nursery.start_soon(run_connection, args.port,
                               min(per, args.streams - number * per), opened)
        with trio.move_on_after(180):
            await all_open.wait()
        print(json.dumps({"event": "held", "open": len(open_streams)}), flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        nursery.cancel_scope.cancel()


def phase(name: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/h2bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode")
    for name, what in (("hold-h2", "HTTP/2, 100 streams a connection"),
                       ("hold-h1", "HTTP/1.1, a connection per stream")):
        holder = modes.add_parser(name, help=f"the hold client over {what}")
        holder.add_argument("--port", type=int, required=True)
        holder.add_argument("--streams", type=int, default=1000)
        holder.add_argument("--per-connection", type=int, default=100)
    parser.add_argument("--streams", type=int, default=1000, help="streams held (1,000)")
    parser.add_argument("--rounds", type=int, default=3, help="CPU rounds per server (3)")
    parser.add_argument("--requests", type=int, default=5,
                        help="per connection per CPU run, 1,000 deltas each (5)")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    raise_open_file_limit()
    if args.mode in ("hold-h2", "hold-h1"):
        import trio

        trio.run(hold, args)
        return 0
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        result = run(args, stack)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["command"] = " ".join([Path(PYTHON).name, *sys.argv])
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
