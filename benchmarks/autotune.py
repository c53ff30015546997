"""Automatic tuning: ``concurrency="auto"`` against today's default concurrency
and against the best fixed setting found by a grid search in the same run, on
the four workloads of issue 20; and ``prefetch("auto")`` on a fifth.

Each workload builds its pipeline from one function of the setting,
``pipeline(setting)``: ``None`` for today's default (the argument left out,
as a user writes it), a grid value, or ``"auto"``. Where snake accepts
``"auto"`` for a workload's stages, the workload has one more row, ``auto``,
run interleaved with the others, and judged against the issue's goals:
``auto`` >= 0.9x the items/s of the best fixed setting on every workload,
and >= 3x today's default on (io), with the items held within the
pipeline's memory bound. Where it does not, a line under the table says
that snake rejects ``"auto"``, and why.

Five workloads, a table each:

(io)     2,000 calls (``--quick``: 400) of 50 ms latency each,
         ``par_then(wait)`` with ``wait`` an ``await trio.sleep(0.05)``, then
         ``.map(mix)``, a few µs of arithmetic per item, inline. Grid:
         ``par_then``'s concurrency 16, 32, ..., 1024; today's default is
         ``par_then``'s, 16. The right concurrency is in the hundreds. Also
         the most items the stages held (``statistics()``: calls in flight,
         or done and waiting for an earlier one to leave in order), sampled
         every 10 ms by a task of its own.
(seed)   the seed workload of ``snake demo`` (``snake._apps._demo``): 100
         items (``--quick``: 50), item ``i`` read by an async sleep of
         ``(i % 3) * 0.05`` s, then ``fib(22 + i % 5)`` in worker processes.
         Grid: the read ``par_then``'s concurrency 8, 32 or 100, times the fib
         ``par_map``'s 1, 2 or 4; today's default is ``demo.pipeline``
         itself (one read in flight per item; one worker per CPU).
(images) the pipeline of ``snake images`` (``snake._apps._images.pipeline``)
         over its synthetic set of 300 JPEGs of 500x375 (``--quick``: 128),
         batches of 32 decoded in threads. Grid: the decode ``par_map``'s
         concurrency 1, 2, 3, 4, 6, 8 threads; today's default is what
         ``snake images`` builds (``concurrency=None``: one thread per CPU).
(shift)  a per-item cost that changes halfway: 2,000 items (``--quick``:
         1,000) through a process ``par_map`` of pure-Python arithmetic,
         about 50 µs per item for the first half, then about 1 ms (20x) for
         the second (calibrated at start). Grid: concurrency 1, 2, 3, 4, 6
         processes; today's default is ``concurrency=None``, one per CPU.
(bursts) a consumer that takes items in bursts: 640 items (``--quick``:
         256) of a MiB, each read by ``then`` in 5 ms (an async sleep),
         taken 32 at a time, each burst then a training step of 160 ms
         (an async sleep). Grid: ``prefetch(n)`` after the read, n = 2, 8,
         32 or 64; today's default is no prefetch. ``auto`` is
         ``prefetch("auto")``.

How it is measured: the machine is shared and noisy, so the contenders of
a workload run interleaved, round-robin (A, B, C, A, B, C, ...), for
``--repeat`` rounds, after one untimed warm-up round (at a smaller size for
io, seed and shift; images reads its files into the page cache there).
Timed: from ``pipeline.open()`` to the last item, in ``trio.run``, the
worker processes or threads started and stopped inside it, as a user's
program has them. snake's process maps fork their workers from its fork
server, started in the first warm-up round that needs it. Every run's output
is checked while it is consumed: the count of items and a checksum (ints:
the sum of each item times its position, so the order counts too; images:
the exact sum of each image's pixel sum, against each image decoded apart
before the rounds), so a contender that skips work cannot look fast. A
contender whose output is wrong, or that raises, leaves the rounds: its row
says failed, and a line under the table says why.

How to read a table: ``median`` is the median items/s (images: images/s)
over the rounds, higher is better. ``vs ref`` divides it by today's
default's: 2.00x is twice as fast. ``per round`` is the smallest and largest
of the same ratio taken within each round, where both ran close together in
time. The line under a table names the best fixed setting (the highest
median, today's default included) and its ratio to the default, and the
next best's ratio to it: when that straddles 1 round by round, the two are
within the machine's noise.

Usage::

    python benchmarks/autotune.py                # full run, 5 rounds, about 2.5 minutes
    python benchmarks/autotune.py --quick        # smaller sizes, 3 rounds
    python benchmarks/autotune.py --only io,shift --repeat 7
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import trio
from _harness import (
    Count,
    Metric,
    Table,
    Workload,
    argument_parser,
    check,
    print_plan,
    print_platform,
    run_chosen,
    timed_rounds,
    versus,
)
from _snake_runs import cpu_count, demo, imaging, seed_expected
from parallel_workloads._common import Contender, server_note, snake_start_method
from parallel_workloads.cpu import calibrate, spin

import snake

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    import _harness

# Only what a snake user's script would import is imported at the top: worker
# processes, and snake's fork server, import this script again.

Auto = Literal["auto"]
#: The setting that will have a stage tune its own concurrency while it runs.
AUTO: Auto = "auto"
#: A workload's fixed setting: a concurrency, or one per stage tuned.
S = TypeVar("S")
#: ``auto``'s items/s, at least: against the best fixed setting (every
#: workload), and against today's default (io).
GOAL_BEST = 0.9
GOAL_DEFAULT = 3.0


def knob(value: int | Auto) -> Any:
    """``value`` as a stage's ``concurrency``: snake's signatures take ints alone
    until the tuner comes, and reject ``"auto"`` when the pipeline is built."""
    return value


# --- checking outputs ------------------------------------------------------------


class Tally(Protocol):
    """What a run's items add up to, taken as they arrive: the count and a checksum."""

    def add(self, item: Any) -> None: ...

    def result(self) -> tuple[int, float]: ...


