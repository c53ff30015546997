"""``prefetch(n)``: an explicit buffer of ``n`` items between two stages.

Ordering: input order. Buffering: the upstream runs ahead until ``n`` items
wait here, the chunk being handed on counted (a chunk may overshoot by less
than one chunk): it takes a chunk only once there is room, so of large items
(one per chunk) it adds ``n`` to what a pipeline holds. On cancel or error,
the buffered items are dropped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._chunking import DownstreamClosed, Inbox, Outbox
from .._nursery import open_nursery
from ._base import Context, Stage, StageSpec

if TYPE_CHECKING:
    from .._policy import Failures
    from .._position import Saved


@attrs.frozen
class Prefetch(StageSpec):
    size: int

    holds_nothing = True

    def describe(self) -> str:
        return f"prefetch({self.size})"

    def build(self, context: Context) -> Stage:
        return _PrefetchStage(self.size)

    def length(self, n: int) -> int:
        return n


class _PrefetchStage:
    failures: Failures | None = None  # never skips

    def __init__(self, size: int) -> None:
        self._free = size
        self._room = trio.lowlevel.ParkingLot()

    def saved(self, out: int) -> list[Saved]:
        return []  # its items are the ones before it, in order

    def sources(self, positions: frozenset[int]) -> frozenset[int]:
        return positions

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        assert inbox is not None
        send, recv = trio.open_memory_channel[list[Any]](math.inf)
        closed = False
        with recv:  # closed once the reader has ended, as in _parallel
            async with open_nursery() as nursery:
                nursery.start_soon(self._read, inbox, send)
                try:
                    await self._write(Inbox(recv, outbox), outbox)
                except DownstreamClosed:
                    closed = True
                nursery.cancel_scope.cancel()
        if closed:
            raise DownstreamClosed

    async def _read(self, inbox: Inbox, send: trio.MemorySendChannel[list[Any]]) -> None:
        with send:
            while True:
                while self._free <= 0:
                    await self._room.park()
                chunk = await inbox.next(flush=False)
                if chunk is None:
                    return
                self._free -= len(chunk)
                send.send_nowait(chunk)

    async def _write(self, buffered: Inbox, outbox: Outbox) -> None:
        while not outbox.done and (chunk := await buffered.next()) is not None:
            await outbox.emit(chunk)
            self._free += len(chunk)
            self._room.unpark_all()
