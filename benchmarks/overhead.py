"""What snake's machinery costs, measured against doing the same work by hand.

Three workloads, each printed as a table:

(a) inline ops: N ints through five fused ``.map(lambda x: x + 1)``, consumed
    three ways (``for x in pipeline``, ``await pipeline.collect()``, and
    ``async with pipeline.open() as items: async for x in items``), against
    five nested generator expressions over ``range(N)`` consumed by a ``for``
    loop. Goal: every snake variant >= 0.5x the generator's items/s.
(b) stages: N ints through five ``.then(ident)`` stages, collected, against
    a hand-written trio chain (a source task and five relay tasks, one item
    per ``send``, joined by memory channels of buffer size 0 and 64; the
    faster of the two is the reference). Goal: >= 10x its items/s.
(c) the seed workload ``snake._demo.pipeline(100, 0.05)`` (async reads, then
    fib in worker processes started afresh for every run) against its ideal
    time from ``snake._demo.estimate``, plus the time to the first item.
    No goal: the ratio elapsed/ideal is reported.

How it is measured: shared machines are noisy (single-core speed can change
by 1.7x within seconds), so the contenders of a workload run interleaved,
round-robin (A, B, C, A, B, C, ...), for ``--repeat`` rounds after one
untimed warm-up round at a twentieth of the size (workloads a and b). Timed
regions: a whole ``trio.run`` for the trio contenders of (a) and (b), the
whole loop for the synchronous ones; in (c), from just before ``collect()``
or ``open()`` to the last (or first) item, inside ``trio.run``. Every run's
output is checked (count and sum, or the exact values), so a contender that
silently did nothing cannot look fast.

How to read a table: ``median`` is the median over the rounds, in items/s
(higher is better) or seconds (lower is better). ``vs ref`` divides the
contender's median by the reference's: a speed ratio for (a) and (b), where
above 1 means faster than the reference, and elapsed/ideal for (c), where 1
would be perfect. ``per round`` is the smallest and largest of the same
ratio taken within each round, where both ran close together in time: when
it straddles the goal, the verdict is within the machine's noise. The goal
compares the ratio of medians.

Usage::

    python benchmarks/overhead.py                # full run, 5 rounds
    python benchmarks/overhead.py --quick        # smaller sizes, 3 rounds
    python benchmarks/overhead.py --only b,c --repeat 7
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

import snake
import snake._demo
from snake._executors import cpu_count

#: Maps (a) and ``then`` stages (b) in each pipeline.
STAGES = 5
#: Buffer sizes of the hand-written chain's channels in (b).
CHAIN_BUFFERS = (0, 64)
#: The seed workload of (c).
SEED_ITEMS = 100
SEED_UNIT = 0.05
#: Goals, as ratios of items/s against the reference.
GOAL_MAP = 0.5
GOAL_THEN = 10.0
#: The warm-up round runs this fraction of the timed size.
WARMUP_FRACTION = 20


class OutputMismatch(RuntimeError):
    """A contender produced the wrong items: its timing would mean nothing."""


def check(name: str, what: str, got: object, expected: object) -> None:
    if got != expected:
        raise OutputMismatch(f"{name}: {what} is {got!r}, expected {expected!r}")


# --- running contenders round-robin -------------------------------------------


@dataclass
class Contender:
    """One way of doing a workload's work; ``run`` returns the timed seconds."""

    name: str
    run: Callable[[], float]
    seconds: list[float] = field(default_factory=list)


def round_robin(contenders: Sequence[Contender], rounds: int) -> None:
    """Run the contenders interleaved, A B C A B C ..., ``rounds`` times."""
    for _ in range(rounds):
        for contender in contenders:
            contender.seconds.append(contender.run())


def warm_up(contenders: Sequence[Contender]) -> None:
    for contender in contenders:
        contender.run()


# --- printing -------------------------------------------------------------------


@dataclass
class Row:
    contender: str
    median: str
    ratio: str = "-"
    per_round: str = "-"
    goal: str = "-"
    verdict: str = "-"


HEADERS = Row("contender", "median", "vs ref", "per round", "goal", "verdict")
#: Columns holding numbers are right-aligned.
RIGHT = (False, True, True, True, False, False)


