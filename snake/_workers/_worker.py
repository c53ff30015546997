"""A worker process: its set-up, its job loop, and what its replies carry back."""

from __future__ import annotations

import faulthandler
import functools
import os
import pickle
import socket
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

import attrs
import cloudpickle

from .. import _info
from .._errors import carried, in_worker_process
from .._exceptions import RemoteError
from . import _wire as wire
from ._messages import JobMessage, Reply, Result
from ._packing import Borrowed, pack, unpack
from ._shm import Packed
from ._work import Work, apply_chunk

if TYPE_CHECKING:
    from collections.abc import Callable

#: Work this worker process has received, by the key of its stage.
_work: dict[str, Work] = {}
#: Items this worker process has processed, and how many it may.
_items_done = 0
_max_items: int | None = None
#: The user's init, pickled, until the first job runs it.
_init: bytes | None = None
#: What the user's init raised here, for the first job to report.
_init_error: Exception | None = None
#: Which worker this is: its lane, the workers of its executor, and how
#: many workers served its lane before it (see ``serve``).
_place = (0, 1, 0)
#: The epoch this worker was last seeded for, and what it tells its code.
_seeded: _info.Epoch | None = None
_info_here: _info.WorkerInfo | None = None
#: The main process's slots this worker read items from.
_borrowed = Borrowed()


def ready(shipments: list[tuple[str, bytes]]) -> None:
    """Take the work this process will be given (the pool starts a worker for it)."""
    if _init_error is not None:
        return  # the first job reports it
    for key, pickled in shipments:
        if key not in _work:
            _work[key] = pickle.loads(pickled)


def start(init: bytes | None, max_items: int | None) -> Callable[[], None]:
    """The set-up a new worker process runs as it starts (see ``_executors.WorkerStart``).

    The user's ``init`` waits for the first job, when the worker knows its
    place and epoch (``snake.worker_info()``).
    """
    return functools.partial(_set_up, init, max_items)


def _set_up(init: bytes | None, max_items: int | None) -> None:
    global _max_items, _init
    faulthandler.enable()  # a crash in native code leaves its C-level trace on stderr
    _max_items = max_items
    _init = init


def _enter(run: _info.Epoch | None) -> None:
    """Tell the code this worker runs its epoch and place; at a new epoch,
    seed the global random generators for it; run the user's init once.

    As DataLoader does, the generators are seeded before the init, which may
    seed them its own way; those of libraries the init imports are seeded
    after it.
    """
    global _seeded, _info_here, _init, _init_error
    if run is None:
        return
    if run != _seeded:
        index, workers, generation = _place
        seed = run.worker_seed(index, generation)
        _info_here = _info.WorkerInfo(index, workers, seed, run.number)
        _info.seed_globals(seed)
        _seeded = run
    _info.enter(run)
    _info.enter_worker(_info_here)
    if _init is not None:
        init, _init = _init, None
        before = set(sys.modules)
        try:
            pickle.loads(init)(_place[0])
        except Exception as exc:
            exc.add_note(f"snake: raised by WorkerOptions.init in worker {_place[0]}")
            _init_error = exc
        if _info_here is not None:
            _info.seed_globals(_info_here.seed, skip=before)


def should_retire() -> bool:
    """Whether this worker has done the items it may (``WorkerOptions.max_items``)."""
    return _max_items is not None and _items_done >= _max_items


def apply_shipped(job: JobMessage) -> Result:
    """``apply_chunk`` with the work this process keeps under ``job.key``.

    With a shared-memory prefix, large buffers in the results go back
    through shared memory: into the job's slot if they fit (see
    ``_packing``). The seconds returned include packing them. The items may
    come packed the same way, with their large buffers in shared memory.
    """
    global _items_done
    work = _work.get(job.key)
    if work is None and _init_error is None:
        assert job.work is not None, "the main process sends work with a worker's first job of it"
        work = _work[job.key] = pickle.loads(job.work)
    if work is not None:
        _enter(work.run)
    if _init_error is not None:
        raise carried(_init_error)
    assert work is not None
    items = job.items
    if isinstance(items, Packed):
        items = unpack(items, _borrowed)
    _items_done += len(items)
    began = time.perf_counter()
    done = apply_chunk(work, items, job.base)
    try:
        packed = pack(done.results, job.shm_prefix, job.slot)
    except Exception as exc:
        exc.add_note(f"snake: in stage {work.label}, {_unsendable(work, done.results, job.base)}")
        raise
    sent = [(position, _sendable(exc)) for position, exc in done.skipped]
    return Result(packed, time.perf_counter() - began, sent)


def first_unpicklable(values: list[Any]) -> int | None:
    """The index of the first of ``values`` that cannot be pickled, if one cannot."""
    for k, value in enumerate(values):
        try:
            cloudpickle.dumps(value)
        except Exception:  # this is the one
            return k
    return None


def _unsendable(work: Work, results: list[Any], base: int) -> str:
    """Which result could not be pickled, as an error note says it."""
    k = first_unpicklable(results)
    if k is None:
        return f"the results of items from {base} of its input cannot be sent back (pickled)"
    if work.one_to_one:
        return f"the result of item {base + k} of its input cannot be sent back (pickled)"
    return f"result {k} of the job from item {base} of its input cannot be sent back (pickled)"


def serve(
    address: str | bytes,
    hello: bytes,
    shipments: list[tuple[str, bytes]],
    place: tuple[int, int, int] = (0, 1, 0),
) -> None:
    """A worker's job loop, run as one long call: jobs come over a socket until it closes.

    The main process keeps a next job waiting in the socket while this one
    runs, so a worker goes from job to job without waiting for a round trip
    (see ``_lane``). ``hello`` tells the main process that this is its
    worker, and which of its lanes it serves; ``place``, the lane, how many
    lanes there are, and how many workers served it before this one.
    """
    global _place, _seeded
    in_worker_process()
    # A kept worker (``snake.persistent_workers``) serves run after run: the
    # work of the last one goes, and each run seeds it afresh.
    _work.clear()
    _place, _seeded = place, None
    ready(shipments)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(address)
        sock.sendall(hello + wire.HEADER.pack(os.getpid()))
        while (message := wire.receive(sock)) is not None:
            wire.send(sock, _run_job(message))


def _run_job(message: bytes) -> bytes:
    """Run one job; its reply, pickled."""
    job = None
    try:
        job = pickle.loads(message)
        outcome: Result | BaseException = apply_shipped(job)
    except BaseException as exc:  # it belongs to the job: the main process raises it
        outcome = _picklable_error(exc)
    del job  # its items, so that their slots count as released
    reply = Reply(outcome, should_retire(), _borrowed.take_released())
    try:
        return cloudpickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]
    except Exception:  # results are pickled already: the error cannot be
        unpicklable = attrs.evolve(reply, outcome=_remote(outcome))  # type: ignore[arg-type]
        return cloudpickle.dumps(unpicklable)  # type: ignore[no-any-return]


def _sendable(exc: Exception) -> Exception:
    """``exc`` if it can be pickled (with its traceback), else a ``RemoteError`` for it."""
    _picklable_error(exc)
    try:
        cloudpickle.dumps(exc)
    except Exception:  # any reason not to pickle
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
