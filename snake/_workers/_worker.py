"""What runs in a worker thread or process: a job's steps over its items."""

from __future__ import annotations

import faulthandler
import functools
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle

from .._errors import add_stage_note, failed_at
from .._exceptions import RemoteError, WorkerError
from .._policy import retry_delay, tried
from . import _wire as wire
from ._shm import Borrowed, Packed, pack, unpack

#: Work this worker process has received, by the key of its stage.
_work: dict[str, Work] = {}
#: Items this worker process has processed, and how many it may.
_items_done = 0
_max_items: int | None = None
#: What the user's init raised here, for the first job to report.
_init_error: Exception | None = None
#: The main process's slots this worker read items from.
_borrowed = Borrowed()
#: Whether this is a worker process (``serve`` runs here), not a thread.
_in_process = False


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
    faulthandler.enable()  # a crash in native code leaves its C-level trace on stderr
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


#: What a job gives back: results, seconds, bytes moved through shared memory,
#: and the items skipped as ``(position, exception)``.
Done = tuple[list[Any], float, int, list[tuple[int, Exception]]]


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

    __slots__ = ("batch", "retries", "skip", "steps")

    def __init__(
        self,
        steps: tuple[tuple[bool, Callable[[Any], Any], str], ...],
        batch: Batching | None = None,
        skip: bool = False,
        retries: int = 0,
    ) -> None:
        self.steps = steps
        self.batch = batch
        self.skip = skip  # errors="skip": items the map's function fails on are dropped
        self.retries = retries  # tries of the map's function after the first

    @property
    def label(self) -> str:
        return self.steps[0][2]


def apply_chunk(
    work: Work, items: list[Any], base: int
) -> tuple[list[Any], float, list[tuple[int, Exception]]]:
    """``work`` over ``items``, how long it took, and the items it skipped.

    An exception gets its stage note here, where the failing item is known,
    so it crosses the process boundary already annotated. With
    ``work.skip``, the items the map's function fails on are dropped, and
    returned as ``(position, exception)``.
    """
    began = time.perf_counter()
    skipped: list[tuple[int, Exception]] = []
    for k, (keep, fn, label) in enumerate(work.steps):
        it = iter(items)
        if k == 0 and work.retries:
            fn = _retrying(fn, work.retries)
        try:
            if k == 0 and work.skip:
                items = _skipping(fn, items, it, base, label, skipped)
            else:
                items = [x for x in it if fn(x)] if keep else list(map(fn, it))
        except Exception as exc:
            add_stage_note(exc, label, base + failed_at(items, it))
            raise
        except BaseException as exc:
            if not _in_process:
                raise  # a thread's: it reaches the main thread as itself
            # In a worker process it would end the worker, not the program.
            error = WorkerError(
                f"{type(exc).__name__}({', '.join(map(repr, exc.args))}) raised in a worker "
                "process by a user function; it stops the pipeline instead"
            )
            add_stage_note(error, label, base + failed_at(items, it))
            raise error from exc
    if work.batch is not None:
        items = work.batch.apply(items, base)
    return items, time.perf_counter() - began, skipped


def _retrying(fn: Callable[[Any], Any], retries: int) -> Callable[[Any], Any]:
    """``fn``, tried up to ``retries`` more times while it raises (see ``_policy``)."""

    def call(x: Any) -> Any:
        for attempt in range(retries):
            try:
                return fn(x)
            except Exception:  # noqa: BLE001 - tried again
                time.sleep(retry_delay(attempt))
        try:
            return fn(x)
        except Exception as exc:
            tried(exc, retries)
            raise

    return call


def _skipping(
    fn: Callable[[Any], Any],
    items: list[Any],
    it: Iterator[Any],
    base: int,
    label: str,
    skipped: list[tuple[int, Exception]],
) -> list[Any]:
    """``fn`` over what is left of ``it``, dropping the items it raises on."""
    out: list[Any] = []
    append = out.append
    while True:
        try:
            for x in it:
                append(fn(x))
            return out
        except Exception as exc:
            position = base + failed_at(items, it)
            add_stage_note(exc, label, position)
            skipped.append((position, exc))


