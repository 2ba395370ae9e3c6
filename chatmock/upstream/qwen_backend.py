"""The chat.qwen.ai web API as a provider (providers.md §3).

The web API keeps each conversation's history in a chat of its own and takes
one new user message per completion, so `QwenBackend` keeps, per process, which
chat holds which conversation (`QwenChats`):

* after an answer completes, the conversation so far (the request's input items
  plus the answer's text) is remembered as a key → (chat id, response id);
* a request whose input begins with a remembered conversation and adds only
  user-side items (`qwen_request.can_continue`) continues that chat: only the
  new items go out, with `parent_id` = the remembered response id;
* anything else (a first turn, an edited history, a chat busy with another
  completion: one at a time per chat, §3.6) opens a fresh chat
  (`POST /api/v2/chats/new`) with the whole conversation folded into the one
  message (`qwen_request.fold_content`).

Keys are hashes of each item's speaker and text as `fold_content` reads them,
so a client that resends the history in another shape (chat messages instead
of Responses items) still finds its chat. Replies that are not an event stream
(`{"success": false, ...}` JSON, the WAF's HTML page) are `Refused` with the
status they stand for (`qwen_stream.reply_error`), before anything is yielded.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from chatmock import jsonbytes
from chatmock.dialects import qwen_request
from chatmock.dialects.provider_events import Event, Finish, Started, TextDelta
from chatmock.dialects.qwen_stream import QwenStreamDecoder, reply_error
from chatmock.dialects.responses_encoder import ResponsesEncoder
from chatmock.dialects.sampling import NONE, Sampling
from chatmock.errors import UpstreamError
from chatmock.net.client import HTTPClient
from chatmock.net.response import UpstreamResponse
from chatmock.state import exchanges
from chatmock.upstream.chat_backend import MAX_ERROR_BODY, Refused, open_stream, response_id
from chatmock.upstream.providers import Provider
from chatmock.upstream.translated import TranslatedResponse

MAX_CHATS = 4096
Headers = list[tuple[bytes, bytes]]


class QwenChats:
    """Conversation key → (chat id, last response id), newest kept; chats in use."""

    def __init__(self, limit: int = MAX_CHATS) -> None:
        self.limit = limit
        self._chats: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.busy: set[str] = set()

    def find(self, payload: dict[str, Any]) -> tuple[str, str, int] | None:
        """(chat id, parent id, items it holds) of the longest remembered prefix of the
        input that the chat can continue, or None."""
        keys = qwen_request.conversation_keys(payload)
        for held in range(len(keys) - 2, 0, -1):
            found = self._chats.get(keys[held])
            if found is not None and found[0] not in self.busy \
                    and qwen_request.can_continue(payload, held):
                return found[0], found[1], held
        return None

    def remember(self, key: str, chat_id: str, parent_id: str) -> None:
        self._chats[key] = (chat_id, parent_id)
        self._chats.move_to_end(key)
        while len(self._chats) > self.limit:
            self._chats.popitem(last=False)


class _Turn:
    """Watches one answer's events: its response id, its text, whether it finished."""

    def __init__(self, chats: QwenChats, chat_id: str, key: str) -> None:
        self.chats, self.chat_id, self.key = chats, chat_id, key
        self.response_id = ""
        self.text: list[bytes] = []

    def __call__(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, TextDelta):
                self.text.append(event.raw)
            elif isinstance(event, Started):
                self.response_id = event.response_id
            elif isinstance(event, Finish) and self.response_id:
                answer = jsonbytes.decode_string(b"".join(self.text))
                key = qwen_request.extend_key(self.key, "Assistant", answer)
                self.chats.remember(key, self.chat_id, self.response_id)


class QwenBackend:
    """See the module docstring."""

    def __init__(self, provider: Provider, http: HTTPClient) -> None:
        self.provider = provider
        self.http = http
        self.chats = QwenChats()

    def _headers(self, chat_id: str | None, *, stream: bool) -> Headers:
        return [*qwen_request.web_headers(self.provider.base_url, chat_id, stream=stream),
                *self.provider.auth_headers()]

    @asynccontextmanager
    async def responses(self, payload: dict[str, Any], model: str,
                        sampling: Sampling = NONE) -> AsyncIterator[UpstreamResponse]:
        """`sampling` is dropped: the web app's completion request carries no sampling
        parameter at all (providers.md §3.4), so there is nothing to map it to."""
        exchanges.note_model(model, payload.get("reasoning"))  # access log
        found = self.chats.find(payload)
        if found is None:
            chat_id, parent_id, held = await self._new_chat(model), None, 0
        else:
            chat_id, parent_id, held = found
        body = qwen_request.completion_body(payload, model=model, chat_id=chat_id,
                                            parent_id=parent_id, since=held)
        url = self.provider.url(f"/api/v2/chat/completions?chat_id={chat_id}")
        self.chats.busy.add(chat_id)
        try:
            async with AsyncExitStack() as stack:
                response = await open_stream(stack, self.http, url,
                                             self._headers(chat_id, stream=True),
                                             jsonbytes.dumps(body))
                del body  # sent; this frame lives as long as the stream
                await _check_stream(response)
                turn = _Turn(self.chats, chat_id, qwen_request.conversation_keys(payload)[-1])
                yield TranslatedResponse(response, QwenStreamDecoder(),
                                         ResponsesEncoder(response_id(), model,
                                                          int(time.time())), turn)
        finally:
            self.chats.busy.discard(chat_id)

    async def _new_chat(self, model: str) -> str:
        body = jsonbytes.dumps(qwen_request.new_chat_body(model, time.time()))
        async with AsyncExitStack() as stack:
            response = await open_stream(stack, self.http,
                                         self.provider.url("/api/v2/chats/new"),
                                         self._headers(None, stream=False), body)
            reply = await response.read_all(MAX_ERROR_BODY)
        try:
            document = json.loads(reply)
            chat_id = document["data"]["id"] if document.get("success") else None
        except (ValueError, TypeError, KeyError, AttributeError):
            chat_id = None
        if not isinstance(chat_id, str) or not chat_id:
            raise _refusal(response.status, response.headers, reply)
        return chat_id


async def _check_stream(response: UpstreamResponse) -> None:
    """A 200 that is not an event stream is the web API's JSON error (or the WAF)."""
    if reply_error(response.status, response.headers, b"") is None:
        return
    try:
        body = await response.read_all(MAX_ERROR_BODY)
    except UpstreamError:
        body = b""
    raise _refusal(response.status, response.headers, body)


def _refusal(status: int, headers: Headers, body: bytes) -> Refused:
    error = reply_error(status, headers, body)
    real = error.status if error is not None and error.status else 502
    message = error.message if error is not None else "no chat id in the answer"
    return Refused(real, headers, body, message)