@dataclass
class Ints:
    """Ints: their count, and the sum of each times its position (the order counts)."""

    count: int = 0
    checksum: int = 0

    def add(self, item: int) -> None:
        self.count += 1
        self.checksum += self.count * item

    def result(self) -> tuple[int, float]:
        return self.count, self.checksum


def tally_of(items: Sequence[int]) -> tuple[int, float]:
    tally = Ints()
    for item in items:
        tally.add(item)
    return tally.result()


# --- a workload run at each setting of a grid ------------------------------------


@dataclass
class Grid(Workload, Generic[S]):
    """A pipeline run at today's default, at each of ``grid`` (``default`` being
    the grid value today's default amounts to), and at ``"auto"`` once snake takes it.

    A subclass builds the pipeline (``pipeline``), names a setting (``label``)
    and says what the output must add up to (``expected``).
    """

    #: Items each run gives (images: images), counted by the metric.
    n: int
    grid: tuple[S, ...]
    default: S
    #: Why there is no auto row (None: there is one).
    no_auto: str | None = field(default=None, init=False)
    #: The most items held in each run, by contender (where sampled).
    held: dict[str, list[int]] = field(default_factory=dict, init=False)

    ref_label = "today's default, reference"
    #: Whether to sample the items held while each run goes on.
    samples_held = False
    #: Whether ``auto`` must also beat today's default by ``GOAL_DEFAULT``.
    goal_default = False
    #: Whether to time ``auto``'s next epoch too: the same pipeline object
    #: run a second time, which starts where its first run ended.
    again = False

    # --- what a subclass says ------------------------------------------------------

    def pipeline(self, setting: S | Auto | None) -> snake.Pipeline[Any]:
        """The pipeline at ``setting``; ``None``: as today's defaults build it."""
        raise NotImplementedError

    def label(self, setting: S | Auto) -> str:
        return f"concurrency={setting}"

    def expected(self) -> tuple[int, float]:
        raise NotImplementedError

    def tally(self) -> Tally:
        return Ints()

    def warm_size(self) -> int:
        """``n`` for the warm-up round."""
        return self.n

    async def consumed(self, tally: Tally) -> None:
        """What the consumer does after each item: nothing, by default."""

    # --- the contenders ----------------------------------------------------------

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Grid[S]:
        return dataclasses.replace(self, n=self.warm_size())

    def contenders(self) -> list[Contender]:
        """Today's default (the reference), the grid but its default, then auto."""
        cs = [Contender(self.label(self.default), functools.partial(self.run, None))]
        cs += [
            Contender(self.label(s), functools.partial(self.run, s))
            for s in self.grid
            if s != self.default
        ]
        if self.takes_auto():
            cs.append(Contender(self.label(AUTO), functools.partial(self.run, AUTO)))
            if self.again:
                cs.append(Contender(self.again_label(), functools.partial(self.run, AUTO, True)))
        return cs

    def again_label(self) -> str:
        return f"{self.label(AUTO)}, next epoch"

    def takes_auto(self) -> bool:
        """Whether snake builds the pipeline with ``"auto"``; if not, ``no_auto`` says why."""
        try:
            self.pipeline(AUTO)
        except (TypeError, ValueError) as exc:
            self.no_auto = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def run(self, setting: S | Auto | None, again: bool = False) -> float:
        """One timed run at ``setting``, its output checked; ``again``: the
        second run of one pipeline object, the first untimed."""
        name = (
            self.again_label()
            if again
            else self.label(self.default if setting is None else setting)
        )
        elapsed, (count, checksum), held = trio.run(self.timed, setting, again)
        want_count, want_checksum = self.expected()
        check(name, "the count of items", count, want_count)
        check(name, "the checksum", checksum, want_checksum)
        if self.samples_held:
            self.held.setdefault(name, []).append(held)
        return elapsed

    async def timed(
        self, setting: S | Auto | None, again: bool = False
    ) -> tuple[float, tuple[int, float], int]:
        """The seconds from ``open()`` to the last item, what the items add up to, and
        the most items held (0 if not sampled); ``again``: of a second run."""
        pipeline = self.pipeline(setting)
        if again:  # the first epoch, as the consumer takes it
            async with pipeline.open() as items:
                await self.take(items, self.tally())
        tally = self.tally()
        held = [0]
        began = time.perf_counter()
        async with pipeline.open() as items, trio.open_nursery() as nursery:
            if self.samples_held:
                nursery.start_soon(sample_held, items, held)
            await self.take(items, tally)
            nursery.cancel_scope.cancel()
        return time.perf_counter() - began, tally.result(), held[0]

    async def take(self, items: snake.PipelineReceiver[Any], tally: Tally) -> None:
        """Every item, added to ``tally``, as the workload's consumer takes them."""
        async for item in items:
            tally.add(item)
            await self.consumed(tally)

    # --- the table -----------------------------------------------------------------

    def judge(self, table: Table) -> None:
        metric, reference = table.metric, table.reference
        assert reference is not None
        auto_name = self.label(AUTO)
        fixed = [c for c in table.shown if c.ok and c.name not in (auto_name, self.again_label())]
        if reference.ok and fixed:
            ranked = sorted(fixed, key=metric.median, reverse=True)
            best = ranked[0]
            row = table.row(best)
            row.contender = (
                f"{row.contender[:-1]}; best fixed)"
                if best is reference
                else f"{row.contender} (best fixed)"
            )
            if best is reference:
                line = f"best fixed: {best.name}, today's default"
            else:
                line = (
                    f"best fixed: {best.name}, at {versus(metric, best, reference)} of the default"
                )
            if len(ranked) > 1:
                line += f"; next best: {ranked[1].name}, at {versus(metric, ranked[1], best)} of it"
            table.notes.append(line)
            auto = next((c for c in table.shown if c.name == auto_name), None)
            if auto is not None and auto.ok:
                self.judge_auto(table, auto, best)
            again = next((c for c in table.shown if c.name == self.again_label()), None)
            if again is not None and again.ok:
                table.notes.append(
                    f"auto's next epoch / best fixed ({best.name}): {versus(metric, again, best)}"
                )
        if self.held:
            table.notes.append(self.held_note(table.shown))
        if self.no_auto is not None:
            table.notes.append(
                f'no auto row: snake does not take concurrency="auto" yet ({self.no_auto})'
            )

    def judge_auto(self, table: Table, auto: _harness.Contender, best: _harness.Contender) -> None:
        """Goals: >= ``GOAL_BEST`` x the best fixed setting (and ``GOAL_DEFAULT`` x the
        default, where the workload asks it)."""
        metric, reference = table.metric, table.reference
        assert reference is not None
        goal = f">= {GOAL_BEST:g}x best fixed"
        meets = metric.ratio(auto, best) >= GOAL_BEST
        if self.goal_default:
            goal += f", >= {GOAL_DEFAULT:g}x ref"
            meets = meets and metric.ratio(auto, reference) >= GOAL_DEFAULT
        table.judge(auto, goal, meets)
        table.notes.append(f"auto / best fixed ({best.name}): {versus(metric, auto, best)}")

    def held_note(self, shown: Sequence[_harness.Contender]) -> str:
        most = ", ".join(
            f"{c.name}: {max(self.held[c.name]):,}" for c in shown if self.held.get(c.name)
        )
        return (
            "most items held by the stages (calls in flight or waiting to leave in order, "
            f"from statistics() every {HELD_EVERY * 1e3:g} ms; the most of any round): {most}"
        )


