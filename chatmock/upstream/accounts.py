"""The account pool: which ChatGPT account serves a request, and failing over to another.

`CodexBackend.responses` asks the pool for a `Turn` (the conversation's keys
looked up in the pool state, one round trip in fleet mode), then lets the
turn open the backend stream. `Turn.open` tries the accounts in order:

1. the conversation's own account while it is available (affinity: the
   backend's prompt cache and the encrypted reasoning it minted belong to
   one account), else the one `--account-strategy` picks;
2. a usage-limit 429 cools that account down until its reset (the body's
   `resets_in_seconds`/`resets_at`, else the headers; `COOL_SECONDS` when
   nothing says) and the next account is tried: nothing has been streamed
   yet, the stream only reaches the client once its status is 200;
3. a 401 refreshes the token once and sends again; refused again (or the
   refresh needs a new sign-in), the account is marked "needs login" (until
   its token changes: `chatmock login --account NAME`) and the next is tried;
4. a conversation that lands on another account than the one it was on
   ("moves") loses the encrypted reasoning in its replayed history (the
   backend binds it to the account that minted it and refuses the whole
   request otherwise): those reasoning items are dropped and the move logged;
   a 400 `invalid_encrypted_content` (history from elsewhere) does the same
   once on the same account;
5. no account left: a 429 whose `Retry-After` is the earliest reset of the
   cooling accounts (or the last refusal, when accounts need a sign-in).

With a single account none of this state is kept: the backend's answer
reaches the client as it did before the pool existed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from chatmock.auth.refresh_guard import identity as credentials_identity
from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import Credentials
from chatmock.errors import ApiError, UpstreamError
from chatmock.state.pool_state import Mark, MemoryPoolState, PoolState, cooled
from chatmock.state.prompt_cache import fingerprint
from chatmock.state.usage_limits import UsageLimits
from chatmock.upstream.pool_strategy import Strategy

log = logging.getLogger("chatmock.accounts")

COOL_SECONDS = 60.0
NOT_INCLUDED_COOL_SECONDS = 6 * 3600.0

Headers = list[tuple[bytes, bytes]]


@dataclass(eq=False, slots=True)
class Account:
    """One ChatGPT sign-in of the pool."""

    name: str
    credentials: CredentialStore
    usage: UsageLimits | None = None
    record_headers: Callable[[Headers], object] | None = None
    _identity: tuple[str, str] = ("", "")  # (access token digest, identity), cached

    def identity(self) -> str:
        """The account's pool identity ('' when it has no credentials)."""
        credentials = self.credentials.current()
        if credentials is None:
            return ""
        token = token_digest(credentials)
        if self._identity[0] != token:
            self._identity = (token, credentials_identity(credentials))
        return self._identity[1]

    def record(self, headers: Headers) -> None:
        """The usage headers of one of this account's answers."""
        if self.usage is not None:
            self.usage.record(headers)
        elif self.record_headers is not None:
            self.record_headers(headers)

    def used_percent(self) -> float:
        snapshot = self.usage.newest() if self.usage is not None else None
        if snapshot is None:
            return 0.0
        windows = [w.used_percent for w in (snapshot.primary, snapshot.secondary) if w]
        return max(windows, default=0.0)


def token_digest(credentials: Credentials) -> str:
    return hashlib.sha256(credentials.access_token.encode()).hexdigest()[:16]


