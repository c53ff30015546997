"""The ``snake`` command."""

from __future__ import annotations

import argparse
import textwrap
import time
from typing import TYPE_CHECKING

import trio

from . import _demo

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .. import Statistics


def _non_negative(kind: type[float | int]) -> Callable[[str], float]:
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
    images = commands.add_parser(
        "images",
        help="an ImageNet-style input pipeline over a folder of JPEGs; prints images/s",
        description="list files, shard, shuffle, read + decode + random-resized-crop + flip "
        "+ normalize to float32 CHW, batch. Without DIR, a synthetic set of JPEGs is made "
        'once in the temporary folder. Needs Pillow and numpy (pip install -e ".[images]").',
    )
    images.add_argument("dir", nargs="?", help="a folder of .jpg files (default: synthetic)")
    images.add_argument(
        "--count", type=_non_negative(int), default=300,
        help="images in the synthetic set (default: 300)",
    )  # fmt: skip
    images.add_argument("--batch-size", type=_non_negative(int), default=32)
    images.add_argument("--executor", choices=("thread", "process"), default="thread")
    images.add_argument(
        "--draft", action="store_true",
        help="decode JPEGs at a reduced size when the crop allows (faster)",
    )  # fmt: skip
    images.add_argument(
        "--torch", action="store_true", help="batches as torch tensors (needs torch)"
    )  # fmt: skip
    return parser


def images(args: argparse.Namespace) -> None:
    from . import _images

    folder = args.dir or _images.synthetic(args.count)
    pipeline = _images.pipeline(
        folder,
        batch_size=max(1, args.batch_size),
        executor=args.executor,
        draft=args.draft,
        tensors=args.torch,
    )
    final: list[Statistics] = []

    async def run() -> tuple[int, tuple[int, ...]]:
        count, shape = 0, ()
        async with pipeline.open(report=final.append, report_every=3600.0) as batches:
            async for batch in batches:
                count += len(batch)
                shape = tuple(batch.shape[1:])
        return count, shape

    began = time.perf_counter()
    count, shape = trio.run(run)
    elapsed = time.perf_counter() - began
    tensors = ", in torch tensors," if args.torch else ""
    print(f"{count} images of {shape} float32{tensors} from {folder}")
    draft = ", draft decoding" if args.draft else ""
    workers = "threads" if args.executor == "thread" else "processes"
    print(f"{count / elapsed:,.0f} images/s ({elapsed:.2f} s, decoding in {workers}{draft})")
    if final:  # what each stage did, and which one the pipeline waited on
        print()
        print(final[-1].table())


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
    elif args.command == "images":
        images(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
