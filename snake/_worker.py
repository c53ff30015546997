"""What runs in a worker thread or process: a job's steps over its items."""

from __future__ import annotations

import functools
import pickle
import time
from collections.abc import Callable
from typing import Any

from ._errors import add_stage_note, failed_at
from ._shm import Packed, pack

#: Work this worker process has received, by the key of its stage.
_work: dict[str, Work] = {}
#: Items this worker process has processed, and how many it may.
_items_done = 0
_max_items: int | None = None
#: What the user's init raised here, for the first job to report.
_init_error: Exception | None = None


def ready(shipments: list[tuple[str, bytes]]) -> None:
    """Take the work this process will be given (the pool starts a worker for it)."""
    if _init_error is not None:
        return  # the first job reports it
    for key, pickled in shipments:
        if key not in _work:
            _work[key] = pickle.loads(pickled)


def start(index: int, init: bytes | None, max_items: int | None) -> Callable[[], None]:
    """The set-up a new worker process runs before its first job.

    Called while unpickling the set-up the pool sends each new worker, so
    that each gets its own ``index`` (see ``_executors.WorkerStart``).
    """
    return functools.partial(_set_up, index, init, max_items)


def _set_up(index: int, init: bytes | None, max_items: int | None) -> None:
    global _max_items, _init_error
    _max_items = max_items
    if init is not None:
        try:
            pickle.loads(init)(index)
        except Exception as exc:
            exc.add_note(f"snake: raised by WorkerOptions.init in worker {index}")
            _init_error = exc


def should_retire() -> bool:
    """Whether this worker has done the items it may (``WorkerOptions.max_items``)."""
    return _max_items is not None and _items_done >= _max_items


class Batching:
    """A ``batch`` run in the worker: jobs then hold whole batches."""

    __slots__ = ("collate", "drop_last", "label", "size")

    def __init__(
        self, size: int, drop_last: bool, collate: Callable[[list[Any]], Any] | None, label: str
    ) -> None:
        self.size = size
        self.drop_last = drop_last
        self.collate = collate
        self.label = label

    def apply(self, items: list[Any], base: int) -> list[Any]:
        # Only the last job of a run can end with a short batch.
        size = self.size
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        if batches and len(batches[-1]) < size and self.drop_last:
            batches.pop()
        collate = self.collate
        if collate is None:
            return batches
        out = []
        for k, batch in enumerate(batches):
            try:
                out.append(collate(batch))
            except Exception as exc:
                # The input item that completed the failing batch.
                add_stage_note(exc, self.label, base + k * size + len(batch) - 1)
                raise
        return out


class Work:
    """What a job does to each item: a map's function, and the steps fused after it.

    ``steps`` holds ``(keep, fn, label)``: ``keep`` marks a filter, ``label``
    names the operator in error notes; ``batch``, if any, comes last. Only a
    map's function, maps and then one filter or one batch are fused, so every
    step sees items at the positions they had in the stage's input, and an
    error note can name them exactly.
    """

    __slots__ = ("batch", "steps")

    def __init__(
        self,
        steps: tuple[tuple[bool, Callable[[Any], Any], str], ...],
        batch: Batching | None = None,
    ) -> None:
        self.steps = steps
        self.batch = batch

    @property
    def label(self) -> str:
        return self.steps[0][2]


def apply_chunk(work: Work, items: list[Any], base: int) -> tuple[list[Any], float]:
    """``work`` over ``items`` and how long it took.

    An exception gets its stage note here, where the failing item is known,
    so it crosses the process boundary already annotated.
    """
    began = time.perf_counter()
    for keep, fn, label in work.steps:
        it = iter(items)
        try:
            items = [x for x in it if fn(x)] if keep else list(map(fn, it))
        except Exception as exc:
            add_stage_note(exc, label, base + failed_at(items, it))
            raise
    if work.batch is not None:
        items = work.batch.apply(items, base)
    return items, time.perf_counter() - began


def apply_shipped(
    key: str,
    pickled: bytes | None,
    items: list[Any],
    base: int,
    shm: str | None,
    slot: tuple[str, int] | None,
) -> tuple[list[Any] | Packed, float] | None:
    """``apply_chunk`` with the work this process keeps under ``key``.

    Work is sent to each worker process once, not with every job (its
    functions may hold large data). Returns ``None`` when this process does
    not have it yet and ``pickled`` is not given: the caller then sends it.
    With ``shm``, a name prefix, large buffers in the results go back
    through shared memory: into ``slot`` if they fit (see ``_shm``). The
    seconds returned include packing them.
    """
    global _items_done
    if _init_error is not None:
        raise _init_error
    work = _work.get(key)
    if work is None:
        if pickled is None:
            return None
        work = _work[key] = pickle.loads(pickled)
    _items_done += len(items)
    began = time.perf_counter()
    results, _ = apply_chunk(work, items, base)
    if shm is None:
        return results, time.perf_counter() - began
    try:
        packed = pack(results, shm, slot)
        return packed, time.perf_counter() - began
    except Exception as exc:
        exc.add_note(f"snake: in stage {work.label}, sending back the results of items from {base}")
        raise
