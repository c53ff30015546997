"""The one place that runs a pipeline: specs to stages, channels and tasks.

Every stage is a task in the nursery ``open_pipeline`` owns, inside a cancel
scope of its own; neighbours are joined by bounded memory channels carrying
chunks. A stage that needs no more input (a satisfied ``take``, or nobody
reading its output) cancels the stages upstream of it; leaving ``open`` or
closing the receiver cancels them all. How errors leave is decided once, in
``_nursery.open_nursery``, which every nursery of snake uses. Stages made
of other pipelines (``concat``, ``repeat``, ...) run them nested, through
``pump`` and ``forward``, each with its own stages.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

import attrs
import cloudpickle
import trio

from . import _info
from ._chunking import CHANNEL_CHUNKS, DownstreamClosed, Inbox, Outbox, Taken
from ._errors import carried, uncarried
from ._nursery import open_nursery, raise_as_is
from ._receiver import PipelineReceiver
from ._report import Reporting, watch
from ._stages._base import Context, InlineSpec, InWorkers, Moved, Spec, Stage, StageSpec
from ._stages._inline import FusedSteps
from ._stages._length import total
from ._stats import Figures, StageClock, Statistics
from ._stats import take as take_statistics
from ._tracebacks import trimmed
from ._workers._executors import Executors, open_executors
from ._workers._options import WorkerOptions, cpu_count
from ._workers._script import dumps

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from ._workers._options import MapOptions
    from ._workers._persistent import persistent_workers

#: Whether stages measure their waits and latencies. Always on: the
#: benchmark of stage boundaries turns it off to measure what it costs.
MEASURE = True


def label(index: int, spec: Spec) -> str:
    """How notes and messages name an operator: ``#2 par_map(decode)``."""
    return f"#{index} {spec.describe()}"


@attrs.frozen
class StagePlan:
    """One stage: an operator with a task of its own, and the inline ops it hosts.

    ``in_workers`` run in its workers, right after its function; ``fused``
    run in its task, on what it hands over, each with its index in the
    pipeline.
    """

    index: int
    spec: StageSpec
    in_workers: tuple[Moved, ...] = ()
    fused: tuple[tuple[int, InlineSpec], ...] = ()


def plan(specs: Sequence[Spec]) -> list[StagePlan]:
    """Group a pipeline's operators into stages; inline ops join the stage before.

    Those that may, and follow a stage that runs user code in workers (a
    ``par_map``), run there instead (see :func:`into_workers`).
    """
    plans: list[StagePlan] = []
    for index, spec in enumerate(specs):
        if isinstance(spec, InlineSpec):
            last = plans[-1]
            plans[-1] = attrs.evolve(last, fused=(*last.fused, (index, spec)))
        else:
            assert isinstance(spec, StageSpec)
            plans.append(StagePlan(index, spec))
    return [into_workers(p) for p in plans]


def into_workers(p: StagePlan) -> StagePlan:
    """Move the inline ops that may run in a stage's workers there.

    Their output then crosses the process boundary instead of their input
    (a collated batch instead of its items), and the event loop, whose CPU
    the workers need, does less (with threads: collating no longer holds the
    loop). Ops move in order while their step keeps items at their
    positions (``InWorkers.KEEPS_POSITIONS``), and then one more that may be
    the last (``InWorkers.LAST``), so error notes stay exact. For
    processes, an op that cannot be pickled stays in the main process, with
    what follows it.
    """
    where = p.spec.workers()
    if where is None:
        return p
    moved: list[Moved] = []
    for index, spec in p.fused:
        if spec.in_workers is InWorkers.NO:
            break
        # Ray's tasks, like processes, receive them pickled.
        pickled = None if where == "thread" else _pickled(spec, where)
        if where != "thread" and pickled is None:
            break
        moved.append(Moved(label(index, spec), spec, pickled))
        if spec.in_workers is InWorkers.LAST:
            break
    return attrs.evolve(p, in_workers=tuple(moved), fused=p.fused[len(moved) :])


def _pickled(spec: InlineSpec, where: str) -> bytes | None:
    """``spec`` pickled, to go to worker processes or Ray; ``None`` if it cannot be."""
    try:
        return dumps(spec) if where == "process" else cloudpickle.dumps(spec)
    except Exception:
        return None


