"""What runs in a worker thread or process: a user function over one chunk."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ._errors import add_stage_note, failed_at


def apply_chunk(
    fn: Callable[[Any], Any], items: list[Any], label: str, base: int
) -> tuple[list[Any], float]:
    """``[fn(x) for x in items]`` and how long it took.

    An exception gets its stage note here, where the failing item is known,
    so it crosses the process boundary already annotated.
    """
    began = time.perf_counter()
    it = iter(items)
    try:
        results = list(map(fn, it))
    except Exception as exc:
        add_stage_note(exc, label, base + failed_at(items, it))
        raise
    return results, time.perf_counter() - began
