"""Leaving early, outer deadlines and take(): every stage stops, nothing is left."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest
import trio
import trio.lowlevel
import trio.testing

import snake
from snake._chunking import MAX_CHUNK

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

#: "Within about 100 ms" of the contract, with room for a busy 2-core machine.
PROMPT = 0.5


def sleep_in_worker(x: int) -> int:
    time.sleep(30)
    return x


async def sleep_forever_async(x: int) -> int:
    await trio.sleep_forever()
    return x


async def test_leaving_open_early_cancels_every_stage(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pipeline = (
        snake.from_iterable(itertools.count())
        .par_then(_echo, concurrency=4)
        .then(_echo)
        .prefetch(8)
    )
    async with pipeline.open() as items:
        async for x in items:
            if x == 100:
                break
    # Nothing to assert beyond returning at all: an uncancelled stage would
    # keep the nursery, and so this test, open forever.


async def _echo(x: int) -> int:
    await trio.sleep(0.001)
    return x


@pytest.mark.parametrize("executor", ["process", "thread"])
async def test_an_outer_deadline_is_honoured_promptly_with_work_in_flight(executor: str) -> None:
    fn = sleep_in_worker if executor == "process" else _short_sleep
    pipeline = snake.from_iterable(range(8)).par_map(fn, concurrency=2, executor=executor)  # type: ignore[arg-type]
    async with pipeline.open() as items:
        # Let the work start (and, for processes, the workers spawn) first.
        await trio.sleep(0.1)
        began = time.perf_counter()
        with trio.move_on_after(0.2):
            async for _ in items:
                pass
        late = time.perf_counter() - began - 0.2
    assert late < PROMPT


def _short_sleep(x: int) -> int:
    time.sleep(2)  # a thread cannot be killed: it is abandoned and finishes
    return x


async def test_leaving_open_kills_worker_processes_mid_item() -> None:
    began = time.perf_counter()
    async with (
        snake.from_iterable(range(4)).par_map(sleep_in_worker, concurrency=2).open() as items
    ):
        with trio.move_on_after(1.0):
            await items.receive()
    # Spawning workers and killing them takes well under the 30 s an item needs;
    # the leak fixture checks that no worker process is left.
    assert time.perf_counter() - began < 1.0 + 5 * PROMPT


async def test_take_stops_an_infinite_source_and_the_stages_on_it() -> None:
    pulled = 0

    def naturals() -> Iterator[int]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield i

    with trio.fail_after(5):
        got = await snake.from_iterable(naturals()).then(_echo).take(10).collect()
    assert got == list(range(10))
    # Upstream stopped at once: no more than what fits between the two stages
    # (the source's pending chunk, the channel's, the one in hand) and a slice.
    assert pulled <= 10 + 4 * MAX_CHUNK


async def test_take_kills_process_work_upstream_at_once() -> None:
    with trio.fail_after(10):
        got = await (
            snake.from_iterable(range(6))
            .par_map(_fast_then_forever, concurrency=2)
            .take(1)
            .collect()
        )
    assert got == [0]


def _fast_then_forever(x: int) -> int:
    if x:
        time.sleep(30)
    return x


async def test_a_generator_source_is_closed_when_the_pipeline_stops_early() -> None:
    closed = []

    def source() -> Iterator[int]:
        try:
            yield from itertools.count()
        finally:
            closed.append("sync")

    async def asource() -> AsyncIterator[int]:
        try:
            for i in itertools.count():
                yield i
                await trio.lowlevel.checkpoint()
        finally:
            closed.append("async")

    assert await snake.from_iterable(source()).take(3).collect() == [0, 1, 2]
    async with snake.from_iterable(asource()).open() as items:
        assert await items.receive() == 0
    assert closed == ["sync", "async"]


async def test_closing_the_receiver_stops_the_stages_but_not_the_block() -> None:
    async with snake.from_iterable(itertools.count()).then(_echo).open() as items:
        assert await items.receive() == 0
        await items.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await items.receive()
        # The block itself is not cancelled: it can still do its own work.
        await trio.sleep(0.01)


async def test_a_cancelled_consumer_that_never_blocks_still_stops() -> None:
    count = 0
    with trio.move_on_after(0.05):
        async with snake.from_iterable(itertools.count()).open() as items:
            async for _ in items:
                count += 1
    assert count > 0


async def test_a_source_that_filters_everything_out_still_honours_a_deadline() -> None:
    began = time.perf_counter()
    with trio.move_on_after(0.1):
        await snake.from_iterable(itertools.count()).filter(lambda x: x < 0).collect()
    assert time.perf_counter() - began < 0.1 + PROMPT


async def test_a_pipeline_can_be_opened_again_after_it_was_cut_short() -> None:
    pipeline = snake.from_iterable(range(1000)).map(lambda x: x * 2)
    async with pipeline.open() as items:
        assert await items.receive() == 0
    assert await pipeline.collect() == [x * 2 for x in range(1000)]


async def test_a_thread_map_makes_no_call_past_the_one_in_progress_once_stopped() -> None:
    # A thread cannot be stopped, but a job it runs (of up to 64 items) stops
    # before its next call once its stage is cancelled.
    started: list[int] = []
    finished: list[int] = []

    def slow(x: int) -> int:
        started.append(x)
        time.sleep(0.002)
        finished.append(x)
        return x

    pipeline = snake.from_iterable(range(10_000)).par_map(slow, executor="thread", concurrency=1)
    for _ in range(3):  # jobs grow to many items each after the first ones
        started.clear()
        finished.clear()
        async with pipeline.open() as items:
            async for x in items:
                if x == 200:
                    break
        made = len(started)
        with trio.fail_after(10):
            while len(finished) < len(started):  # noqa: ASYNC110 - a thread's progress
                await trio.sleep(0.01)
        await trio.sleep(0.1)  # time for calls it must not make
        assert len(started) <= made + 1


async def test_an_error_at_the_moment_of_an_outer_cancel_arrives_bare_with_worker_processes() -> (
    None
):
    # Every task of the run is cancelled by the outer scope while the error
    # leaves: none may add a group of its cancellations to the error.
    with trio.CancelScope() as outer:

        async def fails_and_cancels(x: int) -> int:
            if x == 3:
                outer.cancel()
                raise ValueError("three")
            return x

        with pytest.raises(ValueError, match="three"):
            await snake.from_iterable(range(10)).par_map(abs).then(fails_and_cancels).collect()


def _counted(where: str, call: Callable[[int], None]) -> snake.Pipeline[int]:
    """A pipeline that runs ``call(i)`` on pulling each item from a sync
    source, or in an inline map after it."""

    def source() -> Iterator[int]:
        for i in itertools.count():
            call(i)
            yield i

    def mapped(i: int) -> int:
        call(i)
        return i

    if where == "source":
        return snake.from_iterable(source())
    return snake.from_iterable(itertools.count()).map(mapped)


@pytest.mark.parametrize("where", ["source", "map"])
async def test_leaving_open_starts_no_call_of_a_sync_source_or_map(where: str) -> None:
    calls: list[int] = []
    async with _counted(where, calls.append).open() as items:
        async for _ in items:
            break
        made = len(calls)
    assert len(calls) == made


@pytest.mark.parametrize("where", ["source", "map"])
async def test_a_cancel_during_a_sync_call_lets_no_other_start(where: str) -> None:
    calls: list[int] = []
    with trio.CancelScope() as scope:

        def call(i: int) -> None:
            calls.append(i)
            time.sleep(0.001)  # slow: each call is a unit of work of its own
            if i == 3:
                scope.cancel()  # as a deadline expiring while the call blocks

        await _counted(where, call).collect()
    assert scope.cancelled_caught
    assert calls == [0, 1, 2, 3]


def _joining(thread: threading.Thread) -> bool:
    """Whether ``thread`` waits in ``Thread.join()``."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code is threading.Thread.join.__code__:
            return True
        frame = frame.f_back
    return False


@pytest.mark.parametrize("where", ["source", "map"])
@pytest.mark.parametrize("stop", ["break", "close"])
def test_stopping_a_sync_iteration_waits_for_the_call_in_progress_only(
    where: str, stop: str
) -> None:
    consumer = threading.current_thread()
    calls: list[int] = []
    stopping = threading.Event()  # the consumer has its item and is about to stop
    in_progress: list[int] = []

    def call(i: int) -> None:
        calls.append(i)
        time.sleep(0.001)  # slow: each call is a unit of work of its own
        if stopping.is_set() and not in_progress:
            # In progress when the consumer stops: it ends once the consumer
            # waits for the pipeline's thread, inside close().
            in_progress.append(i)
            for _ in range(10_000):
                if _joining(consumer):
                    break
                time.sleep(0.001)

    it = iter(_counted(where, call))
    for _ in it:
        stopping.set()
        for _ in range(10_000):  # until a call is in progress
            if in_progress:
                break
            time.sleep(0.001)
        made = len(calls)
        if stop == "close":
            it.close()
        break
    del it  # with "break", stops the pipeline
    assert in_progress
    assert len(calls) == made
    assert calls[-1] == in_progress[0]
