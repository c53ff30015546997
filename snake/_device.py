"""``to_device``: batches moved to a torch device, in a thread, overlapping the consumer.

Every tensor in a batch (through dicts, tuples, named tuples and lists) is
copied to pinned memory (with ``pin_memory``, for a CUDA device) and then
to the device without blocking, in a worker thread of its own stage, so the
copy of the next batch runs while the training step uses this one. Pinning
helps copies to a CUDA device only: for any other, ``pin_memory`` is
ignored, so the same code runs with and without a GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._torch import import_torch


def check_device(device: object) -> str:
    """The device as torch names it; an error now if torch or the device is missing."""
    torch = import_torch("to_device() moves torch tensors", " or a CUDA build")
    try:
        name = str(torch.device(device))  # type: ignore[call-overload,arg-type,unused-ignore]
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"to_device() got {device!r}, which torch does not know: {exc}") from None
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"to_device({device!r}): no CUDA device here (torch.cuda.is_available() is "
            "False; a CPU build of torch, or no GPU). Leave out to_device, or use 'cpu'"
        )
    return name


def mover(device: str, pin_memory: bool) -> Callable[[Any], Any]:
    """A function moving every tensor of a batch to ``device``, through pinned
    memory if ``pin_memory`` and ``device`` is a CUDA device."""
    pin_memory = pin_memory and device.startswith("cuda")

    def move(value: Any) -> Any:
        if hasattr(value, "to") and hasattr(value, "is_pinned"):  # a tensor
            if pin_memory:
                value = value.pin_memory()
            return value.to(device, non_blocking=pin_memory)
        if isinstance(value, Mapping):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*map(move, value))
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
            return (
                type(value)(map(move, value))
                if isinstance(value, tuple)
                else list(map(move, value))
            )
        return value

    return move
