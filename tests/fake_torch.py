"""A stand-in for torch: tensors that record where they were moved, and by which thread."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


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
    class cuda:  # as torch names it
        available = True

        @classmethod
        def is_available(cls) -> bool:
            return cls.available

    @staticmethod
    def device(name: str) -> str:
        if name not in ("cpu", "cuda", "cuda:1"):
            raise RuntimeError(f"Invalid device string: '{name}'")
        return name


@contextlib.contextmanager
def installed() -> Iterator[type[FakeTorch]]:
    """``FakeTorch`` as the ``torch`` module, with CUDA available, while the block runs."""
    missing = object()
    saved = sys.modules.get("torch", missing)
    sys.modules["torch"] = FakeTorch  # type: ignore[assignment]
    FakeTorch.cuda.available = True
    try:
        yield FakeTorch
    finally:
        if saved is missing:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved  # type: ignore[assignment]
