"""``then``: one async call per item, one at a time.

Ordering: input order. Buffering: one pending chunk, handed over as soon as a
call suspends (so a slow function keeps per-item latency).
On cancel or error, the call in flight is cancelled with the stage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import attrs

from .. import _validate as check
from .._chunking import CHECK_EVERY, LATENCY_BUDGET, Inbox, Outbox
from .._errors import add_stage_note
from .._executors import Executors
from .._flushing import watching
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
        with watching(outbox):
            while (chunk := await inbox.next()) is not None:
                await self._call_each(chunk, inbox.received - len(chunk), outbox)
                if outbox.done:
                    return

    async def _call_each(self, chunk: list[Any], base: int, outbox: Outbox) -> None:
        # The hot loop of every `then`: a plain await per item. Results go
        # to `outbox.raw`; if a call blocks, the `_flushing` instrument hands
        # them over meanwhile. A fused `take` sees each result at once, so no
        # call is made past its end.
        fn = self._fn
        raw = outbox.raw
        each = outbox.ends
        yield_at = perf_counter() + LATENCY_BUDGET
        for i, x in enumerate(chunk):
            try:
                coro = fn(x)
            except Exception as exc:
                add_stage_note(exc, self._label, base + i)
                raise
            try:
                raw.append(await coro)
            except Exception as exc:
                if isinstance(exc, TypeError) and not hasattr(coro, "__await__"):
                    error = check.not_awaitable(coro)
                    add_stage_note(error, self._label, base + i)
                    raise error from None
                add_stage_note(exc, self._label, base + i)
                raise
            if each:
                outbox.settle()
                if outbox.done:
                    return
            if not i & CHECK_EVERY and perf_counter() >= yield_at:
                await outbox.emit_raw()  # hands over and lets others run
                yield_at = perf_counter() + LATENCY_BUDGET
                if outbox.done:
                    return
        await outbox.emit_raw()
