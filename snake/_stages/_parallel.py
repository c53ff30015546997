"""``par_then`` and ``par_map``: many items in flight at once.

Both run the same stage. A feeder task cuts the input into jobs (one item for
``par_then``; a few, sized from measured cost, for ``par_map``) and starts
each job as a task once a slot is free; the stage's own task collects the
results. Ordering: with ``ordered=True`` results leave in input order, and a
slot is freed only when its job's results leave, so at most ``concurrency``
calls (``par_then``) or three times that many jobs (``par_map``, of which
``concurrency`` run at once) are in flight or waiting for an earlier one;
with ``ordered=False`` they leave as they complete. On cancel or error,
in-flight calls are cancelled, worker processes killed, threads abandoned.
A stage's own error arrives as a sequential loop would raise it: with
``ordered=True`` it takes its place in the output: no new work starts, the
earlier items finish and their results leave as usual, and then the earliest
failing item's error stops the stage; with ``ordered=False``, of the calls that fail
before the cancellation reaches them, the earliest item's error arrives.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from .. import _validate as check
from .._chunking import DownstreamClosed, Inbox, Outbox, Pacer
from .._errors import add_stage_note, carried
from .._exceptions import ItemTimeoutError
from .._nursery import open_nursery
from .._ordering import Reorderer
from .._policy import ErrorPolicy, Failures, retrying_async
from .._retry import retry_delay, tried
from .._validate import func_name
from .._weight import CHUNK_BYTES, nbytes
from .._workers._deaths import WorkerDiedError
from .._workers._options import MapOptions, WorkerOptions
from .._workers._work import ChunkResult, Work
from ._base import Context, OnePerItem, Stage, StageSpec
from ._delivered import Delivered, InOrder, MaybeUnordered, positions
from ._window import Window

if TYPE_CHECKING:
    from .._position import Saved
    from .._stats import StageClock
    from .._workers._executors import Executor

#: Seconds of work a ``par_map`` job aims for. Each job costs the main process
#: a round trip and a fraction of a millisecond of CPU taken from the workers;
#: measured on 1 ms items and 2 workers, 5 ms jobs kept the workers 82 % busy,
#: 20 ms jobs 93 %. Items arriving one at a time still go out one at a time.
JOB_SECONDS = 0.02
#: Most items in one ``par_map`` job.
JOB_ITEMS = 64
#: Jobs in flight per job running at once: the running one, the next one
#: waiting in its worker (see ``_workers._lane``), and one done early, waiting to
#: leave after an earlier one.
JOB_WINDOW = 3
#: A job on Ray aims for more seconds, and may hold more items: each costs
#: about a millisecond of scheduling, against a fraction of one for a
#: process lane.
RAY_JOB_SECONDS = 0.05
RAY_JOB_ITEMS = 256

#: Bytes of large buffers (arrays, say) in one ``par_map`` job's results at
#: most, past its first item: a chunk's worth, so items of a MiB or more go
#: one per job, and what a stage holds is bounded in items as in bytes.
#: Measured with 4 MiB arrays and 2 workers, jobs of one array moved
#: 6,500 MB/s, of two 3,700 MB/s, of four 3,500 MB/s.
JOB_BYTES = CHUNK_BYTES

#: Calls of a ``par_then`` in flight or waiting to leave at most while its
#: results are large (a MiB of buffers or more each), the one waiting in its
#: channel to be taken included: a pipeline of it runs that many such items
#: ahead of its consumer (one more when iterated synchronously).
LARGE_CALLS = 6

#: A job: (items, stage position of the first) -> what it gave.
Call = Callable[[list[Any], int], Awaitable[ChunkResult]]


def _skipped_or_raise(exc: Exception, label: str, base: int, skips: bool) -> ChunkResult:
    """A failed one-item job: ``exc`` with its stage note, raised, or its item skipped.

    A skipped item counts against the stage's failure budget when its place
    in the output comes (see ``_ParallelStage._release``).
    """
    add_stage_note(exc, label, base)
    if not skips:
        raise carried(exc)
    return ChunkResult([], 0.0, 0, [(base, exc)])


@attrs.frozen
class ParThen(MaybeUnordered, OnePerItem, StageSpec):
    fn: Callable[[Any], Awaitable[Any]]
    concurrency: int
    ordered: bool
    policy: ErrorPolicy = ErrorPolicy()

    advice = "raise its `concurrency`, or make its function faster"

    def describe(self) -> str:
        return f"par_then({func_name(self.fn)})"

    def build(self, context: Context) -> Stage:
        label = context.label
        skips = self.policy.skips
        attempt = retrying_async(self.fn, self.policy.retries, self.policy.timeout)

        async def call(items: list[Any], base: int) -> ChunkResult:
            try:
                result = await attempt(items[0])
                return ChunkResult([result], 0.0, nbytes(result), [])
            except check.NotAwaitable as exc:  # a bug, never skipped
                add_stage_note(exc, label, base)
                raise
            except Exception as exc:
                return _skipped_or_raise(exc, label, base, skips)

        failures = self.policy.failures(label, context.saved[0] if context.saved else None)
        return _ParallelStage(
            call, self.concurrency, positions(context, self.ordered, failures),
            Pacer(maximum=1), failures=failures, large=LARGE_CALLS,
        )  # fmt: skip


@attrs.frozen
class ParMap(MaybeUnordered, OnePerItem, StageSpec):
    fn: Callable[[Any], Any]
    concurrency: int | None
    ordered: bool
    executor: Literal["process", "thread", "ray"]
    options: MapOptions = WorkerOptions()
    policy: ErrorPolicy = ErrorPolicy()

    advice = "make its function faster, or raise its `concurrency` if CPUs sit idle"

    def describe(self) -> str:
        return f"par_map({func_name(self.fn)})"

    def workers(self) -> Literal["process", "thread", "ray"] | None:
        # With errors="skip", steps after the map would see items at other
        # positions than the stage's input gave them: they stay here.
        return None if self.policy.skips else self.executor

    def processes(self) -> list[tuple[MapOptions, int | None]]:
        return [] if self.executor == "thread" else [(self.options, self.concurrency)]

    def build(self, context: Context) -> Stage:
        label = context.label
        executor: Executor = context.executors.get(self.executor, self.options)
        retries = self.policy.retries
        work = Work(label, self.fn, context.in_workers, self.policy.skips, retries)
        executor.prepare(work)
        skips = self.policy.skips
        timeout = self.policy.timeout

        # Without a concurrency of its own, a stage runs one job per CPU at
        # once (on Ray, per CPU of the cluster); the executor's limiter
        # bounds all stages sharing it.
        concurrency = self.concurrency or executor.concurrency()
        running = trio.CapacityLimiter(concurrency)

        async def call(items: list[Any], base: int) -> ChunkResult:
            attempt = 0
            while True:
                # The function's own errors are retried in the worker; here,
                # a worker's death or a timeout (on a fresh worker).
                try:
                    return await executor.run_chunk(work, items, base, running, timeout)
                except (ItemTimeoutError, WorkerDiedError) as failure:
                    if attempt < retries:
                        await trio.sleep(retry_delay(attempt))
                        attempt += 1
                        continue
                    tried(failure, retries)
                    if isinstance(failure, WorkerDiedError):
                        raise
                    return _skipped_or_raise(failure, label, base, skips)

        # More jobs than run at once may be in flight, so that a worker has
        # its next job at hand, and one done early starts another while an
        # earlier, slower one is still holding up the ordered output.
        window = JOB_WINDOW * concurrency
        # A timeout is per item: jobs of one item each.
        ray = self.executor == "ray"
        most = 1 if timeout is not None else RAY_JOB_ITEMS if ray else JOB_ITEMS
        sizer = Pacer(RAY_JOB_SECONDS if ray else JOB_SECONDS, most, JOB_BYTES)
        # Jobs hold whole batches of a batch that runs in the workers.
        unit = math.lcm(*(moved.spec.unit for moved in context.in_workers))
        failures = self.policy.failures(label, context.saved[0] if context.saved else None)
        # Large results: the jobs running, and one more, waiting in the
        # channel to be taken while the workers go on. No more than those run
        # at once: the stage starts there, until its results are weighed.
        large = concurrency + 1
        where = positions(context, self.ordered, failures)
        return _ParallelStage(call, window, where, sizer, unit, failures, large, start_large=True)


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


class _ParallelStage:
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
        self._large = concurrency if large is None else min(large, concurrency)
        self._window = Window(self._large if start_large else concurrency)
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
            large = done.nbytes >= CHUNK_BYTES * len(done.results) > 0
            self._window.resize(self._large if large else self._concurrency)
            done_send.send_nowait((seq, _Ran(base, len(items), done)))

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
