"""Positions: where each operator of a run stands, as plain data, for exact resume.

A run's state is one :class:`Saved` per operator, found by walking back from
the consumer: the last operator is asked where it stood when it had yielded
the items the consumer has received (``saved(out)``); its answer says from
which position of its input it resumes (``at``), and so where to ask the
operator before it, down to the source. Items are never saved, only
positions: an operator holding items (a partial batch, a shuffle buffer)
says to resume its input early enough to read them again, and an operator
whose positions are only known at the end of each unit of its work (a
``filter``) says to resume from the last one and drop the first ``skip`` of
its outputs. Items between the save and the consumer are made again:
calls in flight at the save are made again after a resume.

Operators that can only say where they stood at points of their output
keep those points in :class:`Marks`, trimmed as the walk moves on, so what
they keep is bounded by what the run holds beyond its consumer.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator

V = TypeVar("V")


@attrs.frozen
class Saved:
    """Where one operator stood: resume its input at ``at``, drop its first
    ``skip`` outputs, and restore ``own`` (plain JSON data of its own, or
    ``None``)."""

    at: int
    skip: int = 0
    own: Any = None
    #: Its output position: the next operator's ``at`` (so not saved), set
    #: when a state is loaded.
    out: int = attrs.field(default=0, eq=False)
    #: Positions of its input past ``at`` whose items were consumed too: a
    #: stage that reorders items after another one says so of the items it
    #: delivered, for that one to not deliver them again (see ``back``).
    extra: frozenset[int] = attrs.field(default=frozenset(), eq=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at}
        if self.skip:
            out["skip"] = self.skip
        if self.own is not None:
            out["own"] = self.own
        return out

    @classmethod
    def from_json(cls, data: Any, out: int) -> Saved:
        return cls(int(data["at"]), int(data.get("skip", 0)), data.get("own"), out)

    @property
    def first(self) -> int:
        """The output position it resumes at, before it drops ``skip`` items."""
        return self.out - self.skip


class NotResumable(RuntimeError):
    """A run whose position cannot be saved or resumed; the message says why
    and what to do."""


class Marks(Generic[V]):
    """Points of an operator's output with what it knew there: ``(out, value)``.

    ``add`` records a point (replacing the last one if the output has not
    moved); ``find(out)`` gives the last point at or before ``out`` and
    forgets the ones before it, since later walks ask of later positions.
    """

    __slots__ = ("_outs", "_values")

    def __init__(self, out: int, value: V) -> None:
        self._outs = [out]
        self._values = [value]

    def add(self, out: int, value: V) -> None:
        if out == self._outs[-1]:
            self._values[-1] = value
        else:
            self._outs.append(out)
            self._values.append(value)

    def peek(self, out: int) -> tuple[int, V]:
        """The last point at or before ``out``, forgetting nothing."""
        i = bisect.bisect_right(self._outs, out) - 1
        if i < 0:
            raise NotResumable(f"position {out} is before the earliest one kept")
        return self._outs[i], self._values[i]

    def find(self, out: int) -> tuple[int, V]:
        i = bisect.bisect_right(self._outs, out) - 1
        if i < 0:
            raise NotResumable(f"position {out} is before the earliest one kept")
        if i:
            del self._outs[:i], self._values[:i]
        return self._outs[0], self._values[0]


#: Whether the operators being built keep their positions: on in a run that
#: can save its state, off in worker processes and in runs that cannot.
_tracking: contextvars.ContextVar[bool] = contextvars.ContextVar("snake_tracking", default=False)


#: Whether the operator being built follows one that reorders items: then
#: an item resumed past is not the same item again, so it marks every
#: position exactly, never resuming early to drop what it makes again.
_exact: contextvars.ContextVar[bool] = contextvars.ContextVar("snake_exact", default=False)


def tracking() -> bool:
    return _tracking.get()


def exact() -> bool:
    return _exact.get()


@contextlib.contextmanager
def tracked(on: bool, *, exactly: bool = False) -> Iterator[None]:
    token, exact_token = _tracking.set(on), _exact.set(exactly)
    try:
        yield
    finally:
        _tracking.reset(token)
        _exact.reset(exact_token)


def after_reordering(reordered: str | None, why: str) -> str | None:
    """Why an operator cannot save its position after ``reordered``, an
    operator that reorders items, if there is one: ``why`` ends the sentence."""
    if reordered is None:
        return None
    return f"comes after {reordered}, which may give its items in another order when resumed{why}"


def split_after(reordered: str | None, what: str) -> str | None:
    """Why an operator that makes several items of one (``flat_map``) cannot
    save its position after one that reorders items, if it is after one."""
    return after_reordering(
        reordered,
        f": a save between two of the items it makes of {what} could not find the others "
        "again; put it before, or keep that order (ordered=True)",
    )


def dropped(items: list[Any], drop: int) -> tuple[list[Any], int]:
    """``items`` but the first ``drop``, which a resumed operator makes again,
    and how many are left to drop after them."""
    return items[drop:], max(0, drop - len(items))


def back(op: Any, out: int, extra: frozenset[int]) -> tuple[list[Saved], frozenset[int]]:
    """Where ``op`` stood when it had yielded ``out`` items, and the positions
    of its input past there whose items were consumed too.

    ``extra`` are such positions of its output: between two stages that
    reorder items, where the later one delivered items beyond its position.
    Each operator there says (``sources``) which of its inputs they came
    from, and the earlier stage takes them as delivered.
    """
    before: frozenset[int] = frozenset()
    if extra:
        sources = getattr(op, "sources", None)
        if sources is None:
            raise NotResumable(
                f"{type(op).__name__} between two stages that reorder items cannot say "
                "which of its inputs its items came from: keep the order of one of them"
            )
        before = frozenset(sources(extra))
    saved = op.saved(out)
    entries = [saved] if isinstance(saved, Saved) else saved
    return entries, before | (entries[0].extra if entries else frozenset())
