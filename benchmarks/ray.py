"""snake's Ray executor against Ray Data, and against snake's own process executor,
side by side in one run, on one local Ray.

The script starts one local Ray itself, ``ray.init(num_cpus=2,
include_dashboard=False)`` (the time it takes is printed), which snake's
``par_map(..., executor="ray")`` and Ray Data both use, and shuts it down at
the end: the script fails if a process of that Ray is left. Four workloads,
each printed as a table:

(cpu)    2,000 items (``--quick``: 1,000) of the cpu workload of
         ``parallel_workloads/cpu.py``: ``spin(i, loops)``, pure-Python work
         calibrated at start to take about 1 ms. Contenders: snake
         ``from_iterable(range(n)).par_map(work, executor="ray")`` collected
         (``trio.run(pipeline.collect)``); Ray Data
         ``ray.data.range(n).map_batches(spin_batch, batch_size=...)``, which
         applies the same work to each id of a batch, read to its end with
         ``iter_rows()`` in this process, with the default batch size (None: a
         whole block) and two others (the best one is marked, and is the
         reference); snake's own ``par_map(work, executor="process",
         concurrency=2)``, collected. Items/s. Goals: snake's Ray executor >=
         1.2x the best Ray Data, and >= 0.8x snake's process executor.
(first)  time to the first item of the same map of ``n`` items on Ray: snake
         ``async with pipeline.open() as items: await items.receive()`` in
         ``trio.run``, and ``next(iter(pipeline))``; Ray Data
         ``next(iter(ds.iter_rows()))`` with the default batch size
         (reference). Timed from before the pipeline or dataset is built to
         the first item; it is then stopped (snake leaves ``open()`` or closes
         its iterator, Ray Data's iterator is closed), outside the timing.
         Goal: both snake rows <= 0.5x Ray Data's time.
(arrays) 400 items (``--quick``: 100), item ``i`` a 4 MiB float32 array
         ``np.full(2**20, i)`` made on a Ray worker (or a worker process),
         consumed one at a time in this process: its first and last element
         and its size are checked, then it is dropped. Contenders: snake
         ``par_map(make_array, executor="ray")`` read with ``async with
         p.open() as items: async for a in items``; Ray Data
         ``ray.data.range(n).map(array_row)`` (a row ``{"id", "a"}``) and
         ``.map_batches(array_batch, batch_size=1)``, each read with
         ``iter_rows()`` (the better one is the reference); snake's process
         executor, as the cpu workload's, read as snake's Ray map. MB/s
         (items x 4 MiB / seconds, MB = 10^6 bytes). No goal.
(cancel) what stopping a snake Ray map costs: ``par_map(sleep_item,
         executor="ray")`` over items that each sleep 60 s, opened with
         ``open()``; once two Ray workers run a job of it (a Ray worker
         running a snake job is titled ``ray::run_job``), the block is
         left, which cancels the run. Timed from leaving the block to (1) no
         Ray worker of this Ray titled ``ray::run_job`` (a thread polls
         ``/proc/PID/cmdline`` of the busy workers every millisecond), and (2)
         ``open()`` having exited. No goal.

How it is measured: the machine is shared and noisy, so the contenders of a
workload run interleaved, round-robin (A, B, C, A, B, C, ...), for
``--repeat`` rounds, after one untimed warm-up round (at a small size for cpu
and arrays). Before every run, outside its timing, the run before has
stopped (no Ray worker of this Ray still runs a task of a benchmark or is
starting, and snake's worker processes have exited), then two Ray tasks at
once, one per CPU, import in the two Ray workers they land on what the
contenders' tasks import (snake's task module, ray.data, pyarrow, pandas,
numpy; again until they land on two distinct workers), and 0.2 s pass. Every
run then starts on two warm Ray workers, whichever contender ran before: a
run stopped early, by snake or Ray Data, has Ray kill the workers of its
tasks in flight, and the next run would otherwise pay for starting new ones
(the (first) and (cancel) notes count them). snake's process executor starts
its 2 worker processes inside its timing, from snake's fork server, started
once before the rounds (that first start is printed in the header).

Every run's output is checked: snake's items in order, Ray Data's rows as a
set (every id once, with its value; Ray Data does not keep the order by
default, ``DataContext.execution_options.preserve_order`` is False), so a
contender that lost or changed items cannot look fast: it is reported as
failed, with the reason, and leaves the rounds.

How to read a table: ``median`` is the median over the rounds, in seconds
(lower is better), items/s or MB/s (higher is better). ``vs ref`` divides the
contender's median by the reference's: a speed ratio for items/s and MB/s,
where above 1 is faster, elapsed / reference for times, where below 1 is
faster. ``per round`` is the smallest and largest of the same ratio taken
within each round, where both ran close together in time: when it straddles
the goal, the verdict is within the machine's noise. The goal compares
medians.

Where the work is defined: here. The functions Ray's workers run are those of
this script, ``__main__``, which Ray (cloudpickle) sends by value. Functions
imported from ``parallel_workloads`` would be pickled by reference, and
giving Ray this folder with ``runtime_env={"env_vars": {"PYTHONPATH": ...}}``
is not an option: the folder holds this script as ``ray.py``, which would
shadow Ray itself in every Ray worker. For the same reason this script
imports Ray with its own folder taken off ``sys.path`` (``import_ray``).
``spin`` is a copy of ``parallel_workloads.cpu.spin``: the expected items are
computed with the original.

Usage::

    python benchmarks/ray.py                      # full run, 5 rounds
    python benchmarks/ray.py --quick              # smaller sizes, 3 rounds
    python benchmarks/ray.py --only cpu,first --repeat 7

Ray Data, numpy and psutil come with ``pip install -e ".[bench]"`` and
``[test]``. Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import _harness
import trio
from _harness import (
    Count,
    Metric,
    Table,
    Workload,
    argument_parser,
    check,
    check_items,
    print_plan,
    print_platform,
    quiet,
    run_chosen,
    timed_rounds,
    times_row,
    versus,
)
from parallel_workloads._common import Contender, server_note, snake_start_method
from parallel_workloads.arrays import ARRAY_BYTES, ARRAY_FLOATS, Throughput, preload_numpy
from parallel_workloads.cpu import WORK_SECONDS, StartCost, calibrate, spin_expected

import snake

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from types import ModuleType

# Only what a snake user's script would import is imported at the top: snake's
# fork server loads this script again, and must not pay for Ray and numpy.

#: CPUs of the local Ray, and worker processes of snake's process executor.
CPUS = 2
CPU_ITEMS = Count(full=2_000, quick=1_000)
ARRAY_ITEMS = Count(full=400, quick=100)
WORKLOADS = ("cpu", "first", "arrays", "cancel")
#: Ray Data's batch sizes tried in (cpu): its default (None: a whole block), and two.
BATCH_SIZES = (None, 16, 128)
GOAL_RAY_DATA = 1.2  # snake Ray items/s / best Ray Data, at least
GOAL_PROCESS = 0.8  # snake Ray items/s / snake process executor, at least
GOAL_FIRST = 0.5  # snake Ray first item / Ray Data's, at most
#: (cancel): seconds each item sleeps, items, and snake jobs running when the block is left.
CANCEL_SLEEP = 60.0
CANCEL_ITEMS = 16
CANCEL_RUNNING = 2
#: Seconds of quiet before each run, once the run before has stopped and the workers are warm.
SETTLE = 0.2
#: Seconds the run before may take to stop, and Ray to start a worker, at most.
PATIENCE = 60.0
#: Tries at warming two distinct Ray workers, and how long each warming task holds one.
WARM_TRIES = 20
WARM_HOLD = 0.1
#: Modules the warming tasks import in Ray's workers: those of snake's and Ray Data's tasks.
WARM_MODULES = ("numpy", "pyarrow", "pandas", "ray.data", "snake._workers._ray_task")
#: Titles of Ray worker processes running a task of this benchmark.
TASK_TITLES = ("ray::run_job", "ray::ReadRange", "ray::Map", "ray::warm_worker")
SNAKE_JOB = "ray::run_job"
#: What a Ray worker runs while it starts, before it takes its title.
WORKER_SCRIPTS = ("setup_worker.py", "default_worker.py")
#: Titles of Ray's own processes below this one that are not task workers.
SERVICE_TITLES = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::_")


# --- the work Ray's workers run: defined here, in __main__, so Ray sends it by value ---


def spin(i: int, loops: int) -> tuple[int, int]:
    """A copy of ``parallel_workloads.cpu.spin``: ``loops`` steps of pure-Python
    arithmetic; ``(i, a value of i % 97)``."""
    x = i % 97
    for _ in range(loops):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return i, x


def spin_batch(batch: dict[str, Any], loops: int) -> dict[str, Any]:
    """Ray Data's batch of ids through ``spin``: the ids and their values."""
    import numpy as np

    ids = batch["id"]
    return {"id": ids, "x": np.array([spin(int(i), loops)[1] for i in ids], dtype=np.int64)}


