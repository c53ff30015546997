"""Process maps: worker processes that always have their next job at hand.

A ``trio_parallel`` call per job leaves the worker idle while its result
travels back and the next job travels out: measured, about 0.8 ms per job,
4 % of a 20 ms job. So each worker runs one long call instead
(``_worker.serve``) that reads jobs from a socket, and its *lane* here keeps
up to ``DEPTH`` jobs in that socket: one running, the next waiting. Lanes
pull jobs from one queue as they have room, so a worker done early takes
the next job, whatever stage it is for.

Limits hold per lane, not per call: a lane holds a token of the stage's
limiter (its ``concurrency``) and of the pipeline's CPU budget while it has
jobs of that stage in flight, so ``concurrency=1`` still means one worker
busy with the stage at a time, and all process maps together use at most
the budget's workers.

Errors: a job's exception comes back as itself, with its traceback and
stage note. A worker that dies fails the jobs in its lane and every job
after it (the pipeline stops; see ``BrokenWorkerError``). On cancel, a job
waiting in the queue is dropped and one in a worker is abandoned; a
pipeline that stops early or fails kills its workers (``kill_on_cancel``).
A worker that has done its ``max_items`` finishes the jobs in its lane
and is replaced.
"""

from __future__ import annotations

import hmac
import itertools
import math
import os
import secrets
import signal
from collections import deque
from typing import Any

import cloudpickle
import trio
import trio_parallel

from .._exceptions import WorkerDiedError, timed_out
from .._nursery import open_nursery
from .._stats import WorkerStatistics
from . import _shm as shm
from . import _wire as wire
from ._work import Work
from ._worker import Done, serve

#: Jobs in a worker's lane at once: the running one and the next.
DEPTH = 2
#: Seconds a new connection has to say which lane it serves.
GREETING_SECONDS = 10.0

_executors = itertools.count()


class _Job:
    __slots__ = (
        "abandoned", "base", "count", "done", "items", "key", "lane", "limiters", "reply", "slot",
        "started", "work",
    )  # fmt: skip

    def __init__(
        self,
        work: Work,
        key: str,
        items: list[Any] | shm.Packed,
        count: int,
        base: int,
        slot: tuple[str, int] | None,
        limiters: tuple[trio.CapacityLimiter, ...],
    ) -> None:
        self.work = work
        self.key = key
        self.items = items
        self.count = count
        self.base = base
        self.slot = slot
        self.limiters = limiters
        self.done = trio.Event()
        self.started = trio.Event()  # its worker has it, and no job ahead of it
        self.lane: _Lane | None = None
        self.reply: tuple[bool, Any] | None = None
        self.abandoned = False

    def fail(self, error: BaseException) -> None:
        self.reply = (False, error)
        self.started.set()
        self.done.set()


