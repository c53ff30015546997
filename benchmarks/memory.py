"""How far a pipeline runs ahead of a slow consumer, what it holds meanwhile, and its
items/s with a fast one: snake against torch's DataLoader and torchdata.nodes.

Items are large arrays: item ``i`` is ``np.full(floats, i, float32)``, made in
the map's function (``make_item``), of 4 MiB (``2**20`` floats) and of 18 MiB
(a batch of 32 images of 3x224x224 float32: ``32 * 3 * 224 * 224`` floats,
18.4 MiB). Every workload runs the same loaders, each consumed by a plain
``for`` loop in the main thread:

- snake, with the default settings: ``from_iterable(range(n)).map(make)``
  (inline), ``.par_map(make, executor="thread")`` and ``.par_map(make)``
  (worker processes); and the thread and process maps followed by
  ``.prefetch(2)``. Consumed as ``for x in pipeline``: the pipeline runs under
  trio in a background thread;
- torch ``DataLoader(dataset, batch_size=None, num_workers=2,
  prefetch_factor=2)`` over a map-style dataset whose ``__getitem__`` is
  ``make`` (reference): each array comes back as a tensor in torch's shared
  memory;
- torchdata.nodes ``ParallelMapper(IterableWrapper(range(n)), make,
  num_workers=2)`` with ``method="thread"`` and with ``method="process"``
  (arrays pickled through a pipe), other settings at their defaults, under a
  ``Loader``.

Four workloads, each size in two:

(slow-4, slow-18) a slow consumer. Each step takes the next item, checks it,
        sleeps 50 ms while holding it, then samples; 40 steps (``--quick``: 15;
        ``--steps N``). Sampling takes some 20 ms on a 2-core machine (a note
        gives it), so a step lasts about 70 ms. Two tables:
        - peak run-ahead, in items: the largest, over the steps, of the items
          made minus the items the loop has taken. ``make`` marks item ``i``
          made, once its array exists, by writing a byte at offset ``i`` of a
          file (``os.pwrite``), in whichever thread or process runs it; the
          loop counts the marks. Goal: snake with the default settings at
          most 12 items ahead, with ``prefetch(n)`` at most 12 + n, in every
          round.
        - peak held memory, in MiB: the largest, over the steps, of what this
          process and every process below it hold, minus the same just
          before the run. What they hold: their anonymous memory, as its
          proportional set size (``Pss_Anon`` in ``/proc/PID/smaps_rollup``:
          a page still shared after a fork counts once, not once per process
          as it does in RSS, where a DataLoader worker forked from a process
          that imported torch would show hundreds of MB it never touched),
          plus the shared memory they have open or mapped (``/dev/shm``
          files, named or already unlinked, each once, at the size allocated
          to it; and snake's segments of this process not open at that
          moment). Goal: snake with the default settings at most
          DataLoader's; with ``prefetch(n)``, at most DataLoader's plus n
          items.
        A run stops early once it holds more than 4 GiB, to spare the
        machine: its peaks are then lower bounds, shown with ">=".
(fast-4, fast-18) a fast consumer: 200 items of 4 MiB, 60 of 18 MiB
        (``--quick``: 60 and 20), taken as fast as the loader gives them, in
        items/s. Goal: every snake contender >= 0.95x DataLoader's items/s.

How it is measured: the contenders of a workload run interleaved,
round-robin (A, B, C, A, B, C, ...), for ``--repeat`` rounds, after one
untimed warm-up round at a small size (3 steps, or a tenth of the items).
Every loader starts its threads or worker processes inside the run, fresh in
every run, and stops them at its end (a slow run stops it after its last
step); a fast run is timed from just before the loader starts to the moment
its workers are stopped. Before each run, the workers of the run before have
exited, garbage has been collected and freed heap memory handed back
(glibc's ``malloc_trim``), so that a run neither holds nor reuses what the
one before left. Every item a run takes is checked, in order: its first and
last element are its index and its size is right; a contender with a wrong
output is reported failed, with the reason, and leaves the rounds. torch and
torchdata are optional: without them their contenders are skipped, with a
line saying so. At the end the script checks that no worker process
(multiprocessing's fork server and resource tracker live as long as the
interpreter) and no shared memory of this process is left, and fails if
anything is.

How to read a table: ``median`` is the median over the rounds of each run's
peak (items, MiB = 2**20 bytes; lower is better) or of its items/s (higher
is better); ``vs ref`` divides it by DataLoader's. ``per round``: in a
run-ahead table, the smallest and largest peak of the rounds, the run-ahead
goal being judged on the largest; in the other tables, the smallest and
largest ratio to DataLoader taken within one round, where both ran close
together in time: when it straddles the goal, the verdict is within the
machine's noise. Those goals compare medians. The machine is shared and
noisy: a loader's run-ahead that stays at its bound does not depend on it;
one that keeps growing does, and so do held memory and items/s.

Usage::

    python benchmarks/memory.py                       # full run, 5 rounds
    python benchmarks/memory.py --quick               # smaller sizes, 3 rounds
    python benchmarks/memory.py --only slow-4 --steps 120 --repeat 3

Linux only (``/proc``, ``/dev/shm``). torch and torchdata come with
``pip install -e ".[bench]"``; psutil, which the script needs, with
``[test]``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import functools
import gc
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from _harness import (
    Count,
    Metric,
    Row,
    Table,
    Workload,
    argument_parser,
    check,
    check_items,
    print_plan,
    print_platform,
    print_table,
    rows_for,
    run_workload,
    timed_rounds,
)
from _snake_runs import snake_segments
from parallel_workloads._common import (
    WORKERS,
    Contender,
    PeersWorkload,
    data_loader,
    frees_nodes,
    load_peers,
    server_note,
    snake_start_method,
    stop_nodes,
)
from parallel_workloads.arrays import array_ends, preload_numpy

import snake

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import ModuleType

    import _harness

    #: A started loader's items, and how to stop it.
    Opened = tuple[Iterator[Any], Callable[[], None]]

# Only what a snake user's script would import is imported at the top: the
# fork server and spawned workers load this script, and must not pay for
# torch, psutil and the like.

MIB = 2**20
#: The slow consumer's sleep per item, and its steps.
STEP = 0.05
STEPS = Count(full=40, quick=15)
#: A slow run stops once it holds more than this.
CAP = 4 * 2**30
#: torch DataLoader's prefetch per worker (its default), and what snake's variants add.
PREFETCH_FACTOR = 2
PREFETCH = 2
GOAL_AHEAD = 12  # items made and not yet taken, at most, with the default settings
GOAL_FAST = 0.95  # snake items/s / DataLoader's, at least
SHM_DIR = "/dev/shm"


@dataclass(frozen=True)
class Size:
    """Items of ``floats`` float32 each; ``fast`` of them in a fast run."""

    floats: int
    fast: Count

    @property
    def nbytes(self) -> int:
        return 4 * self.floats

    @property
    def label(self) -> str:
        return f"{self.nbytes // MIB} MiB"


#: By workload name suffix: 4 MiB, and a batch of 32 images of 3x224x224 (18.4 MiB).
SIZES = {
    "4": Size(2**20, Count(full=200, quick=60)),
    "18": Size(32 * 3 * 224 * 224, Count(full=60, quick=20)),
}
WORKLOADS = tuple(f"{kind}-{key}" for kind in ("slow", "fast") for key in SIZES)


def make_item(i: int, floats: int, marks: str | None) -> Any:
    """Item ``i``: ``floats`` float32, each ``i``; then marked made in the file
    ``marks``, if any, by a byte at offset ``i``."""
    import numpy as np

    a = np.full(floats, i, dtype=np.float32)
    if marks is not None:
        fd = os.open(marks, os.O_WRONLY)
        try:
            os.pwrite(fd, b"\1", i)
        finally:
            os.close(fd)
    return a


def expected(m: int, size: Size) -> list[tuple[int, int, int]]:
    """``array_ends`` of the first ``m`` items."""
    return [(i, i, size.nbytes) for i in range(m)]


# --- the loaders -------------------------------------------------------------------


@dataclass(frozen=True)
class Loader:
    """A contender's loader: ``open(n, make)`` starts it over ``make(i)`` for ``i``
    in ``range(n)``. ``ours``: snake's, judged; ``prefetch``: what it adds;
    ``reference``: DataLoader's."""

    name: str
    open: Callable[[int, Callable[[int], Any]], Opened]
    ours: bool = False
    prefetch: int = 0
    reference: bool = False