def make_array(i: int) -> Any:
    """Item ``i``: 4 MiB of float32, every element ``i`` (as ``parallel_workloads.arrays``)."""
    import numpy as np

    return np.full(ARRAY_FLOATS, i, dtype=np.float32)


def array_row(row: dict[str, Any]) -> dict[str, Any]:
    """Ray Data's row ``{"id": i}`` with its array."""
    return {"id": row["id"], "a": make_array(int(row["id"]))}


def array_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Ray Data's batch of ids with their arrays, stacked."""
    import numpy as np

    ids = batch["id"]
    return {"id": ids, "a": np.stack([make_array(int(i)) for i in ids])}


def sleep_item(i: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


def warm_worker(modules: tuple[str, ...], hold: float) -> int:
    """Import ``modules`` in the Ray worker running this task, hold it ``hold``
    seconds (so that two such tasks land on two workers), return its pid."""
    import importlib

    for name in modules:
        importlib.import_module(name)
    time.sleep(hold)
    return os.getpid()


def array_ends(a: Any) -> tuple[int, int, int]:
    return int(a[0]), int(a[-1]), int(a.nbytes)


# --- the Ray this script runs ---------------------------------------------------------


def import_ray() -> ModuleType:
    """Ray and Ray Data, imported with this script's folder off ``sys.path``: the
    folder holds this script as ``ray.py``, which ``import ray`` would find first."""
    here = os.path.dirname(os.path.realpath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != here]
    try:
        import ray
        import ray.data
    finally:
        sys.path[:] = saved
    return ray


def title(proc: Any) -> str:
    """A process's title (its ``argv[0]``, which Ray sets), or "" if it is gone."""
    import psutil

    with contextlib.suppress(psutil.Error, IndexError):
        return str(proc.cmdline()[0])
    return ""


def below() -> list[Any]:
    """The processes below this one: the Ray it started, and snake's workers."""
    import psutil

    with contextlib.suppress(psutil.Error):
        return list(psutil.Process().children(recursive=True))
    return []


def runs_snake_job(pid: int) -> bool:
    """Whether process ``pid`` is a Ray worker running a snake job now (cheap: one read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().startswith(SNAKE_JOB.encode())
    except OSError:
        return False  # gone (a zombie's cmdline is empty)


@dataclass
class Cluster:
    """The local Ray this script started, which snake and Ray Data share."""

    ray: ModuleType
    #: Seconds ``ray.init`` took.
    started: float
    warm: Any = field(init=False)
    #: Seconds each wait for the run before to stop ran past ``PATIENCE``.
    overruns: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.warm = self.ray.remote(num_cpus=1)(warm_worker)

    @classmethod
    def start(cls) -> Cluster:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        ray = import_ray()
        began = time.perf_counter()
        ray.init(
            num_cpus=CPUS, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
        )
        started = time.perf_counter() - began
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        return cls(ray, started)

    def cpus(self) -> float:
        return float(self.ray.cluster_resources().get("CPU", 0))

    def tasks(self, prefixes: tuple[str, ...] = TASK_TITLES) -> dict[int, str]:
        """Ray workers of this Ray running a task whose title starts with one of
        ``prefixes``: pid to title."""
        found = {p.pid: title(p) for p in below()}
        return {pid: t for pid, t in found.items() if t.startswith(prefixes)}

    def workers(self) -> set[int]:
        """Ray's worker processes of this Ray, idle or running a task (not its agents
        and actors)."""
        found = {p.pid: title(p) for p in below()}
        return {
            pid
            for pid, t in found.items()
            if t.startswith("ray::") and not t.startswith(SERVICE_TITLES)
        }

    @staticmethod
    def starting() -> list[int]:
        """Ray workers still starting: not yet titled (``WORKER_SCRIPTS`` in their
        command line)."""
        import psutil

        found = []
        for p in below():
            with contextlib.suppress(psutil.Error):
                if any(part.endswith(WORKER_SCRIPTS) for part in p.cmdline()):
                    found.append(p.pid)
        return found

    def stopped(self, patience: float = PATIENCE) -> None:
        """Wait until no Ray worker of this Ray runs a task of the benchmark or is
        starting, and snake's worker processes have exited."""
        quiet(0.0)
        deadline = time.monotonic() + patience
        while ((busy := self.tasks()) or self.starting()) and time.monotonic() < deadline:
            time.sleep(0.01)
        if busy:
            self.overruns.append(", ".join(sorted(busy.values())))

    def ready(self) -> None:
        """The run before stopped; two Ray workers up, each having run a task that
        imports ``WARM_MODULES``; ``SETTLE`` seconds of quiet.

        Two tasks at once land on two workers, unless one is missing (the run before
        stopped early, and Ray killed the workers of its tasks in flight): then both
        may run on the one there while Ray starts another, and they run again."""
        for _ in range(WARM_TRIES):
            self.stopped()
            refs = [self.warm.remote(WARM_MODULES, WARM_HOLD) for _ in range(CPUS)]
            pids = set(self.ray.get(refs, timeout=PATIENCE))
            del refs
            if len(pids) == CPUS:
                break
        self.stopped()
        time.sleep(SETTLE)

    def shutdown(self, patience: float = 15.0) -> list[str]:
        """Shut Ray down; the processes of it still below this one after ``patience``."""
        self.ray.shutdown()
        deadline = time.monotonic() + patience
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    @staticmethod
    def leftovers() -> list[str]:
        """Ray's processes below this one (snake's fork server is not Ray's)."""
        import psutil

        found = []
        for p in below():
            with contextlib.suppress(psutil.Error):
                command = " ".join(p.cmdline())
                if p.status() != psutil.STATUS_ZOMBIE and (
                    "ray::" in command or "/ray/" in command
                ):
                    found.append(f"{p.pid} {command[:80]}")
        return found


