"""Each run of a pipeline is an epoch: reshuffled as DataLoader reshuffles, and
reproducible; ``current_epoch()`` and ``worker_info()`` wherever a pipeline calls code."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

import snake

SHUFFLED = st.lists(st.integers(), min_size=2, max_size=60)


@given(SHUFFLED, st.integers(0, 2**32), st.integers(1, 4))
def test_each_run_of_a_pipeline_is_the_next_epoch_reshuffled_and_reproducible(
    data: list[int], seed: int, runs: int
) -> None:
    tagged = list(enumerate(data))
    pipeline = snake.from_iterable(tagged).shuffle(len(data), seed=seed)
    got = [list(pipeline) for _ in range(runs)]
    assert all(sorted(epoch) == tagged for epoch in got)
    # A fresh pipeline of the same operators gives the same epochs again,
    again = snake.from_iterable(tagged).shuffle(len(data), seed=seed)
    assert [list(again) for _ in range(runs)] == got
    # and each is the run with that epoch, whichever way it runs.
    other = snake.from_iterable(tagged).shuffle(len(data), seed=seed)
    for epoch, items in enumerate(got):
        assert list(other.iterate(epoch=epoch)) == items
        assert trio.run(lambda e=epoch: other.collect(epoch=e)) == items


def test_epochs_of_runs_are_shuffled_differently() -> None:
    pipeline = snake.from_iterable(range(100)).shuffle(100, seed=3)
    assert len({tuple(pipeline) for _ in range(4)}) == 4


async def test_a_run_given_an_epoch_is_followed_by_the_next() -> None:
    pipeline = snake.from_iterable("ab").map(lambda x: (snake.current_epoch(), x))
    async with pipeline.open(epoch=4) as items:
        assert [x async for x in items] == [(4, "a"), (4, "b")]
    assert await pipeline.collect() == [(5, "a"), (5, "b")]
    assert await pipeline.collect() == [(6, "a"), (6, "b")]


@pytest.mark.parametrize(
    ("epoch", "error", "match"),
    [
        (-1, ValueError, r"`epoch` must be >= 0, got -1"),
        ("1", TypeError, r"`epoch` must be an int"),
    ],
)
def test_a_bad_epoch_is_refused_when_the_run_starts(epoch: Any, error: type, match: str) -> None:
    pipeline = snake.from_iterable(range(3))
    with pytest.raises(error, match=match):
        pipeline.iterate(epoch=epoch)
    with pytest.raises(error, match=match):
        pipeline.open(epoch=epoch)


@given(st.integers(0, 2**32))
@settings(max_examples=20)
def test_mix_draws_again_each_epoch_and_the_same_for_the_same_epoch(seed: int) -> None:
    a, b = snake.from_iterable("a" * 40), snake.from_iterable("b" * 40)
    mixed = snake.mix([a, b], [1, 1], seed=seed)
    epochs = [list(mixed.iterate(epoch=e)) for e in range(3)]
    assert len({tuple(e) for e in epochs}) == 3
    assert list(snake.mix([a, b], [1, 1], seed=seed).iterate(epoch=2)) == epochs[2]


def test_repeat_numbers_its_passes_on_from_the_runs_epoch() -> None:
    inner = snake.from_iterable(range(30)).shuffle(30, seed=1)
    twice = inner.repeat(2)
    got = list(twice.iterate(epoch=1))
    # Passes 2 and 3: what the pipeline before it gives in epochs 2 and 3.
    assert got == list(inner.iterate(epoch=2)) + list(inner.iterate(epoch=3))
    tagged = snake.from_iterable("a").map(lambda x: snake.current_epoch()).repeat(3)
    assert list(tagged.iterate(epoch=2)) == [6, 7, 8]


def test_an_endless_repeat_in_another_epoch_draws_other_orders() -> None:
    endless = snake.from_iterable(range(20)).shuffle(20, seed=5).repeat().take(40)
    first, second = list(endless.iterate(epoch=0)), list(endless.iterate(epoch=1))
    assert first[:20] != second[:20]
    assert first[20:] != second[20:]


def epoch_of(x: int) -> tuple[int, int]:
    return snake.current_epoch(), x


async def epoch_of_async(x: int) -> tuple[int, int]:
    await trio.lowlevel.checkpoint()
    return snake.current_epoch(), x


@pytest.mark.parametrize(
    "stage",
    [
        lambda p: p.map(epoch_of),
        lambda p: p.then(epoch_of_async),
        lambda p: p.par_then(epoch_of_async, concurrency=2),
        lambda p: p.par_map(epoch_of, executor="thread", concurrency=2),
        lambda p: p.par_map(epoch_of, concurrency=2),
    ],
    ids=["map", "then", "par_then", "par_map-thread", "par_map-process"],
)
def test_every_function_a_pipeline_calls_sees_its_epoch(stage: Any) -> None:
    pipeline = stage(snake.from_iterable(range(3)))
    assert list(pipeline.repeat(2)) == [(e, x) for e in range(2) for x in range(3)]
    assert list(pipeline.iterate(epoch=7)) == [(7, x) for x in range(3)]


async def test_the_epoch_is_not_the_consumers_to_read() -> None:
    with pytest.raises(RuntimeError, match=r"outside a pipeline.*iterate\(epoch=\.\.\.\)"):
        snake.current_epoch()
    async with snake.from_iterable(range(2)).open(epoch=3) as items:
        async for _ in items:
            with pytest.raises(RuntimeError, match="outside a pipeline"):
                snake.current_epoch()


def info_of(x: int) -> tuple[int, snake.WorkerInfo | None, float]:
    return x, snake.worker_info(), random.random()


def test_worker_info_is_none_outside_workers() -> None:
    assert snake.worker_info() is None
    got = list(snake.from_iterable(range(3)).map(info_of))
    assert [info for _, info, _ in got] == [None] * 3


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_worker_info_gives_each_worker_its_place_and_a_seed_per_epoch(executor: str) -> None:
    random.seed(11)  # the run seed is drawn from it: the whole program reproduces
    pipeline = snake.from_iterable(range(40)).par_map(info_of, executor=executor, concurrency=2)
    epochs = [list(pipeline) for _ in range(2)]
    random.seed(11)
    again = snake.from_iterable(range(40)).par_map(info_of, executor=executor, concurrency=2)
    for epoch, got in enumerate(epochs):
        infos = {info for _, info, _ in got}
        assert all(isinstance(info, snake.WorkerInfo) for info in infos)
        assert {info.epoch for info in infos} == {epoch}
        assert {info.num_workers for info in infos} == {2}
        assert {info.id for info in infos} <= {0, 1}
        assert len({info.seed for info in infos}) == len({info.id for info in infos})
        seeds = {info.id: info.seed for info in infos}
        # The same run seed and epoch: the same seed for the same worker.
        for _, info, _ in list(again):
            assert info is not None
            assert info.seed == seeds.get(info.id, info.seed)
    first = {info.id: info.seed for _, info, _ in epochs[0]}
    second = {info.id: info.seed for _, info, _ in epochs[1]}
    assert all(first[i] != second[i] for i in first.keys() & second.keys())


def test_worker_processes_are_seeded_for_each_epoch() -> None:
    random.seed(5)
    pipeline = snake.from_iterable(range(8)).par_map(info_of, concurrency=1)
    epochs = [[r for _, _, r in pipeline] for _ in range(2)]
    assert epochs[0] != epochs[1]  # new draws each epoch, not the same augmentations
    (info,) = {info for _, info, _ in pipeline.iterate(epoch=0)}
    assert info is not None
    expected = random.Random(info.seed)
    assert epochs[0] == [expected.random() for _ in range(8)]  # seeded with worker_info().seed


_init_info: snake.WorkerInfo | None = None


def keep_info(index: int) -> None:
    global _init_info
    _init_info = snake.worker_info()
    assert _init_info is not None
    assert _init_info.id == index


def init_info(x: int) -> snake.WorkerInfo | None:
    return _init_info


def test_worker_init_reads_worker_info() -> None:
    options = snake.WorkerOptions(init=keep_info)
    got = list(snake.from_iterable(range(4)).par_map(init_info, workers=options, concurrency=2))
    assert all(info is not None and info.num_workers == 2 for info in got)
    assert {info.epoch for info in got if info is not None} == {0}


def seed_my_way(index: int) -> None:
    random.seed(1234 + index)


def test_an_init_may_seed_the_generators_its_own_way() -> None:
    options = snake.WorkerOptions(init=seed_my_way)
    pipeline = snake.from_iterable(range(5)).par_map(info_of, workers=options, concurrency=1)
    got = list(pipeline)
    ((index,),) = {(info.id,) for _, info, _ in got if info is not None}
    mine = random.Random(1234 + index)
    assert [r for _, _, r in got] == [mine.random() for _ in range(5)]  # seeded after ours
