"""Shared memory between the main process and its workers: what both sides agree on.

A 4 MiB array pickled through a pipe moves at about 640 MB/s; written once
into shared memory and mapped by the main process, it arrives several times
faster, and the main process reads it where it lies. So large buffers in a
job's items and results travel out of band (``_packing``): pickled items or
results and where their buffers lie are a :class:`Packed`. The buffers go
into a *slot*, a segment the main process lends for the trip and reuses
(``_slots``), which the reading side maps (a :class:`Mapper`: the main
process's ``_slots.Slots`` for results, a worker's ``_packing.Borrowed``
for items); or, before slots are sized or when they do not fit, into a
segment of their own, which the reading side maps and unlinks at once.
Names of segments and slots start with their executor's prefix, and
``sweep`` removes whatever is left when the pipeline's workers are shut
down (a cancelled job's segment). Linux only (``/dev/shm``); elsewhere
everything is pickled into the worker's socket.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from typing import Protocol

import attrs

#: Buffers from this size on travel through shared memory.
THRESHOLD = 64 * 1024
#: Where POSIX shared memory lives, when it can be listed and swept.
SHM_DIR = "/dev/shm"
AVAILABLE = os.path.isdir(SHM_DIR) and hasattr(os, "posix_fallocate")

#: Map the pages at once, not one fault at a time as they are written.
MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


@attrs.frozen
class Packed:
    """Pickled objects, with their large buffers in the segment ``name``, if any."""

    data: bytes
    name: str | None
    #: The size of each large buffer, in the order they lie in the segment.
    sizes: list[int]
    #: ``name`` is a slot the main process lent, not a segment of its own.
    reused: bool = False


class Mapper(Protocol):
    """The reading side of a slot: it maps the slot, to read what was written there."""

    def map(self, name: str, size: int) -> mmap.mmap:
        """A mapping of slot ``name`` (of ``size`` bytes); the slot is free
        again once the mapping, and every object using it, is gone."""
        ...


def path(name: str) -> str:
    """Where the segment ``name`` lies."""
    return os.path.join(SHM_DIR, name)


def create(name: str, size: int) -> int:
    """A new segment ``name`` of ``size`` bytes, all of them reserved, open."""
    where = path(name)
    fd = os.open(where, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)  # fail here, not with SIGBUS on write
    except BaseException as exc:
        os.close(fd)
        os.unlink(where)
        if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.ENOMEM):
            raise
        raise OSError(
            exc.errno,
            f"shared memory is full: a job's results need {size / 2**20:.1f} MiB in "
            f"{SHM_DIR}; free some, or give the machine or container more "
            "(docker: --shm-size)",
        ) from None
    return fd


def forget_removed(fds: dict[str, int]) -> list[str]:
    """Drop from ``fds`` (names to open files) the segments their owner has
    removed, closing the files; their names, for any mapping to close too."""
    gone = [name for name, fd in fds.items() if os.fstat(fd).st_nlink == 0]
    for name in gone:
        os.close(fds.pop(name))
    return gone


def sweep(prefix: str) -> None:
    """Remove the segments of ``prefix`` whose results were never read."""
    if not AVAILABLE:
        return
    for name in os.listdir(SHM_DIR):
        if name.startswith(prefix):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path(name))
