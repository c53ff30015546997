"""Where ``par_map`` work runs: worker threads or worker processes.

Every executor offers the same small protocol: run a function over a chunk
of items (killing or abandoning the work if cancelled). Stages see only
that, so other engines can plug in without touching them. Worker processes
are in ``_pool``; this module opens their ``trio_parallel`` contexts.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import cloudpickle
import trio
import trio_parallel

from .._exceptions import timed_out
from .._nursery import open_nursery
from ._forkserver import start_forkserver
from ._pool import ProcessExecutor
from ._work import ChunkResult, Work, apply_chunk
from ._worker import should_retire, start

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._stats import WorkerStatistics
    from ._options import WorkerOptions

#: Seconds a worker process may take to exit once its pipeline is done.
SHUTDOWN_GRACE = 10.0


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask), at least one."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class Executor(Protocol):
    """Runs a job's work (``_work.Work``) over chunks of items somewhere else.

    The whole protocol: ``prepare`` a work, ``run_chunk`` it (stopping or
    abandoning it on cancel). Closing belongs to whoever opened the executor
    (``open_executors``), so another engine plugs in without touching stages.
    """

    def prepare(self, work: Work) -> None:
        """Get ready to run ``work``: a pool sends it along as workers start."""

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

    def prepare(self, work: Work) -> None:
        pass

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
            try:
                with trio.move_on_after(math.inf if time_limit is None else time_limit):
                    return await trio.to_thread.run_sync(
                        apply_chunk, work, items, base, abandoned,
                        limiter=self._unlimited, abandon_on_cancel=True,
                    )  # fmt: skip
            finally:
                abandoned[0] = True  # if it runs on, it stops before its next call
        assert time_limit is not None
        raise timed_out(time_limit)


class WorkerStart:
    """The set-up ``trio_parallel`` sends each new worker of one context.

    It is pickled once per worker it starts, so pickling it hands out the
    worker numbers that ``WorkerOptions.init`` receives.
    """

    def __init__(self, options: WorkerOptions) -> None:
        self._init = None if options.init is None else cloudpickle.dumps(options.init)
        self._max_items = options.max_items
        self._started = itertools.count()

    def __call__(self) -> None:  # pragma: no cover - only its pickled form runs
        raise RuntimeError("WorkerStart runs in the worker it was pickled for")

    def __reduce__(self) -> tuple[Any, ...]:
        return (start, (next(self._started), self._init, self._max_items))


class Executors:
    """The executors of one run of a pipeline."""

    def __init__(
        self, processes: dict[WorkerOptions, ProcessExecutor], nursery: trio.Nursery
    ) -> None:
        self._processes = processes
        self._nursery = nursery

    def start(self) -> None:
        """Start the worker processes, all at once, before the first chunk needs them.

        Called once the stages are built: each worker receives their work as
        it starts, so first jobs carry only items.
        """
        for executor in self._processes.values():
            self._nursery.start_soon(executor.run)

    def worker_statistics(self) -> list[WorkerStatistics]:
        """What the worker processes have done so far, a line per lane."""
        return [w for e in self._processes.values() for w in e.worker_statistics()]

    def get(self, kind: str, options: WorkerOptions) -> Executor:
        if kind == "thread":
            return ThreadExecutor()
        return self._processes[options]


@asynccontextmanager
async def open_executors(
    tokens: int, workers: dict[WorkerOptions, int]
) -> AsyncIterator[Executors]:
    """Executors for one run: a worker context for each distinct ``WorkerOptions``.

    ``workers`` says how many workers the stages with those options use at
    most; all contexts draw from one budget of ``tokens``. The contexts are
    closed on exit, so no worker process outlives the run: idle workers
    return from their calls, and on an error or cancel, or where jobs were
    abandoned, workers are killed.
    """
    budget = trio.CapacityLimiter(tokens)
    processes: dict[WorkerOptions, ProcessExecutor] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            for options, count in workers.items():
                if options.start_method == "forkserver":
                    await start_forkserver()
                context = await stack.enter_async_context(
                    trio_parallel.open_worker_context(
                        init=WorkerStart(options),
                        retire=should_retire,
                        grace_period=SHUTDOWN_GRACE,
                        worker_type=_WORKER_TYPES[options.start_method],
                    )
                )
                processes[options] = ProcessExecutor(context, budget, min(count, tokens))
            # Closed before the contexts: the workers' calls end first.
            nursery = await stack.enter_async_context(open_nursery())
            try:
                yield Executors(processes, nursery)
            except BaseException:
                nursery.cancel_scope.cancel()
                raise
            for executor in processes.values():
                executor.close()
    finally:
        # Once the workers are gone: segments of results never read, whose
        # jobs were cancelled, go too.
        for executor in processes.values():
            executor.remove_shared_memory()


_WORKER_TYPES = {
    "spawn": trio_parallel.WorkerType.SPAWN,
    "forkserver": trio_parallel.WorkerType.FORKSERVER,
}
