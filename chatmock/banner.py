"""What `serve` says when it starts: where each API is, and who is signed in.

Two log records, text for people and fields for `--log-format json`:

    chatmock 1.0 listening on http://127.0.0.1:8000 (upstream https://chatgpt.com/...)
      OpenAI base URL     http://127.0.0.1:8000/v1
      Anthropic base URL  http://127.0.0.1:8000
      Ollama base URL     http://127.0.0.1:8000
      Status page         http://127.0.0.1:8000/ (open it in a browser)
    signed in as user@example.com (Plus plan), credentials from ~/.chatgpt-local/auth.json

The first line keeps its historical shape (tests and scripts read the port from it).
A wildcard bind (`0.0.0.0`, `::`) is shown as the loopback address, the one a
browser on the same machine can open. Never a token: the account line comes from
`info.account_summary`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatmock.auth.tokens import Credentials

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """`scheme://host:port` with IPv6 in brackets and a wildcard bind shown as loopback."""
    shown = _WILDCARDS.get(host, host)
    return f"{scheme}://[{shown}]:{port}" if ":" in shown else f"{scheme}://{shown}:{port}"


def endpoints(host: str, port: int, scheme: str = "http") -> dict[str, str]:
    base = base_url(host, port, scheme)
    return {"openai_base_url": base + "/v1", "anthropic_base_url": base,
            "ollama_base_url": base, "status_page": base + "/"}


def start_banner(version: str, host: str, port: int, upstream: str, *,
                 tls: bool = False) -> tuple[str, dict[str, Any]]:
    """The listening record: its text and its fields (`https` URLs with `tls`)."""
    scheme = "https" if tls else "http"
    urls = endpoints(host, port, scheme)
    lines = [f"chatmock {version} listening on {scheme}://{host}:{port} (upstream {upstream})",
             f"  OpenAI base URL     {urls['openai_base_url']}",
             f"  Anthropic base URL  {urls['anthropic_base_url']}",
             f"  Ollama base URL     {urls['ollama_base_url']}",
             f"  Status page         {urls['status_page']} (open it in a browser)"]
    return "\n".join(lines), {"event": "listening", "version": version, "host": host,
                              "port": port, "upstream": upstream, **urls}


def account_banner(credentials: Credentials) -> tuple[str, dict[str, Any]]:
    """The signed-in record (email and plan, never a token): its text and its fields."""
    from chatmock.info import account_summary  # once signed in, after the listener is up

    summary = account_summary(credentials)
    where = f"credentials from {credentials.path}"
    if not summary["signed_in"]:
        return f"account not known yet (no id token; refreshed on first use), {where}", {
            "event": "account", "auth_file": str(credentials.path)}
    return (f"signed in as {summary['email']} ({summary['plan']} plan), {where}",
            {"event": "account", "email": summary["email"], "plan": summary["plan"],
             "auth_file": str(credentials.path)})
