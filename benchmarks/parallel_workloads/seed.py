"""(seed) the seed workload of ``snake demo``, against asyncio, raw trio,
torchdata.nodes and DataLoader, relative to its ideal time."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
import trio_parallel
from _harness import Table, check_items, times_row, versus
from _snake_runs import Ideal, demo, seed_collect, seed_expected, seed_iterate

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
    from types import ModuleType

SEED_ITEMS = 100
SEED_UNIT = 0.05
#: torchdata's read threads: as many reads in flight as snake, asyncio and trio allow.
SEED_READ_THREADS = SEED_ITEMS
#: The warm-up round's items.
WARM_ITEMS = 6
GOAL_SEED_IDEAL = 1.1  # snake elapsed / ideal, at most


def read_blocking(i: int) -> int:
    """The seed workload's read, for thread-based loaders."""
    time.sleep((i % 3) * SEED_UNIT)
    return i


def seed_item(i: int) -> int:
    """The seed workload's item ``i``, read and computed in one worker."""
    return demo.fib(demo.fib_input(read_blocking(i)))


def asyncio_pool(n: int, unit: float) -> tuple[float, list[int]]:
    """The seed workload with asyncio: ``gather`` of the reads, then ``run_in_executor``
    on a ``ProcessPoolExecutor(WORKERS)`` per item. The seconds from just before the
    pool starts to its shutdown, and the items."""
    import asyncio
    import concurrent.futures

    async def read(i: int) -> int:
        await asyncio.sleep((i % 3) * unit)
        return i

    async def run() -> tuple[float, list[int]]:
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        with concurrent.futures.ProcessPoolExecutor(WORKERS) as pool:
            read_items = await asyncio.gather(*(read(i) for i in range(n)))
            out = await asyncio.gather(
                *(loop.run_in_executor(pool, demo.fib, demo.fib_input(i)) for i in read_items)
            )
        return time.perf_counter() - began, list(out)

    return asyncio.run(run())


@dataclass
class Seed(PeersWorkload):
    """Records the time to the first item of snake's ``open()`` and of DataLoader."""

    n: int = SEED_ITEMS
    snake_first: list[float] = field(default_factory=list, init=False)
    loader_first: list[float] = field(default_factory=list, init=False)
    ideal: Ideal = field(init=False)

    def __post_init__(self) -> None:
        self.ideal = Ideal(self.n, SEED_UNIT)

    @functools.cached_property
    def expected(self) -> list[int]:
        return seed_expected(self.n)

    def title(self, rounds: int) -> str:
        return (
            f"(seed) seed workload: {self.n} items, async read (i % 3) * {SEED_UNIT} s, "
            f"then fib(22 + i % 5) in {WORKERS} processes; median of {rounds} rounds; "
            "ratio = elapsed / ideal (lower is better)"
        )

    def chart(self) -> str:
        return f"seed workload ({self.n} items)"

    def warm(self) -> Seed:
        return dataclasses.replace(self, n=WARM_ITEMS)

    def contenders(self) -> list[Contender]:
        cs = [
            Contender("ideal (estimate)", self.ideal.run, warm=False),
            Contender("snake, await collect()", self.snake_collect),
            Contender("snake, open() + async for", self.snake_open),
            Contender(f"asyncio + ProcessPoolExecutor({WORKERS})", self.asyncio_pool),
            Contender("trio + trio_parallel", self.raw_trio),
        ]
        if self.offer("torchdata.nodes", "torchdata"):
            cs.append(
                Contender("torchdata.nodes", functools.partial(self.torchdata, self.peers.nodes))
            )
        if self.offer("DataLoader", "torch"):
            cs.append(
                Contender(
                    f"DataLoader(num_workers={WORKERS})",
                    functools.partial(self.dataloader, self.peers.torch),
                )
            )
        return cs

    def judge(self, table: Table) -> None:
        metric, reference = table.metric, table.reference
        assert reference is not None
        _, ours, _, *peers = table.shown
        peers_ok = [c for c in peers if c.ok]
        fastest = min(peers_ok, key=lambda c: c.median) if peers_ok else None
        if ours.ok:
            faster = fastest is None or ours.median < fastest.median
            meets = metric.ratio(ours, reference) <= GOAL_SEED_IDEAL and faster
            table.judge(ours, f"<= {GOAL_SEED_IDEAL:g}x, < every peer", meets)
        for name, firsts in (
            ("snake, open()", self.snake_first),
            ("DataLoader", self.loader_first),
        ):
            if firsts:
                table.rows.append(times_row(f"first item: {name}", firsts))
        if ours.ok and fastest is not None:
            table.notes.append(
                f"snake collect() / fastest peer ({fastest.name}): "
                f"{versus(metric, ours, fastest)}; below 1 is faster"
            )
        if self.ideal.estimates:
            table.notes.append(self.ideal.note())
        table.notes.append(
            "timed from before the workers start to after they stop, fresh workers every run"
            f"{server_note()}; torchdata reads in {SEED_READ_THREADS} threads"
        )

    # --- the contenders ---------------------------------------------------------

    def snake_collect(self) -> float:
        elapsed, out = seed_collect(self.n, SEED_UNIT)
        check_items("snake collect()", out, self.expected)
        return elapsed

    def snake_open(self) -> float:
        elapsed, first, out = seed_iterate(self.n, SEED_UNIT)
        check_items("snake open()", out, self.expected)
        self.snake_first.append(first)
        return elapsed

    def asyncio_pool(self) -> float:
        elapsed, out = asyncio_pool(self.n, SEED_UNIT)
        check_items("asyncio + ProcessPoolExecutor", out, self.expected)
        return elapsed

    def raw_trio(self) -> float:
        async def run() -> tuple[float, list[int]]:
            out: list[int] = [-1] * self.n
            began = time.perf_counter()
            async with trio_parallel.open_worker_context() as context:

                async def one(i: int) -> None:
                    await trio.sleep((i % 3) * SEED_UNIT)
                    out[i] = await context.run_sync(
                        demo.fib, demo.fib_input(i), kill_on_cancel=True
                    )

                async with trio.open_nursery() as nursery:
                    for i in range(self.n):
                        nursery.start_soon(one, i)
            return time.perf_counter() - began, out

        elapsed, out = trio.run(run)
        check_items("trio + trio_parallel", out, self.expected)
        return elapsed

    @frees_nodes
    def torchdata(self, tn: ModuleType) -> float:
        node = tn.IterableWrapper(range(self.n))
        node = tn.ParallelMapper(
            node, read_blocking, num_workers=SEED_READ_THREADS, method="thread"
        )
        node = tn.Mapper(node, demo.fib_input)
        node = tn.ParallelMapper(node, demo.fib, num_workers=WORKERS, method="process")
        loader = tn.Loader(node)
        began = time.perf_counter()
        out = list(loader)
        stop_nodes(node)
        elapsed = time.perf_counter() - began
        check_items("torchdata.nodes", out, self.expected)
        return elapsed

    def dataloader(self, torch: ModuleType) -> float:
        loader = data_loader(torch, self.n, seed_item)
        began = time.perf_counter()
        it = iter(loader)
        out = [next(it)]
        first = time.perf_counter() - began
        out += list(it)  # exhausting it stops the workers
        elapsed = time.perf_counter() - began
        check_items("DataLoader", [int(x) for x in out], self.expected)
        self.loader_first.append(first)
        return elapsed