# --- workloads -----------------------------------------------------------------------


@dataclass
class RayWorkload(Workload):
    """A workload of contenders on the script's Ray; each run starts on warm workers."""

    cluster: Cluster

    def overrun_notes(self) -> list[str]:
        runs = self.cluster.overruns
        if not runs:
            return []
        return [
            f"{len(runs)} time(s) a run started while Ray still ran a task of the run before, "
            f"{PATIENCE:g} s after it ended: {runs[0]}"
        ]

    def skipped(self) -> list[str]:
        notes = self.overrun_notes()
        self.cluster.overruns.clear()
        return notes


def best(metric: Metric, contenders: Sequence[_harness.Contender]) -> _harness.Contender | None:
    ran = [c for c in contenders if c.ok]
    return max(ran, key=metric.median) if ran else None


def ray_data_check(name: str, rows: list[Any], expected: list[Any]) -> bool:
    """Check Ray Data's rows as a set (it does not keep the order); whether they
    came in order."""
    check_items(name, sorted(rows), expected)
    return rows == expected


@dataclass
class Cpu(RayWorkload):
    """``n`` items of ``spin(i, loops)``; the reference is Ray Data's best batch size."""

    n: int = 0
    loops: int = 1
    ours: Contender = field(init=False)
    datas: list[Contender] = field(default_factory=list, init=False)
    process: Contender = field(init=False)
    #: Ray Data runs whose rows came in order, and its tasks per run.
    in_order: int = field(default=0, init=False)
    ray_data_tasks: set[int] = field(default_factory=set, init=False)

    @functools.cached_property
    def expected(self) -> list[tuple[int, int]]:
        return spin_expected(self.n, self.loops)

    @property
    def work(self) -> Callable[[int], tuple[int, int]]:
        return functools.partial(spin, loops=self.loops)

    ref_label = None  # the best batch size, marked by judge

    def title(self, rounds: int) -> str:
        return (
            f"(cpu) {self.n:,} items of ~{WORK_SECONDS * 1e3:g} ms pure-Python work on a Ray "
            f"of {CPUS} CPUs; median of {rounds} rounds; ratio = items/s / Ray Data's best "
            "(higher is better)"
        )

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Cpu:
        return dataclasses.replace(self, n=max(4 * CPUS, self.n // 20))

    def contenders(self) -> list[Contender]:
        self.ours = Contender('snake par_map(executor="ray"), collect()', self.snake_ray)
        self.datas = [
            Contender(
                f"Ray Data map_batches(batch_size={size}), iter_rows()",
                functools.partial(self.ray_data, size),
            )
            for size in BATCH_SIZES
        ]
        self.process = Contender(
            f'snake par_map(executor="process", concurrency={CPUS}), collect()',
            self.snake_process,
        )
        return [self.ours, *self.datas, self.process]

    def reference(self, timed: Sequence[_harness.Contender]) -> _harness.Contender | None:
        return best(self.metric(), self.datas)

    def judge(self, table: Table) -> None:
        metric, reference, ours, process = table.metric, table.reference, self.ours, self.process
        if reference is not None:
            table.row(reference).contender += " (best batch size: reference)"
        if ours.ok and reference is not None and process.ok:
            vs_data, vs_process = metric.ratio(ours, reference), metric.ratio(ours, process)
            table.judge(
                ours,
                f">= {GOAL_RAY_DATA:g}x Ray Data, >= {GOAL_PROCESS:g}x process",
                vs_data >= GOAL_RAY_DATA and vs_process >= GOAL_PROCESS,
            )
            table.notes += [
                f"snake ray / Ray Data best ({reference.name}): {versus(metric, ours, reference)}",
                f"snake ray / snake process: {versus(metric, ours, process)}",
            ]
        tasks = ", ".join(str(t) for t in sorted(self.ray_data_tasks)) or "?"
        runs = sum(len(c.seconds) for c in self.datas)
        table.notes += [
            f"work: spin({self.loops:,} loops) per item, calibrated at start to take "
            f"~{WORK_SECONDS * 1e3:g} ms (the fastest of 7 tries); every output checked, "
            "snake's in order, Ray Data's as a set",
            f"timed: snake from before trio.run(pipeline.collect) to its end (its Ray tasks "
            "confirmed done); Ray Data from before ray.data.range(n) to the last row of "
            f"iter_rows(); Ray Data ran {tasks} tasks per run (ReadRange fused with "
            f"MapBatches, a block each); its rows came in order in {self.in_order} of "
            f"{runs} runs",
            f"snake ray: concurrency=None (one task per Ray CPU, {CPUS}), jobs sized by snake's "
            "pacer (~50 ms, <= 256 items), 2 tasks in flight per CPU; Ray Data: its defaults "
            "but batch_size (None, its default: a whole block per batch)",
            "snake process: 2 worker processes started and stopped inside the timing"
            + server_note()
            + "; Ray's workers are idle meanwhile",
        ]

    # --- the contenders ---------------------------------------------------------

    def snake_ray(self) -> float:
        self.cluster.ready()
        pipeline = snake.from_iterable(range(self.n)).par_map(self.work, executor="ray")
        began = time.perf_counter()
        out = trio.run(pipeline.collect)
        elapsed = time.perf_counter() - began
        check_items("snake ray", out, self.expected)
        return elapsed

    def ray_data(self, size: int | None) -> float:
        ray = self.cluster.ray
        self.cluster.ready()
        began = time.perf_counter()
        ds = ray.data.range(self.n).map_batches(
            spin_batch, batch_size=size, fn_kwargs={"loops": self.loops}
        )
        out = [(int(row["id"]), int(row["x"])) for row in ds.iter_rows()]
        elapsed = time.perf_counter() - began
        self.in_order += ray_data_check(f"Ray Data batch_size={size}", out, self.expected)
        found = re.search(r"(\d+) tasks executed", ds.stats())
        if found:
            self.ray_data_tasks.add(int(found.group(1)))
        return elapsed

    def snake_process(self) -> float:
        self.cluster.ready()
        pipeline = snake.from_iterable(range(self.n)).par_map(self.work, concurrency=CPUS)
        began = time.perf_counter()
        out = trio.run(pipeline.collect)
        elapsed = time.perf_counter() - began
        check_items("snake process", out, self.expected)
        return elapsed


@dataclass
class First(RayWorkload):
    """The first item of ``n`` of ``spin(i, loops)`` on Ray; the reference is Ray Data's."""

    n: int = 0
    loops: int = 1
    ours: list[Contender] = field(default_factory=list, init=False)
    data: Contender = field(init=False)
    #: Ray workers there as a run started that were gone after it stopped, by
    #: contender name, per run.
    killed: dict[str, list[int]] = field(default_factory=dict, init=False)
    labels: dict[str, str] = field(default_factory=dict, init=False)

    @property
    def expected(self) -> tuple[int, int]:
        return spin(0, self.loops)

    @property
    def work(self) -> Callable[[int], tuple[int, int]]:
        return functools.partial(spin, loops=self.loops)

    def title(self, rounds: int) -> str:
        return (
            f"(first) time to the first item of the cpu map on a Ray of {CPUS} CPUs, warm "
            f"workers; median of {rounds} rounds; ratio = time / Ray Data's (lower is better)"
        )

    def contenders(self) -> list[Contender]:
        self.ours = [
            Contender('snake par_map(executor="ray"), open() + receive()', self.snake_open),
            Contender('snake par_map(executor="ray"), next(iter())', self.snake_iter),
        ]
        self.labels = {
            self.ours[0].name: "snake open()",
            self.ours[1].name: "snake next(iter())",
        }
        self.data = Contender(
            "Ray Data map_batches (default batch size), next(iter(iter_rows()))", self.ray_data
        )
        self.killed = {}
        return [*self.ours, self.data]

    def reference(self, timed: Sequence[_harness.Contender]) -> _harness.Contender | None:
        return self.data

    def judge(self, table: Table) -> None:
        metric, reference = table.metric, table.reference
        for c in self.ours:
            if c.ok and reference is not None and reference.ok:
                meets = metric.ratio(c, reference) <= GOAL_FIRST
                table.judge(c, f"<= {GOAL_FIRST:g}x Ray Data", meets)
        killed = "; ".join(
            f"{self.labels.get(name, 'Ray Data')} {statistics.median(counts):g} "
            f"(runs: {' '.join(str(k) for k in counts)})"
            for name, counts in self.killed.items()
        )
        table.notes += [
            f"timed from before the pipeline or dataset is built to the first of {self.n:,} "
            f"items (spin({self.loops:,} loops) each); then stopped, outside the timing: "
            "snake leaves open() or closes its iterator, Ray Data's iterator is closed",
            "warm: Ray running; before every run, once the run before has stopped and no Ray "
            "worker is starting, two tasks at once import snake's task module, ray.data, "
            "pyarrow, pandas and numpy on two distinct Ray workers (again until they land on "
            f"two), then {SETTLE:g} s of quiet. A worker that replaced one killed by a stop "
            "before has not run a snake job yet: its first one fetches snake's task function",
            "Ray Data: ray.data.range(n) is cut into a few blocks (the cpu table's notes say "
            "how many), and a task hands its block on when done: its first row waits for a "
            "block's work",
            "Ray workers gone after the stop (Ray kills the worker of a task cancelled while "
            "it runs; now and then Ray lets an extra idle worker go too): of those there as "
            f"the run started, those gone once Ray is quiet again; median, and each run: {killed}",
        ]

    # --- the contenders ---------------------------------------------------------

    def count_killed(self, name: str, there: set[int]) -> None:
        self.cluster.stopped()
        time.sleep(SETTLE)
        self.killed.setdefault(name, []).append(len(there - self.cluster.workers()))

    def snake_open(self) -> float:
        self.cluster.ready()
        there = self.cluster.workers()

        async def run() -> tuple[float, tuple[int, int]]:
            began = time.perf_counter()
            pipeline = snake.from_iterable(range(self.n)).par_map(self.work, executor="ray")
            async with pipeline.open() as items:
                first = await items.receive()
                elapsed = time.perf_counter() - began
            return elapsed, first

        elapsed, first = trio.run(run)
        self.count_killed(self.ours[0].name, there)
        check_items("snake open()", [first], [self.expected])
        return elapsed

    def snake_iter(self) -> float:
        self.cluster.ready()
        there = self.cluster.workers()
        began = time.perf_counter()
        pipeline = snake.from_iterable(range(self.n)).par_map(self.work, executor="ray")
        items = iter(pipeline)
        try:
            first = next(items)
            elapsed = time.perf_counter() - began
        finally:
            items.close()
        self.count_killed(self.ours[1].name, there)
        check_items("snake next(iter())", [first], [self.expected])
        return elapsed

    def ray_data(self) -> float:
        ray = self.cluster.ray
        self.cluster.ready()
        there = self.cluster.workers()
        began = time.perf_counter()
        ds = ray.data.range(self.n).map_batches(spin_batch, fn_kwargs={"loops": self.loops})
        rows = iter(ds.iter_rows())
        try:
            row = next(rows)
            elapsed = time.perf_counter() - began
        finally:
            rows.close()
            del rows, ds
        self.count_killed(self.data.name, there)
        # Ray Data does not keep the order: its first row is any item's.
        i = int(row["id"])
        check("Ray Data", f"row {i}", (i, int(row["x"])), spin(i, self.loops))
        return elapsed


@dataclass
class Arrays(RayWorkload):
    """Every contender keeps only ``array_ends`` of each array, and drops it."""

    n: int = 0
    ours: Contender = field(init=False)
    datas: list[Contender] = field(default_factory=list, init=False)
    in_order: int = field(default=0, init=False)

    @property
    def expected(self) -> list[tuple[int, int, int]]:
        return [(i, i, ARRAY_BYTES) for i in range(self.n)]

    def title(self, rounds: int) -> str:
        return (
            f"(arrays) {self.n:,} arrays of 4 MiB made on a Ray of {CPUS} CPUs; median of "
            f"{rounds} rounds; ratio = MB/s / Ray Data's best (higher is better)"
        )

    def metric(self) -> Throughput:
        return Throughput(self.n)

    def warm(self) -> Arrays:
        return dataclasses.replace(self, n=max(4 * CPUS, self.n // 20))

    def contenders(self) -> list[Contender]:
        self.ours = Contender(
            'snake par_map(executor="ray"), open() + async for',
            functools.partial(self.snake, "ray"),
        )
        self.datas = [
            Contender("Ray Data map(array_row), iter_rows()", self.ray_data_map),
            Contender("Ray Data map_batches(batch_size=1), iter_rows()", self.ray_data_batches),
        ]
        process = Contender(
            f'snake par_map(executor="process", concurrency={CPUS}), open() + async for',
            functools.partial(self.snake, "process"),
        )
        return [self.ours, *self.datas, process]

    def reference(self, timed: Sequence[_harness.Contender]) -> _harness.Contender | None:
        return best(self.metric(), self.datas)

    def judge(self, table: Table) -> None:
        reference = table.reference
        if reference is not None:
            others = [c for c in self.datas if c.ok and c is not reference]
            than = f" (ahead of {others[0].name})" if others else ""
            table.notes.append(f"reference: the better Ray Data by median MB/s{than}")
        runs = sum(len(c.seconds) for c in self.datas)
        table.notes += [
            "item i: np.full(2**20, i, float32) (4 MiB) made in the map's function; this "
            "process checks its first and last element and its size, then drops it; snake's "
            "in order, Ray Data's as they come (every id once; in order in "
            f"{self.in_order} of {runs} runs); MB = 10^6 bytes",
            "timed from before the pipeline or dataset is built to the last array taken "
            "(snake: open() exited)",
            "results travel: on Ray through its object store (snake: a ChunkResult per job, "
            "a job per array past the first; Ray Data: Arrow blocks of tensor columns); snake "
            "process through shared memory (Linux), 2 worker processes started and stopped "
            "inside the timing" + server_note(),
        ]

    # --- the contenders ---------------------------------------------------------

    def snake(self, executor: Literal["ray", "process"]) -> float:
        self.cluster.ready()

        async def run() -> tuple[float, list[tuple[int, int, int]]]:
            out = []
            began = time.perf_counter()
            pipeline = snake.from_iterable(range(self.n)).par_map(
                make_array,
                executor=executor,
                concurrency=CPUS if executor == "process" else None,
            )
            async with pipeline.open() as items:
                async for a in items:
                    out.append(array_ends(a))
                    del a
            return time.perf_counter() - began, out

        elapsed, out = trio.run(run)
        check_items(f"snake {executor}", out, self.expected)
        return elapsed

    def ray_data_map(self) -> float:
        ray = self.cluster.ray
        self.cluster.ready()
        began = time.perf_counter()
        ds = ray.data.range(self.n).map(array_row)
        return self.consume("Ray Data map", began, ds)

    def ray_data_batches(self) -> float:
        ray = self.cluster.ray
        self.cluster.ready()
        began = time.perf_counter()
        ds = ray.data.range(self.n).map_batches(array_batch, batch_size=1)
        return self.consume("Ray Data map_batches", began, ds)

    def consume(self, name: str, began: float, ds: Any) -> float:
        out = []
        for row in ds.iter_rows():
            a = row["a"]
            ends = array_ends(a)
            check(name, "first element of row", ends[0], int(row["id"]))
            out.append(ends)
            del a, row
        elapsed = time.perf_counter() - began
        self.in_order += ray_data_check(name, out, self.expected)
        return elapsed


class Watcher(threading.Thread):
    """Polls Ray workers every millisecond until none runs a snake job; ``gone``
    is the ``perf_counter`` time it saw that."""

    def __init__(self, pids: set[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.gone: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if not any(runs_snake_job(pid) for pid in self.pids):
                self.gone = time.perf_counter()
                return
            time.sleep(0.001)


@dataclass
class Cancel(RayWorkload):
    """Leaving ``open()`` while ``CANCEL_RUNNING`` snake jobs run a long sleep on Ray."""

    exits: list[float] = field(default_factory=list, init=False)
    running: list[int] = field(default_factory=list, init=False)
    killed: list[int] = field(default_factory=list, init=False)
    ours: Contender = field(init=False)

    def title(self, rounds: int) -> str:
        return (
            f"(cancel) leaving open() while {CANCEL_RUNNING} snake jobs sleep {CANCEL_SLEEP:g} s "
            f"on Ray; median of {rounds} rounds"
        )

    def contenders(self) -> list[Contender]:
        self.ours = Contender("leave open() -> no Ray worker runs a snake job", self.cancel)
        self.exits, self.running, self.killed = [], [], []
        return [self.ours]

    def reference(self, timed: Sequence[_harness.Contender]) -> _harness.Contender | None:
        return None

    def judge(self, table: Table) -> None:
        c = self.ours
        if c.ok:
            table.rows[:] = [
                times_row(c.name, c.seconds),
                times_row("leave open() -> open() exited", self.exits),
            ]
        running = " ".join(str(k) for k in self.running)
        killed = " ".join(str(k) for k in self.killed)
        table.notes += [
            "per round: the fastest and slowest round; no goal",
            f'the map: par_map(sleep_item, executor="ray") over {CANCEL_ITEMS} items, each '
            f"sleeping {CANCEL_SLEEP:g} s; concurrency=None ({CPUS} Ray CPUs): {CANCEL_RUNNING} "
            "jobs of one item running, and up to 2 more queued in Ray (two tasks in flight "
            "per CPU)",
            f"the block is left once {CANCEL_RUNNING} Ray workers of this Ray are titled "
            f"{SNAKE_JOB} (jobs running at the cancel, per round: {running}); timed from "
            "leaving it to (1) a thread polling /proc/PID/cmdline of those workers every "
            "1 ms finds none still titled ray::run_job (gone or other), (2) open() exited",
            "after open() exited and 0.5 s more, no process of this Ray was titled "
            f"{SNAKE_JOB} (checked every round: a queued job that started after the cancel "
            "would fail the round); workers killed by the cancel (gone once Ray is quiet), "
            f"per round: {killed}",
        ]

    def cancel(self) -> float:
        self.cluster.ready()
        work = functools.partial(sleep_item, seconds=CANCEL_SLEEP)
        pipeline = snake.from_iterable(range(CANCEL_ITEMS)).par_map(work, executor="ray")

        async def run() -> tuple[Watcher, float, float]:
            async with pipeline.open():
                deadline = trio.current_time() + PATIENCE
                while True:  # polling the workers' titles: no event to wait for
                    busy = self.cluster.tasks((SNAKE_JOB,))
                    if len(busy) >= CANCEL_RUNNING or trio.current_time() > deadline:
                        break
                    await trio.sleep(0.01)
                if len(busy) < CANCEL_RUNNING:
                    raise RuntimeError(
                        f"{len(busy)} Ray workers ran a snake job after {PATIENCE:g} s, "
                        f"expected {CANCEL_RUNNING}"
                    )
                watcher = Watcher(set(busy))
                watcher.start()
                began = time.perf_counter()
            return watcher, began, time.perf_counter()

        watcher, began, exited = trio.run(run)
        watcher.join(PATIENCE)
        watcher.stop.set()
        time.sleep(0.5)
        left = self.cluster.tasks((SNAKE_JOB,))
        if left or watcher.gone is None:
            raise RuntimeError(f"Ray workers still run snake jobs after the cancel: {left}")
        self.running.append(len(watcher.pids))
        self.cluster.stopped()
        time.sleep(SETTLE)
        self.killed.append(len(watcher.pids - self.cluster.workers()))
        self.exits.append(exited - began)
        return watcher.gone - began


# --- command line ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    return argument_parser(
        "snake's par_map(executor=\"ray\") against Ray Data and snake's process executor, "
        "on one local Ray (see the module docstring for how to read the tables).",
        WORKLOADS,
        f"cpu and first: {CPU_ITEMS.quick:,} items, arrays: {ARRAY_ITEMS.quick:,}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if sys.platform != "linux":
        raise SystemExit("benchmarks/ray.py needs Linux (/proc)")
    rounds = timed_rounds(args)
    print_platform("ray", "numpy", "pyarrow", "psutil")
    print_plan(args.quick, rounds)
    if "arrays" in args.only:
        preload_numpy()  # before snake's fork server starts
    cluster = Cluster.start()
    try:
        print(
            f"Ray: one local runtime started by this script, ray.init(num_cpus={CPUS}, "
            f"include_dashboard=False): {cluster.started:.2f} s; cluster CPUs: "
            f"{cluster.cpus():g}; snake and Ray Data both use it"
        )
        if {"cpu", "arrays"} & set(args.only):
            first, later = StartCost().snake(), StartCost().snake()
            print(
                f"snake's process executor: start method {snake_start_method()}; its first map "
                f"in this interpreter: start + stop {first:.3f} s (the next one: {later:.3f} s)"
            )
        sys.stdout.flush()
        loops = calibrate(WORK_SECONDS) if {"cpu", "first"} & set(args.only) else 1
        n = CPU_ITEMS.pick(args.quick)
        workloads: dict[str, Workload] = {
            "cpu": Cpu(cluster, n=n, loops=loops),
            "first": First(cluster, n=n, loops=loops),
            "arrays": Arrays(cluster, n=ARRAY_ITEMS.pick(args.quick)),
            "cancel": Cancel(cluster),
        }
        run_chosen(workloads, args)
    finally:
        left = cluster.shutdown()
    print(f"\nRay processes left at the end, after ray.shutdown(): {', '.join(left) or 'none'}")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
