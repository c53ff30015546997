"""The snake runs the benchmark scripts time, and every snake private module they use.

The seed workload is ``snake._apps._demo.pipeline``, with its ideal time as a
reference; the chain is ``.then(ident)`` stages over ``range(n)``; runs that
keep no positions are those started inside ``positions_off()``.

snake's private modules are imported here and nowhere else in this folder,
so that a module of snake that moves needs one line changed, here.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

import snake
import snake._apps._demo
import snake._checkpoint
import snake._runner
from snake._collate import default_collate as default_collate
from snake._workers._executors import cpu_count as cpu_count

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

#: The seed workload's code: ``pipeline``, ``fib``, ``fib_input``, ``estimate``.
demo = snake._apps._demo


def imaging() -> ModuleType:
    """``snake._apps._images``, the code of ``snake images``: imported on first use, so that
    the workers of the other scripts, which import their script again, skip it."""
    import snake._apps._images

    return snake._apps._images


async def ident(x: int) -> int:
    return x


def then_collect(n: int, stages: int, measure: bool = True) -> tuple[float, list[int]]:
    """``range(n)`` through ``stages`` ``.then(ident)`` stages, collected: the seconds
    of the ``trio.run`` that collects, and the items. Without ``measure``, the stages
    keep no statistics."""
    snake._runner.MEASURE = measure
    try:
        pipeline = snake.from_iterable(range(n))
        for _ in range(stages):
            pipeline = pipeline.then(ident)
        began = time.perf_counter()
        out = trio.run(pipeline.collect)
        return time.perf_counter() - began, out
    finally:
        snake._runner.MEASURE = True


@contextlib.contextmanager
def positions_off() -> Iterator[None]:
    """Runs started inside keep no positions, as a run of a pipeline that cannot save
    them: ``snake._checkpoint.not_resumable`` is what a run asks, when it starts,
    whether it can, and here it says no. ``state_dict()`` then raises, naming why."""
    asked = snake._checkpoint.not_resumable
    snake._checkpoint.not_resumable = lambda specs: "positions off for a measurement"
    try:
        yield
    finally:
        snake._checkpoint.not_resumable = asked


def seed_expected(n: int) -> list[int]:
    """The items of the seed workload of ``n`` items, in order."""
    fib, fib_input = demo.fib, demo.fib_input
    values = {k: fib(k) for k in {fib_input(i) for i in range(n)}}
    return [values[fib_input(i)] for i in range(n)]


def seed_collect(n: int, unit: float) -> tuple[float, list[int]]:
    """The seconds from just before ``collect()`` to its end, and the items."""

    async def run() -> tuple[float, list[int]]:
        pipeline = demo.pipeline(n, unit)
        began = time.perf_counter()
        out = await pipeline.collect()
        return time.perf_counter() - began, out

    return trio.run(run)


def seed_iterate(n: int, unit: float) -> tuple[float, float, list[int]]:
    """The seconds from just before ``open()`` to the last item and to the first, and
    the items."""

    async def run() -> tuple[float, float, list[int]]:
        pipeline = demo.pipeline(n, unit)
        began = time.perf_counter()
        async with pipeline.open() as items:
            out = [await items.receive()]
            first = time.perf_counter() - began
            out += [x async for x in items]
        return time.perf_counter() - began, first, out

    return trio.run(run)


@dataclass
class Ideal:
    """The seed workload's ideal time, from ``snake._apps._demo.estimate``, as a reference.

    ``run`` estimates it again every round: the estimate times fib, so it drifts
    with the machine's speed just as the contenders do.
    """

    n: int
    unit: float
    estimates: list[demo.Estimate] = field(default_factory=list)

    def run(self) -> float:
        self.estimates.append(demo.estimate(self.n, self.unit))
        return self.estimates[-1].ideal

    def note(self) -> str:
        cpu = statistics.median(e.cpu for e in self.estimates)
        sequential = statistics.median(e.sequential for e in self.estimates)
        return (
            f"ideal = longest read + fib CPU time / {cpu_count()} cores "
            f"(fib alone: {cpu:.3f} s; sequential run: {sequential:.3f} s)"
        )


def snake_segments(shm_dir: str) -> list[str]:
    """The shared-memory segments and slots of this process's process maps, by path:
    snake names them ``snake-<pid>-`` and more (``snake._workers._pool``)."""
    mine = f"snake-{os.getpid()}-"
    return [os.path.join(shm_dir, n) for n in os.listdir(shm_dir) if n.startswith(mine)]
