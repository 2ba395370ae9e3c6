"""The account pool: strategies, cooldowns, needs-login, affinity, and moving conversations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import Credentials
from chatmock.errors import ApiError, UpstreamError
from chatmock.state.pool_state import Affinity, MemoryPoolState, read_marks
from chatmock.state.usage_limits import UsageLimits
from chatmock.testing.credentials import fake_tokens
from chatmock.upstream.accounts import (
    Account,
    AccountPool,
    conversation_keys,
    drop_encrypted_reasoning,
)
from chatmock.upstream.pool_strategy import Strategy


def account(tmp_path: Path, name: str, usage: float | None = None) -> Account:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"tokens": fake_tokens(account_id=f"id-{name}",
                                                     email=f"{name}@example.com")}))
    limits = UsageLimits(tmp_path / f"{name}.usage.json")
    if usage is not None:
        limits.record([(b"x-codex-primary-used-percent", str(usage).encode())])
    return Account(name, CredentialStore({}, path=path), usage=limits)


class Backend:
    """A `send` that answers per account: 'ok', or an error to raise."""

    def __init__(self, **answers: ApiError) -> None:
        self.answers = answers
        self.calls: list[tuple[str, list[Any]]] = []

    async def __call__(self, account: Account, credentials: Credentials) -> str:
        self.calls.append((account.name, list(self.payload["input"])))
        error = self.answers.get(account.name)
        if error is not None:
            raise error
        return account.name

    payload: dict[str, Any] = {}


def limit(seconds: int = 120) -> UpstreamError:
    return UpstreamError("The usage limit has been reached", status=429,
                         error_type="rate_limit_error", code="usage_limit_reached",
                         headers=((b"retry-after", str(seconds).encode()),))


def rejected() -> UpstreamError:
    return UpstreamError("token revoked", status=401, error_type="authentication_error")


def ask(pool: AccountPool, backend: Backend, text: str = "hello",
        history: list[Any] | None = None) -> str:
    payload = {"input": [{"type": "message", "role": "user",
                          "content": [{"type": "input_text", "text": text}]}, *(history or [])]}
    backend.payload = payload

    async def run() -> str:
        turn = await pool.turn(payload)
        return str(await turn.open(payload, backend))

    return trio.run(run)


def pool_of(tmp_path: Path, *names: str, strategy: str = "fill-first",
            clock: list[float] | None = None, **usage: float) -> AccountPool:
    now = clock or [1000.0]
    return AccountPool([account(tmp_path, name, usage.get(name)) for name in names],
                       strategy=Strategy(strategy), state=MemoryPoolState(tmp_path / "state.json"),
                       clock=lambda: now[0])


def test_fill_first_keeps_new_conversations_on_the_first_account(tmp_path: Path) -> None:
    pool, backend = pool_of(tmp_path, "a", "b"), Backend()
    assert [ask(pool, backend, f"conversation {n}") for n in range(3)] == ["a", "a", "a"]


def test_round_robin_spreads_new_conversations_and_keeps_each_on_its_account(
        tmp_path: Path) -> None:
    pool, backend = pool_of(tmp_path, "a", "b", "c", strategy="round-robin"), Backend()
    first = [ask(pool, backend, f"conversation {n}") for n in range(3)]
    assert first == ["a", "b", "c"]
    assert [ask(pool, backend, f"conversation {n}") for n in range(3)] == first


def test_least_used_reads_each_accounts_recorded_usage(tmp_path: Path) -> None:
    pool = pool_of(tmp_path, "a", "b", "c", strategy="least-used", a=80.0, b=10.0, c=30.0)
    assert ask(pool, Backend()) == "b"


def test_a_usage_limit_cools_the_account_and_the_request_moves_on(tmp_path: Path) -> None:
    clock = [1000.0]
    pool, backend = pool_of(tmp_path, "a", "b", clock=clock), Backend(a=limit(120))
    assert ask(pool, backend) == "b"
    assert [name for name, _ in backend.calls] == ["a", "b"]
    marks = read_marks(tmp_path / "state.json")  # what `chatmock accounts` reads
    assert [mark.until for mark in marks.values()] == [1120.0]
    backend.answers.clear()
    assert ask(pool, backend, "another conversation") == "b"  # a is still cooling
    clock[0] = 1121.0
    assert ask(pool, backend, "a third one") == "a"


def test_every_account_cooling_is_a_429_with_the_earliest_reset(tmp_path: Path) -> None:
    pool, backend = pool_of(tmp_path, "a", "b"), Backend(a=limit(300), b=limit(90))
    with pytest.raises(UpstreamError) as caught:
        ask(pool, backend)
    assert caught.value.status == 429
    assert dict(caught.value.headers)[b"retry-after"] == b"90"
    backend.calls.clear()
    with pytest.raises(UpstreamError):
        ask(pool, backend, "new")
    assert backend.calls == []  # nothing left to try: the backend is not asked


def test_a_rejected_token_is_refreshed_once_then_the_account_needs_login(
        tmp_path: Path) -> None:
    pool, backend = pool_of(tmp_path, "a", "b"), Backend(a=rejected())
    assert ask(pool, backend) == "b"  # no OAuth client: no refresh, "needs login" at once
    marks = read_marks(tmp_path / "state.json")
    assert [bool(mark.login) for mark in marks.values()] == [True]
    backend.calls.clear()
    assert ask(pool, backend, "next") == "b" and [n for n, _ in backend.calls] == ["b"]


def test_a_new_sign_in_clears_needs_login(tmp_path: Path) -> None:
    pool, backend = pool_of(tmp_path, "a", "b"), Backend(a=rejected())
    ask(pool, backend)
    backend.answers.clear()
    (tmp_path / "a.json").write_text(json.dumps({"tokens": fake_tokens(
        account_id="id-a", email="a@example.com", expires_in=7200)}))
    pool.accounts[0].credentials._checked_at = float("-inf")
    assert ask(pool, backend, "after login") == "a"


def test_a_moved_conversation_drops_the_reasoning_the_other_account_encrypted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pool, backend = pool_of(tmp_path, "a", "b"), Backend()
    assert ask(pool, backend, "chat") == "a"
    history = [{"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-minted-by-a"},
               {"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "hi"}]}]
    backend.answers["a"] = limit()
    caplog.set_level("INFO", "chatmock.accounts")
    assert ask(pool, backend, "chat", history) == "b"
    sent_to_a, sent_to_b = backend.calls[-2][1], backend.calls[-1][1]
    assert any(item.get("type") == "reasoning" for item in sent_to_a)
    assert not any(item.get("type") == "reasoning" for item in sent_to_b)
    assert "moved from a to account b; dropped 1 reasoning item" in caplog.text
    backend.answers.clear()
    mine = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-minted-by-b"}
    ask(pool, backend, "chat", [*history, mine])  # the client replays a's reasoning again
    name, sent = backend.calls[-1]
    assert name == "b"  # it stays on b now, and a's reasoning stays out, b's goes in
    assert [item for item in sent if item.get("type") == "reasoning"] == [mine]


def test_other_errors_are_not_failed_over(tmp_path: Path) -> None:
    pool = pool_of(tmp_path, "a", "b")
    backend = Backend(a=UpstreamError("bad", status=400))
    with pytest.raises(UpstreamError):
        ask(pool, backend)
    assert [name for name, _ in backend.calls] == ["a"]


def test_one_account_passes_the_backends_429_through_and_keeps_no_state(
        tmp_path: Path) -> None:
    pool, backend = pool_of(tmp_path, "a"), Backend(a=limit(42))
    for _ in range(2):
        with pytest.raises(UpstreamError) as caught:
            ask(pool, backend)
        assert caught.value.message == "The usage limit has been reached"
    assert len(backend.calls) == 2 and not (tmp_path / "state.json").exists()


def test_conversation_keys_are_the_same_for_every_turn_and_hide_the_text() -> None:
    first = {"instructions": "be brief", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]}]}
    later = {**first, "input": [*first["input"], {"type": "message", "role": "user",
                                                  "content": "more"}]}
    assert conversation_keys(first) == conversation_keys(later)
    assert len(conversation_keys({**first, "prompt_cache_key": "k"}, ["ws-1"])) == 3
    assert not any(key == "q" or "be brief" in key for key in conversation_keys(first))


def test_drop_encrypted_reasoning_keeps_everything_else() -> None:
    payload = {"input": [{"type": "reasoning", "encrypted_content": "x"},
                         {"type": "reasoning", "summary": []}, {"type": "message"}]}
    assert drop_encrypted_reasoning(payload, 0) == 0
    assert drop_encrypted_reasoning(payload, 3) == 1
    assert payload["input"] == [{"type": "reasoning", "summary": []}, {"type": "message"}]
    later = {"input": [{"type": "reasoning", "encrypted_content": "old"},
                       {"type": "reasoning", "encrypted_content": "new"}]}
    assert drop_encrypted_reasoning(later, 1) == 1
    assert later["input"][0]["encrypted_content"] == "new"


def test_affinity_expires_and_is_bounded() -> None:
    now = [0.0]
    affinity = Affinity(capacity=2, ttl=10, clock=lambda: now[0])
    affinity.bind(["k1", "k1b"], "a")
    assert affinity.find(["nope", "k1b"]) == "a"
    affinity.bind(["k2"], "b")
    assert len(affinity) == 2 and affinity.find(["k1"]) is None  # k1 went first
    now[0] = 11.0
    assert affinity.find(["k2"]) is None


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="fill-first"):
        Strategy("random")


def test_the_strategy_comes_from_the_flag_or_the_environment() -> None:
    from chatmock.config import build_settings
    from chatmock.errors import ConfigError

    assert build_settings({}, {}).account_strategy == "fill-first"
    env = {"CHATMOCK_ACCOUNT_STRATEGY": "Least-Used"}
    assert build_settings({}, env).account_strategy == "least-used"
    assert build_settings({"account_strategy": "round-robin"}, env).account_strategy == \
        "round-robin"
    with pytest.raises(ConfigError, match="ACCOUNT_STRATEGY"):
        build_settings({}, {"CHATMOCK_ACCOUNT_STRATEGY": "random"})


def test_the_state_of_each_account_as_the_status_page_shows_it(tmp_path: Path) -> None:
    pool = pool_of(tmp_path, "a", "b", "c")
    ask(pool, Backend(a=limit(60), b=rejected()))
    assert [pool.state_of(account) for account in pool.accounts] == [
        "cooling down until 1970-01-01T00:17:40+00:00", "needs login", "ok"]


def test_workers_that_share_no_affinity_place_a_conversation_alike(tmp_path: Path) -> None:
    accounts = [account(tmp_path, name) for name in ("a", "b", "c")]
    workers = [AccountPool(accounts, strategy=Strategy("round-robin", by_conversation=True),
                           state=MemoryPoolState()) for _ in range(2)]
    backend = Backend()
    placed = []
    ask(workers[1], backend, "a conversation only the second worker saw")
    for n in range(30):
        first = ask(workers[0], backend, f"conversation {n}")
        later = [{"type": "message", "role": "assistant",
                  "content": [{"type": "output_text", "text": "answer"}]}]
        assert ask(workers[1], backend, f"conversation {n}", later) == first  # never seen it
        placed.append(first)
    assert {placed.count(name) for name in ("a", "b", "c")} <= set(range(5, 16))  # spread


def test_round_robin_in_one_process_takes_the_accounts_in_turn(tmp_path: Path) -> None:
    pool = pool_of(tmp_path, "a", "b", strategy="round-robin")
    assert [ask(pool, Backend(), f"new {n}") for n in range(4)] == ["a", "b", "a", "b"]
