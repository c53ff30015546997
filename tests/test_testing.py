"""snake.testing: the sequential reference, runs with chosen waits, strategies and
assertions, each checked to fail when it should."""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import snake
import snake.testing as st_snake
from snake.testing import (
    Delays,
    InjectedError,
    assert_ordered_equal,
    assert_permutation,
    assert_prefix,
    assert_same_error,
    assert_same_items,
    failing,
    in_process,
    sequential,
)
from snake.testing._strategies import WAITS
from snake.testing._table import OPERATORS


def negate(x: int) -> int:
    return -x


async def wait_then_negate(x: int) -> int:
    await trio.sleep(x % 3)
    return -x


def where(x: int) -> tuple[int, int, str]:
    return x, os.getpid(), threading.current_thread().name


# --- the sequential reference and in-process runs -------------------------------


def test_sequential_gives_what_a_plain_loop_gives() -> None:
    pipeline = (
        snake.from_iterable(range(30))
        .par_then(wait_then_negate, concurrency=8, ordered=False)
        .par_map(negate, concurrency=3, ordered=False)
        .par_map(str, executor="thread", concurrency=2)
    )
    loop = [str(x) for x in range(30)]
    assert sequential(pipeline) == loop
    assert sorted(pipeline) == sorted(loop)  # the real run: the same items, in some order


@pytest.mark.parametrize("executor", ["process", "thread", "inline"])
def test_every_call_is_made_in_this_process_and_thread(executor: str) -> None:
    pipeline = snake.from_iterable(range(20)).par_map(where, executor=executor)  # type: ignore[call-overload]
    here = (os.getpid(), threading.current_thread().name)
    for got in (st_snake.run(pipeline, Delays(((0.5, 0.0),))), sequential(pipeline)):
        assert [x for x, *_ in got] == list(range(20))
        assert {(pid, name) for _, pid, name in got} == {here}


def test_unordered_and_merged_pipelines_come_in_order_sequentially() -> None:
    files = snake.from_iterable(range(4)).interleave(
        lambda x: snake.from_iterable([x * 10, x * 10 + 1]).par_then(wait_then_negate),
        cycle_length=4,
        ordered=False,
    )
    merged = snake.merge(files, snake.from_iterable([100, 101]))
    # An ordered interleave of cycle 4, then the merge's second pipeline.
    assert sequential(merged) == [0, -10, -20, -30, -1, -11, -21, -31, 100, 101]
    assert sorted(st_snake.run(merged, Delays(((3.0, 0.0, 0.5),)))) == sorted(sequential(merged))


def test_an_in_process_copy_keeps_labels_notes_and_the_shape_of_states() -> None:
    pipeline = snake.from_iterable(range(10)).par_map(negate, concurrency=2).batch(3)
    copy = in_process(pipeline, Delays(((1.0,),)))
    labels = [line.split(";")[0] for line in pipeline.describe().splitlines()]
    assert [line.split(";")[0] for line in copy.describe().splitlines()] == labels
    assert repr(copy) == repr(pipeline)

    async def half() -> dict[str, Any]:
        async with copy.open(epoch=0) as items:
            await items.receive()
            return items.state_dict()

    state = trio.run(half, clock=trio.testing.MockClock(autojump_threshold=0))
    assert list(pipeline.iterate(state=state)) == sequential(pipeline)[1:]  # same shape


def test_delays_reorder_an_unordered_stage_and_repeat_exactly() -> None:
    pipeline = snake.from_iterable(range(6)).par_then(wait_then_negate, ordered=False)
    slow_first = Delays(((3.0, 0.0),))
    got = st_snake.run(pipeline, slow_first)
    assert got != sequential(pipeline)
    assert sorted(got) == sorted(sequential(pipeline))
    assert st_snake.run(pipeline, slow_first) == got  # the same waits, the same run


def test_unseeded_shuffles_draw_alike_in_every_copy() -> None:
    pipeline = snake.from_iterable(range(50)).shuffle(10).par_map(negate)
    assert sequential(pipeline) == st_snake.run(pipeline, Delays(((0.1, 0.0, 2.0),)))
    assert sequential(pipeline) == list(pipeline.iterate(epoch=0))


def test_run_and_sequential_refuse_to_run_inside_a_trio_run() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"await snake.testing.in_process\(pipeline"):
            sequential(snake.from_iterable([1]))

    trio.run(main)


def test_delays_are_checked() -> None:
    assert (
        Delays(
            ((0, 1),),
        )(0, 3)
        == 1.0
    )
    for bad in ((), ((),), ((-1.0,),)):
        with pytest.raises(ValueError, match="one non-empty sequence of waits"):
            Delays(bad)  # type: ignore[arg-type]


# --- errors --------------------------------------------------------------------