def snake_items(executor: str | None, prefetch: int, n: int, make: Callable[[int], Any]) -> Opened:
    """``for x in pipeline`` over a map inline (no ``executor``) or ``par_map``."""
    source = snake.from_iterable(range(n))
    pipeline = source.map(make) if executor is None else source.par_map(make, executor=executor)
    if prefetch:
        pipeline = pipeline.prefetch(prefetch)
    items = iter(pipeline)
    return items, items.close


def dataloader_items(torch: ModuleType, n: int, make: Callable[[int], Any]) -> Opened:
    items = iter(data_loader(torch, n, make, prefetch_factor=PREFETCH_FACTOR))
    return items, items._shutdown_workers  # what its __del__ calls; exhausting it does too


def torchdata_items(tn: ModuleType, method: str, n: int, make: Callable[[int], Any]) -> Opened:
    node = tn.ParallelMapper(tn.IterableWrapper(range(n)), make, num_workers=WORKERS, method=method)
    return iter(tn.Loader(node)), functools.partial(stop_nodes, node)


def snake_loader(executor: str | None, prefetch: int = 0) -> Loader:
    name = "snake map (inline)" if executor is None else f"snake par_map({executor})"
    if prefetch:
        name += f".prefetch({prefetch})"
    return Loader(name, functools.partial(snake_items, executor, prefetch), True, prefetch)


