"""Functions made to fail on chosen items, for tests of errors."""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

F = TypeVar("F", bound="Callable[..., Any]")


class InjectedError(Exception):
    """Raised by a function that ``failing`` made, on an item chosen to fail;
    its one argument is the item."""


InjectedError.__module__ = "snake.testing"  # shown, and pickled, as users import it


def failing(fn: F, items: Collection[Any]) -> F:
    """``fn``, raising ``InjectedError(x)`` instead of calling it for each item
    ``x`` in ``items``; async if ``fn`` is. ``items`` may be a failure set drawn
    by ``snake.testing.failures()``. The function pickles for process maps.

    Example:
        >>> bad = snake.testing.failing(abs, {-2})
        >>> bad(-1)
        1
        >>> bad(-2)
        Traceback (most recent call last):
          ...
        snake.testing.InjectedError: -2
    """
    chosen = frozenset(items)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def fails_async(x: Any) -> Any:
            if x in chosen:
                raise InjectedError(x)
            return await fn(x)

        return fails_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def fails(x: Any) -> Any:
        if x in chosen:
            raise InjectedError(x)
        return fn(x)

    return fails  # type: ignore[return-value]
