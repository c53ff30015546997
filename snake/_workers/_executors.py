"""Where ``par_map`` work runs: worker threads, worker processes, or a Ray cluster.

Every executor offers the same small protocol: run a function over a chunk
of items (killing or abandoning the work if cancelled). Stages see only
that, so other engines plug in without touching them. Worker processes
are in ``_pool``, and this module opens their ``trio_parallel`` contexts;
Ray tasks are in ``_ray``, imported only by a run with a Ray map.
"""

from __future__ import annotations

import heapq
import math
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import trio
import trio_parallel

from .._exceptions import timed_out
from .._info import WorkerInfo, enter_worker
from .._nursery import open_nursery
from ._forkserver import check_spawn_loads_main, start_forkserver
from ._options import MapOptions, RayOptions, WorkerOptions, cpu_count
from ._persistent import settings
from ._pool import ProcessExecutor
from ._script import dumps
from ._work import ChunkResult, Work, apply_chunk
from ._worker import start

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._stats import WorkerStatistics
    from ._persistent import persistent_workers
    from ._ray import RayExecutor

#: Seconds a worker process may take to exit once its pipeline is done.
SHUTDOWN_GRACE = 10.0


class Executor(Protocol):
    """Runs a job's work (``_work.Work``) over chunks of items somewhere else.

    The whole protocol: ``prepare`` a work, ``run_chunk`` it (stopping or
    abandoning it on cancel). Closing belongs to whoever opened the executor
    (``open_executors``), so another engine plugs in without touching stages.
    """

    def prepare(self, work: Work) -> None:
        """Get ready to run ``work``: a pool sends it along as workers start."""

    def concurrency(self) -> int:
        """Jobs a stage runs at once when it was given no ``concurrency``."""

    async def run_chunk(
        self,
        work: Work,
        items: list[Any],
        base: int,
        limiter: trio.CapacityLimiter,
        time_limit: float | None = None,
    ) -> ChunkResult:
        """``work`` over ``items``: the results, the seconds it took where it
        ran, the bytes of large buffers its items and results moved (0 where
        none did), and the items it skipped (``work.skip``).

        An error from a user function is raised here as itself, with its
        stage note (``base`` is the stage-input position of ``items[0]``).
        ``limiter`` is the stage's: one token per worker busy with it. On
        cancel, the work is abandoned (and worker processes killed when
        their pipeline stops). Past ``time_limit`` seconds of running (a
        stage's per-item ``timeout``: its jobs then hold one item), it is
        stopped (a worker process killed, a thread abandoned) and
        ``ItemTimeoutError`` raised.
        """


class ThreadExecutor:
    """``trio.to_thread`` limited by the stage's limiter.

    A thread cannot be stopped: a job cancelled, or past its time limit, is
    abandoned, and makes no call after the one it is in.
    """

    def __init__(self) -> None:
        # The stage's limiter is held around each call instead.
        self._unlimited = trio.CapacityLimiter(math.inf)
        #: Worker places free, lowest first (``snake.worker_info().id``).
        self._free: list[int] = []
        self._places = 0

    def prepare(self, work: Work) -> None:
        pass

    def concurrency(self) -> int:
        return cpu_count()

    async def run_chunk(
        self,
        work: Work,
        items: list[Any],
        base: int,
        limiter: trio.CapacityLimiter,
        time_limit: float | None = None,
    ) -> ChunkResult:
        abandoned = [False]
        async with limiter:  # the clock starts once a thread is free
            place = heapq.heappop(self._free) if self._free else self._take_place()
            info = None
            if work.run is not None:
                seed = work.run.worker_seed(place)
                info = WorkerInfo(place, int(limiter.total_tokens), seed, work.run.number)
            try:
                with trio.move_on_after(math.inf if time_limit is None else time_limit):
                    return await trio.to_thread.run_sync(
                        _in_thread, info, work, items, base, abandoned,
                        limiter=self._unlimited, abandon_on_cancel=True,
                    )  # fmt: skip
            finally:
                abandoned[0] = True  # if it runs on, it stops before its next call
                heapq.heappush(self._free, place)
        assert time_limit is not None
        raise timed_out(time_limit)

    def _take_place(self) -> int:
        self._places += 1
        return self._places - 1


def _in_thread(
    info: WorkerInfo | None, work: Work, items: list[Any], base: int, abandoned: list[bool]
) -> ChunkResult:
    """``apply_chunk`` in a worker thread, which ``snake.worker_info()`` describes.

    The thread runs a copy of its stage's context (``trio.to_thread``), so
    this is its own.
    """
    enter_worker(info)
    return apply_chunk(work, items, base, abandoned)


