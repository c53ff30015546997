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

from .._info import current, entered, seeded
from .._runner import processes, pump
from ._base import Context, InlineSpec, Spec, Stage, StageSpec, Step
from ._length import ENDLESS, nested

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from .._policy import Failures
    from .._workers._executors import Executors
    from .._workers._options import MapOptions
    from ._length import Length


@attrs.define(eq=False)
class _ShuffleStep:
    """tf.data's buffer shuffle: each item leaves at a random place of a full buffer."""

    size: int
    random: random.Random
    buffer: list[Any] = attrs.Factory(list)
    done = False
    ends = False

    def process(self, items: list[Any]) -> list[Any]:
        out = []
        buffer, size, below = self.buffer, self.size, self.random.randrange
        for x in items:
            if len(buffer) < size:
                buffer.append(x)
                continue
            at = below(size)
            out.append(buffer[at])
            buffer[at] = x
        return out

    def finish(self) -> list[Any]:
        rest, self.buffer = self.buffer, []
        self.random.shuffle(rest)
        return rest


@attrs.frozen
class Shuffle(InlineSpec):
    size: int
    seed: int | None

    def describe(self) -> str:
        return f"shuffle({self.size}" + ("" if self.seed is None else f", seed={self.seed}") + ")"

    def length(self, n: int) -> int:
        return n

    def step(self, label: str, position: int = 0) -> Step:
        return _ShuffleStep(self.size, seeded(self.seed))


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


@attrs.frozen
class Shard(InlineSpec):
    index: int
    count: int
    equal: Literal["drop", "pad"] | None

    def describe(self) -> str:
        extra = "" if self.equal is None else f", equal={self.equal!r}"
        return f"shard({self.index}, {self.count}{extra})"

    def step(self, label: str, position: int = 0) -> Step:
        return _ShardStep(self.index, self.count, self.equal)

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

    def build(self, context: Context) -> Stage:
        return _RepeatStage(self.specs, self.times, context.executors)


class _RepeatStage:
    failures: Failures | None = None  # never skips

    def __init__(self, specs: Sequence[Spec], times: int | None, executors: Executors) -> None:
        self._specs = specs
        self._times = times
        self._executors = executors  # every epoch runs on the run's workers

    async def run(self, inbox: Any, outbox: Any) -> None:
        epochs = itertools.count() if self._times is None else range(self._times)
        run = current()
        assert run is not None, "a run sets its epoch before its stages start"
        for i in epochs:
            with entered(run.repeated(i, self._times)):
                await pump(self._specs, self._executors, outbox.emit, lambda: outbox.done)
            if outbox.done:
                return
