"""Checkpoint and resume: what ``state_dict()`` costs, what keeping positions costs a
run that never saves, and how soon a resumed run gives its first batch, against
torchdata's ``StatefulDataLoader``.

Three workloads, printed as four tables:

(state) ``state_dict()`` mid-epoch. Two pipelines over ``range(N)`` (N =
    1,000,000; ``--quick``: 200,000): typical,
    ``.map(plus_one).par_map(double, executor="thread").batch(32)``, and the
    same with ``.shuffle(10_000, seed=0)`` before the batch. Each run takes
    half of its batches, then calls ``state_dict()`` 500 times at that
    position: the median call is the round's figure. Consumed through
    ``open()`` inside trio (the state is read in the caller's thread), and
    through the synchronous iterator of ``iterate()`` (each call hops to the
    pipeline's thread and back). Goals, through ``open()``: <= 50 µs a call
    and <= 1 KB of JSON typical; <= 2 ms and <= 100 KB with the 10,000-slot
    shuffle. The ``iterate()`` rows have no goal. The first call at the
    position is reported apart: it also forgets the positions the run kept
    since it last did.
(hot) the cost on the hot path of keeping positions, which every run that can
    save them does, for overhead.py's workloads (a), N ints through five
    fused ``.map(lambda x: x + 1)`` consumed by ``for x in pipeline``, and
    (b), N ints through five ``.then(ident)`` stages, collected (a table
    each): the run as it is, against the same run told that it cannot save
    its position (``_snake_runs.positions_off``), whose operators then keep
    nothing. Goal: positions kept >= 0.97x the items/s of positions off (at
    most 3 % slower).
(resume) the first batch after resuming at 90 % of a 1,000,000-item epoch
    (``--quick``: 200,000): ``from_iterable(range(N)).shuffle(10_000,
    seed=0).par_map(work, concurrency=2).batch(32)``, ``work`` a few µs of
    arithmetic in 2 worker processes. Contenders: snake resuming from a state
    saved at 90 % (and at 10 % and 50 %); the same pipeline with ``shuffle()``
    by index (a permutation of the indices, as the sampler below draws)
    resuming at 90 %; snake replaying the epoch from its
    start and skipping the first 90 % of its batches; ``StatefulDataLoader(
    Dataset(N, work), batch_size=32, shuffle=True, num_workers=2)`` (its
    sampler draws a permutation of the whole epoch) resuming from its
    ``state_dict()`` at 90 %; and, for scale, both starting the epoch with
    no state. Goals: snake's resume at 90 % >= 10x faster than
    StatefulDataLoader's (<= 0.1x its time), and roughly independent of the
    position: snake's resume at 90 % and at 50 % within 1.5x of its resume
    at 10 %.

How it is measured: shared machines are noisy, so the contenders of a
workload run interleaved, round-robin (A, B, C, A, B, C, ...), for
``--repeat`` rounds after one untimed warm-up round (state and hot: at a
twentieth of the size; resume: the same runs, but for the replay). Timed:
each ``state_dict()`` call alone (state); the whole loop or ``trio.run``
(hot); from ``iterate(state=...)``, or from building the
``StatefulDataLoader`` and loading its state, to the first batch (resume),
with its worker processes started in the timing, each run started 0.3 s
after the worker processes of the one before exited and its garbage
collected. The script imports torch first, as a training script does, so
snake's first process map, which saves the states of (resume) before any
other run, starts its workers' fork server with torch loaded, as
DataLoader's forked workers have it. The states of (resume) are saved once,
before the rounds, untimed, by one uninterrupted run of each loader, which
also records the 4 batches after each save; snake's go through
``json.dumps``/``json.loads``, StatefulDataLoader's through ``pickle``, as a
checkpoint would. Every run's output is checked: (state) a run resumed from
the last state gives the batch that followed it; (hot) count and sum, and
that a run keeps positions, or none with positions off; (resume) the first 4
batches of every run are those of the uninterrupted run at that position,
exactly (snake and StatefulDataLoader alike), so a contender that skips work
cannot look fast. A contender whose output is wrong, or that raises, leaves
the rounds: its row says failed, and a line under the table says why.

How to read a table: ``median`` is the median over the rounds, in µs per call
(state), items/s (hot, higher is better) or milliseconds (resume, lower is
better). ``vs ref`` divides a contender's median by the reference's: in (hot),
above 1 means faster than positions off; in (resume), the fraction of
StatefulDataLoader's resume time (0.10x: 10 times faster). ``per round`` is the
smallest and largest of the same ratio taken within each round, where both ran
close together in time: when it straddles the goal, the verdict is within the
machine's noise; in (state), it is the fastest and slowest round. The goal
compares the ratio of medians. The lines under a table give the other ratios
and what the rows left out.

Usage::

    python benchmarks/checkpoint.py                # full run, 5 rounds
    python benchmarks/checkpoint.py --quick        # smaller sizes, 3 rounds
    python benchmarks/checkpoint.py --only resume --repeat 7

The resume workload's StatefulDataLoader comes with torchdata (``pip install
-e ".[bench]"``); without it, its rows are left out and a note says why.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import multiprocessing
import pickle
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import _harness
import trio
from _harness import (
    Count,
    Metric,
    OutputMismatch,
    Row,
    Table,
    Workload,
    argument_parser,
    check,
    check_items,
    print_plan,
    print_platform,
    run_chosen,
    span_text,
    timed_rounds,
    versus,
)
from _snake_runs import positions_off
from overhead import STAGES, map_sync, then_snake
from parallel_workloads._common import WORKERS, Contender, Dataset, snake_start_method

import snake

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Sequence
    from types import ModuleType

#: Items per batch, and slots of the shuffles.
BATCH = 32
SHUFFLE = 10_000
#: The warm-up round runs this fraction of the timed size (state and hot).
WARMUP_FRACTION = 20


class Scaled(Metric):
    """Seconds, shown in a smaller unit."""

    unit_name = "s"
    scale = 1.0

    def text(self, value: float) -> str:
        return f"{value * self.scale:,.1f} {self.unit_name}"


class Micros(Scaled):
    unit_name, scale = "µs", 1e6


class Millis(Scaled):
    unit_name, scale = "ms", 1e3


def spread(values: Sequence[float], metric: Scaled) -> str:
    """The fastest and slowest of ``values``, in ``metric``'s unit."""
    low, high = (metric.text(v).split()[0] for v in (min(values), max(values)))
    return f"{low}-{high} {metric.unit_name}"


