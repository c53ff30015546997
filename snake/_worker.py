"""What runs in a worker thread or process: a user function over one chunk."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from typing import Any

from ._errors import add_stage_note, failed_at

#: Functions this worker process has received, by the key of their stage.
_functions: dict[str, Callable[[Any], Any]] = {}


def ready() -> None:
    """A call that does nothing: it makes the pool start a worker."""


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


def apply_shipped(
    key: str, pickled: bytes | None, items: list[Any], label: str, base: int
) -> tuple[list[Any], float] | None:
    """``apply_chunk`` with the function this process keeps under ``key``.

    A function is sent to each worker process once, not with every chunk (it
    may hold large data). Returns ``None`` when this process does not have
    it yet and ``pickled`` is not given: the caller then sends it.
    """
    fn = _functions.get(key)
    if fn is None:
        if pickled is None:
            return None
        fn = _functions[key] = pickle.loads(pickled)
    return apply_chunk(fn, items, label, base)
