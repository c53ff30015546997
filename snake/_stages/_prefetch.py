"""``prefetch(n)``: an explicit buffer of ``n`` items between two stages, or
``prefetch("auto")``: one that sizes itself.

Ordering: input order. Buffering: the upstream runs ahead until ``n`` items
wait here, the chunk being handed on counted (a chunk may overshoot by less
than one chunk): it takes a chunk only once there is room, so of large items
(one per chunk) it adds ``n`` to what a pipeline holds. On cancel or error,
the buffered items are dropped.

``"auto"``, as tf.data's autotuned prefetch: the buffer starts at
``AUTO_START`` items and doubles each time the stages after it come for an
item and find it empty, after it had been full while they were busy since
they last did: they take items in bursts that a bigger buffer would have
had ready. A buffer that stays full (a slow consumer), or never fills (a
slow producer), keeps its size: more room would not help. It grows up to
``AUTO_MOST`` items, and to ``AUTO_BYTES`` of weighed buffers (its first
item's weight times its items, see ``_weight``) or its share of the run's
``memory_budget``; it shrinks only to stay within those, when heavier items
come. The pipeline's next run starts it at the size it reached.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from .._auto import Kept, slots
from .._chunking import DownstreamClosed, Inbox, Outbox
from .._nursery import open_nursery
from .._weight import nbytes
from ._base import Context, Stage, StageSpec
from ._tuner import TuningStatistics

if TYPE_CHECKING:
    from .._policy import Failures
    from .._position import Saved

#: Where ``prefetch("auto")`` starts: an item handed on, and one ready.
AUTO_START = 2
#: The most items, and bytes of weighed buffers, it holds without a
#: ``memory_budget``.
AUTO_MOST = 1024
AUTO_BYTES = 256 * 2**20


@attrs.frozen
class Prefetch(StageSpec):
    size: int | Literal["auto"]

    holds_nothing = True

    def describe(self) -> str:
        return f'prefetch("{self.size}")' if self.size == "auto" else f"prefetch({self.size})"

    def tuned(self) -> bool:
        return self.size == "auto"

    def build(self, context: Context) -> Stage:
        if self.size != "auto":
            return _PrefetchStage(self.size)
        if context.auto is None:  # in a nested pipeline
            return _PrefetchStage(AUTO_START, _Auto(AUTO_BYTES))
        auto = context.auto
        bytes_most = AUTO_BYTES if auto.memory is None else auto.memory
        if auto.kept.value is None:
            return _PrefetchStage(AUTO_START, _Auto(bytes_most, kept=auto.kept))
        # Run again: from the size its last run ended at.
        why = f"starting from {auto.kept.value} items, where its last run ended"
        return _PrefetchStage(auto.kept.value, _Auto(bytes_most, why=why, kept=auto.kept))

    def length(self, n: int) -> int:
        return n


@attrs.define
class _Auto:
    """``prefetch("auto")``'s size, and what it has seen (see the module's docstring)."""

    bytes_most: int
    most: int = AUTO_MOST
    #: The stages after it found it full since they last found it empty.
    full: bool = False
    why: str = f"starting at {AUTO_START} items"
    #: Where its size stands, for the pipeline's next run.
    kept: Kept = attrs.Factory(Kept)
    #: Why ``most`` is what it is.
    bound: str = f"its most, {AUTO_MOST} items"
    #: Since when it has had its size, and the items it handed on since;
    #: items per second at each size it had.
    _since: float | None = None
    _out: int = 0
    _rates: dict[int, float] = attrs.Factory(dict)

    def weigh(self, chunk: list[Any]) -> None:
        """Items like ``chunk[0]``: as many as fit in its bytes."""
        room = slots(self.bytes_most, nbytes(chunk[0]))
        if room is not None and room < self.most:
            self.most = room
            self.bound = f"{room} of these items fill its bytes"

    def handed(self, items: int) -> None:
        if self._since is None:
            self._since = trio.current_time()
        self._out += items

    def emptied(self, size: int) -> int:
        """The stages after it found it empty: its size from now on."""
        if not self.full or size >= self.most:
            return size
        self._rated(size)
        self.full, self._since, self._out = False, trio.current_time(), 0
        grown = self.kept.value = min(self.most, 2 * size)
        self.why = f"grown to {grown}: found empty after it had been full"
        if grown == self.most:
            self.why += f"; {self.bound}"
        return grown

    def _rated(self, size: int) -> None:
        if self._since is not None and (seconds := trio.current_time() - self._since) > 0:
            self._rates[size] = self._out / seconds

    def statistics(self, size: int) -> TuningStatistics:
        self._rated(size)
        tried = tuple(sorted(self._rates.items()))
        return TuningStatistics(size, tried, self.why, "prefetch")


class _PrefetchStage:
    failures: Failures | None = None  # never skips

    def __init__(self, size: int, auto: _Auto | None = None) -> None:
        self._size = size
        self._held = 0
        self._auto = auto
        self._taking = False  # the stages after it wait for an item
        self._room = trio.lowlevel.ParkingLot()

    def saved(self, out: int) -> list[Saved]:
        return []  # its items are the ones before it, in order

    def sources(self, positions: frozenset[int]) -> frozenset[int]:
        return positions

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        assert inbox is not None
        if outbox.clock is not None and (auto := self._auto) is not None:
            outbox.clock.tuning = lambda: auto.statistics(self._size)
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
                while self._held >= self._size:
                    if self._auto is not None and not self._taking:
                        self._auto.full = True  # and the stages after it are busy
                    await self._room.park()
                chunk = await inbox.next(flush=False)
                if chunk is None:
                    return
                if self._auto is not None and chunk:
                    self._auto.weigh(chunk)
                    self._size = min(self._size, self._auto.most)
                self._held += len(chunk)
                send.send_nowait(chunk)

    async def _write(self, buffered: Inbox, outbox: Outbox) -> None:
        while not outbox.done:
            if self._auto is not None and self._held == 0:  # they will wait for it
                self._size = self._auto.emptied(self._size)
                self._room.unpark_all()
            self._taking = True
            chunk = await buffered.next()
            self._taking = False
            if chunk is None:
                return
            await outbox.emit(chunk)
            self._held -= len(chunk)
            if self._auto is not None:
                self._auto.handed(len(chunk))
            self._room.unpark_all()
