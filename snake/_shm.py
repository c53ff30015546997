"""Large buffers in a job's results cross from a worker process through shared memory.

A 4 MiB array pickled through a pipe moves at about 640 MB/s; written once
into shared memory and mapped by the main process, it arrives several times
faster, and the main process reads it where it lies. Results are pickled
here with protocol 5: numpy arrays and ``memoryview`` objects anywhere in a
result, and ``bytes`` and ``bytearray`` objects that are a result or sit
directly in its tuple, list or dict, of at least ``THRESHOLD`` bytes each, go
out of band into one segment per job; the rest stays in the pickle. The main process maps the
segment and unlinks its name at once, so the memory goes away with the last
array using it. A segment whose results are never read (the job was
cancelled, or the main process stopped reading) is removed by ``sweep`` when
the pipeline's workers are shut down. Linux only (``/dev/shm``); elsewhere
results go through the pipe as before.
"""

from __future__ import annotations

import errno
import io
import itertools
import mmap
import os
import pickle
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

    __slots__ = ("data", "name", "sizes")

    def __init__(self, data: bytes, name: str | None, sizes: list[int]) -> None:
        self.data = data
        self.name = name
        self.sizes = sizes


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # untyped
    """Also sends large ``memoryview`` objects out of band."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is memoryview and obj.nbytes >= THRESHOLD:
            return _Bytes.rebuild, ("memoryview", pickle.PickleBuffer(obj))
        return super().reducer_override(obj)


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


def pack(results: list[Any], prefix: str) -> Packed:
    """Pickle ``results``, putting their large buffers into a new segment."""
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
    name = f"{prefix}{os.getpid()}-{next(_jobs)}"
    _write(name, large, sum(sizes))
    return Packed(stream.getvalue(), name, sizes)


def _write(name: str, buffers: list[pickle.PickleBuffer], size: int) -> None:
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, size)  # fail here, not with SIGBUS on write
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.ENOMEM):
                raise
            raise OSError(
                exc.errno,
                f"shared memory is full: a job's results need {size / 2**20:.1f} MiB in "
                f"{SHM_DIR}; free some, or give the machine or container more "
                "(docker: --shm-size)",
            ) from None
        with mmap.mmap(fd, size, flags=_MAP_FLAGS) as segment:
            offset = 0
            for buffer in buffers:
                raw = buffer.raw()
                segment[offset : offset + raw.nbytes] = raw
                offset += raw.nbytes
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def unpack(packed: Packed) -> list[Any]:
    """The results ``pack`` made; the segment's name is gone once this returns."""
    if packed.name is None:
        results: list[Any] = pickle.loads(packed.data)
        return results
    path = os.path.join(SHM_DIR, packed.name)
    fd = os.open(path, os.O_RDWR)
    try:
        segment = mmap.mmap(fd, sum(packed.sizes), flags=_MAP_FLAGS)
    finally:
        os.close(fd)
        os.unlink(path)
    view = memoryview(segment)
    buffers = []
    offset = 0
    for size in packed.sizes:
        buffers.append(view[offset : offset + size])
        offset += size
    results = pickle.loads(packed.data, buffers=buffers)
    return results


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
