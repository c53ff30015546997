"""batch(collate="default" | "torch"): PyTorch's default_collate behaviour, with clear errors."""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import snake
from snake._collate import default_collate


class Point(NamedTuple):
    x: Any
    y: Any


def sample(i: int) -> dict[str, Any]:
    return {
        "image": np.full((2, 3), i, dtype=np.float32),
        "label": i,
        "meta": (f"name{i}", [i, -i]),
        "point": Point(i, 2.5 * i),
    }


async def test_default_collate_stacks_arrays_and_numbers_field_by_field() -> None:
    [batch] = await snake.from_iterable(map(sample, range(3))).batch(3, collate="default").collect()
    assert batch["image"].shape == (3, 2, 3)
    assert batch["image"].dtype == np.float32
    assert (batch["image"][:, 0, 0] == [0, 1, 2]).all()
    assert batch["label"].tolist() == [0, 1, 2]
    names, pairs = batch["meta"]
    assert names == ["name0", "name1", "name2"]  # strings stay a list
    assert [p.tolist() for p in pairs] == [[0, 1, 2], [0, -1, -2]]
    assert isinstance(batch["point"], Point)
    assert batch["point"].y.tolist() == [0.0, 2.5, 5.0]


@given(st.lists(st.integers(-(2**31), 2**31), min_size=1, max_size=50))
def test_numbers_collate_to_one_array(values: list[int]) -> None:
    assert default_collate(values).tolist() == values


async def test_collate_runs_in_process_workers_too() -> None:
    pipeline = snake.from_iterable(range(8)).par_map(sample).batch(4, collate="default")
    batches = await pipeline.collect()
    assert [b["label"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]


async def test_shapes_that_cannot_be_stacked_are_named() -> None:
    def uneven(i: int) -> dict[str, Any]:
        return {"image": np.zeros((3, 4 if i == 2 else 5))}

    pipeline = snake.from_iterable(range(4)).map(uneven).batch(4, collate="default")
    with pytest.raises(
        ValueError,
        match=r"cannot stack field \['image'\]: item 0 has shape \(3, 5\), item 2 has shape \(3, 4\)",
    ) as info:
        await pipeline.collect()
    assert info.value.__notes__[0].endswith("at item 3 of its input")  # the item completing it


def test_mismatched_keys_and_lengths_are_named() -> None:
    with pytest.raises(ValueError, match=r"item 0 has keys \['a'\], item 1 has \['b'\]"):
        default_collate([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match=r"field \[0\]: item 0 has 2 fields, item 1 has 1"):
        default_collate([((1, 2),), ((3,),)])


class FakeTorch:
    """Stands in for torch (an optional dependency): records what it is asked."""

    class Tensor(list):  # type: ignore[type-arg]
        pass

    @staticmethod
    def tensor(values: list[Any]) -> Any:
        return FakeTorch.Tensor(values)

    @staticmethod
    def as_tensor(value: Any) -> Any:
        return FakeTorch.Tensor(value.tolist())

    @staticmethod
    def stack(tensors: list[Any]) -> Any:
        return FakeTorch.Tensor(tensors)


def test_torch_collate_makes_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", FakeTorch)
    [batch] = list(snake.from_iterable(map(sample, range(2))).batch(2, collate="torch"))
    assert isinstance(batch["image"], FakeTorch.Tensor)
    assert len(batch["image"]) == 2
    assert batch["image"][1] == np.full((2, 3), 1).tolist()
    assert isinstance(batch["label"], FakeTorch.Tensor)
    assert batch["label"] == [0, 1]
    assert batch["meta"][0] == ["name0", "name1"]


def test_torch_collate_without_torch_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch==2.13.0"):
        list(snake.from_iterable([1, 2]).batch(2, collate="torch"))


def test_without_numpy_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install numpy, or pass your own collate"):
        default_collate([1, 2])
    assert default_collate(["a", "b"]) == ["a", "b"]  # no numpy needed for these


def test_an_unknown_collate_name_is_refused() -> None:
    with pytest.raises(ValueError, match="`collate` must be 'default' or 'torch', got 'stack'"):
        snake.from_iterable(range(3)).batch(2, collate="stack")  # type: ignore[call-overload]
