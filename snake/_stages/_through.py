"""``through``: a user's async generator over the whole stream of items.

Ordering: what the generator yields, in the order it yields it. Buffering:
the input chunk the generator reads from, what the generator holds itself,
and the pending output chunk. Input is read only as the generator asks for
it, so a generator that stops asking holds back the stages before it once
their channels are full. On cancel or error, the generator is closed
(``aclose``: its ``finally`` runs) and the rest of its input chunk dropped.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from time import perf_counter
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .. import _validate as check
from .._chunking import CHECK_EVERY, LATENCY_BUDGET, MAX_CHUNK, DownstreamClosed
from .._errors import item_error
from .._flushing import watching
from .._position import NotResumable
from .._validate import func_name
from ._base import Context, Stage, StageSpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from .._chunking import Inbox, Outbox
    from .._policy import Failures
    from .._position import Saved

#: Why a run with a ``through`` cannot save its position.
STATE = "keeps state of its own that a saved position cannot hold"


def through(fn: Callable[[AsyncIterator[Any]], AsyncIterator[Any]]) -> Through:
    """The spec of ``through(fn)``; a function that cannot be one is refused."""
    check.check_callable(fn, "through")
    target: object = fn.func if isinstance(fn, functools.partial) else fn
    if not inspect.isroutine(target):  # a callable object: its __call__
        target = getattr(type(target), "__call__", target)  # noqa: B004 - the method
    name = func_name(fn)
    what = _instead(target, name)
    if what is not None:
        raise TypeError(
            f"through() needs an async generator function, `async def {name}(items): "
            f"async for x in items: ... yield y`, but {name} is {what}"
        )
    return Through(fn)


def _instead(target: object, name: str) -> str | None:
    """What ``target`` is instead of an async generator function, and the fix;
    ``None`` for one, or for a lambda, which may return one (checked when run)."""
    if inspect.isasyncgenfunction(target):
        return None
    if inspect.iscoroutinefunction(target):
        return (
            "an async function with no `yield`: make it yield its outputs, or use "
            f".then({name}) for one result per item"
        )
    if inspect.isgeneratorfunction(target):
        return (
            "a sync generator function: define it with `async def` and read the items "
            "with `async for x in items`"
        )
    if check.is_surely_sync(target):
        return (
            f"a regular (sync) function: make it an async generator, or use .map({name}) "
            f"for one result per item or .flat_map({name}) for several"
        )
    return None


@attrs.frozen
class Through(StageSpec):
    fn: Callable[[AsyncIterator[Any]], AsyncIterator[Any]]

    advice = "its generator runs in one task: move per-item work into a par_map before it"

    def describe(self) -> str:
        return f"through({func_name(self.fn)})"

    def unresumable(self, reordered: str | None) -> str | None:
        return (
            f"{STATE}: what its generator holds (a partly filled row, a window) lives in "
            "its local variables; for state_dict(), build that step from operators that "
            "save theirs (batch, flat_map, ...)"
        )

    def build(self, context: Context) -> Stage:
        return _ThroughStage(self.fn, context.label)


class _ThroughStage:
    failures: Failures | None = None  # never skips

    def __init__(self, fn: Callable[[AsyncIterator[Any]], AsyncIterator[Any]], label: str) -> None:
        self._fn = fn
        self._label = label

    def saved(self, out: int) -> list[Saved]:
        raise NotResumable(f"{self._label} {STATE}")  # refused before any run: see unresumable

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        assert inbox is not None
        if outbox.done:  # take(0): fn is not even called
            return
        items = _Items(inbox, outbox)
        with watching(outbox):
            try:
                outputs = self._fn(items)
                if not hasattr(outputs, "__anext__"):
                    raise _no_async_iterator(self._fn, outputs)
            except Exception as exc:
                error = self._error(exc, items)
                if error is exc:
                    raise
                raise error from exc
            if hasattr(outputs, "aclose"):  # an async generator: its finally runs now
                async with contextlib.aclosing(outputs):  # type: ignore[type-var]
                    await self._pull(outputs, items, outbox)
            else:
                await self._pull(outputs, items, outbox)

    async def _pull(self, outputs: AsyncIterator[Any], items: _Items, outbox: Outbox) -> None:
        # Outputs go to `outbox.raw`; while the generator blocks, the
        # `_flushing` instrument hands them over. A fused `take` sees each
        # output at once, so the generator is asked for none past its end.
        raw = outbox.raw
        each = outbox.ends
        made = 0
        while not outbox.done:
            try:
                raw.append(await outputs.__anext__())
            except StopAsyncIteration:
                break
            except DownstreamClosed:
                raise  # met as the generator waited for input: not the generator's
            except Exception as exc:
                error = self._error(exc, items)
                if error is exc:
                    raise
                raise error from exc
            made += 1
            if each:
                outbox.settle()
            elif not made & CHECK_EVERY or len(raw) >= MAX_CHUNK:
                await items.pace()
        await outbox.emit_raw()

    def _error(self, exc: Exception, items: _Items) -> BaseException:
        # Noted at the last item the generator took: the one it was working on.
        return item_error(exc, self._label, max(items.given - 1, 0))


def _no_async_iterator(fn: object, outputs: object) -> TypeError:
    return TypeError(
        f"through() expected {func_name(fn)}(items) to return an async iterator, got "
        f"{type(outputs).__name__}: make it an async generator function, "
        "`async def fn(items): async for x in items: ... yield y`"
    )


class _Items:
    """The stage's input as the generator reads it: item by item from the
    inbox's chunks, the next chunk fetched when the generator asks past one."""

    def __init__(self, inbox: Inbox, outbox: Outbox) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._chunk: list[Any] = []
        self._next = 0
        self._ended = False
        self._yield_at = perf_counter() + LATENCY_BUDGET
        #: Items handed to the generator.
        self.given = 0

    def __aiter__(self) -> _Items:
        return self

    async def __anext__(self) -> Any:
        if self._next < len(self._chunk):
            if not self.given & CHECK_EVERY:
                await self.pace()  # a generator that takes many items per output
        else:
            if self._ended:
                raise StopAsyncIteration
            await self._outbox.emit_raw()  # what it made goes on before it waits
            chunk = await self._inbox.next()
            if chunk is None:
                self._ended = True
                raise StopAsyncIteration
            self._chunk, self._next = chunk, 0
        x = self._chunk[self._next]
        self._next += 1
        self.given += 1
        return x

    async def pace(self) -> None:
        """Once per ``LATENCY_BUDGET`` of busy work: hand the output over, let others run."""
        if perf_counter() >= self._yield_at or len(self._outbox.raw) >= MAX_CHUNK:
            await self._outbox.emit_raw()
            await trio.lowlevel.checkpoint()
            self._yield_at = perf_counter() + LATENCY_BUDGET
