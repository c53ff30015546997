"""``then``: one async call per item, one at a time.

Ordering: input order. Buffering: one pending chunk, handed over as soon as a
call suspends (so a slow function keeps per-item latency).
On cancel or error, the call in flight is cancelled with the stage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from types import CoroutineType
from typing import Any

import attrs
import trio

from .._chunking import LATENCY_BUDGET, Inbox, Outbox
from .._errors import add_stage_note
from .._executors import Executors
from .._stepping import await_iterator, resume
from .._validate import func_name
from ._base import Stage, StageSpec


@attrs.frozen
class Then(StageSpec):
    fn: Callable[[Any], Awaitable[Any]]

    def describe(self) -> str:
        return f"then({func_name(self.fn)})"

    def build(self, label: str, executors: Executors) -> Stage:
        return _ThenStage(self.fn, label)


class _ThenStage:
    def __init__(self, fn: Callable[[Any], Awaitable[Any]], label: str) -> None:
        self._fn = fn
        self._label = label

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        assert inbox is not None
        if outbox.done:  # take(0): not one call
            return
        while (chunk := await inbox.next()) is not None:
            await self._call_each(chunk, inbox.received - len(chunk), outbox)
            if outbox.done:
                return

    async def _call_each(self, chunk: list[Any], base: int, outbox: Outbox) -> None:
        # The hot loop of every `then`. A call is first stepped by hand: most
        # finish without suspending, and their results gather in `results`
        # at the cost of a list append. Only a call that suspends hands what
        # is done over first, then goes on as an ordinary await. A fused
        # `take` sees each result at once, so no call is made past its end.
        fn = self._fn
        each = outbox.ends
        results: list[Any] = []
        yield_at = perf_counter() + LATENCY_BUDGET
        failed: BaseException | None = None
        with trio.CancelScope() as scope:
            for i, x in enumerate(chunk):
                try:
                    coro: Any = fn(x)
                    if type(coro) is not CoroutineType:
                        coro = await_iterator(coro)
                    try:
                        trap = coro.send(None)
                    except StopIteration as done:
                        results.append(done.value)
                    else:
                        failed = _hand_over(results, outbox, scope)
                        results = [await resume(coro, trap)]
                        if failed is not None or outbox.done:
                            break
                except Exception as exc:
                    add_stage_note(exc, self._label, base + i)
                    raise
                if each:
                    outbox.add_nowait(results)
                    results = []
                    if outbox.done:
                        return
                if perf_counter() >= yield_at:
                    await outbox.emit(results)  # hands over and lets others run
                    results = []
                    yield_at = perf_counter() + LATENCY_BUDGET
                    if outbox.done:
                        return
            else:
                await outbox.emit(results)
        if failed is not None:
            raise failed


def _hand_over(results: list[Any], outbox: Outbox, scope: trio.CancelScope) -> BaseException | None:
    """Send what is done while a call waits; returns an error of the fused ops.

    The call has begun (it may be inside a cancel scope of its own), so it
    must be resumed even then: the error cancels ``scope``, which ends the
    call at once, and is raised after it.
    """
    try:
        outbox.add_nowait(results)
    except BaseException as exc:
        scope.cancel()
        return exc
    outbox.flush_nowait()
    return None
