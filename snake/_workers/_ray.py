"""Process maps on a Ray cluster: ``par_map(..., executor="ray")``, each job a Ray task.

Behind the same executor protocol as threads and processes: the stage cuts
jobs with its pacer and bounds them with its ``concurrency``; here each job
is one task of ``_ray_task.run_job``. Ray imports only where a pipeline has a
Ray map.

* Work goes out once per run (``ray.put``), by reference, not with each job.
* Waiting costs no thread and no polling: Ray's future of a task's result
  wakes trio through its token when the result is in.
* A stage keeps two jobs in flight per ``concurrency`` token, as a process
  lane does: the next one queued in Ray, ready when a worker frees.
* Cancel: a job in flight is cancelled with ``force=True`` (a running
  task's worker is killed; a queued task does not start), again until Ray
  confirms it, and the run does not end before Ray has confirmed every such
  cancel, so no Ray worker runs its work after it.
* Errors: a user's exception arrives as itself (``_ray_task``); a worker or
  node that dies becomes ``WorkerDiedError``; Ray's own retries are off, so
  ``retries=`` decides, as for processes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
from typing import TYPE_CHECKING, Any

import cloudpickle
import ray
import ray.exceptions
import trio

from .._errors import carried
from .._exceptions import timed_out
from ._deaths import died, span
from ._ray_task import run_job
from ._work import ChunkResult

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._options import RayOptions
    from ._work import Work

logger = logging.getLogger("snake")

#: Jobs in flight per ``concurrency`` token: the running one, and the next,
#: queued in Ray. Each Ray task costs about a millisecond of scheduling.
JOBS_PER_TOKEN = 2
#: Seconds a run waits, as it ends, for Ray to confirm the cancel of its jobs
#: still in flight (measured: their workers are gone within 9 to 27 ms).
STOP_GRACE = 10.0
#: Seconds between cancels of a job not confirmed stopped. A task queued in
#: its worker behind another may still start after a first cancel (seen with
#: Ray 2.60: 1 of 8 early stops in a probe); a cancel once it runs kills its
#: worker.
CANCEL_AGAIN = 0.05

#: Ray's errors that mean the worker, its node or the result is gone.
_DEATHS = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.OutOfMemoryError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.LocalRayletDiedError,
)

_executors = itertools.count()


async def connect() -> None:
    """Connect to Ray, unless the program did: a local runtime, as Ray starts
    one on a first task, in a thread (it takes seconds)."""
    if ray.is_initialized():
        return
    logger.info(
        "snake: no Ray runtime connected (ray.init); starting a local one for "
        'par_map(executor="ray"), as Ray does on a first task'
    )
    await trio.to_thread.run_sync(_init)


def _init() -> None:
    ray.init(logging_level=logging.WARNING)


@contextlib.asynccontextmanager
async def open_ray_executor(options: RayOptions) -> AsyncIterator[RayExecutor]:
    """A Ray executor for one run's maps with ``options``; as it closes, every
    cancelled job is confirmed stopped and the work it shipped is let go."""
    await connect()
    executor = RayExecutor(options)
    try:
        yield executor
    finally:
        with trio.CancelScope(shield=True):
            await executor.stopped()
        executor.release()


class RayExecutor:
    """``par_map`` jobs as Ray tasks, each asking the cluster for ``options``."""

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        self._task = ray.remote(run_job).options(
            max_retries=0, retry_exceptions=False, **options.task_options()
        )
        self._name = f"{os.getpid()}-{next(_executors)}"
        # id(work) -> (work, its key, its pickle's reference, boxed)
        self._shipped: dict[int, tuple[Work, str, list[ray.ObjectRef[Any]]]] = {}
        self._seats = _Seats()
        # Jobs cancelled, until Ray confirms it.
        self._stopping: dict[ray.ObjectRef[Any], trio.Event] = {}

    def concurrency(self) -> int:
        """Tasks the cluster runs at once: its CPUs over each task's."""
        cpus = ray.cluster_resources().get("CPU", 1.0)  # type: ignore[no-untyped-call]
        per_task = self.options.num_cpus
        return max(1, int(cpus // per_task) if per_task else int(cpus))

    def prepare(self, work: Work) -> None:
        self._ship(work)

    async def run_chunk(
        self,
        work: Work,
        items: list[Any],
        base: int,
        limiter: trio.CapacityLimiter,
        time_limit: float | None = None,
    ) -> ChunkResult:
        # Timed jobs run one per token: the clock starts as the task is
        # sent, so it must not wait in Ray's queue behind another.
        per_token = JOBS_PER_TOKEN if time_limit is None else 1
        async with self._seats.seat(limiter, per_token):
            outcome = await self._outcome(work, items, base, time_limit)
        # Raised here, from a frame that holds no reference to Ray's objects:
        # a traceback kept by the caller keeps none in the object store.
        if isinstance(outcome, _Failed):
            error = _error(outcome.error, work.label, items, base)
            raise error from error.__cause__
        if outcome is None:
            assert time_limit is not None
            raise timed_out(time_limit)
        if isinstance(outcome, BaseException):
            raise carried(outcome)
        assert isinstance(outcome, ChunkResult)
        return outcome

    async def _outcome(
        self, work: Work, items: list[Any], base: int, time_limit: float | None
    ) -> Any:
        """The job's task's return value, a ``_Failed`` for Ray's error, or
        ``None`` past ``time_limit``; cancelled, the task is stopped."""
        key, box = self._ship(work)
        await trio.lowlevel.checkpoint_if_cancelled()  # no task for a stopped stage
        ref = self._task.remote(key, box, items, base)
        waiter = _Waiter(ref)
        try:
            with trio.move_on_after(math.inf if time_limit is None else time_limit):
                await waiter.done.wait()
        finally:
            if not waiter.done.is_set():
                self._stop(ref, waiter)
        if not waiter.done.is_set():
            return None
        try:
            return waiter.result()
        except ray.exceptions.RayError as exc:
            return _Failed(exc)

    def _ship(self, work: Work) -> tuple[str, list[ray.ObjectRef[Any]]]:
        shipped = self._shipped.get(id(work))
        if shipped is None:
            key = f"{self._name}-{len(self._shipped)}"
            # Boxed in a list, which Ray passes as it is: each worker fetches
            # it once, the first time it meets the key.
            box = [ray.put(cloudpickle.dumps(work))]
            shipped = self._shipped[id(work)] = (work, key, box)
        return shipped[1], shipped[2]

    def _stop(self, ref: ray.ObjectRef[Any], waiter: _Waiter) -> None:
        """Cancel a job in flight: its worker is killed, or it never starts."""
        self._stopping[ref] = waiter.done
        ray.cancel(ref, force=True)

    async def stopped(self) -> None:
        """Wait until Ray has confirmed each cancel (no longer than ``STOP_GRACE``),
        cancelling again what is not confirmed every ``CANCEL_AGAIN`` seconds."""
        with trio.move_on_after(STOP_GRACE):
            while waiting := [ref for ref, done in self._stopping.items() if not done.is_set()]:
                with trio.move_on_after(CANCEL_AGAIN):
                    await self._stopping[waiting[0]].wait()
                for ref in waiting:
                    if not self._stopping[ref].is_set():
                        ray.cancel(ref, force=True)
        self._stopping.clear()

    def release(self) -> None:
        """Let go of the shipped work: the object store frees it."""
        self._shipped.clear()


class _Failed:
    """Ray's error for a job, carried out of the frame that holds its task."""

    __slots__ = ("error",)

    def __init__(self, error: ray.exceptions.RayError) -> None:
        self.error = error


def _error(
    error: ray.exceptions.RayError, label: str, items: list[Any], base: int
) -> BaseException:
    """What a job's stage raises for Ray's ``error``: a dead worker or node is
    a ``WorkerDiedError``; results that cannot be pickled, the pickling error
    with a note naming them; anything else, Ray's error itself."""
    if isinstance(error, _DEATHS):
        return died(error, label, len(items), base, running=True, kind="Ray worker")
    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(error.cause, Exception):
        # The task's own errors come back as values: this is its results
        # failing to travel.
        error.cause.add_note(
            f"snake: in stage {label}, the results of {span(base, len(items))} of its input "
            "cannot be sent back from the Ray worker (pickled)"
        )
        return carried(error.cause)
    return error


class _Waiter:
    """A task's result, awaited from trio: Ray's future wakes the run when it is in."""

    def __init__(self, ref: ray.ObjectRef[Any]) -> None:
        self.done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        self._future = ref.future()

        def wake(_: object) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self.done.set)

        self._future.add_done_callback(wake)

    def result(self) -> Any:
        return self._future.result()


class _Seat:
    __slots__ = ("size", "used")

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0


class _Seats:
    """A stage's jobs in flight, ``per_token`` of them for each of its
    limiter's tokens: as a process lane holds one token for both jobs in its
    worker's socket. A job joins a seat with room before it takes a token."""

    def __init__(self) -> None:
        self._open: dict[trio.CapacityLimiter, list[_Seat]] = {}
        self._room: dict[trio.CapacityLimiter, trio.lowlevel.ParkingLot] = {}

    @contextlib.asynccontextmanager
    async def seat(self, limiter: trio.CapacityLimiter, per_token: int) -> AsyncIterator[None]:
        await trio.lowlevel.checkpoint_if_cancelled()
        seats = self._open.setdefault(limiter, [])
        room = self._room.setdefault(limiter, trio.lowlevel.ParkingLot())
        while (seat := next((s for s in seats if s.used < s.size), None)) is None:
            seat = _Seat(per_token)
            try:
                limiter.acquire_on_behalf_of_nowait(seat)
            except trio.WouldBlock:
                await room.park()  # a seat has room again, or a token is free
                continue
            seats.append(seat)
            break
        seat.used += 1  # taken before any checkpoint: the seat cannot go meanwhile
        try:
            await trio.lowlevel.cancel_shielded_checkpoint()
            yield
        finally:
            seat.used -= 1
            if not seat.used:
                seats.remove(seat)
                limiter.release_on_behalf_of(seat)
            room.unpark_all()
