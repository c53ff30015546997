"""snake against the loaders people use today, side by side in one run.

Five workloads, each printed as a table:

(seed)  the seed workload of ``snake demo``: 100 items; item ``i`` is read by
        an async sleep of ``(i % 3) * 0.05`` s, then ``fib(22 + i % 5)`` runs
        in 2 worker processes. Contenders: snake
        (``await snake._demo.pipeline(100, 0.05).collect()``, and the same
        pipeline read through ``open()`` for its time to first item); asyncio
        (``gather`` of the reads, then ``run_in_executor`` on a
        ``ProcessPoolExecutor(2)`` per item); raw trio (a nursery of 100 tasks,
        each reading then calling ``run_sync(fib)`` on a ``trio_parallel``
        worker context of its own); torchdata.nodes (``IterableWrapper`` ->
        ``ParallelMapper(method="thread")`` for the reads -> ``Mapper`` ->
        ``ParallelMapper(method="process", num_workers=2)`` for fib); torch
        ``DataLoader(num_workers=2)`` over a map-style dataset whose
        ``__getitem__`` sleeps, then computes fib. Reference: the ideal from
        ``snake._demo.estimate`` (longest read + fib CPU time / cores),
        re-estimated every round. Goal: snake <= 1.1x the ideal and faster
        than every peer. Also the time to the first item of snake and of
        DataLoader.
(cpu)   2,000 items (``--quick``: 1,000) of pure-Python work calibrated at start
        to take about 1 ms, in 2 worker processes. Contenders: a serial loop
        (reference); snake ``from_iterable(range(n)).par_map(work)``,
        collected; ``multiprocessing.Pool(2).imap`` with chunksize 1, 4, 16
        and 64 (the best one is marked); ``DataLoader(num_workers=2,
        batch_size=None)``; torchdata ``ParallelMapper(method="process",
        num_workers=2)``, without and with ``prebatch=16`` (which is
        ``Batcher`` -> ``ParallelMapper`` over lists -> ``Unbatcher``). Goal:
        snake >= 1.8x serial and >= 1.15x the best peer.
(stage) 200,000 ints (``--quick``: 40,000) through five stages that pass
        each item on unchanged: five ``.then(ident)`` stages of snake (an
        async identity), five torchdata ``Mapper`` nodes under a ``Loader``,
        and a chain of five generator expressions (reference), each calling
        an identity function. Goals: snake >= 3x torchdata.nodes and >= 0.4x
        the generator chain.
(first) time to the first item of a 2-worker process map of the cpu
        workload: snake ``par_map(work)`` opened with ``async with
        p.open() as items: await items.receive()``, against
        ``next(iter(DataLoader(num_workers=2)))`` (reference); torchdata and
        ``Pool(2).imap`` are shown without a goal. Goal: snake <= DataLoader.
(arrays) 400 items (``--quick``: 100), item ``i`` a 4 MiB float32 numpy array
        ``np.full(2**20, i)`` made in one of 2 worker processes, consumed in
        the main process in order: its first and last element and its size
        are checked, then it is dropped, so that only one array or a few
        are alive at a time. Contenders: snake
        ``from_iterable(range(n)).par_map(make_array)`` read with ``async with
        p.open() as items: async for a in items`` (large result buffers come
        back through shared memory on Linux); ``DataLoader(batch_size=None,
        num_workers=2)`` over a dataset returning ``torch.from_numpy`` tensors
        (sent through torch's shared memory); torchdata ``ParallelMapper(
        method="process", num_workers=2)`` (arrays pickled through a pipe);
        ``trio_parallel`` ``run_sync(make_array, i)`` from 2 trio tasks in a
        worker context of their own (a pipe as well). Throughput in MB/s
        (items x 4 MiB / seconds, MB = 10^6 bytes). Reference: the better of
        DataLoader and torchdata.nodes, named in the footer. Goal: snake >= 3x
        the reference. numpy is preloaded in snake's fork server, as for a
        script that imports it at its top.

How it is measured: the machine is shared and noisy (single-core speed
switches between two modes about 1.7x apart within seconds), so the
contenders of a workload run interleaved, round-robin (A, B, C, A, B, C, ...),
for ``--repeat`` rounds, after one untimed warm-up round at a small size.
Every contender starts its own worker processes inside the timing, fresh in
every round, and stops them inside it too, as a user's program would:
timings run from just before the pool, loader or pipeline starts to the
moment its workers are stopped (for ``first``, to the first item). Each
contender uses its library's default start method, shown in the header:
snake its own default (``snake.WorkerOptions().start_method``: a fork
server where one exists, started once per interpreter, before the rounds;
that first start is timed apart and printed in the header),
raw trio ``trio_parallel``'s default (spawn), the others
``multiprocessing``'s platform default (fork on Linux before Python 3.14).
Every run's output is checked against the expected values in
order, so a contender that did nothing, or lost or reordered items, cannot
look fast: it is reported as failed, with the reason, and leaves the rounds.
torch and torchdata are optional: without them their contenders are skipped,
with a line saying so.

How to read a table: ``median`` is the median over the rounds, in seconds
(lower is better), items/s or MB/s (higher is better). ``vs ref`` divides the
contender's median by the reference's: elapsed/reference for times, where
below 1 is faster, and a speed ratio for items/s and MB/s, where above 1 is
faster.
``per round`` is the smallest and largest of the same ratio taken within each
round, where both ran close together in time: when it straddles the goal,
the verdict is within the machine's noise. The goal compares medians.

Usage::

    python benchmarks/parallel.py                      # full run, 5 rounds
    python benchmarks/parallel.py --quick              # smaller sizes, 3 rounds
    python benchmarks/parallel.py --only cpu,first --repeat 7
    python benchmarks/parallel.py --plot parallel.png  # also a bar chart per table

torch, torchdata and matplotlib come with ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import _harness
import trio
import trio_parallel
from _harness import (
    Count,
    Metric,
    argument_parser,
    check_items,
    failure_notes,
    print_plan,
    print_platform,
    print_table,
    ratio_text,
    round_robin,
    rows_for,
    span_text,
    timed_rounds,
    times_row,
    warm_up,
)
from _snake_runs import Ideal, seed_collect, seed_expected, seed_iterate, then_collect

import snake
import snake._demo

# Only what a snake user's script would import is imported at the top:
# spawned workers, and a fork server, import this script again when they
# start, and must not pay for torch, asyncio and the like.

#: Worker processes (or slots) every parallel contender gets.
WORKERS = 2
#: The seed workload.
SEED_ITEMS = 100
SEED_UNIT = 0.05
#: torchdata's read threads in the seed workload: as many reads in flight as
#: snake, asyncio and trio allow.
SEED_READ_THREADS = SEED_ITEMS
#: Pure-Python work per item of the cpu workload, in seconds (calibrated).
WORK_SECONDS = 0.001
#: Chunk sizes tried for multiprocessing.Pool.imap.
POOL_CHUNKSIZES = (1, 4, 16, 64)
#: torchdata's pre-batching size.
PREBATCH = 16
#: Stages in the stage-boundary workload.
STAGES = 5
#: Goals.
GOAL_SEED_IDEAL = 1.1  # snake elapsed / ideal, at most
GOAL_CPU_SERIAL = 1.8  # snake items/s / serial, at least
GOAL_CPU_PEER = 1.15  # snake items/s / best peer, at least
GOAL_STAGE_TORCHDATA = 3.0  # snake items/s / torchdata.nodes, at least
GOAL_STAGE_GENERATOR = 0.4  # snake items/s / generator chain, at least
GOAL_FIRST = 1.0  # snake first item / DataLoader first item, at most
GOAL_ARRAYS_PEER = 3.0  # snake MB/s / the better of DataLoader and torchdata, at least
#: The arrays workload: float32 values per array (4 MiB), and what a MB is.
#: Seconds of quiet before each time-to-first-item run, once the workers of
#: the run before have exited: a start measured while another loader's
#: workers still shut down measures them too.
FIRST_SETTLE = 0.3
ARRAY_FLOATS = 2**20
ARRAY_BYTES = 4 * ARRAY_FLOATS
MB = 10**6


# --- the work, at module top level so that it pickles ---------------------------


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


def ident_sync(x: int) -> int:
    return x


def read_blocking(i: int) -> int:
    """The seed workload's read, for thread-based loaders."""
    time.sleep((i % 3) * SEED_UNIT)
    return i


