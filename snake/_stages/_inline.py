"""Inline operators: cheap synchronous steps fused into the stage before them.

``map``, ``filter`` and ``flat_map`` here, and the positional and batching
steps of ``_positional`` and ``_batch``, never get a task or a channel of
their own: the stage before them runs them on each chunk it emits
(``_chunking.Outbox``), one after another (:class:`FusedSteps`). Maps, and
a filter after them, may run in a ``par_map``'s workers instead, right after
its function (the same steps, a job at a time).
Ordering: input order, always. Buffering: none, except ``batch``'s one
partial batch. On cancel or error, whatever a step holds is dropped.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import failed_at, item_error
from .._validate import func_name
from ._base import InlineSpec, InWorkers, Step
from ._length import Unknown

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


@attrs.define(eq=False)
class ItemStep:
    """A step that may fail on an item: it counts positions, for error notes."""

    label: str
    #: The position of the next item in the input of the stage it belongs
    #: to (starting at a job's first item's, in a worker).
    seen: int
    done = False
    ends = False

    def process(self, items: list[Any]) -> list[Any]:
        it = iter(items)
        try:
            out = self._apply(it)
        except BaseException as exc:
            error = item_error(exc, self.label, self.seen + failed_at(items, it))
            if error is exc:
                raise
            raise error from exc
        self.seen += len(items)
        return out

    def _apply(self, it: Iterator[Any]) -> list[Any]:
        raise NotImplementedError

    def finish(self) -> list[Any]:
        return []


@attrs.define(eq=False)
class _FnStep(ItemStep):
    """A step that calls a user function on each item."""

    fn: Callable[..., Any]


@attrs.define(eq=False)
class _MapStep(_FnStep):
    def _apply(self, it: Iterator[Any]) -> list[Any]:
        return list(map(self.fn, it))


@attrs.define(eq=False)
class _FilterStep(_FnStep):
    def _apply(self, it: Iterator[Any]) -> list[Any]:
        pred = self.fn
        return [x for x in it if pred(x)]


@attrs.define(eq=False)
class _FlatMapStep(_FnStep):
    def _apply(self, it: Iterator[Any]) -> list[Any]:
        return list(itertools.chain.from_iterable(map(self.fn, it)))


@attrs.frozen
class Map(InlineSpec):
    fn: Callable[[Any], Any]

    in_workers = InWorkers.KEEPS_POSITIONS

    def describe(self) -> str:
        return f"map({func_name(self.fn)})"

    def step(self, label: str, position: int = 0) -> Step:
        return _MapStep(label, position, self.fn)

    def length(self, n: int) -> int:
        return n


@attrs.frozen
class Filter(InlineSpec):
    fn: Callable[[Any], Any]

    in_workers = InWorkers.LAST

    def describe(self) -> str:
        return f"filter({func_name(self.fn)})"

    def step(self, label: str, position: int = 0) -> Step:
        return _FilterStep(label, position, self.fn)

    def length(self, n: int) -> int:
        raise Unknown("may drop items")


@attrs.frozen
class FlatMap(InlineSpec):
    fn: Callable[[Any], Iterable[Any]]

    def describe(self) -> str:
        return f"flat_map({func_name(self.fn)})"

    def step(self, label: str, position: int = 0) -> Step:
        return _FlatMapStep(label, position, self.fn)

    def length(self, n: int) -> int:
        raise Unknown("yields as many items as fn returns for each")


class FusedSteps:
    """Consecutive inline steps applied one after another to each chunk.

    Once a step is done (a ``take`` has its items), the steps before it are
    cut off and only the ones after it are finished at the end.
    """

    __slots__ = ("_cut", "_steps", "done", "ends")

    def __init__(self, steps: list[Step]) -> None:
        self._steps = steps
        self.ends = any(step.ends for step in steps)
        self._cut = next((i for i, s in enumerate(steps) if s.done), -1)
        self.done = self._cut >= 0

    def process(self, items: list[Any]) -> list[Any]:
        for i, step in enumerate(self._steps):
            items = step.process(items)
            if step.done and not self.done:
                self.done, self._cut = True, i
            if not items:
                break
        return items

    def finish(self) -> list[Any]:
        out: list[Any] = []
        for step in self._steps[self._cut + 1 :]:
            if out:
                out = step.process(out)
            out += step.finish()
        return out
