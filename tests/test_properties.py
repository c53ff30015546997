"""Property tests: random pipelines agree with Python's own itertools.

Each operator is drawn from the operator table (``operators.py``) with its
lazy reference built from ``map``, ``filter``, ``itertools.islice``,
``enumerate``, chunking and the like; per-item delays run on trio's autojump
clock, so an example costs milliseconds.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from operators import (
    OPERATORS,
    Draws,
    Example,
    Naturals,
    chunked,
    delayed,
    examples,
    filtered,
)

import snake

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The rows drawn here, run on the autojump clock. Process maps are left out:
#: a starting worker has 10 real seconds to greet, which the autojump clock
#: would skip at once (test_fault_suite runs them on the real clock).
ORDERED = [row for row in OPERATORS if row.ordered and not row.processes]
UNORDERED = [row for row in OPERATORS if not row.ordered and not row.processes]

#: The chains draw from every row of the table, so these tests run more
#: examples than the profile asks for, that each operator turns up often.
EXAMPLES = settings().max_examples or 100

delays = st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.5, 3.0]), min_size=1, max_size=5)


def ops(*, infinite: bool = False) -> st.SearchStrategy[Example]:
    """An operator; with ``infinite``, one that keeps an infinite stream infinite.

    A filter can drop every item once a map made them alike (``x*0+c``), so
    infinite chains draw no filter here; the test puts one at the front,
    where the items are still distinct.
    """
    return examples(ORDERED, Draws(delays=delays, infinite=infinite))


def build(source: Iterable[int], chain: list[Example]) -> snake.Pipeline[int]:
    pipeline = snake.from_iterable(source)
    for op in chain:
        pipeline = op.add(pipeline)
    return pipeline


def reference(source: Iterable[int], chain: list[Example]) -> Iterable[int]:
    it: Iterable[int] = source
    for op in chain:
        it = op.reference(it)
    return it


def run(pipeline: snake.Pipeline[int]) -> list[int]:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(pipeline.collect, clock=clock)


items = st.lists(st.integers(-1000, 1000), max_size=120)


@settings(max_examples=EXAMPLES * 2)
@given(items, st.lists(ops(), max_size=6))
def test_an_ordered_pipeline_gives_what_itertools_gives(
    data: list[int], chain: list[Example]
) -> None:
    assert run(build(data, chain)) == list(reference(data, chain))


@settings(max_examples=EXAMPLES * 2)
@given(st.lists(ops(infinite=True), max_size=5), st.integers(0, 60), st.integers(0, 4))
def test_take_on_an_infinite_source_terminates_with_the_reference_prefix(
    chain: list[Example], n: int, m: int
) -> None:
    if m >= 2:
        chain = [filtered(m, 0), *chain]
    # A source that starts again on each run, as a repeat in the chain needs.
    got = run(build(Naturals(), chain).take(n))
    assert got == list(itertools.islice(reference(itertools.count(), chain), n))


@settings(max_examples=EXAMPLES * 3)
@given(items, st.lists(ops(), max_size=3), examples(UNORDERED, Draws(delays=delays)))
def test_an_unordered_stage_gives_a_permutation(
    data: list[int], chain: list[Example], last: Example
) -> None:
    pipeline = build(data, [*chain, last])
    assert sorted(run(pipeline)) == sorted(reference(data, [*chain, last]))


@given(items, st.integers(1, 300), delays)
def test_batch_then_unbatch_is_the_identity(data: list[int], size: int, delay: list[float]) -> None:
    pipeline = snake.from_iterable(data).then(delayed(delay)).batch(size).unbatch()
    assert run(pipeline) == data


@given(items, st.integers(1, 300), st.booleans())
def test_batch_matches_chunking(data: list[int], size: int, drop_last: bool) -> None:
    got = run(snake.from_iterable(data).batch(size, drop_last=drop_last))  # type: ignore[arg-type]
    assert got == list(chunked(data, size, drop_last))
