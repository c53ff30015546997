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

from .._checkpoint import not_resumable, shape
from .._chunking import MAX_CHUNK, Inbox, Outbox
from .._info import Draws
from .._nursery import open_nursery
from .._position import Marks, Saved, dropped, tracking
from .._runner import open_inner, processes, pump
from ._base import Context, Spec, Stage, StageSpec
from ._length import ENDLESS, Unknown, nested
from ._nested import Inner, Sequential

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._policy import Failures
    from .._receiver import PipelineReceiver
    from .._workers._options import MapOptions
    from ._length import Length
    from ._rehearsal import Rehearsal

Pipelines = tuple[tuple[Spec, ...], ...]


def _inner(pipelines: Pipelines) -> str:
    return ", ".join(".".join(spec.describe() for spec in specs) for specs in pipelines)


class _Combining(StageSpec):
    """A source made of other pipelines: their process maps are the run's."""

    __slots__ = ()
    pipelines: Pipelines

    def processes(self) -> list[tuple[MapOptions, int | None]]:
        return [wanted for specs in self.pipelines for wanted in processes(specs)]

    def shape(self) -> str:
        inner = ", ".join(".".join(shape(specs)) for specs in self.pipelines)
        return f"{self.describe().partition('(')[0]}({inner})"

    def reorders(self) -> bool:
        return any(spec.reorders() for specs in self.pipelines for spec in specs)

    def inner(self) -> tuple[tuple[Spec, ...], ...]:
        return self.pipelines

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        pipelines = tuple(map(rehearsal.specs, self.pipelines))
        return attrs.evolve(self, pipelines=pipelines)  # type: ignore[misc]  # each kind is

    def unresumable(self, reordered: str | None) -> str | None:
        whys = (not_resumable(specs) for specs in self.pipelines)
        return next((why for why in whys if why is not None), None)

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
    """A stage made of other pipelines, run on the run's executors; it never skips items.

    ``inner`` are its pipelines, resumed from ``saved`` (see ``_nested``).
    """

    failures: Failures | None = None

    def __init__(self, pipelines: Pipelines, context: Context) -> None:
        self.pipelines = pipelines
        self.executors = context.executors
        own = context.saved[0].own if context.saved else None
        self.own: dict[str, Any] = own or {}
        each = self.own.get("pipelines") or [None] * len(pipelines)
        self.inner = [Inner(specs, data) for specs, data in zip(pipelines, each, strict=True)]
        self.out = context.saved[0].first if context.saved else 0

    async def open_all(self, stack: contextlib.AsyncExitStack) -> list[PipelineReceiver[Any]]:
        """Every pipeline running, on ``stack``."""
        opened = []
        for inner in self.inner:
            running = open_inner(inner.specs, None, executors=self.executors, resume=inner.resume)
            items = await stack.enter_async_context(running)
            inner.opened(items)
            opened.append(items)
        return opened

    def each_at(self, counts: Sequence[int]) -> list[dict[str, Any]]:
        """Where each pipeline stood once it had given ``counts[k]`` items."""
        return [inner.saved(q) for inner, q in zip(self.inner, counts, strict=True)]


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
        return _ConcatStage(self.pipelines, context)


class _ConcatStage:
    """Its pipelines one after another (positions: ``_nested.Sequential``)."""

    failures: Failures | None = None

    def __init__(self, pipelines: Pipelines, context: Context) -> None:
        self._pipelines = pipelines
        self._executors = context.executors
        self._sequential = Sequential(context.saved)

    def saved(self, out: int) -> list[Saved]:
        return self._sequential.saved(out)

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        sequential = self._sequential

        async def deliver(chunk: list[Any]) -> None:
            sequential.out += len(chunk)
            await outbox.emit(chunk)

        for k in range(sequential.first, len(self._pipelines)):
            inner = sequential.begin(k, self._pipelines[k])
            await pump(
                inner.specs, self._executors, deliver, lambda: outbox.done,
                resume=inner.resume, opened=inner.opened,
            )  # fmt: skip
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
        return _ZipStage(self.pipelines, context)


class _ZipStage(_Combined):
    """In lockstep: once it has yielded ``out`` tuples, each pipeline had given ``out`` items."""

    def saved(self, out: int) -> list[Saved]:
        return [Saved(out, own={"pipelines": self.each_at([out] * len(self.inner))})]

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

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        pipelines = tuple(map(rehearsal.specs, self.pipelines))
        # One after the other, as a plain loop over them would give them.
        return Concat(pipelines) if rehearsal.sequential else Merge(pipelines)

    def length(self, n: int) -> Length:
        return self._sum()

    def build(self, context: Context) -> Stage:
        return _MergeStage(self.pipelines, context)

    def reorders(self) -> bool:
        return True


