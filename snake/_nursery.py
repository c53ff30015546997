"""How errors leave snake's nurseries: a single error bare, never a needless group."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, NoReturn

import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def simplify(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception a pipeline's caller should see instead of a nursery's group.

    Looks one level down only: every nursery snake opens passes its own
    group through here, so what is below is the tasks' own exceptions, left
    exactly as raised (a user's function may raise a group of its own). A
    single error (``Cancelled`` aside) is returned bare, so ``except
    ValueError`` works; several independent errors become one group; a
    group of nothing but ``Cancelled`` becomes one ``Cancelled``, which the
    cancel scope that caused it then absorbs.
    """
    errors = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
    if not errors:
        return group.exceptions[0]
    if len(errors) == 1:
        return errors[0]
    return BaseExceptionGroup(f"{len(errors)} errors in a snake pipeline", errors)


@asynccontextmanager
async def open_nursery() -> AsyncIterator[trio.Nursery]:
    """``trio.open_nursery()`` that lets a single error out bare (see ``simplify``)."""
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        raise_as_is(simplify(group))


def raise_as_is(exc: BaseException) -> NoReturn:
    """Raise ``exc`` keeping its own ``__context__``.

    Raising inside an ``except`` block would chain the group we unwrapped (or a
    ``Cancelled``) as the context, which only adds noise to the traceback.
    """
    context, suppress = exc.__context__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        exc.__suppress_context__ = suppress
        del exc, context
