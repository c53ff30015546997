"""images/s of the ``snake images`` pipeline against the loaders people use, in one run.

Every contender loads the same images the same way: read the JPEG, decode
it, random-resized-crop to 224×224 (the crop and the flip drawn from
``(seed, index)``, so every contender makes the same choices), flip,
normalize to float32 CHW, and batch 32 images into one array or tensor.
The per-image code comes in two versions:

- **torchvision-style**, the code a PyTorch user writes:
  ``RandomResizedCrop(224)``, ``RandomHorizontalFlip()``, ``ToTensor()``,
  ``Normalize(mean, std)`` on a PIL image, as torchvision runs them
  (written out here call for call: torchvision's wheel does not load
  against the CPU wheel of torch). The peers run it, as their users do;
  the goal is judged against these rows.
- **snake's** (``snake._apps._images.decode``): the same decode, crop and flip,
  with fewer passes over the pixels. ``snake images`` runs it, writing each
  image into its batch's array. The peers run it too, in rows marked
  "(snake's transform)", to show what the pipeline gains apart from the
  per-image code.

A second workload, ``large``, shows what decoding at a reduced size
(``snake images --draft``) gains on photos of 1600×1200; on the 500×375
set, crops are never large enough for it.

torch runs its operations on one thread in this process, as DataLoader
sets it up in its workers: with torch's default of one thread per core,
the thread-based peers ran the torchvision-style code about 15 % slower.

The synthetic set (500×375 JPEGs, made by ``snake images``) is read from
the page cache after the first round. Contenders run interleaved,
round-robin, after one untimed warm-up round; medians are reported.
Workers are started inside the timing, as a training script's would be.

Usage::

    python benchmarks/images.py               # 2,000 images, 5 rounds
    python benchmarks/images.py --quick       # 400 images, 3 rounds
    python benchmarks/images.py --only large  # draft decoding on 1600x1200 photos
"""

from __future__ import annotations

import functools
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import _harness
import numpy as np
import trio
from _harness import (
    Contender,
    Metric,
    Table,
    Workload,
    argument_parser,
    print_plan,
    print_platform,
    run_chosen,
    timed_rounds,
    versus,
)
from _snake_runs import default_collate, imaging
from PIL import Image

if TYPE_CHECKING:
    from types import ModuleType

_images = imaging()

WORKERS = 2
BATCH = 32
SIZE = 224
GOAL = 1.3  # snake images/s / the best peer's, at least
IMAGES = _harness.Count(2000, 400)
LARGE = _harness.Count(300, 100)
LARGE_SIZE = (1600, 1200)
SNAKES = "snake images"
MINE = " (snake's transform)"

Load = Callable[[str, int], Any]


def snake_load(path: str, index: int) -> Any:
    """snake's per-image code: an array."""
    return _images.load((index, path))


