"""Inline operators: cheap synchronous steps fused into the stage before them.

``map``, ``filter``, ``flat_map``, ``enumerate``, ``take``, ``skip``,
``batch`` and ``unbatch`` never get a task or a channel of their own: the
stage before them runs them on each chunk it emits (``_chunking.Outbox``).
Ordering: input order, always. Buffering: none, except ``batch``'s one
partial batch. On cancel or error, whatever a step holds is dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from .._errors import add_stage_note, failed_at
from .._validate import func_name
from ._base import InlineSpec, Step


class _FnStep:
    """A step that calls a user function on each item, with positions for notes."""

    __slots__ = ("fn", "label", "seen")
    done = False

    def __init__(self, fn: Callable[..., Any], label: str) -> None:
        self.fn = fn
        self.label = label
        self.seen = 0

    def process(self, items: list[Any]) -> list[Any]:
        it = iter(items)
        try:
            out = self._apply(it)
        except Exception as exc:
            add_stage_note(exc, self.label, self.seen + failed_at(items, it))
            raise
        self.seen += len(items)
        return out

    def _apply(self, it: Iterable[Any]) -> list[Any]:
        raise NotImplementedError

    def finish(self) -> list[Any]:
        return []


class _MapStep(_FnStep):
    __slots__ = ()

    def _apply(self, it: Iterable[Any]) -> list[Any]:
        return list(map(self.fn, it))


class _FilterStep(_FnStep):
    __slots__ = ()

    def _apply(self, it: Iterable[Any]) -> list[Any]:
        pred = self.fn
        return [x for x in it if pred(x)]


class _FlatMapStep(_FnStep):
    __slots__ = ()

    def _apply(self, it: Iterable[Any]) -> list[Any]:
        return list(itertools.chain.from_iterable(map(self.fn, it)))


class _UnbatchStep(_FnStep):
    __slots__ = ()

    def _apply(self, it: Iterable[Any]) -> list[Any]:
        return list(itertools.chain.from_iterable(it))


@attrs.frozen
class Map(InlineSpec):
    fn: Callable[[Any], Any]

    def describe(self) -> str:
        return f"map({func_name(self.fn)})"

    def step(self, label: str) -> Step:
        return _MapStep(self.fn, label)


@attrs.frozen
class Filter(InlineSpec):
    fn: Callable[[Any], Any]

    def describe(self) -> str:
        return f"filter({func_name(self.fn)})"

    def step(self, label: str) -> Step:
        return _FilterStep(self.fn, label)


@attrs.frozen
class FlatMap(InlineSpec):
    fn: Callable[[Any], Iterable[Any]]

    def describe(self) -> str:
        return f"flat_map({func_name(self.fn)})"

    def step(self, label: str) -> Step:
        return _FlatMapStep(self.fn, label)


@attrs.frozen
class Unbatch(InlineSpec):
    def describe(self) -> str:
        return "unbatch()"

    def step(self, label: str) -> Step:
        return _UnbatchStep(iter, label)


class _EnumerateStep:
    __slots__ = ("next",)
    done = False

    def __init__(self, start: int) -> None:
        self.next = start

    def process(self, items: list[Any]) -> list[Any]:
        start = self.next
        self.next += len(items)
        return list(zip(range(start, self.next), items))

    def finish(self) -> list[Any]:
        return []


@attrs.frozen
class Enumerate(InlineSpec):
    start: int

    def describe(self) -> str:
        return f"enumerate(start={self.start})"

    def step(self, label: str) -> Step:
        return _EnumerateStep(self.start)


class _TakeStep:
    __slots__ = ("done", "left")

    def __init__(self, n: int) -> None:
        self.left = n
        self.done = n == 0

    def process(self, items: list[Any]) -> list[Any]:
        if len(items) < self.left:
            self.left -= len(items)
            return items
        out, self.left, self.done = items[: self.left], 0, True
        return out

    def finish(self) -> list[Any]:
        return []


@attrs.frozen
class Take(InlineSpec):
    n: int

    def describe(self) -> str:
        return f"take({self.n})"

    def step(self, label: str) -> Step:
        return _TakeStep(self.n)


class _SkipStep:
    __slots__ = ("left",)
    done = False

    def __init__(self, n: int) -> None:
        self.left = n

    def process(self, items: list[Any]) -> list[Any]:
        if not self.left:
            return items
        out = items[self.left :]
        self.left = max(0, self.left - len(items))
        return out

    def finish(self) -> list[Any]:
        return []


@attrs.frozen
class Skip(InlineSpec):
    n: int

    def describe(self) -> str:
        return f"skip({self.n})"

    def step(self, label: str) -> Step:
        return _SkipStep(self.n)


class _BatchStep:
    __slots__ = ("collate", "drop_last", "held", "label", "seen", "size")
    done = False

    def __init__(
        self,
        size: int,
        drop_last: bool,
        collate: Callable[[list[Any]], Any] | None,
        label: str,
    ) -> None:
        self.size = size
        self.drop_last = drop_last
        self.collate = collate
        self.label = label
        self.held: list[Any] = []
        self.seen = 0

    def process(self, items: list[Any]) -> list[Any]:
        held = self.held + items if self.held else items
        size = self.size
        cut = len(held) - len(held) % size
        self.held = held[cut:]
        batches = [held[i : i + size] for i in range(0, cut, size)]
        self.seen += len(items)
        return self._collate(batches, last_position=self.seen - len(self.held) - 1)

    def finish(self) -> list[Any]:
        held, self.held = self.held, []
        if not held or self.drop_last:
            return []
        return self._collate([held], last_position=self.seen - 1)

    def _collate(self, batches: list[list[Any]], last_position: int) -> list[Any]:
        collate = self.collate
        if collate is None or not batches:
            return batches
        it = iter(batches)
        try:
            return list(map(collate, it))
        except Exception as exc:
            # Report the input item that completed the failing batch.
            later = len(batches) - 1 - failed_at(batches, it)
            add_stage_note(exc, self.label, last_position - later * self.size)
            raise


@attrs.frozen
class Batch(InlineSpec):
    size: int
    drop_last: bool
    collate: Callable[[list[Any]], Any] | None

    def describe(self) -> str:
        extra = ", drop_last=True" if self.drop_last else ""
        if self.collate is not None:
            extra += f", collate={func_name(self.collate)}"
        return f"batch({self.size}{extra})"

    def step(self, label: str) -> Step:
        return _BatchStep(self.size, self.drop_last, self.collate, label)


class FusedSteps:
    """Consecutive inline steps applied one after another to each chunk.

    Once a step is done (a ``take`` has its items), the steps before it are
    cut off and only the ones after it are finished at the end.
    """

    __slots__ = ("_cut", "_steps", "done")

    def __init__(self, steps: list[Step]) -> None:
        self._steps = steps
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
