"""What operators should give, computed by Python and itertools, and sources that start afresh."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator

T = TypeVar("T")


class Naturals:
    """0, 1, 2, ... for ever, from the start on every run (``itertools.count()`` runs once)."""

    def __iter__(self) -> Iterator[int]:
        return itertools.count()


class Endless:
    """An async source of 0, 1, 2, ... for ever, pausing every 100 items; each run starts again."""

    def __aiter__(self) -> AsyncIterator[int]:
        return self._items()

    async def _items(self) -> AsyncIterator[int]:
        for i in itertools.count():
            if i % 100 == 0:
                await trio.sleep(0.001)
            yield i


def chunked(it: Iterable[T], size: int, drop_last: bool) -> Iterator[list[T]]:
    """``batch(size, drop_last=drop_last)``: lists of ``size`` items, the last maybe shorter."""
    it = iter(it)
    while batch := list(itertools.islice(it, size)):
        if len(batch) == size or not drop_last:
            yield batch


def sharded(
    items: Iterable[T], index: int, count: int, equal: Literal["drop", "pad"] | None
) -> Iterator[T]:
    """The items at ``index``, ``index + count``, ...; the last, short round as ``equal`` says.

    Each item leaves as soon as it arrives, but with ``"drop"``, when its round
    is complete (the last, short one is dropped); ``"pad"`` completes the last
    round from the first one, as PyTorch's ``DistributedSampler`` does.
    """
    first: list[T] = []
    held: list[T] = []  # with "drop": this rank's item of the current round
    seen = 0
    for position, item in enumerate(items):
        seen = position + 1
        if position < count:
            first.append(item)
        if position % count == index:
            if equal == "drop":
                held.append(item)
            else:
                yield item
        if position % count == count - 1:
            yield from held
            held.clear()
    short = seen % count
    if equal == "pad" and short and index >= short:
        yield first[(index - short) % len(first)]


_END = object()


def interleaved(files: Iterable[Iterable[T]], cycle: int, block: int) -> Iterator[T]:
    """tf.data's deterministic interleave, as snake documents it."""
    pending = iter(files)
    slots: list[Iterator[T] | None] = [iter(f) for f in itertools.islice(pending, cycle)]
    at = 0
    while any(s is not None for s in slots):
        slot = slots[at]
        if slot is not None:
            for _ in range(block):
                item = next(slot, _END)
                if item is _END:
                    following = next(pending, None)
                    slots[at] = None if following is None else iter(following)
                    break
                yield item  # type: ignore[misc]
        at = (at + 1) % len(slots)


def repeated(it: Iterable[T], times: int) -> Iterator[T]:
    """``repeat(times)``: the items ``times`` times over."""
    return itertools.chain.from_iterable(itertools.tee(it, times))