class Dataset:
    """Map-style dataset (``__getitem__`` + ``__len__``): item ``i`` is ``item(i)``."""

    def __init__(self, n: int, item: Callable[[int], Any]) -> None:
        self.n = n
        self.item = item

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.item(i)


def data_loader(torch: ModuleType, n: int, item: Callable[[int], Any]) -> Any:
    """torch's DataLoader over ``Dataset(n, item)``, one item at a time, from the workers."""
    return torch.utils.data.DataLoader(Dataset(n, item), batch_size=None, num_workers=WORKERS)


def seed_item(i: int) -> int:
    """The seed workload's item ``i``, read and computed in one worker."""
    return snake._demo.fib(snake._demo.fib_input(read_blocking(i)))


def make_array(i: int) -> Any:
    """The arrays workload's item ``i``: 4 MiB of float32, every element ``i``."""
    import numpy as np

    return np.full(ARRAY_FLOATS, i, dtype=np.float32)


def array_tensor(i: int) -> Any:
    """``make_array(i)`` as a torch tensor sharing numpy's memory."""
    import torch

    return torch.from_numpy(make_array(i))


# --- optional peers -------------------------------------------------------------


@dataclass
class Peers:
    """torch's DataLoader and torchdata.nodes, where importable."""

    torch: ModuleType | None = None
    nodes: ModuleType | None = None
    missing: dict[str, str] = field(default_factory=dict)

    def skipped(self, what: str, needs: str) -> str | None:
        """Why the contender ``what`` cannot run, or ``None`` if it can."""
        reason = self.missing.get(needs)
        return None if reason is None else f"skipped {what}: {needs} is not importable ({reason})"

    def offer(self, what: str, needs: str, skipped: list[str]) -> bool:
        """Whether the contender ``what`` can run; if not, why joins ``skipped`` (once)."""
        why = self.skipped(what, needs)
        if why is not None and why not in skipped:
            skipped.append(why)
        return why is None


