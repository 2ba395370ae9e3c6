"""Translator state as data: enum states, named moves, and one table per machine.

After h11's `_state.py`: a machine is a `Table` mapping (state, move) to the
next state, and `Table.next` raises `TranslatorStateError` for any pair the
table does not list. A translator asks its table for every change of state, so
the rules of a stream (Anthropic's one open block at a time, a `<think>` tag
opened once and closed once, nothing after the terminal event) are written
down in one place and a broken rule is an error in tests, not a malformed
stream in production.

The machines:

    LIFECYCLE (every translator; `events.UpstreamTranslator`)
        STREAMING --COMPLETE / FAIL / CUT--> DONE      DONE has no moves

    THINK_TAGS (reasoning as <think> text: chat's and Ollama's think-tags)
        UNOPENED --REASON--> OPEN --REASON--> OPEN
        UNOPENED, OPEN, CLOSED --CLOSE--> CLOSED       (text or a tool call came)
        CLOSED   --REASON--> CLOSED                    (later reasoning is dropped)

    BLOCKS (Anthropic's content blocks; `anthropic_stream.Blocks`)
        NONE --TEXT / THINKING / TOOL_USE--> that block --CLOSE--> NONE
        (a block opens only when none is open: one at a time, never reopened)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, TypeVar

S = TypeVar("S", bound=enum.Enum)
M = TypeVar("M", bound=enum.Enum)


class TranslatorStateError(RuntimeError):
    """A move the machine's table does not allow from its state: a translator bug."""


class Table(Generic[S, M]):
    """The legal moves of one machine: (state, move) -> next state."""

    __slots__ = ("moves", "name")

    def __init__(self, name: str, moves: Mapping[tuple[S, M], S]) -> None:
        self.name = name
        self.moves = dict(moves)

    def next(self, state: S, move: M) -> S:
        try:
            return self.moves[state, move]
        except KeyError:
            raise TranslatorStateError(
                f"{self.name}: no move {move.name} from {state.name}") from None


class State(enum.Enum):
    """A translator's lifecycle."""

    STREAMING = "streaming"
    DONE = "done"


class End(enum.Enum):
    COMPLETE = "complete"  # response.completed / response.incomplete
    FAIL = "fail"  # response.failed / error: the backend's report
    CUT = "cut"  # the body ended, or broke, before a terminal event


LIFECYCLE: Table[State, End] = Table("lifecycle", {
    (State.STREAMING, End.COMPLETE): State.DONE,
    (State.STREAMING, End.FAIL): State.DONE,
    (State.STREAMING, End.CUT): State.DONE,
})


class Think(enum.Enum):
    UNOPENED = "unopened"  # no reasoning shown yet: the next opens <think>
    OPEN = "open"  # inside <think>: reasoning goes on as text
    CLOSED = "closed"  # </think> written, or never to be: reasoning is dropped


class ThinkMove(enum.Enum):
    REASON = "reason"
    CLOSE = "close"


THINK_TAGS: Table[Think, ThinkMove] = Table("think tags", {
    (Think.UNOPENED, ThinkMove.REASON): Think.OPEN,
    (Think.OPEN, ThinkMove.REASON): Think.OPEN,
    (Think.CLOSED, ThinkMove.REASON): Think.CLOSED,
    **{(state, ThinkMove.CLOSE): Think.CLOSED for state in Think},
})
# The members as plain module names: reading one off its Enum class costs ~70 ns on
# Python 3.11, and the think-tag translators read them for every delta.
UNOPENED, OPEN, CLOSED = Think.UNOPENED, Think.OPEN, Think.CLOSED
REASON, CLOSE = ThinkMove.REASON, ThinkMove.CLOSE


class Block(enum.Enum):
    """The open Anthropic content block (its `type`), or NONE."""

    NONE = "none"
    TEXT = "text"
    THINKING = "thinking"
    TOOL_USE = "tool_use"


class BlockMove(enum.Enum):
    TEXT = "text"
    THINKING = "thinking"
    TOOL_USE = "tool_use"
    CLOSE = "close"


_OPENABLE = (Block.TEXT, Block.THINKING, Block.TOOL_USE)
BLOCKS: Table[Block, BlockMove] = Table("content blocks", {
    **{(Block.NONE, BlockMove(block.value)): block for block in _OPENABLE},
    **{(block, BlockMove.CLOSE): Block.NONE for block in _OPENABLE},
})


class Paragraphs:
    """Reasoning summary parts are paragraphs: every part after the first begins on a
    new line. `part()` at each `reasoning_summary_part.added`; `take()` before a summary
    delta says whether it opens such a paragraph (once per part)."""

    __slots__ = ("pending", "started")

    def __init__(self) -> None:
        self.started = False
        self.pending = False

    def part(self) -> bool:
        """A new part began; True if one came before it (it is a new paragraph)."""
        if self.started:
            self.pending = True
            return True
        self.started = True
        return False

    def take(self) -> bool:
        """True once after `part()` said a new paragraph began, then False until the next."""
        if self.pending:
            self.pending = False
            return True
        return False
