"""The translators' state tables (dialects/machine.py): every listed move leads where the
table says, every other one raises; the rules they encode hold on real translators."""

from __future__ import annotations

import enum
import itertools
from typing import Any

import pytest

from chatmock.dialects.anthropic_stream import MessagesStreamTranslator
from chatmock.dialects.chat_stream import ChatStreamTranslator
from chatmock.dialects.machine import (
    BLOCKS,
    LIFECYCLE,
    THINK_TAGS,
    Block,
    BlockMove,
    End,
    Paragraphs,
    State,
    Table,
    Think,
    ThinkMove,
    TranslatorStateError,
)

TABLES: list[tuple[Table[Any, Any], type[enum.Enum], type[enum.Enum]]] = [
    (LIFECYCLE, State, End), (THINK_TAGS, Think, ThinkMove), (BLOCKS, Block, BlockMove)]


@pytest.mark.parametrize(("table", "states", "moves"), TABLES,
                         ids=[table.name for table, _, _ in TABLES])
def test_every_pair_is_a_listed_move_or_an_error(table: Table[Any, Any],
                                                 states: type[enum.Enum],
                                                 moves: type[enum.Enum]) -> None:
    for state, move in itertools.product(states, moves):
        if (state, move) in table.moves:
            assert table.next(state, move) is table.moves[state, move]
        else:
            with pytest.raises(TranslatorStateError, match=f"no move {move.name} from"):
                table.next(state, move)


def test_nothing_moves_once_done() -> None:
    assert [move for state, move in LIFECYCLE.moves if state is State.DONE] == []
    assert {LIFECYCLE.next(State.STREAMING, move) for move in End} == {State.DONE}


def test_a_block_opens_only_when_none_is() -> None:
    opening = [(state, move) for (state, move) in BLOCKS.moves if move is not BlockMove.CLOSE]
    assert {state for state, _ in opening} == {Block.NONE}
    assert all(BLOCKS.next(block, BlockMove.CLOSE) is Block.NONE
               for block in Block if block is not Block.NONE)


def test_think_tags_open_once_and_close_for_good() -> None:
    assert THINK_TAGS.next(Think.UNOPENED, ThinkMove.REASON) is Think.OPEN
    assert all(THINK_TAGS.next(state, ThinkMove.CLOSE) is Think.CLOSED for state in Think)
    assert THINK_TAGS.next(Think.CLOSED, ThinkMove.REASON) is Think.CLOSED


def test_paragraphs_begin_with_the_second_part() -> None:
    paragraphs = Paragraphs()
    assert paragraphs.take() is False
    assert paragraphs.part() is False  # the first part: no paragraph before it
    assert paragraphs.take() is False
    assert paragraphs.part() is True
    assert (paragraphs.take(), paragraphs.take()) == (True, False)


def test_a_translator_refuses_to_end_twice() -> None:
    translator = ChatStreamTranslator(model="m", created=0, compat="o3", include_usage=False)
    translator.abort("gone")
    assert translator.state is State.DONE
    assert translator.abort("again") == b""  # abort checks first: no move is asked for
    with pytest.raises(TranslatorStateError):
        translator.fail("late", "code")


def test_the_anthropic_translator_keeps_one_block_open() -> None:
    translator = MessagesStreamTranslator(model="m", thinking=True, input_tokens=0)
    translator.on_text(b"a")
    assert translator.block is Block.TEXT
    translator.on_reasoning(b"b", summary=True)  # closes the text block, opens thinking
    assert (translator.block, translator.index) == (Block.THINKING, 1)
    with pytest.raises(TranslatorStateError):
        translator.block = BLOCKS.next(translator.block, BlockMove.TEXT)
