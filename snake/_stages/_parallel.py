"""``par_then`` and ``par_map``: many items in flight at once.

Both run the same stage. A feeder task cuts the input into jobs (one item for
``par_then``; a few, sized from measured cost, for ``par_map``) and starts
each job as a task once a slot is free; the stage's own task collects the
results. Ordering: with ``ordered=True`` results leave in input order, and a
slot is freed only when its job's results leave, so at most ``concurrency``
calls (``par_then``) or three times that many jobs (``par_map``, of which
``concurrency`` run at once) are in flight or waiting for an earlier one;
with ``ordered=False`` they leave as they complete. On cancel or error,
in-flight calls are cancelled, worker processes killed, threads abandoned.
A stage's own error arrives as a sequential loop would raise it: with
``ordered=True`` it takes its place in the output: no new work starts, the
earlier items finish and their results leave as usual, and then the earliest
failing item's error stops the stage; with ``ordered=False``, of the calls that fail
before the cancellation reaches them, the earliest item's error arrives.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from .. import _validate as check
from .._chunking import Pacer
from .._errors import add_stage_note, carried
from .._exceptions import ItemTimeoutError
from .._policy import ErrorPolicy, retrying_async
from .._retry import retry_delay, tried
from .._validate import func_name
from .._weight import CHUNK_BYTES, nbytes
from .._workers._deaths import WorkerDiedError
from .._workers._options import MapOptions, WorkerOptions
from .._workers._work import ChunkResult, Work
from ._base import Context, OnePerItem, Stage, StageSpec
from ._delivered import MaybeUnordered, positions
from ._inflight import ParallelStage
from ._tuner import PAR_THEN_MOST, PAR_THEN_START, THREADS_MOST, tuned

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._workers._executors import Executor
    from ._base import Spec
    from ._rehearsal import Rehearsal

#: Seconds of work a ``par_map`` job aims for. Each job costs the main process
#: a round trip and a fraction of a millisecond of CPU taken from the workers;
#: measured on 1 ms items and 2 workers, 5 ms jobs kept the workers 82 % busy,
#: 20 ms jobs 93 %. Items arriving one at a time still go out one at a time.
JOB_SECONDS = 0.02
#: Most items in one ``par_map`` job.
JOB_ITEMS = 64
#: Jobs in flight per job running at once: the running one, the next one
#: waiting in its worker (see ``_workers._lane``), and one done early, waiting to
#: leave after an earlier one.
JOB_WINDOW = 3
#: A job on Ray aims for more seconds, and may hold more items: each costs
#: about a millisecond of scheduling, against a fraction of one for a
#: process lane.
RAY_JOB_SECONDS = 0.05
RAY_JOB_ITEMS = 256

#: Bytes of large buffers (arrays, say) in one ``par_map`` job's results at
#: most, past its first item: a chunk's worth, so items of a MiB or more go
#: one per job, and what a stage holds is bounded in items as in bytes.
#: Measured with 4 MiB arrays and 2 workers, jobs of one array moved
#: 6,500 MB/s, of two 3,700 MB/s, of four 3,500 MB/s.
JOB_BYTES = CHUNK_BYTES

#: Calls of a ``par_then`` in flight or waiting to leave at most while its
#: results are large (a MiB of buffers or more each), the one waiting in its
#: channel to be taken included: a pipeline of it runs that many such items
#: ahead of its consumer (one more when iterated synchronously).
LARGE_CALLS = 6


def _skipped_or_raise(exc: Exception, label: str, base: int, skips: bool) -> ChunkResult:
    """A failed one-item job: ``exc`` with its stage note, raised, or its item skipped.

    A skipped item counts against the stage's failure budget when its place
    in the output comes (see ``ParallelStage._release``).
    """
    add_stage_note(exc, label, base)
    if not skips:
        raise carried(exc)
    return ChunkResult([], 0.0, 0, [(base, exc)])


@attrs.frozen
class ParThen(MaybeUnordered, OnePerItem, StageSpec):
    fn: Callable[[Any], Awaitable[Any]]
    concurrency: int | Literal["auto"]
    ordered: bool
    policy: ErrorPolicy = ErrorPolicy()
    #: The operator it stands in for in a test (see ``_rehearsal``): it
    #: describes itself, and shapes its states, as that one.
    original: Spec | None = attrs.field(default=None, kw_only=True)

    fixed_advice = "raise its `concurrency`, or make its function faster"

    def named(self) -> str:
        return f"par_then({func_name(self.fn)})"

    def describe(self) -> str:
        return super().describe() if self.original is None else self.original.describe()

    def shape(self) -> str:
        return super().shape() if self.original is None else self.original.shape()

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        return rehearsal.calls(
            self, self.fn, self.policy, concurrency=self.concurrency, ordered=self.ordered
        )

    def build(self, context: Context) -> Stage:
        label = context.label
        skips = self.policy.skips
        attempt = retrying_async(self.fn, self.policy.retries, self.policy.timeout)

        async def call(items: list[Any], base: int) -> ChunkResult:
            try:
                result = await attempt(items[0])
                return ChunkResult([result], 0.0, nbytes(result), [])
            except check.NotAwaitable as exc:  # a bug, never skipped
                add_stage_note(exc, label, base)
                raise
            except Exception as exc:
                return _skipped_or_raise(exc, label, base, skips)

        failures = self.policy.failures(label, context.saved[0] if context.saved else None)
        auto = self.concurrency == "auto"
        tuner = tuned(context, PAR_THEN_START, PAR_THEN_MOST) if auto else None
        concurrency = self.concurrency if tuner is None else tuner.value
        assert isinstance(concurrency, int)
        return ParallelStage(
            call, concurrency, positions(context, self.ordered, failures),
            Pacer(maximum=1), failures=failures, large=LARGE_CALLS, tuner=tuner,
            auto=context.auto,
        )  # fmt: skip


@attrs.frozen
class ParMap(MaybeUnordered, OnePerItem, StageSpec):
    fn: Callable[[Any], Any]
    concurrency: int | Literal["auto"] | None
    ordered: bool
    executor: Literal["process", "thread", "ray"]
    options: MapOptions = WorkerOptions()
    policy: ErrorPolicy = ErrorPolicy()

    fixed_advice = "make its function faster, or raise its `concurrency` if CPUs sit idle"

    def named(self) -> str:
        return f"par_map({func_name(self.fn)})"

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        return rehearsal.calls(
            self, self.fn, self.policy, awaits=False, concurrency=self.concurrency,
            ordered=self.ordered,
        )  # fmt: skip

    def workers(self) -> Literal["process", "thread", "ray"] | None:
        # With errors="skip", steps after the map would see items at other
        # positions than the stage's input gave them: they stay here.
        return None if self.policy.skips else self.executor

    def processes(self) -> list[tuple[MapOptions, int | None]]:
        if self.executor == "thread":
            return []
        fixed = self.concurrency if isinstance(self.concurrency, int) else None
        return [(self.options, fixed)]

    def build(self, context: Context) -> Stage:
        label = context.label
        executor: Executor = context.executors.get(self.executor, self.options)
        retries = self.policy.retries
        work = Work(label, self.fn, context.in_workers, self.policy.skips, retries)
        executor.prepare(work)
        skips = self.policy.skips
        timeout = self.policy.timeout

        # Without a concurrency of its own, a stage runs one job per CPU at
        # once (on Ray, per CPU of the cluster); the executor's limiter
        # bounds all stages sharing it.
        fixed = self.concurrency if isinstance(self.concurrency, int) else None
        concurrency = fixed or executor.concurrency()
        tuner = None
        if self.concurrency == "auto":  # up from one job per CPU; processes stay within
            most = THREADS_MOST if self.executor == "thread" else concurrency
            tuner = tuned(context, concurrency, max(most, concurrency))
            concurrency = tuner.value
        running = trio.CapacityLimiter(concurrency)

        async def call(items: list[Any], base: int) -> ChunkResult:
            attempt = 0
            while True:
                # The function's own errors are retried in the worker; here,
                # a worker's death or a timeout (on a fresh worker).
                try:
                    return await executor.run_chunk(work, items, base, running, timeout)
                except (ItemTimeoutError, WorkerDiedError) as failure:
                    if attempt < retries:
                        await trio.sleep(retry_delay(attempt))
                        attempt += 1
                        continue
                    tried(failure, retries)
                    if isinstance(failure, WorkerDiedError):
                        raise
                    return _skipped_or_raise(failure, label, base, skips)

        # More jobs than run at once may be in flight, so that a worker has
        # its next job at hand, and one done early starts another while an
        # earlier, slower one is still holding up the ordered output.
        window = JOB_WINDOW * concurrency
        # A timeout is per item: jobs of one item each.
        ray = self.executor == "ray"
        most = 1 if timeout is not None else RAY_JOB_ITEMS if ray else JOB_ITEMS
        sizer = Pacer(RAY_JOB_SECONDS if ray else JOB_SECONDS, most, JOB_BYTES)
        # Jobs hold whole batches of a batch that runs in the workers.
        unit = math.lcm(*(moved.spec.unit for moved in context.in_workers))
        failures = self.policy.failures(label, context.saved[0] if context.saved else None)
        # Large results: the jobs running, and one more, waiting in the
        # channel to be taken while the workers go on. No more than those run
        # at once: the stage starts there, until its results are weighed.
        large = concurrency + 1
        where = positions(context, self.ordered, failures)
        return ParallelStage(
            call, window, where, sizer, unit, failures, large, start_large=True, tuner=tuner,
            per=JOB_WINDOW, on_tuned=lambda value: setattr(running, "total_tokens", value),
            auto=context.auto,
        )  # fmt: skip
