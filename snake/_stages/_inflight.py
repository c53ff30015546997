"""The stage ``par_then`` and ``par_map`` run: jobs in flight, their results
in input order or as they come (see ``_parallel`` for what it promises).

A feeder task cuts the input into jobs and starts each as a task of the
stage's nursery once its window has room; the stage's own task collects
what they give, through a reorder buffer when ordered, and hands the
results over. A failed job takes its place in the output as a result would.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._auto import slots
from .._chunking import DownstreamClosed, Inbox, Outbox, Pacer
from .._errors import carried
from .._nursery import open_nursery
from .._ordering import Reorderer
from .._weight import CHUNK_BYTES
from .._workers._work import ChunkResult
from ._delivered import InOrder
from ._window import Window

if TYPE_CHECKING:
    from .._auto import Auto
    from .._policy import Failures
    from .._position import Saved
    from .._stats import StageClock
    from ._delivered import Delivered
    from ._tuner import Tuner

#: A job: (items, stage position of the first) -> what it gave.
Call = Callable[[list[Any], int], Awaitable[ChunkResult]]


@attrs.frozen
class _Failed:
    """A failed job's place in the ordered output: its first item and its error."""

    base: int
    exc: Exception


@attrs.frozen
class _Ran:
    """A finished job's place in the output: its first item, its size, what it gave."""

    base: int
    count: int
    result: ChunkResult


#: What a job gives the collector: its number, and what it gave or its failure.
Finished = tuple[int, "_Ran | _Failed"]