# --- what a run holds ----------------------------------------------------------------


def family() -> list[Any]:
    """This process and every process below it (``psutil.Process`` objects)."""
    import psutil

    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def workers() -> list[Any]:
    """The processes below this one but multiprocessing's fork server and resource
    tracker, which live as long as the interpreter. The fork server is known by
    its pid: snake's may be a fork of this process, with its command line."""
    import multiprocessing.forkserver

    import psutil

    server = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    found = []
    for p in family()[1:]:
        with contextlib.suppress(psutil.Error):
            command = " ".join(p.cmdline())
            helper = "forkserver" in command or "resource_tracker" in command
            if p.pid != server and not helper:
                found.append(p)
    return found


def pss_anon(pid: int) -> int:
    """Process ``pid``'s anonymous memory, its pages shared with others split among them."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss_Anon:"):
                return int(line.split()[1]) * 1024
    return 0  # gone meanwhile


def shared_files(pid: int, found: dict[int, int]) -> None:
    """Add to ``found`` (inode to bytes allocated) the ``/dev/shm`` files process ``pid``
    has open or mapped, named or unlinked."""
    fds = f"/proc/{pid}/fd"
    with contextlib.suppress(OSError):
        for fd in os.listdir(fds):
            with contextlib.suppress(OSError):
                if os.readlink(f"{fds}/{fd}").startswith(SHM_DIR + "/"):
                    st = os.stat(f"{fds}/{fd}")
                    found[st.st_ino] = st.st_blocks * 512
    with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or not fields[5].startswith(SHM_DIR + "/"):
                continue
            inode, span = int(fields[4]), fields[0]
            if inode in found:
                continue
            try:  # map_files/ needs CAP_SYS_ADMIN: else, the mapping's length
                found[inode] = os.stat(f"/proc/{pid}/map_files/{span}").st_blocks * 512
            except OSError:
                start, end = (int(x, 16) for x in span.split("-"))
                found[inode] = end - start


def shared_memory(procs: Sequence[Any]) -> dict[int, int]:
    """Bytes allocated to each ``/dev/shm`` file the processes ``procs`` hold, and to
    snake's segments of this process, by inode."""
    found: dict[int, int] = {}
    for p in procs:
        shared_files(p.pid, found)
    for path in snake_segments(SHM_DIR):
        with contextlib.suppress(OSError):
            st = os.stat(path)
            found.setdefault(st.st_ino, st.st_blocks * 512)
    return found


def held() -> int:
    """What this process and those below it hold now: anonymous memory (proportional
    set size) plus shared memory, each segment once."""
    procs = family()
    anon = sum(pss_anon(p.pid) for p in procs)
    return anon + sum(shared_memory(procs).values())


