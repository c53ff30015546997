"""concat, zip and merge agree with Python's chain and zip; merge keeps each one's order."""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from hypothesis import assume, given
from hypothesis import strategies as st
from operators import interleaved

import snake
from snake._chunking import MAX_CHUNK
from snake._workers._executors import cpu_count

if TYPE_CHECKING:
    from collections.abc import Iterator

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


#: Mix weights: some may be 0 (the test assumes that not all of those it uses are).
weights_of = st.lists(st.just(0.0) | st.floats(0.1, 10), min_size=4, max_size=4)


@given(lists, weights_of, st.integers(0, 2**32))
def test_mix_uses_every_item_in_order_and_first_exhausted_is_a_prefix(
    data: list[list[int]], weights: list[float], seed: int
) -> None:
    tagged = [[(k, x) for x in d] for k, d in enumerate(data)]
    sources = [snake.from_iterable(t) for t in tagged]
    ws = weights[: len(sources)]
    assume(not ws or any(ws))
    every = run(snake.mix(sources, ws, seed=seed, stop="all_exhausted"))
    for k, own in enumerate(tagged):
        assert [item for item in every if item[0] == k] == own
    assert len(every) == sum(map(len, tagged))
    # A pipeline of weight 0 gives its items after the others are used up.
    zero = {k for k, w in enumerate(ws) if w == 0}
    kinds = [item[0] in zero for item in every]
    assert kinds == sorted(kinds)
    assert every == run(snake.mix(sources, ws, seed=seed, stop="all_exhausted"))  # repeatable
    first = run(snake.mix(sources, ws, seed=seed))
    assert first == every[: len(first)]
    assert not any(item[0] in zero for item in first)  # never drawn while others have items


@pytest.mark.parametrize(
    ("weights", "sizes"),
    [([1, 0], [2, 1]), ([0, 1], [1, 2]), ([0, 1], [0, 0]), ([0, 0, 1], [2, 2, 1])],
)
async def test_mix_of_all_exhausted_gives_the_items_of_weight_0_pipelines_last(
    weights: list[float], sizes: list[int]
) -> None:
    sources = [snake.from_iterable([(k, i) for i in range(n)]) for k, n in enumerate(sizes)]
    got = await snake.mix(sources, weights, seed=0, stop="all_exhausted").collect()
    assert sorted(got) == sorted((k, i) for k, n in enumerate(sizes) for i in range(n))
    first_zero = next((at for at, (k, _) in enumerate(got) if weights[k] == 0), len(got))
    assert all(weights[k] == 0 for k, _ in got[first_zero:])


@pytest.mark.parametrize("weights", [[1, 1], [3, 1], [1, 4, 5]])
async def test_mix_frequencies_approach_the_weights(weights: list[float]) -> None:
    sources = [snake.from_iterable(itertools.repeat(k)) for k in range(len(weights))]
    n = 20_000
    got = await snake.mix(sources, weights, seed=5).take(n).collect()
    for k, w in enumerate(weights):
        assert abs(got.count(k) / n - w / sum(weights)) < 0.02


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        ([1], ValueError, "got 2 pipelines but 1 weights"),
        ([1, -1], ValueError, "weights must be numbers >= 0, got -1"),
        ([0, 0], ValueError, "must not all be 0"),
        ("ab", TypeError, "needs a list of weights"),
    ],
)
def test_bad_mix_weights_are_refused(weights: Any, error: type, message: str) -> None:
    sources = [snake.from_iterable([1]), snake.from_iterable([2])]
    with pytest.raises(error, match=message):
        snake.mix(sources, weights)


@given(
    st.lists(st.lists(st.integers(), max_size=8), max_size=8),
    st.integers(1, 4),
    st.integers(1, 3),
    delays,
)
def test_ordered_interleave_is_the_round_robin(
    files: list[list[int]], cycle: int, block: int, waits: list[float]
) -> None:
    tagged = [[(k, x) for x in f] for k, f in enumerate(files)]

    def read(k: int) -> snake.Pipeline[tuple[int, int]]:
        return snake.from_iterable(tagged[k]).then(pause(waits))

    pipeline = snake.from_iterable(range(len(tagged))).interleave(
        read, cycle_length=cycle, block_length=block
    )
    got = run(pipeline)
    assert got == list(interleaved(tagged, cycle, block))
    assert got == run(pipeline)  # deterministic


