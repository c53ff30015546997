"""(arrays) 4 MiB float32 numpy arrays made in 2 worker processes and consumed in
order, in MB/s: snake against DataLoader, torchdata.nodes and plain trio_parallel."""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import _harness
import trio
import trio_parallel
from _harness import Metric, Table, check_items

import snake

from ._common import (
    WORKERS,
    Contender,
    PeersWorkload,
    data_loader,
    frees_nodes,
    server_note,
    snake_start_method,
    stop_nodes,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

#: float32 values per array (4 MiB), and what a MB is.
ARRAY_FLOATS = 2**20
ARRAY_BYTES = 4 * ARRAY_FLOATS
MB = 10**6
GOAL_ARRAYS_PEER = 3.0  # snake MB/s / the better of DataLoader and torchdata, at least


def make_array(i: int) -> Any:
    """Item ``i``: 4 MiB of float32, every element ``i``."""
    import numpy as np

    return np.full(ARRAY_FLOATS, i, dtype=np.float32)


def array_tensor(i: int) -> Any:
    """``make_array(i)`` as a torch tensor sharing numpy's memory."""
    import torch

    return torch.from_numpy(make_array(i))


def array_ends(a: Any) -> tuple[int, int, int]:
    """An array's (or tensor's) first and last element, and its size in bytes."""
    return int(a[0]), int(a[-1]), int(a.nbytes)


def preload_numpy() -> None:
    """Have snake's fork server import numpy, as it does for a script importing it at
    its top (this one imports it lazily, for the other workloads' workers); the
    other loaders fork from the main process, which has it once torch is imported."""
    if "forkserver" in snake_start_method():
        multiprocessing.get_context("forkserver").set_forkserver_preload(["numpy"])


@dataclass
class Throughput(Metric):
    """MB/s for ``n`` items of ``item_bytes`` each (higher is better)."""

    item_bytes: int = ARRAY_BYTES

    def values(self, c: _harness.Contender) -> list[float]:
        total = (self.n or 0) * self.item_bytes / MB
        return [total / s for s in c.seconds]

    def text(self, value: float) -> str:
        return f"{value:,.0f} MB/s"

    @property
    def unit(self) -> str:
        return "MB/s (higher is better)"


@dataclass
class Arrays(PeersWorkload):
    """Every contender keeps only ``array_ends`` of each array, in order, and drops it."""

    n: int
    loaders: list[Contender] = field(default_factory=list, init=False)

    @property
    def expected(self) -> list[tuple[int, int, int]]:
        return [(i, i, ARRAY_BYTES) for i in range(self.n)]

    def title(self, rounds: int) -> str:
        return (
            f"(arrays) {self.n:,} arrays of 4 MiB from {WORKERS} workers; "
            f"median of {rounds} rounds; ratio = MB/s / reference (higher is better)"
        )

    def chart(self) -> str:
        return f"large arrays ({self.n:,} x 4 MiB)"

    def metric(self) -> Throughput:
        return Throughput(self.n)

    def warm(self) -> Arrays:
        return dataclasses.replace(self, n=max(2 * WORKERS, self.n // 20))

    def contenders(self) -> list[Contender]:
        self.loaders = []
        if self.offer("DataLoader", "torch"):
            self.loaders.append(
                Contender(
                    f"DataLoader(num_workers={WORKERS}), tensors",
                    functools.partial(self.dataloader, self.peers.torch),
                )
            )
        if self.offer("torchdata.nodes", "torchdata"):
            self.loaders.append(
                Contender(
                    "torchdata ParallelMapper(process)",
                    functools.partial(self.torchdata, self.peers.nodes),
                )
            )
        return [
            Contender("snake par_map, open() + async for", self.snake),
            *self.loaders,
            Contender(f"trio_parallel.run_sync, {WORKERS} tasks", self.raw_trio),
        ]

    def reference(self, timed: Sequence[_harness.Contender]) -> Contender | None:
        """The better of DataLoader and torchdata.nodes."""
        ran = [c for c in self.loaders if c.ok]
        return max(ran, key=self.metric().median) if ran else None

    def judge(self, table: Table) -> None:
        metric, reference, ours = table.metric, table.reference, table.shown[0]
        if reference is not None:
            others = [c for c in self.loaders if c.ok and c is not reference]
            than = f" (ahead of {others[0].name})" if others else ""
            table.notes.append(
                f"reference: the better of DataLoader and torchdata.nodes by median MB/s, "
                f"here {reference.name}{than}"
            )
            if ours.ok:
                table.judge(
                    ours,
                    f">= {GOAL_ARRAYS_PEER:g}x best of DataLoader/torchdata",
                    metric.ratio(ours, reference) >= GOAL_ARRAYS_PEER,
                )
        else:
            table.notes.append(
                "no reference: neither DataLoader nor torchdata.nodes ran, snake not judged"
            )
        table.notes += [
            "item i: np.full(2**20, i, float32) (4 MiB) made in a worker; the main process "
            "checks its first and last element and its size, in order, then drops it; "
            "MB = 10^6 bytes",
            "results travel: snake through shared memory (Linux); DataLoader as torch tensors "
            "in torch's shared memory; torchdata.nodes and trio_parallel pickled through a pipe",
            "workers are started and stopped inside the timing, fresh in every run, for every "
            "contender" + server_note() + "; trio_parallel in its own open_worker_context()",
        ]
        if "forkserver" in snake_start_method():
            table.notes.append(
                "numpy is preloaded in snake's fork server, as for a script importing it at its "
                "top; DataLoader's and torchdata's forked workers inherit it from the main "
                "process; trio_parallel's spawned workers import it in every run"
            )

    # --- the contenders ---------------------------------------------------------

    def snake(self) -> float:
        pipeline = snake.from_iterable(range(self.n)).par_map(make_array)

        async def run() -> tuple[float, list[tuple[int, int, int]]]:
            out = []
            began = time.perf_counter()
            async with pipeline.open() as items:
                async for a in items:
                    out.append(array_ends(a))
                    del a
            return time.perf_counter() - began, out

        elapsed, out = trio.run(run)
        check_items("snake", out, self.expected)
        return elapsed

    def dataloader(self, torch: ModuleType) -> float:
        loader = data_loader(torch, self.n, array_tensor)
        out = []
        began = time.perf_counter()
        for t in loader:  # exhausting it stops the workers
            out.append(array_ends(t))
            del t
        elapsed = time.perf_counter() - began
        check_items("DataLoader", out, self.expected)
        return elapsed

    @frees_nodes
    def torchdata(self, tn: ModuleType) -> float:
        node = tn.ParallelMapper(
            tn.IterableWrapper(range(self.n)), make_array, num_workers=WORKERS, method="process"
        )
        loader = tn.Loader(node)
        out = []
        began = time.perf_counter()
        for a in loader:
            out.append(array_ends(a))
            del a
        stop_nodes(node)
        elapsed = time.perf_counter() - began
        check_items("torchdata.nodes", out, self.expected)
        return elapsed

    def raw_trio(self) -> float:
        """``WORKERS`` tasks, task ``k`` fetching items ``k, k + WORKERS, ...``; each
        waits for the item before its own to be consumed, so they are consumed in order."""

        async def run() -> tuple[float, list[tuple[int, int, int]]]:
            out: list[tuple[int, int, int]] = []
            turn = [trio.Event() for _ in range(self.n + 1)]
            turn[0].set()
            began = time.perf_counter()
            async with trio_parallel.open_worker_context() as context:

                async def fetch(first: int) -> None:
                    for i in range(first, self.n, WORKERS):
                        a = await context.run_sync(make_array, i, kill_on_cancel=True)
                        await turn[i].wait()
                        out.append(array_ends(a))
                        del a
                        turn[i + 1].set()

                async with trio.open_nursery() as nursery:
                    for k in range(WORKERS):
                        nursery.start_soon(fetch, k)
            return time.perf_counter() - began, out

        elapsed, out = trio.run(run)
        check_items("trio + trio_parallel", out, self.expected)
        return elapsed