def conversation_keys(payload: dict[str, Any], extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The keys one conversation is known by, most specific first: what the route
    adds (a WebSocket connection), the client's `prompt_cache_key`, and the
    fingerprint of its instructions and first user message (the same on every
    turn, a resent history and a `previous_response_id` chain alike, and in
    every process). Hashed: the state never holds conversation text."""
    named = [f"x:{key}" for key in extra]
    cache_key = payload.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        named.append(f"k:{cache_key}")
    items = payload.get("input") or []
    named.append("f:" + fingerprint(payload.get("instructions"), [_parts(item) for item in items
                                                                   if isinstance(item, dict)]))
    return tuple(hashlib.sha256(key.encode()).hexdigest()[:32] for key in named)


def _parts(item: dict[str, Any]) -> dict[str, Any]:
    """A message whose content is a string, as the parts it stands for (so that a
    client writing either form is one conversation)."""
    content = item.get("content")
    if isinstance(content, str):
        return {**item, "content": [{"type": "input_text", "text": content}]}
    return item


Send = Callable[[Account, Credentials], Awaitable[Any]]


class AccountSource(Protocol):
    def changed(self, current: Sequence[Account]) -> list[Account] | None:
        """The pool's accounts when they changed since the last call (cheap when not)."""
        ...


class AccountPool:
    """The accounts and how they stand; `source` (chatmock.upstream.account_files) adds
    and removes accounts while serving."""

    def __init__(self, accounts: Sequence[Account], *, strategy: Strategy | None = None,
                 state: PoolState | None = None, clock: Callable[[], float] = time.time,
                 source: AccountSource | None = None) -> None:
        if not accounts:
            raise ValueError("an account pool needs an account")
        self.accounts = list(accounts)
        self.strategy = strategy or Strategy()
        self.state: PoolState = state or MemoryPoolState()
        self.clock = clock
        self.source = source

    @property
    def single(self) -> bool:
        return len(self.accounts) == 1

    @property
    def default(self) -> Account:
        return self.accounts[0]

    async def turn(self, payload: dict[str, Any], affinity: Iterable[str] = ()) -> Turn:
        """A request's way through the pool (no state is read for a single account).
        Call it before chatmock adds its own `prompt_cache_key` to the payload."""
        if self.source is not None and (accounts := self.source.changed(self.accounts)):
            self.accounts = accounts
        if self.single:
            return Turn(self, (), None, {})
        keys = conversation_keys(payload, affinity)
        view = await self.state.view(keys)
        return Turn(self, keys, view.owner, view.marks)

    def named(self, identity: str | None) -> str:
        for account in self.accounts:
            if identity and account.identity() == identity:
                return account.name
        return "an account of another process" if identity else "none"

    def state_of(self, account: Account) -> str:
        """`ok`, `cooling down until <RFC 3339>` or `needs login`, as this process knows."""
        turn = Turn(self, (), None, self.state.known())
        if turn.available(account, self.clock()):
            return "ok"
        mark = turn.marks.get(account.identity())
        if mark is not None and mark.cooling(self.clock()):
            until = datetime.fromtimestamp(mark.until, UTC).isoformat(timespec="seconds")
            return f"cooling down until {until}"
        return "needs login"

    def usages(self) -> list[UsageLimits]:
        return [account.usage for account in self.accounts if account.usage is not None]


@dataclass(slots=True)
class Turn:
    """One request's choice of account, and its failovers (see the module docstring).

    `owner` is the conversation's account; `cut`, the length its input had when it
    last moved: the encrypted reasoning before that index was minted by another
    account, and is left out of every later turn too (clients keep replaying it)."""

    pool: AccountPool
    keys: Sequence[str]
    owner: str | None
    marks: dict[str, Mark]
    cut: int = 0
    tried: set[str] = field(default_factory=set)
    refusal: ApiError | None = None
    rebind: bool = False

    def __post_init__(self) -> None:
        if self.owner is not None:
            self.owner, _, cut = self.owner.partition("/")
            self.cut = int(cut) if cut.isdigit() else 0

    async def open(self, payload: dict[str, Any], send: Send) -> Any:
        """The open response of the first account that takes the request."""
        if self.pool.single:
            return await _with_refresh(self.pool.default, send)
        size = len(payload.get("input") or ())
        while True:
            account = self._next()
            self._leave_foreign_reasoning(account, payload, size)
            try:
                response = await _with_refresh(account, send)
            except ApiError as error:
                if self._retry_same(account, error, payload, size):
                    self.tried.discard(account.name)
                    continue
                await self._failed(account, error)
                continue
            await self._bind(account)
            return response

    def available(self, account: Account, now: float) -> bool:
        identity = account.identity()
        mark = self.marks.get(identity)
        if not identity or (mark is not None and mark.cooling(now)):
            return False
        credentials = account.credentials.current()
        return not (mark and credentials and mark.login == token_digest(credentials))

    def _next(self) -> Account:
        now = self.pool.clock()
        candidates = [account for account in self.pool.accounts
                      if account.name not in self.tried and self.available(account, now)]
        if not candidates:
            raise self._exhausted(now)
        chosen = next((account for account in candidates
                       if self.owner and account.identity() == self.owner), None)
        if chosen is None:
            chosen = self.pool.strategy.pick(candidates, Account.used_percent, self._rank)
        self.tried.add(chosen.name)
        return chosen

    def _rank(self, account: Account) -> bytes:
        """The account's rendezvous hash with the conversation's most specific key."""
        key = self.keys[0] if self.keys else ""
        return hashlib.sha256(f"{key}/{account.identity()}".encode()).digest()

    def _leave_foreign_reasoning(self, account: Account, payload: dict[str, Any],
                                 size: int) -> None:
        if self.owner is None or account.identity() == self.owner:
            drop_encrypted_reasoning(payload, self.cut)  # what earlier moves left behind
            return
        dropped = drop_encrypted_reasoning(payload, size)
        log.info("conversation moved from %s to account %s%s", self.pool.named(self.owner),
                 account.name, f"; dropped {dropped} reasoning item(s) the other account "
                               "encrypted" if dropped else "")
        self.owner, self.cut, self.rebind = account.identity(), size, True

    def _retry_same(self, account: Account, error: ApiError, payload: dict[str, Any],
                    size: int) -> bool:
        """Refused for encrypted reasoning from elsewhere: send again without it, once."""
        if error.status != 400 or error.code != "invalid_encrypted_content":
            return False
        dropped = drop_encrypted_reasoning(payload, size)
        if dropped:
            log.info("account %s refused encrypted reasoning it did not mint; dropped %d "
                     "reasoning item(s) and sent again", account.name, dropped)
            self.cut, self.rebind = size, True
        return dropped > 0

    async def _failed(self, account: Account, error: ApiError) -> None:
        """Mark `account` after a refusal that another account may not share, or re-raise."""
        now = self.pool.clock()
        identity = account.identity()
        mark = self.marks.get(identity)
        if error.status == 429:
            seconds = _retry_seconds(error)
            reason = "usage_not_included" if error.code == "usage_not_included" else "usage limit"
            mark = cooled(mark, now + seconds, reason)
            log.warning("account %s reached its usage limit: cooling down for %d s, trying "
                        "another account", account.name, seconds)
        elif error.status == 401:
            credentials = account.credentials.current()
            digest = token_digest(credentials) if credentials else "missing"
            mark = Mark(until=mark.until if mark else 0.0,
                        reason=mark.reason if mark else "", login=digest)
            log.warning("account %s needs `chatmock login --account %s`: %s", account.name,
                        account.name, error.message)
        else:
            raise error
        self.refusal = error
        if identity:
            self.marks[identity] = mark
            await self.pool.state.mark(identity, mark)

    async def _bind(self, account: Account) -> None:
        identity = account.identity()
        if identity and (identity != self.owner or self.rebind):
            await self.pool.state.bind(self.keys, f"{identity}/{self.cut}" if self.cut
                                       else identity)

    def _exhausted(self, now: float) -> ApiError:
        resets = [mark.until for mark in self.marks.values() if mark.cooling(now)]
        if not resets:
            return self.refusal or UpstreamError(
                "Every ChatGPT account of the pool needs a new sign-in: run "
                "`chatmock login --account NAME` (see `chatmock accounts`).", status=401,
                error_type="authentication_error", code="login_required")
        wait = max(1, math.ceil(min(resets) - now))
        message = (self.refusal.message if self.refusal is not None and self.refusal.status == 429
                   else "Every ChatGPT account of the pool has reached its usage limit")
        return UpstreamError(f"{message.split('; it resets in')[0]}; the first account is "
                             f"available again in {wait} s", status=429,
                             error_type="rate_limit_error", code="usage_limit_reached",
                             headers=((b"retry-after", b"%d" % wait),))


async def _with_refresh(account: Account, send: Send) -> Any:
    """Send with the account's credentials; after a 401, refresh once and send again."""
    credentials = await account.credentials.usable()
    try:
        return await send(account, credentials)
    except UpstreamError as error:
        if error.status != 401:
            raise
        renewed = await account.credentials.after_rejection(credentials)
        if renewed is None:
            raise
    return await send(account, renewed)


def drop_encrypted_reasoning(payload: dict[str, Any], before: int) -> int:
    """Remove the reasoning items carrying encrypted content from the input's first
    `before` items; how many."""
    items = payload.get("input")
    if not isinstance(items, list) or before <= 0:
        return 0
    kept = [item for index, item in enumerate(items)
            if index >= before or not (isinstance(item, dict) and item.get("type") == "reasoning"
                                       and item.get("encrypted_content"))]
    payload["input"] = kept
    return len(items) - len(kept)


def _retry_seconds(error: ApiError) -> float:
    if error.code == "usage_not_included":
        return NOT_INCLUDED_COOL_SECONDS
    for name, value in error.headers:
        if name == b"retry-after":
            try:
                return max(1.0, float(value))
            except ValueError:
                break
    return COOL_SECONDS
