"""A lane: one worker process at a time, and the jobs it is sent.

A ``trio_parallel`` call per job leaves the worker idle while its result
travels back and the next job travels out: measured, about 0.8 ms per job,
4 % of a 20 ms job. So each worker runs one long call instead
(``_worker.serve``) that reads jobs from a socket, and its lane keeps up to
``DEPTH`` jobs in that socket: one running, the next waiting. Lanes pull jobs
from their executor's one queue as they have room, so a worker done early
takes the next job, whatever stage it is for.

Limits hold per lane, not per call: a lane holds a token of each limiter a
job names (its stage's ``concurrency``, the pipeline's CPU budget) while it
has jobs naming it in flight, so ``concurrency=1`` still means one worker
busy with the stage at a time.

A worker that dies fails the job it ran; the jobs waiting behind it go back
to the queue for the next worker. A worker that has done its ``max_items``
finishes the jobs in its lane and is replaced. A worker killed for a job past
its timeout is replaced too.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs
import cloudpickle
import trio
import trio_parallel

from .._nursery import open_nursery
from .._stats import WorkerStatistics
from . import _wire as wire
from ._deaths import died
from ._messages import JobMessage, Reply, Result
from ._packing import unpack
from ._worker import serve

if TYPE_CHECKING:
    from ._shm import Packed
    from ._work import Work

#: Jobs in a worker's lane at once: the running one and the next.
DEPTH = 2

T = TypeVar("T")


@attrs.define(eq=False)
class Job:
    """A job of a process map, from its stage's call until its reply is read."""

    work: Work
    key: str  # the work's, in the workers
    items: list[Any] | Packed
    count: int
    base: int
    slot: tuple[str, int] | None  # for its results
    limiters: tuple[trio.CapacityLimiter, ...]
    done: trio.Event = attrs.Factory(trio.Event)
    #: Its worker has it, and no job ahead of it.
    started: trio.Event = attrs.Factory(trio.Event)
    lane: Lane | None = None
    reply: Result | BaseException | None = None
    #: Its stage stopped waiting for it: a reply is dropped.
    abandoned: bool = False

    def fail(self, error: BaseException) -> None:
        self.reply = error
        self.started.set()
        self.done.set()

    def message(self, work: bytes | None, shm_prefix: str | None) -> bytes:
        """The job as its worker receives it; ``work``, pickled, for its first of it."""
        message = JobMessage(self.key, work, self.items, self.base, shm_prefix, self.slot)
        return cloudpickle.dumps(message)  # type: ignore[no-any-return]


class Feed(Protocol):
    """What a lane draws on: its executor's queue of jobs, work and memory."""

    context: trio_parallel.WorkerContext
    closing: bool
    #: How many lanes it feeds.
    workers: int
    shm_prefix: str | None

    def hello(self, index: int) -> bytes: ...
    def shipments(self) -> list[tuple[str, bytes]]: ...
    def pickled(self, work: Work) -> bytes: ...
    async def next_job(self) -> Job: ...
    def requeue(self, job: Job) -> None: ...
    def released(self, names: list[str]) -> None: ...
    def broken(self, lane: Lane, exc: BaseException) -> None: ...


