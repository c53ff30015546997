"""How many bytes an item holds in large buffers, estimated cheaply.

A stage sizes its chunks, and a parallel stage its window, from the items it
hands over, so that items of a MiB or more travel one at a time and what a
pipeline holds behind a slow consumer stays bounded in items and in bytes.
Only the first item of each unit of work is weighed, never every item: the
estimate reads ``nbytes`` of arrays and tensors, the length of ``bytes`` and
``bytearray``, and looks one level into tuples, lists and dicts (their first
few fields), as a sample from a dataset is built. Imports nothing: worker
threads and processes weigh their results too.
"""

from __future__ import annotations

import itertools
from typing import Any

#: Fields of a tuple, list or dict looked at, at most.
FIELDS = 8
#: Bytes of large buffers a chunk holds at most, past its first item: items
#: of this size or more travel one per chunk.
CHUNK_BYTES = 2**20


def nbytes(item: Any) -> int:
    """The bytes ``item`` holds in buffers: arrays, tensors, bytes, one level down."""
    kind = type(item)
    if kind is tuple or kind is list:
        return sum(map(_buffer, item[:FIELDS]))
    if kind is dict:
        return sum(map(_buffer, itertools.islice(item.values(), FIELDS)))
    return _buffer(item)


def per_chunk(size: int, most: int) -> int:
    """Items of ``size`` bytes of buffers that travel together: ``most``, fewer
    for large ones, one for items of ``CHUNK_BYTES`` or more."""
    return min(most, CHUNK_BYTES // size or 1) if size else most


def _buffer(value: Any) -> int:
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return len(value)
    try:
        size = getattr(value, "nbytes", 0)  # numpy arrays, torch tensors, memoryview
    except Exception:  # a sparse tensor has none: it raises
        return 0
    return size if type(size) is int else 0
