"""``concurrency="auto"``: a parallel stage's concurrency, tuned while it runs.

The tuner watches the stage's calls in rounds: a round is as many calls as
the concurrency when it began (about one call's latency), or ``ROUND``
times the first round's mean latency if that comes first (at the first
call that starts or ends after it: a round of a stage whose window is full
of results the stages after it have not taken may have no call of its own
end). After each round
it knows the stage's rate, by Little's law: the calls it had running on
average over the round's time, over their mean latency (a count of calls
finished per second would depend on how their ends bunch up at the round's
edges), and whether the stage was the limit: whether an input item was
waiting for room in its window for most of the round, a window mostly of
calls running, while the stage did not wait for the stages after it.

- starting: as TCP's slow start, each call that ends while an input item
  waits for room (and the stage is not waiting for the stages after it;
  both looked at over ``SPAN`` of a latency at least, so that calls ending
  together count alike) raises the concurrency by ``STEP``, so that it
  grows about fourfold per latency, with no round lost to judging. The first round's latency is the
  mean of the calls started at the first value, known once they have all
  ended (the first to end are the fast ones); nothing is judged before.
  Then the start ends with a round:
  - whose mean latency is past ``QUEUED`` times the first round's: the calls
    queue somewhere (a service that serves fewer at once). It settles at
    ``HEADROOM`` times the calls the rate needs at the first round's latency
    (Little's law again), below where it started if that is less;
  - in which the stage is not the limit: it settles at ``HEADROOM`` times
    the calls it had running, not below where it started;
  - begun at its most; or begun at twice the value of the round judged
    last, and not faster than it by ``GAIN``: it settles where it began.
- settled: it keeps the value while the rate holds. While another stage
  holds it back (its input, or the stages after it), it falls to
  ``HEADROOM`` times the calls it had running, never below where it started:
  the rate it sees is the other stage's, and a consumer that takes items in
  bursts still finds today's default of them ready. A stage that waited for
  the stages after it falls at once, in the round after a change too, as
  does one held back in a round in which none of its calls ended (it settles
  if it had not). Once the rate has moved
  by more than ``CHANGE`` while the stage is the limit, or it has become
  the limit after being held back, it searches up.
- searching up: only calls started since the last change count, and the
  first round of them is not judged (they may still queue behind the calls
  before). While the stage is the limit and the last step up raised the
  rate by ``GAIN`` at least, it steps up again, up to its most: it doubles,
  or quadruples after a step that raised the rate in proportion
  (``LINEAR``). A step that did not pay is undone, and it settles there.

Once the input has ended, nothing changes: the last calls say nothing of
the stage's own. A stage run again (the pipeline's next epoch) starts where
its last run left it (``tuned``). Latencies are taken on trio's clock, so under a test's
autojump clock the whole search is deterministic for the same moments of
calls and items (chunks are sized by CPU time, which moves those of a stage
behind a slow consumer). Every value tried and its
rate are kept for the statistics (``TuningStatistics``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._auto import Kept
    from ._base import Context

#: What ``started`` gives for a call of the first round (of generation 0).
FIRST = -1
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
#: A round also ends once it has lasted this many times the first round's
#: mean latency: calls that start only as the stages after take their
#: results would make rounds long.
ROUND = 4
#: While starting, each call that ends raises the concurrency by this many.
STEP = 3
#: Whether the stage is the limit, for that, is looked at over spans of this
#: share of the calls' latency at least.
SPAN = 0.25
#: While starting, a round whose mean latency is this many times the first
#: round's has calls queuing: the start ends.
QUEUED = 1.5
#: It then falls to this many times the calls the rate needs.
HEADROOM = 1.5


def tuned(context: Context, start: int, most: int) -> Tuner:
    """A stage's tuner, from ``start`` up to ``most``; or, run again (the
    pipeline's next epoch), from where its last run ended: settled there if
    it had settled (it searches up if the rate changes, and falls, not
    below ``start``, if another stage holds it back), else starting again
    a latency's growth further on, as if its last run had gone on."""
    kept = None if context.auto is None else context.auto.kept
    if kept is None or kept.value is None:
        return Tuner(start, most, kept=kept)
    value = max(1, min(most, kept.value))
    if not kept.settled:
        grown = min(most, (1 + STEP) * value)
        why = f"starting from {grown}: its last run ended at {value}, still growing"
        return Tuner(grown, most, why, kept=kept, least=min(start, value))
    why = f"settled at {value}, where its last run ended"
    tuner = Tuner(value, most, why, kept=kept, least=min(start, value))
    tuner.resettle()
    return tuner


