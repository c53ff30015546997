"""A training script started from nothing, for the (cold) workload of ``parallel.py``.

Run as ``python _cold_first.py CONTENDER``, in a fresh interpreter per measurement.
Like every training script it imports torch at its top, then snake (the snake
contenders' users import it too), and trio for the contender that is a trio
program (``snake-open``); ``import snake`` loads nothing else, and snake's engine
(trio with it) loads on first use, inside the timing. It then builds one loader
of ``double`` over 100 items and takes its first item: timed from just before
the loader is built, after the imports, to that item; the loader is shut down
after the timing, and the script exits. Prints one JSON line on stdout:
``{"elapsed": seconds, "item": the first item, "imports": {"torch": s, "snake": s, "trio": s},
"built": s, "collected": s, "script": s}``: ``built``, for snake, the part of
``elapsed`` spent building the pipeline (its engine loads there, on first use),
else ``null``; ``collected``, the part spent in the garbage collector's passes
(the first full pass after ``import torch`` falls on whoever allocates enough
objects first);
``script``, the time from the script's first line to the first item, its
imports included (the wait its user sees; it shuts the loader down after).

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

import gc
import json
import os
import sys
import time

_began = _script_began = time.perf_counter()
import torch  # noqa: E402

_torch_seconds = time.perf_counter() - _began
_began = time.perf_counter()
import snake  # noqa: E402

_snake_seconds = time.perf_counter() - _began
_began = time.perf_counter()
if sys.argv[1:] == ["snake-open"]:
    # A trio program imports trio at its top; the others load it (snake's
    # engine does, on first use) or never do.
    import trio
_trio_seconds = time.perf_counter() - _began

ITEMS = 100
#: Seconds from the timing's start to a built snake pipeline: snake loads its
#: engine on first use, so this is its share of the snake contenders' time.
_built: float | None = None
#: When each of the garbage collector's passes began, and its seconds.
_collections: list[tuple[float, float]] = []


def _on_collection(phase: str, info: dict[str, int]) -> None:
    now = time.perf_counter()
    if phase == "start":
        _collections.append((now, 0.0))
    elif _collections:
        began, _ = _collections[-1]
        _collections[-1] = (began, now - began)


def collected(began: float, elapsed: float) -> float:
    """Seconds of the collector's passes that began within ``elapsed`` after ``began``."""
    return sum(s for at, s in _collections if began <= at <= began + elapsed)


def double(x: int) -> int:
    """The work of each item: next to nothing, so the first item measures the start."""
    return x * 2


def run_snake_iter() -> tuple[float, float, int]:
    global _built
    began = time.perf_counter()
    pipeline = snake.from_iterable(range(ITEMS)).par_map(double)
    _built = time.perf_counter() - began
    items = iter(pipeline)
    first = next(items)
    elapsed = time.perf_counter() - began
    items.close()
    return began, elapsed, first


def run_snake_open() -> tuple[float, float, int]:
    global _built
    began = time.perf_counter()
    pipeline = snake.from_iterable(range(ITEMS)).par_map(double)
    _built = time.perf_counter() - began

    async def run() -> tuple[float, float, int]:
        async with pipeline.open() as items:
            first = await items.receive()
            elapsed = time.perf_counter() - began
        return began, elapsed, first

    return trio.run(run)


def run_dataloader() -> tuple[float, float, int]:
    from parallel_workloads._common import data_loader

    began = time.perf_counter()
    items = iter(data_loader(torch, ITEMS, double))
    first = next(items)
    elapsed = time.perf_counter() - began
    del items  # stops the workers
    return began, elapsed, int(first)


def run_torchdata() -> tuple[float, float, int]:
    import torchdata.nodes as tn

    from parallel_workloads._common import WORKERS, stop_nodes

    began = time.perf_counter()
    node = tn.ParallelMapper(
        tn.IterableWrapper(range(ITEMS)), double, num_workers=WORKERS, method="process"
    )
    first = next(iter(tn.Loader(node)))
    elapsed = time.perf_counter() - began
    stop_nodes(node)
    return began, elapsed, first


CONTENDERS = {
    "snake-iter": run_snake_iter,
    "snake-open": run_snake_open,
    "dataloader": run_dataloader,
    "torchdata": run_torchdata,
}


def main(contender: str) -> None:
    # parallel_workloads, for the peers' set-up shared with the warm workloads.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    imported = time.perf_counter() - _script_began
    gc.callbacks.append(_on_collection)
    began, elapsed, first = CONTENDERS[contender]()
    script = imported + elapsed  # the contender's own set-up left out
    imports = {"torch": _torch_seconds, "snake": _snake_seconds, "trio": _trio_seconds}
    result = {"elapsed": elapsed, "item": first, "imports": imports, "built": _built}
    result["collected"] = collected(began, elapsed)
    print(json.dumps({**result, "script": script}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
