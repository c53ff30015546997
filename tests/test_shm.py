"""Large buffers in a process map's results cross through shared memory, and none is left."""

from __future__ import annotations

import errno
import os
import pickle
import sys
from typing import Any

import pytest
import trio

import snake
from snake._workers import _packing, _shm, _slots

pytestmark = pytest.mark.skipif(not _shm.AVAILABLE, reason="shared memory needs /dev/shm")

MiB = 2**20


def segments() -> list[str]:
    return [n for n in os.listdir(_shm.SHM_DIR) if n.startswith(f"snake-{os.getpid()}-")]


def large(i: int) -> tuple[bytes, bytearray, memoryview, bytes]:
    data = bytes([i % 251]) * MiB
    return data, bytearray(data), memoryview(bytearray(data)), b"small"


async def test_large_bytes_bytearray_and_memoryview_come_back_through_shared_memory() -> None:
    got = await snake.from_iterable(range(12)).par_map(large).collect()
    for i, (data, array, view, small) in enumerate(got):
        assert data == bytes([i % 251]) * MiB
        assert type(data) is bytes
        assert array == data
        assert type(array) is bytearray
        assert view == data
        assert type(view) is memoryview
        assert small == b"small"
    assert segments() == []  # unlinked as soon as they were mapped


def test_pack_keeps_small_results_in_the_pickle_and_large_ones_out() -> None:
    small = _packing.pack([1, b"x" * 100], "snake-test-")
    assert small.name is None
    assert _packing.unpack(small) == [1, b"x" * 100]
    packed = _packing.pack([b"y" * MiB, 2], f"snake-{os.getpid()}-unit-")
    assert packed.name is not None
    assert len(packed.data) < 1000
    assert _packing.unpack(packed) == [b"y" * MiB, 2]
    assert segments() == []


def test_a_full_shared_memory_gives_an_error_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match=r"shared memory is full: a job's results need 1\.0 MiB"):
        _packing.pack([b"z" * MiB], f"snake-{os.getpid()}-unit-")
    assert segments() == []


def slow_large(i: int) -> bytes:
    import time

    time.sleep(0.01)
    return bytes(MiB)


async def test_leaving_early_leaves_no_segment_behind() -> None:
    async with snake.from_iterable(range(1000)).par_map(slow_large).open() as items:
        assert len(await items.receive()) == MiB
    assert segments() == []


def fails_late(i: int) -> bytes:
    if i == 30:
        raise ValueError("late")
    return bytes(MiB)


async def test_an_error_leaves_no_segment_behind() -> None:
    with pytest.raises(ValueError, match="late"):
        await snake.from_iterable(range(100)).par_map(fails_late).collect()
    assert segments() == []


async def test_an_outer_cancel_leaves_no_segment_behind() -> None:
    with trio.move_on_after(0.3):
        await snake.from_iterable(range(10_000)).par_map(slow_large).collect()
    assert segments() == []


