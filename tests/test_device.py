"""to_device: tensors moved in a thread, and clear errors without torch or CUDA."""

from __future__ import annotations

import collections
import sys
import threading
from typing import Any

import pytest

import snake

Pair = collections.namedtuple("Pair", ["a", "b"])


class FakeTensor:
    """Records where it was moved, and by which thread."""

    def __init__(self, value: int, device: str = "cpu", pinned: bool = False) -> None:
        self.value, self.device, self.pinned = value, device, pinned
        self.thread = threading.current_thread().name

    def is_pinned(self) -> bool:
        return self.pinned

    def pin_memory(self) -> FakeTensor:
        return FakeTensor(self.value, self.device, True)

    def to(self, device: str, non_blocking: bool = False) -> FakeTensor:
        moved = FakeTensor(self.value, device, self.pinned)
        moved.thread = threading.current_thread().name
        return moved


class FakeTorch:
    class cuda:  # noqa: N801 - as torch names it
        available = True

        @classmethod
        def is_available(cls) -> bool:
            return cls.available

    @staticmethod
    def device(name: str) -> str:
        if name not in ("cpu", "cuda", "cuda:1"):
            raise RuntimeError(f"Invalid device string: '{name}'")
        return name


@pytest.fixture
def torch(monkeypatch: pytest.MonkeyPatch) -> type[FakeTorch]:
    monkeypatch.setitem(sys.modules, "torch", FakeTorch)
    FakeTorch.cuda.available = True
    return FakeTorch


def test_every_tensor_of_a_batch_is_pinned_and_moved_in_a_thread(torch: Any) -> None:
    batches = [{"x": FakeTensor(i), "y": (FakeTensor(-i), "label"), "p": Pair(FakeTensor(0), [1])}
               for i in range(4)]  # fmt: skip
    got = list(snake.from_iterable(batches).to_device("cuda:1"))
    assert [b["x"].value for b in got] == [0, 1, 2, 3]  # in order
    for b in got:
        for tensor in (b["x"], b["y"][0], b["p"].a):
            assert tensor.device == "cuda:1" and tensor.pinned
            assert tensor.thread != "MainThread"  # moved in a worker thread
        assert b["y"][1] == "label" and isinstance(b["p"], Pair) and b["p"].b == [1]


def test_without_cuda_it_says_so_when_built(torch: Any) -> None:
    torch.cuda.available = False
    with pytest.raises(
        RuntimeError, match=r"no CUDA device here \(torch.cuda.is_available\(\) is False"
    ):
        snake.from_iterable([1]).to_device()
    with pytest.raises(ValueError, match="pinned memory only helps copies to a CUDA device"):
        snake.from_iterable([1]).to_device("cpu")
    assert (
        list(snake.from_iterable([FakeTensor(5)]).to_device("cpu", pin_memory=False))[0].value == 5
    )


def test_an_unknown_device_or_no_torch_is_refused(
    torch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="to_device\\(\\) got 'tpu', which torch does not know"):
        snake.from_iterable([1]).to_device("tpu")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="torch is not installed"):
        snake.from_iterable([1]).to_device()
