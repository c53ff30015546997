"""``concurrency="auto"``: a parallel stage's concurrency, tuned while it runs.

The tuner watches the stage's calls in rounds, a round being as many calls
as the concurrency allows at once (about one call's latency). After each
round it knows the stage's rate, by Little's law: the calls it had running
on average over the round's time, over their mean latency (a count of calls
finished per second would depend on how their ends bunch up at the round's
edges), and whether the stage was the limit: whether an input item was
waiting for room in its window for most of the round, a window mostly of
calls running (not of results waiting for the stages after it). Only calls started since
the last change count, and the first round of them is not judged either
(they may still queue behind the calls before):

- growing (from the start): while the stage is the limit and the last step
  up raised the rate by ``GAIN`` at least, it steps up again, up to its
  most: it doubles, or quadruples after a step that raised the rate in
  proportion (``LINEAR``). A step that did not pay is undone, and it
  settles there. A stage that is not the limit settles where it is.
- settled: it keeps the value while the rate holds. Once the rate has moved
  by more than ``CHANGE`` (the items got slower or faster) while the stage
  is the limit, it grows again from there.

It never goes below where it started, today's fixed default: a stage held
back by another (its input, or the consumer) keeps it, and a service that
serves fewer calls at once than that gets the calls queued in its own
function. Going lower needs a signal those cases do not blur.

Latencies are taken on trio's clock, so under a test's autojump clock the
whole search is deterministic. Every value tried and its rate are kept for the
statistics (``TuningStatistics``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

#: Where a ``par_then`` with ``concurrency="auto"`` starts, and its most.
PAR_THEN_START = 16
PAR_THEN_MOST = 1024
#: The most a thread ``par_map`` with ``concurrency="auto"`` goes to; it
#: starts at one per CPU, and a process or Ray one stays within the CPUs.
THREADS_MOST = 32
#: A step up pays if it raises the rate by this factor at least (rounds
#: measure a rate to about 10 %).
GAIN = 1.2
#: After a step up that raised the rate by this share of its own factor at
#: least (the calls do not slow each other down), the next step is 4x, not 2x.
LINEAR = 0.9
#: A settled rate that moves by more than this factor sets off a new search.
CHANGE = 1.5
#: The stage is the limit in a round if an input item waited for room in its
#: window for this share of the round's time at least, while calls filled
#: this share of the window on average.
LIMITED = 0.5
#: Nor is it if it waited for the stages after it for this share of the round.
BLOCKED = 0.1


@attrs.frozen
class TuningStatistics:
    """What the tuner of a stage with ``concurrency="auto"`` chose, and why."""

    #: The concurrency now, and each value tried with its rate (items/s),
    #: in the order tried (the last rate at each).
    value: int
    tried: tuple[tuple[int, float], ...]
    why: str

    def line(self) -> str:
        """The statistics table's line for it."""
        rates = ", ".join(f"{v}: {r:,.0f}/s" for v, r in sorted(self.tried))
        return f"concurrency auto: {self.value} ({self.why}; items/s at each: {rates or '-'})"


