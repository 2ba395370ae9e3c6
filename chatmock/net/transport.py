"""Opening byte streams to an origin: TCP, and TLS over it for https.

The TLS context is built once per process: loading the system trust store
costs milliseconds, far too much to pay per request. Foreign exceptions
(OSError, ssl errors, trio's) become `UpstreamError` here, once, so the client
above deals with one error type.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl
from functools import cache, lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

import trio

from chatmock.errors import UpstreamError
from chatmock.net.tcpstream import TCPStream


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@lru_cache(maxsize=64)
def split_url(url: str) -> tuple[Origin, str]:
    """(origin, request target) of an absolute http(s) URL; remembered, as every request
    to a backend asks for the same few URLs."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Origin(scheme, parts.hostname, port), target


HTTP2_ALPN = ("h2", "http/1.1")
HTTP1_ALPN = ("http/1.1",)


@cache
def tls_context(alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext:
    """Process-wide client TLS context with the system trust store, one per ALPN list:
    `h2` and `http/1.1` for HTTP (`http/1.1` alone when HTTP/2 is off), none for Redis."""
    context = ssl.create_default_context()
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def negotiated_protocol(stream: trio.abc.Stream) -> str:
    """What ALPN chose on a stream from `open_stream` ("" for plain TCP)."""
    if isinstance(stream, trio.SSLStream):
        return stream.selected_alpn_protocol() or ""
    return ""


async def open_stream(origin: Origin, connect_timeout: float, *,
                      http2: bool = False) -> trio.abc.Stream:
    """A connected (and, for https, handshaken) stream to `origin`; with `http2`, TLS
    offers `h2` first (see `negotiated_protocol`)."""
    try:
        with trio.fail_after(connect_timeout):
            tcp = await _open_tcp(origin.host, origin.port)
            if origin.scheme != "https":
                return tcp
            tls = trio.SSLStream(tcp, tls_context(HTTP2_ALPN if http2 else HTTP1_ALPN),
                                 server_hostname=origin.host,
                                 https_compatible=True)
            try:
                await tls.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(tcp)
                raise
            return tls
    except trio.TooSlowError:
        raise UpstreamError(f"connecting to {origin.authority} timed out after "
                            f"{connect_timeout:g} s", status=504) from None
    except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
        raise UpstreamError(f"cannot connect to {origin.authority}: {error_reason(exc)}") from None


async def _open_tcp(host: str, port: int) -> TCPStream:
    """A TCP connection; to an address literal (a local backend) in one wait.

    trio's `open_tcp_stream` resolves and races addresses (happy eyeballs) in a
    nursery of its own: about five scheduler rounds per connection, each as long
    as a round of every busy stream (a second under load). A literal has one
    address and nothing to race, so it gets a plain non-blocking connect."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return TCPStream.from_trio(await trio.open_tcp_stream(host, port))
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await trio.lowlevel.checkpoint_if_cancelled()
        failure = sock.connect_ex((host, port))
        if failure == errno.EINPROGRESS:
            await trio.lowlevel.wait_writable(sock)
            failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if failure:
            raise OSError(failure, os.strerror(failure))
    except BaseException:
        sock.close()
        raise
    return TCPStream(sock)


def error_reason(exc: BaseException) -> str:
    """What went wrong, in words: trio wraps a failed TLS handshake in an exception
    without a message, whose cause (e.g. certificate verify failed) is the news."""
    while not str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__
