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
(c) the seed workload ``snake._apps._demo.pipeline(100, 0.05)`` (async reads, then
    fib in worker processes started afresh for every run) against its ideal
    time from ``snake._apps._demo.estimate``, plus the time to the first item.
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

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from _harness import (
    Contender,
    Count,
    Metric,
    Table,
    Workload,
    argument_parser,
    check,
    print_plan,
    print_platform,
    run_chosen,
    span_text,
    timed_rounds,
    times_row,
)
from _snake_runs import Ideal, ident, seed_collect, seed_expected, seed_iterate, then_collect

import snake

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

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
GOAL_STATS = 0.95  # statistics on / off, at least
#: The warm-up round runs this fraction of the timed size.
WARMUP_FRACTION = 20


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


@dataclass
class Maps(Workload):
    """(a): ``n`` ints through fused maps, consumed three ways, against generators."""

    n: int

    def title(self, rounds: int) -> str:
        return (
            f"(a) {self.n:,} ints through {STAGES} fused .map(lambda x: x + 1); "
            f"median of {rounds} rounds"
        )

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Maps:
        return Maps(max(1, self.n // WARMUP_FRACTION))

    def contenders(self) -> list[Contender]:
        n = self.n
        return [
            Contender("generator chain", lambda: map_generators(n)),
            Contender("for x in pipeline", lambda: map_sync(n)),
            Contender("await collect()", lambda: map_collect(n)),
            Contender("open() + async for", lambda: map_open(n)),
        ]

    def judge(self, table: Table) -> None:
        metric, reference = table.metric, table.shown[0]
        for contender in table.shown[1:]:
            meets = metric.ratio(contender, reference) >= GOAL_MAP
            table.judge(contender, f">= {GOAL_MAP:g}x", meets)
        table.notes.append(
            f"reference: {STAGES} nested generator expressions over range(n), "
            "consumed by a for loop"
        )


# --- (b) then stages ------------------------------------------------------------


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


def then_snake(n: int, statistics: bool = True) -> float:
    """``then_collect``; without ``statistics``, the stages measure nothing."""
    elapsed, out = then_collect(n, STAGES, measure=statistics)
    check("snake collect()", "(count, sum)", (len(out), sum(out)), then_expected(n))
    return elapsed


@dataclass
class Thens(Workload):
    """(b): ``n`` ints through ``.then`` stages, against the faster hand-written chain."""

    n: int

    ref_label = "reference, the faster"

    def title(self, rounds: int) -> str:
        return (
            f"(b) {self.n:,} ints through {STAGES} .then(ident) stages; median of {rounds} rounds"
        )

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Thens:
        return Thens(max(1, self.n // WARMUP_FRACTION))

    def contenders(self) -> list[Contender]:
        n = self.n
        return [
            *(
                Contender(f"hand-written, buffer {b}", functools.partial(then_hand, n, b))
                for b in CHAIN_BUFFERS
            ),
            Contender("snake, collect(), statistics off", lambda: then_snake(n, False)),
            Contender("snake, collect()", lambda: then_snake(n)),
        ]

    def reference(self, timed: Sequence[Contender]) -> Contender:
        """The faster hand-written chain."""
        return max(timed[:-2], key=self.metric().median)

    def shown(self, timed: Sequence[Contender], reference: Contender | None) -> list[Contender]:
        """The reference first, the others in their order."""
        return sorted(timed, key=lambda c: c is not reference)

    def judge(self, table: Table) -> None:
        metric, (reference, *_, unmeasured, ours) = table.metric, table.shown
        table.judge(ours, f">= {GOAL_THEN:g}x", metric.ratio(ours, reference) >= GOAL_THEN)
        cost = metric.ratio(ours, unmeasured)
        table.notes += [
            f"hand-written: a source task + {STAGES} tasks, one item per send, "
            "memory channels of the buffer size shown",
            f"statistics on / off: {cost:.3f}x "
            f"(per round {span_text(metric.ratios(ours, unmeasured))}); "
            f"goal >= {GOAL_STATS:g}x ({'meets' if cost >= GOAL_STATS else 'misses'})",
        ]


# --- (c) the seed workload -------------------------------------------------------


@dataclass
class Seed(Workload):
    """The seed workload, collected or iterated, against its ideal time; no warm-up
    round. Records the time to the first item."""

    first_item: list[float] = field(default_factory=list)
    ideal: Ideal = field(default_factory=lambda: Ideal(SEED_ITEMS, SEED_UNIT))

    ref_label = None  # "ideal" says it already

    @functools.cached_property
    def expected(self) -> list[int]:
        return seed_expected(SEED_ITEMS)

    def title(self, rounds: int) -> str:
        return (
            f"(c) seed workload _demo.pipeline({SEED_ITEMS}, {SEED_UNIT}); "
            f"median of {rounds} rounds; ratio = elapsed / ideal (lower is better)"
        )

    def warm(self) -> None:
        return None

    def contenders(self) -> list[Contender]:
        return [
            Contender("ideal (estimate)", self.ideal.run),
            Contender("await collect()", self.collect),
            Contender("open() + async for", self.iterate),
        ]

    def judge(self, table: Table) -> None:
        table.rows.append(times_row("first item (open, receive)", self.first_item))
        table.notes += [
            self.ideal.note(),
            "each run starts and stops its own worker processes, inside the timing",
            "no fixed goal; issue #3 will target <= 1.1x",
        ]

    def collect(self) -> float:
        elapsed, out = seed_collect(SEED_ITEMS, SEED_UNIT)
        check("seed collect()", "output", out, self.expected)
        return elapsed

    def iterate(self) -> float:
        elapsed, first, out = seed_iterate(SEED_ITEMS, SEED_UNIT)
        check("seed open()", "output", out, self.expected)
        self.first_item.append(first)
        return elapsed


# --- command line ----------------------------------------------------------------


#: Items in (a) and in (b).
MAP_ITEMS = Count(full=1_000_000, quick=200_000)
THEN_ITEMS = Count(full=200_000, quick=40_000)
WORKLOADS = ("a", "b", "c")


def _parser() -> argparse.ArgumentParser:
    return argument_parser(
        "snake's overhead against hand-written equivalents "
        "(see the module docstring for how to read the tables).",
        WORKLOADS,
        f"a: {MAP_ITEMS.quick:,}, b: {THEN_ITEMS.quick:,}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rounds = timed_rounds(args)
    print_platform()
    print_plan(args.quick, rounds)
    workloads: dict[str, Workload] = {
        "a": Maps(MAP_ITEMS.pick(args.quick)),
        "b": Thens(THEN_ITEMS.pick(args.quick)),
        "c": Seed(),
    }
    run_chosen(workloads, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
