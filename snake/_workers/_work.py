"""What a ``par_map`` job does to its items, in a worker thread or process.

The map's function runs first, then the inline operators that moved into
the workers after it (``_plan.into_workers``), as the very steps they run
inline: one ``FusedSteps`` per job, each step made with the position of the
job's first item, so an error note names the item exactly, as it would
inline.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import add_stage_note
from .._info import current
from .._retry import retrying
from .._stages._base import InWorkers, Moved, Step
from .._stages._inline import FusedSteps, ItemStep, Map
from .._weight import nbytes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .._info import Epoch

#: Items a job skipped (``errors="skip"``), as ``(position, exception)``.
Skipped = list[tuple[int, Exception]]


@attrs.frozen
class ChunkResult:
    """What running a chunk of items gives its stage: the results, the seconds
    it took where it ran, the bytes of large buffers in its results (for a
    process, those its items and results moved through shared memory), and
    the items it skipped."""

    results: list[Any]
    seconds: float
    nbytes: int
    skipped: Skipped


@attrs.frozen
class Work:
    """A map's function, and the inline operators that run after it in its workers.

    Only operators whose step keeps positions, and then one last one, move
    into the workers, so every step sees items at the positions they had in
    the stage's input.
    """

    #: The map's stage, as notes name it.
    label: str
    fn: Callable[[Any], Any]
    after: tuple[Moved, ...] = ()
    #: errors="skip": items the map's function fails on are dropped.
    skip: bool = False
    #: Tries of the map's function after the first.
    retries: int = 0
    #: The epoch of the run it is made in, told to the code it runs.
    run: Epoch | None = attrs.Factory(current)

    @property
    def one_to_one(self) -> bool:
        """Whether result ``k`` of a job comes from its item ``k``."""
        keeps = InWorkers.KEEPS_POSITIONS
        return not self.skip and all(m.spec.in_workers is keeps for m in self.after)


def apply_chunk(
    work: Work, items: list[Any], base: int, abandoned: list[bool] | None = None
) -> ChunkResult:
    """``work`` over ``items``, how long it took, and the items it skipped.

    ``base`` is the position of ``items[0]`` in the stage's input. An
    exception gets its stage note here, where the failing item is known,
    so it crosses the process boundary already annotated. In a thread, once
    ``abandoned[0]`` is set (its stage stopped waiting for it), the job
    makes no more calls.
    """
    began = time.perf_counter()
    fn = work.fn if abandoned is None else _unless(abandoned, work.fn)
    fn = retrying(fn, work.retries) if work.retries else fn
    skipping = _SkippingStep(work.label, base, fn) if work.skip else None
    first = Map(fn).step(work.label, base) if skipping is None else skipping
    steps: list[Step] = [first, *(m.spec.step(m.label, base) for m in work.after)]
    fused = FusedSteps(steps)
    results = fused.process(items)
    rest = fused.finish()  # a short last batch
    if rest:
        results += rest
    skipped = [] if skipping is None else skipping.skipped
    held = nbytes(results[0]) * len(results) if results else 0
    return ChunkResult(results, time.perf_counter() - began, held, skipped)


class Abandoned(BaseException):
    """The job's stage stopped waiting for it: its thread makes no more calls.

    Not an ``Exception``: no step skips it, and nobody reads it.
    """


def _unless(abandoned: list[bool], fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call(x: Any) -> Any:
        if abandoned[0]:  # a list item: the cheapest flag to read
            raise Abandoned
        return fn(x)

    return call


@attrs.define(eq=False)
class _SkippingStep(ItemStep):
    """A map's function that drops the items it raises on, keeping them in ``skipped``."""

    fn: Callable[[Any], Any]
    skipped: Skipped = attrs.Factory(list)

    def _apply(self, it: Iterator[Any]) -> list[Any]:
        out: list[Any] = []
        append, fn = out.append, self.fn
        skipped_before = len(self.skipped)
        while True:
            try:
                for x in it:
                    append(fn(x))
                return out
            except Exception as exc:
                # The items before it each gave a result or were skipped.
                position = self.seen + len(out) + len(self.skipped) - skipped_before
                add_stage_note(exc, self.label, position)
                self.skipped.append((position, exc))
