"""The ``snake`` command."""

from __future__ import annotations

import argparse
import math
import os
import textwrap
import time
from typing import TYPE_CHECKING

import trio

from .._torch import import_torch
from . import _demo

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .. import Statistics

#: Images in the synthetic set of ``snake images``.
_SYNTHETIC = 300


def _whole(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _jpeg_folder(text: str) -> str:
    """An argparse type: a folder holding at least one JPEG."""
    from . import _images

    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(
            f"no such folder: {text!r}; leave DIR out for a synthetic set"
        )
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is a file, not a folder: give the folder of .jpg files"
        )
    try:
        found = _images.jpegs(text)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot list {text!r}: {exc.strerror}") from None
    if not found:
        raise argparse.ArgumentTypeError(
            f"no .jpg or .jpeg files in {text!r}; leave DIR out for a synthetic set"
        )
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake", description="Run snake's example pipelines.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the seed example: async reads, then fib in worker processes",
        description="100 items; an async read sleeping (i % 3) time units; "
        "fib(22 + i % 5) in worker processes.",
    )
    demo.add_argument(
        "--scale", type=_seconds, default=0.05,
        help="seconds in one time unit of the reads (default: 0.05)",
    )  # fmt: skip
    demo.add_argument("--items", type=_whole(1), default=100, help="number of items (default: 100)")
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
    images.add_argument(
        "dir", nargs="?", type=_jpeg_folder, help="a folder of .jpg files (default: synthetic)"
    )
    images.add_argument(
        "--count", type=_whole(1),
        help=f"images in the synthetic set, without DIR (default: {_SYNTHETIC})",
    )  # fmt: skip
    images.add_argument(
        "--batch-size", type=_whole(1), default=32, help="images in a batch (default: 32)"
    )
    images.add_argument(
        "--executor", choices=("thread", "process"), default="thread",
        help="decode in worker threads or worker processes (default: thread)",
    )  # fmt: skip
    images.add_argument(
        "--draft", action="store_true",
        help="decode JPEGs at a reduced size when the crop allows (faster)",
    )  # fmt: skip
    images.add_argument(
        "--torch", action="store_true", help="batches as torch tensors (needs torch)"
    )  # fmt: skip
    images.set_defaults(error=images.error)
    return parser


def _images_problem(args: argparse.Namespace) -> str | None:
    """What stops ``snake images`` with these arguments from running, found before any work."""
    from . import _images

    if args.dir is not None and args.count is not None:
        return "argument --count: sizes the synthetic set; leave it out with DIR"
    try:
        _images.needs()
        if args.torch:
            import_torch("--torch makes torch tensors", ", or leave --torch out for numpy arrays")
    except ImportError as exc:
        return str(exc)
    return None


def images(args: argparse.Namespace) -> None:
    from . import _images

    folder = args.dir
    if folder is None:
        try:
            folder = _images.synthetic(args.count or _SYNTHETIC)
        except OSError as exc:
            args.error(f"cannot make the synthetic set: {exc}; set TMPDIR or give DIR")
    pipeline = _images.pipeline(
        folder,
        batch_size=args.batch_size,
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
        problem = _images_problem(args)
        if problem is not None:
            args.error(problem)  # exits with status 2
        images(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