def print_table(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> None:
    cells = [list(vars(row).values()) for row in (HEADERS, *rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(RIGHT))]

    def fmt(line: list[str]) -> str:
        parts = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(line, widths, RIGHT, strict=True)
        ]
        return "  ".join(parts).rstrip()

    print()
    print(title)
    print(fmt(cells[0]))
    print("  ".join("-" * w for w in widths))
    for line in cells[1:]:
        print(fmt(line))
    for note in notes:
        print(f"  {note}")


def rate_text(rate: float) -> str:
    return f"{rate:,.0f} items/s"


def ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}x"


def speed_rows(
    n: int,
    reference: Contender,
    others: Sequence[Contender],
    goal: float | None,
    ref_label: str = "reference",
) -> list[Row]:
    """Rows in items/s with ratios against ``reference`` (higher is better)."""
    ref_rates = [n / s for s in reference.seconds]
    ref_median = statistics.median(ref_rates)
    rows = [Row(f"{reference.name} ({ref_label})", rate_text(ref_median), "1.00x")]
    for contender in others:
        rates = [n / s for s in contender.seconds]
        median = statistics.median(rates)
        ratio = median / ref_median
        per_round = [r / ref for r, ref in zip(rates, ref_rates, strict=True)]
        row = Row(
            contender.name,
            rate_text(median),
            ratio_text(ratio),
            f"{min(per_round):.2f}-{max(per_round):.2f}x",
        )
        if goal is not None:
            row.goal = f">= {goal:g}x"
            row.verdict = "meets" if ratio >= goal else "misses"
        rows.append(row)
    return rows


# --- (a) fused inline maps ------------------------------------------------------


def map_pipeline(n: int) -> snake.Pipeline[int]:
    pipeline = snake.from_iterable(range(n))
    for _ in range(STAGES):
        pipeline = pipeline.map(lambda x: x + 1)
    return pipeline


def map_expected(n: int) -> tuple[int, int]:
    """Count and sum of ``range(n)`` after ``STAGES`` increments."""
    return n, n * (n - 1) // 2 + STAGES * n


def map_generators(n: int) -> float:
    expected = map_expected(n)
    began = time.perf_counter()
    g = iter(range(n))
    g = (x + 1 for x in g)
    g = (x + 1 for x in g)
    g = (x + 1 for x in g)
    g = (x + 1 for x in g)
    g = (x + 1 for x in g)
    count = total = 0
    for x in g:
        count += 1
        total += x
    elapsed = time.perf_counter() - began
    check("generator chain", "(count, sum)", (count, total), expected)
    return elapsed


def map_sync(n: int) -> float:
    pipeline, expected = map_pipeline(n), map_expected(n)
    began = time.perf_counter()
    count = total = 0
    for x in pipeline:
        count += 1
        total += x
    elapsed = time.perf_counter() - began
    check("for x in pipeline", "(count, sum)", (count, total), expected)
    return elapsed


def map_collect(n: int) -> float:
    pipeline, expected = map_pipeline(n), map_expected(n)
    began = time.perf_counter()
    out = trio.run(pipeline.collect)
    elapsed = time.perf_counter() - began
    check("collect()", "(count, sum)", (len(out), sum(out)), expected)
    return elapsed


def map_open(n: int) -> float:
    pipeline, expected = map_pipeline(n), map_expected(n)

    async def consume() -> tuple[int, int]:
        count = total = 0
        async with pipeline.open() as items:
            async for x in items:
                count += 1
                total += x
        return count, total

    began = time.perf_counter()
    got = trio.run(consume)
    elapsed = time.perf_counter() - began
    check("open() + async for", "(count, sum)", got, expected)
    return elapsed


