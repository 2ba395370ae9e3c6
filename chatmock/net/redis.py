"""A Redis client over chatmock's own TCP stream: pooled, pipelined, bounded in time.

One `RedisClient` per process. A call takes a connection from a small pool
(at most `pool_size` open; more callers wait for one), writes all its commands
in one send and reads as many replies back: a pipeline costs one round trip,
however many keys a request needs. No thread per call: the socket is trio's,
the parser sans-I/O (`chatmock.net.resp`). A connection carries RESP2, is
authenticated (AUTH) and switched to its database (SELECT) when opened.

Failures are typed. `RedisUnavailable`: the server cannot be reached, refused
the credentials, did not answer within `timeout`, or sent bytes that are not
RESP; the connection involved is dropped (after a timeout or a cancellation
its replies can no longer be matched to their commands). `RedisCommandError`:
the server answered a `call` with an error reply (in a `pipeline`, error
replies are values, `ReplyError`, among the others).

Reconnecting: after a failure, further calls fail at once with
`RedisUnavailable` until a backoff delay has passed (doubling from
`backoff_base` up to `backoff_cap`, with jitter), so a Redis outage costs the
requests that need it no waiting; the first call after the delay tries again,
and a success resets the delay. A pooled connection that turns out dead (the
server restarted) is retried once on a fresh one, and the other idle ones are
dropped with it: they are just as dead.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import ssl
from collections.abc import Sequence

import trio

from chatmock.errors import ChatmockError
from chatmock.net.resp import (
    NEED_DATA,
    Arg,
    ProtocolError,
    Push,
    Reply,
    ReplyError,
    ReplyParser,
    encode_commands,
)
from chatmock.net.tcpstream import TCPStream
from chatmock.net.transport import error_reason, tls_context
from chatmock.redis_url import RedisTarget

log = logging.getLogger("chatmock.redis")

Command = Sequence[Arg]
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ProtocolError,
           ssl.SSLError, EOFError)


class RedisError(ChatmockError):
    """Root of the client's errors."""


class RedisUnavailable(RedisError):
    """Redis cannot be used now (unreachable, too slow, refused us, spoke garbage)."""


class RedisCommandError(RedisError):
    """The server answered a command with an error reply."""

    def __init__(self, reply: ReplyError) -> None:
        super().__init__(reply.message)
        self.reply = reply