@attrs.define(eq=False)
class Tuner:
    """One run's search for a stage's concurrency (see the module's docstring).

    Its stage tells it when each call starts and ends, and gives it
    ``parked``: the seconds, up to a time, that an input item has waited for
    room in the stage's window. What it measures is sums and integrals over
    time, so calls that end at the same moment count alike in whatever order
    trio runs them: a round ends at the first moment after the one it filled.
    """

    value: int
    most: int
    why: str = "growing from where it starts"
    parked: Callable[[float], float] = lambda now: 0.0
    #: The seconds, so far, the stage has waited for the stages after it.
    blocked: Callable[[], float] = lambda: 0.0
    #: Changes so far: a call counts if it started since the last.
    _generation: int = 0
    #: Such calls running now, and since when that count holds.
    _running: int = 0
    _since: float | None = None
    #: The round under way: when it began (and the seconds parked by then),
    #: the integral of the calls running over its time, calls ended and the
    #: sum of their latencies; when it had all its calls.
    _began: float | None = None
    _parked_then: float = 0.0
    _blocked_then: float = 0.0
    _area: float = 0.0
    _ended: int = 0
    _items: int = 0
    _latency: float = 0.0
    _filled: float | None = None
    #: Growing: the value and rate it stepped up from; the next round's rate
    #: is not judged. Settled: the rate it settled at.
    _origin: tuple[int, float] | None = None
    _ramp: bool = True  # the first round fills the window: not judged either
    _settled: float | None = None
    _change: int | None = None
    _rates: dict[int, float] = attrs.Factory(dict)
    _order: list[int] = attrs.Factory(list)

    def started(self, now: float) -> int:
        """A call starts at ``now``; what to give ``ended`` for it."""
        self._moment(now)
        self._running += 1
        return self._generation

    def ended(self, now: float, latency: float, started: int, items: int = 1) -> None:
        """A call ended at ``now`` after ``latency`` seconds, with ``items``
        items (a ``par_map`` job's); ``started`` is what ``started`` gave it."""
        self._moment(now)
        if started != self._generation:
            return  # started before the last change
        self._running -= 1
        self._ended += 1
        self._items += items
        self._latency += latency
        if self._ended >= self.value and self._filled is None:
            self._filled = now

    def changed(self) -> int | None:
        """The new concurrency, once, if a round ended with a change."""
        change, self._change = self._change, None
        return change

    def _moment(self, now: float) -> None:
        """Time moves on to ``now``: the calls running count until then, and a
        round filled at an earlier moment ends."""
        if self._began is None:
            self._began = now
        if self._since is not None:
            self._area += self._running * (now - self._since)
        self._since = now
        if self._filled is not None and now > self._filled:
            self._close(now)

    def _close(self, now: float) -> None:
        assert self._began is not None
        seconds = now - self._began
        running = self._area / seconds
        # Items per second: calls per second times items per call.
        rate = running * self._items / self._latency if self._latency else math.inf
        parked, blocked = self.parked(now), self.blocked()
        # Room was short, and it was short because of calls running, not of
        # results waiting for the stages after it to take them.
        is_limit = (
            parked - self._parked_then >= LIMITED * seconds
            and running >= LIMITED * self.value
            and blocked - self._blocked_then < BLOCKED * seconds
        )
        self._began, self._parked_then, self._blocked_then = now, parked, blocked
        self._area, self._ended, self._items = 0.0, 0, 0
        self._latency, self._filled = 0.0, None
        if self._ramp:  # the calls of the value before may still have slowed it
            self._ramp = False
            return
        if is_limit or self._settled is None:  # not the rate of an input running dry
            self._record(rate)
        searching = self._settled is None
        value = self._searched(rate, is_limit) if searching else self._held(rate, is_limit)
        if value != self.value:
            self.value, self._change, self._ramp = value, value, True
            self._generation += 1
            self._running = 0

    def statistics(self) -> TuningStatistics:
        tried = tuple((v, self._rates[v]) for v in self._order)
        return TuningStatistics(self.value, tried, self.why)

    def _record(self, rate: float) -> None:
        if self.value not in self._rates:
            self._order.append(self.value)
        self._rates[self.value] = rate

    def _searched(self, rate: float, is_limit: bool) -> int:
        origin, self._origin = self._origin, None
        if origin is not None and rate < GAIN * origin[1]:
            return self._settle(origin, f"settled: {self.value} was no faster")
        if not is_limit:
            return self._settle((self.value, rate), "settled: the stage is not the limit")
        if self.value >= self.most:
            return self._settle((self.value, rate), f"settled at its most, {self.most}")
        # Calls that do not slow each other down: the rate grew with the
        # value, so the next step is longer.
        linear = origin is not None and rate >= LINEAR * self.value / origin[0] * origin[1]
        self._origin = (self.value, rate)
        self.why = "growing: each step so far was faster"
        return min(self.most, (4 if linear else 2) * self.value)

    def _held(self, rate: float, is_limit: bool) -> int:
        assert self._settled is not None
        moved = not self._settled / CHANGE <= rate <= self._settled * CHANGE
        if moved and is_limit and self.value < self.most:
            self._settled = None
            self._origin = (self.value, rate)
            self.why = "growing again: the rate changed"
            return min(self.most, 2 * self.value)
        if moved:
            self._settled = rate
        return self.value

    def _settle(self, at: tuple[int, float], why: str) -> int:
        """Settle at ``at``'s value, whose rate was ``at``'s; that value."""
        self._settled, self.why = at[1], why
        return at[0]
