"""A training script started from nothing, for the (cold) workload of ``parallel.py``.

Run as ``python _cold_first.py CONTENDER``, in a fresh interpreter per measurement.
Like every training script it imports torch at its top, and snake (the snake
contenders' users import it too): worker processes that load the script again as
``__main__`` (snake's fork server does) pay for both. It then builds one loader
of ``double`` over 100 items and takes its first item: timed from just before
the loader is built, after the imports, to that item; the loader is shut down
after the timing, and the script exits. Prints one JSON line on stdout:
``{"elapsed": seconds, "item": the first item, "imports": {"torch": s, "snake": s}}``.

CONTENDER is one of ``CONTENDERS``:

* ``snake-iter``: ``next(iter(snake.from_iterable(range(100)).par_map(double)))``;
* ``snake-open``: the same pipeline read with ``async with pipeline.open() as
  items: await items.receive()`` inside ``trio.run`` (timed from before it);
* ``dataloader``: ``next(iter(DataLoader(dataset, batch_size=None,
  num_workers=2)))`` over a map-style dataset of 100 items, ``double(i)`` each;
* ``torchdata``: ``ParallelMapper(method="process", num_workers=2)`` under a
  ``Loader``.
"""

from __future__ import annotations

import json
import os
import sys
import time

_began = time.perf_counter()
import torch  # noqa: E402

_torch_seconds = time.perf_counter() - _began
_began = time.perf_counter()
import snake  # noqa: E402

_snake_seconds = time.perf_counter() - _began
import trio  # noqa: E402

ITEMS = 100


def double(x: int) -> int:
    """The work of each item: next to nothing, so the first item measures the start."""
    return x * 2


def run_snake_iter() -> tuple[float, int]:
    began = time.perf_counter()
    items = iter(snake.from_iterable(range(ITEMS)).par_map(double))
    first = next(items)
    elapsed = time.perf_counter() - began
    items.close()
    return elapsed, first


def run_snake_open() -> tuple[float, int]:
    began = time.perf_counter()
    pipeline = snake.from_iterable(range(ITEMS)).par_map(double)

    async def run() -> tuple[float, int]:
        async with pipeline.open() as items:
            first = await items.receive()
            elapsed = time.perf_counter() - began
        return elapsed, first

    return trio.run(run)


def run_dataloader() -> tuple[float, int]:
    from parallel_workloads._common import data_loader

    began = time.perf_counter()
    items = iter(data_loader(torch, ITEMS, double))
    first = next(items)
    elapsed = time.perf_counter() - began
    del items  # stops the workers
    return elapsed, int(first)


def run_torchdata() -> tuple[float, int]:
    import torchdata.nodes as tn

    from parallel_workloads._common import WORKERS, stop_nodes

    began = time.perf_counter()
    node = tn.ParallelMapper(
        tn.IterableWrapper(range(ITEMS)), double, num_workers=WORKERS, method="process"
    )
    first = next(iter(tn.Loader(node)))
    elapsed = time.perf_counter() - began
    stop_nodes(node)
    return elapsed, first


CONTENDERS = {
    "snake-iter": run_snake_iter,
    "snake-open": run_snake_open,
    "dataloader": run_dataloader,
    "torchdata": run_torchdata,
}


def main(contender: str) -> None:
    # parallel_workloads, for the peers' set-up shared with the warm workloads.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    elapsed, first = CONTENDERS[contender]()
    imports = {"torch": _torch_seconds, "snake": _snake_seconds}
    print(json.dumps({"elapsed": elapsed, "item": first, "imports": imports}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
