"""The builder, the sources, ``then`` and ``prefetch``, and what every stage shares."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import snake


def test_the_public_api_is_exactly_this() -> None:
    assert sorted(snake.__all__) == [
        "ItemTimeoutError", "Pipeline", "PipelineReceiver", "RemoteError", "StageStatistics", "Statistics", "WorkerDiedError", "WorkerError", "WorkerOptions", "WorkerStatistics",
        "concat", "current_epoch",
        "from_iterable", "merge", "mix", "zip",
    ]  # fmt: skip
    for name in snake.__all__:
        assert getattr(snake, name).__module__.split(".")[0] == "snake"
    assert isinstance(snake.__version__, str)


async def test_a_pipeline_is_immutable_and_can_be_extended_in_several_ways() -> None:
    base = snake.from_iterable(range(5))
    doubled = base.map(lambda x: x * 2)
    odd = base.filter(lambda x: x % 2)
    assert await base.collect() == [0, 1, 2, 3, 4]
    assert await doubled.collect() == [0, 2, 4, 6, 8]
    assert await odd.collect() == [1, 3]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        base._specs = ()  # type: ignore[misc]


async def test_a_pipeline_can_be_run_many_times(autojump_clock: trio.testing.MockClock) -> None:
    pipeline = snake.from_iterable(range(100)).par_then(trio.sleep, concurrency=4).take(3)
    assert [await pipeline.collect() for _ in range(3)] == [[None] * 3] * 3


def test_repr_spells_the_chain() -> None:
    async def fetch(x: int) -> int:
        return x

    pipeline = snake.from_iterable([1]).par_then(fetch, concurrency=3).batch(2).take(1)
    assert repr(pipeline) == ("snake.from_iterable(list).par_then(fetch).batch(2).take(1)")


async def test_sources_sync_and_async() -> None:
    async def agen() -> AsyncIterator[int]:
        for i in range(4):
            await trio.sleep(0)
            yield i

    def gen() -> Any:
        yield from range(4)

    class OldStyle:  # iterable through __getitem__ only
        def __getitem__(self, i: int) -> int:
            if i >= 4:
                raise IndexError
            return i

    send, recv = trio.open_memory_channel[int](10)
    async with send:
        for i in range(4):
            await send.send(i)
    for source in [range(4), [0, 1, 2, 3], gen(), agen(), OldStyle(), recv]:
        assert await snake.from_iterable(source).collect() == [0, 1, 2, 3], source


async def test_an_empty_source_gives_nothing_through_every_operator() -> None:
    p = (
        snake.from_iterable([])
        .map(str)
        .then(_echo)
        .par_then(_echo)
        .par_map(abs, executor="thread")
        .batch(3)
        .unbatch()
        .prefetch(2)
    )
    assert await p.collect() == []


async def _echo(x: Any) -> Any:
    await trio.sleep(0)
    return x


async def test_then_runs_one_call_at_a_time_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    running = 0
    most = 0

    async def slow(x: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await trio.sleep(1 + (x % 3))
        running -= 1
        return x

    start = trio.current_time()
    assert await snake.from_iterable(range(9)).then(slow).collect() == list(range(9))
    assert most == 1
    assert trio.current_time() - start == pytest.approx(9 + 9)


async def test_prefetch_lets_the_upstream_run_ahead_by_n_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    produced = 0

    async def source() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(100):
            await trio.sleep(0.001)
            produced += 1
            yield i

    for n in (5, 60):
        produced = 0
        async with snake.from_iterable(source()).prefetch(n).open() as items:
            assert await items.receive() == 0
            await trio.sleep(10)  # a slow consumer: the buffer fills, then waits
            # n wait in the buffer; the rest in pending chunks and channels,
            # each holding what a stage makes in one latency budget or less.
            assert n + 1 <= produced < n + 80
            assert [x async for x in items] == list(range(1, 100))


# --- what every stage shares ------------------------------------------------

STAGES: dict[str, Callable[[snake.Pipeline[int]], snake.Pipeline[int]]] = {
    "map": lambda p: p.map(lambda x: x),
    "filter": lambda p: p.filter(lambda x: True),
    "flat_map": lambda p: p.flat_map(lambda x: [x]),
    "skip(0)": lambda p: p.skip(0),
    "batch.unbatch": lambda p: p.batch(3).unbatch(),
    "then": lambda p: p.then(_echo),
    "par_then": lambda p: p.par_then(_echo, concurrency=3),
    "par_then unordered": lambda p: p.par_then(_echo, ordered=False),
    "par_map thread": lambda p: p.par_map(abs, executor="thread"),
    "prefetch": lambda p: p.prefetch(3),
}


class Boom(Exception):
    pass


def fail_at(n: int) -> Callable[[int], int]:
    def check(x: int) -> int:
        if x == n:
            raise Boom(x)
        return x

    return check


@pytest.mark.parametrize("stage", STAGES)
async def test_every_stage_keeps_items_passes_errors_and_stops_for_take(stage: str) -> None:
    add = STAGES[stage]
    data = list(range(3000))
    got = await add(snake.from_iterable(data)).collect()
    assert sorted(got) == data
    # An upstream error passes through it as itself, with the upstream's note.
    with pytest.raises(Boom) as info:
        await add(snake.from_iterable(data).map(fail_at(2500))).collect()
    assert info.value.__notes__ == ["snake: in stage #1 map(check), at item 2500 of its input"]
    # A take after it stops it and the source, even on an infinite stream.
    assert len(await add(snake.from_iterable(itertools.count())).take(1234).collect()) == 1234


@pytest.mark.parametrize("stage", STAGES)
async def test_every_stage_stops_at_an_outer_cancel(stage: str) -> None:
    async def forever() -> AsyncIterator[int]:
        for i in itertools.count():
            if i % 100 == 0:
                await trio.sleep(0.001)
            yield i

    with trio.move_on_after(0.2) as scope:
        async with STAGES[stage](snake.from_iterable(forever())).open() as items:
            async for _ in items:
                pass
    assert scope.cancelled_caught


@pytest.mark.parametrize("n", [0, 1, 5])
async def test_then_makes_no_call_past_a_take_after_it(n: int) -> None:
    calls: list[int] = []

    async def record(x: int) -> int:
        calls.append(x)
        return x

    for pipeline in [
        snake.from_iterable(range(100)).then(record).take(n),
        snake.from_iterable(range(100)).then(record).filter(lambda x: x % 2).take(n),
    ]:
        calls.clear()
        got = await pipeline.collect()
        assert len(got) == n
        assert calls == list(range((got[-1] + 1) if got else 0))
