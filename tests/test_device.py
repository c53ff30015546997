"""to_device: tensors moved in a thread, and clear errors without torch or CUDA."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NamedTuple

import fake_torch
import pytest
from fake_torch import FakeTensor, FakeTorch

import snake

if TYPE_CHECKING:
    from collections.abc import Iterator


class Pair(NamedTuple):
    a: Any
    b: Any


@pytest.fixture
def torch() -> Iterator[type[FakeTorch]]:
    with fake_torch.installed() as stand_in:
        yield stand_in


def test_every_tensor_of_a_batch_is_pinned_and_moved_in_a_thread(torch: Any) -> None:
    batches = [{"x": FakeTensor(i), "y": (FakeTensor(-i), "label"), "p": Pair(FakeTensor(0), [1])}
               for i in range(4)]  # fmt: skip
    got = list(snake.from_iterable(batches).to_device("cuda:1"))
    assert [b["x"].value for b in got] == [0, 1, 2, 3]  # in order
    for b in got:
        for tensor in (b["x"], b["y"][0], b["p"].a):
            assert tensor.device == "cuda:1"
            assert tensor.pinned
            assert tensor.thread != "MainThread"  # moved in a worker thread
        assert b["y"][1] == "label"
        assert isinstance(b["p"], Pair)
        assert b["p"].b == [1]


def test_without_cuda_it_says_so_when_built(torch: Any) -> None:
    torch.cuda.available = False
    with pytest.raises(
        RuntimeError, match=r"no CUDA device here \(torch.cuda.is_available\(\) is False"
    ):
        snake.from_iterable([1]).to_device()
    for pin_memory in (True, False):  # pinning helps CUDA only: no need to branch for the CPU
        (moved,) = snake.from_iterable([FakeTensor(5)]).to_device("cpu", pin_memory=pin_memory)
        assert (moved.value, moved.device, moved.pinned) == (5, "cpu", False)


def test_with_real_torch_the_defaults_run_on_the_cpu() -> None:
    torch = pytest.importorskip("torch")
    batches = [{"x": torch.full((2,), i)} for i in range(3)]
    got = list(snake.from_iterable(batches).to_device("cpu"))
    assert [b["x"].tolist() for b in got] == [[0, 0], [1, 1], [2, 2]]
    assert not any(b["x"].is_pinned() for b in got)


def test_an_unknown_device_or_no_torch_is_refused(
    torch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="to_device\\(\\) got 'tpu', which torch does not know"):
        snake.from_iterable([1]).to_device("tpu")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="torch is not installed"):
        snake.from_iterable([1]).to_device()
