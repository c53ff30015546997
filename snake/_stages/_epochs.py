"""``shuffle``, ``shard`` and ``repeat``: what a training loop does to a dataset each epoch.

``shuffle`` and ``shard`` are inline steps, fused like every other (see
``_inline``). ``repeat`` is a source of its own: for each epoch it runs the
pipeline before it again, as a nested pipeline in its task, with the epoch
number set (``snake.current_epoch()``), so a ``shuffle`` inside reshuffles
deterministically from ``(seed, epoch)`` (see ``_info``).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._checkpoint import not_resumable, shape
from .._errors import item_error
from .._info import Draws, current, entered
from .._position import NotResumable, Saved, after_reordering, tracking
from .._runner import processes, pump
from ._base import Context, InlineSpec, Spec, Stage, StageSpec, Step
from ._length import ENDLESS, nested
from ._nested import Sequential

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .._policy import Failures
    from .._workers._executors import Executors
    from .._workers._options import MapOptions
    from ._length import Length
    from ._rehearsal import Rehearsal


@attrs.define(eq=False)
class _ShuffleStep:
    """tf.data's buffer shuffle: each item leaves at a random place of a full buffer.

    Where the run keeps positions, it knows the input position of each
    slot's item at some draw (``positions``, at draw ``undo_base``) and the
    slot of each draw since: draw ``j`` puts input item ``size + j`` in its
    slot, so replaying them gives the slots at any later draw. Its saved
    state is the slots' positions and the number of draws, and a resumed
    one reads its input again from the oldest slot's item, putting back the
    items still in a slot (``refill``) until it is where it was. Right
    after a sequence source (``read``), it reads just its slots' items, by
    index, and the source goes on from where the shuffle was.
    """

    size: int
    draws: Draws
    #: Items taken.
    seen: int
    buffer: list[Any] = attrs.Factory(list)
    #: The input position of each slot's item after ``undo_base`` draws,
    #: where the run keeps positions; the slot of each draw since.
    positions: list[int] | None = None
    slots: list[int] = attrs.Factory(list)
    undo_base: int = 0
    #: Resuming: the input positions still in a slot, in order, with their
    #: slots, from the ``refilled``-th on; up to ``refill_end``.
    refill: list[tuple[int, int]] | None = None
    refilled: int = 0
    refill_end: int = 0
    #: The source's item at a position, where the shuffle comes right after it.
    read: Callable[[int], Any] | None = None
    done = False
    ends = False

    def process(self, items: list[Any]) -> list[Any]:
        if self.refill is not None:
            items = self._refilled(items)
        buffer, size, positions = self.buffer, self.size, self.positions
        i, n = 0, len(items)
        while len(buffer) < size and i < n:
            buffer.append(items[i])
            if positions is not None:
                positions.append(self.seen + i)
            i += 1
        out: list[Any] = []
        draws = self.draws
        while i < n:
            below = (draws.random if draws.left else draws.next_block()).randrange
            k = min(n - i, draws.left)
            part = items[i : i + k] if i or k < n else items
            if positions is None:
                for x in part:
                    at = below(size)
                    out.append(buffer[at])
                    buffer[at] = x
            else:
                drew = self.slots.append
                for x in part:
                    at = below(size)
                    out.append(buffer[at])
                    buffer[at] = x
                    drew(at)
            i += k
            draws.left -= k
            draws.drawn += k
        self.seen += n
        return out

    def _refilled(self, items: list[Any]) -> list[Any]:
        """Put back the items of ``items`` still in a slot; those after the
        position it was saved at are new."""
        assert self.refill is not None
        refill, buffer, seen = self.refill, self.buffer, self.seen
        if self.read is not None and seen == self.refill_end:  # by index
            for position, slot in refill:
                buffer[slot] = self.read(position)
            self.refill = None
            return items
        take = min(len(items), self.refill_end - seen)
        i, end = self.refilled, seen + take
        while i < len(refill) and refill[i][0] < end:  # the slots' items only
            position, slot = refill[i]
            buffer[slot] = items[position - seen]
            i += 1
        self.refilled = i
        self.seen += take
        if self.seen == self.refill_end:
            self.refill = None
        return items[take:]

    def finish(self) -> list[Any]:
        if self.refill is not None and self.read is not None:
            self._refilled([])
        if self.refill is not None:
            raise NotResumable(
                "a resumed shuffle's input ended before the position it was saved at: "
                "the pipeline before it gives fewer items than when the state was saved"
            )
        rest, self.buffer = self.buffer, []
        self.draws.last().shuffle(rest)
        return rest

    def saved(self, out: int) -> Saved:
        own: dict[str, Any] = {}
        if self.draws.unseeded is not None:
            own["seed"] = self.draws.unseeded
        drawn = min(out, self.draws.drawn)
        if not drawn or self.positions is None:
            return Saved(0, out, own or None)  # still filling: from the start
        positions, base, size = self.positions, self.undo_base, self.size
        if drawn < base:  # its draws before ``base`` are forgotten: walks never go back
            raise NotResumable(f"position {out} is before the earliest one kept")
        for j, at in enumerate(self.slots[: drawn - base], start=base):
            positions[at] = size + j
        del self.slots[: drawn - base]
        self.undo_base = drawn
        own.update(slots=list(positions), drawn=drawn)
        if self.read is not None:
            return Saved(size + drawn, out - drawn, own | {"read": True})
        return Saved(min(positions), out - drawn, own)


@attrs.frozen
class Shuffle(InlineSpec):
    size: int
    seed: int | None
    #: The source it comes right after, if it is the first operator after one.
    source: Spec | None = attrs.field(default=None, eq=False, repr=False)

    def describe(self) -> str:
        return f"shuffle({self.size}" + ("" if self.seed is None else f", seed={self.seed}") + ")"

    def length(self, n: int) -> int:
        return n

    @property
    def unseeded(self) -> bool:  # type: ignore[override]
        return self.seed is None

    def unresumable(self, reordered: str | None) -> str | None:
        return after_reordering(
            reordered,
            ", so the items in the shuffle buffer cannot be found again: "
            "shuffle before it, or make it keep its order (ordered=True)",
        )

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        own = {} if saved is None or saved.own is None else saved.own
        draws = Draws(self.seed, self, own.get("seed"))
        step = _ShuffleStep(self.size, draws, position)
        if tracking():
            step.positions = []
            step.read = self._reader()
        if "slots" in own:
            size = self.size
            slots, drawn = list(own["slots"]), int(own["drawn"])
            draws.skip_to(drawn, lambda r: r.randrange(size))
            step.buffer, step.positions = [None] * len(slots), slots
            order = sorted(range(len(slots)), key=slots.__getitem__)
            step.refill = [(slots[k], k) for k in order]
            step.refill_end, step.undo_base = size + drawn, drawn
            step.read = self._reader() if own.get("read") else None
        return step

    def _reader(self) -> Callable[[int], Any] | None:
        """Its source's item at a position, as a resumed run reads it (see ``reader``)."""
        source = self.source
        read = None if source is None else source.reader()
        if source is None or read is None:
            return None
        label = f"#0 {source.describe()}"

        def again(position: int) -> Any:
            try:
                return read(position)
            except Exception as exc:
                error = item_error(exc, label, position, source=True)
                if error is exc:
                    raise
                raise error from exc

        return again


