"""``interleave``: items of a pipeline per input item, several of them read at once.

tf.data's parallel interleave: ``fn`` turns each input item (a file name, a
shard) into a pipeline (or an iterable) of its records, and up to ``cycle``
of them run at once, each nested in a task of its own (``_runner.forward``)
with its own stages. Ordered, they take turns, ``block`` items each;
unordered, items pass on as they come. Buffering: up to two chunks per open
pipeline. On cancel or error, every open pipeline is stopped.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._errors import carried
from .._nursery import open_nursery
from .._position import Marks, NotResumable, Saved, after_reordering, dropped, tracking
from .._runner import forward
from .._validate import func_name
from ._base import Context, Spec, Stage, StageSpec
from ._length import Unknown
from ._nested import Inner
from ._source import IterableSource

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._chunking import Outbox
    from .._policy import Failures
    from .._workers._executors import Executors
    from ._base import Spec
    from ._rehearsal import Rehearsal


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
        return after_reordering(
            reordered,
            ": the items its open pipelines were made of could not be found again; "
            "interleave before it, or keep that order (ordered=True)",
        )

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        fn, ordered = rehearsal.opening(self.fn), self.ordered or rehearsal.sequential
        return attrs.evolve(self, fn=fn, ordered=ordered)

    def build(self, context: Context) -> Stage:
        return _InterleaveStage(self, context)


class _InterleaveStage:
    """tf.data's interleave, one task per open sub-pipeline.

    Ordered: slot by slot in turn, ``block`` items from each; a sub-pipeline
    that ends gives its slot to the next input item's, which takes its
    first turn on the next round. Unordered: items as they come, from
    whichever slot has some.

    Positions: before each turn (ordered) or chunk (unordered) it marks the
    input items it has read, and for each slot its item's position and the
    items taken from its pipeline (see ``_nested.Inner``). A resumed one
    reads its input again from the oldest open slot's item, opens the saved
    slots' items where they were, skips the ones that had ended, and drops
    what it yields again (ordered; unordered, its marks are exact).
    """

    failures: Failures | None = None  # never skips

    def __init__(self, spec: Interleave, context: Context) -> None:
        self._spec = spec
        self._executors = context.executors  # the sub-pipelines run on the run's workers
        saved = context.saved[0] if context.saved else None
        self._resumed: dict[str, Any] | None = None if saved is None else saved.own
        self._read = 0 if saved is None else saved.at  # input items read
        self._out = self._first = 0 if saved is None else saved.first
        self._drop = 0 if saved is None else saved.skip
        self._marks: Marks[tuple[Any, ...]] | None = None
        #: Where it started: until its first item out, that says where it stands.
        self._start = self._snapshot([], 0)
        if tracking():
            self._marks = Marks(self._out, self._start)

    def _snapshot(self, slots: list[_Slot | None], at: int, k: int = 0) -> tuple[Any, ...]:
        if self._resumed is not None:  # where it resumes
            return ("resumed", self._resumed)
        kept = tuple(None if s is None else (s.position, s.taken, s.inner) for s in slots)
        return (self._read, at, k, kept)

    def saved(self, out: int) -> list[Saved]:
        assert self._marks is not None
        first, snapshot = (out, self._start) if out == self._first else self._marks.find(out)
        if snapshot[0] == "resumed":
            own = snapshot[1]
            oldest = min([s["item"] for s in own["slots"] if s] + [own["read"]])
            return [Saved(oldest, out - first, own)]
        read, at, k, kept = snapshot
        if not kept:  # no slot opened yet: from there, afresh
            return [Saved(read, out - first)]
        slots: list[dict[str, Any] | None] = []
        for j, slot in enumerate(kept):
            if slot is None:
                slots.append(None)
                continue
            position, taken, inner = slot
            if not self._spec.ordered and j == k:
                taken += out - first  # a chunk of it, partly out: exactly
            slots.append({"item": position, **inner.saved(taken)})
        oldest = min([s["item"] for s in slots if s] + [read])
        skip = out - first if self._spec.ordered else 0
        return [Saved(oldest, skip, {"read": read, "at": at, "slots": slots})]

    def _mark(self, slots: list[_Slot | None], at: int, k: int = 0) -> None:
        if self._marks is not None:
            self._marks.add(self._out, self._snapshot(slots, at, k))

    async def _emit(self, items: list[Any], outbox: Outbox) -> None:
        self._out += len(items)
        if self._drop:
            items, self._drop = dropped(items, self._drop)
        await outbox.emit(items)

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
            self._read += 1
            return True, pending.pop()

        async with open_nursery() as nursery:

            def slot_of(item: Any, data: Any = None) -> _Slot:
                try:
                    value = spec.fn(item)
                except ExceptionGroup as group:  # the user's own, kept as raised
                    raise carried(group) from group
                specs = _specs_of(value, spec.fn)
                return _Slot(nursery, self._read - 1, Inner(specs, data), self._executors)

            async def open_slot() -> _Slot | None:
                more, item = await next_item()
                return slot_of(item) if more else None

            slots, at = await self._reopened(next_item, slot_of, open_slot)
            if spec.ordered:
                await self._in_turn(slots, at, open_slot, outbox)
            else:
                await self._as_they_come(slots, open_slot, outbox)
            nursery.cancel_scope.cancel()

    async def _reopened(
        self, next_item: Any, slot_of: Any, open_slot: Any
    ) -> tuple[list[_Slot | None], int]:
        """The slots to start with: the first ``cycle`` items', or a resumed run's."""
        own, self._resumed = self._resumed, None
        slots: list[_Slot | None] = []
        if own is None:
            for _ in range(self._spec.cycle):
                slot = await open_slot()
                if slot is None:
                    break
                slots.append(slot)
            return slots, 0
        wanted = {data["item"]: (k, data) for k, data in enumerate(own["slots"]) if data}
        slots = [None] * len(own["slots"])
        while self._read < own["read"]:
            more, item = await next_item()
            if not more:
                raise NotResumable(
                    "a resumed interleave's input ended before the position it was saved "
                    "at: the pipeline before it gives fewer items than when it was saved"
                )
            if self._read - 1 in wanted:
                k, data = wanted[self._read - 1]
                slots[k] = slot_of(item, data)
        return slots, int(own["at"])

    async def _in_turn(
        self, slots: list[_Slot | None], at: int, open_slot: Any, outbox: Outbox
    ) -> None:
        block = self._spec.block
        while any(slots) and not outbox.done:
            self._mark(slots, at)
            slot = slots[at]
            if slot is not None:
                taken = await slot.take(block)
                if taken:
                    await self._emit(taken, outbox)
                if len(taken) < block:  # it ended: the next input item takes its place
                    slots[at] = await open_slot()
            at = (at + 1) % len(slots)
        self._mark(slots, at)

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
                self._mark(slots, 0, k)
                slot = slots[k]
                assert slot is not None
                slot.taken += len(chunk)
                await self._emit(chunk, outbox)
                continue
            live -= 1
            slots[k] = slot = await open_slot()
            if slot is not None:
                slot.notify(k, ready_send)
                live += 1
        self._mark(slots, 0)


class _Slot:
    """One sub-pipeline, run by a task of its own, its chunks in a channel;
    the position of the input item it is of, and the items taken from it."""

    def __init__(
        self, nursery: trio.Nursery, position: int, inner: Inner, executors: Executors
    ) -> None:
        self._send, self._recv = trio.open_memory_channel[list[Any]](1)
        self._held: list[Any] = []
        self._ended = False
        self._nursery = nursery
        self.position = position
        self.inner = inner
        self.taken = inner.start
        nursery.start_soon(functools.partial(
            forward, inner.specs, executors, self._send, resume=inner.resume, opened=inner.opened
        ))  # fmt: skip

    async def take(self, n: int) -> list[Any]:
        """Up to ``n`` items; fewer once the sub-pipeline has ended."""
        while len(self._held) < n and not self._ended:
            try:
                self._held += await self._recv.receive()
            except trio.EndOfChannel:
                self._ended = True
        taken, self._held = self._held[:n], self._held[n:]
        self.taken += len(taken)
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
