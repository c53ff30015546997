"""``then``: one async call per item, one at a time.

Ordering: input order. Buffering: one pending chunk, handed over as soon as a
call suspends (so a slow function keeps per-item latency).
On cancel or error, the call in flight is cancelled with the stage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from .._chunking import Inbox, Outbox, flush_on_suspend
from .._errors import add_stage_note
from .._executors import Executors
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
        fn = self._fn
        while (chunk := await inbox.next()) is not None:
            base = inbox.received - len(chunk)
            for i, x in enumerate(chunk):
                try:
                    y = await flush_on_suspend(fn(x), outbox)
                except Exception as exc:
                    add_stage_note(exc, self._label, base + i)
                    raise
                await outbox.emit([y])
                if outbox.done:
                    return
