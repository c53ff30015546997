"""(cpu) a CPU-bound map of about 1 ms of pure Python per item, in 2 worker processes,
against serial, ``multiprocessing.Pool.imap``, DataLoader and torchdata.nodes; and the
work, ``spin``, at module top level so that it pickles."""

from __future__ import annotations

import dataclasses
import functools
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import _harness
import trio
from _harness import Metric, Table, check_items, versus

import snake

from ._common import (
    WORKERS,
    Contender,
    PeersWorkload,
    data_loader,
    frees_nodes,
    server_note,
    stop_nodes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

#: Pure-Python work per item, in seconds (calibrated).
WORK_SECONDS = 0.001
#: Chunk sizes tried for multiprocessing.Pool.imap.
POOL_CHUNKSIZES = (1, 4, 16, 64)
#: torchdata's pre-batching size.
PREBATCH = 16
GOAL_CPU_SERIAL = 1.8  # snake items/s / serial, at least
GOAL_CPU_PEER = 1.15  # snake items/s / best peer, at least


def spin(i: int, loops: int) -> tuple[int, int]:
    """About ``loops`` steps of pure-Python arithmetic; ``(i, a value of i % 97)``."""
    x = i % 97
    for _ in range(loops):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return i, x


def calibrate(seconds: float) -> int:
    """How many ``spin`` loops take about ``seconds`` (the fastest of a few tries)."""
    probe = 20_000
    best = math.inf
    for _ in range(7):
        began = time.perf_counter()
        spin(0, probe)
        best = min(best, time.perf_counter() - began)
    return max(1, round(probe * seconds / best))


def spin_expected(n: int, loops: int) -> list[tuple[int, int]]:
    values = {r: spin(r, loops)[1] for r in range(min(n, 97))}
    return [(i, values[i % 97]) for i in range(n)]


def noop(x: int) -> int:
    return x


@dataclass
class Cpu(PeersWorkload):
    """``n`` items of ``spin(i, loops)``; the reference is the serial loop."""

    n: int
    loops: int
    #: Timed with the others, shown in a note: the cost of starting the workers.
    starts: list[Contender] = field(default_factory=list, init=False)

    @functools.cached_property
    def expected(self) -> list[tuple[int, int]]:
        return spin_expected(self.n, self.loops)

    @property
    def work(self) -> Callable[[int], tuple[int, int]]:
        return functools.partial(spin, loops=self.loops)

    def title(self, rounds: int) -> str:
        return (
            f"(cpu) {self.n:,} items of ~{WORK_SECONDS * 1e3:g} ms pure-Python work, "
            f"{WORKERS} workers; median of {rounds} rounds; "
            "ratio = items/s / serial (higher is better)"
        )

    def chart(self) -> str:
        return f"cpu map ({self.n:,} items of ~1 ms)"

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Cpu:
        return dataclasses.replace(self, n=max(2 * WORKERS, self.n // 20))

    def contenders(self) -> list[Contender]:
        cs = [
            Contender("serial (for loop)", self.serial),
            Contender("snake par_map, collect()", self.snake),
            *(
                Contender(f"Pool({WORKERS}).imap, chunksize {k}", functools.partial(self.pool, k))
                for k in POOL_CHUNKSIZES
            ),
        ]
        start = StartCost()
        self.starts = [Contender("snake", start.snake), Contender(f"Pool({WORKERS})", start.pool)]
        if self.offer("DataLoader", "torch"):
            loader = functools.partial(self.dataloader, self.peers.torch)
            cs.append(Contender(f"DataLoader(num_workers={WORKERS})", loader))
            loader_start = functools.partial(start.dataloader, self.peers.torch)
            self.starts.append(Contender("DataLoader", loader_start))
        if self.offer("torchdata.nodes", "torchdata"):
            for prebatch, suffix in ((None, ""), (PREBATCH, f", prebatch={PREBATCH}")):
                nodes = functools.partial(self.torchdata, self.peers.nodes, prebatch)
                cs.append(Contender(f"torchdata ParallelMapper(process){suffix}", nodes))
            nodes_start = functools.partial(start.torchdata, self.peers.nodes)
            self.starts.append(Contender("torchdata", nodes_start))
        return [*cs, *self.starts]

    def shown(
        self, timed: Sequence[_harness.Contender], reference: _harness.Contender | None
    ) -> list[_harness.Contender]:
        """All but the start costs, which a note gives."""
        return list(timed[: len(timed) - len(self.starts)])

    def judge(self, table: Table) -> None:
        metric = table.metric
        reference, ours, *peers = table.shown
        pools = [c for c in peers if c.name.startswith("Pool") and c.ok]
        if pools:
            best_pool = max(pools, key=metric.median)
            table.row(best_pool).contender += " (best chunksize)"
        peers_ok = [c for c in peers if c.ok]
        best = max(peers_ok, key=metric.median) if peers_ok else None
        if ours.ok and reference.ok:
            vs_serial = metric.ratio(ours, reference)
            vs_best = metric.ratio(ours, best) if best is not None else math.inf
            meets = vs_serial >= GOAL_CPU_SERIAL and vs_best >= GOAL_CPU_PEER
            table.judge(ours, f">= {GOAL_CPU_SERIAL:g}x, >= {GOAL_CPU_PEER:g}x best peer", meets)
            if best is not None:
                table.notes.append(
                    f"snake / best peer ({best.name}): {versus(metric, ours, best)}; "
                    "above 1 is faster"
                )
        if reference.ok:
            per_item = reference.median / self.n
            table.notes.append(
                f"work: spin({self.loops:,} loops) per item, {per_item * 1e3:.2f} ms serially"
            )
        table.notes.append(
            "workers are started and stopped inside the timing, fresh in every run, for every "
            "contender" + server_note()
        )
        started = [c for c in self.starts if c.ok]
        if started:
            costs = ", ".join(f"{c.name} {c.median:.3f} s" for c in started)
            table.notes.append(
                f"start + stop of {WORKERS} workers with {WORKERS} no-op items: {costs}"
            )

    # --- the contenders ---------------------------------------------------------

    def serial(self) -> float:
        work = self.work
        began = time.perf_counter()
        out = [work(i) for i in range(self.n)]
        elapsed = time.perf_counter() - began
        check_items("serial", out, self.expected)
        return elapsed

    def snake(self) -> float:
        pipeline = snake.from_iterable(range(self.n)).par_map(self.work)
        began = time.perf_counter()
        out = trio.run(pipeline.collect)
        elapsed = time.perf_counter() - began
        check_items("snake", out, self.expected)
        return elapsed

    def pool(self, chunksize: int) -> float:
        began = time.perf_counter()
        with multiprocessing.Pool(WORKERS) as pool:
            out = list(pool.imap(self.work, range(self.n), chunksize=chunksize))
        elapsed = time.perf_counter() - began
        check_items(f"Pool.imap chunksize {chunksize}", out, self.expected)
        return elapsed

    def dataloader(self, torch: ModuleType) -> float:
        loader = data_loader(torch, self.n, self.work)
        began = time.perf_counter()
        out = list(loader)
        elapsed = time.perf_counter() - began
        check_items("DataLoader", [tuple(x) for x in out], self.expected)
        return elapsed

    @frees_nodes
    def torchdata(self, tn: ModuleType, prebatch: int | None) -> float:
        node = tn.ParallelMapper(
            tn.IterableWrapper(range(self.n)),
            self.work,
            num_workers=WORKERS,
            method="process",
            prebatch=prebatch,
        )
        loader = tn.Loader(node)
        began = time.perf_counter()
        out = list(loader)
        stop_nodes(node)
        elapsed = time.perf_counter() - began
        check_items("torchdata.nodes", out, self.expected)
        return elapsed


@dataclass
class StartCost:
    """Starting and stopping 2 idle workers: 2 no-op items through each loader."""

    n: int = WORKERS

    def snake(self) -> float:
        pipeline = snake.from_iterable(range(self.n)).par_map(noop)
        began = time.perf_counter()
        out = trio.run(pipeline.collect)
        elapsed = time.perf_counter() - began
        check_items("snake start", out, list(range(self.n)))
        return elapsed

    def pool(self) -> float:
        began = time.perf_counter()
        with multiprocessing.Pool(WORKERS) as pool:
            out = pool.map(noop, range(self.n), chunksize=1)
        elapsed = time.perf_counter() - began
        check_items("Pool start", out, list(range(self.n)))
        return elapsed

    def dataloader(self, torch: ModuleType) -> float:
        loader = data_loader(torch, self.n, noop)
        began = time.perf_counter()
        out = list(loader)
        elapsed = time.perf_counter() - began
        check_items("DataLoader start", [int(x) for x in out], list(range(self.n)))
        return elapsed

    @frees_nodes
    def torchdata(self, tn: ModuleType) -> float:
        node = tn.ParallelMapper(
            tn.IterableWrapper(range(self.n)), noop, num_workers=WORKERS, method="process"
        )
        began = time.perf_counter()
        out = list(tn.Loader(node))
        stop_nodes(node)
        elapsed = time.perf_counter() - began
        check_items("torchdata start", out, list(range(self.n)))
        return elapsed
