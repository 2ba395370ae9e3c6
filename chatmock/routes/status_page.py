"""The status page's HTML: one self-contained document, no CDN, no framework.

It fetches `/status.json` every 2 s and draws it with DOM calls only (`textContent`,
never `innerHTML`, so nothing from the server is ever parsed as markup). Its
Content-Security-Policy allows exactly its own inline script and style (by hash),
requests to this server only, no frames around it and no form submission.
With an access token set, a 401 shows a password field; the token goes to
`sessionStorage` (this tab only) and out as `Authorization: Bearer`, never in a URL.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
:root{color-scheme:light dark;--mute:#777;--line:#8884;--ok:#2a2;--warn:#d90;--bad:#d33}
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:64em;padding:0 1em}
h1{font-size:1.4em;margin:0}h2{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.2em .5em;
border-bottom:1px solid var(--line);vertical-align:top}th{font-weight:600}
.muted{color:var(--mute)}code{font-size:.95em}
.bar{height:.7em;background:var(--line);border-radius:.35em;overflow:hidden;width:20em;
display:inline-block;vertical-align:middle;margin-right:.6em}
.bar div{height:100%;background:var(--ok)}.bar .warn{background:var(--warn)}
.bar .bad{background:var(--bad)}.chip{display:inline-block;border:1px solid var(--line);
border-radius:1em;padding:0 .6em;margin:.15em}#state{float:right}
"""