class ParallelStage:
    def __init__(
        self,
        call: Call,
        concurrency: int,
        positions: InOrder | Delivered,
        sizer: Pacer,
        unit: int = 1,
        failures: Failures | None = None,
        large: int | None = None,
        *,
        start_large: bool = False,
        tuner: Tuner | None = None,
        per: int = 1,
        on_tuned: Callable[[int], object] | None = None,
        auto: Auto | None = None,
    ) -> None:
        self.failures = failures
        self._clock: StageClock | None = None
        self._call = call
        self._concurrency = concurrency
        # The window while results hold a chunk's worth of buffers each (a
        # MiB or more): what waits to leave is then counted in large items.
        # With `start_large`, it starts there until the first job's results
        # are weighed, so a full window of large ones is not under way before
        # it shrinks: for a stage whose jobs past `large` would only wait.
        self._large = concurrency if large is None else large
        self._window = Window(min(self._large, concurrency) if start_large else concurrency)
        self._results_large = start_large  # until the first job's are weighed
        # With "auto": its share of the run's memory budget (the window holds
        # no more jobs than fit in it, at the most a job's results have
        # weighed), and where its tuning stands, for the pipeline's next run.
        self._auto, self._job_bytes = auto, 0
        # The tuner's value is calls or jobs at once; the window holds ``per``
        # as many, and ``on_tuned`` hears of each new value.
        self._tuner, self._per, self._on_tuned = tuner, per, on_tuned
        if tuner is not None:
            tuner.parked = self._window.parked
        self._positions = positions
        self._ordered = isinstance(positions, InOrder)
        self._sizer = sizer
        self._unit = unit  # jobs hold whole multiples of it, but the last
        self._failed: tuple[int, Exception] | None = None  # earliest failure
        self._failed_jobs = 0  # jobs that failed: once one has, start no more

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        assert inbox is not None
        done_send, done_recv = trio.open_memory_channel[Finished](math.inf)
        slots = self._window
        self._clock = clock = outbox.clock
        if clock is not None:
            clock.concurrency = self._concurrency
            clock.in_flight = lambda: slots.used
            if self._tuner is not None:
                clock.tuning = self._tuner.statistics
                self._tuner.blocked = lambda: clock.waiting_for_output
        closed = False
        # Closed only once every job has ended: a job finishing while the
        # stage is being cancelled must not fail on a closed channel.
        with done_recv:
            async with open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._feed, inbox, nursery, done_send, slots)
                try:
                    await self._collect(done_recv, slots, outbox)
                except DownstreamClosed:
                    closed = True
                # Done early (a fused take is satisfied, or nobody reads): stop
                # feeding and stop the work in flight.
                nursery.cancel_scope.cancel()
        if self._failed is not None:
            exc = self._failed[1]
            if (also := self._failed_jobs - 1) > 0:
                exc.add_note(
                    f"snake: {also} later item(s) of this stage failed "
                    "at the same time; their errors are not shown"
                )
            raise carried(exc)
        if closed:
            raise DownstreamClosed

    async def _feed(
        self,
        inbox: Inbox,
        nursery: trio.Nursery,
        done_send: trio.MemorySendChannel[Finished],
        slots: Window,
    ) -> None:
        with done_send:
            seq = 0
            unit = self._unit
            held: list[Any] = []  # fewer than `unit` items, waiting for more
            # The collector flushes when it waits; this task must not touch the outbox.
            while (chunk := await inbox.next(flush=False)) is not None:
                # Resumed unordered, the inputs it had delivered are not run again.
                for items, base in self._positions.runs(
                    held + chunk if held else chunk, inbox.position
                ):
                    usable = len(items) - len(items) % unit
                    start = 0
                    while start < usable:
                        size = max(unit, self._sizer.size // unit * unit)
                        whole = start == 0 and size >= usable == len(items)
                        job = items if whole else items[start : min(start + size, usable)]
                        await slots.acquire()
                        if self._failed_jobs:
                            return
                        nursery.start_soon(self._job, seq, job, base + start, done_send.clone())
                        seq += 1
                        start += len(job)
                    held = items[usable:]
            if self._tuner is not None:
                self._tuner.done = True
            if held:  # the end of the input: a short last batch
                await slots.acquire()
                if self._failed_jobs:
                    return
                base = inbox.position - len(held)
                nursery.start_soon(self._job, seq, held, base, done_send.clone())

    async def _job(
        self,
        seq: int,
        items: list[Any],
        base: int,
        done_send: trio.MemorySendChannel[Finished],
    ) -> None:
        with done_send:
            began = trio.current_time()
            tuned = None
            if self._tuner is not None:
                tuned = self._tuner.started(began)
                self._tuned(self._tuner.changed())
            try:
                done = await self._call(items, base)
            except Exception as exc:
                self._failed_jobs += 1
                if self._ordered and self._failed is None:
                    # The error waits for its turn in the output, behind the
                    # earlier jobs, as a sequential loop would raise it.
                    done_send.send_nowait((seq, _Failed(base, exc)))
                else:
                    self._fail(base, exc)
                return
            if self._clock is not None:
                self._clock.latencies.append((trio.current_time() - began) / len(items))
            self._sizer.record(len(items), done.seconds, done.nbytes)
            if self._tuner is not None and tuned is not None:
                now = trio.current_time()
                self._tuner.ended(now, now - began, tuned, len(items))
                self._tuned(self._tuner.changed())
            self._results_large = done.nbytes >= CHUNK_BYTES * len(done.results) > 0
            self._job_bytes = max(self._job_bytes, done.nbytes)
            self._resize()
            done_send.send_nowait((seq, _Ran(base, len(items), done)))

    def _tuned(self, concurrency: int | None) -> None:
        """Its tuner chose ``concurrency`` (``concurrency="auto"``), if a new one."""
        if concurrency is not None:
            self._concurrency = self._per * concurrency
            if self._clock is not None:
                self._clock.concurrency = self._concurrency
            if self._on_tuned is not None:
                self._on_tuned(concurrency)
            self._resize()

    def _resize(self) -> None:
        """The window for the concurrency, in large items while results are
        large, and within its share of the memory budget."""
        concurrency = self._concurrency
        limit = min(self._large, concurrency) if self._results_large else concurrency
        memory = None if self._auto is None else self._auto.memory
        if (room := slots(memory, self._job_bytes)) is not None:
            limit = min(limit, room)
            if self._tuner is not None:
                self._tuner.hold(max(1, room // self._per))
        self._window.resize(limit)

    def _fail(self, base: int, exc: Exception) -> None:
        # Keep the earliest item's error and stop the stage; the run method
        # raises it once every job has ended.
        if self._failed is None or base < self._failed[0]:
            self._failed = (base, exc)
        self._nursery.cancel_scope.cancel()

    async def _collect(
        self,
        done_recv: trio.MemoryReceiveChannel[Finished],
        slots: Window,
        outbox: Outbox,
    ) -> None:
        reorder: Reorderer[_Ran | _Failed] | None = Reorderer() if self._ordered else None
        while not outbox.done:
            try:
                seq, finished = done_recv.receive_nowait()
            except trio.WouldBlock:
                await outbox.flush()
                try:
                    seq, finished = await done_recv.receive()
                except trio.EndOfChannel:
                    return
            except trio.EndOfChannel:
                return
            for ready in [finished] if reorder is None else reorder.push(seq, finished):
                if isinstance(ready, _Failed):  # its turn: every earlier job has left
                    if not outbox.done:  # else a fused take ended the stage first
                        self._fail(ready.base, ready.exc)
                    return
                if not await self._release(ready, outbox):
                    return
                slots.release()

    async def _release(self, ran: _Ran, outbox: Outbox) -> bool:
        """Hand a finished job's results over; whether the stage goes on.

        The items it skipped count against the failure budget here, as its
        results leave (in order, for an ordered stage), so the same input
        always stops at the item a sequential loop would stop at. Past the
        budget, the results before that item leave, then its error stops
        the stage.
        """
        results = ran.result.results
        failures = self.failures
        if failures is not None:
            for k, (position, exc) in enumerate(ran.result.skipped):
                try:
                    failures.skip(exc, position)
                except Exception as over:
                    before = position - ran.base - k  # results of the items before it
                    if before:
                        await outbox.emit(results[:before])
                    if not outbox.done:  # else a fused take ended the stage first
                        self._fail(position, over)
                    return False
            failures.seen = max(failures.seen, ran.base + ran.count)
        positions = self._positions
        if isinstance(positions, InOrder):
            results = positions.released(results, ran.count)
        else:
            positions.released(ran.base, ran.count, [p for p, _ in ran.result.skipped])
        await outbox.emit(results)
        return True

    def saved(self, out: int) -> list[Saved]:
        return self._positions.saved(out)

    def sources(self, positions: frozenset[int]) -> set[int]:
        return self._positions.sources(positions)