class _Lane:
    """One worker process at a time, and the jobs sent to it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.connections: trio.MemorySendChannel[trio.SocketStream]
        self.connections, self.incoming = trio.open_memory_channel[trio.SocketStream](math.inf)
        self.in_flight: deque[_Job] = deque()
        self.room = trio.Semaphore(DEPTH)
        self.idle = trio.Event()
        self.held: dict[trio.CapacityLimiter, int] = {}
        self.retiring = False
        self.connected = False  # its worker has started and connected
        self.carry: _Job | None = None  # pulled while retiring: for the next worker
        self.scope = trio.CancelScope()  # cancelled: its worker is killed, for good
        self.worker = trio.CancelScope()  # cancelled: its worker is killed and replaced
        # For the statistics: its current worker, and what its workers did.
        self.pid: int | None = None
        self.started = 0
        self.jobs = 0
        self.items = 0
        self.busy = 0.0

    def figures(self) -> WorkerStatistics:
        return WorkerStatistics(
            self.index, self.pid, self.started, self.jobs, self.items, self.busy
        )

    def release_tokens(self) -> None:
        for limiter, count in self.held.items():
            if count:
                limiter.release_on_behalf_of(self)
        self.held.clear()


class ProcessExecutor:
    """Worker processes of one ``trio_parallel`` context, each fed through a lane.

    All process maps with the same ``WorkerOptions`` share it; every
    executor of a run draws on one CPU ``budget``. Each function goes to
    each worker once (see ``_worker.apply_shipped``).
    """

    def __init__(
        self, context: trio_parallel.WorkerContext, budget: trio.CapacityLimiter, workers: int
    ) -> None:
        self._context = context
        self._budget = budget
        self._workers = workers
        self._queue_send, self._queue = trio.open_memory_channel[_Job](math.inf)
        self._broken: BaseException | None = None
        #: Names of this executor's shared-memory segments start with it.
        self.shm_prefix = f"snake-{os.getpid()}-{id(self):x}-" if shm.AVAILABLE else None
        # id(work) -> (work, key, pickled work); kept so the id stays unique.
        self._shipped: dict[int, tuple[Work, str, bytes]] = {}
        # id(work) -> the shared-memory slots its results are lent.
        self._slots: dict[int, shm.Slots] = {}
        # The slots items travel to the workers in (the workers say when
        # they are free again: see ``shm.Borrowed``).
        self._inputs = None if self.shm_prefix is None else shm.Slots(f"{self.shm_prefix}in-", 8)
        self._name = f"snake-{os.getpid()}-{next(_executors)}"
        self._lanes = [_Lane(i) for i in range(workers)]
        self._closing = False
        # Workers prove they are ours with it (a socket in Linux's abstract
        # namespace can be reached by any local process); they receive it
        # through trio_parallel's private pipe.
        self._token = secrets.token_bytes(16)

    def prepare(self, work: Work) -> None:
        self._ship(work)
        if self.shm_prefix is not None and id(work) not in self._slots:
            # Enough free slots for a window of jobs, and some left in use.
            prefix = f"{self.shm_prefix}{len(self._slots)}-"
            self._slots[id(work)] = shm.Slots(prefix, 8)

    async def run(self) -> None:
        """Start the workers, all at once, and feed them until ``close``.

        Started once the pipeline's stages are built, so each worker
        receives their work as it starts.
        """
        address, folder = wire.listen_address(self._name)
        listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        try:
            await listener.bind(address)
            listener.listen(self._workers)
            # The long calls must not wait on each other for a slot.
            calls = trio.CapacityLimiter(self._workers)
            async with open_nursery() as nursery:
                nursery.start_soon(self._accept, listener)
                async with open_nursery() as lane_nursery:
                    for lane in self._lanes:
                        lane_nursery.start_soon(self._lane, lane, address, calls)
                nursery.cancel_scope.cancel()  # every lane is done: stop accepting
        finally:
            listener.close()
            for lane in self._lanes:  # connections no lane took
                while True:
                    try:
                        lane.incoming.receive_nowait().socket.close()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
            if folder is not None:
                os.remove(address)
                os.rmdir(folder)

    def close(self) -> None:
        """No more jobs: idle workers' calls return; workers with jobs are killed.

        Jobs still in a lane at the end were abandoned (the pipeline stopped
        early): their workers are not waited for, nor are workers still
        starting.
        """
        self._closing = True
        self._queue_send.close()
        for lane in self._lanes:
            if lane.in_flight or lane.carry is not None or not lane.connected:
                lane.scope.cancel()

    def worker_statistics(self) -> list[WorkerStatistics]:
        """What each lane's workers have done so far."""
        return [lane.figures() for lane in self._lanes]

    def remove_shared_memory(self) -> None:
        """Remove this executor's shared memory, once its workers are gone."""
        for slots in self._slots.values():
            slots.close()
        if self._inputs is not None:
            self._inputs.close()
        if self.shm_prefix is not None:
            shm.sweep(self.shm_prefix)

    async def run_chunk(
        self,
        work: Work,
        items: list[Any],
        base: int,
        limiter: trio.CapacityLimiter,
        timeout: float | None = None,
    ) -> Done:
        if self._broken is not None:
            raise _died(self._broken, work, len(items), base, running=False)
        _, key, _ = self._ship(work)
        slots = self._slots.get(id(work))
        slot = None if slots is None else slots.take()
        sent, in_slot = self._pack_items(items)
        job = _Job(work, key, sent, len(items), base, slot, (limiter, self._budget))
        self._queue_send.send_nowait(job)
        try:
            if timeout is None:
                await job.done.wait()
            else:
                await job.started.wait()  # the clock starts when it runs
                with trio.move_on_after(timeout):
                    await job.done.wait()
                if not job.done.is_set():
                    assert job.lane is not None
                    job.lane.worker.cancel()  # kill its worker; the lane starts another
                    raise timed_out(timeout)
        except BaseException:
            job.abandoned = True  # left in the queue, or its result is dropped
            self._drop(slots, slot, in_slot)  # its worker may be using them
            raise
        assert job.reply is not None
        ok, value = job.reply
        if not ok:
            self._drop(slots, slot, in_slot)
            raise value
        # Its items' slot comes back when the worker reports it released.
        packed, elapsed, skipped = value
        sent_bytes = sum(sent.sizes) if isinstance(sent, shm.Packed) else 0
        if not packed.reused and slots is not None:
            slots.put(slot)
        return shm.unpack(packed, slots), elapsed, sum(packed.sizes) + sent_bytes, skipped

    def _pack_items(self, items: list[Any]) -> tuple[list[Any] | shm.Packed, str | None]:
        """``items`` as sent: with large buffers in shared memory, and the slot used."""
        if self._inputs is None or self.shm_prefix is None:
            return items, None
        slot = self._inputs.take()
        packed = shm.pack(items, self.shm_prefix, slot)
        if not packed.reused:
            self._inputs.put(slot)
            if packed.name is not None:
                self._inputs.fit(sum(packed.sizes))
        return packed, packed.name if packed.reused else None

    def _drop(
        self, slots: shm.Slots | None, slot: tuple[str, int] | None, in_slot: str | None
    ) -> None:
        if slots is not None:
            slots.drop(slot)
        if self._inputs is not None and in_slot is not None:
            self._inputs.drop((in_slot, 0))

    def _ship(self, work: Work) -> tuple[Work, str, bytes]:
        shipped = self._shipped.get(id(work))
        if shipped is None:
            key = f"{os.getpid()}-{id(self)}-{len(self._shipped)}"
            shipped = self._shipped[id(work)] = (work, key, cloudpickle.dumps(work))
        return shipped

    async def _accept(self, listener: trio.socket.SocketType) -> None:
        """Hand each worker's connection to its lane."""
        async with trio.open_nursery() as nursery:
            while True:
                sock, _ = await listener.accept()
                nursery.start_soon(self._greet, trio.SocketStream(sock))

    async def _greet(self, stream: trio.SocketStream) -> None:
        """A worker sends this executor's token, its lane and its pid; anything else is closed."""
        size = len(self._token) + 2 * wire.HEADER.size
        hello = b""
        try:
            with trio.move_on_after(GREETING_SECONDS):
                try:
                    hello = await wire.receive_exactly(stream, size)
                except (EOFError, trio.BrokenResourceError):
                    pass
        finally:
            lane = self._lane_of(hello) if len(hello) == size else None
            if lane is not None:
                lane.connections.send_nowait(stream)
            else:  # a stranger, or the run is ending
                stream.socket.close()

    def _lane_of(self, hello: bytes) -> _Lane | None:
        """The lane a whole greeting names, with its worker's pid noted; ``None`` if not ours."""
        token, rest = hello[: len(self._token)], hello[len(self._token) :]
        (index,), (pid,) = (wire.HEADER.unpack_from(rest, k * wire.HEADER.size) for k in (0, 1))
        if not hmac.compare_digest(token, self._token) or index >= len(self._lanes):
            return None
        lane: _Lane = self._lanes[index]
        lane.pid = pid
        return lane

    async def _lane(self, lane: _Lane, address: str | bytes, calls: trio.CapacityLimiter) -> None:
        """Keep a worker serving this lane: a new one when the last retired or died.

        A worker that dies as it starts breaks the executor (the next would
        too: a script without a ``__main__`` guard, a failing import).
        """
        with lane.scope:
            while True:
                try:
                    more = await self._serve(lane, address, calls)
                except trio_parallel.BrokenWorkerError as exc:
                    if not lane.connected:
                        self._break(lane, exc)
                        return
                    self._lost(lane, exc)
                    more = True
                if not more or self._closing:
                    return

    async def _serve(self, lane: _Lane, address: str | bytes, calls: trio.CapacityLimiter) -> bool:
        """One worker's time in the lane; whether the lane goes on with another."""
        shipments = [(key, pickled) for _, key, pickled in self._shipped.values()]
        lane.retiring = False
        lane.connected = False
        lane.idle = trio.Event()
        lane.room = trio.Semaphore(DEPTH)
        more = True
        with trio.CancelScope() as lane.worker:
            more = await self._talk(lane, address, calls, shipments)
        if lane.worker.cancelled_caught:
            # Killed (a job ran past its timeout): the jobs waiting behind
            # it go back to the queue, for the next worker.
            self._requeue(lane)
        return more

    def _lost(self, lane: _Lane, exc: BaseException) -> None:
        """A worker died: the job it ran fails; those waiting for it go to the next."""
        if lane.in_flight:
            job = lane.in_flight.popleft()
            job.fail(_died(exc, job.work, job.count, job.base, running=True))
        self._requeue(lane)

    def _requeue(self, lane: _Lane) -> None:
        """Put the jobs of a lane whose worker is gone back in the queue."""
        for job in lane.in_flight:
            if not job.abandoned:
                job.lane = None
                try:
                    self._queue_send.send_nowait(job)
                except trio.ClosedResourceError:  # the run is ending
                    job.fail(trio.ClosedResourceError("the pipeline stopped"))
        lane.in_flight.clear()
        lane.release_tokens()
        while True:  # a connection of the gone worker, not taken yet
            try:
                lane.incoming.receive_nowait().socket.close()
            except trio.WouldBlock:
                break

    async def _talk(
        self,
        lane: _Lane,
        address: str | bytes,
        calls: trio.CapacityLimiter,
        shipments: list[tuple[str, bytes]],
    ) -> bool:
        """Start a worker for the lane and feed it; whether the lane goes on after."""
        known = {key for key, _ in shipments}
        more = False
        async with open_nursery() as nursery:

            async def call() -> None:
                hello = self._token + wire.HEADER.pack(lane.index)
                await self._context.run_sync(
                    serve, address, hello, shipments, kill_on_cancel=True, limiter=calls
                )

            nursery.start_soon(call)
            lane.started += 1
            stream = await lane.incoming.receive()
            lane.connected = True
            try:
                async with open_nursery() as talk:
                    talk.start_soon(self._receive, lane, stream)
                    more = await self._send(lane, stream, known)
                    if lane.in_flight:
                        await lane.idle.wait()
                    await stream.send_eof()  # the worker's call returns
            finally:
                stream.socket.close()
        return more

    async def _send(self, lane: _Lane, stream: trio.SocketStream, known: set[str]) -> bool:
        """Send jobs as the lane has room; whether there may be more after this worker."""
        while not lane.retiring:
            await lane.room.acquire()
            job = lane.carry
            lane.carry = None
            if job is None:
                try:
                    job = await self._queue.receive()
                except trio.EndOfChannel:
                    lane.room.release()
                    return False
            if job.abandoned:
                lane.room.release()
                continue
            if lane.retiring:
                lane.carry = job
                lane.room.release()
                break
            for limiter in job.limiters:
                if not lane.held.get(limiter):
                    await limiter.acquire_on_behalf_of(lane)
                lane.held[limiter] = lane.held.get(limiter, 0) + 1
            pickled = None
            if job.key not in known:
                pickled = self._shipped[id(job.work)][2]
                known.add(job.key)
            message = cloudpickle.dumps(
                (job.key, pickled, job.items, job.base, self.shm_prefix, job.slot)
            )
            lane.idle = trio.Event()
            job.lane = lane
            lane.in_flight.append(job)
            if len(lane.in_flight) == 1:
                job.started.set()
            try:
                await wire.send_async(stream, message)
            except trio.BrokenResourceError:
                # The worker is gone: its call is about to say how.
                await trio.sleep_forever()
        return True

    async def _receive(self, lane: _Lane, stream: trio.SocketStream) -> None:
        try:
            await self._receive_replies(lane, stream)
        except (trio.BrokenResourceError, EOFError):
            pass  # the worker is gone: its call says how

    async def _receive_replies(self, lane: _Lane, stream: trio.SocketStream) -> None:
        reader = wire.Reader(stream)
        while (message := await reader.receive()) is not None:
            job = lane.in_flight.popleft()
            if lane.in_flight:
                lane.in_flight[0].started.set()
            for limiter in job.limiters:
                lane.held[limiter] -= 1
                if not lane.held[limiter]:
                    limiter.release_on_behalf_of(lane)
            lane.room.release()
            try:
                ok, value, retiring, released = cloudpickle.loads(message)
            except Exception as exc:  # noqa: BLE001 - e.g. an error type the main process lacks
                ok, value, retiring, released = False, exc, False, []
            if released and self._inputs is not None:
                self._inputs.release_all(released)
            lane.retiring = lane.retiring or retiring
            if ok:
                lane.jobs += 1
                lane.items += job.count
                lane.busy += value[1]  # seconds the worker spent on it
            if job.abandoned:
                _discard(value)
            else:
                job.reply = (ok, value)
                job.done.set()
            if not lane.in_flight:
                lane.idle.set()

    def _break(self, lane: _Lane, exc: BaseException) -> None:
        """A worker died: the job it ran, the jobs waiting for it, and every job after, fail."""
        self._broken = exc
        jobs = list(lane.in_flight)
        lane.in_flight.clear()
        if lane.carry is not None:
            jobs.append(lane.carry)
        while True:
            try:
                jobs.append(self._queue.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        for k, job in enumerate(jobs):
            job.fail(
                _died(exc, job.work, job.count, job.base, running=k == 0, started=lane.connected)
            )
        lane.release_tokens()


def _died(
    cause: BaseException,
    work: Work,
    count: int,
    base: int,
    *,
    running: bool,
    started: bool = True,
) -> WorkerDiedError:
    """The error for a job whose worker died running it, or another job before it."""
    process = cause.args[1] if len(cause.args) > 1 else None
    pid = getattr(process, "pid", None)
    exitcode = getattr(process, "exitcode", None)
    where = f"item {base}" if count == 1 else f"items {base} to {base + count - 1}"
    where += " of its input"
    worker = "a worker process" if pid is None else f"worker process {pid}"
    how = _how(exitcode)
    if not started:
        what = f"{worker} {how} as it started"
        hint = (
            'If your script has no `if __name__ == "__main__":` guard, that is probably '
            "the cause: workers import the script, and without the guard it starts the "
            "pipeline again. Otherwise, an import of the script failed in the worker"
        )
    else:
        what = f"{worker} {how}"
        hint = "" if exitcode is None else _HINTS.get(min(exitcode, 0), "")
    if running:
        during = "before it could run" if not started else "while running"
        message = f"in stage {work.label}, {what} {during} {where}"
    else:
        message = f"in stage {work.label}, {where} were not run: {what}"
    error = WorkerDiedError(f"{message}. {hint}".rstrip(". ") + ".", pid, exitcode)
    error.__cause__ = cause
    return error


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "died"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"


#: What a worker's death most often means, by minus its signal (0: it exited).
_HINTS = {
    -signal.SIGKILL: "SIGKILL is what the kernel's out-of-memory killer sends: the machine "
    "(or container) probably ran out of memory; use fewer workers or smaller items",
    -signal.SIGBUS: "SIGBUS in a worker usually means shared memory (/dev/shm) ran full; free "
    "some, or give the machine or container more (docker: --shm-size)",
    -signal.SIGSEGV: "a crash in native code (a C extension); the worker's C-level traceback "
    "is on stderr",
    -signal.SIGABRT: "native code aborted; the worker's C-level traceback is on stderr",
    0: "Something in the job called os._exit(), or native code exited the process",
}


def _discard(value: Any) -> None:
    """Drop an abandoned job's results: its own shared-memory segment goes too."""
    if isinstance(value, tuple) and value and isinstance(value[0], shm.Packed):
        packed = value[0]
        if packed.name is not None and not packed.reused:
            shm.unpack(packed)
