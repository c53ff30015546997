"""Property tests: random pipelines agree with Python's own itertools.

Each operator is drawn from the operator table (``snake.testing.operators()``,
and the suite's own rows of ``operators.py``) with its lazy reference built
from ``map``, ``filter``, ``itertools.islice``, ``enumerate``, chunking and the
like. ``snake.testing.run`` makes every call in this process after drawn
waits, on trio's autojump clock, so an example costs milliseconds, process
maps' too.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from operators import IN_PROCESS, Draws, Example, Naturals, chunked, examples, filtered

import snake
import snake.testing
from snake.testing import Delays, assert_ordered_equal, assert_permutation, build, reference
from snake.testing._strategies import WAITS
from snake.testing._table import OPERATORS as PUBLIC

#: The chains draw from every row of the table, so these tests run more
#: examples than the profile asks for, that each operator turns up often.
EXAMPLES = settings().max_examples or 100

waits = st.lists(st.sampled_from(WAITS), min_size=1, max_size=5)


def ops(*, ordered: bool = True) -> st.SearchStrategy[Example]:
    """An operator of snake's table or of the suite's own rows."""
    extra = [row.example for row in IN_PROCESS]
    return snake.testing.operators(ordered=ordered, delays=waits, extra=extra)


def infinite_ops() -> st.SearchStrategy[Example]:
    """An ordered operator that keeps an infinite stream infinite.

    A filter can drop every item once a map made them alike (``x*0+c``), so
    infinite chains draw no filter here; the test puts one at the front,
    where the items are still distinct.
    """
    rows = [row for row in [*PUBLIC, *IN_PROCESS] if row.ordered]
    return examples(rows, Draws(delays=waits, infinite=True))


items = st.lists(st.integers(-1000, 1000), max_size=120)


@settings(max_examples=EXAMPLES * 2)
@given(items, st.lists(ops(), max_size=6), snake.testing.delays())
def test_an_ordered_pipeline_gives_what_itertools_gives(
    data: list[int], chain: list[Example], delays: Delays
) -> None:
    assert_ordered_equal(snake.testing.run(build(data, chain), delays), reference(data, chain))


@settings(max_examples=EXAMPLES * 2)
@given(
    st.lists(infinite_ops(), max_size=5),
    st.integers(0, 60),
    st.integers(0, 4),
    snake.testing.delays(),
)
def test_take_on_an_infinite_source_terminates_with_the_reference_prefix(
    chain: list[Example], n: int, m: int, delays: Delays
) -> None:
    if m >= 2:
        chain = [filtered(m, 0), *chain]
    # A source that starts again on each run, as a repeat in the chain needs.
    got = snake.testing.run(build(Naturals(), chain).take(n), delays)
    assert_ordered_equal(got, reference(itertools.count(), chain, limit=n))


@settings(max_examples=EXAMPLES * 3)
@given(items, st.lists(ops(), max_size=3), ops(ordered=False), snake.testing.delays())
def test_an_unordered_stage_gives_a_permutation(
    data: list[int], chain: list[Example], last: Example, delays: Delays
) -> None:
    pipeline = build(data, [*chain, last])
    assert_permutation(snake.testing.run(pipeline, delays), reference(data, [*chain, last]))


async def same(x: int) -> int:
    return x


@given(items, st.integers(1, 300), snake.testing.delays())
def test_batch_then_unbatch_is_the_identity(data: list[int], size: int, delays: Delays) -> None:
    pipeline = snake.from_iterable(data).then(same).batch(size).unbatch()
    assert_ordered_equal(snake.testing.run(pipeline, delays), data)


@given(items, st.integers(1, 300), st.booleans())
def test_batch_matches_chunking(data: list[int], size: int, drop_last: bool) -> None:
    got = snake.testing.run(snake.from_iterable(data).batch(size, drop_last=drop_last))  # type: ignore[arg-type]
    assert_ordered_equal(got, chunked(data, size, drop_last))
