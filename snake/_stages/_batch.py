"""``batch`` and ``unbatch``: inline steps that group items and ungroup them.

Fused into the stage before them like every inline step (see ``_inline``).
``batch`` holds at most one partial batch, read again on resume; ``collate``
runs on each full one as it forms. A batch may run in a ``par_map``'s workers, after its function:
its jobs then hold whole batches.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import failed_at, item_error
from .._position import Saved, split_after
from .._validate import func_name
from ._base import InlineSpec, InWorkers, Step
from ._inline import ItemStep
from ._length import Unknown

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@attrs.define(eq=False)
class _UnbatchStep(ItemStep):
    def _apply(self, it: Iterator[Any]) -> list[Any]:
        return list(itertools.chain.from_iterable(it))


@attrs.frozen
class Unbatch(InlineSpec):
    def describe(self) -> str:
        return "unbatch()"

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _UnbatchStep(label, position, out=0 if saved is None else saved.first)

    def length(self, n: int) -> int:
        raise Unknown("yields as many items as its batches hold")

    def unresumable(self, reordered: str | None) -> str | None:
        return split_after(reordered, "a batch")


@attrs.define(eq=False)
class _BatchStep:
    size: int
    drop_last: bool
    collate: Callable[[list[Any]], Any] | None
    label: str
    #: The position of the next item, in the stage's input.
    seen: int
    #: A partial batch.
    held: list[Any] = attrs.Factory(list)
    done = False
    ends = False

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

    def saved(self, out: int) -> Saved:
        # A partial batch is read again; after the last one, the end.
        return Saved(min(out * self.size, self.seen))

    def sources(self, positions: frozenset[int]) -> set[int]:
        size = self.size
        return {i for b in positions for i in range(b * size, min((b + 1) * size, self.seen))}

    def _collate(self, batches: list[list[Any]], last_position: int) -> list[Any]:
        collate = self.collate
        if collate is None or not batches:
            return batches
        it = iter(batches)
        try:
            return list(map(collate, it))
        except BaseException as exc:
            # Report the input item that completed the failing batch.
            later = len(batches) - 1 - failed_at(batches, it)
            error = item_error(exc, self.label, last_position - later * self.size)
            if error is exc:
                raise
            raise error from exc


@attrs.frozen
class Batch(InlineSpec):
    size: int
    drop_last: bool
    collate: Callable[[list[Any]], Any] | None

    in_workers = InWorkers.LAST

    def describe(self) -> str:
        extra = ", drop_last=True" if self.drop_last else ""
        if self.collate is not None:
            extra += f", collate={func_name(self.collate)}"
        return f"batch({self.size}{extra})"

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _BatchStep(self.size, self.drop_last, self.collate, label, position)

    @property
    def unit(self) -> int:
        return self.size

    def length(self, n: int) -> int:
        return n // self.size if self.drop_last else -(-n // self.size)
