"""``batch(..., collate="default" | "torch")``: a batch of samples as one stacked sample.

What PyTorch users know from ``default_collate``: numpy arrays (and torch
tensors) are stacked along a new first axis, numbers become one array,
dicts, tuples and lists are collated field by field, and anything else
(strings, ``None``, objects) is kept as a list. ``"default"`` makes numpy
arrays (numpy is needed only once arrays or numbers are met), ``"torch"``
torch tensors. Samples that cannot be stacked raise a ``ValueError`` naming
the field and the shapes.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._torch import import_torch


def default_collate(batch: list[Any]) -> Any:
    """``batch`` stacked into numpy arrays (see the module)."""
    return _collate(batch, (), _numpy)


def torch_collate(batch: list[Any]) -> Any:
    """``batch`` stacked into torch tensors (see the module)."""
    return _collate(batch, (), _torch)


def _collate(batch: list[Any], path: tuple[Any, ...], stack: Callable[..., Any]) -> Any:
    first = batch[0]
    if (hasattr(first, "shape") and hasattr(first, "dtype")) or isinstance(first, numbers.Number):
        if not isinstance(first, numbers.Number):
            shapes = [tuple(x.shape) for x in batch]
            for k, shape in enumerate(shapes):
                if shape != shapes[0]:
                    raise ValueError(
                        f"collate cannot stack {_where(path)}: item 0 has shape {shapes[0]}, "
                        f"item {k} has shape {shape}; make them equal (resize or crop, or pad), "
                        "or batch without collate to get lists"
                    )
        return stack(batch, isinstance(first, numbers.Number))
    if isinstance(first, Mapping):
        keys = list(first)
        for k, x in enumerate(batch):
            if not isinstance(x, Mapping) or list(x) != keys:
                got = list(x) if isinstance(x, Mapping) else type(x).__name__
                raise ValueError(
                    f"collate cannot combine {_where(path)}: item 0 has keys {keys}, "
                    f"item {k} has {got}; give every item the same keys"
                )
        return {key: _collate([x[key] for x in batch], (*path, key), stack) for key in keys}
    if isinstance(first, Sequence) and not isinstance(first, (str, bytes, bytearray)):
        for k, x in enumerate(batch):
            if len(x) != len(first):
                raise ValueError(
                    f"collate cannot combine {_where(path)}: item 0 has {len(first)} fields, "
                    f"item {k} has {len(x)}; give every item as many"
                )
        fields = [_collate([x[i] for x in batch], (*path, i), stack) for i in range(len(first))]
        if isinstance(first, tuple) and hasattr(first, "_fields"):  # a namedtuple
            return type(first)(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    return list(batch)


def _where(path: tuple[Any, ...]) -> str:
    if not path:
        return "the items"
    return "field " + "".join(f"[{key!r}]" for key in path)


def _numpy(batch: list[Any], scalars: bool) -> Any:
    try:
        import numpy as np
    except ImportError:
        raise ImportError(
            'batch(collate="default") stacks arrays and numbers with numpy, which is not '
            "installed: pip install numpy, or pass your own collate"
        ) from None
    return np.asarray(batch) if scalars else np.stack(batch)


def _torch(batch: list[Any], scalars: bool) -> Any:
    torch = import_torch(
        'batch(collate="torch") makes torch tensors', ", or use collate='default' for numpy"
    )
    if scalars:
        return torch.tensor(batch)
    return torch.stack([torch.as_tensor(x) for x in batch])


#: What ``batch(collate=...)`` accepts by name.
COLLATES: dict[str, Callable[[list[Any]], Any]] = {
    "default": default_collate,
    "torch": torch_collate,
}