def describe(specs: Sequence[Spec]) -> str:
    """The stages a run of ``specs`` has, a line each, with what is fused into them."""
    lines = []
    for p in plan(specs):
        line = label(p.index, p.spec)
        if p.in_workers:
            line += "; in its workers: " + ", ".join(m.label for m in p.in_workers)
        if p.fused:
            line += "; then fused: " + ", ".join(label(i, spec) for i, spec in p.fused)
        lines.append(line)
    return "\n".join(lines)


def processes(specs: Sequence[Spec]) -> list[tuple[MapOptions, int | None]]:
    """The worker processes (and Ray tasks) the maps of ``specs`` run on, those
    of the pipelines nested in its stages included, as ``StageSpec.processes``
    says."""
    return [wanted for s in specs if isinstance(s, StageSpec) for wanted in s.processes()]


def process_workers(specs: Sequence[Spec]) -> tuple[int, dict[MapOptions, int]]:
    """The shared CPU budget of the process maps, and the workers each kind uses.

    The budget is one token per CPU, or more if a stage explicitly asks for
    more workers; maps with equal ``WorkerOptions`` share their workers.
    Ray maps' tasks run on the cluster, outside the budget.
    """
    workers: dict[MapOptions, int] = {}
    tokens = cpu_count()
    for options, concurrency in processes(specs):
        workers[options] = workers.get(options, 0) + (concurrency or cpu_count())
        if isinstance(options, WorkerOptions):
            tokens = max(tokens, concurrency or 0)
    return tokens, workers


@contextlib.asynccontextmanager
async def open_pipeline(
    specs: Sequence[Spec],
    epoch: _info.Epoch,
    *,
    output_chunks: int = CHANNEL_CHUNKS,
    reporting: Reporting = Reporting(),
    kept: persistent_workers | None = None,
) -> AsyncIterator[PipelineReceiver[Any]]:
    """Run a pipeline for the duration of the block; see ``Pipeline.open``.

    ``epoch`` is the run's; ``kept``, the ``persistent_workers`` scope it
    takes its worker processes from, if any; ``output_chunks`` is the buffer of the last
    channel, the one ``items`` reads from; ``reporting``, what to report
    while it runs. Here errors
    leave snake: a user's exception group, carried inside the pipeline,
    leaves as the object the user raised (see ``_errors.Carried``).
    """
    try:
        opening = open_inner(
            specs, epoch, output_chunks=output_chunks, reporting=reporting, kept=kept
        )
        async with opening as items:
            yield items
    except BaseException as exc:
        error = trimmed(uncarried(exc))
        if error is exc:
            raise
        raise_as_is(error)


@contextlib.asynccontextmanager
async def open_inner(
    specs: Sequence[Spec],
    epoch: _info.Epoch | None,
    *,
    output_chunks: int = CHANNEL_CHUNKS,
    reporting: Reporting = Reporting(),
    executors: Executors | None = None,
    kept: persistent_workers | None = None,
) -> AsyncIterator[PipelineReceiver[Any]]:
    """``open_pipeline`` with a user's exception groups still carried: for the
    synchronous bridge, whose own boundary takes them out, and for a pipeline
    run inside another one, which passes the ``executors`` of the run: its
    process maps use the run's workers and CPU budget, and ``epoch=None``:
    it runs in the epoch of the stage running it.
    """
    if reporting.progress:  # the progress shows the run's total, if known
        reporting = attrs.evolve(reporting, total=total(specs))
    tokens, workers = process_workers(specs)
    async with contextlib.AsyncExitStack() as stack:
        if executors is None:
            executors = await stack.enter_async_context(open_executors(tokens, kept))
        running = _open(plan(specs), executors, workers, output_chunks, reporting, epoch)
        async with running as items:
            yield items


async def pump(
    specs: Sequence[Spec],
    executors: Executors,
    deliver: Callable[[list[Any]], Awaitable[None]],
    done: Callable[[], bool] = lambda: False,
) -> None:
    """Run the pipeline ``specs``, nested in this task on the run's
    ``executors``, each chunk to ``deliver``, until it ends or ``done()``: how
    a stage made of other pipelines runs them."""
    async with open_inner(specs, None, executors=executors) as items:
        while not done():
            try:
                chunk = await items.receive_chunk()
            except trio.EndOfChannel:
                return
            await deliver(chunk)


async def forward(
    specs: Sequence[Spec], executors: Executors, send: trio.MemorySendChannel[list[Any]]
) -> None:
    """Run the pipeline ``specs`` into ``send``, and close it at the end."""
    with send:
        await pump(specs, executors, send.send)


def _cancel(scopes: Sequence[trio.CancelScope]) -> None:
    for scope in scopes:
        scope.cancel()


