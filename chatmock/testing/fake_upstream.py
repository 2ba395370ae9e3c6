"""The fake Codex backend and OAuth server as a process: `python -m chatmock.testing.fake_upstream`.

Serves `FakeCodex` (see `fake_codex.py` for routes, validation and the
`fake:` scenario directives) and `FakeOAuth` (see `fake_oauth.py`) over
chatmock's own server: HTTP/1.1, and HTTP/2 with prior knowledge. Point
chatmock at it with `--upstream-url http://127.0.0.1:PORT/backend-api/codex`
and, for login and refresh, `CHATGPT_LOCAL_ISSUER=http://127.0.0.1:PORT`.
With `--tls-cert FILE --tls-key FILE` it serves TLS instead, offering `h2`
and `http/1.1` by ALPN like the real backend (chatmock then needs the CA in
`SSL_CERT_FILE` and an `https://` upstream URL), so chatmock's HTTP/2 client
is what talks to it. With `--port 0` the bound port is printed as the first
line on stdout:

    fake-upstream listening on http://127.0.0.1:PORT    (https:// with TLS)

`GET /__fake__/protocols` counts the requests served per HTTP version
(`{"1.1": n, "2": m}`), so a test can tell which one its client used.

Requests under `/oauth/`, `/api/accounts/`, `/__fake__/oauth/` and
`/codex/device` go to the OAuth server (authorize, token, device code, test
controls such as `GET /__fake__/oauth/state`); everything else goes to the
backend. The OAuth issuer is the bound address.

By default the backend accepts any bearer (except a JWT whose `exp` has
passed), so an auth.json from `credentials.write_auth_file` works. Like the
real backend it also wants a Codex client's `chatgpt-account-id`,
`originator`, `user-agent` and `session-id` headers (chatmock sends them;
`credentials.codex_headers` builds them for direct calls). With
`--check-tokens` it accepts only access tokens issued by this process's
OAuth server that are neither expired nor revoked.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
from collections import Counter
from collections.abc import Mapping, Sequence

import trio

from chatmock import jsonbytes
from chatmock.server.exchange import ClientGone, Request, Responder
from chatmock.server.listen import open_listeners, server_tls_context
from chatmock.testing.fake_codex import FakeCodex, FakeReply
from chatmock.testing.fake_oauth import FakeOAuth, is_oauth_path
from chatmock.testing.fake_server import FakeApp, base_url, send_reply, serve_app


class FakeUpstreamApp(FakeApp):
    """HTTP adapter: request in, `FakeReply` out, streamed with its pacing.

    OAuth paths go to `oauth`, the rest to `fake`."""

    fake: FakeCodex

    def __init__(self, fake: FakeCodex | None = None, oauth: FakeOAuth | None = None) -> None:
        super().__init__(fake or FakeCodex())
        self.oauth = oauth or FakeOAuth()
        self.versions: Counter[str] = Counter()

    @classmethod
    def create(cls, *, check_tokens: bool = False) -> FakeUpstreamApp:
        """A backend and OAuth server; with `check_tokens` the backend only accepts
        live access tokens issued by that OAuth server."""
        oauth = FakeOAuth()
        return cls(FakeCodex(token_check=oauth.access_token_status if check_tokens else None),
                   oauth)

    def dispatch(self, method: str, target: str, headers: Mapping[bytes, bytes],
                 body: bytes) -> FakeReply:
        server = self.oauth if is_oauth_path(target.partition("?")[0]) else self.fake
        return server.handle(method, target, headers, body)

    async def __call__(self, request: Request, out: Responder) -> None:
        if request.path == PROTOCOLS_PATH:
            await out.respond(200, [(b"content-type", b"application/json")],
                              jsonbytes.dumps(dict(self.versions)))
            return
        self.versions[request.http_version] += 1
        await super().__call__(request, out)

    async def reply(self, reply: FakeReply, out: Responder) -> None:
        """Send `reply`, counting streamed ones in `fake.streams` (open, completed, and
        abandoned when the client, chatmock, went away: what a test of cancellation reads)."""
        if reply.chunks is None:
            await send_reply(reply, out)
            return
        counters = self.fake.streams
        counters.open += 1
        ended, gone = False, False
        try:
            await send_reply(reply, out)
            ended = True
        except ClientGone:
            gone = True
            raise
        finally:  # also when the server cancelled us because the client left
            counters.open -= 1
            counters.completed += ended
            counters.abandoned += gone or out.client_gone


PROTOCOLS_PATH = "/__fake__/protocols"


async def run(host: str, port: int, shutdown: trio.Event | None = None,
              app: FakeUpstreamApp | None = None, tls: ssl.SSLContext | None = None,
              task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    stop = shutdown if shutdown is not None else trio.Event()
    served = app if app is not None else FakeUpstreamApp()
    listeners = await open_listeners(host, port)
    if not served.oauth.issuer:
        served.oauth.issuer = base_url(host, listeners[0].socket.getsockname()[1],
                                       "https" if tls else "http")
    await serve_app(served, listeners, stop, tls=tls, task_status=task_status)


async def _main(host: str, port: int, check_tokens: bool, tls: ssl.SSLContext | None) -> None:
    shutdown = trio.Event()
    app = FakeUpstreamApp.create(check_tokens=check_tokens)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(run, host, port, shutdown, app, tls)
            url = base_url(host, bound, "https" if tls else "http")
            print(f"fake-upstream listening on {url}", flush=True)
            async for _ in signals:
                shutdown.set()
                break


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatmock.testing.fake_upstream",
                                     description="Fake ChatGPT Codex backend and OAuth server "
                                                 "for tests and bench.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--check-tokens", action="store_true",
                        help="accept only live access tokens issued by the fake OAuth server")
    parser.add_argument("--tls-cert", help="serve TLS (h2 and http/1.1 by ALPN) with this "
                                           "PEM certificate chain")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    tls = server_tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    trio.run(_main, args.host, args.port, args.check_tokens, tls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