def workload_a(n: int, rounds: int) -> None:
    def contenders(size: int) -> list[Contender]:
        return [
            Contender("generator chain", lambda: map_generators(size)),
            Contender("for x in pipeline", lambda: map_sync(size)),
            Contender("await collect()", lambda: map_collect(size)),
            Contender("open() + async for", lambda: map_open(size)),
        ]

    warm_up(contenders(max(1, n // WARMUP_FRACTION)))
    timed = contenders(n)
    round_robin(timed, rounds)
    print_table(
        f"(a) {n:,} ints through {STAGES} fused .map(lambda x: x + 1); "
        f"median of {rounds} rounds",
        speed_rows(n, timed[0], timed[1:], GOAL_MAP),
        [
            f"reference: {STAGES} nested generator expressions over range(n), "
            "consumed by a for loop"
        ],
    )


# --- (b) then stages ------------------------------------------------------------


async def ident(x: int) -> int:
    return x


def then_expected(n: int) -> tuple[int, int]:
    return n, n * (n - 1) // 2


async def chain_source(send: trio.MemorySendChannel[int], n: int) -> None:
    async with send:
        for i in range(n):
            await send.send(i)


async def chain_relay(
    recv: trio.MemoryReceiveChannel[int], send: trio.MemorySendChannel[int]
) -> None:
    async with recv, send:
        async for x in recv:
            await send.send(await ident(x))


async def hand_chain(n: int, buffer: int) -> list[int]:
    """A source task and ``STAGES`` relays, one item per send, then collect."""
    async with trio.open_nursery() as nursery:
        send, recv = trio.open_memory_channel[int](buffer)
        nursery.start_soon(chain_source, send, n)
        for _ in range(STAGES):
            send, next_recv = trio.open_memory_channel[int](buffer)
            nursery.start_soon(chain_relay, recv, send)
            recv = next_recv
        async with recv:
            return [x async for x in recv]


def then_hand(n: int, buffer: int) -> float:
    began = time.perf_counter()
    out = trio.run(hand_chain, n, buffer)
    elapsed = time.perf_counter() - began
    got = (len(out), sum(out))
    check(f"hand-written chain, buffer {buffer}", "(count, sum)", got, then_expected(n))
    return elapsed


def then_snake(n: int) -> float:
    pipeline = snake.from_iterable(range(n))
    for _ in range(STAGES):
        pipeline = pipeline.then(ident)
    began = time.perf_counter()
    out = trio.run(pipeline.collect)
    elapsed = time.perf_counter() - began
    check("snake collect()", "(count, sum)", (len(out), sum(out)), then_expected(n))
    return elapsed


def workload_b(n: int, rounds: int) -> None:
    def contenders(size: int) -> list[Contender]:
        hand = [
            Contender(f"hand-written, buffer {b}", functools.partial(then_hand, size, b))
            for b in CHAIN_BUFFERS
        ]
        return [*hand, Contender("snake, collect()", lambda: then_snake(size))]

    warm_up(contenders(max(1, n // WARMUP_FRACTION)))
    timed = contenders(n)
    round_robin(timed, rounds)
    hand, ours = timed[:-1], timed[-1]
    reference = max(hand, key=lambda c: statistics.median(n / s for s in c.seconds))
    slower = [c for c in hand if c is not reference]
    rows = speed_rows(n, reference, [], None, "reference, the faster")
    rows += speed_rows(n, reference, slower, None)[1:]
    rows += speed_rows(n, reference, [ours], GOAL_THEN)[1:]
    print_table(
        f"(b) {n:,} ints through {STAGES} .then(ident) stages; median of {rounds} rounds",
        rows,
        [
            f"hand-written: a source task + {STAGES} tasks, one item per send, "
            "memory channels of the buffer size shown"
        ],
    )


# --- (c) the seed workload -------------------------------------------------------


@dataclass
class SeedRun:
    """The seed workload, collected or iterated; records the time to the first item."""

    expected: list[int]
    first_item: list[float] = field(default_factory=list)

    def collect(self) -> float:
        async def run() -> tuple[float, list[int]]:
            pipeline = snake._demo.pipeline(SEED_ITEMS, SEED_UNIT)
            began = time.perf_counter()
            out = await pipeline.collect()
            return time.perf_counter() - began, out

        elapsed, out = trio.run(run)
        check("seed collect()", "output", out, self.expected)
        return elapsed

    def iterate(self) -> float:
        async def run() -> tuple[float, float, list[int]]:
            pipeline = snake._demo.pipeline(SEED_ITEMS, SEED_UNIT)
            began = time.perf_counter()
            async with pipeline.open() as items:
                out = [await items.receive()]
                first = time.perf_counter() - began
                out += [x async for x in items]
            return time.perf_counter() - began, first, out

        elapsed, first, out = trio.run(run)
        check("seed open()", "output", out, self.expected)
        self.first_item.append(first)
        return elapsed


def seed_expected() -> list[int]:
    fib, fib_input = snake._demo.fib, snake._demo.fib_input
    values = {n: fib(n) for n in {fib_input(i) for i in range(SEED_ITEMS)}}
    return [values[fib_input(i)] for i in range(SEED_ITEMS)]


def workload_c(rounds: int) -> None:
    seed = SeedRun(seed_expected())
    estimates: list[snake._demo.Estimate] = []

    def ideal() -> float:
        estimates.append(snake._demo.estimate(SEED_ITEMS, SEED_UNIT))
        return estimates[-1].ideal

    # The ideal is re-estimated every round: it times fib, so it drifts with
    # the machine's speed just as the pipeline does.
    reference = Contender("ideal (estimate)", ideal)
    runs = [
        Contender("await collect()", seed.collect),
        Contender("open() + async for", seed.iterate),
    ]
    round_robin([reference, *runs], rounds)

    ref_median = statistics.median(reference.seconds)
    rows = [Row(reference.name, f"{ref_median:.3f} s", "1.00x")]
    for contender in runs:
        median = statistics.median(contender.seconds)
        per_round = [s / r for s, r in zip(contender.seconds, reference.seconds, strict=True)]
        rows.append(
            Row(
                contender.name,
                f"{median:.3f} s",
                ratio_text(median / ref_median),
                f"{min(per_round):.2f}-{max(per_round):.2f}x",
            )
        )
    first = seed.first_item
    rows.append(
        Row(
            "first item (open, receive)",
            f"{statistics.median(first):.3f} s",
            per_round=f"{min(first):.3f}-{max(first):.3f} s",
        )
    )
    sequential = statistics.median(e.sequential for e in estimates)
    cpu = statistics.median(e.cpu for e in estimates)
    print_table(
        f"(c) seed workload _demo.pipeline({SEED_ITEMS}, {SEED_UNIT}); "
        f"median of {rounds} rounds; ratio = elapsed / ideal (lower is better)",
        rows,
        [
            f"ideal = longest read + fib CPU time / {cpu_count()} cores "
            f"(fib alone: {cpu:.3f} s; sequential run: {sequential:.3f} s)",
            "each run starts and stops its own worker processes, inside the timing",
            "no fixed goal; issue #3 will target <= 1.1x",
        ],
    )


# --- command line ----------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    map_items: int
    then_items: int
    rounds: int


FULL = Sizes(map_items=1_000_000, then_items=200_000, rounds=5)
QUICK = Sizes(map_items=200_000, then_items=40_000, rounds=3)
WORKLOADS = ("a", "b", "c")
MIN_ROUNDS = 3


def _rounds(text: str) -> int:
    value = int(text)
    if value < MIN_ROUNDS:
        raise argparse.ArgumentTypeError(f"must be >= {MIN_ROUNDS}, got {value}")
    return value


def _workloads(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(WORKLOADS)}, got {text!r}"
        )
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="snake's overhead against hand-written equivalents "
        "(see the module docstring for how to read the tables)."
    )
    parser.add_argument(
        "--repeat",
        type=_rounds,
        default=None,
        help=f"timed rounds per workload, >= {MIN_ROUNDS} "
        f"(default: {FULL.rounds}, or {QUICK.rounds} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smaller sizes (a: {QUICK.map_items:,}, b: {QUICK.then_items:,}) "
        f"and {QUICK.rounds} rounds, for a smoke run",
    )
    parser.add_argument(
        "--only",
        type=_workloads,
        default=WORKLOADS,
        metavar="a,b,c",
        help="workloads to run (default: all)",
    )
    return parser


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    rounds: int = args.repeat or sizes.rounds
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"trio {trio.__version__}, trio-parallel {_version('trio-parallel')}, "
        f"snake {snake.__version__}"
    )
    print(f"CPUs: {os.cpu_count()} ({cpu_count()} usable); {platform.platform()}")
    mode = "quick" if args.quick else "full"
    print(f"{mode} run, {rounds} rounds, contenders interleaved round-robin, medians reported")
    if "a" in args.only:
        workload_a(sizes.map_items, rounds)
    if "b" in args.only:
        workload_b(sizes.then_items, rounds)
    if "c" in args.only:
        workload_c(rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
