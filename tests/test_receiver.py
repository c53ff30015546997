"""The channel ``open()`` yields: every way of reading gets each item once, in order."""

from __future__ import annotations

import gc
import warnings

import pytest
import trio
import trio.lowlevel
import trio.testing

import snake
from snake._receiver import PipelineReceiver
from snake._stats import Statistics

N = 5000


async def test_async_for_resumed_after_break_and_receive_share_one_stream() -> None:
    got: list[int] = []
    async with snake.from_iterable(range(N)).open() as items:
        async for x in items:
            got.append(x)
            if x == 10:
                break
        got.append(await items.receive())
        got.append(await items.receive())
        async for x in items:
            got.append(x)
            if x == 3000:
                break
        async for x in items:
            got.append(x)
    assert got == list(range(N))


async def test_receive_chunk_mixed_with_the_other_ways_gives_each_item_once_in_order() -> None:
    got: list[int] = []
    chunks = 0
    async with snake.from_iterable(range(N)).open() as items:
        got.append(await items.receive())
        rest = await items.receive_chunk()  # the rest of the first chunk
        assert rest[:1] == [1]
        got += rest
        async for x in items:
            got.append(x)
            if x == 2500:
                break
        while True:
            try:
                chunk = await items.receive_chunk()
            except trio.EndOfChannel:
                break
            assert 0 < len(chunk) <= 1024
            chunks += 1
            got += chunk
        with pytest.raises(trio.EndOfChannel):
            await items.receive_chunk()
    assert got == list(range(N))
    assert chunks >= (N - 2501) // 1024


async def test_receive_raises_end_of_channel_at_the_end_and_after() -> None:
    async with snake.from_iterable(range(3)).open() as items:
        assert [await items.receive() for _ in range(3)] == [0, 1, 2]
        for _ in range(2):
            with pytest.raises(trio.EndOfChannel):
                await items.receive()
        assert [x async for x in items] == []


async def test_tasks_waiting_for_chunks_at_once_still_read_them_in_order() -> None:
    # Two tasks wait on an empty receiver; two chunks arrive with no
    # checkpoint between them, so both tasks wake in one batch of trio's
    # scheduler, which runs a batch in either order. The chunk that came
    # second must not be read first.
    for _ in range(40):
        send, recv = trio.open_memory_channel[list[int]](2)
        items = PipelineReceiver(recv, lambda: None, lambda: Statistics(0.0, ()))
        got: list[int] = []

        async def read_one() -> None:
            got.append(await items.receive())  # noqa: B023 - awaited in this round

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_one)
            nursery.start_soon(read_one)
            await trio.testing.wait_all_tasks_blocked()
            send.send_nowait([0, 1])
            send.send_nowait([2, 3])
        send.close()
        got += [x async for x in items]
        assert got == [0, 1, 2, 3]


async def test_several_tasks_reading_at_once_get_each_item_exactly_once() -> None:
    async def slow_source():  # type: ignore[no-untyped-def]
        for i in range(N):
            if i % 97 == 0:
                await trio.lowlevel.checkpoint()
            yield i

    seen: list[list[int]] = [[], [], []]

    async def by_async_for(out: list[int]) -> None:
        async for x in items:
            out.append(x)
            if x % 5 == 0:
                await trio.lowlevel.checkpoint()

    async def by_receive(out: list[int]) -> None:
        while True:
            try:
                out.append(await items.receive())
            except trio.EndOfChannel:
                return

    async with snake.from_iterable(slow_source()).open() as items:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(by_async_for, seen[0])
            nursery.start_soon(by_async_for, seen[1])
            nursery.start_soon(by_receive, seen[2])
    assert sorted(seen[0] + seen[1] + seen[2]) == list(range(N))
    for part in seen:
        assert part == sorted(part)  # each reader sees the order of the stream


async def test_closing_the_receiver_makes_every_way_of_reading_fail_closed() -> None:
    async with snake.from_iterable(range(N)).open() as items:
        async for x in items:
            if x == 5:
                break
        await items.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await items.receive()
        with pytest.raises(trio.ClosedResourceError):
            async for _ in items:
                pass


async def test_breaking_out_of_async_for_leaves_no_abandoned_generator() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(3):
            async with snake.from_iterable(range(N)).open() as items:
                async for x in items:
                    if x == 100:
                        break
            gc.collect()
        await trio.testing.wait_all_tasks_blocked()
    # trio reports generators it had to close itself by a ResourceWarning,
    # which the filter turns into an error raised in a system task.


async def test_a_consumer_that_never_blocks_gives_other_tasks_a_turn() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        async with snake.from_iterable(range(200_000)).open() as items:
            async for _ in items:
                pass
        nursery.cancel_scope.cancel()
    assert ticks > 1
