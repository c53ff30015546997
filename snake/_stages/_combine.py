"""``concat``, ``zip`` and ``merge``: sources made of other pipelines.

Each runs its pipelines nested in its own task, so each keeps its own
stages, buffers and workers, and stopping the combined pipeline stops them
all. ``concat`` runs them one after another, ``zip`` together in lockstep
(stopping at the shortest, as Python's ``zip``), ``merge`` together,
passing items on as they come (completion order).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from .._chunking import MAX_CHUNK, Outbox
from .._nursery import open_nursery
from .._policy import Failures
from .._validate import func_name
from ._base import Context, Spec, Stage, StageSpec


async def pump(
    specs: Sequence[Spec],
    deliver: Callable[[list[Any]], Awaitable[None]],
    done: Callable[[], bool] = lambda: False,
) -> None:
    """Run the pipeline ``specs``, each chunk to ``deliver``, until it ends or ``done()``."""
    from .._runner import open_pipeline  # the runner imports the stages

    async with open_pipeline(specs) as items:
        while not done():
            try:
                chunk = await items._receive_chunk()
            except trio.EndOfChannel:
                return
            await deliver(chunk)


async def forward(specs: Sequence[Spec], send: trio.MemorySendChannel[list[Any]]) -> None:
    """Run the pipeline ``specs`` into ``send``, and close it at the end."""
    with send:
        await pump(specs, send.send)


def _inner(pipelines: Sequence[tuple[Spec, ...]]) -> str:
    return ", ".join(".".join(spec.describe() for spec in specs) for specs in pipelines)


@attrs.frozen
class Combine(StageSpec):
    how: str  # "concat", "zip", "merge" or "mix"
    pipelines: tuple[tuple[Spec, ...], ...]
    #: For "mix": the weights, the seed, and when to stop.
    weights: tuple[float, ...] = ()
    seed: int | None = None
    stop: str = "first_exhausted"

    def describe(self) -> str:
        if self.how == "mix":
            return f"mix([{_inner(self.pipelines)}], {list(self.weights)})"
        return f"{self.how}({_inner(self.pipelines)})"

    def build(self, context: Context) -> Stage:
        return _CombineStage(self)


class _CombineStage:
    failures: Failures | None = None  # never skips

    def __init__(self, spec: Combine) -> None:
        self._spec = spec

    async def run(self, inbox: Any, outbox: Outbox) -> None:
        await getattr(self, f"_{self._spec.how}")(outbox)

    async def _concat(self, outbox: Outbox) -> None:
        for specs in self._spec.pipelines:
            await pump(specs, outbox.emit, lambda: outbox.done)
            if outbox.done:
                return

    async def _open_all(self, stack: contextlib.AsyncExitStack) -> list[Any]:
        """Every pipeline running, on ``stack``: for ``zip`` and ``mix``."""
        from .._runner import open_pipeline  # the runner imports the stages

        return [await stack.enter_async_context(open_pipeline(s)) for s in self._spec.pipelines]

    async def _zip(self, outbox: Outbox) -> None:
        if not self._spec.pipelines:
            return
        async with contextlib.AsyncExitStack() as stack:
            streams = await self._open_all(stack)
            held: list[list[Any]] = [[] for _ in streams]
            while not outbox.done:
                for k, items in enumerate(streams):
                    if not held[k]:
                        try:
                            held[k] = await items._receive_chunk()
                        except trio.EndOfChannel:
                            return  # the shortest has ended
                n = min(map(len, held))
                await outbox.emit(list(zip(*(h[:n] for h in held), strict=True)))
                held = [h[n:] for h in held]

    async def _mix(self, outbox: Outbox) -> None:
        """Each item from a pipeline drawn at random by weight (seeded, so repeatable)."""
        spec = self._spec
        draw = random.Random(spec.seed).choices
        async with contextlib.AsyncExitStack() as stack:
            streams = await self._open_all(stack)
            held: list[list[Any]] = [[] for _ in streams]
            active = list(range(len(streams)))
            weights = list(spec.weights)
            out: list[Any] = []
            while active and not outbox.done:
                k = draw(active, weights)[0]
                if not held[k]:
                    if out:  # hand over what is ready before waiting for more
                        await outbox.emit(out)
                        out = []
                    try:
                        held[k] = (await streams[k]._receive_chunk())[::-1]
                    except trio.EndOfChannel:
                        if spec.stop == "first_exhausted":
                            break
                        at = active.index(k)
                        del active[at], weights[at]
                        continue
                out.append(held[k].pop())
                if len(out) >= MAX_CHUNK:
                    await outbox.emit(out)
                    out = []
            if out and not outbox.done:
                await outbox.emit(out)

    async def _merge(self, outbox: Outbox) -> None:
        send, receive = trio.open_memory_channel[list[Any]](len(self._spec.pipelines) or 1)
        async with open_nursery() as nursery:
            with send:
                for specs in self._spec.pipelines:
                    nursery.start_soon(forward, specs, send.clone())
            with receive:
                async for chunk in receive:
                    await outbox.emit(chunk)
                    if outbox.done:
                        break
            nursery.cancel_scope.cancel()


@attrs.frozen
class Interleave(StageSpec):
    """``fn(x)`` for each input item is a pipeline; up to ``cycle`` of them run at once."""

    fn: Callable[[Any], Any]
    cycle: int
    block: int
    ordered: bool

    def describe(self) -> str:
        return f"interleave({func_name(self.fn)})"

    def build(self, context: Context) -> Stage:
        return _InterleaveStage(self)


class _InterleaveStage:
    """tf.data's interleave, one task per open sub-pipeline.

    Ordered: slot by slot in turn, ``block`` items from each; a sub-pipeline
    that ends gives its slot to the next input item's, which takes its
    first turn on the next round. Unordered: items as they come, from
    whichever slot has some.
    """

    failures: Failures | None = None  # never skips

    def __init__(self, spec: Interleave) -> None:
        self._spec = spec

    async def run(self, inbox: Any, outbox: Outbox) -> None:
        assert inbox is not None
        spec = self._spec
        pending: list[Any] = []  # input items not opened yet

        async def next_item() -> tuple[bool, Any]:
            while not pending:
                chunk = await inbox.next()
                if chunk is None:
                    return False, None
                pending.extend(reversed(chunk))
            return True, pending.pop()

        async with open_nursery() as nursery:

            async def open_slot() -> _Slot | None:
                more, item = await next_item()
                if not more:
                    return None
                return _Slot(nursery, _as_pipeline(spec.fn(item), spec.fn))

            slots: list[_Slot | None] = []
            for _ in range(spec.cycle):
                slot = await open_slot()
                if slot is None:
                    break
                slots.append(slot)
            if spec.ordered:
                await self._in_turn(slots, open_slot, outbox)
            else:
                await self._as_they_come(slots, open_slot, outbox)
            nursery.cancel_scope.cancel()

    async def _in_turn(self, slots: list[_Slot | None], open_slot: Any, outbox: Outbox) -> None:
        block = self._spec.block
        at = 0
        while any(slots) and not outbox.done:
            slot = slots[at]
            if slot is not None:
                taken = await slot.take(block)
                if taken:
                    await outbox.emit(taken)
                if len(taken) < block:  # it ended: the next input item takes its place
                    slots[at] = await open_slot()
            at = (at + 1) % len(slots)

    async def _as_they_come(
        self, slots: list[_Slot | None], open_slot: Any, outbox: Outbox
    ) -> None:
        # Unbuffered: a relay waits until its chunk is taken, so a
        # sub-pipeline runs ahead of the consumer only by its own buffers.
        ready_send, ready_recv = trio.open_memory_channel[tuple[int, list[Any] | None]](0)
        for k, slot in enumerate(slots):
            if slot is not None:
                slot.notify(k, ready_send)
        live = sum(s is not None for s in slots)
        while live and not outbox.done:
            k, chunk = await ready_recv.receive()
            if chunk is not None:
                await outbox.emit(chunk)
                continue
            live -= 1
            slot = await open_slot()
            if slot is not None:
                slot.notify(k, ready_send)
                live += 1


class _Slot:
    """One sub-pipeline, run by a task of its own, its chunks in a channel."""

    def __init__(self, nursery: trio.Nursery, pipeline: Any) -> None:
        self._send, self._recv = trio.open_memory_channel[list[Any]](1)
        self._held: list[Any] = []
        self._ended = False
        self._nursery = nursery
        nursery.start_soon(forward, pipeline._specs, self._send)

    async def take(self, n: int) -> list[Any]:
        """Up to ``n`` items; fewer once the sub-pipeline has ended."""
        while len(self._held) < n and not self._ended:
            try:
                self._held += await self._recv.receive()
            except trio.EndOfChannel:
                self._ended = True
        taken, self._held = self._held[:n], self._held[n:]
        return taken

    def notify(self, k: int, ready: trio.MemorySendChannel[tuple[int, list[Any] | None]]) -> None:
        """Pass every chunk on to ``ready`` as ``(k, chunk)``, then ``(k, None)``."""

        async def relay() -> None:
            async for chunk in self._recv:
                await ready.send((k, chunk))
            await ready.send((k, None))

        self._nursery.start_soon(relay)


def _as_pipeline(value: Any, fn: Any) -> Any:
    if hasattr(value, "_specs"):
        return value
    from .._pipeline import from_iterable

    try:
        return from_iterable(value)
    except TypeError:
        raise TypeError(
            f"interleave() needs {func_name(fn)} to return a pipeline or an iterable, "
            f"got {type(value).__name__} {value!r}"
        ) from None
