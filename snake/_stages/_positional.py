"""``enumerate``, ``take`` and ``skip``: inline steps that count positions.

Fused into the stage before them like every inline step (see ``_inline``).
``take`` marks itself done once it has its items, so the stage hosting it
stops and the stages upstream are cancelled. Where each stood is a count,
so a resumed one is made from the position of its input alone.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._position import Saved
from ._base import InlineSpec, Step


@attrs.define(eq=False)
class _EnumerateStep:
    next: int
    done = False
    ends = False

    def process(self, items: list[Any]) -> list[Any]:
        start = self.next
        self.next += len(items)
        return list(zip(range(start, self.next), items, strict=True))

    def finish(self) -> list[Any]:
        return []

    def saved(self, out: int) -> Saved:
        return Saved(out)

    def sources(self, positions: frozenset[int]) -> frozenset[int]:
        return positions


@attrs.frozen
class Enumerate(InlineSpec):
    start: int

    def describe(self) -> str:
        return f"enumerate(start={self.start})"

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _EnumerateStep(self.start + position)

    def length(self, n: int) -> int:
        return n


@attrs.define(eq=False)
class _TakeStep:
    left: int
    done: bool
    ends = True

    def process(self, items: list[Any]) -> list[Any]:
        if len(items) < self.left:
            self.left -= len(items)
            return items
        out, self.left, self.done = items[: self.left], 0, True
        return out

    def finish(self) -> list[Any]:
        return []

    def saved(self, out: int) -> Saved:
        return Saved(out)

    def sources(self, positions: frozenset[int]) -> frozenset[int]:
        return positions


@attrs.frozen
class Take(InlineSpec):
    n: int

    def describe(self) -> str:
        return f"take({self.n})"

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        left = max(0, self.n - position)
        return _TakeStep(left, left == 0)

    def length(self, n: int) -> int:
        return min(n, self.n)

    @property
    def most(self) -> int:
        return self.n


@attrs.define(eq=False)
class _SkipStep:
    n: int
    #: Items taken.
    seen: int
    done = False
    ends = False

    def process(self, items: list[Any]) -> list[Any]:
        left = self.n - self.seen
        self.seen += len(items)
        return items[left:] if left > 0 else items

    def finish(self) -> list[Any]:
        return []

    def saved(self, out: int) -> Saved:
        # Before its first item out, any place up to its n-th item in will do.
        return Saved(out + self.n if out else min(self.seen, self.n))

    def sources(self, positions: frozenset[int]) -> set[int]:
        return {q + self.n for q in positions}


@attrs.frozen
class Skip(InlineSpec):
    n: int

    def describe(self) -> str:
        return f"skip({self.n})"

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _SkipStep(self.n, position)

    def length(self, n: int) -> int:
        return max(0, n - self.n)
