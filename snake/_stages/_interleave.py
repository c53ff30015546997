"""``interleave``: items of a pipeline per input item, several of them read at once.

tf.data's parallel interleave: ``fn`` turns each input item (a file name, a
shard) into a pipeline (or an iterable) of its records, and up to ``cycle``
of them run at once, each nested in a task of its own (``_runner.forward``)
with its own stages. Ordered, they take turns, ``block`` items each;
unordered, items pass on as they come. Buffering: up to two chunks per open
pipeline. On cancel or error, every open pipeline is stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._errors import carried
from .._nursery import open_nursery
from .._runner import forward
from .._validate import func_name
from ._base import Context, Spec, Stage, StageSpec
from ._length import Unknown
from ._source import IterableSource

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._chunking import Outbox
    from .._policy import Failures
    from .._position import Saved
    from .._workers._executors import Executors


@attrs.frozen
class Interleave(StageSpec):
    """``fn(x)`` for each input item is a pipeline; up to ``cycle`` of them run at once."""

    fn: Callable[[Any], Any]
    cycle: int
    block: int
    ordered: bool

    def describe(self) -> str:
        return f"interleave({func_name(self.fn)})"

    def length(self, n: int) -> int:
        raise Unknown("yields as many items as the pipelines fn returns hold")

    def reorders(self) -> bool:
        return not self.ordered

    def unresumable(self, reordered: str | None) -> str | None:
        return (
            "cannot save its position yet: run the pipelines fn returns with "
            "snake.concat() (in turn) or snake.merge() (as they come), which can"
        )

    def build(self, context: Context) -> Stage:
        return _InterleaveStage(self, context.executors)


class _InterleaveStage:
    """tf.data's interleave, one task per open sub-pipeline.

    Ordered: slot by slot in turn, ``block`` items from each; a sub-pipeline
    that ends gives its slot to the next input item's, which takes its
    first turn on the next round. Unordered: items as they come, from
    whichever slot has some.
    """

    failures: Failures | None = None  # never skips

    def __init__(self, spec: Interleave, executors: Executors) -> None:
        self._spec = spec
        self._executors = executors  # the sub-pipelines run on the run's workers

    def saved(self, out: int) -> list[Saved]:
        raise AssertionError("a run with interleave keeps no positions")

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
                try:
                    value = spec.fn(item)
                except ExceptionGroup as group:  # the user's own, kept as raised
                    raise carried(group) from group
                return _Slot(nursery, _specs_of(value, spec.fn), self._executors)

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

    def __init__(
        self, nursery: trio.Nursery, specs: tuple[Spec, ...], executors: Executors
    ) -> None:
        self._send, self._recv = trio.open_memory_channel[list[Any]](1)
        self._held: list[Any] = []
        self._ended = False
        self._nursery = nursery
        nursery.start_soon(forward, specs, executors, self._send)

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


def _specs_of(value: Any, fn: Callable[[Any], Any]) -> tuple[Spec, ...]:
    """The operators of the pipeline ``fn`` returned, or of a source of the iterable it did."""
    specs = getattr(value, "_specs", None)
    if specs is not None:
        return specs  # type: ignore[no-any-return]
    if any(hasattr(value, a) for a in ("__iter__", "__aiter__", "__getitem__")):
        return (IterableSource(value),)
    raise TypeError(
        f"interleave() needs {func_name(fn)} to return a pipeline or an iterable, "
        f"got {type(value).__name__} {value!r}"
    )
