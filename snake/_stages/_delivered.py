"""Where a ``par_then`` or ``par_map`` stood, for exact resume (see ``_position``).

Ordered, its results leave in input order, so its input stands where its
output does, past the items it skipped (``errors="skip"``); a ``filter`` or
``batch`` in its workers changes the count, so it marks each job's results as
they leave, and a resumed stage drops the ones it makes again. Unordered,
it says which inputs it has delivered: all before ``at``, and those after it
listed, never run again on resume (:class:`Delivered`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .._position import Marks, Saved, dropped, exact, tracking

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._policy import Failures
    from ._base import Context


class InOrder:
    """An ordered stage's positions: its output count, marked by job if a step
    in its workers changes the count (``batch``, ``filter``)."""

    def __init__(self, context: Context, failures: Failures | None) -> None:
        saved = context.saved
        moved = [m.spec for m in context.in_workers]
        self._moved = len(moved)
        self._failures = failures
        #: Items in for each item out, if a step in its workers groups them
        #: (``batch``); ``0`` if a step may drop them (``filter``).
        self._unit = math.lcm(*(m.unit for m in moved)) if all(m.whole_units for m in moved) else 0
        #: Results to drop at the start of a resumed run.
        self.drop = saved[-1].skip if saved else 0
        self._in = saved[0].at if saved else 0
        self._out = saved[-1].first if saved else 0
        counted = self._unit != 1
        self._marks = Marks(self._out, self._in) if counted and tracking() else None

    def runs(self, items: list[Any], end: int) -> Iterator[tuple[list[Any], int]]:
        """``items``, the input up to ``end``, with the position of the first."""
        yield items, end - len(items)

    def released(self, results: list[Any], count: int) -> list[Any]:
        """A job of ``count`` items gave ``results``: those that leave."""
        if self._marks is not None:
            self._in += count
            self._out += len(results)
            self._marks.add(self._out, self._in)
        if self.drop:
            results, self.drop = dropped(results, self.drop)
        return results

    def saved(self, out: int) -> list[Saved]:
        if self._marks is None:
            own = Saved(out) if self._failures is None else self._failures.resumed_at(out)
            return [own] + [Saved(out)] * self._moved
        first, at = self._marks.find(out)
        if self._unit:  # grouped: exactly where the input is
            at += (out - first) * self._unit
            return [Saved(at)] * (self._moved + 1)
        return [Saved(at)] * self._moved + [Saved(at, out - first)]

    def sources(self, positions: frozenset[int]) -> set[int]:
        """The input positions its results at ``positions`` came from."""
        if self._marks is None:
            if self._failures is None:
                return set(positions)
            return self._failures.sources(positions)
        unit = self._unit
        found: set[int] = set()
        for q in positions:
            first, at = self._marks.peek(q)
            start = at + (q - first) * unit
            found.update(range(start, min(start + unit, self._in)))
        return found


class Delivered:
    """An unordered stage's positions: which inputs its first results came from.

    Each job's results leave together, for the items of the job it did not
    skip, in order (``unit`` of them per result when its workers batch
    them). What it had delivered once it had yielded ``out`` results: every
    input before ``below``, those in ``done``, and the items of the jobs
    whose results had left by then (``released``), of the one ``out`` falls
    in, up to there.
    """

    def __init__(self, context: Context, failures: Failures | None) -> None:
        saved = context.saved[0] if context.saved else None
        own = {} if saved is None or saved.own is None else saved.own
        self.below = 0 if saved is None else saved.at
        #: Inputs after ``below`` not to run again.
        self.done: set[int] = set(own.get("done", ()))
        #: The same, for the feeder, which forgets them as it passes them.
        self._again = set(self.done)
        self._skipped = own.get("skipped", 0)
        #: Results out (of the steps in its workers, if any).
        self._out = context.saved[-1].out if context.saved else 0
        moved = [m.spec for m in context.in_workers]
        self._moved = len(moved)
        self._unit = math.lcm(*(m.unit for m in moved))
        #: Results out, and items they stand for, before each job left.
        self._items = context.saved[-1].at if context.saved else 0
        self._track = tracking()
        # After another stage that reorders items, the inputs it delivered
        # past ``below`` are that one's to not deliver again (``extra``);
        # the first such stage takes those of the ones after it (``absorbed``).
        self._chained = exact()
        self._absorbed: set[int] = set()
        self._jobs: list[tuple[int, int, list[int], list[int]]] = []

    def runs(self, items: list[Any], end: int) -> Iterator[tuple[list[Any], int]]:
        """``items``, the input up to ``end``, as runs of consecutive positions
        to run: without those it had delivered when it was saved."""
        base, done = end - len(items), self._again
        if not done:
            yield items, base
            return
        start = 0
        while start < len(items):
            while start < len(items) and base + start in done:
                done.discard(base + start)
                start += 1
            stop = start
            while stop < len(items) and base + stop not in done:
                stop += 1
            if stop > start:
                yield items[start:stop], base + start
            start = stop

    def released(self, base: int, count: int, failures: list[int]) -> None:
        """A job from ``base`` of ``count`` items left, but for the ``failures``."""
        if self._track:
            failed = set(failures)
            delivered = [p for p in range(base, base + count) if p not in failed]
            self._jobs.append((self._out, self._items, delivered, sorted(failed)))
            self._out += -(-len(delivered) // self._unit)
            self._items += len(delivered)

    def sources(self, positions: frozenset[int]) -> set[int]:
        """The inputs its results at ``positions`` (past the ones saved) came from."""
        found: set[int] = set()
        jobs, unit = self._jobs, self._unit
        for q in positions:
            for first, _, delivered, _ in reversed(jobs):
                if first <= q:
                    found.update(delivered[(q - first) * unit : (q - first + 1) * unit])
                    break
        if self._chained:
            return found
        self._absorbed |= found
        return set()

    def saved(self, out: int) -> list[Saved]:
        jobs, unit = self._jobs, self._unit
        whole = 0
        while whole + 1 < len(jobs) and jobs[whole + 1][0] <= out:
            _, _, delivered, failed = jobs[whole]
            self.done.update(delivered, failed)
            self._skipped += len(failed)
            whole += 1
        del jobs[:whole]
        self.below = _advanced(self.below, self.done)
        done, skipped = set(self.done), self._skipped
        items = self._items
        if jobs and jobs[0][0] < out:  # out, wholly or in part: its first results
            first, items, delivered, failed = jobs[0]
            part = delivered[: (out - first) * unit]
            done.update(part)
            late = [p for p in failed if (part and p < part[-1]) or len(part) == len(delivered)]
            done.update(late)
            skipped += len(late)
            items += len(part)
        elif jobs:
            items = jobs[0][1]
        done |= self._absorbed
        self._absorbed = set()
        below = _advanced(self.below, done)
        own: dict[str, Any] = {}
        if done and not self._chained:
            own["done"] = sorted(done)
        if skipped:
            own["skipped"] = skipped
        extra = frozenset(done) if self._chained else frozenset()
        # The steps in its workers stand where its items out do.
        return [Saved(below, own=own or None, extra=extra)] + [Saved(items)] * self._moved


class MaybeUnordered:
    """What ``par_then`` and ``par_map`` say of themselves: their order, for
    saved states, and a concurrency that may be ``"auto"``."""

    __slots__ = ()
    ordered: bool
    concurrency: int | Literal["auto"] | None
    #: What to try when its stage is the bottleneck, with a fixed concurrency.
    fixed_advice: ClassVar[str] = ""

    def named(self) -> str:
        """The operator and its function: ``par_map(decode)``."""
        raise NotImplementedError

    def describe(self) -> str:
        named = self.named()
        return f'{named[:-1]}, concurrency="auto")' if self.concurrency == "auto" else named

    def shape(self) -> str:
        """Its order matters to a saved state; its concurrency and executor do not."""
        named = self.named()
        return named if self.ordered else f"{named[:-1]}, ordered=False)"

    @property
    def advice(self) -> str:
        if self.concurrency == "auto":
            return "its concurrency is tuned: make its function faster"
        return self.fixed_advice

    def reorders(self) -> bool:
        return not self.ordered

    def tuned(self) -> bool:
        return self.concurrency == "auto"

    absorbs = True


def positions(context: Context, ordered: bool, failures: Failures | None) -> InOrder | Delivered:
    """Where a stage stands: by count if ordered, by what it delivered if not."""
    return InOrder(context, failures) if ordered else Delivered(context, failures)


def _advanced(below: int, done: set[int]) -> int:
    """The first input from ``below`` on not in ``done``; those passed leave ``done``."""
    while below in done:
        done.discard(below)
        below += 1
    return below
