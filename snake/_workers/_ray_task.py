"""A ``par_map`` job as a Ray task: what runs in a Ray worker process.

The work (the map's function and the steps after it) reaches a worker once:
its task receives the object reference of the pickled work inside a list,
which Ray does not resolve, and fetches it only the first time it meets the
work's key. Errors come back as values, as from snake's own worker
processes: a user's exception arrives as itself, with its cause, traceback
and stage note, instead of Ray's wrapper; one that cannot travel becomes a
``RemoteError``. Large CPU tensors in the results go through Ray's object
store as numpy arrays, without a copy (see :func:`_register_tensors`).
"""

from __future__ import annotations

import pickle
import sys
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import cloudpickle

from .. import _info
from .._errors import in_worker_process
from ._packing import _array_of, _tensor
from ._work import ChunkResult, Work, apply_chunk
from ._worker import _picklable_error, _remote, _sendable

if TYPE_CHECKING:
    import ray

#: Works a Ray worker keeps, the most recently used: a long-lived worker
#: serves many runs, whose works would otherwise pile up.
WORKS_KEPT = 8

_works: OrderedDict[str, Work] = OrderedDict()
_tensors_registered = False


def run_job(
    key: str, box: list[ray.ObjectRef[Any]], items: list[Any], base: int
) -> ChunkResult | BaseException:
    """Run the work kept under ``key`` (fetched from ``box[0]`` the first
    time) over ``items``, whose first is item ``base`` of its stage's input."""
    in_worker_process()
    try:
        work = _work(key, box)
        if work.run is not None:
            _info.enter(work.run)  # snake.current_epoch() in the task
        done = apply_chunk(work, items, base)
    except BaseException as exc:  # it belongs to the job: the main process raises it
        return _travelling(exc)
    _register_tensors()
    skipped = [(position, _sendable(exc)) for position, exc in done.skipped]
    return ChunkResult(done.results, done.seconds, done.nbytes, skipped)


def _work(key: str, box: list[ray.ObjectRef[Any]]) -> Work:
    work = _works.get(key)
    if work is None:
        import ray

        work = _works[key] = pickle.loads(ray.get(box[0]))
        if len(_works) > WORKS_KEPT:
            _works.popitem(last=False)
    else:
        _works.move_to_end(key)
    return work


def _travelling(exc: BaseException) -> BaseException:
    """``exc`` as it can reach the main process: itself, with its traceback,
    if it survives the trip, else a ``RemoteError`` for it."""
    error = _picklable_error(exc)
    try:
        pickle.loads(cloudpickle.dumps(error))
    except Exception:  # it pickles but cannot be rebuilt (an __init__ of its own), or neither
        return _remote(error)
    return error


def _register_tensors() -> None:
    """Have this worker send large CPU tensors as numpy arrays, which Ray's
    object store hands over without a copy; torch would pickle their
    storage into bytes, a copy each way. Once torch is loaded here."""
    global _tensors_registered
    torch = sys.modules.get("torch")
    if _tensors_registered or torch is None:
        return
    import ray.util

    ray.util.register_serializer(torch.Tensor, serializer=_tensor_out, deserializer=_tensor_in)
    _tensors_registered = True


def _tensor_out(tensor: Any) -> Any:
    """A tensor as it travels: its numpy view, or torch's own pickling of it."""
    array = _array_of(tensor)
    if array is not None:
        return array
    rebuild, args = tensor.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[:2]
    return (rebuild, args)


def _tensor_in(sent: Any) -> Any:
    """The tensor back: on the array's memory in Ray's object store, or rebuilt."""
    if isinstance(sent, tuple):
        rebuild, args = sent
        return rebuild(*args)
    with warnings.catch_warnings():
        # The store's buffers are read-only to numpy; torch cannot mark a
        # tensor so, and warns (see docs/scaling.md: clone() to keep one).
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return _tensor(sent)