#: Seconds between two samples of the items held.
HELD_EVERY = 0.01


async def sample_held(items: snake.PipelineReceiver[Any], held: list[int]) -> None:
    """Keep in ``held[0]`` the most items the stages have held so far."""
    while True:
        stats = items.statistics()
        held[0] = max(held[0], sum(s.in_flight or 0 for s in stats.stages))
        await trio.sleep(HELD_EVERY)


# --- (io) calls of 50 ms -----------------------------------------------------------

LATENCY = 0.05
IO_CALLS = Count(full=2_000, quick=400)
IO_WARM = 200
IO_GRID = (16, 32, 64, 128, 256, 512, 1024)
#: ``par_then``'s concurrency when none is given.
PAR_THEN_DEFAULT: int = inspect.signature(snake.Pipeline.par_then).parameters["concurrency"].default


async def wait(i: int) -> int:
    """A call of ``LATENCY`` seconds: a request to a slow service."""
    await trio.sleep(LATENCY)
    return i


def mix(i: int) -> int:
    """A few µs of arithmetic."""
    x = i
    for _ in range(16):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


@dataclass
class Io(Grid[int]):
    samples_held = True
    goal_default = True
    again = True

    def title(self, rounds: int) -> str:
        return (
            f"(io) {self.n:,} calls of {LATENCY * 1e3:g} ms (par_then(wait)), then "
            f".map(mix); par_then's concurrency; median of {rounds} rounds"
        )

    def pipeline(self, setting: int | Auto | None) -> snake.Pipeline[int]:
        source = snake.from_iterable(range(self.n))
        if setting is None:
            return source.par_then(wait).map(mix)
        return source.par_then(wait, concurrency=knob(setting)).map(mix)

    def expected(self) -> tuple[int, float]:
        return tally_of([mix(i) for i in range(self.n)])

    def warm_size(self) -> int:
        return min(self.n, IO_WARM)


