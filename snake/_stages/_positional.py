"""``enumerate``, ``take`` and ``skip``: inline steps that count positions.

Fused into the stage before them like every inline step (see ``_inline``).
``take`` marks itself done once it has its items, so the stage hosting it
stops and the stages upstream are cancelled.
"""

from __future__ import annotations

from typing import Any

import attrs

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


@attrs.frozen
class Enumerate(InlineSpec):
    start: int

    def describe(self) -> str:
        return f"enumerate(start={self.start})"

    def step(self, label: str, position: int = 0) -> Step:
        return _EnumerateStep(self.start)

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


@attrs.frozen
class Take(InlineSpec):
    n: int

    def describe(self) -> str:
        return f"take({self.n})"

    def step(self, label: str, position: int = 0) -> Step:
        return _TakeStep(self.n, self.n == 0)

    def length(self, n: int) -> int:
        return min(n, self.n)

    @property
    def most(self) -> int:
        return self.n


@attrs.define(eq=False)
class _SkipStep:
    left: int
    done = False
    ends = False

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

    def step(self, label: str, position: int = 0) -> Step:
        return _SkipStep(self.n)

    def length(self, n: int) -> int:
        return max(0, n - self.n)
