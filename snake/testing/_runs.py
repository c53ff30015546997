"""Running a pipeline as a test does: in this process, one call at a time or with
chosen waits, on trio's autojump clock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio
import trio.testing

from .._pipeline import Pipeline
from .._stages._rehearsal import Rehearsal

if TYPE_CHECKING:
    from collections.abc import Sequence

T = TypeVar("T")


def _waits(waits: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(map(float, per)) for per in waits)


@attrs.frozen
class Delays:
    """The seconds a test waits before each call of a user function.

    Operators that call user functions (``then``, ``par_then``, ``par_map``)
    are numbered in pipeline order from 0, nested pipelines' included, and
    so are each one's calls: call ``k`` of operator ``s`` waits
    ``waits[s % len(waits)][k % len(waits[s % len(waits)])]``. On trio's
    autojump clock a wait costs no real time, only the order it imposes.
    ``snake.testing.delays()`` draws them for hypothesis.

    Example:
        >>> snake.testing.Delays(((0.0, 1.0), (0.5,)))(0, 3)
        1.0
    """

    waits: tuple[tuple[float, ...], ...] = attrs.field(default=((0.0,),), converter=_waits)

    @waits.validator
    def _check(self, attribute: attrs.Attribute[Any], value: Sequence[Sequence[float]]) -> None:
        if not value or not all(value) or any(w < 0 for s in value for w in s):
            raise ValueError(
                f"Delays needs one non-empty sequence of waits >= 0 per operator, got {value!r}"
            )

    def __call__(self, stage: int, call: int) -> float:
        waits = self.waits[stage % len(self.waits)]
        return waits[call % len(waits)]


def in_process(
    pipeline: Pipeline[T], delays: Delays | None = None, *, sequential: bool = False
) -> Pipeline[T]:
    """``pipeline`` with every call of a user function made in this process.

    ``then``, ``par_then`` and ``par_map`` (with any executor) await each
    call in the pipeline's own trio run, after the wait ``delays`` gives it
    (which counts towards a ``timeout=``, as a slow call's time would);
    a ``par_map`` keeps its ``concurrency`` (4 where it has none) and its
    order, errors, retries and skipping, but starts no worker process or
    thread (``WorkerOptions.init`` is not called, and ``snake.worker_info()``
    is ``None`` in its calls). With ``sequential``, every such operator
    calls one item at a time, in input order, an unordered ``interleave``
    keeps its order and a ``merge`` gives its pipelines one after the other:
    what a plain loop gives. Labels and notes stay the original's, and the
    copy has the same run seed, so its unseeded shuffles draw alike. Run it
    inside a trio test on ``trio.testing.MockClock(autojump_threshold=0)``.
    """
    rehearsal = Rehearsal(sequential, delays)
    return Pipeline(rehearsal.specs(pipeline._specs), pipeline._runs.shared())


def run(pipeline: Pipeline[T], delays: Delays | None = None, *, epoch: int = 0) -> list[T]:
    """The items of ``in_process(pipeline, delays)``, run to the end in a trio run of
    its own on the autojump clock: thousands of runs take seconds.

    Run under hypothesis (which makes trio's scheduling deterministic), the
    same ``delays`` give the same run, so a failing example shrinks and
    reproduces. Raises what the pipeline raises.

    Example:
        >>> async def slow(x):
        ...     await trio.sleep(x)
        ...     return x
        >>> pipeline = snake.from_iterable([3, 1, 2]).par_then(slow, ordered=False)
        >>> snake.testing.run(pipeline)  # in 3 seconds of the autojump clock
        [1, 2, 3]
    """
    return _collected(in_process(pipeline, delays), epoch)


def sequential(pipeline: Pipeline[T], *, epoch: int = 0) -> list[T]:
    """The items a plain one-at-a-time loop gives for ``pipeline``: the reference.

    Every parallel stage calls one item at a time, in input order, in this
    thread, with no workers (``in_process(pipeline, sequential=True)``), on
    the autojump clock. An ordered pipeline's real runs must give exactly
    these items, and an unordered one's the same items in some order; an
    error it raises is the one a real ordered run must raise
    (``assert_same_error``). ``epoch`` as for ``Pipeline.open``.

    Example:
        >>> pipeline = snake.from_iterable(range(5)).par_map(abs, concurrency=3)
        >>> snake.testing.sequential(pipeline.map(str))
        ['0', '1', '2', '3', '4']
    """
    return _collected(in_process(pipeline, sequential=True), epoch)


def _collected(pipeline: Pipeline[T], epoch: int) -> list[T]:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:  # not in a trio run: start one
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(lambda: pipeline.collect(epoch=epoch), clock=clock)
    raise RuntimeError(
        "snake.testing.run() and sequential() start a trio run of their own, and this "
        "code runs in one already: in an async test, await "
        "snake.testing.in_process(pipeline, delays).collect() instead, on "
        "trio.testing.MockClock(autojump_threshold=0)"
    )
