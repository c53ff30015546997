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
import trio

from . import _checkpoint, _info
from ._chunking import CHANNEL_CHUNKS, DownstreamClosed, Inbox, Outbox, Taken
from ._errors import carried, uncarried
from ._nursery import open_nursery, raise_as_is
from ._plan import StagePlan, label, plan
from ._position import Saved, back, tracked, tracking
from ._receiver import PipelineReceiver
from ._report import Reporting, watch
from ._stages._base import Context, Spec, Stage, StageSpec
from ._stages._inline import FusedSteps
from ._stages._length import total
from ._stats import Figures, StageClock, Statistics
from ._stats import take as take_statistics
from ._tracebacks import trimmed
from ._workers._executors import Executors, open_executors
from ._workers._options import WorkerOptions, cpu_count

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from ._auto import AutoRun
    from ._checkpoint import Resume
    from ._workers._options import MapOptions
    from ._workers._persistent import persistent_workers

#: Whether stages measure their waits and latencies. Always on: the
#: benchmark of stage boundaries turns it off to measure what it costs.
MEASURE = True


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
    resume: Resume | None = None,
    auto: AutoRun | None = None,
) -> AsyncIterator[PipelineReceiver[Any]]:
    """Run a pipeline for the duration of the block; see ``Pipeline.open``.

    ``epoch`` is the run's; ``kept``, the ``persistent_workers`` scope it
    takes its worker processes from, if any; ``output_chunks`` is the buffer of the last
    channel, the one ``items`` reads from; ``reporting``, what to report
    while it runs; ``resume``, the loaded state it resumes from; ``auto``,
    what its ``"auto"`` stages are given (see ``_auto``). Here errors
    leave snake: a user's exception group, carried inside the pipeline,
    leaves as the object the user raised (see ``_errors.Carried``).
    """
    try:
        opening = open_inner(
            specs, epoch, output_chunks=output_chunks, reporting=reporting, kept=kept,
            resume=resume, auto=auto,
        )  # fmt: skip
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
    resume: Resume | None = None,
    auto: AutoRun | None = None,
) -> AsyncIterator[PipelineReceiver[Any]]:
    """``open_pipeline`` with a user's exception groups still carried: for the
    synchronous bridge, whose own boundary takes them out, and for a pipeline
    run inside another one, which passes the ``executors`` of the run: its
    process maps use the run's workers and CPU budget, and ``epoch=None``:
    it runs in the epoch of the stage running it, keeping positions if it does.
    """
    if reporting.progress:  # the progress shows the run's total, if known
        reporting = attrs.evolve(reporting, total=total(specs))
    why = None if epoch is None else _checkpoint.not_resumable(specs)
    track = tracking() if epoch is None else why is None
    with tracked(track):
        plans = plan(specs, resume)
    tokens, workers = process_workers(specs)
    async with contextlib.AsyncExitStack() as stack:
        if executors is None:
            executors = await stack.enter_async_context(open_executors(tokens, kept))
        numbered = [] if epoch is None else _checkpoint.unseeded(specs)
        first = _checkpoint.first_reordering(specs)
        run = _Run(plans, executors, epoch, resume, track, numbered, first, auto)
        async with _open(run, workers, output_chunks, reporting) as items:
            if epoch is not None:
                items._state = functools.partial(_state, specs, epoch, items, why)
            yield items


def _state(
    specs: Sequence[Spec],
    epoch: _info.Epoch,
    items: PipelineReceiver[Any],
    why: str | None,
    position: int,
) -> dict[str, Any]:
    if why is not None:
        raise _checkpoint.refuse(why)
    return _checkpoint.state(specs, epoch, position, items._saved(position))


async def pump(
    specs: Sequence[Spec],
    executors: Executors,
    deliver: Callable[[list[Any]], Awaitable[None]],
    done: Callable[[], bool] = lambda: False,
    *,
    resume: Resume | None = None,
    opened: Callable[[PipelineReceiver[Any]], object] = lambda items: None,
) -> None:
    """Run the pipeline ``specs``, nested in this task on the run's
    ``executors``, each chunk to ``deliver``, until it ends or ``done()``: how
    a stage made of other pipelines runs them. ``opened`` is told its
    receiver, which says where it stands; ``resume``, where it resumes."""
    async with open_inner(specs, None, executors=executors, resume=resume) as items:
        opened(items)
        while not done():
            try:
                chunk = await items.receive_chunk()
            except trio.EndOfChannel:
                return
            await deliver(chunk)


