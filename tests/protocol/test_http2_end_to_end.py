"""HTTP/2 through the whole app, in one process: an h2 client, chatmock's router and routes,
and the fake backend behind TLS spoken to in HTTP/2. A client's RST_STREAM reaches the
backend as a reset of that request's stream, and of nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import trio
import trio.testing
import trustme

from chatmock.app import build_app
from chatmock.config import Settings
from chatmock.routes import TABLE
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.http2 import H2ServerConnection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.router import Router
from chatmock.testing.credentials import write_auth_file
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .h2client import H2Client
from .test_upstream_h2 import start_tls


class Backend:
    """The fake backend, noting which prompts' requests ended cancelled."""

    def __init__(self) -> None:
        self.fake = FakeUpstreamApp()
        self.cancelled: list[str] = []
        self.finished: list[str] = []

    async def __call__(self, request: Request, out: Responder) -> None:
        body = await request.body()
        marker = body.split(b"marker-", 1)[-1][:4].decode() if b"marker-" in body else "-"
        try:
            await self.fake(request, out)
        except trio.Cancelled:
            self.cancelled.append(marker)
            raise
        self.finished.append(marker)


def chat(marker: str, prompt: str) -> bytes:
    return json.dumps({"model": "gpt-5.4", "stream": True, "messages": [
        {"role": "user", "content": f"marker-{marker} {prompt}"}]}).encode()


async def test_a_reset_stream_resets_its_backend_stream_only(
        nursery: trio.Nursery, trusted_ca: trustme.CA, tmp_path: Path) -> None:
    backend = Backend()
    url = await start_tls(nursery, backend, trusted_ca, tmp_path)
    home = tmp_path / "home"
    write_auth_file(home)
    app = build_app(Settings(model_sync=False,
                             upstream_url=url.removesuffix("/responses")),
                    env={"CHATGPT_LOCAL_HOME": str(home)})
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(H2ServerConnection(server_stream, Router(app, TABLE),
                                          ConnectionLimits(), Lifecycle()).serve)
    client = H2Client(client_stream)
    await client.start(nursery)
    headers = [(b"content-type", b"application/json")]
    slow = client.open("POST", "/v1/chat/completions", headers=headers,
                       body=chat("slow", "fake:deltas=50 fake:delay_ms=200"))
    kept = client.open("POST", "/v1/chat/completions", headers=headers,
                       body=chat("kept", "fake:deltas=20 fake:delay_ms=20"))
    await client.flush()
    await client.wait_for(lambda: client.streams[slow].chunks)
    client.conn.reset_stream(slow, 8)
    await client.flush()
    reply = await client.wait(kept)
    assert reply.status == 200 and reply.body.rstrip().endswith(b"data: [DONE]")
    with trio.fail_after(5):
        while "slow" not in backend.cancelled:
            await trio.sleep(0.01)
    assert backend.finished == ["kept"]
    await app.http.aclose()
