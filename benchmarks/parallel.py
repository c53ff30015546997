"""snake against the loaders people use today, side by side in one run.

Six workloads, each printed as a table (cold: two):

(seed)  the seed workload of ``snake demo``: 100 items; item ``i`` is read by
        an async sleep of ``(i % 3) * 0.05`` s, then ``fib(22 + i % 5)`` runs
        in 2 worker processes. Contenders: snake
        (``await snake._apps._demo.pipeline(100, 0.05).collect()``, and the same
        pipeline read through ``open()`` for its time to first item); asyncio
        (``gather`` of the reads, then ``run_in_executor`` on a
        ``ProcessPoolExecutor(2)`` per item); raw trio (a nursery of 100 tasks,
        each reading then calling ``run_sync(fib)`` on a ``trio_parallel``
        worker context of its own); torchdata.nodes (``IterableWrapper`` ->
        ``ParallelMapper(method="thread")`` for the reads -> ``Mapper`` ->
        ``ParallelMapper(method="process", num_workers=2)`` for fib); torch
        ``DataLoader(num_workers=2)`` over a map-style dataset whose
        ``__getitem__`` sleeps, then computes fib. Reference: the ideal from
        ``snake._apps._demo.estimate`` (longest read + fib CPU time / cores),
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
(cold)  what a script started from nothing waits for: every measurement is a
        fresh Python process running a script of ``parallel_workloads``
        (``python _cold_first.py ...``), which times itself and prints its
        timing as a JSON line; a script that fails, runs past 60 s (it is
        then killed) or leaves processes running is reported as failed.
        (cold first item) the script imports torch, then snake, at its top,
        as a training script does, builds a loader of ``double(i) = i * 2``
        (a function of the script) over 100 items and takes its first item:
        timed from just before the loader is built, after the imports, to
        that item; the loader is then shut down and the script exits.
        Contenders: snake ``next(iter(from_iterable(range(100)).par_map(
        double)))``, and the same pipeline read with ``async with p.open()
        as items: await items.receive()`` in ``trio.run``;
        ``next(iter(DataLoader(dataset, batch_size=None, num_workers=2)))``
        over a map-style dataset of the same items (reference); torchdata
        ``ParallelMapper(method="process", num_workers=2)``, without a goal.
        The time the script takes to import torch and snake is shown too,
        and the part of each contender's time spent in the garbage
        collector's passes (the first full pass after ``import torch``
        falls on whoever allocates a few hundred objects first).
        Goal: both snake rows <= 2x DataLoader.
        (cold seed) the seed workload, run once by a script whose top
        imports the standard library alone: timed from just before the
        pipeline or pool starts to the end of the run, its workers stopped.
        Contenders: snake ``collect()`` and asyncio +
        ``ProcessPoolExecutor(2)``, as in (seed). Reference: the ideal,
        estimated in a fresh script too. Goal: snake <= 1.1x the ideal.
        snake's fork server starts inside these timings, as it does in a
        user's script, and loads the script again, with whatever its top
        imports (torch, for the first item). One untimed warm-up round runs
        every script first, so that they run from the operating system's
        file cache: a fresh interpreter, not a fresh machine. snake's
        modules are compiled to bytecode before it, as installing snake
        from a wheel does: an editable install under
        ``PYTHONDONTWRITEBYTECODE`` has none, and each script would compile
        them from source (about 0.04 s), which no installed package pays.

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
    python benchmarks/parallel.py --only cold          # each run a fresh script
    python benchmarks/parallel.py --plot parallel.png  # also a bar chart per table

torch, torchdata and matplotlib come with ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING

from _chart import require_matplotlib, write_plot
from _harness import (
    Count,
    Workload,
    argument_parser,
    print_plan,
    print_platform,
    run_chosen,
    timed_rounds,
)
from parallel_workloads._common import load_peers, snake_start_method
from parallel_workloads.arrays import Arrays, preload_numpy
from parallel_workloads.cold import ColdFirst, ColdSeed
from parallel_workloads.cpu import WORK_SECONDS, Cpu, StartCost, calibrate
from parallel_workloads.first import First
from parallel_workloads.seed import Seed
from parallel_workloads.stage import Stage

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# Only what a snake user's script would import is imported at the top:
# spawned workers, and a fork server, import this script again when they
# start, and must not pay for torch, asyncio and the like.

# --- command line ----------------------------------------------------------------


#: Items in (cpu) and (first), in (stage), and in (arrays).
CPU_ITEMS = Count(full=2_000, quick=1_000)
STAGE_ITEMS = Count(full=200_000, quick=40_000)
ARRAY_ITEMS = Count(full=400, quick=100)
WORKLOADS = ("seed", "cpu", "stage", "first", "arrays", "cold")


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
    cpu_items = CPU_ITEMS.pick(args.quick)
    workloads: dict[str, Workload | tuple[Workload, ...]] = {
        "seed": Seed(peers),
        "cpu": Cpu(peers, n=cpu_items, loops=loops),
        "stage": Stage(peers, n=STAGE_ITEMS.pick(args.quick)),
        "first": First(peers, n=cpu_items, loops=loops),
        "arrays": Arrays(peers, n=ARRAY_ITEMS.pick(args.quick)),
        "cold": (ColdFirst(peers), ColdSeed()),
    }
    tables = run_chosen(workloads, args)
    if args.plot is not None:
        write_plot(args.plot, tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
