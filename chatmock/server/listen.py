"""The only module that accepts sockets: listeners, connection tasks, shutdown.

`open_listeners` binds; `serve` reports the bound port through `task_status`, accepts until
`shutdown` is set, then drains: listeners close, idle keep-alive connections
are dropped, in-flight exchanges get `shutdown_timeout` seconds to finish and
are cancelled after that.

The protocol is chosen per connection in `_handle`. With a TLS context the
handshake comes first and ALPN (`h2`, `http/1.1`) decides; otherwise the first
bytes do: the HTTP/2 connection preface (`PRI * HTTP/2.0...`, prior knowledge,
h2c) selects HTTP/2, anything else HTTP/1.1. The bytes read to decide are
handed to the protocol chosen. Routes never see the difference.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import ssl
from typing import TYPE_CHECKING

import trio

from chatmock.net.tcpstream import TCPStream
from chatmock.server.exchange import ConnectionLimits, Handler
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle

if TYPE_CHECKING:
    from chatmock.server.http2 import H2ServerConnection

log = logging.getLogger("chatmock.server")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""HTTP/2's client preface (`net/h2wire.PREFACE`, not imported: the h2 modules load
with the first HTTP/2 connection)."""

_ACCEPT_BACKOFF = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS)
_GONE_WHILE_QUEUED = frozenset(  # accept's errors about that one connection, as trio's
    getattr(errno, name) for name in (
        "ECONNABORTED", "ECONNRESET", "EPROTO", "EPERM", "ETIMEDOUT", "ENETDOWN", "ENETUNREACH",
        "EHOSTDOWN", "EHOSTUNREACH", "ENONET", "ENOPROTOOPT", "EOPNOTSUPP")
    if hasattr(errno, name))
BACKLOG = 4096
ACCEPT_BATCH = 512
"""Connections accepted in a row before the accept loop lets other tasks run."""


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one; thousands of streams need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


async def open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Bind (raises OSError, e.g. address in use); done apart from `serve` so that
    the caller sees a bind failure as itself, not inside a nursery's group."""
    raise_open_file_limit()
    return listeners_of(bind_sockets(host, port))