# --- (seed) the seed workload ------------------------------------------------------

SEED_UNIT = 0.05
SEED_ITEMS = Count(full=100, quick=50)
SEED_WARM = 12
SEED_READS = (8, 32, 100)
SEED_WORKERS = (1, 2, 4)

#: (the read par_then's concurrency, the fib par_map's)
Pair = tuple[int, int]


@dataclass
class Seed(Grid[Pair]):
    def title(self, rounds: int) -> str:
        return (
            f"(seed) seed workload: {self.n} items, async read (i % 3) * {SEED_UNIT} s, "
            f"then fib(22 + i % 5) in worker processes; the read par_then's concurrency "
            f"x the fib par_map's; median of {rounds} rounds"
        )

    def label(self, setting: Pair | Auto) -> str:
        if setting == AUTO:
            return "par_then auto, par_map auto"
        reads, workers = setting
        return f"par_then {reads}, par_map {workers}"

    def pipeline(self, setting: Pair | Auto | None) -> snake.Pipeline[int]:
        if setting is None:
            return demo.pipeline(self.n, SEED_UNIT)
        reads, workers = (setting, setting) if setting == AUTO else setting
        return (
            snake.from_iterable(range(self.n))
            .par_then(functools.partial(demo.read, unit=SEED_UNIT), concurrency=knob(reads))
            .map(demo.fib_input)
            .par_map(demo.fib, concurrency=knob(workers))
        )

    def expected(self) -> tuple[int, float]:
        return tally_of(seed_expected(self.n))

    def warm_size(self) -> int:
        return min(self.n, SEED_WARM)

    def judge(self, table: Table) -> None:
        super().judge(table)
        table.notes.append(
            f"today's default: demo.pipeline({self.n}, {SEED_UNIT}), one read in flight "
            f"per item and one worker per CPU ({cpu_count()}); a par_map of more workers "
            f"than CPUs starts them all{server_note()}"
        )


# --- (images) snake images, decoding in threads -------------------------------------

IMAGES = Count(full=300, quick=128)  # full: the set that `snake images` makes
IMAGES_GRID = (1, 2, 3, 4, 6, 8)


class ImagesPerSecond(Metric):
    def text(self, value: float) -> str:
        return f"{value:,.0f} images/s"


