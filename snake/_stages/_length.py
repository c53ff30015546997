"""``len(pipeline)``: its number of items, from each operator's, when that is known.

Each operator's spec answers ``length(n)``: how many items it yields from
``n`` (see ``_base.Spec.length``). A pipeline's length is its source's,
passed through the operators after it in order; one whose output depends on
its items (a ``filter``) raises :class:`Unknown`, and ``len()`` a
``TypeError`` naming it. Items that never end (``repeat()``) are
:data:`ENDLESS`, and stay so through every operator but ``take(n)``, which
makes them ``n`` (its ``most``): any other operator over them either yields
for ever or never finishes, so that a ``take`` after it gives ``n`` items
whenever it ends.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sized
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._base import Spec


class Endless(enum.Enum):
    """The length of items that never end, such as ``repeat()``'s."""

    ENDLESS = "endless"


ENDLESS: Final = Endless.ENDLESS

#: A number of items, or ``ENDLESS``.
Length: TypeAlias = int | Literal[Endless.ENDLESS]


class Unknown(Exception):
    """Why an operator's number of items cannot be known before it runs.

    Its message continues the operator's label: ``may drop items``. ``where``
    gathers the labels from the operator out to the pipeline ``len()`` was
    asked of, for operators inside the pipelines of another.
    """

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
        self.where: list[str] = []
        self._pipeline = ""

    def within(self, label: str) -> None:
        self.where.append(self._pipeline + label)
        self._pipeline = ""

    def in_pipeline(self, k: int) -> None:
        """It comes from the ``k``-th pipeline (from 0) of the operator that holds it."""
        self._pipeline = f"pipeline {k + 1} of "

    def __str__(self) -> str:
        inner, *outer = self.where or ["the pipeline"]
        around = "".join(f", in {label}" for label in outer)
        return f"{inner}{around}{',' if outer else ''} {self.why}"


def lengths(specs: Sequence[Spec]) -> list[Length]:
    """The number of items after each operator of ``specs``, in order.

    Raises:
      Unknown: an operator's depends on its items, saying which and why.
    """
    out: list[Length] = []
    n: Length = 0  # a source has no input
    for index, spec in enumerate(specs):
        if n is ENDLESS:
            most = spec.most
            n = ENDLESS if most is None else most
        else:
            try:
                n = spec.length(n)
            except Unknown as why:
                why.within(f"#{index} {spec.describe()}")
                raise
        out.append(n)
    return out


def length(specs: Sequence[Spec]) -> Length:
    """The number of items of the pipeline ``specs``; see :func:`lengths`."""
    return lengths(specs)[-1] if specs else 0


def nested(specs: Sequence[Spec], k: int | None = None) -> Length:
    """:func:`length` of a pipeline an operator holds: its ``k``-th, if it holds several."""
    try:
        return length(specs)
    except Unknown as why:
        if k is not None:
            why.in_pipeline(k)
        raise


def known(specs: Sequence[Spec]) -> int:
    """What ``len(pipeline)`` gives: the number of items, if known and finite.

    Raises:
      TypeError: it is unknown or endless, naming the operator that makes it so.
      OverflowError: it is larger than ``sys.maxsize``, which ``len()`` allows.
    """
    try:
        after = lengths(specs)
    except Unknown as why:
        raise TypeError(f"len() is unknown: {why}") from None
    n = after[-1] if after else 0
    if n is ENDLESS:
        # Every endless pipeline holds a repeat(); name the operator from
        # which its items are endless to the end.
        first = len(after) - 1
        while first > 0 and after[first - 1] is ENDLESS:
            first -= 1
        raise TypeError(
            f"len() is unknown: #{first} {specs[first].describe()} never ends: give repeat() "
            "a number of times, or add .take(n) after it for n items"
        )
    if n > sys.maxsize:
        raise OverflowError(
            f"the pipeline has {n:,} items, more than len() can give (sys.maxsize, {sys.maxsize:,})"
        )
    return n


def total(specs: Sequence[Spec]) -> int | None:
    """The number of items, for a progress bar: ``None`` if unknown or endless."""
    try:
        return known(specs)
    except (TypeError, OverflowError):
        return None


def counted(obj: object) -> int:
    """The number of items of a source's ``obj``: its ``len()``, if it has one.

    Raises:
      Unknown: it has none (a generator, an iterator, an async iterable).
    """
    if isinstance(obj, range):  # len() refuses one longer than sys.maxsize
        return (obj[-1] - obj[0]) // obj.step + 1 if obj else 0
    if isinstance(obj, Sized):
        try:
            return len(obj)
        except (TypeError, NotImplementedError):  # a __len__ that says it has none
            pass
    kind = type(obj).__name__
    raise Unknown(
        f"has no len() ({'an' if kind[0] in 'aeiou' else 'a'} {kind}): start from one that "
        "has, such as a list, a range or a dataset with __len__"
    )