def test_failing_raises_for_the_chosen_items_sync_async_and_in_workers() -> None:
    assert failing(negate, {2})(1) == -1
    with pytest.raises(InjectedError) as caught:
        failing(negate, {2})(2)
    assert caught.value.args == (2,)
    with pytest.raises(InjectedError):
        trio.run(failing(wait_then_negate, {0}), 0, clock=trio.testing.MockClock(0))
    pipeline = snake.from_iterable(range(8)).par_map(failing(negate, {5, 6}), concurrency=2)
    with pytest.raises(InjectedError) as caught:
        list(pipeline)  # real worker processes: the function and its error pickle
    assert_same_error(caught.value, pipeline)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st_snake.failures(30), st_snake.delays())
def test_an_ordered_run_raises_the_error_a_sequential_loop_raises(
    bad: frozenset[int], delays: Delays
) -> None:
    pipeline = (
        snake.from_iterable(range(30))
        .par_then(failing(wait_then_negate, bad), concurrency=5)
        .par_map(negate, concurrency=3)
    )
    try:
        st_snake.run(pipeline, delays)
    except InjectedError as exc:
        assert_same_error(exc, pipeline)
    else:
        assert_same_error(None, pipeline)
        assert not bad


def test_assert_same_error_fails_for_another_error_or_none() -> None:
    pipeline = snake.from_iterable(range(10)).par_map(failing(negate, {3, 7}), concurrency=2)
    with pytest.raises(InjectedError) as caught:
        st_snake.run(pipeline)
    assert_same_error(caught.value, pipeline)
    for wrong in (InjectedError(7), ValueError(3), None):
        with pytest.raises(AssertionError, match="not the error a sequential loop raises"):
            assert_same_error(wrong, pipeline)
    clean = snake.from_iterable(range(3))
    assert_same_error(None, clean)
    with pytest.raises(AssertionError, match="expected: no error"):
        assert_same_error(InjectedError(1), clean)


# --- assertions ----------------------------------------------------------------


def test_assert_ordered_equal_shows_the_first_difference_and_its_surroundings() -> None:
    assert_ordered_equal(iter([1, 2]), (1, 2))
    with pytest.raises(AssertionError) as caught:
        assert_ordered_equal(list(range(20)), [*range(12), -1, *range(13, 20)])
    message = str(caught.value)
    assert (
        message.splitlines()[0] == "the items differ first at position 12 (20 items, 20 expected)"
    )
    assert "got      [12]: 12" in message
    assert "expected [12]: -1" in message
    assert "got      [9:16]: [9, 10, 11, 12, 13, 14, 15]" in message
    with pytest.raises(AssertionError, match=r"got ends at position 2 \(2 items, 3 expected\)"):
        assert_ordered_equal([1, 2], [1, 2, 3])
    with pytest.raises(AssertionError, match="expected ends at position 1"):
        assert_ordered_equal([1, 2], [1])


def test_assert_prefix_accepts_a_start_and_nothing_else() -> None:
    assert_prefix([], [1])
    assert_prefix([0, 1], range(5))
    with pytest.raises(AssertionError, match="differ first at position 1"):
        assert_prefix([0, 2], range(5))
    with pytest.raises(AssertionError, match="got 3 items, more than the 2 expected"):
        assert_prefix([0, 1, 2], range(2))


def test_assert_permutation_lists_what_is_missing_and_extra() -> None:
    assert_permutation([[2], [1]], [[1], [2]])  # unhashable items too
    with pytest.raises(AssertionError) as caught:
        assert_permutation([1, 2, 2, 5], [1, 2, 3, 4])
    message = str(caught.value)
    assert "missing: 3, 4" in message
    assert "extra:   2, 5" in message
    with pytest.raises(AssertionError, match=r"missing: \[3\]"):
        assert_permutation([[1], [2]], [[1], [3]])


def test_assert_same_items_checks_order_only_where_asked() -> None:
    unordered = snake.from_iterable(range(8)).par_then(wait_then_negate, ordered=False)
    assert_same_items(unordered, Delays(((2.0, 0.0),)), ordered=False)
    with pytest.raises(AssertionError, match="differ first at position"):
        assert_same_items(unordered, Delays(((2.0, 0.0),)))


# --- strategies ----------------------------------------------------------------


@given(st_snake.delays(operators=2, calls=3), st_snake.failures(5))
def test_strategies_draw_within_their_bounds(delays: Delays, bad: frozenset[int]) -> None:
    assert 1 <= len(delays.waits) <= 2
    assert all(1 <= len(w) <= 3 for w in delays.waits)
    assert all(w in WAITS for per in delays.waits for w in per)
    assert bad <= set(range(5))
    assert len(bad) <= 3


async def same(x: int) -> int:
    return x


def test_a_failing_timing_shrinks_to_the_simplest_and_reproduces() -> None:
    pipeline = snake.from_iterable(range(5)).par_then(same, ordered=False)

    def reorders(delays: Delays) -> bool:
        return st_snake.run(pipeline, delays) != sequential(pipeline)

    found = [
        find(st_snake.delays(), reorders, settings=settings(derandomize=True, database=None))
        for _ in range(2)
    ]
    assert found[0] == found[1]  # found again from the same seed
    (waits,) = found[0].waits  # one operator's waits, shrunk
    assert len(waits) <= 2
    assert max(waits) == 0.001  # the shortest wait that reorders: trio wakes sleepers in any order


