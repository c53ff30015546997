"""Stepping a user's coroutine by hand, to learn whether it suspends.

A stage must hand its finished items over before it waits, and a user's
coroutine may finish at once or wait for seconds: only running it tells.
So the first step is taken by hand (``coro.send(None)``); a coroutine that
finishes there costs little more than a plain ``await``, and one that
suspends is handed back to trio by :func:`resume` as if nothing happened.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

from ._chunking import Outbox

T = TypeVar("T")


@types.coroutine
def flush_on_suspend(awaitable: Awaitable[T], outbox: Outbox) -> Generator[Any, Any, T]:
    """``await awaitable``, handing ``outbox``'s pending items over if it suspends.

    A user's coroutine may finish at once or wait for seconds; only running
    it tells which. This runs it up to its first suspension and, only then,
    flushes without waiting, so a fast coroutine costs nothing extra and a
    slow one never holds finished items back.
    """
    it = await_iterator(awaitable)
    try:
        trap = it.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    outbox.flush_nowait()
    result = yield from resume(it, trap)
    return result


def awaitable(value: Awaitable[T]) -> Awaitable[T]:
    """``value``, or a ``TypeError`` naming it if it cannot be awaited."""
    if type(value) is types.CoroutineType or hasattr(value, "__await__"):
        return value
    raise TypeError(f"expected an awaitable, got {type(value).__name__} {value!r}")


def await_iterator(value: Awaitable[T]) -> Any:
    """What ``await value`` steps through: a coroutine, or what ``__await__`` gives."""
    if type(value) is types.CoroutineType:
        return value
    return awaitable(value).__await__()


@types.coroutine
def resume(it: Any, trap: Any) -> Generator[Any, Any, Any]:
    """Go on awaiting ``it``, which has suspended with ``trap``.

    Exactly ``yield from`` after the first step: trio's traps, values and
    exceptions pass straight through.
    """
    while True:
        try:
            value = yield trap
        except GeneratorExit:
            it.close()
            raise
        except BaseException as exc:
            try:
                trap = it.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                trap = it.send(value)
            except StopIteration as done:
                return done.value
