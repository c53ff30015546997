"""The channel ``Pipeline.open()`` yields: items out of the last stage's chunks."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Generic, TypeVar

import trio

from ._chunking import LATENCY_BUDGET

T = TypeVar("T")


class PipelineReceiver(trio.abc.ReceiveChannel[T], Generic[T]):
    """Receives a pipeline's items one by one.

    Items arrive in chunks; taking one from a chunk already here costs about
    as much as a generator step. ``receive()`` is a full checkpoint when it
    fetches a chunk, and at least once per ``LATENCY_BUDGET`` of real time
    otherwise, so cancellation still reaches a consumer that never blocks.
    Closing it stops every stage of the pipeline.
    """

    __slots__ = ("_chunk", "_chunks", "_next", "_stop", "_yield_at")

    def __init__(
        self, chunks: trio.MemoryReceiveChannel[list[T]], stop: Callable[[], None]
    ) -> None:
        self._chunks = chunks
        self._stop = stop
        self._chunk: list[T] = []
        self._next = 0
        self._yield_at = 0.0

    async def receive(self) -> T:
        """The next item.

        Raises:
          trio.EndOfChannel: the pipeline has produced all its items.
          trio.ClosedResourceError: this channel was closed.
        """
        i, chunk = self._next, self._chunk
        if i < len(chunk):
            if perf_counter() >= self._yield_at:
                await self._pause()
            self._next = i + 1
            return chunk[i]
        return await self._refill()

    async def __anext__(self) -> T:
        # receive() inlined: an `async for` over a pipeline is its hot loop.
        i, chunk = self._next, self._chunk
        if i < len(chunk):
            if perf_counter() >= self._yield_at:
                await self._pause()
            self._next = i + 1
            return chunk[i]
        try:
            return await self._refill()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop receiving, and stop every stage of the pipeline."""
        self._chunk, self._next = [], 0
        self._chunks.close()
        self._stop()
        await trio.lowlevel.checkpoint()

    async def _receive_chunk(self) -> list[T]:
        """The rest of the current chunk, or the next one: for bulk consumers."""
        i, chunk = self._next, self._chunk
        if i < len(chunk):
            self._chunk, self._next = [], 0
            await trio.lowlevel.checkpoint_if_cancelled()
            return chunk[i:]
        return await self._chunks.receive()

    async def _pause(self) -> None:
        await trio.lowlevel.checkpoint()
        self._yield_at = perf_counter() + LATENCY_BUDGET

    async def _refill(self) -> T:
        chunk = await self._chunks.receive()
        self._chunk, self._next = chunk, 1
        self._yield_at = perf_counter() + LATENCY_BUDGET
        return chunk[0]
