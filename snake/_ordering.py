"""The reorder buffer of ordered parallel stages: pure and synchronous."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


@attrs.define(eq=False)
class Reorderer(Generic[T]):
    """Releases values numbered 0, 1, 2, ... in order, whatever order they arrive in.

    Holds only the values that arrived early; the parallel stage bounds how
    many those can be by not starting work past its window.
    """

    _next: int = 0
    _early: dict[int, T] = attrs.Factory(dict)

    def push(self, seq: int, value: T) -> list[T]:
        """Add value number ``seq``; return the values now releasable, in order."""
        if seq < self._next or seq in self._early:
            raise ValueError(f"value {seq} was already pushed")
        if seq != self._next:
            self._early[seq] = value
            return []
        ready = [value]
        self._next += 1
        early = self._early
        while self._next in early:
            ready.append(early.pop(self._next))
            self._next += 1
        return ready
