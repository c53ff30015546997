"""Where ``par_map`` work runs: worker threads or worker processes.

Every executor offers the same small protocol: run a function over a chunk
of items (killing or abandoning the work if cancelled) and close. Stages see
only that, so other engines can plug in without touching them. This is the
only module that imports ``trio_parallel``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import cloudpickle
import trio
import trio_parallel

from . import _shm as shm
from ._forkserver import preload_forkserver
from ._worker import Work, apply_chunk, apply_shipped, ready, should_retire, start
from ._worker_options import WorkerOptions

T = TypeVar("T")

#: Seconds a worker process may take to exit once its pipeline is done.
SHUTDOWN_GRACE = 10.0


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask), at least one."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class Executor(Protocol):
    """Runs a job's work (``_worker.Work``) over chunks of items somewhere else.

    The whole protocol: ``prepare`` a work, ``run_chunk`` it (stopping or
    abandoning it on cancel). Closing belongs to whoever opened the executor
    (``open_executors``), so another engine plugs in without touching stages.
    """

    def prepare(self, work: Work) -> None:
        """Get ready to run ``work``: a pool sends it along as workers start."""

    async def run_chunk(
        self, work: Work, items: list[Any], base: int
    ) -> tuple[list[Any], float, int]:
        """``work`` over ``items``, the seconds it took where it ran, and the
        bytes of large buffers its results brought back (0 where none moved).

        An error from a user function is raised here as itself, with its
        stage note (``base`` is the stage-input position of ``items[0]``).
        On cancel, the work is stopped (processes are killed) or abandoned.
        """


class ThreadExecutor:
    """``trio.to_thread`` with a limiter of its own; cancelled work is abandoned."""

    def __init__(self, tokens: int) -> None:
        self._limiter = trio.CapacityLimiter(tokens)

    def prepare(self, work: Work) -> None:
        pass

    async def run_chunk(
        self, work: Work, items: list[Any], base: int
    ) -> tuple[list[Any], float, int]:
        results, elapsed = await trio.to_thread.run_sync(
            apply_chunk, work, items, base,
            limiter=self._limiter, abandon_on_cancel=True,
        )  # fmt: skip
        return results, elapsed, 0


class ProcessExecutor:
    """``trio_parallel`` workers of one context; cancelled work is killed.

    All process maps of a pipeline share this executor, and so one limiter:
    one CPU budget, however many ``par_map`` stages there are. Each function
    goes to each worker process once (see ``_worker.apply_shipped``).
    """

    def __init__(
        self, context: trio_parallel.WorkerContext, budget: trio.CapacityLimiter, workers: int
    ) -> None:
        self._context = context
        self._budget = budget
        self._workers = workers
        #: Names of this executor's shared-memory segments start with it.
        self.shm_prefix = f"snake-{os.getpid()}-{id(self):x}-" if shm.AVAILABLE else None
        # id(work) -> (work, key, pickled work); kept so the id stays unique.
        self._shipped: dict[int, tuple[Work, str, bytes]] = {}
        # id(work) -> the shared-memory slots its results are lent.
        self._slots: dict[int, shm.Slots] = {}

    async def warm_up(self) -> None:
        """Start the workers its stages will use now, all at once.

        Workers start on demand otherwise, one after another as the first
        chunks arrive; started together, the first items wait for one start.
        Each receives the work prepared so far, so first jobs need no
        second round trip to send it.
        """
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._start_one)

    def prepare(self, work: Work) -> None:
        self._ship(work)

    async def _start_one(self) -> None:
        shipments = [(key, pickled) for _, key, pickled in self._shipped.values()]
        try:
            await self._run(ready, shipments)
        except trio_parallel.BrokenWorkerError:
            # Only an early start failed; the first chunk to need this worker
            # starts it again and reports the failure, naming its stage.
            pass

    async def run_chunk(
        self, work: Work, items: list[Any], base: int
    ) -> tuple[list[Any], float, int]:
        _, key, pickled = self._ship(work)
        prefix = self.shm_prefix
        slots = self._slots.get(id(work))
        if slots is None and prefix is not None:
            # Enough free slots for a window of jobs, and some left in use.
            slots = self._slots[id(work)] = shm.Slots(f"{prefix}{len(self._slots)}-", 8)
        slot = None if slots is None else slots.take()
        try:
            result = await self._run(apply_shipped, key, None, items, base, prefix, slot)
            if result is None:  # a worker that has not seen this work yet
                result = await self._run(apply_shipped, key, pickled, items, base, prefix, slot)
        except BaseException as exc:
            if slots is not None:
                slots.drop(slot)  # the worker may have been killed writing to it
            if isinstance(exc, trio_parallel.BrokenWorkerError):
                exc.add_note(
                    f"snake: in stage {work.label}, the worker process running items {base} "
                    f"to {base + len(items) - 1} of its input died. Common causes: a crash "
                    "in native code, running out of memory, or a script without an "
                    '`if __name__ == "__main__":` guard (workers are spawned and import it)'
                )
            raise
        assert result is not None
        packed, elapsed = result
        if not isinstance(packed, shm.Packed):
            return packed, elapsed, 0
        if not packed.reused and slots is not None:
            slots.put(slot)
        return shm.unpack(packed, slots), elapsed, sum(packed.sizes)

    def close(self) -> None:
        """Remove this executor's shared memory, once its workers are gone."""
        for slots in self._slots.values():
            slots.close()
        if self.shm_prefix is not None:
            shm.sweep(self.shm_prefix)

    def _ship(self, work: Work) -> tuple[Work, str, bytes]:
        shipped = self._shipped.get(id(work))
        if shipped is None:
            key = f"{os.getpid()}-{id(self)}-{len(self._shipped)}"
            shipped = self._shipped[id(work)] = (work, key, cloudpickle.dumps(work))
        return shipped

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        result: T = await self._context.run_sync(
            fn, *args, kill_on_cancel=True, limiter=self._budget
        )
        return result


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

    def __init__(self, processes: dict[WorkerOptions, ProcessExecutor]) -> None:
        self._processes = processes

    @property
    def has_processes(self) -> bool:
        return bool(self._processes)

    async def warm_up(self) -> None:
        """Start the worker processes before the first chunk needs them."""
        async with trio.open_nursery() as nursery:
            for executor in self._processes.values():
                nursery.start_soon(executor.warm_up)

    def get(self, kind: str, concurrency: int | None, options: WorkerOptions) -> Executor:
        if kind == "thread":
            return ThreadExecutor(concurrency or cpu_count())
        return self._processes[options]


