"""The main side of shared memory: slots it lends its workers' jobs, and reuses."""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import weakref
from typing import Any

import attrs

from ._packing import pack, unpack
from ._shm import Packed, create, path, sweep

#: Free slots kept per set: enough for a window of jobs, and some left in use.
KEEP = 8


class Slots:
    """Shared-memory segments the main process reuses: one stage's results, or items.

    A new segment per job costs several times what moving the data does
    (creating, zeroing, mapping in both processes and freeing its pages: about
    3 ms for 4 MiB against 0.1 ms to copy it into pages already mapped). So
    each job is handed a free slot; its worker keeps the slot mapped and
    writes its results' large buffers there, and the main process maps it
    again for the results, which use it without a copy. The slot is free
    again once the last of those objects is gone (``weakref.finalize`` on
    the mapping), so it is never written while anything still reads it.
    Slots are sized from the results seen: until a job has returned large
    buffers there are none, and a job whose buffers do not fit gets a
    segment of its own and makes later slots larger.
    """

    def __init__(self, prefix: str, keep: int) -> None:
        self._prefix = prefix
        self._keep = keep  # free slots kept at most
        self._size = 0
        self._free: list[str] = []
        self._fds: dict[str, tuple[int, int]] = {}  # every slot: name -> (fd, size)
        self._names = itertools.count()
        self._closed = False

    def take(self) -> tuple[str, int] | None:
        """A slot for the next job, as ``(name, size)``; ``None`` until sized."""
        while self._size:
            try:
                name = self._free.pop()
            except IndexError:
                return self._new()
            kept = self._fds.get(name)
            if kept is not None and kept[1] >= self._size:
                return name, kept[1]
            self._remove(name)
        return None

    def put(self, slot: tuple[str, int] | None) -> None:
        """Give back a slot whose job wrote nothing into it."""
        if slot is not None:
            self.release(slot[0])

    def drop(self, slot: tuple[str, int] | None) -> None:
        """Remove a slot a cancelled or failed job may still be writing to."""
        if slot is not None:
            self._remove(slot[0])

    def release_all(self, names: list[str]) -> None:
        """Slots a worker reports free: nothing there uses them any more."""
        for name in names:
            self.release(name)

    def fit(self, size: int) -> None:
        """Make the next slots hold ``size`` bytes, rounded up to a MiB."""
        if size > self._size:
            self._size = -(-size // 2**20) * 2**20

    def map(self, name: str, size: int) -> mmap.mmap:
        """Map a slot a job wrote its results into; it is freed with the mapping."""
        fd, _ = self._fds[name]
        segment = mmap.mmap(fd, size)  # its pages are in memory: no need to populate
        weakref.finalize(segment, self.release, name)
        return segment

    def close(self) -> None:
        """Remove every slot; mappings still in use stay valid until dropped."""
        self._closed = True
        for name in list(self._fds):
            self._remove(name)

    def _new(self) -> tuple[str, int]:
        name = f"{self._prefix}slot-{next(self._names)}"
        size = self._size
        self._fds[name] = (create(name, size), size)
        return name, size

    def release(self, name: str) -> None:
        """The slot ``name`` is free: nothing uses its memory any more."""
        # May run in any thread, when the last result using the slot goes.
        kept = self._fds.get(name)
        if kept is None:
            return
        if self._closed or len(self._free) >= self._keep or kept[1] < self._size:
            self._remove(name)
        else:
            self._free.append(name)

    def _remove(self, name: str) -> None:
        kept = self._fds.pop(name, None)
        if kept is None:
            return
        os.close(kept[0])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path(name))


class Lending:
    """The shared memory one process executor lends its jobs.

    Each stage's results have slots of their own (``prepare``), sized from
    what its jobs return; items travel to the workers in slots of one more
    set, which a worker reports free once nothing it holds uses them
    (``released``). Without a ``prefix`` (no ``/dev/shm``), nothing is lent
    and everything is pickled.
    """

    def __init__(self, prefix: str | None) -> None:
        self.prefix = prefix
        self._results: dict[int, Slots] = {}  # id(work) -> its stage's slots
        self._inputs = None if prefix is None else Slots(f"{prefix}in-", KEEP)

    def prepare(self, key: int) -> None:
        """Slots for the results of the work ``key`` (its ``id``)."""
        if self.prefix is not None and key not in self._results:
            self._results[key] = Slots(f"{self.prefix}{len(self._results)}-", KEEP)

    def lend(self, key: int, items: list[Any]) -> Loan:
        """What one job of the work ``key`` borrows: its items, packed into a slot
        if they hold large buffers, and a slot for its results.

        The items are pickled here, even with nothing to lend, so an item
        that cannot be pickled fails its own job (see ``_pool``); it raises
        before anything is borrowed.
        """
        inputs, prefix = self._inputs, self.prefix
        if inputs is None or prefix is None:
            return Loan(pack(items, None), None)
        in_slot = inputs.take()
        try:
            packed = pack(items, prefix, in_slot)
        except BaseException:
            inputs.put(in_slot)
            raise
        results = self._results.get(key)
        slot = None if results is None else results.take()
        if packed.reused:
            return Loan(packed, slot, results, inputs, packed.name)
        inputs.put(in_slot)
        if packed.name is not None:
            inputs.fit(sum(packed.sizes))
        return Loan(packed, slot, results)

    def released(self, names: list[str]) -> None:
        """Item slots a worker reports free: nothing there uses them any more."""
        if self._inputs is not None:
            self._inputs.release_all(names)

    def close(self) -> None:
        """Remove every slot and segment, once the workers are gone."""
        for slots in self._results.values():
            slots.close()
        if self._inputs is not None:
            self._inputs.close()
        if self.prefix is not None:
            sweep(self.prefix)


@attrs.define(eq=False)
class Loan:
    """The shared memory one job borrows: its items as sent, and its result slot."""

    items: list[Any] | Packed
    #: Where its results' large buffers may go, as ``(name, size)``.
    slot: tuple[str, int] | None
    _results: Slots | None = None
    _inputs: Slots | None = None
    _in_slot: str | None = None  # the slot its items lie in, if any

    @property
    def sent(self) -> int:
        """Bytes of large buffers its items moved through shared memory."""
        return sum(self.items.sizes) if isinstance(self.items, Packed) else 0

    def read(self, packed: Packed) -> list[Any]:
        """The results a worker packed; a result slot they did not use goes back."""
        results = self._results
        if results is None:
            return unpack(packed)
        if not packed.reused:
            results.put(self.slot)
        objects = unpack(packed, results)
        if packed.name is not None and not packed.reused:
            results.fit(sum(packed.sizes))  # a segment of its own: later slots fit
        return objects

    def drop(self) -> None:
        """The job failed or was abandoned: its worker may still be using its slots."""
        if self._results is not None:
            self._results.drop(self.slot)
        if self._inputs is not None and self._in_slot is not None:
            self._inputs.drop((self._in_slot, 0))