def test_results_pickle_the_same_as_without_shared_memory() -> None:
    value: Any = {"a": [b"q" * MiB, bytearray(3)], "b": (1, 2.5, None)}
    assert _packing.unpack(_packing.pack([value], f"snake-{os.getpid()}-unit-")) == [value]
    assert pickle.loads(pickle.dumps(value)) == value


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Grows by one for each shared-memory slot made."""
    made: list[int] = []
    new = _slots.Slots._new

    def counting(self: _slots.Slots) -> tuple[str, int]:
        made.append(1)
        return new(self)

    monkeypatch.setattr(_slots.Slots, "_new", counting)
    return made


def view_of(i: int) -> memoryview:
    return memoryview(bytearray([i % 251]) * MiB)


async def test_results_still_held_keep_their_slot_from_being_written() -> None:
    # Every view stays in use: no slot may be lent to another job meanwhile.
    held = await snake.from_iterable(range(40)).par_map(view_of).collect()
    assert [bytes(v[:1]) + bytes(v[-1:]) for v in held] == [bytes([i % 251]) * 2 for i in range(40)]
    assert all(v.nbytes == MiB for v in held)
    assert segments() == []


async def test_slots_are_reused_once_their_results_are_dropped(created: list[int]) -> None:
    kept = []
    async with snake.from_iterable(range(200)).par_map(view_of).open() as items:
        async for i, view in aenumerate(items):
            assert view[0] == view[-1] == i % 251
            if i % 50 == 0:
                kept.append((i, view))  # a few stay in use to the end
            del view
    assert [(v[0], v[-1]) for _, v in kept] == [(i % 251, i % 251) for i, _ in kept]
    assert 0 < len(created) < 40  # 200 results, a few slots
    assert segments() == []


async def aenumerate(items: Any) -> Any:
    i = 0
    async for x in items:
        yield i, x
        i += 1


def test_sync_iteration_frees_slots_from_its_own_thread() -> None:
    total = 0
    for i, view in enumerate(snake.from_iterable(range(60)).par_map(view_of)):
        assert view[0] == view[-1] == i % 251
        total += view.nbytes
    assert total == 60 * MiB
    assert segments() == []


def test_a_slot_goes_back_when_the_last_view_of_it_goes() -> None:
    slots = _slots.Slots(f"snake-{os.getpid()}-unit-", keep=4)
    assert slots.take() is None  # not sized before results were seen
    slots.fit(MiB + 1)
    slot = slots.take()
    assert slot is not None
    assert slot[1] == 2 * MiB
    packed = _packing.pack([memoryview(bytearray(b"a") * MiB)], "snake-unused-", slot)
    assert packed.reused
    assert packed.name == slot[0]
    [view] = _packing.unpack(packed, slots)
    assert slots.take() != slot  # still in use: another slot is made
    del view
    assert slots.take() == slot  # free again
    slots.close()
    assert segments() == []


def test_a_worker_unmaps_slots_the_main_process_removed() -> None:
    slots = _slots.Slots(f"snake-{os.getpid()}-unit-", keep=4)
    slots.fit(MiB)
    first, second = slots.take(), slots.take()
    assert first is not None
    assert second is not None
    _packing.pack([bytes(MiB)], "snake-unused-", first)
    assert first[0] in _packing._slot_mappings
    slots.drop(first)
    _packing.pack([bytes(MiB)], "snake-unused-", second)
    assert first[0] not in _packing._slot_mappings
    assert second[0] in _packing._slot_mappings
    slots.close()
    assert _packing._slot_mapping(second[0], MiB) is None  # gone: the job gets a segment of its own
    assert second[0] not in _packing._slot_mappings
    assert segments() == []


def first_and_last(data: Any) -> tuple[str, int, int, int]:
    view = memoryview(data)
    return type(data).__name__, view[0], view[-1], view.nbytes


async def test_large_items_travel_to_the_workers_through_shared_memory(
    created: list[int],
) -> None:
    kinds = [bytes, bytearray, lambda b: memoryview(bytearray(b))]
    items = [kinds[i % 3](bytes([i % 251]) * MiB) for i in range(90)]
    got = await snake.from_iterable(items).par_map(first_and_last).collect()
    names = ["bytes", "bytearray", "memoryview"]
    assert got == [(names[i % 3], i % 251, i % 251, MiB) for i in range(90)]
    assert 0 < len(created) < 30  # 90 items, their slots reused (small results: no slots)
    assert segments() == []


_kept: list[memoryview] = []


def keep(view: memoryview) -> list[int]:
    # A function that holds on to what it was given, as a cache would: what
    # it holds must not change while later jobs arrive.
    _kept.append(view)
    return [v[0] for v in _kept]


async def test_items_a_worker_keeps_are_not_overwritten_by_later_jobs() -> None:
    items = [memoryview(bytearray([i]) * MiB) for i in range(60)]
    got = await snake.from_iterable(items).par_map(keep, concurrency=1).collect()
    for i, seen in enumerate(got):
        assert seen == list(range(len(seen)))  # in this worker: items 0..i, each intact
        assert seen[-1] == i
    assert segments() == []


def test_a_worker_reports_a_borrowed_slot_once_its_items_are_gone() -> None:
    slots = _slots.Slots(f"snake-{os.getpid()}-unit-", keep=4)
    slots.fit(MiB)
    slot = slots.take()
    assert slot is not None
    packed = _packing.pack([memoryview(bytearray(b"q") * MiB)], "snake-unused-", slot)
    borrowed = _packing.Borrowed()
    [view] = _packing.unpack(packed, borrowed)
    assert view[0] == ord("q")
    assert borrowed.take_released() == []
    del view
    assert borrowed.take_released() == [slot[0]]
    slots.close()
    assert segments() == []


class Tensor:
    """Stands in for ``torch.Tensor`` (an optional dependency) where results are pickled."""

    __module__ = "torch"

    def __init__(self, array: Any, requires_grad: bool = False, sparse: bool = False) -> None:
        self.array = array
        self.requires_grad = requires_grad
        self.sparse = sparse
        self.device = type("device", (), {"type": "cpu"})()

    @property
    def nbytes(self) -> int:
        if self.sparse:
            raise RuntimeError("nbytes is not defined for sparse tensors")
        return int(self.array.nbytes)

    def numpy(self) -> Any:
        return self.array

    def __reduce__(self) -> Any:  # as torch does: the storage's bytes, in the pickle
        args = (self.array.tobytes(), self.array.dtype.str, self.requires_grad, self.sparse)
        return _rebuild_tensor, args


def _rebuild_tensor(data: bytes, dtype: str, requires_grad: bool, sparse: bool) -> Tensor:
    import numpy as np

    return Tensor(np.frombuffer(data, dtype), requires_grad, sparse)


def test_cpu_tensors_travel_out_of_band_and_come_back_as_tensors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    fake = type(sys)("torch")
    fake.from_numpy = lambda array: ("from_numpy", array)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    array = np.arange(MiB // 4, dtype=np.float32)
    tensors = [Tensor(array), Tensor(array, requires_grad=True), Tensor(array, sparse=True)]
    packed = _packing.pack(tensors, f"snake-{os.getpid()}-unit-")
    [(how, back), *kept] = _packing.unpack(packed)  # first: it removes the segment
    assert packed.sizes == [array.nbytes]  # only the plain tensor went out of band
    assert how == "from_numpy"
    assert np.array_equal(back, array)
    assert back.flags.writeable
    assert [(type(t), t.requires_grad, t.sparse) for t in kept] == [
        (Tensor, True, False),
        (Tensor, False, True),
    ]
    assert all(np.array_equal(t.array, array) for t in kept)
    assert segments() == []


def filled(i: int) -> Any:
    import torch

    full = torch.full((256, 1024), float(i))  # 1 MiB
    return full, full.to_sparse(), full.to(torch.bfloat16), full[:, ::2]


def test_torch_tensors_from_worker_processes() -> None:
    # The fake-torch test above runs everywhere; this one checks real torch
    # where it is installed (the bench extra).
    torch = pytest.importorskip("torch", reason="torch is optional: pip install torch==2.13.0")
    got = list(snake.from_iterable(range(4)).par_map(filled))
    for i, (full, sparse, half, strided) in enumerate(got):
        expected = torch.full((256, 1024), float(i))
        assert type(full) is torch.Tensor
        assert torch.equal(full, expected)
        assert sparse.is_sparse
        assert torch.equal(sparse.to_dense(), expected)
        assert half.dtype == torch.bfloat16
        assert torch.equal(half.float(), expected)
        assert torch.equal(strided, expected[:, ::2])
