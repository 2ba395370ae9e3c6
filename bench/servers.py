"""The servers the bench measures side by side, all in front of the same fake backend.

- `chatmock`: this tree (`python -m chatmock serve`);
- `chatmock@REV` (`--ab REV`): another commit, checked out with `git worktree` into a
  temporary directory and run from there, so both versions meet the same fake, the
  same floor and the same moments of a shared machine;
- `nginx`: the byte-relay floor. It proxies the fake's own protocol and translates
  nothing, so what chatmock spends beyond it is the price of translation and of
  Python. One process (`master_process off`), `proxy_buffering off`, chunked
  transfer encoding on, HTTP/1.1 with keep-alive to the fake, a configuration
  generated into a temporary directory, loopback ports only;
- `trio-relay` (`--trio-relay`): bench/trio_relay.py, the same relay in Python and trio
  on chatmock's socket layer, so the share of chatmock's figures that Python and trio
  cost shows beside nginx's;
- peers (`--peer NAME=COMMAND`): any other gateway, e.g. go-chatmock or ChatMock
  built locally. The command is a template: `{port}` (where it must listen),
  `{upstream}` (the fake's Codex base URL, `http://127.0.0.1:P/backend-api/codex`),
  `{fake}` (`http://127.0.0.1:P`), `{home}` (a directory holding a valid
  `auth.json`; `CHATGPT_LOCAL_HOME` points there too) and `{host}`.

A server is ready when `GET /health` answers: with 200 for chatmock and nginx (which
relays the fake's `/health`), with any HTTP status for a peer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procs import HOST, BenchError, Child, spawn

PYTHON = sys.executable
CHAT_DIALECTS = ("chat", "responses", "anthropic", "ollama")


@dataclass(frozen=True)
class ServerSpec:
    name: str
    kind: str
    """`chatmock`, `relay` (speaks the fake's protocol) or `peer`."""
    command: str
    """The command line as reported, `{port}` standing for the port."""
    argv: Callable[[int], list[str]]
    cwd: Path
    env: dict[str, str] | None = None

    @property
    def dialects(self) -> tuple[str, ...]:
        return ("raw",) if self.kind == "relay" else CHAT_DIALECTS

    def dialect(self, wanted: str) -> str:
        """The loadgen dialect this server answers `wanted` in (a relay: always raw)."""
        return "raw" if self.kind == "relay" else wanted


@dataclass
class Server:
    spec: ServerSpec
    port: int
    child: Child

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.child.pid

    def ready(self) -> bool:
        return is_ready(self.port, strict=self.spec.kind != "peer")


def start_fake(stack: contextlib.ExitStack, kind: str, logs: Path,
               repo: Path) -> tuple[Child, int]:
    """The fake Codex backend as a process: `bench` (bench/fakeserver.py) or `testing`
    (`python -m chatmock.testing.fake_upstream`); (the child, its port)."""
    if kind == "bench":
        argv = [PYTHON, str(repo / "bench" / "fakeserver.py"), "--host", HOST, "--port", "0"]
    else:
        argv = [PYTHON, "-m", "chatmock.testing.fake_upstream", "--host", HOST, "--port", "0"]
    fake = spawn(stack, "fake_upstream", argv, logs=logs, cwd=repo, read_stdout=True)
    line = fake.next_line(timeout=30)
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not match:
        raise BenchError(f"unexpected first line from the fake backend: {line!r}")
    return fake, int(match[1])


def start_server(stack: contextlib.ExitStack, spec: ServerSpec, port: int, logs: Path,
                 log_name: str | None = None) -> Server:
    """Spawn `spec` on `port` and wait until it is ready."""
    argv = spec.argv(port)
    child = spawn(stack, log_name or log_file_name(spec.name), argv, logs=logs, cwd=spec.cwd,
                  env=spec.env)
    wait_ready(child, port, strict=spec.kind != "peer")
    return Server(spec, port, child)


def log_file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def health_status(port: int) -> int | None:
    """The status of one raw `GET /health`, None when nothing answered."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            line = sock.recv(64)
    except OSError:
        return None
    parts = line.split(b" ", 2)
    return int(parts[1]) if line.startswith(b"HTTP/1.") and len(parts) > 1 else None


def is_ready(port: int, strict: bool) -> bool:
    status = health_status(port)
    return status == 200 if strict else status is not None


def wait_ready(child: Child, port: int, strict: bool = True, timeout: float = 30.0,
               interval: float = 0.003) -> None:
    deadline = time.monotonic() + timeout
    while not is_ready(port, strict):
        if child.popen.poll() is not None:
            raise BenchError(f"{child.name} exited with {child.popen.returncode}; see its log")
        if time.monotonic() > deadline:
            raise BenchError(f"{child.name} not ready after {timeout:g} s")
        time.sleep(interval)


# --- chatmock ---------------------------------------------------------------


def chatmock_env(home: Path, tree: Path) -> dict[str, str]:
    """The environment without the caller's chatmock settings; `tree`'s package first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGPT_LOCAL_")}
    env["CHATGPT_LOCAL_HOME"] = str(home)
    env["PYTHONPATH"] = str(tree)
    return env


def chatmock_spec(name: str, tree: Path, fake_port: int, home: Path,
                  max_connections: int) -> ServerSpec:
    head = [PYTHON, "-m", "chatmock", "serve", "--host", HOST, "--port"]
    tail = ["--upstream-url", f"http://{HOST}:{fake_port}/backend-api/codex",
            "--max-connections", str(max_connections)]
    command = f"(cd {tree} && {shlex.join(head)} {{port}} {shlex.join(tail)})"
    return ServerSpec(name, "chatmock", command, lambda port: [*head, str(port), *tail],
                      tree, chatmock_env(home, tree))


def check_imports_from(spec: ServerSpec) -> None:
    """Make sure `spec` runs the chatmock package of its own tree."""
    done = subprocess.run([PYTHON, "-c", "import chatmock; print(chatmock.__file__)"],
                          cwd=spec.cwd, env=spec.env, capture_output=True, text=True,
                          timeout=60, check=False)
    if not done.stdout.strip().startswith(str(spec.cwd)):
        raise BenchError(f"{spec.name} would import chatmock from {done.stdout.strip()!r}, "
                         f"not from {spec.cwd}")


def compile_tree(spec: ServerSpec) -> None:
    """Bytecode for every module of `spec`'s chatmock, as an installed package has it.

    With PYTHONDONTWRITEBYTECODE set (it is on the measuring machine) a tree without
    `__pycache__` (every fresh `--ab` worktree) compiled all of chatmock at every
    start: ~60 ms more start-up, which read as a start-up regression of the other
    commit. compileall writes the files whatever that variable says."""
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(spec.cwd / "chatmock")],
                   cwd=spec.cwd, env=spec.env, capture_output=True, timeout=300, check=False)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode:
        raise BenchError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def ab_worktree(stack: contextlib.ExitStack, repo: Path, ref: str) -> tuple[Path, str]:
    """A detached `git worktree` of `ref` in a temporary directory, removed on exit;
    (its path, the short commit)."""
    short = git(repo, "rev-parse", "--short", f"{ref}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix="chatmock-ab-"))
    tree = parent / f"chatmock-{short}"
    git(repo, "worktree", "add", "--detach", str(tree), short)

    def remove() -> None:
        with contextlib.suppress(BenchError):
            git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)

    stack.callback(remove)
    return tree, short