SCRIPT = """
const KEY = 'chatmock.access-token';
const $ = id => document.getElementById(id);
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}
function row(tag, cells) {
  const tr = el('tr');
  for (const cell of cells) {
    const td = el(tag);
    if (cell instanceof Node) td.append(cell); else td.textContent = cell ?? '';
    tr.append(td);
  }
  return tr;
}
function fill(id, head, rows, empty) {
  const box = $(id);
  if (!rows.length) { box.replaceChildren(el('p', empty, 'muted')); return; }
  const table = el('table');
  table.append(row('th', head), ...rows.map(cells => row('td', cells)));
  box.replaceChildren(table);
}
function span(seconds) {
  let left = Math.max(0, Math.round(seconds));
  const parts = [[86400, 'd'], [3600, 'h'], [60, 'm']].flatMap(([size, unit]) => {
    const count = Math.floor(left / size); left %= size; return count ? [count + unit] : [];
  });
  return parts.length ? parts.join(' ') : left + 's';
}
function when(text) { return text ? new Date(text).toLocaleString() : ''; }
function bar(percent) {
  const outer = el('span', null, 'bar');
  const inner = el('div', null, percent >= 90 ? 'bad' : percent >= 75 ? 'warn' : '');
  inner.style.width = Math.min(100, Math.max(0, percent)) + '%';
  outer.append(inner);
  return outer;
}
function usage(limits) {
  const box = el('div');
  if (!limits.windows) { box.append(el('p', limits.message, 'muted')); return box; }
  for (const w of limits.windows) {
    const line = el('p', null, 'window');
    line.append(el('b', w.label + ' '), el('br'), bar(w.used_percent),
                w.used_percent.toFixed(1) + '% used');
    if (w.resets_at_rfc3339) {
      const left = (Date.parse(w.resets_at_rfc3339) - Date.now()) / 1000;
      line.append(el('span', ' \\u00b7 resets in ' + span(left) + ' (' +
                     when(w.resets_at_rfc3339) + ')', 'muted'));
    }
    box.append(line);
  }
  box.append(el('p', 'Updated ' + when(limits.last_updated_rfc3339), 'muted'));
  return box;
}
function accounts(list) {
  $('accounts').replaceChildren(...list.map(a => {
    const box = el('div', null, 'account');
    const who = a.signed_in ? a.login + ' \\u00b7 ' + a.plan + ' plan' : a.message + ': ' + a.hint;
    const pooled = a.name ? a.name + ' (' + a.state + ') \\u00b7 ' : '';
    box.append(el('p', pooled + a.provider + ': ' + who));
    if (a.token_expires_at) box.append(el('p', 'Token valid until ' + when(a.token_expires_at),
                                          'muted'));
    box.append(usage(a.usage_limits));
    return box;
  }));
}
function render(s) {
  $('version').textContent = 'chatmock ' + s.server.version + ' \\u00b7 up ' +
    span(s.server.uptime_seconds);
  accounts(s.accounts);
  fill('live', ['Request', 'Model', 'Dialect', 'Client', 'For', 'Sent'], s.live.map(x => [
    x.method + ' ' + x.path, x.model + (x.effort ? ' (' + x.effort + ')' : ''), x.dialect,
    x.client, span(x.seconds),
    x.streaming ? x.bytes + ' B' : '\u2014']), 'No request in flight.');
  fill('errors', ['When', 'Status', 'Request', 'Model', 'Message'], s.errors.map(e => [
    new Date(e.at * 1000).toLocaleTimeString(), e.status, e.method + ' ' + e.path, e.model,
    e.message]), 'No errors.');
  fill('providers', ['Provider', 'Kind', 'Base URL', 'Ready', 'Gate'], s.providers.map(p => [
    p.name + (p.default ? ' (default)' : ''), p.kind, p.base_url,
    p.usable ? 'yes' : 'set ' + p.missing.join(', '),
    p.gate ? p.gate.in_use + '/' + p.gate.permits + ' busy, ' + p.gate.waiting + ' waiting'
           : '\\u2014']), 'No providers.');
  const store = s.responses_store;
  $('store').textContent = store.kind === 'memory'
    ? store.entries + ' of ' + store.max_entries + ' turns, ' + store.bytes + ' of ' +
      store.max_bytes + ' bytes (in memory)'
    : store.kind === 'redis'
    ? 'Redis at ' + store.redis + (store.available ? '' : ' (not answering: ' + store.unsent +
      ' turns kept here until it does)')
    : 'SQLite file (chatmock info shows how full it is)';
  $('models').replaceChildren(...s.models.list.map(m => el('span', m.id, 'chip')),
                              el('span', ' from ' + s.models.source, 'muted'));
}
async function refresh() {
  const headers = {Accept: 'application/json'};
  const token = sessionStorage.getItem(KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  let reply;
  try {
    reply = await fetch('/status.json', {headers, cache: 'no-store'});
  } catch (error) { $('state').textContent = 'chatmock is not reachable'; return; }
  $('login').hidden = reply.status !== 401;
  if (!reply.ok) {
    $('state').textContent = reply.status === 401
      ? (token ? 'that access token was refused' : 'this server wants its access token')
      : 'status.json answered ' + reply.status;
    return;
  }
  render(await reply.json());
  $('state').textContent = 'updated ' + new Date().toLocaleTimeString();
}
$('login').addEventListener('submit', event => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $('token').value);
  $('token').value = '';
  refresh();
});
for (const [id, path] of [['openai', '/v1'], ['anthropic', ''], ['ollama', '']]) {
  $(id).textContent = location.origin + path;
}
refresh();
setInterval(refresh, 2000);
"""

BODY = """<header><span id="state" class="muted">loading\u2026</span><h1>chatmock</h1>
<div id="version" class="muted"></div></header>
<form id="login" hidden><p>This server needs its access token (kept in this tab only):
<input id="token" type="password" autocomplete="off" size="40"> <button>Show status</button>
</p></form>
<p class="muted">OpenAI base URL <code id="openai"></code> \u00b7 Anthropic <code id="anthropic">
</code> \u00b7 Ollama <code id="ollama"></code></p>
<h2>Account</h2><div id="accounts"></div>
<h2>Live requests</h2><div id="live"></div>
<h2>Recent errors</h2><div id="errors"></div>
<h2>Providers</h2><div id="providers"></div>
<h2>Models</h2><div id="models"></div>
<h2>Response store</h2><p id="store"></p>"""


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


PAGE = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>chatmock status</title><style>{STYLE}</style></head>"
        f"<body>{BODY}<script>{SCRIPT}</script></body></html>").encode()
CSP = (f"default-src 'none'; script-src {_digest(SCRIPT)}; style-src {_digest(STYLE)}; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = ((b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
                (b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
