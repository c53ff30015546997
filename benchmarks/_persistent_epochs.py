"""One contender of ``persistent.py``, in a fresh interpreter: epochs of a loader whose
workers import torch as they start, each epoch timed to its first batch and to its end.

Run as ``python _persistent_epochs.py CONTENDER START_METHOD ITEMS EPOCHS``. The
script's top imports the standard library and snake alone (``import snake`` loads
nothing else): torch is left to the workers, whose ``init`` imports it, so every
worker that starts pays for that import, from a fork server as from a spawn
(DataLoader's contenders import torch to build their loader, before the timing;
their workers import it with their worker loop too). Each epoch is
``for batch in loader`` over ``ITEMS`` items, ``load(i) = 2 * i``, in batches
of ``BATCH``, on ``WORKERS`` workers; its items are checked, in order.

Prints one JSON line on stdout: ``{"first": [s, ...], "epochs": [s, ...], "total":
s}``: per epoch, the seconds from ``iter()`` to its first batch and to the end of
its loop (where a run's own workers have stopped);
``total``, from the first epoch's ``iter()`` to the workers stopped after the last
(the ``persistent_workers`` block left; the DataLoader, and its iterator, dropped).

CONTENDER is one of ``CONTENDERS``: ``snake`` (a run's workers stop at its end),
``snake-persistent`` (the epochs inside ``with snake.persistent_workers():``),
``dataloader`` (``persistent_workers=False``), ``dataloader-persistent``
(``persistent_workers=True``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from typing import TYPE_CHECKING, Any

import snake

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

#: Items per batch, and worker processes.
BATCH = 32
WORKERS = 2


def init(worker_id: int) -> None:
    """Each worker's set-up: it imports torch, as a worker that uses torch must."""
    import torch  # noqa: F401


def load(i: int) -> int:
    """Next to nothing per item: the epochs measure the workers, not the work."""
    return 2 * i


class Items:
    """DataLoader's map-style dataset: item ``i`` is ``load(i)``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return load(i)


Epoch = tuple[float, float, list[int]]  # to the first batch, to the loop's end, the items


def epoch(loader: Iterable[Any], items: Callable[[Any], list[int]]) -> Epoch:
    """One pass over ``loader``: timed from ``iter()``; ``items`` flattens a batch."""
    began = time.perf_counter()
    batches = iter(loader)
    out = items(next(batches))
    first = time.perf_counter() - began
    for batch in batches:
        out += items(batch)
    return first, time.perf_counter() - began, out


def run_snake(method: str, n: int, epochs: int, persistent: bool) -> tuple[list[Epoch], float]:
    options = snake.WorkerOptions(start_method=method, init=init)
    pipeline = (
        snake.from_iterable(range(n))
        .par_map(load, concurrency=WORKERS, workers=options)
        .batch(BATCH)
    )
    scope = snake.persistent_workers() if persistent else contextlib.nullcontext()
    began = time.perf_counter()
    with scope:
        runs = [epoch(pipeline, list) for _ in range(epochs)]
    return runs, time.perf_counter() - began


def run_dataloader(method: str, n: int, epochs: int, persistent: bool) -> tuple[list[Epoch], float]:
    import torch.utils.data

    loader = torch.utils.data.DataLoader(
        Items(n),
        batch_size=BATCH,
        num_workers=WORKERS,
        persistent_workers=persistent,
        multiprocessing_context=method,
        worker_init_fn=init,
    )
    began = time.perf_counter()
    runs = [epoch(loader, torch.Tensor.tolist) for _ in range(epochs)]
    del loader  # with persistent workers, its iterator stops them as it goes
    return runs, time.perf_counter() - began


CONTENDERS = {
    "snake": functools.partial(run_snake, persistent=False),
    "snake-persistent": functools.partial(run_snake, persistent=True),
    "dataloader": functools.partial(run_dataloader, persistent=False),
    "dataloader-persistent": functools.partial(run_dataloader, persistent=True),
}


def main(contender: str, method: str, n: int, epochs: int) -> None:
    from _harness import check_items

    runs, total = CONTENDERS[contender](method, n, epochs)
    expected = [load(i) for i in range(n)]
    for k, (_, _, out) in enumerate(runs):
        check_items(f"{contender}, epoch {k}", out, expected)
    result = {"first": [r[0] for r in runs], "epochs": [r[1] for r in runs], "total": total}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