def load_peers() -> Peers:
    peers = Peers()
    try:
        import torch
        import torch.utils.data

        peers.torch = torch
    except Exception as exc:  # ImportError, or a broken install
        peers.missing["torch"] = f"{type(exc).__name__}: {exc}"
    try:
        import torchdata.nodes

        peers.nodes = torchdata.nodes
    except Exception as exc:
        peers.missing["torchdata"] = f"{type(exc).__name__}: {exc}"
    return peers


def stop_nodes(root: Any) -> None:
    """Join torchdata's worker threads and processes now, not at garbage collection.

    A ``ParallelMapper`` signals its workers at the end of its input but joins
    them only in its iterator's ``__del__``; this does that join.
    """
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        shutdown = getattr(node, "_shutdown", None)
        if callable(shutdown):
            shutdown()
        todo += [getattr(node, a, None) for a in ("_it", "source", "root")]


def frees_nodes(run: Callable[..., float]) -> Callable[..., float]:
    """Free a torchdata run's nodes once it returns, outside its timing.

    They sit in reference cycles; left to a later collection, a process forked
    meanwhile inherits them, and their ``__del__`` then fails in the child.
    """

    @functools.wraps(run)
    def wrapper(*args: Any) -> float:
        try:
            return run(*args)
        finally:
            gc.collect()

    return wrapper


# --- running contenders round-robin ---------------------------------------------


class Contender(_harness.Contender):
    """A contender that survives its failures.

    One that raises (a wrong output included) is marked failed and leaves the
    rounds.
    """

    def attempt(self) -> None:
        if self.error is not None:
            return
        try:
            super().attempt()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"  ! {self.name} failed: {self.error}", file=sys.stderr, flush=True)


# --- charts ---------------------------------------------------------------------


@dataclass
class Chart:
    title: str
    unit: str
    bars: list[tuple[str, float, float, float]]  # name, median, min, max
    reference: str | None


CHARTS: list[Chart] = []


def chart(
    title: str,
    metric: Metric,
    contenders: Sequence[Contender],
    ref: Contender | None,
    unit: str | None = None,
):
    if unit is None:
        unit = "seconds (lower is better)" if metric.n is None else "items/s (higher is better)"
    bars = [
        (c.name, metric.median(c), min(metric.values(c)), max(metric.values(c)))
        for c in contenders
        if c.ok
    ]
    CHARTS.append(Chart(title, unit, bars, ref.name if ref is not None else None))


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            f"--plot needs matplotlib, which is not importable ({exc}); "
            'install it with pip install matplotlib, or pip install -e ".[bench]"'
        ) from None


