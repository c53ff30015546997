"""Packing objects for the trip between processes: large buffers out of band, into shared memory.

Objects are pickled with protocol 5: numpy arrays, CPU torch tensors and
``memoryview`` objects anywhere in them, and ``bytes`` and ``bytearray``
objects that are one of the objects or sit directly in its tuple, list or
dict, of at least ``THRESHOLD`` bytes each, go out of band; the rest stays in
the pickle. ``pack`` writes those buffers into a slot the main process lent
(a worker keeps its mappings of the main process's slots, ``_slot_mapping``)
or into a segment of their own; ``unpack`` reads them where they lie. The
main process packs items for its workers and unpacks results; a worker
unpacks items from the slots it borrowed (:class:`Borrowed`) and packs
results. The main side's slots are ``_slots.Slots``; see ``_shm`` for what
both sides share.
"""

from __future__ import annotations

import io
import itertools
import mmap
import os
import pickle
import weakref
from typing import Any

import cloudpickle

from ._shm import MAP_FLAGS, THRESHOLD, Mapper, Packed, create, forget_removed, path

_jobs = itertools.count()


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


def _write(name: str, buffers: list[pickle.PickleBuffer], size: int) -> None:
    fd = create(name, size)
    try:
        with mmap.mmap(fd, size, flags=MAP_FLAGS) as segment:
            _copy(segment, buffers)
    except BaseException:
        os.unlink(path(name))
        raise
    finally:
        os.close(fd)


def _copy(segment: mmap.mmap, buffers: list[pickle.PickleBuffer]) -> None:
    offset = 0
    for buffer in buffers:
        raw = buffer.raw()
        segment[offset : offset + raw.nbytes] = raw
        offset += raw.nbytes


#: This worker's mappings of slots it writes results into, and their open files.
_slot_files: dict[str, int] = {}
_slot_mappings: dict[str, mmap.mmap] = {}


def _slot_mapping(name: str, size: int) -> mmap.mmap | None:
    """This worker's mapping of the slot ``name``, kept for its next jobs.

    Slots the main process has since removed (their names unlinked) are
    unmapped here, so a worker holds on to no memory the pipeline dropped.
    ``None`` if the slot is already gone (its pipeline is closing).
    """
    for gone in forget_removed(_slot_files):
        _slot_mappings.pop(gone).close()
    kept = _slot_mappings.get(name)
    if kept is not None:
        return kept
    try:
        fd = os.open(path(name), os.O_RDWR)
    except FileNotFoundError:
        return None
    segment = _slot_mappings[name] = mmap.mmap(fd, size, flags=MAP_FLAGS)
    _slot_files[name] = fd
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
        forget_removed(self._fds)  # the main process removed them
        if name not in self._fds:
            self._fds[name] = os.open(path(name), os.O_RDWR)
        segment = mmap.mmap(self._fds[name], size)
        weakref.finalize(segment, self._released.append, name)
        return segment

    def take_released(self) -> list[str]:
        """Slots no item uses any more, since the last call."""
        released = self._released[:]
        del self._released[: len(released)]
        return released


def unpack(packed: Packed, mapper: Mapper | None = None) -> list[Any]:
    """The objects ``pack`` made.

    A segment of their own is unlinked here; a slot is mapped by
    ``mapper``, this side's view of the main process's slots, and is free
    again once the last object using its memory is gone.
    """
    if packed.name is None:
        objects: list[Any] = pickle.loads(packed.data)
        return objects
    size = sum(packed.sizes)
    if packed.reused:
        assert mapper is not None
        segment = mapper.map(packed.name, size)
    else:
        fd = os.open(path(packed.name), os.O_RDWR)
        try:
            segment = mmap.mmap(fd, size, flags=MAP_FLAGS)
        finally:
            os.close(fd)
            os.unlink(path(packed.name))
    view = memoryview(segment)
    buffers = []
    offset = 0
    for size in packed.sizes:
        buffers.append(view[offset : offset + size])
        offset += size
    objects = pickle.loads(packed.data, buffers=buffers)
    return objects
