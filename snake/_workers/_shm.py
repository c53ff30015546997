"""Large buffers in a job's items and results cross between processes through shared memory.

A 4 MiB array pickled through a pipe moves at about 640 MB/s; written once
into shared memory and mapped by the main process, it arrives several times
faster, and the main process reads it where it lies. Results are pickled
here with protocol 5: numpy arrays, CPU torch tensors and ``memoryview``
objects anywhere in a result, and ``bytes`` and ``bytearray`` objects that
are a result or sit directly in its tuple, list or dict, of at least
``THRESHOLD`` bytes each, go out of band; the rest stays in the pickle. The
buffers go into a slot the main process lends the job and reuses once the
results using it are gone (``Slots``), or, before slots are sized or when
they do not fit, into a segment of the job's own, which the main process
maps and unlinks at once. Names of segments and slots start with the
executor's prefix, and ``sweep`` removes whatever is left when the
pipeline's workers are shut down (a cancelled job's segment). Items go to
the workers the same way, in slots the main process lends and a worker
reports free once nothing it holds uses them (``Borrowed``). Linux only
(``/dev/shm``); elsewhere everything is pickled into the worker's socket.
"""

from __future__ import annotations

import errno
import io
import itertools
import mmap
import os
import pickle
import weakref
from typing import Any

import cloudpickle

#: Buffers from this size on travel through shared memory.
THRESHOLD = 64 * 1024
#: Where POSIX shared memory lives, when it can be listed and swept.
SHM_DIR = "/dev/shm"
AVAILABLE = os.path.isdir(SHM_DIR) and hasattr(os, "posix_fallocate")

_jobs = itertools.count()
#: Map the pages at once, not one fault at a time as they are written.
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


class Packed:
    """Pickled results, with their large buffers in the segment ``name``."""

    __slots__ = ("data", "name", "reused", "sizes")

    def __init__(
        self, data: bytes, name: str | None, sizes: list[int], reused: bool = False
    ) -> None:
        self.data = data
        self.name = name
        self.sizes = sizes
        self.reused = reused  # ``name`` is a slot of the main process's ``Slots``


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # untyped
    """Also sends large ``memoryview`` objects and CPU torch tensors out of band."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is memoryview and obj.nbytes >= THRESHOLD:
            return _Bytes.rebuild, ("memoryview", pickle.PickleBuffer(obj))
        if kind.__name__ == "Tensor" and kind.__module__ == "torch":
            array = _array_of(obj)
            if array is not None:
                return _tensor, (array,)
        return super().reducer_override(obj)


def _array_of(tensor: Any) -> Any:
    """A large plain CPU tensor's numpy view, which pickles out of band; else None.

    torch pickles a tensor's storage through ``torch.save`` into ``bytes``
    in the pickle, a copy and a trip through the socket. Tensors on another
    device, needing gradients, sparse, or of a type numpy lacks (bfloat16)
    keep that way.
    """
    try:  # a sparse tensor has no ``nbytes``; numpy has no bfloat16: both raise
        if tensor.requires_grad or tensor.device.type != "cpu" or tensor.nbytes < THRESHOLD:
            return None
        return tensor.numpy()
    except (TypeError, RuntimeError):
        return None


def _tensor(array: Any) -> Any:
    """The tensor back, sharing ``array``'s memory: where it lies in shared memory."""
    import torch  # type: ignore[import-not-found,unused-ignore]

    return torch.from_numpy(array)


class _Bytes:
    """A large ``bytes`` or ``bytearray`` on its way out of band.

    The pickler serializes those two types itself, without asking
    ``reducer_override``, so :func:`_outward` wraps them in this first.
    """

    __slots__ = ("value",)

    def __init__(self, value: bytes | bytearray) -> None:
        self.value = value

    def __reduce_ex__(self, protocol: Any) -> Any:
        return _Bytes.rebuild, (type(self.value).__name__, pickle.PickleBuffer(self.value))

    @staticmethod
    def rebuild(kind: str, buffer: Any) -> Any:
        view = memoryview(buffer)
        if kind == "memoryview":
            return view  # a view of the shared memory: no copy
        return bytes(view) if kind == "bytes" else bytearray(view)


def _outward(value: Any) -> Any:
    """``value`` with large bytes in it, or directly in its tuple, list or dict, wrapped."""
    if _large(value):
        return _Bytes(value)
    kind = type(value)
    if (kind is tuple or kind is list) and any(map(_large, value)):
        return kind(_Bytes(v) if _large(v) else v for v in value)
    if kind is dict and any(map(_large, value.values())):
        return {k: _Bytes(v) if _large(v) else v for k, v in value.items()}
    return value


def _large(value: Any) -> bool:
    kind = type(value)
    return (kind is bytes or kind is bytearray) and len(value) >= THRESHOLD