#: No item yet.
_NONE = object()


@attrs.define(eq=False)
class _ShardStep:
    """Items at positions ``index``, ``index + count``, ...; equalized if asked."""

    index: int
    count: int
    equal: Literal["drop", "pad"] | None
    seen: int = 0
    #: The first ``count`` items: what "pad" repeats.
    first: list[Any] = attrs.Factory(list)
    #: With "drop": this rank's item of an unfinished round.
    round: Any = _NONE
    done = False
    ends = False

    def process(self, items: list[Any]) -> list[Any]:
        index, count, start = self.index, self.count, self.seen
        self.seen += len(items)
        if self.equal == "pad" and len(self.first) < count:
            self.first += items[: count - len(self.first)]
        if self.equal != "drop":
            return items[(index - start) % count :: count]
        # An item leaves once its round is complete, so every rank has one.
        out = []
        for position in range(start, start + len(items)):
            if position % count == index:
                self.round = items[position - start]
            if position % count == count - 1 and self.round is not _NONE:
                out.append(self.round)
                self.round = _NONE
        return out

    def finish(self) -> list[Any]:
        missing = -self.seen % self.count  # the last round's empty places
        if self.equal != "pad" or not missing or not self.first:
            return []
        # As PyTorch's DistributedSampler pads: from the start of the stream.
        place = self.seen % self.count
        if self.index < place:
            return []
        return [self.first[(self.index - place) % len(self.first)]]

    def saved(self, out: int) -> Saved:
        if self.equal == "pad":
            # The padding is made of the first items: read them all again.
            return Saved(0, out)
        # From the start of the round after the last item out: nothing held.
        return Saved(min(out * self.count, self.seen))

    def sources(self, positions: frozenset[int]) -> set[int]:
        if self.equal == "pad":
            raise NotResumable("shard(equal='pad') pads with items it cannot place")
        return {self.index + q * self.count for q in positions}


