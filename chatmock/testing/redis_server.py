"""A throwaway `redis-server` for tests and the bench: loopback, a free port, a temp dir.

Nothing is persisted (`--save ''`, `--appendonly no`); the log goes to the
directory given. `pause`/`resume` stop the process with SIGSTOP/SIGCONT (a
server that accepts connections in the kernel but never answers), `restart`
starts it again on the same port (a server that went away and came back).

`redis_server_binary()` finds the program; tests skip when it is missing,
except under CI (`CHATMOCK_CI` set by `.ci/run`), where a missing server fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CI_VARIABLE = "CHATMOCK_CI"
START_SECONDS = 10.0


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or next(
        (path for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
         if os.access(path, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process; `url` is where clients reach it."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None,
                 password: str = "", tls_files: tuple[Path, Path] | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.extra = extra
        self.password = password
        self.port = port or free_port()
        self.tls_files = tls_files  # (certificate chain, key): also serve TLS on `tls_port`
        self.tls_port = free_port() if tls_files else 0
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        secret = f":{self.password}@" if self.password else ""
        return f"redis://{secret}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        arguments = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
                     "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                     "--logfile", str(self.directory / "redis.log"), "--daemonize", "no",
                     *(["--requirepass", self.password] if self.password else []),
                     *self._tls_arguments(), *self.extra]
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _tls_arguments(self) -> list[str]:
        if self.tls_files is None:
            return []
        certificate, key = self.tls_files
        return ["--tls-port", str(self.tls_port), "--tls-cert-file", str(certificate),
                "--tls-key-file", str(key), "--tls-auth-clients", "no"]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                if self.command(b"PING").startswith((b"+PONG", b"-NOAUTH")):
                    return
            except OSError:
                time.sleep(0.02)
        log = self.directory / "redis.log"
        raise RuntimeError(f"redis-server did not start on port {self.port}: "
                           f"{log.read_text() if log.exists() else 'no log'}")

    def command(self, *words: bytes) -> bytes:
        """Send one inline command, return the raw reply's first read (a probe)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            if self.password:
                connection.sendall(b"AUTH " + self.password.encode() + b"\r\n")
                connection.recv(64)
            connection.sendall(b" ".join(words) + b"\r\n")
            return connection.recv(65536)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
