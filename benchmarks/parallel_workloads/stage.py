"""(stage) ints through five stages that pass each item on unchanged: snake's
``.then(ident)``, torchdata ``Mapper`` nodes, and a chain of generator expressions."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from _harness import Metric, Table, check_items, versus
from _snake_runs import then_collect

from ._common import Contender, PeersWorkload, frees_nodes

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

#: Stages in every chain.
STAGES = 5
GOAL_STAGE_TORCHDATA = 3.0  # snake items/s / torchdata.nodes, at least
GOAL_STAGE_GENERATOR = 0.4  # snake items/s / generator chain, at least


def ident_sync(x: int) -> int:
    return x


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


@dataclass
class Stage(PeersWorkload):
    """``range(n)`` through ``STAGES`` identity stages; the reference is the generator chain."""

    n: int

    def title(self, rounds: int) -> str:
        return (
            f"(stage) {self.n:,} ints through {STAGES} identity stages; "
            f"median of {rounds} rounds; ratio = items/s / generator chain (higher is better)"
        )

    def chart(self) -> str:
        return f"stage boundary ({self.n:,} ints, {STAGES} stages)"

    def metric(self) -> Metric:
        return Metric(self.n)

    def warm(self) -> Stage:
        return dataclasses.replace(self, n=max(1, self.n // 20))

    def contenders(self) -> list[Contender]:
        n, expected = self.n, list(range(self.n))
        cs = [
            Contender(
                f"generator chain, {STAGES} genexprs",
                functools.partial(stage_generators, n, expected),
            ),
            Contender(f"snake, {STAGES} .then(ident)", functools.partial(stage_snake, n, expected)),
        ]
        if self.offer("torchdata.nodes", "torchdata"):
            cs.append(
                Contender(
                    f"torchdata.nodes, {STAGES} Mappers",
                    functools.partial(stage_torchdata, self.peers.nodes, n, expected),
                )
            )
        return cs

    def judge(self, table: Table) -> None:
        metric = table.metric
        reference, ours, *others = table.shown
        td = others[0] if others else None
        if ours.ok and reference.ok:
            meets = metric.ratio(ours, reference) >= GOAL_STAGE_GENERATOR
            goal = f">= {GOAL_STAGE_GENERATOR:g}x"
            if td is not None and td.ok:
                meets = meets and metric.ratio(ours, td) >= GOAL_STAGE_TORCHDATA
                goal += f", >= {GOAL_STAGE_TORCHDATA:g}x torchdata"
                table.notes.append(
                    f"snake / torchdata.nodes: {versus(metric, ours, td)}; above 1 is faster"
                )
            table.judge(ours, goal, meets)
        table.notes.append(
            "every stage calls an identity function per item (async for snake); "
            "timed from building the chain (snake: trio.run) to the collected list"
        )
