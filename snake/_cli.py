"""The ``snake`` command."""

from __future__ import annotations

import argparse
import textwrap
import time
from collections.abc import Callable, Sequence

import trio

from . import _demo
from ._stats import Statistics


def _non_negative(kind: type[float] | type[int]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the seed example: async reads, then fib in worker processes",
        description="100 items; an async read sleeping (i % 3) time units; "
        "fib(22 + i % 5) in worker processes.",
    )
    demo.add_argument(
        "--scale", type=_non_negative(float), default=0.05,
        help="seconds in one time unit of the reads (default: 0.05)",
    )  # fmt: skip
    demo.add_argument(
        "--items", type=_non_negative(int), default=100, help="number of items (default: 100)"
    )
    demo.add_argument(
        "--stats", action="store_true",
        help="print each stage's statistics and the bottleneck at the end",
    )  # fmt: skip
    return parser


def demo(items: int, scale: float, stats: bool = False) -> None:
    final: list[Statistics] = []

    async def run() -> list[int]:
        return await _demo.pipeline(items, scale).collect(
            report=final.append if stats else None,
            report_every=3600.0,  # the final report
        )

    began = time.perf_counter()
    results = trio.run(run)
    elapsed = time.perf_counter() - began
    cost = _demo.estimate(items, scale)
    print(f"{len(results)} results, in input order:")
    print(textwrap.fill(" ".join(map(str, results)), width=79))
    print()
    print(f"elapsed            {elapsed:8.3f} s   (includes starting worker processes)")
    print(f"sequential run     {cost.sequential:8.3f} s   "
          f"({cost.sleep:.3f} s of reads + {cost.cpu:.3f} s of fib)")  # fmt: skip
    print(f"ideal              {cost.ideal:8.3f} s   "
          "(longest read + fib spread over every core)")  # fmt: skip
    print(f"speed-up           {cost.sequential / elapsed:8.2f} x over sequential")
    if final:
        print()
        print(final[-1].table())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        demo(args.items, args.scale, args.stats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