@attrs.frozen
class Shard(InlineSpec):
    index: int
    count: int
    equal: Literal["drop", "pad"] | None

    def describe(self) -> str:
        extra = "" if self.equal is None else f", equal={self.equal!r}"
        return f"shard({self.index}, {self.count}{extra})"

    def unresumable(self, reordered: str | None) -> str | None:
        return after_reordering(
            reordered, ", so which items fall to this shard would change: shard before it"
        )

    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        return _ShardStep(self.index, self.count, self.equal, position)

    def length(self, n: int) -> int:
        if self.equal == "drop":
            return n // self.count  # complete rounds
        if self.equal == "pad":
            return -(-n // self.count)  # rounds, the last one completed
        return max(0, -(-(n - self.index) // self.count))


@attrs.frozen
class Repeat(StageSpec):
    """The pipeline ``specs``, run ``times`` times (``None``: for ever), epoch by epoch."""

    specs: tuple[Spec, ...]
    times: int | None

    def describe(self) -> str:
        inner = ".".join(spec.describe() for spec in self.specs)
        return f"{inner}.repeat({'' if self.times is None else self.times})"

    @property
    def advice(self) -> str:
        return self.specs[0].advice  # a source's, as a rule

    def processes(self) -> list[tuple[MapOptions, int | None]]:
        return processes(self.specs)

    def length(self, n: int) -> Length:
        if not self.times:  # 0 times, or for ever: whatever its pipeline holds
            return 0 if self.times == 0 else ENDLESS
        once = nested(self.specs)
        return ENDLESS if once is ENDLESS else once * self.times

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        return Repeat(rehearsal.specs(self.specs), self.times)

    def build(self, context: Context) -> Stage:
        return _RepeatStage(self.specs, self.times, context.executors, context.saved)

    def shape(self) -> str:
        inner = ".".join(shape(self.specs))
        return f"{inner}.repeat({'' if self.times is None else self.times})"

    def reorders(self) -> bool:
        return any(spec.reorders() for spec in self.specs)

    def inner(self) -> tuple[tuple[Spec, ...], ...]:
        return (self.specs,)

    def unresumable(self, reordered: str | None) -> str | None:
        return not_resumable(self.specs)


class _RepeatStage:
    """Its pipeline's passes one after another; where it stood is the pass and
    where that pass stood (see ``_nested.Sequential``)."""

    failures: Failures | None = None  # never skips

    def __init__(
        self, specs: Sequence[Spec], times: int | None, executors: Executors, saved: Sequence[Saved]
    ) -> None:
        self._specs = specs
        self._times = times
        self._executors = executors  # every epoch runs on the run's workers
        self._passes = Sequential(saved)

    def saved(self, out: int) -> list[Saved]:
        return self._passes.saved(out)

    async def run(self, inbox: Any, outbox: Any) -> None:
        passes = self._passes
        first = passes.first
        epochs = itertools.count(first) if self._times is None else range(first, self._times)
        run = current()
        assert run is not None, "a run sets its epoch before its stages start"

        async def deliver(chunk: list[Any]) -> None:
            passes.out += len(chunk)
            await outbox.emit(chunk)

        for i in epochs:
            inner = passes.begin(i, self._specs)
            with entered(run.repeated(i, self._times)):
                await pump(
                    self._specs, self._executors, deliver, lambda: outbox.done,
                    resume=inner.resume, opened=inner.opened,
                )  # fmt: skip
            if outbox.done:
                return