@attrs.frozen
class TuningStatistics:
    """What the tuner of a stage with an ``"auto"`` setting chose, and why."""

    #: The setting now, and each value tried with its rate (items/s), in the
    #: order tried (the last rate at each).
    value: int
    tried: tuple[tuple[int, float], ...]
    why: str
    #: The setting tuned, ``"concurrency"`` or ``"prefetch"`` (its size).
    setting: str = "concurrency"

    def line(self) -> str:
        """The statistics table's line for it."""
        rates = ", ".join(f"{v}: {r:,.0f}/s" for v, r in sorted(self.tried))
        return f"{self.setting} auto: {self.value} ({self.why}; items/s at each: {rates or '-'})"


@attrs.define
class FirstRound:
    """The calls started at a tuner's first value: once they have all ended,
    their mean latency is the calls' own (those that end first are the fast
    ones: a mean of the first to end would be too low)."""

    calls: int
    started: int = 0
    ended: int = 0
    seconds: float = 0.0

    def start(self) -> bool:
        """Whether a call that starts now is one of them."""
        if self.started < self.calls:
            self.started += 1
            return True
        return False

    def end(self, latency: float) -> float | None:
        """One of them ended after ``latency``: their mean latency, once the last has."""
        self.ended += 1
        self.seconds += latency
        return self.seconds / self.ended if self.ended == self.calls else None


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
    why: str = f"starting: {STEP} more calls for each that ends while the stage is the limit"
    parked: Callable[[float], float] = lambda now: 0.0
    #: The seconds, so far, the stage has waited for the stages after it.
    blocked: Callable[[], float] = lambda: 0.0
    #: Set once the input has ended: it changes nothing from then on.
    done: bool = False
    #: Where it stands, kept for the pipeline's next run (see ``_auto``).
    kept: Kept | None = None
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
    #: The calls the round under way is made of: the value when it began.
    _size: int = attrs.field(default=attrs.Factory(lambda self: self.value, takes_self=True))
    _most_why: str = attrs.field(
        default=attrs.Factory(lambda self: f"settled at its most, {self.most}", takes_self=True)
    )
    #: Where it started: a stage not the limit goes no lower.
    _least: int = attrs.field(default=attrs.Factory(lambda self: self.value, takes_self=True))
    #: Starting: the first round's mean latency, once known, from its calls.
    _starting: bool = True
    _base: float | None = None
    _first: FirstRound = attrs.field(
        default=attrs.Factory(lambda self: FirstRound(self.value), takes_self=True)
    )
    #: Since when it last looked (and the seconds parked and blocked by
    #: then), and whether calls that end now raise the concurrency; it looks
    #: again once ``_span`` has passed (``SPAN`` of the first round's mean
    #: latency, or until that is known, of the shortest latency).
    _mark: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _grow: bool = False
    _span: float | None = None
    #: The round judged last, and its rate.
    _last: tuple[int, float] | None = None
    #: Growing: the value and rate it stepped up from; the next round's rate
    #: is not judged. Settled: the rate it settled at.
    _origin: tuple[int, float] | None = None
    _ramp: bool = False
    _settled: float | None = None
    #: Settled because the stage is not the limit.
    _idle: bool = False
    _change: int | None = None
    _rates: dict[int, float] = attrs.Factory(dict)
    _order: list[int] = attrs.Factory(list)

    def started(self, now: float) -> int:
        """A call starts at ``now``; what to give ``ended`` for it (``FIRST``
        for one of the first round's calls)."""
        self._moment(now)
        self._running += 1
        return FIRST if self._first.start() else self._generation

    def ended(self, now: float, latency: float, started: int, items: int = 1) -> None:
        """A call ended at ``now`` after ``latency`` seconds, with ``items``
        items (a ``par_map`` job's); ``started`` is what ``started`` gave it."""
        self._moment(now)
        if started == FIRST:
            if (base := self._first.end(latency)) is not None:
                self._base, self._span = base, SPAN * base
            started = 0
        if started != self._generation:
            return  # started before the last change
        self._running -= 1
        self._ended += 1
        if self._base is None and (self._span is None or SPAN * latency < self._span):
            self._span = SPAN * latency
        self._items += items
        self._latency += latency
        if self._filled is None and self._ended >= self._size:
            self._filled = now
        if self._starting and self._grow and self.value < self.most:
            self.value = min(self.most, self.value + STEP)
            self._change = self.value

    def hold(self, most: int) -> None:
        """Its stage's share of the memory budget allows ``most`` at most."""
        if most < self.most:
            self.most, self._least = most, min(self._least, most)
            if self.value > most:
                self.value = self._change = most
                self.why = f"held at {most} by its share of the memory budget"
            self._most_why = f"settled at {most}, what its share of the memory budget holds"

    def resettle(self) -> None:
        """It starts settled at its value, where the last run ended: the
        rate it holds to is the second round's (the first fills the window)."""
        self._starting, self._settled, self._ramp = False, -1.0, True

    def changed(self) -> int | None:
        """The new concurrency, once, if a round ended with a change."""
        change, self._change = self._change, None
        if self.kept is not None:  # for the pipeline's next run
            self.kept.value, self.kept.settled = self.value, self._settled is not None
        return change

    def _moment(self, now: float) -> None:
        """Time moves on to ``now``: the calls running count until then, and a
        round filled at an earlier moment ends."""
        if self._began is None:
            self._began, self._mark = now, (now, self.parked(now), self.blocked())
        if self._since is not None and now > self._since:
            self._area += self._running * (now - self._since)
            self._grows(now)
        self._since = now
        if self._filled is not None and now > self._filled:
            self._close(now)
        elif self._filled is None and self._base is not None:
            # Long enough, whether or not its calls have ended: one that waits
            # for the stages after it to take results may not end for long.
            assert self._began is not None
            if now - self._began >= ROUND * self._base:
                self._filled = now

    def _grows(self, now: float) -> None:
        """Time moved on to ``now``: whether, since it last looked, an input
        item waited for room most of the time, and the stage did not wait for
        the stages after it (integrals over time: the same in whatever order
        trio runs the tasks of a moment). Over a span too short, they would
        measure how long trio took to run the tasks that calls ending
        together woke, not whether items wait."""
        then, parked_then, blocked_then = self._mark
        span = now - then
        if self._span is not None and span < self._span:
            return
        parked, blocked = self.parked(now), self.blocked()
        self._grow = (
            parked - parked_then >= LIMITED * span and blocked - blocked_then <= BLOCKED * span
        )
        self._mark = (now, parked, blocked)

    def _close(self, now: float) -> None:
        assert self._began is not None
        seconds = now - self._began
        running = self._area / seconds
        # Items per second: calls per second times items per call.
        rate = running * self._items / self._latency if self._latency else math.inf
        latency = self._latency / self._ended if self._ended else 0.0
        parked, blocked = self.parked(now), self.blocked()
        # Room was short, and it was short because of calls running, not of
        # results waiting for the stages after it to take them.
        pushed = blocked - self._blocked_then >= BLOCKED * seconds  # by the stages after it
        held_back = pushed or parked - self._parked_then < LIMITED * seconds
        is_limit = not held_back and running >= LIMITED * self._size
        size, ended = self._size, self._ended
        self._began, self._parked_then, self._blocked_then = now, parked, blocked
        self._area, self._ended, self._items = 0.0, 0, 0
        self._latency, self._filled, self._size = 0.0, None, self.value
        if self.done:  # the input has ended: the rest says nothing of the calls
            return
        if not ended:
            # None of its calls ended: its window held results that the stages
            # after it had not taken, or it had no input. It has no rate.
            if held_back:
                self._unheard(running)
            return
        if self._starting:
            self._start_round(size, rate, (ended / seconds, running), latency, is_limit)
            return
        if self._ramp:  # the calls of the value before may still have slowed it
            self._ramp = False
            # Its rate says nothing, but a settled stage that waited for the
            # stages after it has more calls than it needs.
            if pushed and self._settled is not None:
                self._move(self._fall(running))
            return
        if is_limit or self._settled is None:  # not the rate of an input running dry
            self._record(self.value, rate)
        searching = self._settled is None
        if searching:
            value = self._searched(rate, is_limit)
        else:
            value = self._held(rate, running if held_back else None, is_limit, pushed)
        self._move(value)

    def _move(self, value: int) -> None:
        """A round chose ``value``: if a new one, only calls started from now on count."""
        if value != self.value:
            self.value = self._change = value
            self._restart()

    def _restart(self) -> None:
        """Count only the calls started from now on, after a round of ramp."""
        self._ramp, self._size = True, self.value
        self._generation += 1
        self._running = 0

    def _start_round(
        self,
        size: int,
        rate: float,
        calls: tuple[float, float],
        latency: float,
        is_limit: bool,
    ) -> None:
        """A round of the start, begun at ``size``, ended: go on, or end the
        start; ``calls`` are its calls per second and its calls running."""
        if is_limit or size not in self._rates:
            self._record(size, rate)
        if self._base is None:  # it grows on until the first round's calls have ended
            return
        if self._base and latency > QUEUED * self._base:
            value = self._fit(calls[0] * self._base, 1)
            why = f"settled at {value}: calls queued beyond it ({latency / self._base:.1f}x"
            why += " the first latency)"
        elif not is_limit:
            value, why = self._fit(calls[1], self._least), "settled: the stage is not the limit"
        elif size >= self.most:
            value, why = self.value, self._most_why
        elif self._last is not None and size >= 2 * self._last[0] and rate < GAIN * self._last[1]:
            value, why = size, f"settled: {self.value} was no faster"
        else:
            if self._last is None or size >= 2 * self._last[0]:
                self._last = (size, rate)
            return
        # Settled; the rate it settles at is the next round's, at that value.
        self._starting, self._settled, self._idle, self.why = False, -1.0, not is_limit, why
        if value != self.value:
            self.value = self._change = value
        self._restart()

    def _fit(self, needed: float, least: int) -> int:
        """``needed`` calls at once, with headroom, from ``least`` up to the value now."""
        return max(least, min(self.value, math.ceil(HEADROOM * needed)))

    def statistics(self) -> TuningStatistics:
        tried = tuple((v, self._rates[v]) for v in self._order)
        return TuningStatistics(self.value, tried, self.why)

    def _record(self, value: int, rate: float) -> None:
        if value not in self._rates:
            self._order.append(value)
        self._rates[value] = rate

    def _searched(self, rate: float, is_limit: bool) -> int:
        origin, self._origin = self._origin, None
        if origin is not None and rate < GAIN * origin[1]:
            return self._settle(origin, f"settled: {self.value} was no faster")
        if not is_limit:
            return self._settle((self.value, rate), "settled: the stage is not the limit")
        if self.value >= self.most:
            return self._settle((self.value, rate), self._most_why)
        # Calls that do not slow each other down: the rate grew with the
        # value, so the next step is longer.
        linear = origin is not None and rate >= LINEAR * self.value / origin[0] * origin[1]
        self._origin = (self.value, rate)
        self.why = "growing: each step so far was faster"
        return min(self.most, (4 if linear else 2) * self.value)

    def _held(self, rate: float, running: float | None, is_limit: bool, pushed: bool) -> int:
        """Settled: keep the value, search up, or fall to the ``running``
        calls (with headroom) of a stage another holds back; at once if it
        was ``pushed`` back by the stages after it (``rate`` is then not
        the stage's own)."""
        settled = self._settled
        assert settled is not None
        if pushed and running is not None:
            return self._fall(running)
        if settled < 0:  # the first round at the value it settled at
            self._settled = rate
            return self.value
        moved = not settled / CHANGE <= rate <= settled * CHANGE
        if is_limit and self.value < self.most and (moved or self._idle):
            self._settled, self._idle = None, False
            self._origin = (self.value, rate)
            self.why = "growing again: the " + ("rate changed" if moved else "stage is the limit")
            return min(self.most, 2 * self.value)
        if running is not None:
            return self._fall(running)
        if moved:
            self._settled = rate
        return self.value

    def _unheard(self, running: float) -> None:
        """A round held back in which none of its calls ended: it settles, if
        it had not, and falls to the calls it had ``running``, with headroom."""
        self._starting = self._ramp = False
        self._origin = None
        if self._settled is None:
            self._settled, self.why = -1.0, "settled: the stage is not the limit"
        self._move(self._fall(running))

    def _fall(self, running: float) -> int:
        """Held back by another stage: what keeps up with the rate it is
        given, the ``running`` calls with headroom, if fewer than now."""
        self._idle = True
        if (fit := self._fit(running, self._least)) < self.value:
            self._settled, self.why = -1.0, "settled: the stage is not the limit"
            return fit
        return self.value

    def _settle(self, at: tuple[int, float], why: str) -> int:
        """Settle at ``at``'s value, whose rate was ``at``'s; that value."""
        self._settled, self.why = at[1], why
        return at[0]
