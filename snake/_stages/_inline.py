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
from .._position import (
    Marks,
    NotResumable,
    Saved,
    back,
    dropped,
    exact,
    split_after,
    tracking,
)
from .._validate import func_name
from ._base import InlineSpec, InWorkers, Step
from ._length import Unknown

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


@attrs.define(eq=False)
class ItemStep:
    """A step that may fail on an item: it counts positions, for error notes.

    One that yields an item per item (``ONE_TO_ONE``) is where its input
    is; others mark, after each unit, how many items they had yielded and
    taken, and resume from the last mark before a position, dropping the
    items they yield again.
    """

    label: str
    #: The position of the next item in its input (starting at a job's
    #: first item's, in a worker).
    seen: int
    done = False
    ends = False
    ONE_TO_ONE = False
    #: Items yielded, and the marks, where the run keeps positions; one per
    #: item where it must mark them ``exact``ly.
    out: int = attrs.field(default=0, kw_only=True)
    marks: Marks[int] | None = attrs.field(default=None, kw_only=True)
    each: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not self.ONE_TO_ONE and tracking():
            self.marks = Marks(self.out, self.seen)
            self.each = exact()

    def process(self, items: list[Any]) -> list[Any]:
        if self.each and len(items) > 1:
            return [y for x in items for y in self.process([x])]
        it = iter(items)
        try:
            out = self._apply(it)
        except BaseException as exc:
            error = item_error(exc, self.label, self.seen + failed_at(items, it))
            if error is exc:
                raise
            raise error from exc
        self.seen += len(items)
        if self.marks is not None:
            self.out += len(out)
            if out or not self.each:  # marked one by one: where each item came from
                self.marks.add(self.out, self.seen)
        return out

    def saved(self, out: int) -> Saved:
        if self.marks is None:
            return Saved(out)  # one to one
        first, at = self.marks.find(out)
        return Saved(at, out - first)

    def sources(self, positions: frozenset[int]) -> set[int]:
        if self.marks is None:
            return set(positions)
        if not self.each:
            raise NotResumable(f"{self.label} does not mark where each of its items came from")
        return {self.marks.peek(q + 1)[1] - 1 for q in positions}

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
    ONE_TO_ONE = True

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

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _MapStep(label, position, self.fn)

    def length(self, n: int) -> int:
        return n


@attrs.frozen
class Filter(InlineSpec):
    fn: Callable[[Any], Any]

    in_workers = InWorkers.LAST
    whole_units = False

    def describe(self) -> str:
        return f"filter({func_name(self.fn)})"

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _FilterStep(label, position, self.fn, out=0 if saved is None else saved.first)

    def length(self, n: int) -> int:
        raise Unknown("may drop items")


@attrs.frozen
class FlatMap(InlineSpec):
    fn: Callable[[Any], Iterable[Any]]

    def describe(self) -> str:
        return f"flat_map({func_name(self.fn)})"

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _FlatMapStep(label, position, self.fn, out=0 if saved is None else saved.first)

    def length(self, n: int) -> int:
        raise Unknown("yields as many items as fn returns for each")

    def unresumable(self, reordered: str | None) -> str | None:
        return split_after(reordered, "an item")


class FusedSteps:
    """Consecutive inline steps applied one after another to each chunk.

    Once a step is done (a ``take`` has its items), the steps before it are
    cut off and only the ones after it are finished at the end. In a
    resumed run, each step's first ``drop`` outputs (made again, see
    ``_position``) are dropped before the next step.
    """

    __slots__ = ("_cut", "_drop", "_steps", "done", "ends")

    def __init__(self, steps: list[Step], drop: list[int] | None = None) -> None:
        self._steps = steps
        self.ends = any(step.ends for step in steps)
        self._cut = next((i for i, s in enumerate(steps) if s.done), -1)
        self.done = self._cut >= 0
        self._drop = drop if drop and any(drop) else None

    def process(self, items: list[Any]) -> list[Any]:
        for i, step in enumerate(self._steps):
            items = step.process(items)
            if self._drop is not None:
                items = self._dropped(i, items)
            if step.done and not self.done:
                self.done, self._cut = True, i
            if not items:
                break
        return items

    def _dropped(self, i: int, items: list[Any]) -> list[Any]:
        assert self._drop is not None
        if self._drop[i]:
            items, self._drop[i] = dropped(items, self._drop[i])
            if not any(self._drop):
                self._drop = None
        return items

    def finish(self) -> list[Any]:
        out: list[Any] = []
        for i in range(self._cut + 1, len(self._steps)):
            step = self._steps[i]
            if out:
                out = step.process(out)
            out += step.finish()
            if self._drop is not None:
                out = self._dropped(i, out)
        return out

    def back(self, out: int, extra: frozenset[int]) -> tuple[list[Saved], frozenset[int]]:
        """Where each step stood when the last had yielded ``out`` items (see
        ``_position.back``), and the positions past there of their input
        consumed too."""
        entries: list[Saved] = []
        for step in reversed(self._steps):
            [entry], extra = back(step, out, extra)
            entries.append(entry)
            out = entry.at
        return entries[::-1], extra
