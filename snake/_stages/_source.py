"""Sources: where a pipeline's items come from.

Ordering: the iterable's; a map-style dataset's, by index; a sequence
``shuffle()``d, a seeded permutation of its indices (:class:`IndexShuffle`). Buffering: one
pending chunk. On cancel or error, a generator or async generator source is
closed, so its ``finally`` runs. A sync iterable is pulled in the event
loop's thread, so its ``next()`` must be quick (a cancel waits for the unit
of calls in progress, one call once calls are slow, and starts no other);
slow producers belong in an async iterable.

``from_iterable(sequence).shuffle()`` reads ``sequence[p(i)]`` for ``i`` in
``0 .. n-1``, ``p`` a pseudo-random permutation of the indices seeded per
epoch (as Grain shuffles): every item is as likely at every place, no item
is held, and a position is one index. ``p`` is a Feistel network over the
next power of four above ``n``, walking its cycles until it lands below
``n``: a few arithmetic steps an index, and no table of ``n`` entries.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import itertools
import logging
import operator
import random
import time
from collections.abc import Mapping
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
from .._info import Draws
from .._position import Marks, NotResumable, Saved, dropped, tracking
from .._validate import func_name
from ._base import Context, Stage, StageSpec
from ._length import counted

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from .._policy import Failures

T_co = TypeVar("T_co", covariant=True)
logger = logging.getLogger("snake")


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


def _items(obj: Any, start: int, label: str) -> Iterator[Any]:
    """A fresh iterator over a sync source, from its item ``start``: by index
    for a map-style dataset, and for any sequence past its first item."""
    if is_map_style(obj) or (start and _indexed(obj)):
        return map(operator.getitem, itertools.repeat(obj), range(start, len(obj)))
    it: Iterator[Any] = iter(obj)
    if start:
        _replayed(obj, it, label, start)
        collections.deque(itertools.islice(it, start), maxlen=0)
    return it


def _indexed(obj: object) -> bool:
    """Whether ``obj[i]`` is its item ``i``: ``__len__`` and ``__getitem__``, not a mapping."""
    kind = type(obj)
    return (
        hasattr(kind, "__getitem__") and hasattr(kind, "__len__") and not isinstance(obj, Mapping)
    )


class Resumable(Protocol[T_co]):
    """A source that saves and restores its own position (a file of records, by offset).

    ``iter(source)`` starts at its first item, ``source.iter_from(position)``
    at ``position``; each of its iterators says with ``position()`` where
    its next item is, as plain JSON data (an int, a string, a dict).
    """

    def __iter__(self) -> Iterator[T_co]: ...
    def iter_from(self, position: Any, /) -> Iterator[T_co]: ...


def _replayed(obj: object, it: object, label: str, start: int) -> None:
    if it is obj or inspect.isgenerator(obj) or inspect.isasyncgen(obj):
        raise NotResumable(
            f"cannot resume {label} at its item {start}: it is a one-shot iterator, "
            "which cannot be read again; give from_iterable() a list or another sequence "
            "(resumed by index), a re-iterable object, or one with iter_from() (see "
            "snake.Resumable)"
        )
    if label not in _warned:
        _warned.add(label)
        logger.warning(
            "resuming %s by reading its first %d items again: a sequence resumes by "
            "index, and a source with iter_from() from its own position",
            label, start,
        )  # fmt: skip


#: Sources resumed by replay: each is logged once.
_warned: set[str] = set()


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

    def shape(self) -> str:
        described = self.describe()
        try:
            return f"{described[:-1]} of {len(self.obj)})"  # type: ignore[arg-type]
        except TypeError:
            return described

    def shuffled(self, seed: int | None) -> StageSpec | None:
        """Its items in a shuffled order of their indices, if it is a sequence."""
        if hasattr(self.obj, "__aiter__") or not (is_map_style(self.obj) or _indexed(self.obj)):
            return None
        return IndexShuffle(self, seed)

    def reader(self) -> Callable[[int], Any] | None:
        obj = self.obj
        if hasattr(obj, "__aiter__") or hasattr(obj, "iter_from"):
            return None
        if is_map_style(obj) or _indexed(obj):
            return functools.partial(operator.getitem, obj)
        return None

    def build(self, context: Context) -> Stage:
        saved = context.saved[0] if context.saved else None
        if hasattr(self.obj, "__aiter__"):
            return _AsyncSource(self.obj, context.label, saved)
        return _SyncSource(self.obj, context.label, saved)


class _SyncSource:
    """Items of a sync iterable, pulled in units.

    Where it stood is its number of items (an index), or for a source that
    says its own (``iter_from``), that, marked after each unit.
    """

    failures: Failures | None = None  # never skips

    def __init__(
        self, obj: Any, label: str, saved: Saved | None, unseeded: int | None = None
    ) -> None:
        self._obj = obj
        self._label = label
        # A shuffled order's own seed, if it drew one (see ``IndexShuffle``).
        self._unseeded = unseeded
        self._start = 0 if saved is None else saved.at
        self._own = hasattr(obj, "iter_from") and hasattr(obj, "__iter__")
        self._drop = 0 if saved is None else saved.skip
        self._resumed = None if saved is None else saved.own
        self._marks: Marks[Any] | None = None
        if self._own and tracking():
            self._marks = Marks(self._start, self._resumed)

    def saved(self, out: int) -> list[Saved]:
        if self._marks is None:
            seed = None if self._unseeded is None else {"seed": self._unseeded}
            return [Saved(out, own=seed)]
        first, own = self._marks.find(out)
        return [Saved(first, out - first, own)]

    def _iterator(self) -> Iterator[Any]:
        if not self._own:
            return _items(self._obj, self._start, self._label)
        own = self._resumed
        it: Iterator[Any] = iter(self._obj) if own is None else self._obj.iter_from(own)
        return it

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        it = self._iterator()
        try:
            await self._pull(it, outbox)
        finally:
            if inspect.isgenerator(it):
                it.close()

    async def _pull(self, it: Any, outbox: Outbox) -> None:
        pacer = Pacer()
        produced = self._start
        marks, drop = self._marks, self._drop
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
            if marks is not None:
                marks.add(produced, it.position())
            ended = len(items) < size
            if drop:
                items, drop = dropped(items, drop)
            await outbox.emit(items)
            if ended:
                return


class _AsyncSource:
    """Items of an async iterable, as they come; where it stood is its number
    of items, and it resumes by reading as many again."""

    failures: Failures | None = None  # never skips

    def __init__(self, obj: Any, label: str, saved: Saved | None) -> None:
        self._obj = obj
        self._label = label
        self._start = 0 if saved is None else saved.at

    def saved(self, out: int) -> list[Saved]:
        return [Saved(out)]

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        ait = self._obj.__aiter__()
        if self._start:
            _replayed(self._obj, ait, self._label, self._start)
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
        produced = self._start
        for _ in range(produced):  # resumed: read again, as it cannot seek
            await ait.__anext__()
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


#: Rounds of the Feistel network.
ROUNDS = 4


class Permutation:
    """A seeded bijection of ``range(n)``: ``permutation[i]`` is where item ``i`` comes from."""

    __slots__ = ("_half", "_keys", "_mask", "_n")

    def __init__(self, n: int, key: str) -> None:
        self._n = n
        half = max(1, ((n - 1).bit_length() + 1) // 2)
        self._half, self._mask = half, (1 << half) - 1
        generator = random.Random(key)
        self._keys = [generator.getrandbits(64) for _ in range(ROUNDS)]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self._n:
            raise IndexError(i)
        while True:  # cycle walking: at most a few steps, as n > 4**half / 4
            i = self._round_trip(i)
            if i < self._n:
                return i

    def _round_trip(self, x: int) -> int:
        half, mask = self._half, self._mask
        left, right = x >> half, x & mask
        for key in self._keys:
            mixed = (right * 0x9E3779B97F4A7C15 ^ key) & 0xFFFFFFFFFFFFFFFF
            mixed = (mixed ^ mixed >> 29) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
            left, right = right, left ^ (mixed >> 32) & mask
        return left << half | right


class _Permuted:
    """``obj``'s items in the order of a permutation: a sequence itself."""

    __slots__ = ("_obj", "_order")

    def __init__(self, obj: Sequence[Any], order: Permutation) -> None:
        self._obj, self._order = obj, order

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, i: int) -> Any:
        return self._obj[self._order[i]]


@attrs.frozen
class IndexShuffle(StageSpec):
    """A sequence source whose items come in a shuffled order of their indices."""

    source: IterableSource
    seed: int | None

    advice = "the source is the limit: read faster, or prefetch"

    def describe(self) -> str:
        seed = "" if self.seed is None else f"seed={self.seed}"
        return f"{self.source.describe()}.shuffle({seed})"

    def shape(self) -> str:
        seed = "" if self.seed is None else f"seed={self.seed}"
        return f"{self.source.shape()}.shuffle({seed})"

    @property
    def unseeded(self) -> bool:  # type: ignore[override]
        return self.seed is None

    def length(self, n: int) -> int:
        return self.source.length(n)

    def build(self, context: Context) -> Stage:
        obj: Any = self.source.obj
        saved = context.saved[0] if context.saved else None
        own = None if saved is None else saved.own
        draws = Draws(self.seed, self, None if own is None else own.get("seed"))
        order = Permutation(len(obj), draws.key)
        return _SyncSource(_Permuted(obj, order), context.label, saved, draws.unseeded)
