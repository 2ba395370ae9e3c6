"""`open_app` builds what the router and `/health` need; `App.complete` the rest, on
the first use of any of it (chatmock/app.py): `serve` answers before building it."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import trio

from chatmock.app import App, Backends, build_app, open_app
from chatmock.config import Settings
from chatmock.errors import ConfigError
from chatmock.routes import common
from chatmock.server.exchange import Request, Responder


def test_the_rest_is_built_once_on_first_use(tmp_path: Path) -> None:
    app = open_app(Settings(model_sync=False), env={"CHATGPT_LOCAL_HOME": str(tmp_path)})

    def state() -> tuple[bool, bool]:  # (built, builder left)
        return app.built is not None, app.builder is not None

    assert state() == (False, True)
    assert app.usages() == [app.usage] and state() == (False, True)  # no pool to ask yet
    backend = app.backend
    assert state() == (True, False)
    assert app.complete() is app.built and app.backend is backend
    assert app.usages()[0] is app.usage and backend.on_headers == app.usage.record
    assert app.catalog is app.models.catalog and app.upstreams is not None


def test_a_failed_build_is_tried_again(tmp_path: Path) -> None:
    app = open_app(Settings(model_sync=False), env={"CHATGPT_LOCAL_HOME": str(tmp_path)})
    real, calls = app.builder, []
    assert real is not None

    def builder(app: App) -> Backends:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("first time")
        return real(app)

    app.builder = builder
    with pytest.raises(OSError):
        app.complete()
    assert app.complete() is app.built and len(calls) == 2


def test_build_app_builds_it_all(tmp_path: Path) -> None:
    app = build_app(Settings(model_sync=False), env={"CHATGPT_LOCAL_HOME": str(tmp_path)})
    assert app.built is not None and app.provider_models is not None


def test_a_setting_open_app_cannot_use_fails_before_listening(tmp_path: Path) -> None:
    empty = tmp_path / "prompt.md"
    empty.write_text("")
    with pytest.raises(ConfigError):
        open_app(Settings(base_instructions=str(empty)),
                 env={"CHATGPT_LOCAL_HOME": str(tmp_path)})


def test_health_answers_without_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app: App = open_app(Settings(model_sync=False), env={"CHATGPT_LOCAL_HOME": str(tmp_path)})
    sent: list[tuple[int, dict[str, object]]] = []

    async def send_json(out: Responder, status: int, document: dict[str, object]) -> None:
        sent.append((status, document))

    monkeypatch.setattr(common, "send_json", send_json)
    trio.run(common.health, app, cast(Request, None), cast(Responder, None))
    assert sent[0][0] == 200 and sent[0][1]["status"] == "ok"
    assert app.built is None