@functools.cache
def _normalization(torch: ModuleType) -> tuple[Any, Any]:
    mean = torch.as_tensor(_images.MEAN, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(_images.STD, dtype=torch.float32).view(-1, 1, 1)
    return mean, std


def torchvision_load(path: str, index: int, seed: int = 0) -> Any:
    """The torchvision-style per-image code: a tensor.

    Call for call what ``ImageFolder``'s loader and ``Compose([
    RandomResizedCrop(224), RandomHorizontalFlip(), ToTensor(),
    Normalize(MEAN, STD)])`` do to a PIL image in torchvision 0.2x, with the
    crop and flip drawn as ``snake._apps._images.decode`` draws them.
    """
    import torch

    rng = random.Random(f"{seed}/{index}")
    with open(path, "rb") as f:  # datasets.folder.pil_loader
        image = Image.open(f).convert("RGB")
    left, top, w, h = _images._crop_box(rng, *image.size)  # RandomResizedCrop.get_params
    # F.resized_crop: F.crop, then F.resize with PIL's resize.
    image = image.crop((left, top, left + w, top + h)).resize(
        (SIZE, SIZE), Image.Resampling.BILINEAR
    )
    if rng.random() < 0.5:  # RandomHorizontalFlip
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # ToTensor (F.to_tensor)
    x = torch.from_numpy(np.array(image, np.uint8, copy=True))
    x = x.view(image.size[1], image.size[0], 3).permute((2, 0, 1)).contiguous()
    x = x.to(dtype=torch.float32).div(255)
    # Normalize(inplace=False) (F.normalize)
    mean, std = _normalization(torch)
    return x.clone().sub_(mean).div_(std)


def torch_collate(batch: list[Any]) -> Any:
    import torch

    return torch.utils.data.default_collate(batch)


def finish(name: str, began: float, batches: Iterable[Any], n: int) -> float:
    count = sum(len(b) for b in batches)
    elapsed = time.perf_counter() - began
    _harness.check(name, "images", count, n)
    return elapsed


def serial(files: list[str], load: Load, collate: Callable[[list[Any]], Any]) -> float:
    began = time.perf_counter()
    batches = (
        collate([load(p, start + k) for k, p in enumerate(files[start : start + BATCH])])
        for start in range(0, len(files), BATCH)
    )
    return finish("serial", began, batches, len(files))


def snake_run(folder: str, n: int, executor: str, draft: bool = False) -> float:
    pipeline = _images.pipeline(folder, executor=executor, draft=draft)

    async def run() -> list[int]:
        async with pipeline.open() as batches:
            return [len(batch) async for batch in batches]

    began = time.perf_counter()
    return finish("snake", began, [range(k) for k in trio.run(run)], n)


class Images:
    """A map-style dataset of the decoded images, for DataLoader."""

    def __init__(self, files: list[str], load: Load) -> None:
        self.files = files
        self.load = load

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Any:
        return self.load(self.files[i], i)


def dataloader(files: list[str], load: Load) -> float:
    import torch

    began = time.perf_counter()
    loader = torch.utils.data.DataLoader(Images(files, load), batch_size=BATCH, num_workers=WORKERS)
    return finish("DataLoader", began, loader, len(files))


def load_index(files: list[str], load: Load, i: int) -> Any:
    return load(files[i], i)


def torchdata_run(
    files: list[str], load: Load, collate: Callable[[list[Any]], Any], method: str
) -> float:
    import torchdata.nodes as nodes

    began = time.perf_counter()
    node = nodes.IterableWrapper(range(len(files)))
    node = nodes.ParallelMapper(
        node, functools.partial(load_index, files, load), num_workers=WORKERS, method=method
    )
    node = nodes.Batcher(node, batch_size=BATCH, drop_last=False)
    node = nodes.Mapper(node, collate)
    return finish(f"torchdata {method}", began, nodes.Loader(node), len(files))


def spdl_run(files: list[str], load: Load, collate: Callable[[list[Any]], Any]) -> float:
    from spdl.pipeline import PipelineBuilder

    began = time.perf_counter()
    pipeline = (
        PipelineBuilder()
        .add_source(range(len(files)))
        .pipe(
            functools.partial(load_index, files, load),
            concurrency=WORKERS,
            output_order="input",
        )
        .aggregate(BATCH)
        .pipe(collate)
        .add_sink(3)
        .build(num_threads=WORKERS)
    )
    with pipeline.auto_stop():
        return finish("SPDL", began, pipeline.get_iterator(), len(files))


def has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        print(f"{module} is not installed: its contenders are skipped")
        return False
    return True


def contenders(folder: str, files: list[str]) -> list[Contender]:
    n = len(files)
    torch, torchdata, spdl = has("torch"), has("torchdata.nodes"), has("spdl.pipeline")
    cs = [Contender("serial for loop (snake's transform)", functools.partial(
        serial, files, snake_load, default_collate))]  # fmt: skip
    if torch:
        cs.append(Contender("serial for loop (torchvision-style)", functools.partial(
            serial, files, torchvision_load, torch_collate)))  # fmt: skip
    cs += [
        Contender(f"{SNAKES}, threads", functools.partial(snake_run, folder, n, "thread")),
        Contender(f"{SNAKES}, processes", functools.partial(snake_run, folder, n, "process")),
    ]
    for suffix, load, collate in (
        ("", torchvision_load, torch_collate),
        (MINE, snake_load, default_collate),
    ):
        if torch:
            cs.append(Contender(f"DataLoader(num_workers={WORKERS}){suffix}", functools.partial(
                dataloader, files, load)))  # fmt: skip
        if torch and torchdata:
            for method in ("thread", "process"):
                cs.append(Contender(
                    f"torchdata.nodes ParallelMapper({method}) + Batcher{suffix}",
                    functools.partial(torchdata_run, files, load, collate, method)))  # fmt: skip
        if spdl and (torch or load is snake_load):
            cs.append(Contender(f"SPDL pipeline, {WORKERS} threads{suffix}", functools.partial(
                spdl_run, files, load, collate)))  # fmt: skip
    cs.append(Contender(
        f"{SNAKES}, threads, draft decoding (not like-for-like)",
        functools.partial(snake_run, folder, n, "thread", True)))  # fmt: skip
    return cs


@dataclass
class ImagesWorkload(Workload):
    """The ``snake images`` pipeline and its peers on the synthetic set of 500×375."""

    n: int

    def title(self, rounds: int) -> str:
        return (
            f"(images) {len(self.files):,} images, {WORKERS} workers; median of {rounds} rounds; "
            "ratio = images/s / serial with snake's transform (higher is better)"
        )

    @functools.cached_property
    def folder(self) -> str:
        folder: str = _images.synthetic(self.n)
        return folder

    @functools.cached_property
    def files(self) -> list[str]:
        names = os.listdir(self.folder)
        return sorted(os.path.join(self.folder, f) for f in names if f.endswith(".jpg"))

    def metric(self) -> Metric:
        return Metric(len(self.files))

    def contenders(self) -> list[Contender]:
        return contenders(self.folder, self.files)

    def judge(self, table: Table) -> None:
        metric = table.metric
        ok = [c for c in table.shown if c.ok]
        ours = [c for c in ok if c.name.startswith(SNAKES) and "draft" not in c.name]
        peers = [c for c in ok if not c.name.startswith((SNAKES, "serial"))]
        for label, group in (
            ("the best peer", [c for c in peers if MINE not in c.name]),
            ("the best peer given snake's transform", [c for c in peers if MINE in c.name]),
        ):
            if not (ours and group):
                continue
            best, peer = max(ours, key=metric.median), max(group, key=metric.median)
            if MINE not in peer.name:
                table.judge(best, f">= {GOAL:g}x best peer", metric.ratio(best, peer) >= GOAL)
            table.notes.append(f"{best.name} / {label}, {peer.name}: {versus(metric, best, peer)}")
        table.notes += [
            f"{len(self.files):,} synthetic 500x375 JPEGs; per image: read, decode, "
            f"random-resized-crop to 224x224, flip, normalize to float32 CHW; batches of {BATCH} "
            "(arrays from snake's transform, tensors from the torchvision-style one)",
            "draft decoding cannot help at 500x375: the decoder may halve a JPEG only when the "
            "crop keeps 448 pixels each way (see the large workload)",
            "SPDL runs the same Python per-image code in its thread pool: its own FFmpeg-based "
            "image decoding needs FFmpeg's shared libraries",
        ]


@dataclass
class LargeWorkload(Workload):
    """snake images on photos of 1600×1200, decoded at full size or at a reduced one."""

    n: int

    def title(self, rounds: int) -> str:
        return (
            f"(large) {self.n:,} images of {LARGE_SIZE[0]}x{LARGE_SIZE[1]}, {WORKERS} threads; "
            f"median of {rounds} rounds; ratio = images/s / full-size decoding"
        )

    @functools.cached_property
    def folder(self) -> str:
        folder: str = _images.synthetic(self.n, LARGE_SIZE)
        return folder

    def metric(self) -> Metric:
        return Metric(self.n)

    def contenders(self) -> list[Contender]:
        folder, n = self.folder, self.n
        return [
            Contender(f"{SNAKES}, threads", functools.partial(snake_run, folder, n, "thread")),
            Contender(
                f"{SNAKES}, threads, draft decoding",
                functools.partial(snake_run, folder, n, "thread", True),
            ),
        ]

    def judge(self, table: Table) -> None:
        table.notes.append(
            "draft decoding: the JPEG decoder scales by 1/2, 1/4 or 1/8 when the crop stays at "
            "least 224 pixels each way (Pillow's draft); the output is close to, not the same "
            "as, full-size decoding"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser(__doc__ or "", ("images", "large"), "400 and 100 images").parse_args(
        argv
    )
    rounds = timed_rounds(args)
    print_platform("torch", "torchdata", "spdl", "pillow", "numpy")
    print_plan(args.quick, rounds)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    workloads: dict[str, Workload] = {
        "images": ImagesWorkload(IMAGES.pick(args.quick)),
        "large": LargeWorkload(LARGE.pick(args.quick)),
    }
    run_chosen(workloads, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
