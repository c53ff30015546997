"""How fast a property test of a pipeline runs through ``snake.testing``.

The property: for a list of up to 40 ints drawn by hypothesis, a 5-stage
pipeline with a process ``par_map`` gives exactly what a plain Python loop
gives, whatever the timing::

    from_iterable(items)
      .par_then(fetch, concurrency=8)          # async I/O: a wait, then x + 1
      .map(square)
      .par_map(digits, concurrency=2)          # CPU work, in worker processes
      .filter(odd)
      .batch(4)

Contenders, each running the same property for ``--examples`` examples
(default 500; ``--quick``: 100), one after the other, timed in full
(hypothesis included, its example database off):

- ``snake.testing.run(pipeline, delays)``: every call in this process, a
  drawn wait before each on trio's autojump clock (``snake.testing.delays()``),
  checked against ``snake.testing.sequential(pipeline)`` and the Python loop;
- the real run: ``pipeline.collect()`` in ``trio.run`` on the real clock,
  with 2 worker processes started for each example (as a test of the real
  thing would), the waits real sleeps of a tenth of the drawn ones, checked
  against the Python loop; it runs a tenth of the examples, and its row gives
  the time that number took and the time per example;
- the Python loop alone, for scale.

Goal: 500 examples through ``snake.testing`` in under 30 s on 2 cores.

Usage::

    python benchmarks/testing.py             # 500 examples
    python benchmarks/testing.py --quick     # 100
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

import trio
from _harness import print_columns, print_platform
from hypothesis import given, settings
from hypothesis import strategies as st

import snake
import snake.testing

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: The goal: seconds for 500 examples through snake.testing.
GOAL_SECONDS = 30.0
GOAL_EXAMPLES = 500
#: The real run's waits are this fraction of the drawn ones, and it runs
#: this fraction of the examples.
REAL_SCALE = 0.1


async def fetch(x: int) -> int:
    await trio.sleep(0.01 * (x % 3))
    return x + 1


def square(x: int) -> int:
    return x * x


def digits(x: int) -> int:
    return sum(map(int, str(x)))


def odd(x: int) -> bool:
    return x % 2 == 1


def pipeline(
    items: list[int], lookup: Callable[[int], Awaitable[int]] = fetch
) -> snake.Pipeline[list[int]]:
    return (
        snake.from_iterable(items)
        .par_then(lookup, concurrency=8)
        .map(square)
        .par_map(digits, concurrency=2)
        .filter(odd)
        .batch(4)
    )


def loop(items: list[int]) -> list[list[int]]:
    """The plain Python loop the pipeline must agree with."""
    kept = [d for x in items if odd(d := digits(square(x + 1)))]
    return [kept[k : k + 4] for k in range(0, len(kept), 4)]


items = st.lists(st.integers(0, 10_000), max_size=40)


def timed(
    examples: int, prop: Callable[..., None], *strategies: st.SearchStrategy[object]
) -> float:
    """Seconds to run ``prop`` for ``examples`` hypothesis examples."""
    test = settings(max_examples=examples, deadline=None, database=None)(given(*strategies)(prop))
    began = time.perf_counter()
    test()
    return time.perf_counter() - began


def through_testing(data: list[int], delays: snake.testing.Delays) -> None:
    p = pipeline(data)
    snake.testing.assert_ordered_equal(snake.testing.run(p, delays), loop(data))
    snake.testing.assert_ordered_equal(snake.testing.sequential(p), loop(data))


def real_run(data: list[int], delays: snake.testing.Delays) -> None:
    async def delayed(x: int) -> int:
        await trio.sleep(REAL_SCALE * delays(0, x))
        return await fetch(x)

    snake.testing.assert_ordered_equal(trio.run(pipeline(data, delayed).collect), loop(data))


def python_loop(data: list[int]) -> None:
    assert loop(data) == loop(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="100 examples")
    args = parser.parse_args()
    n = args.examples or (100 if args.quick else GOAL_EXAMPLES)
    real_n = max(1, round(n * REAL_SCALE))
    print_platform("hypothesis")
    ours = timed(n, through_testing, items, snake.testing.delays())
    real = timed(real_n, real_run, items, snake.testing.delays())
    plain = timed(n, python_loop, items)
    budget = GOAL_SECONDS * n / GOAL_EXAMPLES
    lines = [
        ["contender", "examples", "time", "per example", "goal", "verdict"],
        ["snake.testing.run + sequential", f"{n}", f"{ours:.1f} s", f"{ours / n * 1e3:.1f} ms",
         f"< {budget:g} s", "meets" if ours < budget else "misses"],
        ["real run, 2 worker processes each", f"{real_n}", f"{real:.1f} s",
         f"{real / real_n * 1e3:.1f} ms", "-", "-"],
        ["the Python loop alone", f"{n}", f"{plain:.1f} s", f"{plain / n * 1e3:.2f} ms", "-", "-"],
    ]  # fmt: skip
    print()
    print(f"A property over a 5-stage pipeline with a process par_map, {n} examples")
    print_columns(lines, (False, True, True, True, False, False))
    for note in (
        f"per example, the real run takes {real / real_n / (ours / n):.0f}x as long as "
        "snake.testing's (in-process calls, waits on the autojump clock)",
        "each example draws its items (up to 40 ints) and, but for the loop, its waits "
        "(snake.testing.delays()); the real run's waits are a tenth of them, slept for real",
    ):
        print(f"  {note}")


if __name__ == "__main__":
    main()