def give_back() -> None:
    """Collect garbage and hand the heap's free memory back to the system (glibc)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def settle(patience: float = 10.0) -> None:
    """Wait (up to ``patience``) for the workers of the run before to exit, then
    ``give_back``."""
    deadline = time.monotonic() + patience
    while workers() and time.monotonic() < deadline:
        time.sleep(0.02)
    give_back()


def leftovers() -> str:
    """Worker processes and shared memory of this process, now."""
    give_back()
    procs = workers()
    # The fork server lives as long as the interpreter; when it is a fork of
    # this process, it keeps the files this process had open then (see
    # docs/performance.md, "A fresh program"): not left behind by a run.
    segments = shared_memory([family()[0], *procs])
    parts = [
        f"{len(procs)} worker processes ({', '.join(' '.join(p.cmdline()) for p in procs)})"
        if procs
        else "",
        f"{len(segments)} shared-memory files ({sum(segments.values()):,} bytes)"
        if segments
        else "",
    ]
    return ", ".join(p for p in parts if p) or "nothing"


class Marks:
    """A file of a byte per item, set to 1 by whichever thread or process makes it."""

    def __init__(self, folder: str, n: int) -> None:
        self.path = os.path.join(folder, "made")
        with open(self.path, "wb") as f:
            f.write(bytes(n))

    def count(self) -> int:
        with open(self.path, "rb") as f:
            return f.read().count(1)


# --- metrics ------------------------------------------------------------------------


@dataclass
class Sampled(Contender):
    """A slow workload's contender: each run records its peaks too."""

    ahead: list[float] = field(default_factory=list)
    held: list[float] = field(default_factory=list)
    #: Runs stopped at ``CAP``.
    capped: int = 0
    #: The seconds each sample took, over every run.
    sampling: list[float] = field(default_factory=list)


@dataclass
class Peak(Metric):
    """A peak of each run: ``what`` is ``"ahead"`` (items) or ``"held"`` (bytes)."""

    what: str = "ahead"

    def values(self, c: _harness.Contender) -> list[float]:
        return getattr(c, self.what)

    def text(self, value: float) -> str:
        return f"{value:,.0f} items" if self.what == "ahead" else f"{value / MIB:,.0f} MiB"

    @property
    def unit(self) -> str:
        return "items ahead (lower is better)" if self.what == "ahead" else "MiB (lower is better)"

    def ratio(self, c: _harness.Contender, ref: _harness.Contender) -> float:
        reference = self.median(ref)
        return self.median(c) / reference if reference else math.inf

    def ratios(self, c: _harness.Contender, ref: _harness.Contender) -> list[float]:
        pairs = zip(self.values(c), self.values(ref), strict=True)
        return [a / b if b else math.inf for a, b in pairs]


# --- the workloads -------------------------------------------------------------------


@dataclass
class Loaders(PeersWorkload):
    """Every loader over items of ``SIZES[key]``; the reference is DataLoader."""

    key: str
    pairs: list[tuple[Loader, Contender]] = field(default_factory=list, init=False)

    @property
    def size(self) -> Size:
        return SIZES[self.key]

    def loaders(self) -> list[Loader]:
        found = [
            snake_loader(None),
            snake_loader("thread"),
            snake_loader("process"),
            snake_loader("thread", PREFETCH),
            snake_loader("process", PREFETCH),
        ]
        if self.offer("DataLoader", "torch"):
            name = f"DataLoader(num_workers={WORKERS}, prefetch_factor={PREFETCH_FACTOR})"
            opens = functools.partial(dataloader_items, self.peers.torch)
            found.append(Loader(name, opens, reference=True))
        if self.offer("torchdata.nodes", "torchdata"):
            for method in ("thread", "process"):
                opens = functools.partial(torchdata_items, self.peers.nodes, method)
                found.append(Loader(f"torchdata ParallelMapper({method})", opens))
        return found

    def contender(self, loader: Loader) -> Contender:
        raise NotImplementedError

    def contenders(self) -> list[Contender]:
        self.pairs = [(loader, self.contender(loader)) for loader in self.loaders()]
        return [c for _, c in self.pairs]

    def reference(self, timed: Sequence[_harness.Contender]) -> Contender | None:
        found = [c for loader, c in self.pairs if loader.reference]
        return found[0] if found else None

    def ours(self) -> list[tuple[Loader, Contender]]:
        """snake's loaders that ran, with their contenders."""
        return [(loader, c) for loader, c in self.pairs if loader.ours and c.ok]

    def workers_note(self) -> str:
        return (
            "threads and worker processes are started and stopped in every run, for every "
            "contender" + server_note() + f"; start methods: snake {snake_start_method()}, "
            f"DataLoader and torchdata {multiprocessing.get_start_method()}"
        )


