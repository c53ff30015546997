"""Documents to fixed-length rows of tokens, on snake.

``loader(texts)`` tokenizes each document in worker processes, packs the
tokens of consecutive documents into rows of ``length`` tokens (the last
row may be shorter), and batches the rows. ``deduplicated()`` is a stage
that drops an item equal to the one before it, for repeated documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import snake

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

__all__ = ["deduplicated", "loader", "packed", "tokenize"]


def tokenize(text: str) -> list[int]:
    """A toy tokenizer: each word's length."""
    return [len(word) for word in text.split()]


def packed(length: int) -> Callable[[snake.Pipeline[list[int]]], snake.Pipeline[list[int]]]:
    """A fragment for ``Pipeline.apply``: token lists in, rows of ``length`` tokens out."""
    if length < 1:
        raise ValueError(f"packed() needs a row length >= 1, got {length}")

    async def pack(docs: AsyncIterator[list[int]]) -> AsyncIterator[list[int]]:
        row: list[int] = []
        async for tokens in docs:
            row.extend(tokens)
            while len(row) >= length:
                yield row[:length]
                row = row[length:]
        if row:
            yield row

    return lambda pipeline: pipeline.through(pack)


def deduplicated() -> Callable[[snake.Pipeline[Any]], snake.Pipeline[Any]]:
    """A fragment for ``Pipeline.apply``: each item but those equal to the one before."""

    async def dedup(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        last: Any = _NOTHING
        async for item in items:
            if item != last:
                yield item
            last = item

    return lambda pipeline: pipeline.through(dedup)


_NOTHING = object()


def loader(
    texts: Iterable[str],
    *,
    length: int = 8,
    batch_size: int = 4,
    tokenizer: Callable[[str], list[int]] = tokenize,
) -> snake.Pipeline[list[list[int]]]:
    """Batches of ``batch_size`` rows of ``length`` tokens of ``texts``, in order."""
    return (
        snake.from_iterable(texts)
        .apply(deduplicated())
        .par_map(tokenizer, concurrency=2)
        .apply(packed(length))
        .batch(batch_size)
    )