class _MergeStage(_Combined):
    """Chunks as they come, each from one pipeline: before each leaves it
    marks how many items each pipeline had given and which one it is from."""

    def __init__(self, pipelines: Pipelines, context: Context) -> None:
        super().__init__(pipelines, context)
        self._counts = [inner.start for inner in self.inner]
        self._marks: Marks[tuple[tuple[int, ...], int]] | None = None
        if tracking():
            self._marks = Marks(self.out, (tuple(self._counts), 0))

    def saved(self, out: int) -> list[Saved]:
        assert self._marks is not None
        first, (counts, k) = self._marks.find(out)
        at = list(counts)
        at[k] += out - first
        return [Saved(out, own={"pipelines": self.each_at(at)})]

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        send, receive = trio.open_memory_channel[tuple[int, list[Any]]](len(self.inner) or 1)
        async with open_nursery() as nursery:
            with send:
                for k, inner in enumerate(self.inner):
                    nursery.start_soon(self._forward, k, inner, send.clone())
            with receive:
                async for k, chunk in receive:
                    if self._marks is not None:
                        self._marks.add(self.out, (tuple(self._counts), k))
                    self._counts[k] += len(chunk)
                    self.out += len(chunk)
                    await outbox.emit(chunk)
                    if outbox.done:
                        break
            nursery.cancel_scope.cancel()

    async def _forward(
        self, k: int, inner: Inner, send: trio.MemorySendChannel[tuple[int, list[Any]]]
    ) -> None:
        async def tagged(chunk: list[Any]) -> None:
            await send.send((k, chunk))

        with send:
            await pump(
                inner.specs, self.executors, tagged, resume=inner.resume, opened=inner.opened
            )


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
        return _MixStage(self, context)

    @property
    def unseeded(self) -> bool:  # type: ignore[override]
        return self.seed is None

    def weights_of(self, active: Sequence[int]) -> list[float] | None:
        """The weights of the ``active`` pipelines; ``None`` once all are 0:
        their items come last, each of them equally likely."""
        weights = [self.weights[k] for k in active]
        return weights if any(weights) else None


class _MixStage(_Combined):
    """Each item from a pipeline drawn at random by weight (seeded, so repeatable).

    After each chunk it hands over, it marks how many items it had taken
    from each pipeline, its draws and the pipelines still drawn from; a
    resumed one draws again from the last mark and drops what it yields
    again.
    """

    def __init__(self, spec: Mix, context: Context) -> None:
        super().__init__(spec.pipelines, context)
        self.spec = spec
        own = self.own
        self.draws = Draws(spec.seed, spec, own.get("seed"))
        self.draws.skip_to(int(own.get("drawn", 0)), lambda r: r.random())
        self.active = list(own.get("active", range(len(spec.pipelines))))
        self.counts = [inner.start for inner in self.inner]
        self.drop = context.saved[0].skip if context.saved else 0
        self._marks: Marks[tuple[tuple[int, ...], int, tuple[int, ...]]] | None = None
        if tracking():
            self._marks = Marks(self.out, self._mark())
        # A pipeline that reorders items gives others when resumed: its items
        # are marked one by one, so that no item is dropped as made again.
        self._each = self._marks is not None and spec.reorders()

    def _mark(self, pending: int = 0) -> tuple[tuple[int, ...], int, tuple[int, ...]]:
        return tuple(self.counts), self.draws.drawn - pending, tuple(self.active)

    def saved(self, out: int) -> list[Saved]:
        assert self._marks is not None
        first, (counts, drawn, active) = self._marks.find(out)
        own: dict[str, Any] = {"drawn": drawn, "active": list(active)}
        if self.draws.unseeded is not None:
            own["seed"] = self.draws.unseeded
        own["pipelines"] = self.each_at(counts)
        return [Saved(first, out - first, own)]

    async def _emit(self, out: list[Any], outbox: Outbox, pending: int = 0) -> None:
        """Hand ``out`` over; ``pending``: a draw whose item is not in it yet."""
        self.out += len(out)
        if self._marks is not None:
            self._marks.add(self.out, self._mark(pending))
        if self.drop:
            out, self.drop = dropped(out, self.drop)
        await outbox.emit(out)

    def _draw(self, weights: list[float] | None) -> int:
        draws = self.draws
        generator = draws.random if draws.left else draws.next_block()
        draws.left -= 1
        draws.drawn += 1
        k: int = generator.choices(self.active, weights)[0]
        return k

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        spec, active, counts = self.spec, self.active, self.counts
        async with contextlib.AsyncExitStack() as stack:
            streams = await self.open_all(stack)
            held: list[list[Any]] = [[] for _ in streams]
            weights = spec.weights_of(active)
            out: list[Any] = []
            while active and not outbox.done:
                k = self._draw(weights)
                if not held[k]:
                    if out:  # hand over what is ready before waiting for more
                        await self._emit(out, outbox, pending=1)
                        out = []
                    try:
                        held[k] = (await streams[k].receive_chunk())[::-1]
                    except trio.EndOfChannel:
                        if spec.stop == "first_exhausted":
                            break
                        active.remove(k)
                        weights = spec.weights_of(active)
                        continue
                out.append(held[k].pop())
                counts[k] += 1
                if self._each:
                    assert self._marks is not None
                    self._marks.add(self.out + len(out), self._mark())
                if len(out) >= MAX_CHUNK:
                    await self._emit(out, outbox)
                    out = []
            if out and not outbox.done:
                await self._emit(out, outbox)
