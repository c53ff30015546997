"""The seed workload: slow async reads, then naive fib in worker processes."""

from __future__ import annotations

import functools
import time

import attrs
import trio

from .. import Pipeline, from_iterable
from .._workers._options import cpu_count


async def read(i: int, unit: float) -> int:
    """Pretend I/O: item ``i`` takes ``i % 3`` time units to arrive."""
    await trio.sleep((i % 3) * unit)
    return i


def fib(n: int) -> int:
    """Deliberately slow CPU work."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_input(i: int) -> int:
    """What item ``i`` asks fib of: small enough to finish, varied enough to reorder."""
    return 22 + i % 5


def pipeline(items: int, unit: float) -> Pipeline[int]:
    """The seed example as a snake pipeline."""
    return (
        from_iterable(range(items))
        .par_then(functools.partial(read, unit=unit), concurrency=max(1, items))
        .map(fib_input)
        .par_map(fib)
    )


@attrs.frozen
class Estimate:
    """What the workload costs without snake, from timing fib once per input."""

    sleep: float  # all the reads one after another
    longest_sleep: float
    cpu: float  # all the fib calls one after another

    @property
    def sequential(self) -> float:
        return self.sleep + self.cpu

    @property
    def ideal(self) -> float:
        """Reads all at once, fib spread over every core."""
        return self.longest_sleep + self.cpu / cpu_count()


def estimate(items: int, unit: float) -> Estimate:
    """Time fib once for each distinct input and add up what the items need."""
    cost = {}
    for n in {fib_input(i) for i in range(items)}:
        began = time.perf_counter()
        fib(n)
        cost[n] = time.perf_counter() - began
    sleeps = [(i % 3) * unit for i in range(items)]
    return Estimate(
        sleep=sum(sleeps),
        longest_sleep=max(sleeps, default=0.0),
        cpu=sum(cost[fib_input(i)] for i in range(items)),
    )
