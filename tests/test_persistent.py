"""``snake.persistent_workers()``: worker processes kept from run to run, and none after."""

from __future__ import annotations

import os
import random

import psutil
import pytest
import trio

import snake

_inits = 0


def count_init(index: int) -> None:
    global _inits
    _inits += 1


def who(x: int) -> tuple[int, int]:
    return os.getpid(), _inits


def pids(got: list[tuple[int, int]]) -> set[int]:
    return {pid for pid, _ in got}


def alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


OPTIONS = snake.WorkerOptions(init=count_init)


def test_runs_in_the_block_reuse_its_workers_whose_init_ran_once() -> None:
    pipeline = snake.from_iterable(range(40)).par_map(who, concurrency=2, workers=OPTIONS)
    without = [pids(list(pipeline)) for _ in range(2)]
    assert not without[0] & without[1]  # each run its own workers
    with snake.persistent_workers():
        runs = [list(pipeline) for _ in range(4)]
        # However the jobs fell on them, no run started a worker of its own:
        # the map's two, started once, ran them all (each new one would be a
        # new pid, at least one a run).
        kept = set().union(*map(pids, runs))
        assert len(kept) <= 2
        assert {inits for run in runs for _, inits in run} == {1}
        assert all(alive(pid) for pid in kept)  # idle between runs
    assert not any(alive(pid) for pid in kept)  # and gone with the block


async def test_async_with_keeps_them_for_the_runs_of_a_trio_program() -> None:
    pipeline = snake.from_iterable(range(40)).par_map(who, concurrency=2, workers=OPTIONS)
    async with snake.persistent_workers():
        runs = [await pipeline.collect() for _ in range(2)]
        async with pipeline.open() as items:
            runs.append([x async for x in items])
    kept = set().union(*map(pids, runs))
    assert len(kept) <= 2
    assert not any(alive(pid) for pid in kept)


def test_maps_with_other_options_get_workers_of_their_own() -> None:
    other = snake.WorkerOptions(max_items=10**6)
    with snake.persistent_workers():
        a = pids(list(snake.from_iterable(range(20)).par_map(who, concurrency=1)))
        b = pids(list(snake.from_iterable(range(20)).par_map(who, concurrency=1, workers=other)))
        again = pids(list(snake.from_iterable(range(20)).par_map(who, concurrency=1)))
    assert not a & b
    assert again == a


def draw(x: int) -> tuple[int, float]:
    return snake.current_epoch(), random.random()


def test_kept_workers_are_seeded_afresh_for_each_epoch_and_run() -> None:
    pipeline = snake.from_iterable(range(6)).par_map(draw, concurrency=1)
    with snake.persistent_workers():
        epochs = [list(pipeline) for _ in range(2)]
        again = list(pipeline.iterate(epoch=0))
    assert [e for e, _ in epochs[0]] == [0] * 6
    assert [e for e, _ in epochs[1]] == [1] * 6
    assert epochs[0] != epochs[1]
    assert again == epochs[0]  # the same epoch draws the same again


def boom(x: int) -> int:
    if x == 3:
        raise ValueError("boom")
    return x


def test_a_failed_run_leaves_the_block_usable() -> None:
    with snake.persistent_workers():
        with pytest.raises(ValueError, match="boom"):
            list(snake.from_iterable(range(50)).par_map(boom, concurrency=2))
        assert list(snake.from_iterable(range(50)).par_map(abs, concurrency=2)) == list(range(50))


def test_an_iterator_left_open_is_closed_when_the_block_ends() -> None:
    with snake.persistent_workers():
        it = iter(snake.from_iterable(range(10**6)).par_map(who, concurrency=2))
        pid, _ = next(it)
    assert list(it) == []  # closed: exhausted
    assert not alive(pid)


def test_a_block_is_entered_once_and_runs_after_it_start_their_own() -> None:
    scope = snake.persistent_workers()
    with scope:
        pass
    with pytest.raises(RuntimeError, match="entered only once"), scope:
        pass
    assert list(snake.from_iterable(range(3)).par_map(abs)) == [0, 1, 2]


async def test_nothing_outlives_an_async_block_left_by_a_cancel() -> None:
    pipeline = snake.from_iterable(range(10**6)).par_map(who, concurrency=2)
    with trio.CancelScope() as cancelled:
        async with snake.persistent_workers(), pipeline.open() as items:
            pid, _ = await items.receive()
            cancelled.cancel()
            await trio.sleep_forever()
    assert cancelled.cancelled_caught
    assert not alive(pid)
