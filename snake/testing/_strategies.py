"""Hypothesis strategies for tests of pipelines: waits, and which items fail."""

from __future__ import annotations

from hypothesis import strategies as st

from ._runs import Delays

#: The waits drawn by default: mostly none, some short, a few long (on the
#: autojump clock, long costs nothing and reorders the most).
WAITS = (0.0, 0.0, 0.001, 0.01, 0.5, 3.0)


def delays(
    waits: tuple[float, ...] = WAITS, *, operators: int = 4, calls: int = 6
) -> st.SearchStrategy[Delays]:
    """``Delays`` for ``snake.testing.run``: for up to ``operators`` operators,
    up to ``calls`` waits each, drawn from ``waits``.

    They shrink towards fewer, shorter waits, so a failing example ends as
    the simplest timing that still fails.
    """
    per = st.lists(st.sampled_from(waits), min_size=1, max_size=calls).map(tuple)
    return st.lists(per, min_size=1, max_size=operators).map(lambda w: Delays(tuple(w)))


def failures(n: int, *, max_size: int = 3) -> st.SearchStrategy[frozenset[int]]:
    """Which of the items ``0 .. n-1`` fail: up to ``max_size`` of them, often none.

    With ``snake.testing.failing(fn, chosen)`` over ``from_iterable(range(n))``
    these are also the positions of the failing items. They shrink towards
    fewer, earlier items.
    """
    if n <= 0:
        return st.just(frozenset())
    return st.frozensets(st.integers(0, n - 1), max_size=max_size)
