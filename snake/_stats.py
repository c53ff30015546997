"""Per-stage statistics of a running pipeline, and which stage the others wait on.

Every stage measures as it goes, per chunk and never per item, so the
figures cost nothing measurable: the items it took in and passed on, and
the time it spent waiting for input (upstream is slower) and for room
downstream (downstream is slower). The rest of its time it was busy: with
its own work, its calls in flight, or its workers. The stage with the
largest busy share is the bottleneck: the stages before it wait for room,
those after it wait for input.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._stages._tuner import TuningStatistics

#: Latency samples a stage keeps (the most recent ones) for its percentiles.
SAMPLES = 2048


@attrs.define(eq=False)
class StageClock:
    """What one run of a stage has measured so far (mutable, owned by its task)."""

    #: trio's clock: virtual under a test's MockClock.
    began: float = attrs.Factory(trio.current_time)
    ended: float | None = None
    waiting_for_input: float = 0.0
    waiting_for_output: float = 0.0
    #: Seconds per item of recent calls (a parallel stage: per job's item).
    latencies: collections.deque[float] = attrs.Factory(lambda: collections.deque(maxlen=SAMPLES))
    #: A parallel stage's calls or jobs in flight now, and its most.
    in_flight: Callable[[], int] | None = None
    concurrency: int | None = None
    #: What its tuner chose, for an ``"auto"`` setting.
    tuning: Callable[[], TuningStatistics] | None = None

    def end(self) -> None:
        if self.ended is None:
            self.ended = trio.current_time()


@attrs.frozen
class StageStatistics:
    """One stage's figures, as of the moment they were taken.

    ``label`` names it as error notes do (``#2 par_map(decode)``), with the
    inline operators fused into it in ``fused``. Times are in seconds.
    """

    label: str
    fused: tuple[str, ...]
    items_in: int
    items_out: int
    skipped: int
    seconds: float
    waiting_for_input: float
    waiting_for_output: float
    #: Seconds per item at the 50th, 90th and 99th percentile of recent
    #: calls; ``None`` before any.
    latency: tuple[float, float, float] | None = None
    #: Calls or jobs in flight now, against the most the stage allows.
    in_flight: int | None = None
    concurrency: int | None = None
    #: Chunks waiting in its output channel for the next stage.
    buffered: int = 0
    #: What to try if this stage is the bottleneck, from its operator.
    advice: str = ""
    #: With an ``"auto"`` setting (``concurrency="auto"``,
    #: ``prefetch("auto")``): what its tuner chose, and why.
    tuning: TuningStatistics | None = None

    @property
    def busy(self) -> float:
        """Seconds neither waiting for input nor for room downstream."""
        return max(0.0, self.seconds - self.waiting_for_input - self.waiting_for_output)


@attrs.frozen
class WorkerStatistics:
    """What the worker processes of one lane did: one worker at a time, replaced
    when it retires, dies or runs past a timeout (``started`` counts them).

    ``pid`` is the current (or last) worker's; ``busy`` the seconds its
    workers spent on jobs, as they measured them.
    """

    lane: int
    pid: int | None
    started: int
    jobs: int
    items: int
    busy: float


@attrs.frozen
class Statistics:
    """A pipeline's figures per stage, in order, and the time since it opened.

    ``workers`` has a line per worker-process lane of its process maps.
    """

    elapsed: float
    stages: tuple[StageStatistics, ...]
    workers: tuple[WorkerStatistics, ...] = ()

    def share(self, seconds: float) -> float:
        """``seconds`` as a share of the time since the pipeline opened."""
        return seconds / self.elapsed if self.elapsed > 0 else 0.0

    def bottleneck(self) -> StageStatistics | None:
        """The stage the others wait on: busy for the largest share of the run."""
        if not self.stages:
            return None
        return max(self.stages, key=lambda s: s.busy)

    def verdict(self) -> str:
        """One line: which stage the pipeline waits on, why it says so, what to try."""
        last = self.stages[-1] if self.stages else None
        slowest = self.bottleneck()
        if last is None or slowest is None:
            return "no stages"
        share = self.share
        if last.waiting_for_output > slowest.busy:
            return (
                f"the consumer (your loop): {last.label} waits for it "
                f"{share(last.waiting_for_output):.0%} of the time"
            )
        reason = f"{slowest.label}: busy {share(slowest.busy):.0%}"
        at = self.stages.index(slowest)
        blocked = self.stages[at - 1].waiting_for_output if at > 0 else 0.0
        if share(blocked) >= 0.01:
            reason += f", upstream blocked on it {share(blocked):.0%} of the time"
        return f"{reason}; {slowest.advice}"

    def table(self) -> str:
        """The figures as a text table, with the verdict under it."""
        rows = [
            ("stage", "in", "out", "skipped", "busy", "wait in", "wait out", "p50", "p99",
             "in flight"),
        ]  # fmt: skip
        for s in self.stages:
            name = s.label + (" + " + ", ".join(s.fused) if s.fused else "")
            rows.append((
                name, f"{s.items_in:,}", f"{s.items_out:,}", f"{s.skipped:,}",
                f"{self.share(s.busy):.0%}", f"{self.share(s.waiting_for_input):.0%}",
                f"{self.share(s.waiting_for_output):.0%}",
                "-" if s.latency is None else _duration(s.latency[0]),
                "-" if s.latency is None else _duration(s.latency[2]),
                "-" if s.concurrency is None else f"{s.in_flight or 0}/{s.concurrency}",
            ))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.extend(f"{s.label}: {s.tuning.line()}" for s in self.stages if s.tuning)
        lines.extend(
            f"worker lane {w.lane} (pid {w.pid}, {w.started} started): {w.jobs:,} jobs, "
            f"{w.items:,} items, busy {self.share(w.busy):.0%}"
            for w in self.workers
        )
        lines.append(f"elapsed {self.elapsed:.3f} s; bottleneck: {self.verdict()}")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} us"


def percentiles(samples: Sequence[float]) -> tuple[float, float, float] | None:
    """The 50th, 90th and 99th percentiles of ``samples`` (nearest rank)."""
    if not samples:
        return None
    ordered = sorted(samples)
    last = len(ordered) - 1
    p50, p90, p99 = (ordered[round(q * last)] for q in (0.5, 0.9, 0.99))
    return p50, p90, p99


@attrs.frozen
class Figures:
    """What the runner reads off one running stage, for :func:`take`."""

    label: str
    fused: tuple[str, ...]
    advice: str
    clock: StageClock
    items_in: int
    items_out: int
    skipped: int
    #: Chunks waiting in its output channel.
    buffered: int


def take(
    began: float, stages: Sequence[Figures], workers: Sequence[WorkerStatistics] = ()
) -> Statistics:
    """The statistics as of now, from each stage's figures and the workers'."""
    try:
        now = trio.current_time()
    except RuntimeError:  # after its trio.run: every stage has ended
        now = max((s.clock.ended or began for s in stages), default=began)
    return Statistics(now - began, tuple(_stage(s, now) for s in stages), tuple(workers))


def _stage(figures: Figures, now: float) -> StageStatistics:
    clock = figures.clock
    running = clock.in_flight is not None and clock.ended is None
    return StageStatistics(
        figures.label,
        figures.fused,
        figures.items_in,
        figures.items_out,
        figures.skipped,
        (clock.ended if clock.ended is not None else now) - clock.began,
        clock.waiting_for_input,
        clock.waiting_for_output,
        percentiles(clock.latencies),
        clock.in_flight() if running and clock.in_flight is not None else None,
        clock.concurrency,
        figures.buffered,
        figures.advice,
        None if clock.tuning is None else clock.tuning(),
    )