# --- random pipelines ------------------------------------------------------------


def plus_one(x: int) -> int:
    return x + 1


#: A library's own operator, and one whose reference is off by one.
MINE = st_snake.Op("map(x+1)", lambda p: p.map(plus_one), lambda it: map(plus_one, it))
WRONG = attrs.evolve(MINE, label="map(x+1), wrong", reference=lambda it: (x + 2 for x in it))
MINE_UNORDERED = st_snake.Op(
    "par_map(x+1, ordered=False)",
    lambda p: p.par_map(plus_one, ordered=False),
    lambda it: map(plus_one, it),
    ordered=False,
)


def drawn(strategy: st.SearchStrategy[Any], count: int = 400) -> list[Any]:
    """``count`` examples of ``strategy``, the same on every run."""
    found: list[Any] = []

    @settings(max_examples=count, derandomize=True, database=None)
    @given(strategy)
    def draw(example: Any) -> None:
        found.append(example)

    draw()
    return found


def test_operators_draws_every_row_of_the_table_and_the_callers_own() -> None:
    ops = drawn(st_snake.operators(ordered=None, extra=[MINE, st.just(MINE_UNORDERED)]))
    rows = [row for row in OPERATORS if not row.endless]
    labels = {op.label for op in ops}
    missing = [
        row.name
        for row in rows
        if not any(label.startswith(row.name) or f".{row.name}(" in label for label in labels)
    ]
    assert missing == []
    assert MINE in ops
    assert MINE_UNORDERED in ops
    assert any("executor='process'" in label for label in labels)  # run() runs them here
    assert not any(label == "repeat()" for label in labels)  # never endless
    assert {op.ordered for op in ops} == {True, False}


@pytest.mark.parametrize("ordered", [True, False])
def test_operators_keeps_to_the_order_asked_for_the_callers_ops_too(ordered: bool) -> None:
    ops = drawn(st_snake.operators(ordered=ordered, extra=[MINE, st.just(MINE_UNORDERED)]), 200)
    assert {op.ordered for op in ops} == {ordered}
    assert (MINE_UNORDERED if ordered else MINE) not in ops
    assert (MINE if ordered else MINE_UNORDERED) in ops


def agrees(data: list[int], ops: list[st_snake.Op], delays: Delays) -> None:
    """``run`` gives ``reference``'s items: in order if every op keeps it."""
    # What an op that reorders gives depends only on which items come in, not
    # their order: after the ops that keep it, the chain gives the same items.
    ops = sorted(ops, key=lambda op: not op.ordered)
    got = st_snake.run(st_snake.build(data, ops), delays)
    expected = st_snake.reference(data, ops)
    if all(op.ordered for op in ops):
        assert_ordered_equal(got, expected)
    else:
        assert_permutation(got, expected)


items = st.lists(st.integers(-100, 100), max_size=40)


@given(
    items, st.lists(st_snake.operators(ordered=None, extra=[MINE]), max_size=4), st_snake.delays()
)
def test_a_drawn_chain_gives_what_its_reference_gives(
    data: list[int], ops: list[st_snake.Op], delays: Delays
) -> None:
    agrees(data, ops, delays)


def test_a_wrong_reference_among_the_callers_ops_is_found_and_shrunk() -> None:
    def disagrees(example: tuple[list[int], list[st_snake.Op], Delays]) -> bool:
        try:
            agrees(*example)
        except AssertionError:
            return True
        return False

    chains = st.lists(st_snake.operators(ordered=None, extra=[WRONG]), max_size=4)
    found = find(
        st.tuples(items, chains, st_snake.delays()),
        disagrees,
        settings=settings(derandomize=True, database=None, max_examples=500),
    )
    data, ops, _ = found
    assert ops == [WRONG]  # shrunk to the op at fault,
    assert len(data) == 1  # on one item


def test_build_and_reference_apply_the_ops_in_turn_and_reference_may_stop_early() -> None:
    ops = [MINE, st_snake.Op("take(3)", lambda p: p.take(3), lambda it: list(it)[:3])]
    assert st_snake.run(st_snake.build(range(10), ops)) == st_snake.reference(range(10), ops)
    assert st_snake.reference(range(10), ops) == [1, 2, 3]
    assert st_snake.reference(itertools.count(), [MINE, MINE], limit=4) == [2, 3, 4, 5]
    assert repr(MINE) == "map(x+1)"


@pytest.mark.parametrize("sequential", [False, True])
def test_a_copy_of_unordered_and_tuned_stages_saves_states_of_the_same_shape(
    sequential: bool,
) -> None:
    from snake._checkpoint import shape

    pipeline = (
        snake.from_iterable(range(10))
        .par_then(wait_then_negate, concurrency="auto", ordered=False)
        .par_map(negate, concurrency="auto", ordered=False)
    )
    copy = in_process(pipeline, sequential=sequential)
    assert shape(copy._specs) == shape(pipeline._specs)
    assert repr(copy) == repr(pipeline)
