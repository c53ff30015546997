"""Sources: where a pipeline's items come from.

Ordering: the iterable's. Buffering: one pending chunk. On cancel or error,
a generator or async generator source is closed, so its ``finally`` runs.
A sync iterable is pulled in the event loop's thread, so its ``next()``
must be quick; slow producers belong in an async iterable.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import time
from typing import Any

import attrs
import trio

from .._chunking import LATENCY_BUDGET, Inbox, Outbox, Pacer
from .._errors import add_stage_note
from .._executors import Executors
from ._base import Stage, StageSpec


@attrs.frozen
class IterableSource(StageSpec):
    obj: object

    def describe(self) -> str:
        obj = self.obj
        name = getattr(obj, "__qualname__", None) if inspect.isgenerator(obj) else None
        return f"from_iterable({name or type(obj).__name__})"

    def build(self, label: str, executors: Executors) -> Stage:
        if hasattr(self.obj, "__aiter__"):
            return _AsyncSource(self.obj, label)
        return _SyncSource(self.obj, label)


class _Yielder:
    """Yields to the scheduler when a source has run ``LATENCY_BUDGET`` without.

    A source whose items are all filtered out never sends, so nothing else
    would give other tasks (or a deadline) a turn. Real time, not trio's
    clock: this is about the event loop, not the pipeline's pace.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = time.perf_counter()

    async def tick(self) -> None:
        now = time.perf_counter()
        if now - self._last >= LATENCY_BUDGET:
            self._last = now
            await trio.lowlevel.checkpoint()


class _SyncSource:
    def __init__(self, obj: Any, label: str) -> None:
        self._obj = obj
        self._label = label

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        it = iter(self._obj)
        try:
            await self._pull(it, outbox)
        finally:
            if inspect.isgenerator(it):
                it.close()

    async def _pull(self, it: Any, outbox: Outbox) -> None:
        pacer, now, yielder = Pacer(), outbox.now, _Yielder()
        produced = 0
        while not outbox.done:
            size = pacer.size
            began = now()
            if outbox.due(began, pacer.expected):
                await outbox.flush()
            items: list[Any] = []
            try:
                # On an error, extend() keeps the items it got: they count.
                items.extend(itertools.islice(it, size))
            except Exception as exc:
                add_stage_note(exc, self._label, produced + len(items), source=True)
                raise
            pacer.record(len(items), now() - began)
            produced += len(items)
            await outbox.emit(items, began)
            if len(items) < size:
                return
            await yielder.tick()


class _AsyncSource:
    def __init__(self, obj: Any, label: str) -> None:
        self._obj = obj
        self._label = label

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        ait = self._obj.__aiter__()
        if inspect.isasyncgen(ait):
            async with contextlib.aclosing(ait):
                await self._pull(ait, outbox)
        else:
            await self._pull(ait, outbox)

    async def _pull(self, ait: Any, outbox: Outbox) -> None:
        now, yielder = outbox.now, _Yielder()
        expected = 0.0
        produced = 0
        while not outbox.done:
            began = now()
            if outbox.due(began, expected):
                await outbox.flush()
                began = now()
            try:
                item = await ait.__anext__()
            except StopAsyncIteration:
                return
            except Exception as exc:
                add_stage_note(exc, self._label, produced, source=True)
                raise
            produced += 1
            expected = now() - began
            await outbox.emit([item], began)
            await yielder.tick()
