"""Assertions for a pipeline's output, with messages that show where it went wrong."""

from __future__ import annotations

import collections
import reprlib
from typing import TYPE_CHECKING, Any, Self

from ._runs import Delays, run, sequential

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Sequence

    from .._pipeline import Pipeline

#: Items shown on each side of the first difference.
AROUND = 3

_short = reprlib.Repr()
_short.maxlist = _short.maxtuple = _short.maxdict = 8
_short.maxstring = _short.maxother = 60


def assert_ordered_equal(got: Iterable[Any], expected: Iterable[Any]) -> None:
    """``got`` and ``expected`` hold the same items in the same order.

    On failure the message gives the first position where they differ and
    the items around it on both sides, or which one ended early.

    Example:
        >>> snake.testing.assert_ordered_equal([1, 2, 4], [1, 2, 3])
        Traceback (most recent call last):
          ...
        AssertionError: the items differ first at position 2 (3 items, 3 expected)
          got      [2]: 4
          expected [2]: 3
          got      [0:3]: [1, 2, 4]
          expected [0:3]: [1, 2, 3]
    """
    got, expected = list(got), list(expected)
    if got == expected:
        return
    at = next((k for k, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
    sizes = f"({len(got)} items, {len(expected)} expected)"
    if at is None:
        at = min(len(got), len(expected))
        shorter = "got" if len(got) < len(expected) else "expected"
        lines = [f"{shorter} ends at position {at} {sizes}"]
    else:
        lines = [f"the items differ first at position {at} {sizes}"]
        lines += [f"  got      [{at}]: {_short.repr(got[at])}"]
        lines += [f"  expected [{at}]: {_short.repr(expected[at])}"]
    lines += _around(got, expected, at)
    raise AssertionError("\n".join(lines))


def assert_prefix(got: Iterable[Any], expected: Iterable[Any]) -> None:
    """``got`` is the start of ``expected``: what a run stopped early or by an
    error may have given (see the contract: a prefix, nothing skipped).

    Example:
        >>> snake.testing.assert_prefix([0, 1], range(5))
    """
    got, expected = list(got), list(expected)
    if len(got) > len(expected):
        lines = [f"got {len(got)} items, more than the {len(expected)} expected"]
        raise AssertionError("\n".join(lines + _around(got, expected, len(expected))))
    assert_ordered_equal(got, expected[: len(got)])


def assert_permutation(got: Iterable[Any], expected: Iterable[Any]) -> None:
    """``got`` holds the items of ``expected``, each as many times, in any order.

    Items that cannot be hashed (lists, arrays) are compared by ``repr``.
    The message lists what is missing and what is extra, with counts.

    Example:
        >>> snake.testing.assert_permutation([3, 1, 2], [1, 2, 3])
    """
    got, expected = list(got), list(expected)
    have, want = _counts(got, expected)
    if have == want:
        return
    missing, extra = want - have, have - want
    lines = [f"not the same items in another order ({len(got)} items, {len(expected)} expected)"]
    if missing:
        lines.append(f"  missing: {_listed(missing)}")
    if extra:
        lines.append(f"  extra:   {_listed(extra)}")
    raise AssertionError("\n".join(lines))


def assert_same_error(
    raised: BaseException | None, pipeline: Pipeline[Any], *, epoch: int = 0
) -> None:
    """``raised`` is the error a sequential loop over ``pipeline`` raises first:
    of the same type, with the same message and the same snake notes (which
    name the stage and the item). Pass ``None`` when the run raised nothing.

    An ordered pipeline raises that error whatever finished first (see the
    contract); check it against real runs, or against ``run()`` with
    drawn delays::

        with pytest.raises(Exception) as caught:
            snake.testing.run(pipeline, delays)
        snake.testing.assert_same_error(caught.value, pipeline)
    """
    try:
        sequential(pipeline, epoch=epoch)
    except Exception as exc:
        expected: BaseException | None = exc
    else:
        expected = None
    if _described(raised) != _described(expected):
        raise AssertionError(
            "not the error a sequential loop raises first\n"
            f"  got:      {_described(raised)}\n  expected: {_described(expected)}"
        )


def assert_same_items(
    pipeline: Pipeline[Any], delays: Delays | None = None, *, ordered: bool = True
) -> None:
    """``run(pipeline, delays)`` gives ``sequential(pipeline)``'s items: in the same
    order if ``ordered``, else in any order."""
    got, expected = run(pipeline, delays), sequential(pipeline)
    (assert_ordered_equal if ordered else assert_permutation)(got, expected)


def _described(error: BaseException | None) -> str:
    if error is None:
        return "no error"
    # Which stage and item: how many later items failed too depends on timing.
    notes = [
        n
        for n in getattr(error, "__notes__", ())
        if n.startswith("snake:") and "failed at the same time" not in n
    ]
    return "; ".join([f"{type(error).__qualname__}{error.args!r}", *notes])


def _around(got: Sequence[Any], expected: Sequence[Any], at: int) -> list[str]:
    """Both sides' items from ``AROUND`` before ``at`` to ``AROUND`` after it."""
    start = max(0, at - AROUND)
    lines = []
    for name, items in (("got", got), ("expected", expected)):
        end = min(len(items), at + AROUND + 1)
        lines.append(f"  {name:8} [{start}:{end}]: {_short.repr(list(items[start:end]))}")
    return lines


def _counts(
    got: Sequence[Any], expected: Sequence[Any]
) -> tuple[collections.Counter[Hashable], collections.Counter[Hashable]]:
    try:
        return collections.Counter(got), collections.Counter(expected)
    except TypeError:  # unhashable items: by their repr
        return collections.Counter(map(_Shown, got)), collections.Counter(map(_Shown, expected))


class _Shown(str):
    """An item's ``repr``, which shows as itself."""

    __slots__ = ()

    def __new__(cls, item: Any) -> Self:
        return super().__new__(cls, repr(item))

    def __repr__(self) -> str:
        return str(self)


def _listed(counts: collections.Counter[Hashable]) -> str:
    shown = [
        f"{_short.repr(item)} x{n}" if n > 1 else _short.repr(item) for item, n in counts.items()
    ]
    more = len(shown) - 10
    return ", ".join(shown[:10]) + (f", and {more} more" if more > 0 else "")
