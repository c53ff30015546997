"""One use of an operator with what it should give, and chains of them."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import attrs

from .._pipeline import from_iterable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._pipeline import Pipeline


@attrs.frozen
class Op:
    """One use of an operator: how to add it to a pipeline, and a reference of
    what it should give, computed without snake.

    Args:
      label: how the op shows in a failing example, e.g. ``"take(3)"``.
      add: adds the operator to a pipeline.
      reference: what the operator gives for any iterable of inputs, lazily
        (so an infinite one too), as Python and itertools compute it.
      ordered: ``False`` where the operator may reorder items: a run gives
        the reference's items in some order, so compare them as a multiset.
      ends_early: the op stops before its input does (a ``take``), so the
        operators before it may have run past its end.

    Example:
        >>> halve = snake.testing.Op("map(x//2)", lambda p: p.map(lambda x: x // 2),
        ...                          lambda it: (x // 2 for x in it))
        >>> snake.testing.run(halve.add(snake.from_iterable([4, 5])))
        [2, 2]
        >>> list(halve.reference([4, 5]))
        [2, 2]
    """

    label: str
    add: Callable[[Pipeline[Any]], Pipeline[Any]]
    reference: Callable[[Iterable[Any]], Iterable[Any]]
    ordered: bool = True
    ends_early: bool = False

    def __repr__(self) -> str:
        return self.label


def build(source: Iterable[Any], ops: Iterable[Op], /) -> Pipeline[Any]:
    """``snake.from_iterable(source)`` with each op's operator added in turn.

    Example:
        >>> double = snake.testing.Op("map(2*x)", lambda p: p.map(lambda x: 2 * x),
        ...                           lambda it: (2 * x for x in it))
        >>> snake.testing.run(snake.testing.build(range(3), [double, double]))
        [0, 4, 8]
    """
    pipeline = from_iterable(source)
    for op in ops:
        pipeline = op.add(pipeline)
    return pipeline


def reference(
    source: Iterable[Any], ops: Iterable[Op], /, *, limit: int | None = None
) -> list[Any]:
    """What ``build(source, ops)`` should give: each op's reference applied in
    turn to ``source``; where an op is not ``ordered``, a run gives these items
    in some order. With ``limit``, only the first ``limit`` items, so
    ``source`` may be infinite (``itertools.count()``).

    Example:
        >>> double = snake.testing.Op("map(2*x)", lambda p: p.map(lambda x: 2 * x),
        ...                           lambda it: (2 * x for x in it))
        >>> snake.testing.reference(range(3), [double, double])
        [0, 4, 8]
    """
    items: Iterable[Any] = source
    for op in ops:
        items = op.reference(items)
    return list(items if limit is None else itertools.islice(items, limit))
