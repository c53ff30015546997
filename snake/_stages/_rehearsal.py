"""How ``snake.testing`` runs a pipeline: every call in this process, on any clock.

A test asks each operator for itself as rehearsed (``Spec.rehearsed``).
Operators that call user functions in their own way (``then``, ``par_then``,
``par_map`` with any executor) become ``then`` or ``par_then`` stages that
await each call here, after a wait the test chose for that call; worker
processes and threads are left out, so trio's autojump clock runs a whole
pipeline in milliseconds, and the order of everything is decided by the
test's waits and trio's scheduler alone. Where the rehearsal is
``sequential``, every such stage calls one item at a time, in input order,
as a plain Python loop would. Nested pipelines are rehearsed the same way.
A rehearsed operator describes itself, and shapes its saved states, as
the original does (``original=``), so labels, notes and states stay the same.
"""

from __future__ import annotations

import functools
import itertools
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from ._parallel import ParThen
from ._then import Then

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._policy import ErrorPolicy
    from ._base import Spec

#: Calls at once of a ``par_map`` with no ``concurrency`` of its own.
CONCURRENCY = 4


@attrs.define(eq=False)
class Rehearsal:
    """What a test's run changes: ``wait(stage, call)`` seconds before call
    ``call`` of the ``stage``-th operator that calls user functions (both
    counted from 0, stages in the order they are rehearsed); with
    ``sequential``, one call at a time everywhere."""

    sequential: bool = False
    wait: Callable[[int, int], float] | None = None
    #: Operators rehearsed so far that wait before their calls.
    stages: int = 0

    def specs(self, specs: tuple[Spec, ...]) -> tuple[Spec, ...]:
        """A pipeline's operators, each rehearsed."""
        return tuple(spec.rehearsed(self) for spec in specs)

    def calls(
        self,
        spec: Spec,
        fn: Callable[[Any], Any],
        policy: ErrorPolicy,
        *,
        awaits: bool = True,
        concurrency: int | Literal["auto"] | None = 1,
        ordered: bool = True,
    ) -> Spec:
        """``spec``, which calls ``fn`` on each item (an async function if
        ``awaits``) as ``policy`` says, as a ``then`` (one call at a time) or a
        ``par_then`` (``concurrency`` at once; ``None``: ``CONCURRENCY``)."""
        call = self._waiting(fn, awaits)
        if self.sequential or (concurrency == 1 and ordered and policy.timeout is None):
            return Then(call, attrs.evolve(policy, timeout=None), original=spec)
        return ParThen(call, concurrency or CONCURRENCY, ordered, policy, original=spec)

    def opening(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``fn``, whose pipelines (``interleave``'s) are rehearsed as they are made."""

        @functools.wraps(fn)
        def opened(x: Any) -> Any:
            value = fn(x)
            specs = getattr(value, "_specs", None)
            return value if specs is None else _Rehearsed(self.specs(specs))

        return opened

    def _waiting(self, fn: Callable[[Any], Any], awaits: bool) -> Callable[[Any], Awaitable[Any]]:
        """``fn`` as an async function that waits as the test says before each call."""
        wait, stage, numbers = self.wait, self.stages, itertools.count()
        self.stages += 1

        async def call(x: Any) -> Any:
            if wait is not None:
                await trio.sleep(wait(stage, next(numbers)))
            return await fn(x) if awaits else fn(x)

        return call


@attrs.frozen
class _Rehearsed:
    """A rehearsed pipeline's operators, where an ``interleave`` takes a pipeline's."""

    _specs: tuple[Spec, ...]