def pack(results: list[Any], prefix: str | None, slot: tuple[str, int] | None = None) -> Packed:
    """Pickle ``results``, putting their large buffers into ``slot`` or a new segment.

    ``slot`` (a name and size from the main process's ``Slots``) is used when
    the buffers fit; otherwise they go into a segment of their own, named
    from ``prefix``. Without a ``prefix``, everything stays in the pickle.
    """
    if prefix is None:
        return Packed(cloudpickle.dumps(results, protocol=5), None, [])
    large: list[pickle.PickleBuffer] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < THRESHOLD:
            return True  # small: stays in the pickle
        large.append(buffer)
        return False

    stream = io.BytesIO()
    _Pickler(stream, protocol=5, buffer_callback=out_of_band).dump(list(map(_outward, results)))
    if not large:
        return Packed(stream.getvalue(), None, [])
    sizes = [buffer.raw().nbytes for buffer in large]
    total = sum(sizes)
    if slot is not None and total <= slot[1]:
        segment = _slot_mapping(*slot)
        if segment is not None:
            _copy(segment, large)
            return Packed(stream.getvalue(), slot[0], sizes, reused=True)
    name = f"{prefix}{os.getpid()}-{next(_jobs)}"
    _write(name, large, total)
    return Packed(stream.getvalue(), name, sizes)


def _create(path: str, size: int) -> int:
    """A new shared-memory file of ``size`` bytes, all of them reserved, open."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)  # fail here, not with SIGBUS on write
    except BaseException as exc:
        os.close(fd)
        os.unlink(path)
        if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.ENOMEM):
            raise
        raise OSError(
            exc.errno,
            f"shared memory is full: a job's results need {size / 2**20:.1f} MiB in "
            f"{SHM_DIR}; free some, or give the machine or container more "
            "(docker: --shm-size)",
        ) from None
    return fd


def _write(name: str, buffers: list[pickle.PickleBuffer], size: int) -> None:
    path = os.path.join(SHM_DIR, name)
    fd = _create(path, size)
    try:
        with mmap.mmap(fd, size, flags=_MAP_FLAGS) as segment:
            _copy(segment, buffers)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)


def _copy(segment: mmap.mmap, buffers: list[pickle.PickleBuffer]) -> None:
    offset = 0
    for buffer in buffers:
        raw = buffer.raw()
        segment[offset : offset + raw.nbytes] = raw
        offset += raw.nbytes


#: This worker's mappings of slots, by name, with their open files.
_slot_mappings: dict[str, tuple[int, mmap.mmap]] = {}


def _slot_mapping(name: str, size: int) -> mmap.mmap | None:
    """This worker's mapping of the slot ``name``, kept for its next jobs.

    Slots the main process has since removed (their names unlinked) are
    unmapped here, so a worker holds on to no memory the pipeline dropped.
    ``None`` if the slot is already gone (its pipeline is closing).
    """
    for old, (fd, segment) in list(_slot_mappings.items()):
        if os.fstat(fd).st_nlink == 0:
            del _slot_mappings[old]
            segment.close()
            os.close(fd)
    kept = _slot_mappings.get(name)
    if kept is not None:
        return kept[1]
    try:
        fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR)
    except FileNotFoundError:
        return None
    segment = mmap.mmap(fd, size, flags=_MAP_FLAGS)
    _slot_mappings[name] = (fd, segment)
    return segment


class Borrowed:
    """The slots a worker process reads its jobs' items from.

    Each job maps its slot afresh, and once the last of its items using that
    memory is gone, the slot's name waits in ``take_released`` for the next
    reply to report: only then does the main process lend the slot again,
    so items a function keeps (in a cache, say) are never overwritten.
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._released: list[str] = []

    def map(self, name: str, size: int) -> mmap.mmap:
        for old, fd in list(self._fds.items()):
            if os.fstat(fd).st_nlink == 0:  # removed by the main process
                del self._fds[old]
                os.close(fd)
        if name not in self._fds:
            self._fds[name] = os.open(os.path.join(SHM_DIR, name), os.O_RDWR)
        segment = mmap.mmap(self._fds[name], size)
        weakref.finalize(segment, self._released.append, name)
        return segment

    def fit(self, size: int) -> None:
        pass  # the main process sizes the slots

    def take_released(self) -> list[str]:
        """Slots no item uses any more, since the last call."""
        released = self._released[:]
        del self._released[: len(released)]
        return released


def unpack(packed: Packed, slots: Slots | Borrowed | None = None) -> list[Any]:
    """The objects ``pack`` made.

    A segment of its own is unlinked here; a slot goes back to ``slots``
    once the last object using its memory is gone.
    """
    if packed.name is None:
        results: list[Any] = pickle.loads(packed.data)
        return results
    size = sum(packed.sizes)
    if packed.reused:
        assert slots is not None
        segment = slots.map(packed.name, size)
    else:
        path = os.path.join(SHM_DIR, packed.name)
        fd = os.open(path, os.O_RDWR)
        try:
            segment = mmap.mmap(fd, size, flags=_MAP_FLAGS)
        finally:
            os.close(fd)
            os.unlink(path)
        if slots is not None:
            slots.fit(size)
    view = memoryview(segment)
    buffers = []
    offset = 0
    for size in packed.sizes:
        buffers.append(view[offset : offset + size])
        offset += size
    results = pickle.loads(packed.data, buffers=buffers)
    return results


class Slots:
    """Shared-memory segments the main process reuses for one stage's results.

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
        self._fds[name] = (_create(os.path.join(SHM_DIR, name), size), size)
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
        try:
            os.unlink(os.path.join(SHM_DIR, name))
        except FileNotFoundError:
            pass


def sweep(prefix: str) -> None:
    """Remove the segments of ``prefix`` whose results were never read."""
    if not AVAILABLE:
        return
    for name in os.listdir(SHM_DIR):
        if name.startswith(prefix):
            try:
                os.unlink(os.path.join(SHM_DIR, name))
            except FileNotFoundError:
                pass
