"""The request sent again without chatmock's web-search tools (upstream/fallback.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from chatmock.errors import UpstreamError
from chatmock.net.response import UpstreamResponse
from chatmock.upstream.fallback import Headers, open_responses

WITH_TOOLS: dict[str, Any] = {"input": [], "tools": [{"type": "web_search"}]}
WITHOUT: dict[str, Any] = {"input": [], "tools": []}


class Backend:
    """Refuses the payloads given statuses for, in order; answers the rest."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.sent: list[dict[str, Any]] = []
        self.affinities: list[tuple[str, ...]] = []

    @asynccontextmanager
    async def responses(self, payload: dict[str, Any], session_id: str,
                        forwarded: Headers = (), *,
                        affinity: tuple[str, ...] = ()) -> AsyncIterator[UpstreamResponse]:
        self.sent.append(payload)
        self.affinities.append(affinity)
        if self.statuses:
            status = self.statuses.pop(0)
            raise UpstreamError(f"refused {status}", status=status, code="c")
        yield cast(UpstreamResponse, payload)  # the payload stands for the stream


async def test_a_refusal_is_sent_again_without_the_added_tools() -> None:
    backend = Backend(400)
    async with open_responses(backend, WITH_TOOLS, "s", fallback=WITHOUT) as upstream:
        assert cast(object, upstream) is WITHOUT
    assert backend.sent == [WITH_TOOLS, WITHOUT]


async def test_a_websockets_affinity_goes_with_both_attempts() -> None:
    backend = Backend(400)
    async with open_responses(backend, WITH_TOOLS, "s", fallback=WITHOUT,
                              affinity=("ws:1",)) as upstream:
        assert cast(object, upstream) is WITHOUT
    assert backend.affinities == [("ws:1",), ("ws:1",)]


async def test_without_a_fallback_the_refusal_stands() -> None:
    backend = Backend(400)
    with pytest.raises(UpstreamError, match="refused 400"):
        async with open_responses(backend, WITH_TOOLS, "s"):
            pass
    assert backend.sent == [WITH_TOOLS]


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_refusals_other_tools_would_not_change_are_not_retried(status: int) -> None:
    backend = Backend(status)
    with pytest.raises(UpstreamError) as caught:
        async with open_responses(backend, WITH_TOOLS, "s", fallback=WITHOUT):
            pass
    assert caught.value.status == status
    assert backend.sent == [WITH_TOOLS]


async def test_a_second_refusal_names_the_first_with_the_second_status() -> None:
    backend = Backend(400, 404)
    with pytest.raises(UpstreamError) as caught:
        async with open_responses(backend, WITH_TOOLS, "s", fallback=WITHOUT):
            pass
    assert (caught.value.message, caught.value.status) == ("refused 400", 404)
    assert caught.value.code == "RESPONSES_TOOLS_REJECTED"


async def test_an_error_once_the_stream_is_open_is_not_retried() -> None:
    backend = Backend()
    with pytest.raises(UpstreamError, match="mid-stream"):
        async with open_responses(backend, WITH_TOOLS, "s", fallback=WITHOUT):
            raise UpstreamError("mid-stream", status=400)
    assert backend.sent == [WITH_TOOLS]