@contextlib.asynccontextmanager
async def _open(
    plans: list[StagePlan],
    executors: Executors,
    workers: dict[MapOptions, int],
    output_chunks: int,
    reporting: Reporting,
    epoch: _info.Epoch | None,
) -> AsyncIterator[PipelineReceiver[Any]]:
    began = trio.current_time()
    await executors.provide(workers)
    async with open_nursery() as nursery:
        # Its stages are built and their tasks started in its epoch: they, and
        # the functions they call, read it from the context they inherit.
        with _info.entered(epoch):
            scopes = [trio.CancelScope() for _ in plans]
            recv: trio.MemoryReceiveChannel[list[Any]] | None = None
            taken: Taken | None = None
            running: list[_Running] = []
            for position, p in enumerate(plans):
                last = position == len(plans) - 1
                buffer = output_chunks if last else CHANNEL_CHUNKS
                send, next_recv = trio.open_memory_channel[list[Any]](buffer)
                next_taken = Taken()
                name = label(p.index, p.spec)
                stage = p.spec.build(Context(name, executors, p.in_workers))
                steps = [spec.step(label(i, spec)) for i, spec in p.fused]
                clock = StageClock()
                measured = clock if MEASURE else None
                chain = FusedSteps(steps) if steps else None
                outbox = Outbox(send, chain, scopes[position], measured, next_taken)
                inbox = Inbox(recv, outbox, measured, taken) if recv is not None else None
                fused = tuple(spec.describe() for _, spec in p.fused)
                running.append(
                    _Running(name, fused, p.spec.advice, stage, clock, inbox, outbox, send)
                )
                stop_upstream = functools.partial(_cancel, scopes[:position])
                nursery.start_soon(
                    _run_stage, stage, inbox, recv, outbox, send, scopes[position], stop_upstream
                )
                recv, taken = next_recv, next_taken
        assert recv is not None
        executors.start()
        statistics = functools.partial(_statistics, began, running, executors)
        if reporting.wanted:
            scopes.append(trio.CancelScope())
            nursery.start_soon(_watch, scopes[-1], reporting, statistics)
        stop = functools.partial(_cancel, scopes)
        with recv:
            items = PipelineReceiver(recv, stop, statistics, taken)
            try:
                yield items
            except ExceptionGroup as group:  # the body's own: it leaves as raised
                raise carried(group) from group
            finally:
                stop()
                await items._close_iterator()


async def _watch(
    scope: trio.CancelScope, reporting: Reporting, statistics: Callable[[], Statistics]
) -> None:
    with scope:
        await watch(reporting, statistics)


@attrs.frozen
class _Running:
    """A stage of a run, as its statistics read it."""

    label: str
    fused: tuple[str, ...]
    advice: str
    stage: Stage
    clock: StageClock
    inbox: Inbox | None
    outbox: Outbox
    send: trio.MemorySendChannel[list[Any]]

    def figures(self) -> Figures:
        return Figures(
            self.label,
            self.fused,
            self.advice,
            self.clock,
            self.outbox.accepted if self.inbox is None else self.inbox.received,
            self.outbox.sent,
            0 if self.stage.failures is None else self.stage.failures.skipped,
            self.send.statistics().current_buffer_used,
        )


def _statistics(began: float, running: Sequence[_Running], executors: Executors) -> Statistics:
    return take_statistics(began, [r.figures() for r in running], executors.worker_statistics())


async def _run_stage(
    stage: Stage,
    inbox: Inbox | None,
    recv: trio.MemoryReceiveChannel[list[Any]] | None,
    outbox: Outbox,
    send: trio.MemorySendChannel[list[Any]],
    scope: trio.CancelScope,
    stop_upstream: Callable[[], None],
) -> None:
    try:
        with scope:
            # Plain `with`: closing is synchronous, so a cancelled scope cannot
            # turn the close into a Cancelled that hides the stage's own error.
            with send, recv if recv is not None else contextlib.nullcontext():
                try:
                    await stage.run(inbox, outbox)
                    await outbox.finish()
                except DownstreamClosed:
                    pass
                else:
                    if not outbox.done:
                        return
        if outbox.failed is not None:
            # The inline ops after it failed while the stage was blocked: the
            # stage was cancelled for it (see Outbox.on_block).
            raise outbox.failed
        if not scope.cancel_called:
            # It needs no more input: stop the stages feeding it, now.
            stop_upstream()
    finally:
        if outbox.clock is not None:
            outbox.clock.end()
