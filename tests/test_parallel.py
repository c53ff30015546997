"""par_then and par_map: concurrency limits, ordering, reorder window, CPU budget."""

from __future__ import annotations

import functools
import operator
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import snake
from snake._workers._executors import cpu_count
from snake.testing._processes import worker_processes


class InFlight:
    """Counts calls running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.started: list[int] = []

    async def call(self, x: int, delay: float) -> int:
        self.started.append(x)
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await trio.sleep(delay)
        finally:
            self.now -= 1
        return x


@pytest.mark.parametrize("ordered", [True, False])
async def test_par_then_runs_up_to_concurrency_calls_at_once(
    ordered: bool, autojump_clock: trio.testing.MockClock
) -> None:
    flight = InFlight()

    async def fn(x: int) -> int:
        return await flight.call(x, 1 + x % 3)

    got = (
        await snake.from_iterable(range(40)).par_then(fn, concurrency=7, ordered=ordered).collect()
    )
    assert flight.most == 7
    assert got == list(range(40)) if ordered else sorted(got) == list(range(40))


async def test_par_then_unordered_yields_in_completion_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(x: int) -> int:
        await trio.sleep(10 - x)
        return x

    got = await snake.from_iterable(range(10)).par_then(fn, concurrency=10, ordered=False).collect()
    assert got == list(range(9, -1, -1))


async def test_ordered_par_then_starts_nothing_past_its_window_behind_a_slow_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flight = InFlight()
    started_while_head_ran: list[int] = []

    async def fn(x: int) -> int:
        if x == 0:
            await flight.call(x, 100)
            started_while_head_ran.extend(flight.started)
            return x
        return await flight.call(x, 0.01)

    got = await snake.from_iterable(range(50)).par_then(fn, concurrency=5).collect()
    assert got == list(range(50))
    # Items 1..4 finished long before item 0, but memory stays bounded:
    # nothing beyond the window of 5 was started while item 0 held it.
    assert sorted(started_while_head_ran) == [0, 1, 2, 3, 4]


async def test_ordered_par_map_runs_concurrency_jobs_and_holds_a_window_of_three_times_that() -> (
    None
):
    release = threading.Event()
    lock = threading.Lock()
    started: list[int] = []
    running = most = 0

    def fn(x: int) -> int:
        nonlocal running, most
        with lock:
            started.append(x)
            running += 1
            most = max(most, running)
        if x == 0:
            release.wait(10)
        else:
            time.sleep(0.01)
        with lock:
            running -= 1
        return x

    before_release: list[int] = []

    async def release_when_settled() -> None:
        await trio.sleep(0.5)  # items 1.. finish meanwhile; the window fills
        with lock:
            before_release.extend(started)
        release.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_when_settled)
        p = snake.from_iterable(range(40)).par_map(fn, concurrency=2, executor="thread")
        got = await p.collect()
    assert got == list(range(40))
    assert most == 2  # never more than `concurrency` at once
    # While item 0 held the ordered output, one-item jobs 1..5 ran (the window
    # is three times the concurrency) and nothing after them started.
    assert sorted(before_release) == [0, 1, 2, 3, 4, 5]


def square(x: int) -> int:
    return x * x


async def test_par_map_in_processes_keeps_order_and_accepts_lambdas_and_closures() -> None:
    offset = 1000
    got = await (
        snake.from_iterable(range(30))
        .par_map(square, concurrency=2)
        .par_map(lambda y: y + offset, concurrency=2)
        .collect()
    )
    assert got == [x * x + offset for x in range(30)]


async def test_par_map_unordered_is_a_permutation() -> None:
    got = (
        await snake.from_iterable(range(30))
        .par_map(square, ordered=False, executor="thread")
        .collect()
    )
    assert sorted(got) == [x * x for x in range(30)]


async def test_thread_map_has_a_limiter_of_its_own() -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def fn(x: int) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return x

    got = (
        await snake.from_iterable(range(24)).par_map(fn, concurrency=3, executor="thread").collect()
    )
    assert got == list(range(24))
    assert running[1] == 3


def stamp(x: Any) -> tuple[int, float, float]:
    began = time.time()
    time.sleep(0.05)
    return os.getpid(), began, time.time()


def most_overlapping(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


async def test_process_maps_share_one_cpu_budget() -> None:
    got = await (
        snake.from_iterable(range(12))
        .par_map(stamp)
        .map(lambda r: (r, stamp(None)))  # keep the first stamp, pass something on
        .par_map(lambda pair: (pair[0], stamp(None)))
        .collect()
    )
    intervals = [(b, e) for first, second in got for _, b, e in (first, second)]
    # Two process stages, each allowed one worker per CPU, never run more
    # than one worker per CPU between them.
    assert most_overlapping(intervals) <= cpu_count()
    assert len({pid for first, second in got for pid, _, _ in (first, second)}) <= cpu_count()


def stamp_once_all_arrive(folder: str, wanted: int, x: Any) -> tuple[int, float, float]:
    """Like `stamp`, but first waits (up to 10 s) until `wanted` workers have called it.

    The wait keeps the test from depending on how fast workers start on a busy
    machine: if the budget lets `wanted` workers run, they all overlap here.
    """
    began = time.time()
    Path(folder, str(os.getpid())).touch()
    while len(os.listdir(folder)) < wanted and time.time() < began + 10:
        time.sleep(0.005)
    time.sleep(0.01)
    return os.getpid(), began, time.time()


async def test_asking_a_process_map_for_more_workers_raises_the_budget(tmp_path: Path) -> None:
    wanted = cpu_count() + 1
    work = functools.partial(stamp_once_all_arrive, str(tmp_path), wanted)
    # More items than the workers can hold (each runs one job and keeps one
    # waiting), so every worker the budget allows gets some.
    with trio.fail_after(30):
        got = (
            await snake.from_iterable(range(3 * wanted)).par_map(work, concurrency=wanted).collect()
        )
    assert len(os.listdir(tmp_path)) == wanted
    assert most_overlapping([(b, e) for _, b, e in got]) == wanted


class CountsPickling:
    """A callable that counts how often it is pickled in this process."""

    pickled = 0

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __call__(self, x: int) -> int:
        return x + len(self.payload)

    def __reduce__(self) -> Any:
        type(self).pickled += 1
        return (CountsPickling, (self.payload,))


async def test_a_process_map_sends_its_function_once_not_with_every_chunk() -> None:
    fn = CountsPickling(b"x" * 1_000_000)  # a function holding a lot of data
    pipeline = snake.from_iterable(range(3000)).par_map(fn)
    before = CountsPickling.pickled
    got = await pipeline.collect()
    assert got == [x + 1_000_000 for x in range(3000)]
    assert CountsPickling.pickled - before == 1


async def test_worker_processes_start_together_before_the_first_item() -> None:
    arrive = trio.Event()

    async def late_source() -> Any:
        await arrive.wait()
        yield 1

    async with snake.from_iterable(late_source()).par_map(abs).open() as items:
        with trio.fail_after(20):
            # Polls the processes: no item has reached the map yet.
            while len(worker_processes()) < cpu_count():  # noqa: ASYNC110
                await trio.sleep(0.01)
        arrive.set()
        assert [x async for x in items] == [1]


_worker_index: int | None = None


def remember_index(index: int) -> None:
    global _worker_index
    _worker_index = index


def whoami(x: int) -> tuple[int, int | None]:
    time.sleep(0.002)
    return os.getpid(), _worker_index


def refuse_to_start(index: int) -> None:
    raise RuntimeError(f"no worker {index} today")


async def test_worker_init_runs_once_in_each_worker_with_its_number() -> None:
    options = snake.WorkerOptions(init=remember_index)
    got = await snake.from_iterable(range(200)).par_map(whoami, workers=options).collect()
    by_pid: dict[int, set[int | None]] = {}
    for pid, index in got:
        by_pid.setdefault(pid, set()).add(index)
    assert all(len(indexes) == 1 for indexes in by_pid.values())
    assert sorted(i for (i,) in by_pid.values()) == list(range(len(by_pid)))
    assert len(by_pid) == cpu_count()


async def test_an_error_in_worker_init_arrives_as_itself() -> None:
    options = snake.WorkerOptions(init=refuse_to_start)
    with pytest.raises(RuntimeError, match=r"no worker \d today") as info:
        await snake.from_iterable(range(5)).par_map(whoami, workers=options).collect()
    assert any("raised by WorkerOptions.init in worker" in n for n in info.value.__notes__)


async def test_workers_retire_after_max_items() -> None:
    options = snake.WorkerOptions(max_items=5)
    got = await snake.from_iterable(range(60)).par_map(whoami, workers=options).collect()
    assert len({pid for pid, _ in got}) > cpu_count()
    assert len(got) == 60


async def test_forkserver_workers_give_the_same_results() -> None:
    options = snake.WorkerOptions(start_method="forkserver", init=remember_index)
    got = await snake.from_iterable(range(50)).par_map(whoami, workers=options).collect()
    assert len(got) == 50
    assert {index for _, index in got} <= set(range(cpu_count()))


async def test_maps_with_different_worker_options_still_share_the_cpu_budget() -> None:
    got = await (
        snake.from_iterable(range(12))
        .par_map(stamp, workers=snake.WorkerOptions(init=remember_index))
        .map(lambda r: (r, stamp(None)))
        .par_map(lambda pair: (pair[0], stamp(None)), workers=snake.WorkerOptions(max_items=100))
        .collect()
    )
    intervals = [(b, e) for first, second in got for _, b, e in (first, second)]
    assert most_overlapping(intervals) <= cpu_count()


def pid_of(x: Any) -> tuple[Any, int]:
    return x, os.getpid()


def fails_at_7(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x


async def test_maps_and_a_filter_after_a_process_map_run_in_its_workers() -> None:
    me = os.getpid()
    got = await (
        snake.from_iterable(range(40))
        .par_map(abs)
        .map(pid_of)
        .filter(lambda pair: pair[0] % 2 == 0)
        .map(lambda pair: (pair, os.getpid()))  # after the filter: main process
        .collect()
    )
    assert [x for (x, _), _ in got] == list(range(0, 40, 2))
    assert all(worker != me and main == me for (_, worker), main in got)


async def test_a_map_that_cannot_be_pickled_stays_in_the_main_process() -> None:
    lock = threading.Lock()
    got = await (
        snake.from_iterable(range(5)).par_map(abs).map(lambda x: (lock.locked(), x, os.getpid()))
    ).collect()
    assert [(x, pid) for _, x, pid in got] == [(x, os.getpid()) for x in range(5)]


@pytest.mark.parametrize(
    ("build", "note"),
    [
        (lambda p: p.map(fails_at_7), "snake: in stage #2 map(fails_at_7), at item 7 of its input"),
        (
            lambda p: p.map(abs).filter(fails_at_7),
            "snake: in stage #3 filter(fails_at_7), at item 7 of its input",
        ),
    ],
)
async def test_an_error_in_a_step_run_in_the_worker_names_its_own_stage(
    build: Any, note: str
) -> None:
    with pytest.raises(ValueError, match="seven") as info:
        await build(snake.from_iterable(range(20)).par_map(abs)).collect()
    assert info.value.__notes__[0] == note


def chunks_of(items: list[int], size: int, drop_last: bool) -> list[list[int]]:
    out = [items[i : i + size] for i in range(0, len(items), size)]
    return out[:-1] if out and drop_last and len(out[-1]) < size else out


def batch_with_pid(batch: list[int]) -> tuple[list[int], int]:
    return batch, os.getpid()


@pytest.mark.parametrize(("n", "size"), [(0, 3), (2, 3), (300, 7), (301, 7), (500, 100)])
@pytest.mark.parametrize("drop_last", [False, True])
async def test_a_batch_after_a_process_map_is_collated_in_the_workers(
    n: int, size: int, drop_last: bool
) -> None:
    expected = chunks_of([-x for x in range(n)], size, drop_last)
    for ordered in (True, False):
        got = await (
            snake.from_iterable(range(n))
            .par_map(abs, ordered=ordered)
            .map(operator.neg)
            .batch(size, drop_last=drop_last, collate=batch_with_pid)
            .collect()
        )
        batches = [b for b, _ in got]
        assert (batches if ordered else sorted(batches, key=lambda b: -b[0])) == expected
        assert all(pid != os.getpid() for _, pid in got)


def collate_fails_on_7(batch: list[int]) -> int:
    if 7 in batch:
        raise ValueError("seven")
    return sum(batch)


async def test_an_error_in_a_collate_run_in_the_worker_names_the_item_completing_the_batch() -> (
    None
):
    with pytest.raises(ValueError, match="seven") as info:
        await (
            snake.from_iterable(range(20))
            .par_map(abs)
            .batch(4, collate=collate_fails_on_7)
            .collect()
        )
    assert info.value.__notes__[0] == (
        "snake: in stage #2 batch(4, collate=collate_fails_on_7), at item 7 of its input"
    )


async def test_maps_and_a_batch_after_a_thread_map_run_in_its_threads() -> None:
    def where(batch: list[int]) -> tuple[list[int], str]:
        return batch, threading.current_thread().name

    got = await (
        snake.from_iterable(range(20))
        .par_map(abs, executor="thread")
        .map(lambda x: x + 1)
        .batch(5, collate=where)
        .collect()
    )
    assert [b for b, _ in got] == [list(range(k + 1, k + 6)) for k in range(0, 20, 5)]
    assert all(name != threading.main_thread().name for _, name in got)
