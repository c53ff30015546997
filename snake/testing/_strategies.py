"""Hypothesis strategies for tests of pipelines: waits, which items fail, and operators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import strategies as st

from ._ops import Op
from ._runs import Delays
from ._table import OPERATORS, Draws

if TYPE_CHECKING:
    from collections.abc import Iterable

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


def operators(
    *,
    ordered: bool | None = True,
    delays: st.SearchStrategy[list[float]] | None = None,
    extra: Iterable[Op | st.SearchStrategy[Op]] = (),
) -> st.SearchStrategy[Op]:
    """An ``Op`` drawn from snake's own operator table, with random arguments,
    or one of ``extra``: chain them to fuzz pipelines that mix snake's
    operators with a library's own.

    The table's ops work on pipelines of ints and never give items for ever;
    they include process ``par_map`` ops, which ``snake.testing.run`` and
    ``sequential`` run in this process. ``Op.reference`` says what the
    operator gives, and ``Op.ordered`` whether in order. An op that reorders
    gives the same items whatever order they come in, but ops after it may
    not (``take``, ``batch``): compare a chain as a multiset with such ops
    last, as ``sorted(ops, key=lambda op: not op.ordered)`` puts them.

    Args:
      ordered: ``True``: only ops that keep their input's order; ``False``:
        only ops that may reorder; ``None``: any op. ``extra`` is chosen the
        same way.
      delays: the waits the table's own async functions sleep before each
        call (``then``, ``par_then``, interleaved files), a list per op,
        drawn from the waits of ``delays()`` by default. On ``run``'s
        autojump clock they cost no real time; ``run``'s ``Delays`` add
        their own waits to every call.
      extra: the caller's own ops, each an ``Op`` or a strategy of them,
        drawn as often as each of the table's operators.

    Example:
        >>> from hypothesis import given, strategies as st
        >>> @given(st.lists(snake.testing.operators(), max_size=4))
        ... def test_chains(ops):
        ...     pipeline = snake.testing.build(range(20), ops)
        ...     snake.testing.assert_ordered_equal(
        ...         snake.testing.run(pipeline), snake.testing.reference(range(20), ops))
        >>> test_chains()
    """
    waits = st.lists(st.sampled_from(WAITS), min_size=1, max_size=5) if delays is None else delays
    rows = [row for row in OPERATORS if ordered is None or row.ordered == ordered]
    table = [row.examples(Draws(delays=waits)) for row in rows if not row.endless]
    own = [s for s in (_chosen(op, ordered) for op in extra) if s is not None]
    return st.sampled_from([*table, *own]).flatmap(lambda ops: ops)


def _chosen(op: Op | st.SearchStrategy[Op], ordered: bool | None) -> st.SearchStrategy[Op] | None:
    """``op`` as a strategy, if it can be as ``ordered`` asks."""
    if isinstance(op, Op):
        return st.just(op) if ordered is None or op.ordered == ordered else None
    return op if ordered is None else op.filter(lambda o: o.ordered == ordered)