async def forward(
    specs: Sequence[Spec],
    executors: Executors,
    send: trio.MemorySendChannel[list[Any]],
    *,
    resume: Resume | None = None,
    opened: Callable[[PipelineReceiver[Any]], object] = lambda items: None,
) -> None:
    """Run the pipeline ``specs`` into ``send``, and close it at the end
    (``resume`` and ``opened`` as for ``pump``)."""
    with send:
        await pump(specs, executors, send.send, resume=resume, opened=opened)


def _cancel(scopes: Sequence[trio.CancelScope]) -> None:
    for scope in scopes:
        scope.cancel()


@attrs.frozen
class _Run:
    """What one run's stages are built from."""

    plans: list[StagePlan]
    executors: Executors
    #: ``None`` for a nested pipeline, which runs in its stage's epoch.
    epoch: _info.Epoch | None
    resume: Resume | None
    #: Whether its operators keep their positions (see ``_position``).
    track: bool
    #: Its pipeline's operators with no seed (see ``_info.Draws``); none
    #: for a nested pipeline, whose are its stage's run's.
    unseeded: list[Spec]
    #: The first of its operators that reorders items, if any.
    reordered: int | None
    #: What its ``"auto"`` stages are given; ``None`` for a nested pipeline.
    auto: AutoRun | None = None

    def build(self, p: StagePlan) -> tuple[Stage, FusedSteps | None, int]:
        """Stage ``p``'s running operators, made fresh or where ``resume`` left
        them, and the position of its first input."""
        entries: list[Saved | None] = [None] * (1 + len(p.in_workers) + len(p.fused))
        if self.resume is not None:
            entries = list(self.resume.entries[p.index : p.index + len(entries)])
        kept = entries[: 1 + len(p.in_workers)]
        saved = tuple(e for e in kept if e is not None)
        name = label(p.index, p.spec)
        with tracked(self.track, exactly=self.reordered is not None and self.reordered < p.index):
            auto = self.auto.stage(p.index) if self.auto and p.spec.tuned() else None
            stage = p.spec.build(Context(name, self.executors, p.in_workers, saved, auto))
        steps, drop = [], []
        for (i, spec), entry in zip(p.fused, entries[len(kept) :], strict=True):
            with tracked(self.track, exactly=self.reordered is not None and self.reordered < i):
                if entry is None:
                    steps.append(spec.step(label(i, spec)))
                else:
                    steps.append(spec.step(label(i, spec), entry.at, entry))
            drop.append(0 if entry is None else entry.skip)
        return stage, FusedSteps(steps, drop) if steps else None, saved[0].at if saved else 0


def _walk(stages: Sequence[tuple[Stage, FusedSteps | None]], out: int) -> list[Saved]:
    """Where each operator of a run stood when its consumer had ``out`` items."""
    entries: list[Saved] = []
    extra: frozenset[int] = frozenset()
    for stage, chain in reversed(stages):
        if chain is not None:
            steps, extra = chain.back(out, extra)
            entries[:0] = steps
            out = steps[0].at
        own, extra = back(stage, out, extra)
        if own:
            entries[:0] = own
            out = own[0].at
    return entries


@contextlib.asynccontextmanager
async def _open(
    run: _Run, workers: dict[MapOptions, int], output_chunks: int, reporting: Reporting
) -> AsyncIterator[PipelineReceiver[Any]]:
    began = trio.current_time()
    executors = run.executors
    await executors.provide(workers)
    async with open_nursery() as nursery:
        # Its stages are built and their tasks started in its epoch: they, and
        # the functions they call, read it from the context they inherit.
        numbered = _info.numbered(run.unseeded) if run.epoch else contextlib.nullcontext()
        with _info.entered(run.epoch), tracked(run.track), numbered:
            scopes = [trio.CancelScope() for _ in run.plans]
            recv: trio.MemoryReceiveChannel[list[Any]] | None = None
            taken: Taken | None = None
            running: list[_Running] = []
            built: list[tuple[Stage, FusedSteps | None]] = []
            for position, p in enumerate(run.plans):
                last = position == len(run.plans) - 1
                buffer = output_chunks if last else CHANNEL_CHUNKS
                send, next_recv = trio.open_memory_channel[list[Any]](buffer)
                next_taken = Taken()
                stage, chain, start = run.build(p)
                built.append((stage, chain))
                clock = StageClock()
                measured = clock if MEASURE else None
                outbox = Outbox(send, chain, scopes[position], measured, next_taken)
                inbox = None
                if recv is not None:
                    inbox = Inbox(recv, outbox, measured, taken, start=start)
                fused = tuple(spec.describe() for _, spec in p.fused)
                name = label(p.index, p.spec)
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
            if run.track:
                start = 0 if run.resume is None else run.resume.position
                items._track(functools.partial(_walk, built), start, trims=run.epoch is not None)
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