class ScriptCall(list[Arg]):
    """EVALSHA of a script, which `pipeline` sends again in full (EVAL) if the server
    answers NOSCRIPT: it lacks the script after a restart or a failover. The script
    then runs after the rest of its pipeline: keep commands that read its effects out
    of the same pipeline."""

    __slots__ = ("full",)

    def __init__(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> None:
        super().__init__(["EVALSHA", script.sha, len(keys), *keys, *args])
        self.full: list[Arg] = ["EVAL", script.text, *self[2:]]


class Script:
    """A Lua script, run by its SHA1 and sent in full only when the server lacks it."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    def call(self, keys: Sequence[Arg], args: Sequence[Arg] = ()) -> ScriptCall:
        return ScriptCall(self, keys, args)


class _Connection:
    """One socket and its parser; used by one task at a time."""

    __slots__ = ("parser", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.parser = ReplyParser()

    async def exchange(self, payload: bytes, count: int) -> list[Reply]:
        """Send `payload` (`count` commands), read `count` replies."""
        await self.stream.send_all(payload)
        replies: list[Reply] = []
        while len(replies) < count:
            reply = self.parser.next_reply()
            if reply is NEED_DATA:
                data = await self.stream.receive_some()
                if not data:
                    raise EOFError("Redis closed the connection")
                self.parser.feed(data)
            elif not isinstance(reply, Push):
                replies.append(reply)  # type: ignore[arg-type]
        return replies


class RedisClient:
    """See the module docstring."""

    def __init__(self, target: RedisTarget, *, pool_size: int = 16,
                 connect_timeout: float = 2.0, timeout: float = 5.0,
                 backoff_base: float = 0.1, backoff_cap: float = 5.0,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._tls_context = tls_context
        self._idle: list[_Connection] = []
        self._slots = trio.Semaphore(pool_size)
        self._failures = 0
        self._retry_at = -math.inf
        self._problem = ""
        self._closed = False

    @property
    def available(self) -> bool:
        """False while calls fail fast (after a failure, until the backoff delay passed)."""
        return not self._closed and trio.current_time() >= self._retry_at

    @property
    def retry_in(self) -> float:
        """Seconds until calls are tried again (0 when they are tried now)."""
        return max(0.0, self._retry_at - trio.current_time())

    @property
    def problem(self) -> str:
        """What went wrong last, while the client is backing off ('' when healthy)."""
        return self._problem if self._failures else ""

    async def call(self, *command: Arg) -> Reply:
        """One command's reply; RedisCommandError for an error reply."""
        return _raise_error(await self.pipeline([command]))

    async def pipeline(self, commands: Sequence[Command]) -> list[Reply]:
        """The replies of `commands`, in order, read after one send (errors as values)."""
        if not commands:
            return []
        payload = encode_commands(commands)
        self._check_available()
        with trio.move_on_after(self.timeout) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise RedisUnavailable(f"all Redis connections stayed busy for {self.timeout:g} s")
        try:
            replies = await self._send(payload, len(commands))
            missing = {index: command.full for index, command in enumerate(commands)
                       if isinstance(command, ScriptCall) and _noscript(replies[index])}
            if missing:  # sent in full once per server start
                again = await self._send(encode_commands(missing.values()), len(missing))
                for index, reply in zip(missing, again, strict=True):
                    replies[index] = reply
            return replies
        finally:
            self._slots.release()

    async def _send(self, payload: bytes, count: int) -> list[Reply]:
        """One exchange; on a pooled connection found dead, once more on a new one."""
        for attempt in (1, 2):
            connection, reused = await self._take()
            try:
                with trio.fail_after(self.timeout):
                    replies = await connection.exchange(payload, count)
            except trio.TooSlowError:
                await self._discard(connection)
                raise self._failed(f"no answer within {self.timeout:g} s") from None
            except _BROKEN as exc:
                await self._discard(connection)
                if reused and attempt == 1:
                    await self._drop_idle()
                    continue
                raise self._failed(f"the connection broke: {error_reason(exc)}") from None
            except BaseException:  # cancelled mid-exchange: its replies must not reach others
                await self._discard(connection)
                raise
            self._idle.append(connection)
            self._recovered()
            return replies
        raise AssertionError("unreachable")

    async def evaluate(self, script: Script, keys: Sequence[Arg],
                       args: Sequence[Arg] = ()) -> Reply:
        """Run `script`; RedisCommandError if it fails."""
        return _raise_error(await self.pipeline([script.call(keys, args)]))

    async def aclose(self) -> None:
        self._closed = True
        await self._drop_idle()

    # -- connections

    async def _take(self) -> tuple[_Connection, bool]:
        if self._idle:
            return self._idle.pop(), True
        return await self._connect(), False

    async def _connect(self) -> _Connection:
        target = self.target
        try:
            with trio.fail_after(self.connect_timeout):
                tcp = TCPStream.from_trio(await trio.open_tcp_stream(target.host, target.port))
                stream: trio.abc.Stream = tcp
                connection = _Connection(stream)
                try:
                    if target.tls:
                        connection.stream = stream = trio.SSLStream(
                            tcp, self._tls(), server_hostname=target.host)
                        await stream.do_handshake()
                    await self._handshake(connection)
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
                return connection
        except trio.TooSlowError:
            raise self._failed(f"connecting took over {self.connect_timeout:g} s") from None
        except _BROKEN as exc:
            raise self._failed(f"cannot connect: {error_reason(exc)}") from None

    async def _handshake(self, connection: _Connection) -> None:
        """AUTH and SELECT, pipelined; a refusal is a configuration problem."""
        target = self.target
        commands: list[list[Arg]] = []
        if target.password:
            commands.append(["AUTH", *([target.username] if target.username else []),
                             target.password])
        if target.db:
            commands.append(["SELECT", target.db])
        if not commands:
            return
        for reply in await connection.exchange(encode_commands(commands), len(commands)):
            if isinstance(reply, ReplyError):
                raise self._failed(f"the server refused us: {reply.message}")

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = tls_context(alpn=())
        return self._tls_context

    async def _discard(self, connection: _Connection) -> None:
        await trio.aclose_forcefully(connection.stream)

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._discard(connection)

    # -- backoff

    def _check_available(self) -> None:
        if self._closed:
            raise RedisUnavailable("the Redis client is closed")
        wait = self._retry_at - trio.current_time()
        if wait > 0:
            raise RedisUnavailable(f"Redis at {self.target} is unavailable ({self._problem}); "
                                   f"next attempt in {wait:.1f} s")

    def _recovered(self) -> None:
        if self._failures:
            log.info("Redis at %s answers again", self.target)
            self._failures = 0
            self._retry_at = -math.inf

    def _failed(self, problem: str) -> RedisUnavailable:
        """Note a failure (the backoff grows) and the error to raise for it."""
        now = trio.current_time()
        if now >= self._retry_at:
            self._failures += 1
        delay = min(self.backoff_cap, self.backoff_base * 2 ** min(self._failures - 1, 30))
        self._retry_at = now + delay * random.uniform(0.5, 1.0)
        if self._problem != problem or self._failures == 1:
            log.warning("Redis at %s: %s", self.target, problem)
        self._problem = problem
        return RedisUnavailable(f"Redis at {self.target} is unavailable: {problem}")


def _noscript(reply: Reply) -> bool:
    return isinstance(reply, ReplyError) and reply.kind == "NOSCRIPT"


def _raise_error(replies: list[Reply]) -> Reply:
    (reply,) = replies
    if isinstance(reply, ReplyError):
        raise RedisCommandError(reply)
    return reply
