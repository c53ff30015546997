"""Process maps: worker processes of one ``trio_parallel`` context, each fed through a lane.

The executor keeps the one queue its lanes pull jobs from (see ``_lane``),
the listener its workers connect back to, the work it ships them and the
shared memory it lends their jobs (``_slots``). Errors: a job's exception
comes back as itself, with its traceback and stage note. A worker that dies
as it starts fails the jobs of its lane and every job after it (the pipeline
stops; see ``WorkerDiedError``). On cancel, a job waiting in the queue is
dropped and one in a worker is abandoned; a pipeline that stops early or
fails kills its workers (``kill_on_cancel``).
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import math
import os
import secrets
from typing import TYPE_CHECKING, Any

import trio

from .._exceptions import timed_out
from .._nursery import open_nursery
from . import _shm
from . import _wire as wire
from ._deaths import died
from ._lane import Job, Lane, drain
from ._messages import Result
from ._options import cpu_count
from ._script import dumps
from ._slots import Lending
from ._work import ChunkResult, Work
from ._worker import first_unpicklable

if TYPE_CHECKING:
    import trio_parallel

    from .._stats import WorkerStatistics

_executors = itertools.count()


class ProcessExecutor:
    """Worker processes of one ``trio_parallel`` context, each fed through a lane.

    All process maps with the same ``WorkerOptions`` share it; every
    executor of a run draws on one CPU ``budget``. Each function goes to
    each worker once (see ``_worker.apply_shipped``).
    """

    def __init__(
        self, context: trio_parallel.WorkerContext, budget: trio.CapacityLimiter, workers: int
    ) -> None:
        self.context = context
        self._budget = budget
        self.workers = workers
        self._queue_send, self._queue = trio.open_memory_channel[Job](math.inf)
        self._broken: BaseException | None = None
        #: Names of this executor's shared-memory segments start with it.
        self.shm_prefix = f"snake-{os.getpid()}-{id(self):x}-" if _shm.AVAILABLE else None
        self._memory = Lending(self.shm_prefix)
        # id(work) -> (work, key, pickled work); kept so the id stays unique.
        self._shipped: dict[int, tuple[Work, str, bytes]] = {}
        self._name = f"snake-{os.getpid()}-{next(_executors)}"
        self._lanes = [Lane(i, self) for i in range(workers)]
        self.closing = False
        # Workers prove they are ours with it (a socket in Linux's abstract
        # namespace can be reached by any local process); they receive it
        # through trio_parallel's private pipe.
        self._token = secrets.token_bytes(16)

    def prepare(self, work: Work) -> None:
        self._ship(work)
        self._memory.prepare(id(work))

    def concurrency(self) -> int:
        return cpu_count()

    async def run(self) -> None:
        """Start the workers, all at once, and feed them until ``close``.

        Started once the pipeline's stages are built, so each worker
        receives their work as it starts.
        """
        address, folder = wire.listen_address(self._name)
        listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        try:
            await listener.bind(address)
            listener.listen(self.workers)
            # The long calls must not wait on each other for a slot.
            calls = trio.CapacityLimiter(self.workers)
            async with open_nursery() as nursery:
                nursery.start_soon(self._accept, listener)
                async with open_nursery() as lanes:
                    for lane in self._lanes:
                        lanes.start_soon(lane.keep, address, calls)
                nursery.cancel_scope.cancel()  # every lane is done: stop accepting
        finally:
            listener.close()
            for lane in self._lanes:
                lane.close_connections()
            if folder is not None:
                os.remove(address)
                os.rmdir(folder)

    def close(self) -> None:
        """No more jobs: idle workers' calls return; workers with jobs are killed.

        Jobs still in a lane at the end were abandoned (the pipeline stopped
        early): their workers are not waited for, nor are workers still
        starting.
        """
        self.closing = True
        self._queue_send.close()
        for lane in self._lanes:
            if lane.in_flight or lane.carry is not None or not lane.connected:
                lane.scope.cancel()

    def worker_statistics(self) -> list[WorkerStatistics]:
        """What each lane's workers have done so far."""
        return [lane.figures() for lane in self._lanes]

    def remove_shared_memory(self) -> None:
        """Remove this executor's shared memory, once its workers are gone."""
        self._memory.close()

    async def run_chunk(
        self,
        work: Work,
        items: list[Any],
        base: int,
        limiter: trio.CapacityLimiter,
        time_limit: float | None = None,
    ) -> ChunkResult:
        if self._broken is not None:
            raise died(self._broken, work.label, len(items), base, running=False)
        _, key, _ = self._ship(work)
        try:
            loan = self._memory.lend(id(work), items)
        except Exception as exc:  # they cannot be pickled
            exc.add_note(f"snake: in stage {work.label}, {_unsendable(items, base)}")
            raise
        job = Job(work, key, loan.items, len(items), base, loan.slot, (limiter, self._budget))
        self._queue_send.send_nowait(job)
        try:
            if time_limit is None:
                await job.done.wait()
            else:
                await job.started.wait()  # the clock starts when it runs
                with trio.move_on_after(time_limit):
                    await job.done.wait()
                if not job.done.is_set():
                    assert job.lane is not None
                    job.lane.worker.cancel()  # kill its worker; the lane starts another
                    raise timed_out(time_limit)
        except BaseException:
            job.abandoned = True  # left in the queue, or its result is dropped
            loan.drop()  # its worker may be using them
            raise
        result = job.reply
        if not isinstance(result, Result):
            assert result is not None
            loan.drop()
            raise result
        # Its items' slot comes back when the worker reports it released.
        results = loan.read(result.packed)
        nbytes = sum(result.packed.sizes) + loan.sent
        return ChunkResult(results, result.seconds, nbytes, result.skipped)

    def _ship(self, work: Work) -> tuple[Work, str, bytes]:
        shipped = self._shipped.get(id(work))
        if shipped is None:
            key = f"{os.getpid()}-{id(self)}-{len(self._shipped)}"
            shipped = self._shipped[id(work)] = (work, key, dumps(work))
        return shipped

    # --- what its lanes draw on (``_lane.Feed``) ----------------------------

    def hello(self, index: int) -> bytes:
        """What the worker of lane ``index`` says first (its pid follows)."""
        return self._token + wire.HEADER.pack(index)

    def shipments(self) -> list[tuple[str, bytes]]:
        """Every work so far, with its key: a new worker receives them as it starts."""
        return [(key, pickled) for _, key, pickled in self._shipped.values()]

    def pickled(self, work: Work) -> bytes:
        return self._shipped[id(work)][2]

    async def next_job(self) -> Job:
        return await self._queue.receive()

    def requeue(self, job: Job) -> None:
        try:
            self._queue_send.send_nowait(job)
        except trio.ClosedResourceError:  # the run is ending
            job.fail(trio.ClosedResourceError("the pipeline stopped"))

    def released(self, names: list[str]) -> None:
        self._memory.released(names)

    def broken(self, lane: Lane, exc: BaseException) -> None:
        """A worker died as it started: the job it was to run, the jobs waiting
        for it, and every job after, fail."""
        self._broken = exc
        for k, job in enumerate(lane.pending() + drain(self._queue)):
            job.fail(died(exc, job.work.label, job.count, job.base, running=k == 0, started=False))
        lane.release_tokens()

    # --- the workers' connections -------------------------------------------

    async def _accept(self, listener: trio.socket.SocketType) -> None:
        """Hand each worker's connection to its lane."""
        async with open_nursery() as nursery:
            while True:
                sock, _ = await listener.accept()
                nursery.start_soon(self._greet, trio.SocketStream(sock))

    async def _greet(self, stream: trio.SocketStream) -> None:
        """A worker sends this executor's token, its lane and its pid; anything else is closed.

        A connection that says nothing waits, with no timeout, until the run
        ends: a timeout would count on trio's clock, which in a test may be a
        virtual one that jumps ahead while a worker starts in real time.
        """
        size = len(self._token) + 2 * wire.HEADER.size
        hello = b""
        try:
            with contextlib.suppress(EOFError, trio.BrokenResourceError):
                hello = await wire.receive_exactly(stream, size)
        finally:
            lane = self._lane_of(hello) if len(hello) == size else None
            if lane is not None:
                lane.connections.send_nowait(stream)
            else:  # a stranger, or the run is ending
                stream.socket.close()

    def _lane_of(self, hello: bytes) -> Lane | None:
        """The lane a whole greeting names, with its worker's pid noted; ``None`` if not ours."""
        token, rest = hello[: len(self._token)], hello[len(self._token) :]
        (index,), (pid,) = (wire.HEADER.unpack_from(rest, k * wire.HEADER.size) for k in (0, 1))
        if not hmac.compare_digest(token, self._token) or index >= len(self._lanes):
            return None
        lane: Lane = self._lanes[index]
        lane.pid = pid
        return lane


def _unsendable(items: list[Any], base: int) -> str:
    """Which item could not be pickled for a worker, as an error note says it."""
    k = first_unpicklable(items)
    what = f"the items from {base} of its input" if k is None else f"item {base + k} of its input"
    return (
        f"{what} cannot be sent to a worker process (pickled): pass something picklable "
        '(a path rather than an open file, say), or use executor="thread"'
    )