@given(st.lists(st.lists(st.integers(), max_size=8), max_size=8), st.integers(1, 4), delays)
def test_unordered_interleave_gives_every_item_each_file_in_order(
    files: list[list[int]], cycle: int, waits: list[float]
) -> None:
    tagged = [[(k, x) for x in f] for k, f in enumerate(files)]
    got = run(
        snake.from_iterable(tagged).interleave(
            lambda t: snake.from_iterable(t).then(pause(waits)), cycle_length=cycle, ordered=False
        )
    )
    assert sorted(got) == sorted(itertools.chain(*tagged))
    for k, own in enumerate(tagged):
        assert [item for item in got if item[0] == k] == own


async def test_interleave_reads_cycle_length_files_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(x: int) -> int:
        await trio.sleep(1)
        return x

    began = trio.current_time()
    got = await (
        snake.from_iterable(range(4))
        .interleave(lambda f: snake.from_iterable([f] * 3).then(slow), cycle_length=4)
        .collect()
    )
    assert got == [0, 1, 2, 3] * 3
    assert trio.current_time() - began == pytest.approx(3)  # not 12: four read at once


@pytest.mark.parametrize("ordered", [True, False])
async def test_interleave_runs_ahead_of_a_slow_consumer_only_by_its_buffers(ordered: bool) -> None:
    produced = consumed = most = 0

    def records(k: int) -> Iterator[tuple[int, int]]:
        nonlocal produced
        for i in range(100_000):
            produced += 1
            yield k, i

    pipeline = snake.from_iterable(range(4)).interleave(records, cycle_length=4, ordered=ordered)
    async with pipeline.open() as items:
        async for _ in items:
            consumed += 1
            most = max(most, produced - consumed)
            if consumed % 100 == 0:
                await trio.sleep(0.001)  # a slow consumer: the files wait for it
            if consumed == 3000:
                break
    # Each open file's stages and a few chunks between them and the consumer,
    # not the 400,000 records.
    assert most < (4 * 6 + 4) * MAX_CHUNK


def test_interleave_needs_pipelines_or_iterables() -> None:
    with pytest.raises(
        TypeError,
        match=r"interleave\(\) needs <lambda> to return a pipeline or an iterable, got int 5",
    ):
        list(snake.from_iterable([1]).interleave(lambda x: 5, cycle_length=2))


def pid_of(x: int) -> tuple[int, int]:
    return x, os.getpid()


def mapped(start: int) -> snake.Pipeline[tuple[int, int]]:
    return snake.from_iterable(range(start, start + 10)).par_map(pid_of)


#: Pipelines nested in another, each with a process map of its own.
NESTED = {
    "concat": lambda: snake.concat(*(mapped(10 * k) for k in range(4))),
    "zip": lambda: snake.zip(*(mapped(10 * k) for k in range(4))).flat_map(list),
    "merge": lambda: snake.merge(*(mapped(10 * k) for k in range(4))),
    "mix": lambda: snake.mix([mapped(10 * k) for k in range(4)], [1] * 4, stop="all_exhausted"),
    "interleave": lambda: snake.from_iterable(range(4)).interleave(
        lambda k: mapped(10 * k), cycle_length=4
    ),
    "repeat": lambda: mapped(0).repeat(4),
}


@pytest.mark.parametrize("how", NESTED)
async def test_nested_pipelines_share_the_runs_worker_processes_and_cpu_budget(how: str) -> None:
    # One set of workers for the whole run, within its CPU budget: not one
    # set per nested pipeline, nor per epoch.
    got = await NESTED[how]().collect()
    expected = list(range(10)) * 4 if how == "repeat" else list(range(40))
    assert sorted(x for x, _ in got) == sorted(expected)
    assert len({pid for _, pid in got}) <= cpu_count()
