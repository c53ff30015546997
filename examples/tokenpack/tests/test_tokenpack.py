"""tokenpack's property tests, written with snake.testing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenpack import deduplicated, loader, packed, tokenize

import snake
import snake.testing
from snake.testing import Op

words = st.text("abcdef", min_size=1, max_size=6)
texts = st.lists(st.lists(words, max_size=5).map(" ".join), max_size=25)


def expected(docs: list[str], length: int = 8, batch_size: int = 4) -> list[list[list[int]]]:
    """What tokenpack promises, as a plain Python loop computes it."""
    docs = [doc for doc, _ in itertools.groupby(docs)]
    tokens = [t for doc in docs for t in tokenize(doc)]
    rows = [tokens[k : k + length] for k in range(0, len(tokens), length)]
    return [rows[k : k + batch_size] for k in range(0, len(rows), batch_size)]


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(1, 10), snake.testing.delays())
def test_rows_keep_the_documents_order_whatever_the_timing(
    docs: list[str], length: int, delays: snake.testing.Delays
) -> None:
    got = snake.testing.run(loader(docs, length=length), delays)
    snake.testing.assert_ordered_equal(got, expected(docs, length))


@settings(deadline=None)
@given(texts)
def test_the_loader_is_its_own_sequential_reference(docs: list[str]) -> None:
    pipeline = loader(docs)
    snake.testing.assert_ordered_equal(snake.testing.sequential(pipeline), expected(docs))


def test_a_real_run_with_worker_processes_gives_the_same_rows() -> None:
    docs = ["the cat sat", "the cat sat", "on a mat", "", "and then it left"] * 20
    assert list(loader(docs, length=5)) == expected(docs, length=5)


@settings(max_examples=100, deadline=None)
@given(texts, snake.testing.delays(), st.data())
def test_a_failing_document_raises_what_a_loop_would_raise_first(
    docs: list[str], delays: snake.testing.Delays, data: st.DataObject
) -> None:
    bad = data.draw(st.sets(st.sampled_from(docs), max_size=2) if docs else st.just(set()))
    pipeline = loader(docs, tokenizer=snake.testing.failing(tokenize, bad))
    try:
        got = snake.testing.run(pipeline, delays)
    except snake.testing.InjectedError as exc:
        snake.testing.assert_same_error(exc, pipeline)
    else:
        snake.testing.assert_same_error(None, pipeline)
        assert got == expected(docs)


def test_a_row_length_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="row length >= 1"):
        packed(0)


#: tokenpack's own stage, in the operator mix: on ints, as snake's table is.
DEDUP = Op(
    "apply(deduplicated())",
    lambda p: p.apply(deduplicated()),
    lambda it: (x for x, _ in itertools.groupby(it)),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 3), max_size=40),
    st.lists(snake.testing.operators(extra=[DEDUP]), max_size=5),
    snake.testing.delays(),
)
def test_deduplicated_composes_with_snakes_operators(
    items: list[int], ops: list[Op], delays: snake.testing.Delays
) -> None:
    ops = [DEDUP, *ops]
    pipeline = snake.testing.build(items, ops)
    snake.testing.assert_ordered_equal(
        snake.testing.run(pipeline, delays), snake.testing.reference(items, ops)
    )


def test_the_stage_drops_repeats_only() -> None:
    pipeline = snake.from_iterable([1, 1, 2, 1, 1, 3]).apply(deduplicated())
    assert snake.testing.sequential(pipeline) == [1, 2, 1, 3]
