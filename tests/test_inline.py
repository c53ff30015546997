"""Inline operators: results as Python's own builtins give, fused into one stage."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio

import snake
from snake._plan import plan

DATA = list(range(50))


async def test_map_filter_flat_map_match_builtins() -> None:
    p = (
        snake.from_iterable(DATA)
        .map(lambda x: x * 3)
        .filter(lambda x: x % 2)
        .flat_map(lambda x: [x, -x])
    )
    expected = [y for x in DATA if (x * 3) % 2 for y in (x * 3, -x * 3)]
    assert await p.collect() == expected


async def test_enumerate_counts_from_start() -> None:
    assert await snake.from_iterable("abc").enumerate(start=5).collect() == [
        (5, "a"),
        (6, "b"),
        (7, "c"),
    ]


@pytest.mark.parametrize("n", [0, 1, 7, 50, 80])
async def test_take_and_skip_match_islice(n: int) -> None:
    src = snake.from_iterable(DATA)
    assert await src.take(n).collect() == list(itertools.islice(DATA, n))
    assert await src.skip(n).collect() == list(itertools.islice(DATA, n, None))


async def test_batch_keeps_a_short_last_batch_unless_dropped() -> None:
    src = snake.from_iterable(range(7))
    assert await src.batch(3).collect() == [[0, 1, 2], [3, 4, 5], [6]]
    assert await src.batch(3, drop_last=True).collect() == [[0, 1, 2], [3, 4, 5]]
    assert await src.batch(7).collect() == [list(range(7))]
    assert await snake.from_iterable([]).batch(3).collect() == []


async def test_batch_collate_turns_each_batch_into_one_object() -> None:
    assert await snake.from_iterable(range(7)).batch(3, collate=sum).collect() == [3, 12, 6]


async def test_unbatch_flattens_one_level() -> None:
    nested = [[1, 2], [], [3], [4, 5, 6]]
    assert await snake.from_iterable(nested).unbatch().collect() == [1, 2, 3, 4, 5, 6]


async def test_take_after_batch_finishes_the_steps_after_it() -> None:
    # take(5) is satisfied mid-chain; the batch after it still emits its tail.
    p = snake.from_iterable(range(100)).take(5).batch(2)
    assert await p.collect() == [[0, 1], [2, 3], [4]]


async def test_take_zero_never_pulls_from_the_source() -> None:
    pulled = []

    def source() -> Any:
        for i in range(10):
            pulled.append(i)
            yield i

    assert await snake.from_iterable(source()).take(0).collect() == []
    assert pulled == []


def test_consecutive_inline_ops_fuse_into_the_stage_before_them() -> None:
    async def ident(x: int) -> int:
        return x

    p = (
        snake.from_iterable(range(3))
        .map(str)
        .filter(bool)
        .enumerate()
        .take(2)
        .then(ident)
        .skip(1)
        .batch(2)
        .unbatch()
    )
    stages = plan(p._specs)
    assert [s.spec.describe() for s in stages] == ["from_iterable(range)", "then(ident)"]
    assert [i for i, _ in stages[0].fused] == [1, 2, 3, 4]
    assert [i for i, _ in stages[1].fused] == [6, 7, 8]


class _TaskCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


async def test_fused_pipeline_runs_one_task_per_stage() -> None:
    counter = _TaskCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        p = snake.from_iterable(range(1000))
        for _ in range(5):
            p = p.map(lambda x: x + 1)
        assert await p.collect() == [x + 5 for x in range(1000)]
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert counter.spawned == 1
