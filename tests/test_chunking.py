"""Chunks: big when the pipeline is fast, single items when it is slow."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

import snake
from snake._chunking import MAX_CHUNK, Inbox, Outbox, Pacer, Taken
from snake._receiver import PipelineReceiver
from snake._weight import CHUNK_BYTES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def chunk_sizes(pipeline: snake.Pipeline[int]) -> list[int]:
    sizes = []
    async with pipeline.open() as items:
        assert isinstance(items, PipelineReceiver)
        while True:
            try:
                sizes.append(len(await items.receive_chunk()))
            except trio.EndOfChannel:
                return sizes


async def test_a_fast_pipeline_moves_full_chunks() -> None:
    async def ident(x: int) -> int:
        return x

    for pipeline in [
        snake.from_iterable(range(10_000)).map(lambda x: x + 1),
        snake.from_iterable(range(10_000)).then(ident),
    ]:
        sizes = await chunk_sizes(pipeline)
        assert sum(sizes) == 10_000
        assert max(sizes) == MAX_CHUNK
        # Slow start aside, chunks are full.
        assert len(sizes) < 10_000 / MAX_CHUNK + 12


async def test_chunks_never_exceed_the_cap() -> None:
    sizes = await chunk_sizes(
        snake.from_iterable(range(5000)).filter(lambda x: x % 7).flat_map(lambda x: [x] * 3)
    )
    assert sum(sizes) == sum(3 for x in range(5000) if x % 7)
    assert max(sizes) <= MAX_CHUNK


async def arrival_times(pipeline: snake.Pipeline[int]) -> dict[int, float]:
    seen = {}
    async with pipeline.open() as items:
        async for x in items:
            seen[x] = trio.current_time()
    return seen


async def test_a_slow_then_hands_over_each_item_as_it_is_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(x: int) -> int:
        await trio.sleep(1)
        return x

    seen = await arrival_times(snake.from_iterable(range(5)).then(slow).map(lambda x: x))
    assert seen == {i: pytest.approx(i + 1) for i in range(5)}


async def test_a_burst_from_an_async_source_is_not_held_back_by_the_pause_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def bursts() -> AsyncIterator[int]:
        for burst in range(3):
            for i in range(4):
                yield burst * 4 + i
            await trio.sleep(100)

    seen = await arrival_times(snake.from_iterable(bursts()).map(lambda x: x))
    assert seen == {i: pytest.approx(100 * (i // 4)) for i in range(12)}


async def test_a_then_with_uneven_calls_delays_no_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def uneven(x: int) -> int:
        if x % 2:  # fast, fast, then a long wait: the fast ones go out first
            await trio.sleep(10)
        return x

    seen = await arrival_times(snake.from_iterable(range(6)).then(uneven))
    done_at = {0: 0, 1: 10, 2: 10, 3: 20, 4: 20, 5: 30}
    assert seen == {i: pytest.approx(t) for i, t in done_at.items()}


async def test_a_stage_busy_without_suspending_still_hands_items_over_each_budget() -> None:
    def busy(x: int) -> int:
        time.sleep(0.002)  # holds the event loop, as a careless function would
        return x

    async def busy_async(x: int) -> int:
        return busy(x)

    for pipeline in [
        snake.from_iterable(range(100)).map(busy),
        snake.from_iterable(range(100)).then(busy_async),
    ]:
        began = time.perf_counter()
        async with pipeline.open() as items:
            assert await items.receive() == 0
            first = time.perf_counter() - began
        # Far less than the whole input's 0.2 s: the first budget's worth.
        assert first < 0.1


async def test_par_then_results_reach_the_consumer_as_they_complete(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(x: int) -> int:
        await trio.sleep(x)
        return x

    seen = await arrival_times(snake.from_iterable(range(5)).par_then(fn, concurrency=5))
    assert seen == {i: pytest.approx(i) for i in range(5)}


def test_pacer_starts_at_one_item_and_sizes_units_to_the_budget() -> None:
    pacer = Pacer(target=0.001, maximum=64)
    assert pacer.size == 1
    sizes = []
    for _ in range(8):
        pacer.record(pacer.size, 0.0)  # free work: grow, at most doubling
        sizes.append(pacer.size)
    assert sizes == [2, 4, 8, 16, 32, 64, 64, 64]
    pacer.record(64, 64 * 0.0001)  # 0.1 ms an item: 10 fit the target
    assert pacer.size == 10
    pacer.record(10, 10 * 0.01)  # slower than the whole target: one at a time
    assert pacer.size == 1


@pytest.mark.parametrize("size", [8, CHUNK_BYTES])
async def test_a_large_item_waits_in_the_channel_alone_small_ones_fill_its_buffer(
    size: int,
) -> None:
    send, recv = trio.open_memory_channel[list[Any]](2)
    taken = Taken()
    outbox, inbox = Outbox(send, None, taken=taken), Inbox(recv, None, taken=taken)
    sent = []

    async def produce() -> None:
        for i in range(4):
            await outbox.emit([bytes(size)])
            await outbox.flush()
            sent.append(i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        await trio.testing.wait_all_tasks_blocked()
        # Small: the buffer's two, and the stage goes on to the next. Large:
        # one, and the stage waits until it is taken.
        assert sent == ([0, 1] if size < CHUNK_BYTES else [])
        assert recv.statistics().current_buffer_used == (2 if size < CHUNK_BYTES else 1)
        assert await inbox.next() is not None
        await trio.testing.wait_all_tasks_blocked()
        assert sent == ([0, 1, 2] if size < CHUNK_BYTES else [0])
        assert recv.statistics().current_buffer_used == (2 if size < CHUNK_BYTES else 1)
        nursery.cancel_scope.cancel()


async def _enrich(request: str) -> str:
    await trio.sleep(0.01)
    return f"{request}: ok"


def test_items_read_while_the_next_stage_was_busy_arrive_though_the_source_then_waits() -> None:
    # A long-lived source (a channel) reads a burst and waits for more. What
    # it read while the next stage was busy, so that the channel was full,
    # goes as soon as that stage takes a chunk, not with the next burst: a
    # service's last request was once held until the next one came.
    async def main() -> list[str]:
        replies: list[str] = []
        send, receive = trio.open_memory_channel[str](16)
        pipeline = snake.from_iterable(receive).par_then(_enrich, concurrency=8)
        async with pipeline.open() as items:
            for request in ["web-0", "web-1", "cron-0", "cron-1"]:
                send.send_nowait(request)
            with trio.move_on_after(60):  # the source never ends: the channel stays open
                async for reply in items:
                    replies.append(reply)
                    if len(replies) == 4:
                        break
        send.close()
        return replies

    for _ in range(40):  # trio's scheduling order varies from run to run
        replies = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        assert sorted(replies) == ["cron-0: ok", "cron-1: ok", "web-0: ok", "web-1: ok"]
