"""Where ``par_map`` work runs: worker threads or worker processes.

Every executor offers the same small protocol: run a function over a chunk
of items (killing or abandoning the work if cancelled) and close. Stages see
only that, so other engines can plug in without touching them. This is the
only module that imports ``trio_parallel``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import trio
import trio_parallel

from ._worker import apply_chunk

#: Seconds a worker process may take to exit once its pipeline is done.
SHUTDOWN_GRACE = 10.0


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask), at least one."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class Executor(Protocol):
    """Runs a sync function over chunks of items somewhere else."""

    @property
    def concurrency(self) -> int:
        """How many chunks a stage using it should have in flight by default."""

    async def run_chunk(
        self, fn: Callable[[Any], Any], items: list[Any], label: str, base: int
    ) -> tuple[list[Any], float]:
        """``[fn(x) for x in items]`` and the seconds it took where it ran.

        An error from ``fn`` is raised here as itself, with its stage note
        (``label``, ``base`` being the stage-input position of ``items[0]``).
        On cancel, the work is stopped (processes are killed) or abandoned.
        """


class ThreadExecutor:
    """``trio.to_thread`` with a limiter of its own; cancelled work is abandoned."""

    def __init__(self, tokens: int) -> None:
        self._limiter = trio.CapacityLimiter(tokens)

    @property
    def concurrency(self) -> int:
        return int(self._limiter.total_tokens)

    async def run_chunk(
        self, fn: Callable[[Any], Any], items: list[Any], label: str, base: int
    ) -> tuple[list[Any], float]:
        return await trio.to_thread.run_sync(
            apply_chunk, fn, items, label, base,
            limiter=self._limiter, abandon_on_cancel=True,
        )  # fmt: skip


class ProcessExecutor:
    """``trio_parallel`` workers of one context; cancelled work is killed.

    All process maps of a pipeline share this executor, and so one limiter:
    one CPU budget, however many ``par_map`` stages there are.
    """

    def __init__(self, context: trio_parallel.WorkerContext, tokens: int) -> None:
        self._context = context
        self._budget = trio.CapacityLimiter(tokens)

    @property
    def concurrency(self) -> int:
        return int(self._budget.total_tokens)

    async def run_chunk(
        self, fn: Callable[[Any], Any], items: list[Any], label: str, base: int
    ) -> tuple[list[Any], float]:
        try:
            result: tuple[list[Any], float] = await self._context.run_sync(
                apply_chunk, fn, items, label, base,
                kill_on_cancel=True, limiter=self._budget,
            )  # fmt: skip
        except trio_parallel.BrokenWorkerError as exc:
            exc.add_note(
                f"snake: in stage {label}, the worker process running items {base} to "
                f"{base + len(items) - 1} of its input died. Common causes: a crash in "
                "native code, running out of memory, or a script without an "
                '`if __name__ == "__main__":` guard (workers are spawned and import it)'
            )
            raise
        return result


class Executors:
    """The executors of one run of a pipeline."""

    def __init__(self, process: ProcessExecutor | None) -> None:
        self._process = process

    def get(self, kind: str, concurrency: int | None) -> Executor:
        if kind == "thread":
            return ThreadExecutor(concurrency or cpu_count())
        assert self._process is not None, "open_executors was not told of this stage"
        return self._process


@asynccontextmanager
async def open_executors(process_tokens: int | None) -> AsyncIterator[Executors]:
    """Executors for one run; with ``process_tokens``, a worker context of its own.

    The context is closed on exit, so no worker process outlives the run.
    """
    if process_tokens is None:
        yield Executors(None)
        return
    async with trio_parallel.open_worker_context(grace_period=SHUTDOWN_GRACE) as context:
        yield Executors(ProcessExecutor(context, process_tokens))