def drain(recv: trio.MemoryReceiveChannel[T]) -> list[T]:
    """Whatever waits in ``recv`` right now."""
    out = []
    while True:
        try:
            out.append(recv.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


@attrs.define(eq=False)
class Lane:
    """One worker process at a time, and the jobs sent to it."""

    index: int
    feed: Feed
    #: Its workers' connections, as the executor's greeter hands them over.
    connections: trio.MemorySendChannel[trio.SocketStream] = attrs.field(init=False)
    incoming: trio.MemoryReceiveChannel[trio.SocketStream] = attrs.field(init=False)
    in_flight: deque[Job] = attrs.field(init=False, factory=deque)
    room: trio.Semaphore = attrs.field(init=False, factory=lambda: trio.Semaphore(DEPTH))
    idle: trio.Event = attrs.field(init=False, factory=trio.Event)
    #: Tokens it holds of each limiter its jobs name.
    held: dict[trio.CapacityLimiter, int] = attrs.field(init=False, factory=dict)
    retiring: bool = attrs.field(init=False, default=False)
    #: Its worker has started and connected.
    connected: bool = attrs.field(init=False, default=False)
    #: A job pulled while retiring: for the next worker.
    carry: Job | None = attrs.field(init=False, default=None)
    #: Cancelled: its worker is killed, for good.
    scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    #: Cancelled: its worker is killed and replaced.
    worker: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    # For the statistics: its current worker, and what its workers did.
    pid: int | None = attrs.field(init=False, default=None)
    started: int = attrs.field(init=False, default=0)
    jobs: int = attrs.field(init=False, default=0)
    items: int = attrs.field(init=False, default=0)
    busy: float = attrs.field(init=False, default=0.0)

    def __attrs_post_init__(self) -> None:
        self.connections, self.incoming = trio.open_memory_channel[trio.SocketStream](math.inf)

    def figures(self) -> WorkerStatistics:
        return WorkerStatistics(
            self.index, self.pid, self.started, self.jobs, self.items, self.busy
        )

    def pending(self) -> list[Job]:
        """Its jobs, and one it holds for its next worker: every job that is not queued."""
        jobs = list(self.in_flight)
        self.in_flight.clear()
        if self.carry is not None:
            jobs.append(self.carry)
            self.carry = None
        return jobs

    def release_tokens(self) -> None:
        for limiter, count in self.held.items():
            if count:
                limiter.release_on_behalf_of(self)
        self.held.clear()

    def close_connections(self) -> None:
        """Close connections of its workers it has not taken (a gone worker's)."""
        for stream in drain(self.incoming):
            stream.socket.close()

    async def keep(self, address: str | bytes, calls: trio.CapacityLimiter) -> None:
        """Keep a worker serving this lane: a new one when the last retired or died.

        A worker that dies as it starts breaks the executor (the next would
        too: a script without a ``__main__`` guard, a failing import).
        """
        with self.scope:
            while True:
                try:
                    more = await self._serve(address, calls)
                except trio_parallel.BrokenWorkerError as exc:
                    if not self.connected:
                        self.feed.broken(self, exc)
                        return
                    self._lost(exc)
                    more = True
                if not more or self.feed.closing:
                    return

    async def _serve(self, address: str | bytes, calls: trio.CapacityLimiter) -> bool:
        """One worker's time in the lane; whether the lane goes on with another."""
        shipments = self.feed.shipments()
        self.retiring = False
        self.connected = False
        self.idle = trio.Event()
        self.room = trio.Semaphore(DEPTH)
        more = True
        with trio.CancelScope() as self.worker:
            more = await self._talk(address, calls, shipments)
        if self.worker.cancelled_caught:
            # Killed (a job ran past its timeout): the jobs waiting behind
            # it go back to the queue, for the next worker.
            self._requeue()
        return more

    def _lost(self, exc: BaseException) -> None:
        """A worker died: the job it ran fails; those waiting for it go to the next."""
        if self.in_flight:
            job = self.in_flight.popleft()
            job.fail(died(exc, job.work.label, job.count, job.base, running=True))
        self._requeue()

    def _requeue(self) -> None:
        """Put the jobs of a lane whose worker is gone back in the queue."""
        for job in self.in_flight:
            if not job.abandoned:
                job.lane = None
                self.feed.requeue(job)
        self.in_flight.clear()
        self.release_tokens()
        self.close_connections()

    async def _talk(
        self, address: str | bytes, calls: trio.CapacityLimiter, shipments: list[tuple[str, bytes]]
    ) -> bool:
        """Start a worker for the lane and feed it; whether the lane goes on after."""
        known = {key for key, _ in shipments}
        more = False
        async with open_nursery() as nursery:
            place = (self.index, self.feed.workers, self.started)

            async def call() -> None:
                await self.feed.context.run_sync(
                    serve, address, self.feed.hello(self.index), shipments, place,
                    kill_on_cancel=True, limiter=calls,
                )  # fmt: skip

            nursery.start_soon(call)
            self.started += 1
            stream = await self.incoming.receive()
            self.connected = True
            try:
                async with open_nursery() as talk:
                    talk.start_soon(self._receive, stream)
                    more = await self._send(stream, known)
                    if self.in_flight:
                        await self.idle.wait()
                    await stream.send_eof()  # the worker's call returns
            finally:
                stream.socket.close()
        return more

    async def _send(self, stream: trio.SocketStream, known: set[str]) -> bool:
        """Send jobs as the lane has room; whether there may be more after this worker."""
        while not self.retiring:
            await self.room.acquire()
            job, self.carry = self.carry, None
            if job is None:
                try:
                    job = await self.feed.next_job()
                except trio.EndOfChannel:
                    self.room.release()
                    return False
            if job.abandoned:
                self.room.release()
                continue
            if self.retiring:
                self.carry = job
                self.room.release()
                break
            for limiter in job.limiters:
                if not self.held.get(limiter):
                    await limiter.acquire_on_behalf_of(self)
                self.held[limiter] = self.held.get(limiter, 0) + 1
            work = None
            if job.key not in known:
                work = self.feed.pickled(job.work)
                known.add(job.key)
            message = job.message(work, self.feed.shm_prefix)
            self.idle = trio.Event()
            job.lane = self
            self.in_flight.append(job)
            if len(self.in_flight) == 1:
                job.started.set()
            try:
                await wire.send_async(stream, message)
            except trio.BrokenResourceError:
                # The worker is gone: its call is about to say how.
                await trio.sleep_forever()
        return True

    async def _receive(self, stream: trio.SocketStream) -> None:
        reader = wire.Reader(stream)
        try:
            while (message := await reader.receive()) is not None:
                self._replied(message)
        except (trio.BrokenResourceError, EOFError):
            pass  # the worker is gone: its call says how

    def _replied(self, message: bytes) -> None:
        """A reply to the job at the head of the lane: its tokens go, its stage gets it."""
        job = self.in_flight.popleft()
        if self.in_flight:
            self.in_flight[0].started.set()
        for limiter in job.limiters:
            self.held[limiter] -= 1
            if not self.held[limiter]:
                limiter.release_on_behalf_of(self)
        self.room.release()
        try:
            reply: Reply = cloudpickle.loads(message)
        except Exception as exc:  # e.g. an error type the main process lacks
            reply = Reply(exc, False, [])
        if reply.released:
            self.feed.released(reply.released)
        self.retiring = self.retiring or reply.retiring
        if isinstance(reply.outcome, Result):
            self.jobs += 1
            self.items += job.count
            self.busy += reply.outcome.seconds  # as the worker measured it
        if job.abandoned:
            _discard(reply.outcome)
        else:
            job.reply = reply.outcome
            job.done.set()
        if not self.in_flight:
            self.idle.set()


def _discard(outcome: Result | BaseException) -> None:
    """Drop an abandoned job's results: a shared-memory segment of their own goes too."""
    if isinstance(outcome, Result):
        packed = outcome.packed
        if packed.name is not None and not packed.reused:
            unpack(packed)