def apply_shipped(
    key: str,
    pickled: bytes | None,
    items: list[Any] | Packed,
    base: int,
    shm: str | None,
    slot: tuple[str, int] | None,
) -> tuple[Packed, float, list[tuple[int, Exception]]]:
    """``apply_chunk`` with the work this process keeps under ``key``.

    Work is sent to each worker process once, not with every job (its
    functions may hold large data): as it starts (``ready``), or as
    ``pickled`` with the first job of it that its lane sends (see
    ``_process``). With ``shm``, a name prefix, large buffers in the results go back
    through shared memory: into ``slot`` if they fit (see ``_shm``). The
    seconds returned include packing them. ``items`` may come packed the
    same way, with their large buffers in shared memory.
    """
    global _items_done
    if _init_error is not None:
        raise _init_error
    work = _work.get(key)
    if work is None:
        assert pickled is not None, "the main process sends work with a worker's first job of it"
        work = _work[key] = pickle.loads(pickled)
    if isinstance(items, Packed):
        items = unpack(items, _borrowed)
    _items_done += len(items)
    began = time.perf_counter()
    results, _, skipped = apply_chunk(work, items, base)
    try:
        packed = pack(results, shm, slot)
    except Exception as exc:
        exc.add_note(f"snake: in stage {work.label}, {_unsendable(work, results, base)}")
        raise
    sent = [(position, _sendable(exc)) for position, exc in skipped]
    return packed, time.perf_counter() - began, sent


def _unsendable(work: Work, results: list[Any], base: int) -> str:
    """Which result could not be pickled, as an error note says it."""
    for k, result in enumerate(results):
        try:
            cloudpickle.dumps(result)
        except Exception:  # noqa: BLE001 - this is the one
            if work.batch is None and not any(keep for keep, _, _ in work.steps):
                return f"the result of item {base + k} of its input cannot be sent back (pickled)"
            return (
                f"result {k} of the job from item {base} of its input cannot be sent back (pickled)"
            )
    return f"the results of items from {base} of its input cannot be sent back (pickled)"


def serve(address: str | bytes, hello: bytes, shipments: list[tuple[str, bytes]]) -> None:
    """A worker's job loop, run as one long call: jobs come over a socket until it closes.

    The main process keeps a next job waiting in the socket while this one
    runs, so a worker goes from job to job without waiting for a round trip
    (see ``_process``). ``hello`` tells the main process that this is its
    worker, and which of its lanes it serves.
    """
    global _in_process
    _in_process = True
    ready(shipments)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(address)
        sock.sendall(hello + wire.HEADER.pack(os.getpid()))
        while (message := wire.receive(sock)) is not None:
            wire.send(sock, _run_job(message))


def _run_job(message: bytes) -> bytes:
    """Run one job; its reply, pickled: ``(ok, results or exception, retiring,
    slots of items released)``."""
    args = None
    try:
        args = pickle.loads(message)
        result = apply_shipped(*args)
        reply: tuple[bool, Any, bool, list[str]] = (True, result, should_retire(), [])
    except BaseException as exc:  # noqa: BLE001 - it belongs to the job: the main process raises it
        reply = (False, _picklable_error(exc), should_retire(), [])
    del args  # the job's items, so that their slots count as released
    reply[3].extend(_borrowed.take_released())
    try:
        return cloudpickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - results are pickled already: the error cannot be
        return cloudpickle.dumps((False, _remote(reply[1]), *reply[2:]))  # type: ignore[no-any-return]


def _sendable(exc: Exception) -> Exception:
    """``exc`` if it can be pickled (with its traceback), else a ``RemoteError`` for it."""
    _picklable_error(exc)
    try:
        cloudpickle.dumps(exc)
    except Exception:  # noqa: BLE001 - any reason not to pickle
        return _remote(exc)
    return exc


def _remote(error: BaseException) -> RemoteError:
    remote = RemoteError(
        type(error).__qualname__, str(error), "".join(traceback.format_exception(error))
    )
    for note in getattr(error, "__notes__", ()):
        remote.add_note(note)
    return remote


def _picklable_error(exc: BaseException) -> BaseException:
    """``exc``, set up to carry its traceback to the main process."""
    try:
        from tblib.pickling_support import install  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover
        return exc
    install(exc)
    return exc
