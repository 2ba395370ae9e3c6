"""`serve` imports only what answering its first connection needs (issue 13, start-up).

A fresh `python -m chatmock serve`-like process is stopped the moment its server is
up, before it accepted anything, and its `sys.modules` is read: the routes and the
dialects behind them load with their first request (`chatmock/routes/__init__.py`),
the response store opens after the server listens, the other providers' backends
with a provider that needs them, HTTP/2 with the first HTTP/2 connection; pyjwt is
imported in a worker thread once the server answers (cli.py `_after_start`); the app's
objects that only the API routes use are built just after the server answers
(`App.complete`, cli.py `_settle`). Each module below was
imported before the listener in an earlier version; what it costs is in
bench/RESULTS.md. Not a timed test: a module creeping back in fails it whatever the
machine's speed.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatmock.routes import TABLE, Deferred, load_all
from chatmock.testing.credentials import write_auth_file

PROBE = """
import os, sys
from chatmock import cli

class Stop:
    def started(self, value=None):
        print("\\n".join(sorted(sys.modules)), flush=True)
        os._exit(0)

real_serve = cli.serve

async def serve(*args, task_status, **kwargs):
    await real_serve(*args, task_status=Stop(), **kwargs)

cli.serve = serve
sys.exit(cli.main(sys.argv[1:]))
"""

NOT_BEFORE_THE_FIRST_REQUEST = (
    # the routes and dialects: on their first request
    "chatmock.routes.openai", "chatmock.routes.anthropic", "chatmock.routes.ollama",
    "chatmock.routes.completions", "chatmock.routes.responses", "chatmock.routes.responses_ws",
    "chatmock.routes.status", "chatmock.routes.relay", "chatmock.dialects.chat",
    "chatmock.dialects.anthropic", "chatmock.dialects.ollama", "chatmock.dialects.responses",
    "chatmock.dialects.events", "chatmock.dialects.machine", "chatmock.dialects.sampling",
    # the other providers' backends: with a provider that uses them
    "chatmock.upstream.chat_backend", "chatmock.upstream.qwen_backend",
    "chatmock.upstream.backoff",
    # the response store: opened once the server listens
    "sqlite3", "chatmock.state.response_store_sqlite", "chatmock.state.response_store",
    "chatmock.turns",
    # HTTP/2 and WebSocket: with the first connection that speaks them
    "h2", "hpack", "hyperframe", "wsproto", "chatmock.net.h2wire", "chatmock.server.http2",
    # the API routes' objects (`App.complete`): once the server answers
    "chatmock.auth.oauth", "chatmock.auth.store", "chatmock.auth.tokens",
    "chatmock.auth.accounts", "chatmock.net.client", "chatmock.upstream.codex",
    "chatmock.upstream.accounts", "chatmock.upstream.model_sync", "chatmock.catalog",
    "chatmock.state.pool_state", "chatmock.state.prompt_cache", "chatmock.upstream.routing",
    "chatmock.upstream.instructions",  # with --base-instructions none (the default)
    # fleet mode's: with --state redis:// only
    "chatmock.redis_url", "chatmock.net.redis", "chatmock.upstream.gate_fleet",
    "chatmock.state.gate_leases",
    # never before listening
    "encodings.idna", "importlib.resources",
    "http",  # HTTPStatus's phrases: 200's is known (server/h1responder.py)
    # `serve --workers` only
    "chatmock.supervisor",
    # the other commands
    "chatmock.doctor", "chatmock.commands", "chatmock.info", "chatmock.auth.login",
)


def modules_when_listening(home: Path, *flags: str) -> set[str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("CHATGPT_LOCAL_", "CHATMOCK_", "COVERAGE_"))}
    env["CHATGPT_LOCAL_HOME"] = str(home)
    argv = [sys.executable, "-c", PROBE, "serve", "--port", "0",
            "--upstream-url", "http://127.0.0.1:9/backend-api/codex", *flags]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_serve_listens_before_importing_what_only_requests_need(tmp_path: Path) -> None:
    loaded = modules_when_listening(tmp_path)
    assert {"trio", "h11", "chatmock.app", "chatmock.routes.common"} <= loaded  # the probe works
    assert sorted(loaded.intersection(NOT_BEFORE_THE_FIRST_REQUEST)) == []


def test_a_signed_in_home_does_not_import_pyjwt_before_listening(tmp_path: Path) -> None:
    """The account pool finds its auth.json without decoding its tokens (pyjwt and
    cryptography: ~35 ms of import, paid before listening in an earlier version)."""
    write_auth_file(tmp_path)
    loaded = modules_when_listening(tmp_path)
    assert "chatmock.app" in loaded and not {"jwt", "cryptography"} & loaded


def test_the_memory_store_is_there_from_the_start(tmp_path: Path) -> None:
    loaded = modules_when_listening(tmp_path, "--responses-store", "memory")
    assert "chatmock.state.response_store" in loaded and "sqlite3" not in loaded


def test_every_deferred_route_names_a_route() -> None:
    load_all()
    for endpoint in (*TABLE.exact.values(), *TABLE.prefixes.values()):
        for method, route in endpoint.methods.items():
            assert not isinstance(route, Deferred), method
            assert route.__module__.startswith("chatmock.routes."), route


def test_config_knows_the_embedded_state() -> None:
    from chatmock.config import EMBEDDED_STATE, Settings
    from chatmock.redis_url import EMBEDDED

    assert EMBEDDED_STATE == EMBEDDED == Settings().state


def test_the_known_reason_phrases_are_httpstatus_ones() -> None:
    from http import HTTPStatus

    from chatmock.server import h1responder

    for status in (200, 404, 429, 599):
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        assert h1responder.reason(status) == phrase.encode()


def test_the_listener_knows_http2s_preface() -> None:
    from chatmock.net.h2wire import PREFACE
    from chatmock.server import listen

    assert listen.PREFACE == PREFACE


def test_the_command_starts_with_the_collector_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatmock import __main__ as entry

    calls: list[str] = []

    def main() -> int:
        calls.append("main")
        return 0

    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr("chatmock.cli.main", main)
    assert entry.run() == 0 and calls == ["disable", "main"]
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'chatmock = "chatmock.__main__:run"' in pyproject


def test_commands_other_than_serve_run_with_the_collector_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from chatmock import cli

    monkeypatch.setenv("CHATGPT_LOCAL_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    gc.disable()
    try:
        cli.main(["logout", "nobody"])
        assert gc.isenabled()
    finally:
        gc.enable()
    assert "nobody" in capsys.readouterr().err


STOP_AT_ONCE = """
import os, signal, sys
from chatmock import cli

class SigtermWhenListening:
    def __init__(self, inner):
        self.inner = inner

    def started(self, value=None):
        self.inner.started(value)
        os.kill(os.getpid(), signal.SIGTERM)

real_serve = cli.serve

async def serve(*args, task_status, **kwargs):
    await real_serve(*args, task_status=SigtermWhenListening(task_status), **kwargs)

cli.serve = serve
code = cli.main(sys.argv[1:])
print("built" if "chatmock.upstream.codex" in sys.modules else "not built", flush=True)
sys.exit(code)
"""


def test_a_serve_stopped_before_it_settled_does_not_build_the_rest(tmp_path: Path) -> None:
    """SIGTERM as the server starts answering: the drain and the clean-up close what
    was built and do not build the API routes' objects only to close them."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("CHATGPT_LOCAL_", "CHATMOCK_", "COVERAGE_"))}
    env["CHATGPT_LOCAL_HOME"] = str(tmp_path)
    write_auth_file(tmp_path)
    argv = [sys.executable, "-c", STOP_AT_ONCE, "serve", "--port", "0",
            "--upstream-url", "http://127.0.0.1:9/backend-api/codex"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["not", "built"], result.stdout
    assert "Traceback" not in result.stderr
