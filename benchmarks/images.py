"""images/s of the ``snake images`` pipeline against the loaders people use, in one run.

Every contender does the same work per image: read the JPEG's bytes, decode
it, random-resized-crop to 224×224, flip, normalize to float32 CHW
(``snake._images.load``), and batch 32 images into one array or tensor.
The synthetic set (``snake images`` makes it: 500×375 JPEGs) is read from
the page cache after the first round. Contenders run interleaved,
round-robin, after one untimed warm-up round; medians are reported. Workers
are started inside the timing, as a training script's would be.

Usage::

    python benchmarks/images.py              # 2,000 images, 3 rounds
    python benchmarks/images.py --quick      # 400 images
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import _harness
import trio
from _harness import (
    Contender,
    Metric,
    argument_parser,
    failure_notes,
    print_plan,
    print_platform,
    print_table,
    round_robin,
    rows_for,
    span_text,
    timed_rounds,
    warm_up,
)

from snake import _images
from snake._collate import default_collate

WORKERS = 2
BATCH = 32
GOAL = 1.3  # snake images/s / the best peer's, at least
IMAGES = _harness.Count(2000, 400)


def files_of(folder: str) -> list[str]:
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".jpg"))


def load(path: str, index: int) -> Any:
    with open(path, "rb") as f:
        return _images.decode((index, f.read()))


def serial(files: list[str]) -> float:
    began = time.perf_counter()
    count = 0
    for start in range(0, len(files), BATCH):
        batch = default_collate(
            [load(p, start + k) for k, p in enumerate(files[start : start + BATCH])]
        )
        count += len(batch)
    elapsed = time.perf_counter() - began
    _harness.check("serial", "images", count, len(files))
    return elapsed


def snake_run(folder: str, n: int, executor: str, draft: bool = False) -> float:
    pipeline = _images.pipeline(folder, executor=executor, draft=draft)  # type: ignore[arg-type]

    async def run() -> int:
        count = 0
        async with pipeline.open() as batches:
            async for batch in batches:
                count += len(batch)
        return count

    began = time.perf_counter()
    count = trio.run(run)
    elapsed = time.perf_counter() - began
    _harness.check("snake", "images", count, n)
    return elapsed


class Images:
    """A map-style dataset of the decoded images, for DataLoader."""

    def __init__(self, files: list[str]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Any:
        return load(self.files[i], i)


def dataloader(torch: ModuleType, files: list[str]) -> float:
    began = time.perf_counter()
    loader = torch.utils.data.DataLoader(Images(files), batch_size=BATCH, num_workers=WORKERS)
    count = sum(len(batch) for batch in loader)
    elapsed = time.perf_counter() - began
    _harness.check("DataLoader", "images", count, len(files))
    return elapsed


def torchdata_run(nodes: ModuleType, files: list[str], method: str) -> float:
    began = time.perf_counter()
    node = nodes.IterableWrapper(range(len(files)))
    node = nodes.ParallelMapper(
        node, functools.partial(load_index, files), num_workers=WORKERS, method=method
    )
    node = nodes.Batcher(node, batch_size=BATCH, drop_last=False)
    loader = nodes.Loader(node)
    count = sum(len(default_collate(batch)) for batch in loader)
    elapsed = time.perf_counter() - began
    node.shutdown() if hasattr(node, "shutdown") else None
    _harness.check(f"torchdata {method}", "images", count, len(files))
    return elapsed


def load_index(files: list[str], i: int) -> Any:
    return load(files[i], i)


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser(__doc__ or "", ("images",), "400 images").parse_args(argv)
    rounds = timed_rounds(args)
    n = IMAGES.pick(args.quick)
    print_platform("torch", "torchdata", "pillow", "numpy")
    print_plan(args.quick, rounds)
    folder = _images.synthetic(n)
    files = files_of(folder)

    def contenders(files: list[str]) -> list[Contender]:
        cs = [
            Contender("serial (for loop)", functools.partial(serial, files)),
            Contender(
                "snake images, threads", functools.partial(snake_run, folder, len(files), "thread")
            ),
            Contender(
                "snake images, processes",
                functools.partial(snake_run, folder, len(files), "process"),
            ),
        ]
        try:
            import torch

            cs.append(
                Contender(
                    f"DataLoader(num_workers={WORKERS})",
                    functools.partial(dataloader, torch, files),
                )
            )
        except ImportError:
            print("torch is not installed: DataLoader is skipped")
        try:
            import torchdata.nodes as nodes

            for method in ("thread", "process"):
                cs.append(
                    Contender(
                        f"torchdata.nodes ParallelMapper({method}) + Batcher",
                        functools.partial(torchdata_run, nodes, files, method),
                    )
                )
        except ImportError:
            print("torchdata is not installed: torchdata.nodes is skipped")
        cs.append(
            Contender(
                "snake images, threads, draft decoding (not like-for-like)",
                functools.partial(snake_run, folder, len(files), "thread", True),
            )
        )
        return cs

    warm_up(contenders(files))
    timed = contenders(files)
    round_robin(timed, rounds)
    metric = Metric(len(files))
    reference = timed[0]
    ours = [c for c in timed[1:3] if c.ok]
    peers = [c for c in timed if c.name.startswith(("DataLoader", "torchdata")) and c.ok]
    rows = rows_for(metric, reference, timed, "reference")
    notes = []
    if ours and peers:
        best_ours = max(ours, key=metric.median)
        best_peer = max(peers, key=metric.median)
        ratio = metric.ratio(best_ours, best_peer)
        rows[timed.index(best_ours)].judge(f">= {GOAL:g}x best peer", ratio >= GOAL)
        notes.append(
            f"{best_ours.name} / {best_peer.name}: {ratio:.2f}x "
            f"(per round {span_text(metric.ratios(best_ours, best_peer))})"
        )
    notes += [
        f"{len(files):,} synthetic 500x375 JPEGs; per image: read, decode, random-resized-crop "
        f"to 224x224, flip, normalize to float32 CHW; batches of {BATCH} (numpy for snake and "
        "torchdata, tensors for DataLoader); SPDL is not installed here",
        *failure_notes(timed),
    ]
    print_table(
        f"(images) {len(files):,} images, {WORKERS} workers; median of {rounds} rounds; "
        "ratio = images/s / serial (higher is better)",
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