@dataclass
class Batches:
    """Batches of images: the count of images, and the exact sum of each image's
    pixel sum (in any order: ``math.fsum`` rounds once)."""

    count: int = 0
    sums: list[float] = field(default_factory=list)

    def add(self, batch: Any) -> None:
        self.count += len(batch)
        self.sums += [float(image.sum(dtype="float64")) for image in batch]

    def result(self) -> tuple[int, float]:
        return self.count, math.fsum(self.sums)


@dataclass
class Images(Grid[int]):
    folder: str = ""

    def title(self, rounds: int) -> str:
        return (
            f"(images) snake images: {self.n} JPEGs of 500x375, batches of 32 decoded in "
            f"threads; the decode par_map's concurrency; images/s, median of {rounds} rounds"
        )

    def pipeline(self, setting: int | Auto | None) -> snake.Pipeline[Any]:
        build = imaging().pipeline
        pipeline: snake.Pipeline[Any]
        if setting is None:  # as `snake images` builds it
            pipeline = build(self.folder, executor="thread")
        else:
            pipeline = build(self.folder, executor="thread", concurrency=knob(setting))
        return pipeline

    def metric(self) -> Metric:
        return ImagesPerSecond(self.n)

    def tally(self) -> Tally:
        return Batches()

    @functools.cached_property
    def decoded_apart(self) -> tuple[int, float]:
        """Each image decoded on its own, as the pipeline's batches decode it."""
        images = imaging()
        totals = Batches()
        for index, path in enumerate(images.jpegs(self.folder)):
            totals.add([images.load((index, path))])
        return totals.result()

    def expected(self) -> tuple[int, float]:
        return self.decoded_apart

    def judge(self, table: Table) -> None:
        super().judge(table)
        table.notes.append(
            f"today's default: what `snake images` builds, one decode thread per CPU "
            f"({cpu_count()}); synthetic set in {self.folder}"
        )


# --- (shift) a cost that changes halfway ---------------------------------------------

SHIFT_ITEMS = Count(full=2_000, quick=1_000)
SHIFT_WARM = 200
SHIFT_GRID = (1, 2, 3, 4, 6)
#: Seconds of a slow item; fast ones take a ``SHIFT_FACTOR``-th of it.
SHIFT_SLOW = 0.001
SHIFT_FACTOR = 20


def shifting(i: int, half: int, fast: int, slow: int) -> int:
    """``spin`` of ``fast`` loops for the items before ``half``, of ``slow`` after."""
    return spin(i, fast if i < half else slow)[1]


@dataclass
class Shift(Grid[int]):
    #: ``spin`` loops of a slow item (``calibrate``d once, before the rounds).
    loops: int = 0

    def title(self, rounds: int) -> str:
        return (
            f"(shift) {self.n:,} items of pure-Python work in worker processes, "
            f"about {SHIFT_SLOW / SHIFT_FACTOR * 1e6:g} µs each for the first half, then "
            f"{SHIFT_SLOW * 1e3:g} ms ({SHIFT_FACTOR}x); par_map's concurrency; "
            f"median of {rounds} rounds"
        )

    @property
    def work(self) -> functools.partial[int]:
        return functools.partial(
            shifting, half=self.n // 2, fast=max(1, self.loops // SHIFT_FACTOR), slow=self.loops
        )

    def pipeline(self, setting: int | Auto | None) -> snake.Pipeline[int]:
        source = snake.from_iterable(range(self.n))
        if setting is None:
            return source.par_map(self.work)
        return source.par_map(self.work, concurrency=knob(setting))

    @functools.cached_property
    def computed_apart(self) -> tuple[int, float]:
        """The items computed here: ``spin`` depends on ``i % 97`` and the loops alone."""
        work, half = self.work, self.n // 2
        value = {
            (i % 97, i < half): work(i) for i in (*range(half)[:97], *range(half, self.n)[:97])
        }
        return tally_of([value[i % 97, i < half] for i in range(self.n)])

    def expected(self) -> tuple[int, float]:
        return self.computed_apart

    def warm_size(self) -> int:
        return min(self.n, SHIFT_WARM)

    def judge(self, table: Table) -> None:
        super().judge(table)
        table.notes.append(
            f"work: {self.loops:,} loops of spin a slow item, calibrated to about "
            f"{SHIFT_SLOW * 1e3:g} ms in this process; today's default: one worker per CPU "
            f"({cpu_count()}){server_note()}"
        )