class WorkerStart:
    """The set-up ``trio_parallel`` sends each new worker of one context."""

    def __init__(self, options: WorkerOptions) -> None:
        self._init = None if options.init is None else dumps(options.init)
        self._max_items = options.max_items

    def __call__(self) -> None:  # pragma: no cover - only its pickled form runs
        raise RuntimeError("WorkerStart runs in the worker it was pickled for")

    def __reduce__(self) -> tuple[Any, ...]:
        return (start, (self._init, self._max_items))


class Executors:
    """The executors of one run of a pipeline, pipelines nested in it included.

    Worker processes are one set per distinct ``WorkerOptions`` for the whole
    run: a nested pipeline (under ``concat``, ``interleave``, ``repeat``, ...)
    uses the run's workers and its CPU budget, and asks for a set the run
    has not started yet (``provide``) as it opens. Ray maps get one executor
    per distinct ``RayOptions``, outside the CPU budget: their tasks run on
    the cluster.
    """

    def __init__(
        self,
        budget: trio.CapacityLimiter,
        nursery: trio.Nursery,
        contexts: AsyncExitStack,
        kept: persistent_workers | None = None,
    ) -> None:
        self._budget = budget
        self._nursery = nursery
        self._contexts = contexts
        self._kept = kept
        self._processes: dict[WorkerOptions, ProcessExecutor] = {}
        self._ray: dict[RayOptions, RayExecutor] = {}
        self._started: set[WorkerOptions] = set()

    async def provide(self, wanted: dict[MapOptions, int]) -> None:
        """Worker processes for each of ``wanted``'s options, as many as it
        says the stages use at most (within the budget), and a Ray executor
        for each of its ``RayOptions``, unless the run has them already."""
        tokens = int(self._budget.total_tokens)
        for options, count in wanted.items():
            if isinstance(options, RayOptions):
                if options not in self._ray:
                    from ._ray import open_ray_executor

                    opening = open_ray_executor(options)
                    self._ray[options] = await self._contexts.enter_async_context(opening)
                continue
            if options in self._processes:
                continue
            if options.start_method == "forkserver":
                await start_forkserver()
            else:
                check_spawn_loads_main()
            wanted_context = settings(options, WorkerStart(options), SHUTDOWN_GRACE)
            if self._kept is not None:  # workers kept from one run to the next
                context = self._kept.context(options, **wanted_context)
            else:
                opening = trio_parallel.open_worker_context(**wanted_context)
                context = await self._contexts.enter_async_context(opening)
            workers = min(count, tokens)
            self._processes[options] = ProcessExecutor(context, self._budget, workers)

    def start(self) -> None:
        """Start the worker processes not started yet, all at once, before the
        first chunk needs them.

        Called once the stages are built: each worker receives their work as
        it starts, so first jobs carry only items.
        """
        for options, executor in self._processes.items():
            if options not in self._started:
                self._started.add(options)
                self._nursery.start_soon(executor.run)

    def worker_statistics(self) -> list[WorkerStatistics]:
        """What the worker processes have done so far, a line per lane."""
        return [w for e in self._processes.values() for w in e.worker_statistics()]

    def get(self, kind: str, options: MapOptions) -> Executor:
        if kind == "thread":
            return ThreadExecutor()
        if isinstance(options, RayOptions):
            return self._ray[options]
        return self._processes[options]

    def close(self) -> None:
        for executor in self._processes.values():
            executor.close()

    def remove_shared_memory(self) -> None:
        for executor in self._processes.values():
            executor.remove_shared_memory()


@asynccontextmanager
async def open_executors(
    tokens: int, kept: persistent_workers | None = None
) -> AsyncIterator[Executors]:
    """Executors for one run: worker processes draw on one budget of ``tokens``.

    Worker contexts are opened as the run's pipelines ask for them
    (``Executors.provide``), and closed on exit, so no worker process
    outlives the run: idle workers return from their calls, and on an error
    or cancel, or where jobs were abandoned, workers are killed. With
    ``kept``, a ``persistent_workers`` scope, the contexts are the scope's:
    idle workers stay for the next run, until the scope ends.
    """
    executors = None
    try:
        async with AsyncExitStack() as contexts:
            # Closed before the contexts: the workers' calls end first.
            async with open_nursery() as nursery:
                budget = trio.CapacityLimiter(tokens)
                executors = Executors(budget, nursery, contexts, kept)
                try:
                    yield executors
                except BaseException:
                    nursery.cancel_scope.cancel()
                    raise
                executors.close()
    finally:
        # Once the workers are gone: segments of results never read, whose
        # jobs were cancelled, go too.
        if executors is not None:
            executors.remove_shared_memory()