@dataclass
class Slow(Loaders):
    """A consumer taking ``STEP`` seconds per item, for ``steps`` items: the peaks."""

    steps: int = STEPS.full

    def title(self, rounds: int) -> str:
        return (
            f"(slow-{self.key}) peak run-ahead of a consumer sleeping {STEP * 1e3:g} ms per "
            f"item, {self.size.label} items, {self.steps} steps; median of {rounds} rounds; "
            "ratio = items ahead / DataLoader's (lower is better)"
        )

    def metric(self) -> Peak:
        return Peak(what="ahead")

    def warm(self) -> Slow:
        return dataclasses.replace(self, steps=min(3, self.steps))

    def contender(self, loader: Loader) -> Contender:
        c = Sampled(loader.name, lambda: 0.0)
        c.run = functools.partial(self.run_slowly, loader, c)
        return c

    @frees_nodes
    def run_slowly(self, loader: Loader, record: Sampled) -> float:
        """Take ``steps`` items, sleeping ``STEP`` after each, then sampling; record the
        peaks. Returns the seconds the run took (not reported)."""
        size = self.size
        n = self.steps + CAP // size.nbytes + 8  # never the end of the input
        out = []
        ahead = top = 0
        with tempfile.TemporaryDirectory() as folder:
            marks = Marks(folder, n)
            make = functools.partial(make_item, floats=size.floats, marks=marks.path)
            settle()
            base = held()
            began = time.perf_counter()
            items, stop = loader.open(n, make)
            try:
                for k in range(self.steps):
                    a = next(items)
                    out.append(array_ends(a))
                    time.sleep(STEP)
                    sampling = time.perf_counter()
                    ahead = max(ahead, marks.count() - (k + 1))
                    top = max(top, held() - base)
                    record.sampling.append(time.perf_counter() - sampling)
                    del a
                    if top > CAP:
                        record.capped += 1
                        break
            finally:
                stop()
            elapsed = time.perf_counter() - began
        if top <= CAP:
            check(loader.name, "items taken", len(out), self.steps)
        check_items(loader.name, out, expected(len(out), size))
        record.ahead.append(ahead)
        record.held.append(top)
        return elapsed

    def judge(self, table: Table) -> None:
        metric = table.metric
        for c in table.shown:
            if c.ok:
                row = table.row(c)
                low, high = min(metric.values(c)), max(metric.values(c))
                row.per_round = f"{low:,.0f}-{high:,.0f}"
                capped(row, c)
        for loader, c in self.ours():
            limit = GOAL_AHEAD + loader.prefetch
            plus = f" ({GOAL_AHEAD} + {loader.prefetch})" if loader.prefetch else ""
            meets = max(metric.values(c)) <= limit and not getattr(c, "capped", 0)
            table.judge(c, f"<= {limit} items{plus}, every round", meets)
        table.notes += [
            "run-ahead: items made (a byte per item marked in a file by make, in the thread or "
            "process making it) minus items taken by the loop, sampled after each step's sleep; "
            "per round: the smallest and largest peak of the rounds",
            self.sampling_note(table),
            f"item i: np.full({self.size.floats:,}, i, float32) ({self.size.nbytes / MIB:.1f} "
            "MiB) made in the map's function; each item taken is checked (first and last "
            "element, size, order)",
            self.workers_note(),
        ]
        if any(getattr(c, "capped", 0) for c in table.shown):
            table.notes.append(self.cap_note())

    def sampling_note(self, table: Table) -> str:
        costs = [s for c in table.shown for s in getattr(c, "sampling", [])]
        step = f"each step: take an item, check it, sleep {STEP * 1e3:g} ms holding it, sample"
        if costs:
            step += f"; sampling took {statistics.median(costs) * 1e3:.0f} ms a step (median)"
        return step

    def cap_note(self) -> str:
        return (
            f">=: a run stopped early, once it held more than {CAP / 2**30:g} GiB; "
            "its peaks are lower bounds"
        )

    def print_held(self, table: Table, rounds: int) -> None:
        """The second table: the peaks of held memory, of the runs of ``table``."""
        metric = Peak(what="held")
        reference = table.reference
        rows = rows_for(metric, reference, table.shown, "reference")
        held_table = Table(metric, reference, table.shown, rows)
        for c in table.shown:
            if c.ok:
                capped(held_table.row(c), c)
        if reference is not None and reference.ok:
            for loader, c in self.ours():
                allowance = loader.prefetch * self.size.nbytes
                plus = f" + {loader.prefetch} items" if loader.prefetch else ""
                meets = metric.median(c) <= metric.median(reference) + allowance
                meets = meets and not getattr(c, "capped", 0)
                held_table.judge(c, f"<= DataLoader's{plus}", meets)
        else:
            held_table.notes.append("no reference: DataLoader did not run, snake not judged")
        held_table.notes += [
            "held: anonymous memory of this process and those below it (Pss_Anon, a page "
            "shared after a fork counted once) + the /dev/shm files they have open or mapped "
            "and snake's segments (bytes allocated, each file once), minus the same before the "
            "run; the peak of the samples taken after each step",
            "per round: the smallest and largest ratio to DataLoader within one round",
        ]
        if any(getattr(c, "capped", 0) for c in table.shown):
            held_table.notes.append(self.cap_note())
        print_table(
            f"(slow-{self.key}) peak held memory, same runs; median of {rounds} rounds; "
            "ratio = held / DataLoader's (lower is better)",
            held_table.rows,
            held_table.notes,
        )


