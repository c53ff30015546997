"""A slow consumer: the pipeline waits for it instead of filling memory."""

from __future__ import annotations

import functools
import itertools
import os
import time
from typing import TYPE_CHECKING

import psutil
import pytest
import trio
import trio.testing

import snake
from snake._chunking import CHANNEL_CHUNKS, MAX_CHUNK
from snake._stages._parallel import LARGE_CALLS
from snake._sync import LARGE_HANDOFFS
from snake._workers._executors import cpu_count

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


async def echo(x: bytes) -> bytes:
    return x


async def test_a_slow_consumer_bounds_what_is_in_flight_and_rss_stays_flat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    produced = 0

    def source() -> Iterator[bytes]:
        nonlocal produced
        for i in itertools.count():
            produced += 1
            yield i.to_bytes(8, "little") * 128  # 1 KiB each

    c = 16
    pipeline = snake.from_iterable(source()).map(bytes).par_then(echo, concurrency=c).then(echo)
    # The bound docs/performance.md gives, stage by stage (in items):
    # the source's pending chunk; par_then's input chunk, its `c` calls and
    # pending chunk; then's input and pending chunks; each channel between
    # them; the last channel and the chunk `items` is reading.
    stages = 3
    channels = (stages - 1) * CHANNEL_CHUNKS + 1
    bound = MAX_CHUNK * (1 + 2 + 2 + channels + 1) + c
    most = 0
    process = psutil.Process()
    rss_early = 0
    async with pipeline.open() as items:
        for consumed in range(1, 50_001):
            await items.receive()
            await trio.sleep(0.001)  # a slow consumer (on the virtual clock)
            most = max(most, produced - consumed)
            if consumed == 10_000:
                rss_early = process.memory_info().rss
    rss_late = process.memory_info().rss
    assert most <= bound, (most, bound)
    assert most >= MAX_CHUNK  # the stages did run ahead, to their buffers
    assert rss_late - rss_early < 16 * 2**20  # 40,000 more items moved; memory did not grow


MiB = 2**20


def made_in(path: str) -> int:
    with open(path, "rb") as marks:
        return marks.read().count(1)


def marking(path: str, i: int) -> bytes:
    """A MiB, after marking item ``i`` made in the file ``path``, wherever it runs."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\1", i)
    finally:
        os.close(fd)
    return bytes([i % 251]) * MiB


async def amarking(path: str, i: int) -> bytes:
    await trio.sleep(0.001 * (i % 3))
    return marking(path, i)


async def passing(x: bytes) -> bytes:
    return x


#: Pipelines of large items, each made (and marked) by a map of some kind.
LARGE = {
    "map": lambda mark: snake.from_iterable(range(400)).map(mark),
    "then": lambda mark: snake.from_iterable(range(400)).map(mark).then(passing),
    "par_then": lambda mark: snake.from_iterable(range(400)).par_then(
        functools.partial(amarking, mark.args[0])
    ),
    "par_then auto": lambda mark: snake.from_iterable(range(400)).par_then(
        functools.partial(amarking, mark.args[0]), concurrency="auto"
    ),
    "par_map thread": lambda mark: snake.from_iterable(range(400)).par_map(mark, executor="thread"),
    "par_map process": lambda mark: snake.from_iterable(range(400)).par_map(mark),
    "batch": lambda mark: (
        snake.from_iterable(range(400))
        .map(lambda i: i)
        .batch(2, collate=lambda b: b"".join(mark(i)[: MiB // 2] for i in b))
    ),
}


#: The most items each of ``LARGE`` runs ahead of its consumer (a
#: ``prefetch(n)`` adds ``n``), as docs/performance.md gives them stage by
#: stage: a large item waits in a channel alone, until the next stage takes it.
AHEAD = {
    "map": 1,  # in the channel to the consumer
    "then": 2,  # in each of the two channels
    "par_then": LARGE_CALLS,  # in its calls or waiting to leave, the channel's included
    "par_then auto": LARGE_CALLS,  # the same, whatever its tuner chose
    "par_map thread": cpu_count() + 1,  # in its jobs, likewise
    "par_map process": cpu_count() + 1,
    "batch": 1,  # batches, as for map
}


@pytest.mark.parametrize("kind", LARGE)
@pytest.mark.parametrize("prefetch", [0, 3])
async def test_a_pipeline_of_large_items_runs_a_bounded_number_ahead_of_a_slow_consumer(
    tmp_path: Path, kind: str, prefetch: int, autojump_clock: trio.testing.MockClock
) -> None:
    marks = tmp_path / "made"
    marks.write_bytes(bytes(400))
    pipeline = LARGE[kind](functools.partial(marking, str(marks)))
    if prefetch:
        pipeline = pipeline.prefetch(prefetch)
    per_item = 2 if kind == "batch" else 1  # items made per item taken
    async with pipeline.open() as items:
        for taken in range(1, 13):
            await items.receive()
            # Let it run ahead as far as it goes: its own waits pass on the
            # virtual clock, its calls in threads and processes in real time,
            # so the marks are polled in real time until they stop changing.
            ahead = -1
            while ahead != (ahead := made_in(str(marks)) - taken * per_item):
                await trio.to_thread.run_sync(time.sleep, 0.05)
            assert ahead <= (AHEAD[kind] + prefetch) * per_item, (taken, ahead)


def test_sync_iteration_of_large_items_runs_a_bounded_number_ahead(tmp_path: Path) -> None:
    # The map's jobs, and the one handoff waiting for the consumer.
    bound = AHEAD["par_map thread"] + LARGE_HANDOFFS
    marks = tmp_path / "made"
    marks.write_bytes(bytes(400))
    pipeline = LARGE["par_map thread"](functools.partial(marking, str(marks)))
    iterator = iter(pipeline)
    for taken in range(1, 13):
        next(iterator)
        ahead = -1
        while ahead != (ahead := made_in(str(marks)) - taken):
            time.sleep(0.05)
        assert ahead <= bound, (taken, ahead)
    iterator.close()