# --- nginx ------------------------------------------------------------------


NGINX_CONF = """\
daemon off;
master_process off;
worker_rlimit_nofile {nofile};
pid {root}/nginx.pid;
error_log stderr warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream fake {{ server {host}:{fake_port}; keepalive 1024; keepalive_requests 1000000; }}
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            chunked_transfer_encoding on;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""


def find_nginx(explicit: str | None) -> str | None:
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)),
        None)


def nginx_spec(binary: str, root: Path, fake_port: int, nofile: int) -> ServerSpec:
    """nginx as a one-process relay to the fake; its configuration is written into
    `root`/<port>/ when it is started."""

    def argv(port: int) -> list[str]:
        home = root / str(port)
        home.mkdir(parents=True, exist_ok=True)
        conf = NGINX_CONF.format(root=home, host=HOST, port=port, fake_port=fake_port,
                                 nofile=nofile, connections=max(1024, nofile - 64))
        (home / "nginx.conf").write_text(conf)
        return [binary, "-p", str(home), "-c", str(home / "nginx.conf"),
                "-e", "stderr"]

    command = f"{binary} -p DIR -c DIR/nginx.conf -e stderr  (config: bench/servers.py)"
    return ServerSpec("nginx", "relay", command, argv, root)


def trio_relay_spec(fake_port: int) -> ServerSpec:
    """bench/trio_relay.py: the same byte relay as nginx, in Python and trio."""
    script = Path(__file__).resolve().parent / "trio_relay.py"

    def argv(port: int) -> list[str]:
        return [PYTHON, str(script), "--host", HOST, "--port", str(port),
                "--upstream-port", str(fake_port)]

    command = f"{PYTHON} bench/trio_relay.py --port {{port}} --upstream-port {fake_port}"
    env = dict(os.environ, PYTHONPATH=str(script.parent.parent))  # this tree's chatmock.net
    return ServerSpec("trio-relay", "relay", command, argv, script.parent, env)


# --- peers ------------------------------------------------------------------


def peer_spec(spec: str, fake_port: int, home: Path) -> ServerSpec:
    """`NAME=COMMAND-TEMPLATE` (see the module docstring)."""
    name, sep, template = spec.partition("=")
    if not sep or not name or not template:
        raise BenchError(f"--peer wants NAME=COMMAND, got {spec!r}")
    fields = {"upstream": f"http://{HOST}:{fake_port}/backend-api/codex",
              "fake": f"http://{HOST}:{fake_port}", "home": str(home), "host": HOST}

    def argv(port: int) -> list[str]:
        return shlex.split(template.format(port=port, **fields))

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGPT_LOCAL_")}
    env["CHATGPT_LOCAL_HOME"] = str(home)
    return ServerSpec(name, "peer", template, argv, home, env)