def capped(row: Row, c: _harness.Contender) -> None:
    """Mark a row's median as a lower bound if a run of ``c`` stopped at ``CAP``."""
    if getattr(c, "capped", 0):
        row.median = ">= " + row.median


@dataclass
class Fast(Loaders):
    """``n`` items taken as fast as they come, in items/s."""

    n: int = 0

    def title(self, rounds: int) -> str:
        return (
            f"(fast-{self.key}) {self.n:,} items of {self.size.label} taken as fast as they "
            f"come; median of {rounds} rounds; ratio = items/s / DataLoader's "
            "(higher is better)"
        )

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Fast:
        return dataclasses.replace(self, n=max(2 * WORKERS, self.n // 10))

    def contender(self, loader: Loader) -> Contender:
        return Contender(loader.name, functools.partial(self.run_fast, loader))

    @frees_nodes
    def run_fast(self, loader: Loader) -> float:
        make = functools.partial(make_item, floats=self.size.floats, marks=None)
        settle()
        out = []
        began = time.perf_counter()
        items, stop = loader.open(self.n, make)
        try:
            for a in items:
                out.append(array_ends(a))
                del a
        finally:
            stop()
        elapsed = time.perf_counter() - began
        check_items(loader.name, out, expected(self.n, self.size))
        return elapsed

    def judge(self, table: Table) -> None:
        metric, reference = table.metric, table.reference
        if reference is not None and reference.ok:
            for _, c in self.ours():
                meets = metric.ratio(c, reference) >= GOAL_FAST
                table.judge(c, f">= {GOAL_FAST:g}x DataLoader", meets)
        else:
            table.notes.append("no reference: DataLoader did not run, snake not judged")
        table.notes += [
            f"item i: np.full({self.size.floats:,}, i, float32) made in the map's function; "
            "each is checked (first and last element, size, order) and dropped; timed from "
            "before the loader starts to its workers stopped",
            self.workers_note(),
        ]


# --- command line ----------------------------------------------------------------------


def _steps(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argument_parser(
        "How far snake, DataLoader and torchdata.nodes run ahead of a slow consumer, what "
        "they hold meanwhile, and their items/s with a fast one (see the module docstring).",
        WORKLOADS,
        f"{STEPS.quick} slow steps, "
        + ", ".join(f"{s.fast.quick} fast items of {s.label}" for s in SIZES.values()),
    )
    parser.add_argument(
        "--steps",
        type=_steps,
        default=None,
        help=f"steps of the slow consumer (default: {STEPS.full}, or {STEPS.quick} with --quick)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if sys.platform != "linux":
        raise SystemExit("benchmarks/memory.py needs Linux (/proc, /dev/shm)")
    try:
        import psutil  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"benchmarks/memory.py needs psutil ({exc}): pip install psutil") from None
    rounds = timed_rounds(args)
    steps = args.steps or STEPS.pick(args.quick)
    peers = load_peers()
    print_platform("torch", "torchdata", "numpy", "psutil")
    for needs, reason in peers.missing.items():
        print(f"{needs} is not importable ({reason}): its contenders are skipped")
    print_plan(args.quick, rounds)
    preload_numpy()  # before snake's fork server starts
    workloads: dict[str, Workload] = {}
    for key, size in SIZES.items():
        workloads[f"slow-{key}"] = Slow(peers, key, steps=steps)
        workloads[f"fast-{key}"] = Fast(peers, key, n=size.fast.pick(args.quick))
    for name in WORKLOADS:
        if name in args.only:
            workload = workloads[name]
            table = run_workload(workload, rounds)
            if isinstance(workload, Slow):
                workload.print_held(table, rounds)
    settle()  # the last run's workers, of whichever loader, may still be exiting
    left = leftovers()
    print(f"\nleft behind at the end: {left}")
    if left != "nothing":
        for proc in workers():  # whose it is: a peer's forked worker, or snake's
            print(f"  pid {proc.pid}, parent {proc.ppid()}, threads {proc.num_threads()}")
    return 0 if left == "nothing" else 1


if __name__ == "__main__":
    raise SystemExit(main())
