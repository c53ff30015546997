"""A slow consumer: the pipeline waits for it instead of filling memory."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import psutil
import trio
import trio.testing

import snake
from snake._chunking import CHANNEL_CHUNKS, MAX_CHUNK

if TYPE_CHECKING:
    from collections.abc import Iterator


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