def bind_sockets(host: str, port: int, backlog: int = BACKLOG) -> list[socket.socket]:
    """Listening sockets for every address of `host` (as trio's `open_tcp_listeners`:
    SO_REUSEADDR, IPv6 sockets IPv6-only), all on one port even when `port` is 0.

    Plain sockets, made before any event loop exists: `serve --workers` binds once
    in the supervisor and every worker it forks inherits them (chatmock/supervisor.py)."""
    bound: list[socket.socket] = []
    try:
        # An ASCII host as bytes: a str one goes through the idna codec (~1 ms of import).
        name = host.encode() if host.isascii() else host
        for family, kind, proto, _, address in socket.getaddrinfo(
                name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if bound[0] is not sock:  # port 0: the port the first address got
                address = (address[0], bound[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    return bound


def listeners_of(sockets: list[socket.socket]) -> list[trio.SocketListener]:
    return [trio.SocketListener(trio.socket.from_stdlib_socket(sock)) for sock in sockets]


async def serve(app: Handler, listeners: list[trio.SocketListener], *, limits: ConnectionLimits,
                max_connections: int, shutdown: trio.Event, shutdown_timeout: float,
                tls: ssl.SSLContext | None = None,
                task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `app` on `listeners` until `shutdown` is set; returns after the drain.

    With `tls` (see `server_tls_context`) every connection is TLS. Reports the first
    listener's port through `task_status`."""
    lifecycle = Lifecycle()
    slots = trio.CapacityLimiter(max_connections)
    try:
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as acceptors:
                for listener in listeners:
                    acceptors.start_soon(_accept_loop, listener, connections,
                                         _Served(app, limits, lifecycle, tls), slots)
                task_status.started(listeners[0].socket.getsockname()[1])
                await shutdown.wait()
                acceptors.cancel_scope.cancel()
            await _close(listeners)
            lifecycle.begin_drain()
            with trio.move_on_after(shutdown_timeout):
                await lifecycle.wait_idle()
            connections.cancel_scope.cancel()
    finally:
        await _close(listeners)


async def _close(listeners: list[trio.SocketListener]) -> None:
    for listener in listeners:
        await trio.aclose_forcefully(listener)


class _Served:
    """What every connection of one server shares."""

    __slots__ = ("app", "lifecycle", "limits", "tls")

    def __init__(self, app: Handler, limits: ConnectionLimits, lifecycle: Lifecycle,
                 tls: ssl.SSLContext | None) -> None:
        self.app = app
        self.limits = limits
        self.lifecycle = lifecycle
        self.tls = tls


async def _accept_loop(listener: trio.SocketListener, nursery: trio.Nursery, served: _Served,
                       slots: trio.CapacityLimiter) -> None:
    """Accept every pending connection per wake-up (see `_Acceptor`), each under a slot."""
    acceptor = _Acceptor(listener)
    try:
        while True:
            token = object()
            try:
                slots.acquire_on_behalf_of_nowait(token)
            except trio.WouldBlock:
                await slots.acquire_on_behalf_of(token)
            try:
                sock = await acceptor.accept()
            except OSError as exc:
                slots.release_on_behalf_of(token)
                if exc.errno not in _ACCEPT_BACKOFF:
                    raise
                log.warning("accept failed (%s); backing off",
                            errno.errorcode.get(exc.errno or 0))
                await trio.sleep(0.1)
                continue
            except BaseException:
                slots.release_on_behalf_of(token)
                raise
            stream = TCPStream(sock, send_timeout=served.limits.write_timeout)
            nursery.start_soon(_handle, stream, served, slots, token, nursery)
    finally:
        acceptor.release()


class _Acceptor:
    """Accepts from a listener's socket without a trip through the scheduler per connection.

    trio's `SocketListener.accept` yields to the scheduler after every connection
    it takes, so a server busy with hundreds of streams (one scheduler round per
    batch of their events, easily 100 ms) accepted about ten connections a second
    while hundreds waited in the kernel's queue: newcomers waited tens of seconds
    for their first byte (bench/RESULTS.md, issue 13). Here `accept` takes a
    pending connection at once and yields only when the queue is empty (it waits
    for the socket to become readable) or after `ACCEPT_BATCH` connections in a
    row, so one wake-up empties the queue and the new connections' tasks start in
    the very next round, beside the busy streams.

    It accepts on a second socket object for the listener's descriptor (trio's
    socket offers no synchronous accept), released (detached, never closed) when
    the loop ends; the listener keeps owning and closing the descriptor."""

    __slots__ = ("_in_a_row", "_socket")

    def __init__(self, listener: trio.SocketListener) -> None:
        self._socket = socket.socket(fileno=listener.socket.fileno())
        self._socket.setblocking(False)
        self._in_a_row = 0

    async def accept(self) -> socket.socket:
        """The next connection, TCP_NODELAY and TCP_NOTSENT_LOWAT set as trio would."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                sock, _ = self._socket.accept()
            except BlockingIOError:
                self._in_a_row = 0
                await trio.lowlevel.wait_readable(self._socket)
                continue
            except OSError as exc:
                if exc.errno not in _GONE_WHILE_QUEUED:
                    raise
                sock = None
            self._in_a_row += 1
            if self._in_a_row >= ACCEPT_BATCH:
                self._in_a_row = 0
                await trio.lowlevel.cancel_shielded_checkpoint()  # `sock` must not be lost
            if sock is not None:
                return _configured(sock)

    def release(self) -> None:
        self._socket.detach()


def _configured(sock: socket.socket) -> socket.socket:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_NOTSENT_LOWAT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, 2**14)
    except OSError:  # reset before we looked: the first read will say so
        pass
    return sock


async def _handle(stream: TCPStream, served: _Served, slots: trio.CapacityLimiter,
                  token: object, tasks: trio.Nursery) -> None:
    """One connection's task; `tasks` (the connections' nursery) also runs the HTTP/1.1
    client watch, so that no connection needs a nursery of its own."""
    served.lifecycle.connection_opened()
    try:
        await _serve_connection(stream, served, tasks)
    except Exception:
        log.exception("connection task failed")
    finally:
        await trio.aclose_forcefully(stream)
        served.lifecycle.connection_closed()
        slots.release_on_behalf_of(token)


async def _serve_connection(tcp: TCPStream, served: _Served, tasks: trio.Nursery) -> None:
    client = _peer(tcp)
    stream: trio.abc.Stream = tcp
    if served.tls is not None:
        secured = await _handshake(tcp, served.tls, served.limits)
        if secured is None:
            return
        stream = secured
        if secured.selected_alpn_protocol() == "h2":
            await _h2_connection(stream, served, client, b"").serve()
            return
    first = await _first_bytes(stream, served.limits, served.lifecycle)
    if not first:
        await trio.aclose_forcefully(stream)
    elif first.startswith(PREFACE):
        h2 = _h2_connection(stream, served, client, first)
        del first  # the connection has it; this frame lives as long as the connection
        await h2.serve()
    else:
        # Up to 64 KiB (an agent's long request), kept for the connection's life otherwise.
        h1 = H1Connection(stream, served.app, served.limits, served.lifecycle, client,
                          buffered=first)
        del first
        await h1.serve(tasks)


def _h2_connection(stream: trio.abc.Stream, served: _Served, client: str,
                   buffered: bytes) -> H2ServerConnection:
    from chatmock.server.http2 import H2ServerConnection  # h2 (~10 ms): on first use

    return H2ServerConnection(stream, served.app, served.limits, served.lifecycle, client,
                              buffered=buffered)


async def _handshake(tcp: TCPStream, context: ssl.SSLContext,
                     limits: ConnectionLimits) -> trio.SSLStream[TCPStream] | None:
    """The TLS stream, or None if the handshake failed or took the header timeout."""
    stream = trio.SSLStream(tcp, context, server_side=True)
    with trio.move_on_after(limits.header_timeout):
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            log.debug("TLS handshake failed: %s", exc.__cause__ or exc)
            return None
        return stream
    return None


async def _first_bytes(stream: trio.abc.Stream, limits: ConnectionLimits,
                       lifecycle: Lifecycle) -> bytes:
    """The connection's first bytes: enough to tell the HTTP/2 preface from an HTTP/1.1
    request (b"" if none came within the idle timeout, or the server drains)."""
    scope = lifecycle.idle()
    scope.deadline = trio.current_time() + limits.idle_timeout
    lifecycle.enter_idle(scope)
    try:
        with scope:
            data = await _receive(stream)
    finally:
        lifecycle.leave_idle(scope)
    if scope.cancelled_caught:
        return b""
    with trio.move_on_after(limits.header_timeout):
        while data and len(data) < len(PREFACE) and PREFACE.startswith(data):
            more = await _receive(stream)
            if not more:
                break
            data += more
    return data


async def _receive(stream: trio.abc.Stream) -> bytes:
    try:
        return bytes(await stream.receive_some(65536))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The server's TLS context: the certificate chain and key, ALPN `h2` then `http/1.1`.

    Raises OSError or ssl.SSLError when the files cannot be loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def _peer(stream: TCPStream) -> str:
    try:
        address = stream.socket.getpeername()
    except OSError:
        return ""
    if stream.socket.family == socket.AF_INET6:
        return f"[{address[0]}]:{address[1]}"
    return f"{address[0]}:{address[1]}"