def goal_text(seconds: float) -> str:
    """``seconds`` in ms or µs, as a goal says it."""
    return f"{seconds * 1e3:g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:g} µs"


def json_roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` as a checkpoint file gives it back."""
    loaded: dict[str, Any] = json.loads(json.dumps(state))
    return loaded


# --- (state) the cost of state_dict() ------------------------------------------------

#: ``state_dict()`` calls per round, at one position.
CALLS = 500
#: Goals through ``open()``: seconds a call and bytes of JSON, at most.
GOAL_CALL = 50e-6
GOAL_SIZE = 1_000
GOAL_CALL_SHUFFLED = 2e-3
GOAL_SIZE_SHUFFLED = 100_000


#: The contenders, by (through iterate(), shuffled).
STATE_NAMES = {
    (False, False): "open(), typical",
    (False, True): f"open(), shuffle({SHUFFLE:,})",
    (True, False): "iterate(), typical",
    (True, True): f"iterate(), shuffle({SHUFFLE:,})",
}


def plus_one(x: int) -> int:
    return x + 1


def double(x: int) -> int:
    return 2 * x


def typical(n: int, shuffled: bool) -> snake.Pipeline[list[int]]:
    """The typical pipeline over ``range(n)``, with the shuffle if ``shuffled``."""
    pipeline = snake.from_iterable(range(n)).map(plus_one).par_map(double, executor="thread")
    if shuffled:
        pipeline = pipeline.shuffle(SHUFFLE, seed=0)
    return pipeline.batch(BATCH)


def time_calls(state_dict: Callable[[], dict[str, Any]]) -> tuple[list[float], dict[str, Any]]:
    """The seconds of each of ``CALLS`` calls, and the last state."""
    seconds = []
    for _ in range(CALLS):
        began = time.perf_counter()
        state = state_dict()
        seconds.append(time.perf_counter() - began)
    return seconds, state


@dataclass
class StateCost(Workload):
    """(state): ``state_dict()`` at half of an epoch of ``n`` items, four ways."""

    n: int
    #: Per contender: the first call's seconds, each round, and the state's JSON size.
    first: dict[str, list[float]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def half(self) -> int:
        """The batches taken before the calls."""
        return self.n // BATCH // 2

    def title(self, rounds: int) -> str:
        return (
            f"(state) state_dict() after {self.half:,} of {-(-self.n // BATCH):,} batches of "
            f"range({self.n:,}), {CALLS} calls at that position; median of {rounds} rounds"
        )

    def metric(self) -> Metric:
        return Micros()

    def warm(self) -> StateCost:
        return StateCost(max(BATCH * 2, self.n // WARMUP_FRACTION))

    def contenders(self) -> list[Contender]:
        return [
            Contender(name, functools.partial(self.run, synchronous, shuffled))
            for (synchronous, shuffled), name in STATE_NAMES.items()
        ]

    def reference(self, timed: Sequence[_harness.Contender]) -> None:
        return None

    def run(self, synchronous: bool, shuffled: bool) -> float:
        """One round: the median call's seconds."""
        name = STATE_NAMES[synchronous, shuffled]
        pipeline = typical(self.n, shuffled)
        if synchronous:
            seconds, state, following, resumed = self.iterated(pipeline)
        else:
            seconds, state, following, resumed = trio.run(self.received, pipeline)
        check(name, "the state's position", state["position"], self.half)
        check_items(f"{name}, the first batch resumed from the state", resumed, following)
        self.first.setdefault(name, []).append(seconds[0])
        self.sizes[name] = len(json.dumps(state))
        return statistics.median(seconds)

    async def received(
        self, pipeline: snake.Pipeline[list[int]]
    ) -> tuple[list[float], dict[str, Any], list[int], list[int]]:
        """Through ``open()``: the calls' seconds, the state, the batch that followed
        it and the first batch resumed from it."""
        async with pipeline.open() as items:
            for _ in range(self.half):
                await items.receive()
            seconds, state = time_calls(items.state_dict)
            following = await items.receive()
        async with pipeline.open(state=json_roundtrip(state)) as items:
            resumed = await items.receive()
        return seconds, state, following, resumed

    def iterated(
        self, pipeline: snake.Pipeline[list[int]]
    ) -> tuple[list[float], dict[str, Any], list[int], list[int]]:
        """``received``, through ``iterate()``."""
        with contextlib.closing(pipeline.iterate(epoch=0)) as it:
            for _ in range(self.half):
                next(it)
            seconds, state = time_calls(it.state_dict)
            following = next(it)
        with contextlib.closing(pipeline.iterate(state=json_roundtrip(state))) as it:
            resumed = next(it)
        return seconds, state, following, resumed

    def judge(self, table: Table) -> None:
        metric = table.metric
        assert isinstance(metric, Micros)
        by_name = {c.name: c for c in table.shown}
        for c in table.shown:
            if c.ok:
                table.row(c).per_round = spread(c.seconds, metric)
        goals = {
            False: (GOAL_CALL, GOAL_SIZE),
            True: (GOAL_CALL_SHUFFLED, GOAL_SIZE_SHUFFLED),
        }
        size_rows, first_rows = [], []
        for shuffled, (goal_call, goal_size) in goals.items():
            name = STATE_NAMES[False, shuffled]
            c = by_name[name]
            if not c.ok:
                continue
            table.judge(c, f"<= {goal_text(goal_call)}", metric.median(c) <= goal_call)
            size = Row(f"{name}: state as JSON", f"{self.sizes[name]:,} B")
            size.judge(f"<= {goal_size / 1000:g} KB", self.sizes[name] <= goal_size)
            size_rows.append(size)
            first = self.first[name]
            first_rows.append(
                Row(
                    f"{name}: first call at the position",
                    metric.text(statistics.median(first)),
                    per_round=spread(first, metric),
                )
            )
        table.rows += size_rows + first_rows
        for shuffled in (False, True):
            hop, direct = (by_name[STATE_NAMES[s, shuffled]] for s in (True, False))
            if hop.ok and direct.ok:
                table.notes.append(
                    f"{hop.name} / {direct.name}: {versus(metric, hop, direct)} "
                    "(the hop to the pipeline's thread)"
                )
        table.notes += [
            "per round: the fastest and slowest round's median call",
            "state as JSON: len(json.dumps(state)), the last state of a round "
            f"(iterate()'s: {self.sizes_note()})",
            f"first call: the first of the {CALLS}, right after the last batch taken; it also "
            "forgets the positions the run kept since it last did",
        ]

    def sizes_note(self) -> str:
        sizes = (self.sizes.get(STATE_NAMES[True, s]) for s in (False, True))
        return " and ".join("-" if size is None else f"{size:,} B" for size in sizes)


# --- (hot) keeping positions on the hot path ---------------------------------------

#: Items/s with positions kept / with positions off, at least.
GOAL_KEPT = 0.97
MAP_ITEMS = Count(full=1_000_000, quick=200_000)
THEN_ITEMS = Count(full=200_000, quick=40_000)


def keeps_positions() -> bool:
    """Whether a run started here can save its position."""
    with contextlib.closing(snake.from_iterable(range(3)).iterate()) as it:
        next(it)
        try:
            it.state_dict()
        except RuntimeError:
            return False
        return True


def with_positions(run: Callable[[int], float], n: int) -> float:
    """``run(n)``, as it is: its runs keep positions (checked, untimed)."""
    elapsed = run(n)
    if not keeps_positions():
        raise OutputMismatch("positions kept: a run cannot save its position")
    return elapsed


def without_positions(run: Callable[[int], float], n: int) -> float:
    """``run(n)``, with runs keeping no positions (checked, untimed)."""
    with positions_off():
        elapsed = run(n)
        if keeps_positions():
            raise OutputMismatch("positions off: a run inside positions_off() kept them")
    return elapsed


@dataclass
class Kept(Workload):
    """(hot): one of overhead.py's workloads, with positions kept and off."""

    what: str
    n: int
    run: Callable[[int], float]

    ref_label = "reference"

    def title(self, rounds: int) -> str:
        return f"(hot) {self.n:,} ints through {self.what}; median of {rounds} rounds"

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Kept:
        return Kept(self.what, max(1, self.n // WARMUP_FRACTION), self.run)

    def contenders(self) -> list[Contender]:
        return [
            Contender("positions off", functools.partial(without_positions, self.run, self.n)),
            Contender(
                "positions kept (as every run)", functools.partial(with_positions, self.run, self.n)
            ),
        ]

    def judge(self, table: Table) -> None:
        metric, (off, kept) = table.metric, table.shown
        if off.ok and kept.ok:
            table.judge(kept, f">= {GOAL_KEPT:g}x", metric.ratio(kept, off) >= GOAL_KEPT)
        table.notes.append(
            "positions off: the run is told it cannot save its position "
            "(_snake_runs.positions_off), so its operators keep nothing"
        )


# --- (resume) the first batch after a resume ------------------------------------------

RESUME_ITEMS = Count(full=1_000_000, quick=200_000)
#: Where the states are saved, as fractions of the epoch's batches.
RESUME_AT = (0.1, 0.5, 0.9)
#: Where the goal against StatefulDataLoader is measured.
RESUME_GOAL_AT = 0.9
#: Loops of ``work``: a few µs of arithmetic.
WORK_LOOPS = 100
#: Batches checked from each position.
CHECKED = 4
#: Seconds of quiet before each run, once the worker processes of the run before
#: have exited.
RESUME_SETTLE = 0.3
#: snake's resume time / StatefulDataLoader's, at most.
GOAL_RESUME = 0.1
#: snake's resume at 90 % (and at 50 %) / its resume at 10 %, at most.
GOAL_FLAT = 1.5


def work(i: int) -> int:
    """A few µs of arithmetic, the per-item function of every contender."""
    total = i
    for k in range(WORK_LOOPS):
        total += (i * k) % 7
    return total


def work_seconds() -> float:
    """The seconds of one call of ``work``, in this process."""
    count = 20_000
    began = time.perf_counter()
    for i in range(count):
        work(i)
    return (time.perf_counter() - began) / count


def resume_pipeline(n: int, by_index: bool = False) -> snake.Pipeline[list[int]]:
    """The resume workload; ``by_index``: shuffled by a permutation of the indices
    (``shuffle()``, as StatefulDataLoader's sampler does) instead of a buffer."""
    source = snake.from_iterable(range(n))
    shuffled = source.shuffle(seed=0) if by_index else source.shuffle(SHUFFLE, seed=0)
    return shuffled.par_map(work, concurrency=WORKERS).batch(BATCH)


def collected(run: Callable[[], float]) -> Callable[[], float]:
    """``run``, after a garbage collection (untimed): no run pays for the garbage of the
    one before, torch's reference cycles included."""

    @functools.wraps(run)
    def wrapper() -> float:
        gc.collect()
        return run()

    return wrapper


def percent(fraction: float) -> str:
    return f"{fraction:.0%}".replace("%", " %")


@dataclass
class Saved:
    """A state saved after ``batches`` batches, and the ``CHECKED`` batches after it."""

    batches: int
    state: Any
    following: list[list[int]]


def snake_saves(n: int, fractions: Sequence[float], by_index: bool = False) -> dict[float, Saved]:
    """One uninterrupted run of epoch 0, its state saved at each of ``fractions``."""
    total = -(-n // BATCH)

    async def run() -> dict[float, Saved]:
        saves = {}
        taken = 0
        async with resume_pipeline(n, by_index).open(epoch=0) as items:
            for fraction in sorted(fractions):
                at = round(fraction * total)
                for _ in range(at - taken):
                    await items.receive()
                state = json_roundtrip(items.state_dict())
                following = [await items.receive() for _ in range(CHECKED)]
                saves[fraction] = Saved(at, state, following)
                taken = at + CHECKED
        return saves

    return trio.run(run)


class Loaders:
    """torchdata's ``StatefulDataLoader`` over ``Dataset(n, work)``: the equivalent of
    the snake pipeline, its shuffle a permutation of the epoch drawn by its sampler."""

    def __init__(self) -> None:
        import torch
        from torchdata.stateful_dataloader import StatefulDataLoader

        # Said at each iterator's start in this version of torchdata; nothing to act on.
        warnings.filterwarnings("ignore", message=".*set_vital.*")
        self.torch: ModuleType = torch
        self.loader_class = StatefulDataLoader

    def loader(self, n: int) -> Any:
        return self.loader_class(
            Dataset(n, work),
            batch_size=BATCH,
            shuffle=True,
            num_workers=WORKERS,
            generator=self.torch.Generator().manual_seed(0),
        )

    @contextlib.contextmanager
    def iterating(self, loader: Any) -> Iterator[Iterator[Any]]:
        """``iter(loader)``, its worker processes stopped at the end."""
        it = iter(loader)
        try:
            yield it
        finally:
            shutdown = getattr(it, "_shutdown_workers", None)
            if callable(shutdown):
                shutdown()

    def saves(self, n: int, fractions: Sequence[float]) -> dict[float, Saved]:
        """``snake_saves``, with ``loader.state_dict()``, through ``pickle``."""
        total = -(-n // BATCH)
        loader = self.loader(n)
        saves = {}
        taken = 0
        with self.iterating(loader) as it:
            for fraction in sorted(fractions):
                at = round(fraction * total)
                for _ in range(at - taken):
                    next(it)
                state = pickle.loads(pickle.dumps(loader.state_dict()))
                saves[fraction] = Saved(at, state, [next(it).tolist() for _ in range(CHECKED)])
                taken = at + CHECKED
        return saves


def load_loaders() -> tuple[Loaders | None, str | None]:
    """torchdata's loaders, or why they cannot run."""
    try:
        return Loaders(), None
    except Exception as exc:  # ImportError, or a broken install
        return None, f"{type(exc).__name__}: {exc}"


@dataclass
class Resume(Workload):
    """(resume): the first batch after resuming at each of ``RESUME_AT`` of ``n`` items."""

    n: int
    loaders: Loaders | None
    missing: str | None  # why there are no loaders
    #: Filled once, before the rounds, by ``prepare``.
    ours: dict[float, Saved] = field(default_factory=dict)
    #: The same pipeline shuffled by index (``shuffle()``).
    indexed: dict[float, Saved] = field(default_factory=dict)
    theirs: dict[float, Saved] = field(default_factory=dict)
    prepared: dict[str, float] = field(default_factory=dict)
    per_item: float = 0.0

    settle = RESUME_SETTLE

    def title(self, rounds: int) -> str:
        return (
            f"(resume) first batch after resuming an epoch of {self.n:,} items "
            f"(shuffle({SHUFFLE:,}), {WORKERS} worker processes, batches of {BATCH}); "
            f"median of {rounds} rounds; ratio = time / StatefulDataLoader's resume"
        )

    def metric(self) -> Metric:
        return Millis()

    def prepare(self) -> None:
        """Save the states, once (untimed)."""
        if self.ours:
            return
        self.per_item = work_seconds()
        began = time.perf_counter()
        self.ours = snake_saves(self.n, (0.0, *RESUME_AT))
        self.prepared["snake"] = time.perf_counter() - began
        self.indexed = snake_saves(self.n, (RESUME_GOAL_AT,), by_index=True)
        if self.loaders is not None:
            began = time.perf_counter()
            self.theirs = self.loaders.saves(self.n, (0.0, RESUME_GOAL_AT))
            self.prepared["StatefulDataLoader"] = time.perf_counter() - began

    def warm(self) -> Resume:
        return self

    def contenders(self) -> list[Contender]:
        """In the order they run: snake's resumes from 10 % up, after its start."""
        self.prepare()
        goal = percent(RESUME_GOAL_AT)
        timed = [
            Contender("snake, start of the epoch (no state)", collected(self.start)),
            *(
                Contender(
                    f"snake, resume at {percent(f)}", collected(functools.partial(self.resume, f))
                )
                for f in RESUME_AT
            ),
            Contender(
                f"snake, shuffle() by index, resume at {goal}",
                collected(functools.partial(self.resume, RESUME_GOAL_AT, by_index=True)),
            ),
            # Seconds long, and no faster for a warm-up: it skips the warm-up round.
            Contender(
                f"snake, replay from the start to {goal}",
                collected(functools.partial(self.replay, RESUME_GOAL_AT)),
                warm=False,
            ),
        ]
        if self.loaders is not None:
            timed[:0] = [
                Contender(
                    f"StatefulDataLoader, resume at {goal}",
                    collected(functools.partial(self.loader_resume, RESUME_GOAL_AT)),
                )
            ]
            timed.append(
                Contender("StatefulDataLoader, start of the epoch", collected(self.loader_start))
            )
        return timed

    def shown(
        self, timed: Sequence[_harness.Contender], reference: _harness.Contender | None
    ) -> list[_harness.Contender]:
        """The reference, snake's resumes from 90 % down, the replay, then the starts."""
        order = [
            "StatefulDataLoader, resume",
            *(f"snake, resume at {percent(f)}" for f in reversed(RESUME_AT)),
            "snake, shuffle() by index",
            "snake, replay",
            "snake, start",
            "StatefulDataLoader, start",
        ]
        return sorted(
            timed, key=lambda c: next(k for k, o in enumerate(order) if c.name.startswith(o))
        )

    def reference(self, timed: Sequence[_harness.Contender]) -> _harness.Contender | None:
        return timed[0] if self.loaders is not None else None

    def skipped(self) -> list[str]:
        if self.missing is None:
            return []
        return [f"skipped StatefulDataLoader: torchdata is not importable ({self.missing})"]

    def judge(self, table: Table) -> None:
        metric = table.metric
        by_name = {c.name: c for c in table.shown}
        resumes = {f: by_name[f"snake, resume at {percent(f)}"] for f in RESUME_AT}
        ours = resumes[RESUME_GOAL_AT]
        if table.reference is not None and table.reference.ok and ours.ok:
            meets = metric.ratio(ours, table.reference) <= GOAL_RESUME
            table.judge(ours, f"<= {GOAL_RESUME:g}x", meets)
        first = resumes[RESUME_AT[0]]
        for fraction in RESUME_AT[1:]:
            c = resumes[fraction]
            if c.ok and first.ok:
                ratio = metric.ratio(c, first)
                verdict = "meets" if ratio <= GOAL_FLAT else "misses"
                table.notes.append(
                    f"snake's resume at {percent(fraction)} / at {percent(RESUME_AT[0])}: "
                    f"{ratio:.2f}x (per round {span_text(metric.ratios(c, first))}); "
                    f"goal <= {GOAL_FLAT:g}x ({verdict})"
                )
        prepared = ", ".join(f"{name} {s:.1f} s" for name, s in self.prepared.items())
        sizes = f"snake's state at {percent(RESUME_GOAL_AT)}: " + (
            f"{len(json.dumps(self.ours[RESUME_GOAL_AT].state)):,} B of JSON"
        )
        if self.theirs:
            sizes += (
                f"; StatefulDataLoader's: {len(pickle.dumps(self.theirs[RESUME_GOAL_AT].state)):,}"
                " B pickled"
            )
        table.notes += [
            f"work(i): {self.per_item * 1e6:.1f} µs a call in this process; every contender "
            f"calls it once per item, in {WORKERS} worker processes",
            "timed: from iterate(state=...) (snake), or from building the loader and "
            "load_state_dict() (StatefulDataLoader), to the first batch, worker start included; "
            "the replay runs the epoch from its start, timed in full to the first batch after "
            "the skipped ones (measured, not estimated)",
            "StatefulDataLoader resumes by drawing its sampler's permutation again and stepping "
            "it past the items already given (no item is loaded again); snake reads its "
            "shuffle buffer's items again by index, and its source goes on by index from where "
            f"the shuffle was ({self.reread_note()})",
            f"states saved once before the rounds, untimed: {prepared}; {sizes}",
            f"start methods: snake {snake_start_method()}; StatefulDataLoader "
            f"{multiprocessing.get_start_method()}; torch is imported before snake's first "
            "process map, as in a training script; each run starts "
            f"{RESUME_SETTLE:g} s after the workers of the run before exited, its garbage "
            "collected",
        ]

    def reread_note(self) -> str:
        """The items a resume reads again, at each position."""
        counts = []
        for fraction in RESUME_AT:
            state = self.ours[fraction].state
            source, shuffle = state["operators"][:2]
            if shuffle["own"].get("read"):  # its slots' items, by index
                counts.append(f"{len(shuffle['own']['slots']):,}")
            else:  # the shuffle had read ``SHUFFLE + drawn`` items; its oldest is at ``at``
                counts.append(f"{SHUFFLE + shuffle['own']['drawn'] - source['at']:,}")
        read = " / ".join(counts)
        return f"{read} items read again at {' / '.join(percent(f) for f in RESUME_AT)}"

    # --- the contenders ---------------------------------------------------------

    def resume(self, fraction: float, by_index: bool = False) -> float:
        saved = (self.indexed if by_index else self.ours)[fraction]
        pipeline = resume_pipeline(self.n, by_index)
        began = time.perf_counter()
        with contextlib.closing(pipeline.iterate(state=saved.state)) as it:
            first = next(it)
            elapsed = time.perf_counter() - began
            batches = [first, *(next(it) for _ in range(CHECKED - 1))]
        check_items(f"snake, resume at {percent(fraction)}", batches, saved.following)
        return elapsed

    def replay(self, fraction: float) -> float:
        saved = self.ours[fraction]
        pipeline = resume_pipeline(self.n)
        began = time.perf_counter()
        with contextlib.closing(pipeline.iterate(epoch=0)) as it:
            for _ in range(saved.batches):
                next(it)
            first = next(it)
            elapsed = time.perf_counter() - began
            batches = [first, *(next(it) for _ in range(CHECKED - 1))]
        check_items(f"snake, replay to {percent(fraction)}", batches, saved.following)
        return elapsed

    def start(self) -> float:
        saved = self.ours[0.0]
        pipeline = resume_pipeline(self.n)
        began = time.perf_counter()
        with contextlib.closing(pipeline.iterate(epoch=0)) as it:
            first = next(it)
            elapsed = time.perf_counter() - began
            batches = [first, *(next(it) for _ in range(CHECKED - 1))]
        check_items("snake, start", batches, saved.following)
        return elapsed

    def loader_resume(self, fraction: float) -> float:
        assert self.loaders is not None
        saved = self.theirs[fraction]
        began = time.perf_counter()
        loader = self.loaders.loader(self.n)
        loader.load_state_dict(saved.state)
        with self.loaders.iterating(loader) as it:
            first = next(it)
            elapsed = time.perf_counter() - began
            batches = [first, *(next(it) for _ in range(CHECKED - 1))]
        name = f"StatefulDataLoader, resume at {percent(fraction)}"
        check(name, "the first batch's size", len(first), BATCH)
        check_items(name, [b.tolist() for b in batches], saved.following)
        return elapsed

    def loader_start(self) -> float:
        assert self.loaders is not None
        saved = self.theirs[0.0]
        began = time.perf_counter()
        with self.loaders.iterating(self.loaders.loader(self.n)) as it:
            first = next(it)
            elapsed = time.perf_counter() - began
            batches = [first, *(next(it) for _ in range(CHECKED - 1))]
        check_items("StatefulDataLoader, start", [b.tolist() for b in batches], saved.following)
        return elapsed


# --- command line ----------------------------------------------------------------

STATE_ITEMS = Count(full=1_000_000, quick=200_000)
WORKLOADS = ("state", "hot", "resume")


def _parser() -> argparse.ArgumentParser:
    return argument_parser(
        "Checkpoint and resume: state_dict()'s cost, keeping positions on the hot path, "
        "and resuming against StatefulDataLoader "
        "(see the module docstring for how to read the tables).",
        WORKLOADS,
        f"state: {STATE_ITEMS.quick:,}, hot: {MAP_ITEMS.quick:,} and {THEN_ITEMS.quick:,}, "
        f"resume: {RESUME_ITEMS.quick:,}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rounds = timed_rounds(args)
    print_platform("torch", "torchdata")
    print_plan(args.quick, rounds)
    quick = args.quick
    # As a training script: torch first, then the pipelines, whichever workloads run.
    resume = Resume(RESUME_ITEMS.pick(quick), *load_loaders())
    if "resume" in args.only:
        resume.prepare()  # snake's first process map: before any other run's threads
    workloads: dict[str, Workload | Sequence[Workload]] = {
        "state": StateCost(STATE_ITEMS.pick(quick)),
        "hot": [
            Kept(
                f"{STAGES} fused .map(lambda x: x + 1), for x in pipeline",
                MAP_ITEMS.pick(quick),
                map_sync,
            ),
            Kept(f"{STAGES} .then(ident) stages, collect()", THEN_ITEMS.pick(quick), then_snake),
        ],
        "resume": resume,
    }
    run_chosen(workloads, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