def write_plot(path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = [c for c in CHARTS if c.bars]
    if not charts:
        print(f"\nno chart to plot: {path} not written")
        return
    height = sum(1.2 + 0.35 * len(c.bars) for c in charts)
    fig, axes = plt.subplots(len(charts), 1, figsize=(10, height), squeeze=False)
    for ax, c in zip(axes[:, 0], charts, strict=True):
        names = [b[0] for b in c.bars][::-1]
        medians = [b[1] for b in c.bars][::-1]
        low = [b[1] - b[2] for b in c.bars][::-1]
        high = [b[3] - b[1] for b in c.bars][::-1]
        colours = [
            "tab:green" if n.startswith("snake") else "tab:gray" if n == c.reference else "tab:blue"
            for n in names
        ]
        ax.barh(names, medians, xerr=[low, high], color=colours, capsize=3)
        ax.set_title(c.title, fontsize=10)
        ax.set_xlabel(f"median, {c.unit}; whiskers: fastest and slowest round", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"\nplot written to {path}")


# --- (seed) the seed workload ---------------------------------------------------


@dataclass
class SeedWorkload:
    n: int
    expected: list[int]
    snake_first: list[float] = field(default_factory=list)
    loader_first: list[float] = field(default_factory=list)

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
        import asyncio
        import concurrent.futures

        fib, fib_input = snake._demo.fib, snake._demo.fib_input

        async def read(i: int) -> int:
            await asyncio.sleep((i % 3) * SEED_UNIT)
            return i

        async def run() -> tuple[float, list[int]]:
            loop = asyncio.get_running_loop()
            began = time.perf_counter()
            with concurrent.futures.ProcessPoolExecutor(WORKERS) as pool:
                read_items = await asyncio.gather(*(read(i) for i in range(self.n)))
                out = await asyncio.gather(
                    *(loop.run_in_executor(pool, fib, fib_input(i)) for i in read_items)
                )
            return time.perf_counter() - began, list(out)

        elapsed, out = asyncio.run(run())
        check_items("asyncio + ProcessPoolExecutor", out, self.expected)
        return elapsed

    def raw_trio(self) -> float:
        fib, fib_input = snake._demo.fib, snake._demo.fib_input

        async def run() -> tuple[float, list[int]]:
            out: list[int] = [-1] * self.n
            began = time.perf_counter()
            async with trio_parallel.open_worker_context() as context:

                async def one(i: int) -> None:
                    await trio.sleep((i % 3) * SEED_UNIT)
                    out[i] = await context.run_sync(fib, fib_input(i), kill_on_cancel=True)

                async with trio.open_nursery() as nursery:
                    for i in range(self.n):
                        nursery.start_soon(one, i)
            return time.perf_counter() - began, out

        elapsed, out = trio.run(run)
        check_items("trio + trio_parallel", out, self.expected)
        return elapsed

    @frees_nodes
    def torchdata(self, tn: ModuleType) -> float:
        fib, fib_input = snake._demo.fib, snake._demo.fib_input
        node = tn.IterableWrapper(range(self.n))
        node = tn.ParallelMapper(
            node, read_blocking, num_workers=SEED_READ_THREADS, method="thread"
        )
        node = tn.Mapper(node, fib_input)
        node = tn.ParallelMapper(node, fib, num_workers=WORKERS, method="process")
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


def workload_seed(rounds: int, peers: Peers) -> None:
    skipped: list[str] = []

    def contenders(n: int) -> tuple[SeedWorkload, list[Contender]]:
        w = SeedWorkload(n, seed_expected(n))
        cs = [
            Contender("snake, await collect()", w.snake_collect),
            Contender("snake, open() + async for", w.snake_open),
            Contender(f"asyncio + ProcessPoolExecutor({WORKERS})", w.asyncio_pool),
            Contender("trio + trio_parallel", w.raw_trio),
        ]
        if peers.offer("torchdata.nodes", "torchdata", skipped):
            cs.append(Contender("torchdata.nodes", functools.partial(w.torchdata, peers.nodes)))
        if peers.offer("DataLoader", "torch", skipped):
            cs.append(
                Contender(
                    f"DataLoader(num_workers={WORKERS})",
                    functools.partial(w.dataloader, peers.torch),
                )
            )
        return w, cs

    _, warm = contenders(6)
    warm_up(warm)
    seed, timed = contenders(SEED_ITEMS)
    for c, w in zip(timed, warm, strict=True):
        c.error = w.error
    ideal = Ideal(SEED_ITEMS, SEED_UNIT)
    reference = Contender("ideal (estimate)", ideal.run)
    round_robin([reference, *timed], rounds)

    metric = Metric()
    rows = rows_for(metric, reference, [reference, *timed], "reference")
    ours, peer_cs = timed[0], timed[2:]
    peers_ok = [c for c in peer_cs if c.ok]
    fastest = min(peers_ok, key=lambda c: c.median) if peers_ok else None
    if ours.ok:
        faster = fastest is None or ours.median < fastest.median
        meets = metric.ratio(ours, reference) <= GOAL_SEED_IDEAL and faster
        rows[1].judge(f"<= {GOAL_SEED_IDEAL:g}x, < every peer", meets)
    for name, firsts in (("snake, open()", seed.snake_first), ("DataLoader", seed.loader_first)):
        if firsts:
            rows.append(times_row(f"first item: {name}", firsts))
    notes = []
    if ours.ok and fastest is not None:
        per = metric.ratios(ours, fastest)
        notes.append(
            f"snake collect() / fastest peer ({fastest.name}): "
            f"{ratio_text(metric.ratio(ours, fastest))} (per round {span_text(per)}); "
            "below 1 is faster"
        )
    if ideal.estimates:
        notes.append(ideal.note())
    notes += [
        "timed from before the workers start to after they stop, fresh workers every run"
        f"{server_note()}; torchdata reads in {SEED_READ_THREADS} threads",
        *skipped,
        *failure_notes(timed),
    ]
    print_table(
        f"(seed) seed workload: {SEED_ITEMS} items, async read (i % 3) * {SEED_UNIT} s, "
        f"then fib(22 + i % 5) in {WORKERS} processes; median of {rounds} rounds; "
        "ratio = elapsed / ideal (lower is better)",
        rows,
        notes,
    )
    chart(f"seed workload ({SEED_ITEMS} items)", metric, [reference, *timed], reference)


# --- (cpu) a CPU-bound map -------------------------------------------------------


@dataclass
class CpuWorkload:
    n: int
    loops: int
    expected: list[tuple[int, int]]

    @property
    def work(self) -> Callable[[int], tuple[int, int]]:
        return functools.partial(spin, loops=self.loops)

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
        loader = data_loader(torch, self.n, functools.partial(spin, loops=self.loops))
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


def workload_cpu(n: int, rounds: int, peers: Peers, loops: int) -> None:
    skipped: list[str] = []

    def contenders(size: int) -> tuple[list[Contender], list[Contender]]:
        w = CpuWorkload(size, loops, spin_expected(size, loops))
        cs = [
            Contender("serial (for loop)", w.serial),
            Contender("snake par_map, collect()", w.snake),
            *(
                Contender(f"Pool({WORKERS}).imap, chunksize {k}", functools.partial(w.pool, k))
                for k in POOL_CHUNKSIZES
            ),
        ]
        start = StartCost()
        starts = [
            Contender("snake", start.snake),
            Contender(f"Pool({WORKERS})", start.pool),
        ]
        if peers.offer("DataLoader", "torch", skipped):
            cs.append(
                Contender(
                    f"DataLoader(num_workers={WORKERS})",
                    functools.partial(w.dataloader, peers.torch),
                )
            )
            starts.append(Contender("DataLoader", functools.partial(start.dataloader, peers.torch)))
        if peers.offer("torchdata.nodes", "torchdata", skipped):
            cs.append(
                Contender(
                    "torchdata ParallelMapper(process)",
                    functools.partial(w.torchdata, peers.nodes, None),
                )
            )
            cs.append(
                Contender(
                    f"torchdata ParallelMapper(process), prebatch={PREBATCH}",
                    functools.partial(w.torchdata, peers.nodes, PREBATCH),
                )
            )
            starts.append(Contender("torchdata", functools.partial(start.torchdata, peers.nodes)))
        return cs, starts

    warm, warm_starts = contenders(max(2 * WORKERS, n // 20))
    warm_up([*warm, *warm_starts])
    timed, starts = contenders(n)
    for c, w in zip([*timed, *starts], [*warm, *warm_starts], strict=True):
        c.error = w.error
    round_robin([*timed, *starts], rounds)

    metric = Metric(n)
    reference, ours, peer_cs = timed[0], timed[1], timed[2:]
    rows = rows_for(metric, reference, timed, "reference")
    pools = [c for c in peer_cs if c.name.startswith("Pool") and c.ok]
    if pools:
        best_pool = max(pools, key=metric.median)
        rows[timed.index(best_pool)].contender += " (best chunksize)"
    peers_ok = [c for c in peer_cs if c.ok]
    best = max(peers_ok, key=metric.median) if peers_ok else None
    notes = []
    if ours.ok and reference.ok:
        vs_serial = metric.ratio(ours, reference)
        vs_best = metric.ratio(ours, best) if best is not None else math.inf
        meets = vs_serial >= GOAL_CPU_SERIAL and vs_best >= GOAL_CPU_PEER
        rows[1].judge(f">= {GOAL_CPU_SERIAL:g}x, >= {GOAL_CPU_PEER:g}x best peer", meets)
        if best is not None:
            notes.append(
                f"snake / best peer ({best.name}): {ratio_text(vs_best)} "
                f"(per round {span_text(metric.ratios(ours, best))}); above 1 is faster"
            )
    if reference.ok:
        per_item = reference.median / n
        notes.append(f"work: spin({loops:,} loops) per item, {per_item * 1e3:.2f} ms serially")
    notes.append(
        "workers are started and stopped inside the timing, fresh in every run, for every "
        "contender" + server_note()
    )
    started = [c for c in starts if c.ok]
    if started:
        costs = ", ".join(f"{c.name} {c.median:.3f} s" for c in started)
        notes.append(f"start + stop of {WORKERS} workers with {WORKERS} no-op items: {costs}")
    notes += [*dict.fromkeys(skipped), *failure_notes([*timed, *starts])]  # once each
    print_table(
        f"(cpu) {n:,} items of ~{WORK_SECONDS * 1e3:g} ms pure-Python work, {WORKERS} workers; "
        f"median of {rounds} rounds; ratio = items/s / serial (higher is better)",
        rows,
        notes,
    )
    chart(f"cpu map ({n:,} items of ~1 ms)", metric, timed, reference)


# --- (stage) stage boundaries ------------------------------------------------------


def stage_generators(n: int, expected: list[int]) -> float:
    began = time.perf_counter()
    g: Iterator[int] = iter(range(n))
    for _ in range(STAGES):
        g = (ident_sync(x) for x in g)
    out = list(g)
    elapsed = time.perf_counter() - began
    check_items("generator chain", out, expected)
    return elapsed


def stage_snake(n: int, expected: list[int]) -> float:
    elapsed, out = then_collect(n, STAGES)
    check_items("snake", out, expected)
    return elapsed


@frees_nodes
def stage_torchdata(tn: ModuleType, n: int, expected: list[int]) -> float:
    began = time.perf_counter()
    node = tn.IterableWrapper(range(n))
    for _ in range(STAGES):
        node = tn.Mapper(node, ident_sync)
    out = list(tn.Loader(node))
    elapsed = time.perf_counter() - began
    check_items("torchdata.nodes", out, expected)
    return elapsed


def workload_stage(n: int, rounds: int, peers: Peers) -> None:
    skipped = peers.skipped("torchdata.nodes", "torchdata")

    def contenders(size: int) -> list[Contender]:
        expected = list(range(size))
        cs = [
            Contender(
                f"generator chain, {STAGES} genexprs",
                functools.partial(stage_generators, size, expected),
            ),
            Contender(
                f"snake, {STAGES} .then(ident)", functools.partial(stage_snake, size, expected)
            ),
        ]
        if skipped is None:
            cs.append(
                Contender(
                    f"torchdata.nodes, {STAGES} Mappers",
                    functools.partial(stage_torchdata, peers.nodes, size, expected),
                )
            )
        return cs

    warm = contenders(max(1, n // 20))
    warm_up(warm)
    timed = contenders(n)
    for c, w in zip(timed, warm, strict=True):
        c.error = w.error
    round_robin(timed, rounds)

    metric = Metric(n)
    reference, ours = timed[0], timed[1]
    rows = rows_for(metric, reference, timed, "reference")
    notes = []
    td = timed[2] if len(timed) > 2 else None
    if ours.ok and reference.ok:
        vs_gen = metric.ratio(ours, reference)
        meets = vs_gen >= GOAL_STAGE_GENERATOR
        goal = f">= {GOAL_STAGE_GENERATOR:g}x"
        if td is not None and td.ok:
            vs_td = metric.ratio(ours, td)
            meets = meets and vs_td >= GOAL_STAGE_TORCHDATA
            goal += f", >= {GOAL_STAGE_TORCHDATA:g}x torchdata"
            notes.append(
                f"snake / torchdata.nodes: {ratio_text(vs_td)} "
                f"(per round {span_text(metric.ratios(ours, td))}); above 1 is faster"
            )
        rows[1].judge(goal, meets)
    notes.append(
        "every stage calls an identity function per item (async for snake); "
        "timed from building the chain (snake: trio.run) to the collected list"
    )
    notes += [*([skipped] if skipped else []), *failure_notes(timed)]
    print_table(
        f"(stage) {n:,} ints through {STAGES} identity stages; median of {rounds} rounds; "
        "ratio = items/s / generator chain (higher is better)",
        rows,
        notes,
    )
    chart(f"stage boundary ({n:,} ints, {STAGES} stages)", metric, timed, reference)


# --- (first) time to the first item -------------------------------------------------


@dataclass
class FirstItem:
    n: int
    loops: int

    @property
    def expected(self) -> tuple[int, int]:
        return spin(0, self.loops)

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


def workload_first(n: int, rounds: int, peers: Peers, loops: int) -> None:
    w = FirstItem(n, loops)
    ours = Contender("snake par_map, open() + receive()", w.snake)
    timed = [ours]
    reference: Contender | None = None
    skipped = []
    if peers.offer("DataLoader", "torch", skipped):
        reference = Contender(
            f"DataLoader(num_workers={WORKERS}), next(iter())",
            functools.partial(w.dataloader, peers.torch),
        )
        timed.insert(0, reference)
    if peers.offer("torchdata.nodes", "torchdata", skipped):
        timed.append(
            Contender(
                "torchdata ParallelMapper(process)", functools.partial(w.torchdata, peers.nodes)
            )
        )
    timed.append(Contender(f"Pool({WORKERS}).imap, chunksize 1", w.pool))

    warm_up(timed)
    round_robin(timed, rounds, settle=FIRST_SETTLE)
    metric = Metric()
    rows = rows_for(metric, reference, timed, "reference")
    at = timed.index(ours)
    if ours.ok and reference is not None and reference.ok:
        rows[at].judge(f"<= {GOAL_FIRST:g}x", metric.ratio(ours, reference) <= GOAL_FIRST)
    notes = [
        f"timed from before the workers start to the first item of {n:,} "
        f"(spin({loops:,} loops) each); the workers are stopped after the timing, and "
        f"each run starts {FIRST_SETTLE:g} s after the workers of the run before exited",
        f"start methods: snake {snake_start_method()}; the others "
        f"{multiprocessing.get_start_method()}",
        *skipped,
        *failure_notes(timed),
    ]
    print_table(
        f"(first) time to the first item of a {WORKERS}-worker process map; "
        f"median of {rounds} rounds; ratio = time / DataLoader's (lower is better)",
        rows,
        notes,
    )
    chart("time to first item", metric, timed, reference)


# --- (arrays) large arrays back from the workers ------------------------------------


@dataclass
class Throughput(Metric):
    """MB/s for ``n`` items of ``item_bytes`` each (higher is better)."""

    item_bytes: int = ARRAY_BYTES

    def values(self, c: Contender) -> list[float]:
        total = (self.n or 0) * self.item_bytes / MB
        return [total / s for s in c.seconds]

    def text(self, value: float) -> str:
        return f"{value:,.0f} MB/s"


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
class ArraysWorkload:
    """Every contender keeps only ``array_ends`` of each array, in order, and drops it."""

    n: int

    @property
    def expected(self) -> list[tuple[int, int, int]]:
        return [(i, i, ARRAY_BYTES) for i in range(self.n)]

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


def workload_arrays(n: int, rounds: int, peers: Peers) -> None:
    skipped: list[str] = []

    def contenders(size: int) -> tuple[list[Contender], list[Contender]]:
        w = ArraysWorkload(size)
        cs = [Contender("snake par_map, open() + async for", w.snake)]
        loaders = []
        if peers.offer("DataLoader", "torch", skipped):
            loaders.append(
                Contender(
                    f"DataLoader(num_workers={WORKERS}), tensors",
                    functools.partial(w.dataloader, peers.torch),
                )
            )
        if peers.offer("torchdata.nodes", "torchdata", skipped):
            loaders.append(
                Contender(
                    "torchdata ParallelMapper(process)",
                    functools.partial(w.torchdata, peers.nodes),
                )
            )
        cs += loaders
        cs.append(Contender(f"trio_parallel.run_sync, {WORKERS} tasks", w.raw_trio))
        return cs, loaders

    warm, _ = contenders(max(2 * WORKERS, n // 20))
    warm_up(warm)
    timed, loaders = contenders(n)
    for c, w in zip(timed, warm, strict=True):
        c.error = w.error
    round_robin(timed, rounds)

    metric = Throughput(n)
    ours = timed[0]
    ran = [c for c in loaders if c.ok]
    reference = max(ran, key=metric.median) if ran else None
    rows = rows_for(metric, reference, timed, "reference")
    notes = []
    if reference is not None:
        others = [c for c in ran if c is not reference]
        than = f" (ahead of {others[0].name})" if others else ""
        notes.append(
            f"reference: the better of DataLoader and torchdata.nodes by median MB/s, "
            f"here {reference.name}{than}"
        )
        if ours.ok:
            rows[0].judge(
                f">= {GOAL_ARRAYS_PEER:g}x best of DataLoader/torchdata",
                metric.ratio(ours, reference) >= GOAL_ARRAYS_PEER,
            )
    else:
        notes.append("no reference: neither DataLoader nor torchdata.nodes ran, snake not judged")
    notes += [
        "item i: np.full(2**20, i, float32) (4 MiB) made in a worker; the main process "
        "checks its first and last element and its size, in order, then drops it; "
        "MB = 10^6 bytes",
        "results travel: snake through shared memory (Linux); DataLoader as torch tensors "
        "in torch's shared memory; torchdata.nodes and trio_parallel pickled through a pipe",
        "workers are started and stopped inside the timing, fresh in every run, for every "
        "contender" + server_note() + "; trio_parallel in its own open_worker_context()",
    ]
    if "forkserver" in snake_start_method():
        notes.append(
            "numpy is preloaded in snake's fork server, as for a script importing it at its "
            "top; DataLoader's and torchdata's forked workers inherit it from the main "
            "process; trio_parallel's spawned workers import it in every run"
        )
    notes += [*skipped, *failure_notes(timed)]
    print_table(
        f"(arrays) {n:,} arrays of 4 MiB from {WORKERS} workers; median of {rounds} rounds; "
        "ratio = MB/s / reference (higher is better)",
        rows,
        notes,
    )
    chart(
        f"large arrays ({n:,} x 4 MiB)",
        metric,
        timed,
        reference,
        unit="MB/s (higher is better)",
    )


# --- command line ----------------------------------------------------------------


#: Items in (cpu) and (first), in (stage), and in (arrays).
CPU_ITEMS = Count(full=2_000, quick=1_000)
STAGE_ITEMS = Count(full=200_000, quick=40_000)
ARRAY_ITEMS = Count(full=400, quick=100)
WORKLOADS = ("seed", "cpu", "stage", "first", "arrays")


def _parser() -> argparse.ArgumentParser:
    parser = argument_parser(
        "snake against asyncio, trio_parallel, multiprocessing, torch DataLoader "
        "and torchdata.nodes (see the module docstring for how to read the tables).",
        WORKLOADS,
        f"cpu: {CPU_ITEMS.quick:,} items, stage: {STAGE_ITEMS.quick:,}, "
        f"arrays: {ARRAY_ITEMS.quick:,}",
    )
    parser.add_argument(
        "--plot",
        metavar="PATH.png",
        default=None,
        help="also write one bar chart per workload into this PNG (needs matplotlib)",
    )
    return parser


def snake_start_method() -> str:
    """How snake starts worker processes by default."""
    options = getattr(snake, "WorkerOptions", None)
    return "spawn (trio_parallel's default)" if options is None else options().start_method


def server_note() -> str:
    """Said wherever snake's fresh workers come from a fork server started earlier."""
    if "forkserver" not in snake_start_method():
        return ""
    return " (snake's are forked from its fork server, started once before the rounds)"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.plot is not None:
        require_matplotlib()
    rounds = timed_rounds(args)
    peers = load_peers()
    print_platform("torch", "torchdata")
    print(
        f"start methods: snake {snake_start_method()}; raw trio_parallel spawn; "
        "multiprocessing, ProcessPoolExecutor, DataLoader, torchdata "
        f"{multiprocessing.get_start_method()}"
    )
    for needs, reason in peers.missing.items():
        print(f"{needs} is not importable ({reason}): its contenders are skipped")
    print_plan(args.quick, rounds)
    if "arrays" in args.only:
        preload_numpy()  # before snake's fork server starts
    if {"seed", "cpu", "first", "arrays"} & set(args.only):
        # The first process map of an interpreter may start more than its
        # workers (a fork server): timed here, apart from the workloads.
        first, later = StartCost().snake(), StartCost().snake()
        print(
            f"snake's first process map in this interpreter: start + stop {first:.3f} s "
            f"(the next one: {later:.3f} s)"
        )
    loops = calibrate(WORK_SECONDS) if {"cpu", "first"} & set(args.only) else 0
    if "seed" in args.only:
        workload_seed(rounds, peers)
    if "cpu" in args.only:
        workload_cpu(CPU_ITEMS.pick(args.quick), rounds, peers, loops)
    if "stage" in args.only:
        workload_stage(STAGE_ITEMS.pick(args.quick), rounds, peers)
    if "first" in args.only:
        workload_first(CPU_ITEMS.pick(args.quick), rounds, peers, loops)
    if "arrays" in args.only:
        workload_arrays(ARRAY_ITEMS.pick(args.quick), rounds, peers)
    if args.plot is not None:
        write_plot(args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
