"""(first) the time to the first item of a 2-worker process map of the cpu workload's
work: snake against DataLoader (the reference), torchdata.nodes and ``Pool.imap``."""

from __future__ import annotations

import functools
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import _harness
import trio
from _harness import Table, check_items

import snake

from ._common import (
    WORKERS,
    Contender,
    PeersWorkload,
    data_loader,
    frees_nodes,
    snake_start_method,
    stop_nodes,
)
from .cpu import spin

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

#: Seconds of quiet before each run, once the workers of the run before have
#: exited: a start measured while another loader's workers still shut down
#: measures them too.
FIRST_SETTLE = 0.3
GOAL_FIRST = 1.0  # snake first item / DataLoader first item, at most


@dataclass
class First(PeersWorkload):
    """The first item of ``n`` of ``spin(i, loops)``; the reference is DataLoader's."""

    n: int
    loops: int
    ours: Contender = field(init=False)
    loader: Contender | None = field(default=None, init=False)  # the reference

    settle = FIRST_SETTLE

    @property
    def expected(self) -> tuple[int, int]:
        return spin(0, self.loops)

    def title(self, rounds: int) -> str:
        return (
            f"(first) time to the first item of a {WORKERS}-worker process map; "
            f"median of {rounds} rounds; ratio = time / DataLoader's (lower is better)"
        )

    def chart(self) -> str:
        return "time to first item"

    def contenders(self) -> list[Contender]:
        self.ours = Contender("snake par_map, open() + receive()", self.snake)
        timed = [self.ours]
        self.loader = None
        if self.offer("DataLoader", "torch"):
            self.loader = Contender(
                f"DataLoader(num_workers={WORKERS}), next(iter())",
                functools.partial(self.dataloader, self.peers.torch),
            )
            timed.insert(0, self.loader)
        if self.offer("torchdata.nodes", "torchdata"):
            timed.append(
                Contender(
                    "torchdata ParallelMapper(process)",
                    functools.partial(self.torchdata, self.peers.nodes),
                )
            )
        timed.append(Contender(f"Pool({WORKERS}).imap, chunksize 1", self.pool))
        return timed

    def reference(self, timed: Sequence[_harness.Contender]) -> Contender | None:
        return self.loader

    def judge(self, table: Table) -> None:
        metric, reference, ours = table.metric, table.reference, self.ours
        if ours.ok and reference is not None and reference.ok:
            table.judge(ours, f"<= {GOAL_FIRST:g}x", metric.ratio(ours, reference) <= GOAL_FIRST)
        table.notes += [
            f"timed from before the workers start to the first item of {self.n:,} "
            f"(spin({self.loops:,} loops) each); the workers are stopped after the timing, "
            f"and each run starts {FIRST_SETTLE:g} s after the workers of the run before "
            "exited",
            f"start methods: snake {snake_start_method()}; the others "
            f"{multiprocessing.get_start_method()}",
        ]

    # --- the contenders ---------------------------------------------------------

    def snake(self) -> float:
        pipeline = snake.from_iterable(range(self.n)).par_map(
            functools.partial(spin, loops=self.loops)
        )

        async def run() -> tuple[float, tuple[int, int]]:
            began = time.perf_counter()
            async with pipeline.open() as items:
                first = await items.receive()
                elapsed = time.perf_counter() - began
            return elapsed, first

        elapsed, first = trio.run(run)
        check_items("snake", [first], [self.expected])
        return elapsed

    def dataloader(self, torch: ModuleType) -> float:
        loader = data_loader(torch, self.n, functools.partial(spin, loops=self.loops))
        began = time.perf_counter()
        it = iter(loader)
        first = next(it)
        elapsed = time.perf_counter() - began
        del it  # stops the workers
        check_items("DataLoader", [tuple(first)], [self.expected])
        return elapsed

    @frees_nodes
    def torchdata(self, tn: ModuleType) -> float:
        node = tn.ParallelMapper(
            tn.IterableWrapper(range(self.n)),
            functools.partial(spin, loops=self.loops),
            num_workers=WORKERS,
            method="process",
        )
        began = time.perf_counter()
        first = next(iter(tn.Loader(node)))
        elapsed = time.perf_counter() - began
        stop_nodes(node)
        check_items("torchdata.nodes", [first], [self.expected])
        return elapsed

    def pool(self) -> float:
        began = time.perf_counter()
        with multiprocessing.Pool(WORKERS) as pool:
            first = next(pool.imap(functools.partial(spin, loops=self.loops), range(self.n)))
            elapsed = time.perf_counter() - began
        check_items("Pool.imap", [first], [self.expected])
        return elapsed