# --- (bursts) a consumer that takes items in bursts: prefetch's size ------------------

BURST_ITEMS = Count(full=640, quick=256)
BURST_WARM = 64
#: Items of a MiB, each read in 5 ms; taken 32 at a time, then a step as long
#: as reading 32 takes.
BURST_BYTES = 2**20
BURST_READ = 0.005
BURST = 32
#: prefetch's size; 0: no prefetch, today's default.
BURST_GRID = (0, 2, 8, 32, 64)


async def read_large(i: int) -> Any:
    """A read of ``BURST_READ`` seconds that gives a MiB: an image, a shard."""
    import numpy as np

    await trio.sleep(BURST_READ)
    return np.full(BURST_BYTES // 8, i, dtype=np.int64)


class FirstInts(Ints):
    """Ints, each the first of an array's."""

    def add(self, item: Any) -> None:
        super().add(int(item[0]))


@dataclass
class Bursts(Grid[int]):
    again = True

    def title(self, rounds: int) -> str:
        return (
            f"(bursts) {self.n} items of {BURST_BYTES // 2**20} MiB read in "
            f"{BURST_READ * 1e3:g} ms each (then(read)), taken {BURST} at a time, each "
            f"burst then a step of {BURST * BURST_READ * 1e3:g} ms; prefetch's size; "
            f"median of {rounds} rounds"
        )

    def label(self, setting: int | Auto) -> str:
        if setting == AUTO:
            return 'prefetch("auto")'
        return "no prefetch" if setting == 0 else f"prefetch({setting})"

    def pipeline(self, setting: int | Auto | None) -> snake.Pipeline[Any]:
        read = snake.from_iterable(range(self.n)).then(read_large)
        return read if not setting else read.prefetch(setting)

    def tally(self) -> Tally:
        return FirstInts()

    async def consumed(self, tally: Tally) -> None:
        assert isinstance(tally, Ints)
        if tally.count % BURST == 0:
            await trio.sleep(BURST * BURST_READ)  # a training step

    def expected(self) -> tuple[int, float]:
        return tally_of(range(self.n))

    def warm_size(self) -> int:
        return min(self.n, BURST_WARM)

    def judge(self, table: Table) -> None:
        super().judge(table)
        table.notes.append(
            f"reading and the steps each take {self.n * BURST_READ:g} s in all: overlapped, "
            "the run takes that; today's default: no prefetch (the channels between stages "
            "hold a few large items)"
        )


# --- command line ----------------------------------------------------------------

WORKLOADS = ("io", "seed", "images", "shift", "bursts")


def _parser() -> argparse.ArgumentParser:
    return argument_parser(
        'Automatic tuning: "auto" against today\'s default and the best fixed setting '
        "of a grid, on issue 20's four workloads and a fifth for prefetch "
        "(see the module docstring for how to read the tables).",
        WORKLOADS,
        f"io: {IO_CALLS.quick:,} calls, seed: {SEED_ITEMS.quick} items, "
        f"images: {IMAGES.quick}, shift: {SHIFT_ITEMS.quick:,} items, "
        f"bursts: {BURST_ITEMS.quick} items",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rounds = timed_rounds(args)
    quick = args.quick
    print_platform("numpy", "pillow")
    print(f"snake's start method: {snake_start_method()}; {cpu_count()} CPUs usable")
    print_plan(quick, rounds)
    workloads: dict[str, Workload] = {
        "io": Io(IO_CALLS.pick(quick), IO_GRID, PAR_THEN_DEFAULT),
    }
    seed_items = SEED_ITEMS.pick(quick)
    workloads["seed"] = Seed(
        seed_items,
        tuple(itertools.product(SEED_READS, SEED_WORKERS)),
        (max(1, seed_items), cpu_count()),
    )
    if "images" in args.only:
        count = IMAGES.pick(quick)
        folder = imaging().synthetic(count)
        workloads["images"] = Images(count, IMAGES_GRID, cpu_count(), folder=folder)
    if "shift" in args.only:
        loops = calibrate(SHIFT_SLOW)
        workloads["shift"] = Shift(SHIFT_ITEMS.pick(quick), SHIFT_GRID, cpu_count(), loops=loops)
    workloads["bursts"] = Bursts(BURST_ITEMS.pick(quick), BURST_GRID, 0)
    run_chosen(workloads, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
