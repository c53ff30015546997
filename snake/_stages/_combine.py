"""``concat``, ``zip``, ``merge`` and ``mix``: sources made of other pipelines.

Each runs its pipelines nested in its own task (``_runner.pump``), so each
keeps its own stages and buffers, on the run's worker processes and CPU
budget, and stopping the combined pipeline stops them all. ``concat`` runs
them one after another, ``zip`` together in lockstep (stopping at the
shortest, as Python's ``zip``), ``merge`` together, passing items on as
they come (completion order), and ``mix`` together, drawing each item from
one of them at random, by weight.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from .._chunking import MAX_CHUNK, Inbox, Outbox
from .._info import seeded
from .._nursery import open_nursery
from .._runner import forward, open_inner, processes, pump
from ._base import Context, Spec, Stage, StageSpec
from ._length import ENDLESS, Unknown, nested

if TYPE_CHECKING:
    from .._policy import Failures
    from .._receiver import PipelineReceiver
    from .._workers._executors import Executors
    from .._workers._options import MapOptions
    from ._length import Length

Pipelines = tuple[tuple[Spec, ...], ...]


def _inner(pipelines: Pipelines) -> str:
    return ", ".join(".".join(spec.describe() for spec in specs) for specs in pipelines)


class _Combining(StageSpec):
    """A source made of other pipelines: their process maps are the run's."""

    __slots__ = ()
    pipelines: Pipelines

    def processes(self) -> list[tuple[MapOptions, int | None]]:
        return [wanted for specs in self.pipelines for wanted in processes(specs)]

    def _lengths(self) -> tuple[list[int], bool]:
        """Its pipelines' numbers of items, those that end, and whether any does not."""
        each = [nested(specs, k) for k, specs in enumerate(self.pipelines)]
        ends = [n for n in each if n is not ENDLESS]
        return ends, len(ends) < len(each)

    def _sum(self) -> Length:
        """The items of all its pipelines, each run to its end."""
        ends, endless = self._lengths()
        return ENDLESS if endless else sum(ends)


class _Combined:
    """A stage made of other pipelines, run on the run's executors; it never skips items."""

    failures: Failures | None = None

    def __init__(self, pipelines: Pipelines, executors: Executors) -> None:
        self.pipelines = pipelines
        self.executors = executors

    async def open_all(self, stack: contextlib.AsyncExitStack) -> list[PipelineReceiver[Any]]:
        """Every pipeline running, on ``stack``."""
        return [
            await stack.enter_async_context(open_inner(specs, None, executors=self.executors))
            for specs in self.pipelines
        ]


@attrs.frozen
class Concat(_Combining):
    pipelines: Pipelines

    def describe(self) -> str:
        return f"concat({_inner(self.pipelines)})"

    def length(self, n: int) -> Length:
        total = 0
        for k, specs in enumerate(self.pipelines):
            one = nested(specs, k)
            if one is ENDLESS:
                return ENDLESS  # the pipelines after it never run
            total += one
        return total

    def build(self, context: Context) -> Stage:
        return _ConcatStage(self.pipelines, context.executors)


class _ConcatStage(_Combined):
    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        for specs in self.pipelines:
            await pump(specs, self.executors, outbox.emit, lambda: outbox.done)
            if outbox.done:
                return


@attrs.frozen
class Zip(_Combining):
    pipelines: Pipelines

    def describe(self) -> str:
        return f"zip({_inner(self.pipelines)})"

    def length(self, n: int) -> Length:
        ends, endless = self._lengths()
        return min(ends) if ends else ENDLESS if endless else 0

    def build(self, context: Context) -> Stage:
        return _ZipStage(self.pipelines, context.executors)


class _ZipStage(_Combined):
    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        if not self.pipelines:
            return
        async with contextlib.AsyncExitStack() as stack:
            streams = await self.open_all(stack)
            held: list[list[Any]] = [[] for _ in streams]
            while not outbox.done:
                for k, items in enumerate(streams):
                    if not held[k]:
                        try:
                            held[k] = await items.receive_chunk()
                        except trio.EndOfChannel:
                            return  # the shortest has ended
                n = min(map(len, held))
                await outbox.emit(list(zip(*(h[:n] for h in held), strict=True)))
                held = [h[n:] for h in held]


@attrs.frozen
class Merge(_Combining):
    pipelines: Pipelines

    def describe(self) -> str:
        return f"merge({_inner(self.pipelines)})"

    def length(self, n: int) -> Length:
        return self._sum()

    def build(self, context: Context) -> Stage:
        return _MergeStage(self.pipelines, context.executors)


class _MergeStage(_Combined):
    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        pipelines = self.pipelines
        send, receive = trio.open_memory_channel[list[Any]](len(pipelines) or 1)
        async with open_nursery() as nursery:
            with send:
                for specs in pipelines:
                    nursery.start_soon(forward, specs, self.executors, send.clone())
            with receive:
                async for chunk in receive:
                    await outbox.emit(chunk)
                    if outbox.done:
                        break
            nursery.cancel_scope.cancel()


@attrs.frozen
class Mix(_Combining):
    pipelines: Pipelines
    weights: tuple[float, ...]
    seed: int | None
    stop: Literal["first_exhausted", "all_exhausted"]

    def describe(self) -> str:
        return f"mix([{_inner(self.pipelines)}], {list(self.weights)})"

    def length(self, n: int) -> Length:
        if self.stop == "first_exhausted":
            raise Unknown(
                "stops when a pipeline it draws from runs out, which its draws decide; "
                'with stop="all_exhausted" its length is known'
            )
        return self._sum()

    def build(self, context: Context) -> Stage:
        return _MixStage(self, context.executors)


class _MixStage(_Combined):
    """Each item from a pipeline drawn at random by weight (seeded, so repeatable)."""

    def __init__(self, spec: Mix, executors: Executors) -> None:
        super().__init__(spec.pipelines, executors)
        self.spec = spec

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        spec = self.spec
        draw = seeded(spec.seed).choices
        async with contextlib.AsyncExitStack() as stack:
            streams = await self.open_all(stack)
            held: list[list[Any]] = [[] for _ in streams]
            active = list(range(len(streams)))
            weights: list[float] | None = list(spec.weights)
            out: list[Any] = []
            while active and not outbox.done:
                k = draw(active, weights)[0]
                if not held[k]:
                    if out:  # hand over what is ready before waiting for more
                        await outbox.emit(out)
                        out = []
                    try:
                        held[k] = (await streams[k].receive_chunk())[::-1]
                    except trio.EndOfChannel:
                        if spec.stop == "first_exhausted":
                            break
                        at = active.index(k)
                        del active[at]
                        if weights is not None:
                            del weights[at]
                            if not any(weights):
                                # Only pipelines of weight 0 are left: their
                                # items come last, each of them equally likely.
                                weights = None
                        continue
                out.append(held[k].pop())
                if len(out) >= MAX_CHUNK:
                    await outbox.emit(out)
                    out = []
            if out and not outbox.done:
                await outbox.emit(out)
