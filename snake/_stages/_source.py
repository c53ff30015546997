"""Sources: where a pipeline's items come from.

Ordering: the iterable's; a map-style dataset's, by index. Buffering: one
pending chunk. On cancel or error, a generator or async generator source is
closed, so its ``finally`` runs. A sync iterable is pulled in the event
loop's thread, so its ``next()`` must be quick (a cancel waits for the unit
of calls in progress, one call once calls are slow, and starts no other);
slow producers belong in an async iterable.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import operator
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from .._chunking import (
    CHECK_EVERY,
    LATENCY_BUDGET,
    MAX_CHUNK,
    Inbox,
    Outbox,
    Pacer,
    before_sync_work,
)
from .._errors import item_error
from .._flushing import watching
from .._validate import func_name
from ._base import Context, Stage, StageSpec
from ._length import counted

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._policy import Failures

T_co = TypeVar("T_co", covariant=True)


class MapStyle(Protocol[T_co]):
    """A map-style dataset, as PyTorch calls it: items ``obj[0]`` to ``obj[len(obj) - 1]``."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> T_co: ...


def is_map_style(obj: object) -> bool:
    """``__len__`` and ``__getitem__`` but no ``__iter__``, as a torch ``Dataset``.

    Python would iterate it by index until ``IndexError``, which such a
    dataset need not raise. With ``__iter__`` (a list, an array), that wins.
    """
    kind = type(obj)
    return (
        hasattr(kind, "__getitem__") and hasattr(kind, "__len__") and not hasattr(kind, "__iter__")
    )


def _items(obj: Any) -> Iterator[Any]:
    """A fresh iterator over a sync source: by index for a map-style dataset."""
    if is_map_style(obj):
        return map(operator.getitem, itertools.repeat(obj), range(len(obj)))
    return iter(obj)


@attrs.frozen
class IterableSource(StageSpec):
    obj: object

    advice = "the source is the limit: read faster, or prefetch"

    def describe(self) -> str:
        obj = self.obj
        generator = inspect.isgenerator(obj) or inspect.isasyncgen(obj)
        return f"from_iterable({func_name(obj) if generator else type(obj).__name__})"

    def length(self, n: int) -> int:
        return counted(self.obj)

    def build(self, context: Context) -> Stage:
        if hasattr(self.obj, "__aiter__"):
            return _AsyncSource(self.obj, context.label)
        return _SyncSource(self.obj, context.label)


class _SyncSource:
    failures: Failures | None = None  # never skips

    def __init__(self, obj: Any, label: str) -> None:
        self._obj = obj
        self._label = label

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        it = _items(self._obj)
        try:
            await self._pull(it, outbox)
        finally:
            if inspect.isgenerator(it):
                it.close()

    async def _pull(self, it: Any, outbox: Outbox) -> None:
        pacer = Pacer()
        produced = 0
        while not outbox.done:
            await before_sync_work()
            size = pacer.size
            began = time.perf_counter()
            items: list[Any] = []
            try:
                # On an error, extend() keeps the items it got: they count.
                items.extend(itertools.islice(it, size))
            except Exception as exc:
                error = item_error(exc, self._label, produced + len(items), source=True)
                if error is exc:
                    raise
                raise error from exc
            pacer.record(len(items), time.perf_counter() - began)
            produced += len(items)
            await outbox.emit(items)
            if len(items) < size:
                return


class _AsyncSource:
    failures: Failures | None = None  # never skips

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
        # Items go to `outbox.raw`; while the iterator blocks, the `_flushing`
        # instrument hands them over.
        raw = outbox.raw
        each = outbox.ends
        produced = 0
        yield_at = time.perf_counter() + LATENCY_BUDGET
        with watching(outbox):
            while not outbox.done:
                try:
                    raw.append(await ait.__anext__())
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    error = item_error(exc, self._label, produced, source=True)
                    if error is exc:
                        raise
                    raise error from exc
                produced += 1
                if each:
                    outbox.settle()
                elif len(raw) >= MAX_CHUNK or (
                    not produced & CHECK_EVERY and time.perf_counter() >= yield_at
                ):
                    await outbox.emit_raw()
                    yield_at = time.perf_counter() + LATENCY_BUDGET
            await outbox.emit_raw()