@asynccontextmanager
async def open_executors(
    tokens: int, workers: dict[WorkerOptions, int]
) -> AsyncIterator[Executors]:
    """Executors for one run: a worker context for each distinct ``WorkerOptions``.

    ``workers`` says how many workers the stages with those options use at
    most; all contexts draw from one budget of ``tokens``. The contexts are
    closed on exit, so no worker process outlives the run.
    """
    budget = trio.CapacityLimiter(tokens)
    processes: dict[WorkerOptions, ProcessExecutor] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            for options, count in workers.items():
                if options.start_method == "forkserver":
                    preload_forkserver()
                context = await stack.enter_async_context(
                    trio_parallel.open_worker_context(
                        init=WorkerStart(options),
                        retire=should_retire,
                        grace_period=SHUTDOWN_GRACE,
                        worker_type=_WORKER_TYPES[options.start_method],
                    )
                )
                processes[options] = ProcessExecutor(context, budget, min(count, tokens))
            yield Executors(processes)
    finally:
        # Once the workers are gone: segments of results never read, whose
        # jobs were cancelled, go too.
        for executor in processes.values():
            executor.close()


_WORKER_TYPES = {
    "spawn": trio_parallel.WorkerType.SPAWN,
    "forkserver": trio_parallel.WorkerType.FORKSERVER,
}
