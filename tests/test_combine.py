"""concat, zip and merge agree with Python's chain and zip; merge keeps each one's order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import snake

lists = st.lists(st.lists(st.integers(), max_size=60), max_size=4)
delays = st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.3]), min_size=1, max_size=3)


def delayed(data: list[int], waits: list[float]) -> snake.Pipeline[int]:
    async def wait(x: int) -> int:
        await trio.sleep(waits[x % len(waits)])
        return x

    return snake.from_iterable(data).then(wait)


def run(pipeline: snake.Pipeline[Any]) -> list[Any]:
    return trio.run(pipeline.collect, clock=trio.testing.MockClock(autojump_threshold=0))


@given(lists, delays)
def test_concat_is_chain(data: list[list[int]], waits: list[float]) -> None:
    got = run(snake.concat(*(delayed(d, waits) for d in data)))
    assert got == list(itertools.chain(*data))


@given(lists, delays)
def test_zip_is_zip(data: list[list[int]], waits: list[float]) -> None:
    got = run(snake.zip(*(delayed(d, waits) for d in data)))
    assert got == list(zip(*data, strict=False))


@given(lists, delays)
def test_merge_gives_every_item_each_pipeline_in_its_order(
    data: list[list[int]], waits: list[float]
) -> None:
    tagged = [[(k, x) for x in d] for k, d in enumerate(data)]
    got = run(snake.merge(*(snake.from_iterable(t).then(pause(waits)) for t in tagged)))
    assert sorted(got) == sorted(itertools.chain(*tagged))
    for k, own in enumerate(tagged):
        assert [item for item in got if item[0] == k] == own


def pause(waits: list[float]) -> Any:
    async def fn(item: tuple[int, int]) -> tuple[int, int]:
        await trio.sleep(waits[item[1] % len(waits)])
        return item

    return fn


async def test_merge_passes_items_on_as_they_come(autojump_clock: trio.testing.MockClock) -> None:
    slow = delayed([1, 2, 3], [1.0])
    fast = delayed([10, 20, 30], [0.1])
    assert await snake.merge(slow, fast).collect() == [10, 20, 30, 1, 2, 3]


async def test_take_after_zip_of_infinite_pipelines_stops_them() -> None:
    naturals, squares = (snake.from_iterable(itertools.count()) for _ in range(2))
    got = await snake.zip(naturals, squares.map(lambda x: x * x)).take(4).collect()
    assert got == [(0, 0), (1, 1), (2, 4), (3, 9)]


async def test_an_error_in_one_pipeline_stops_the_merge() -> None:
    async def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="bad 0"):
        await snake.merge(
            snake.from_iterable(itertools.count()), snake.from_iterable([0]).then(boom)
        ).collect()


def test_only_pipelines_are_combined() -> None:
    with pytest.raises(
        TypeError, match=r"snake.zip\(\) takes pipelines, got list \[1\] as argument 1"
    ):
        snake.zip(snake.from_iterable([1]), [1])  # type: ignore[arg-type]
