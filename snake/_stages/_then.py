"""``then``: one async call per item, one at a time.

Ordering: input order. Buffering: one pending chunk, handed over as soon as a
call suspends (so a slow function keeps per-item latency).
On cancel or error, the call in flight is cancelled with the stage.
"""

from __future__ import annotations

import re
from time import perf_counter
from typing import TYPE_CHECKING, Any

import attrs

from .. import _validate as check
from .._chunking import CHECK_EVERY, LATENCY_BUDGET, Inbox, Outbox
from .._errors import add_stage_note, carried, failed_at
from .._flushing import watching
from .._policy import ErrorPolicy, Failures, retrying_async
from .._position import Saved
from .._validate import func_name
from ._base import Context, OnePerItem, Stage, StageSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._base import Spec
    from ._rehearsal import Rehearsal


@attrs.frozen
class Then(OnePerItem, StageSpec):
    fn: Callable[[Any], Awaitable[Any]]
    policy: ErrorPolicy = ErrorPolicy()
    #: The operator it stands in for in a test (see ``_rehearsal``): it
    #: describes itself, and shapes its states, as that one.
    original: Spec | None = attrs.field(default=None, kw_only=True)

    advice = "use par_then(...) to run calls concurrently"

    def describe(self) -> str:
        return f"then({func_name(self.fn)})" if self.original is None else self.original.describe()

    def shape(self) -> str:
        return self.describe() if self.original is None else self.original.shape()

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        return rehearsal.calls(self, self.fn, self.policy)

    def build(self, context: Context) -> Stage:
        return _stage(self.fn, self.policy, context)


@attrs.frozen
class InlineMap(OnePerItem, StageSpec):
    """``par_map(fn, executor="inline")``: ``fn`` called as ``then`` awaits its
    function, one item at a time, in the pipeline's own thread, so that a
    breakpoint in it stops there; errors and skipping as every map has them."""

    fn: Callable[[Any], Any]
    policy: ErrorPolicy = ErrorPolicy()

    advice = 'it runs with executor="inline", for debugging: use "process" or "thread"'

    def describe(self) -> str:
        return f"par_map({func_name(self.fn)})"

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        return rehearsal.calls(self, self.fn, self.policy, awaits=False)

    def build(self, context: Context) -> Stage:
        fn = self.fn

        async def call(x: Any) -> Any:
            return fn(x)

        return _stage(call, self.policy, context)


def _stage(fn: Callable[[Any], Awaitable[Any]], policy: ErrorPolicy, context: Context) -> Stage:
    """``fn`` awaited on each item in turn, retried and skipping as ``policy`` says."""
    retried = retrying_async(fn, policy.retries) if policy.retries else fn
    saved = context.saved[0] if context.saved else None
    return _ThenStage(retried, context.label, policy.failures(context.label, saved))


#: Slices start at multiples of 16: this samples one slice in eight.
LATENCY_EVERY = 8 * (CHECK_EVERY + 1) - 1


class _ThenStage:
    def __init__(
        self, fn: Callable[[Any], Awaitable[Any]], label: str, failures: Failures | None
    ) -> None:
        self._fn = fn
        self._label = label
        self.failures = failures  # with errors="skip"

    def saved(self, out: int) -> list[Saved]:
        return [Saved(out) if self.failures is None else self.failures.resumed_at(out)]

    def sources(self, positions: frozenset[int]) -> set[int]:
        return set(positions) if self.failures is None else self.failures.sources(positions)

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None:
        assert inbox is not None
        if outbox.done:  # take(0): not one call
            return
        with watching(outbox):
            while (chunk := await inbox.next()) is not None:
                await self._call_each(chunk, inbox.position - len(chunk), outbox)
                if outbox.done:
                    return

    async def _call_each(self, chunk: list[Any], base: int, outbox: Outbox) -> None:
        # The hot loop of every `then`: a plain await per item, over slices
        # of CHECK_EVERY + 1 items with the clock checked between them.
        # Results go to `outbox.raw`; if a call blocks, the `_flushing`
        # instrument hands them over meanwhile. A fused `take` sees each
        # result at once, so no call is made past its end.
        if outbox.ends:
            await self._call_each_checked(chunk, base, outbox)
            return
        fn = self._fn
        append = outbox.raw.append
        step = CHECK_EVERY + 1
        latencies = None if outbox.clock is None else outbox.clock.latencies
        now = perf_counter()
        yield_at = now + LATENCY_BUDGET
        for start in range(0, len(chunk), step):
            part = chunk[start : start + step] if len(chunk) > step else chunk
            it = iter(part)
            while True:
                try:
                    for x in it:
                        append(await fn(x))
                    break
                except Exception as exc:
                    self._failed(exc, base + start + failed_at(part, it))
            # The clock read once per slice tells when to yield; every 8th
            # slice, its time per item is also a latency sample.
            began, now = now, perf_counter()
            if latencies is not None and not start & LATENCY_EVERY:
                latencies.append((now - began) / len(part))
            if now >= yield_at:
                await outbox.emit_raw()  # hands over and lets others run
                now = perf_counter()  # the wait is not the next slice's
                yield_at = now + LATENCY_BUDGET
                if outbox.done:
                    return
        await outbox.emit_raw()

    async def _call_each_checked(self, chunk: list[Any], base: int, outbox: Outbox) -> None:
        """``_call_each`` when a fused operator may end the stream after any result."""
        fn = self._fn
        raw = outbox.raw
        yield_at = perf_counter() + LATENCY_BUDGET
        for i, x in enumerate(chunk):
            try:
                raw.append(await fn(x))
            except Exception as exc:
                self._failed(exc, base + i)
                continue  # skipped
            outbox.settle()
            if outbox.done:
                return
            if not i & CHECK_EVERY and perf_counter() >= yield_at:
                await outbox.emit_raw()
                yield_at = perf_counter() + LATENCY_BUDGET
                if outbox.done:
                    return
        await outbox.emit_raw()

    def _failed(self, exc: Exception, position: int) -> None:
        """Raise ``exc``, annotated, unless the stage skips failing items."""
        error = self._annotated(exc, position)
        if error is not exc:
            raise error from None
        if self.failures is None or isinstance(exc, check.NotAwaitable):
            raise carried(exc)
        self.failures.skip(exc, position)

    def _annotated(self, exc: Exception, position: int) -> Exception:
        """``exc`` with its stage note; a result that could not be awaited, explained."""
        if (
            isinstance(exc, TypeError)
            and exc.__traceback__ is not None
            and exc.__traceback__.tb_next is None  # raised by the await here, not in fn
            and (kind := _not_awaited.search(str(exc))) is not None
        ):
            exc = check.not_awaitable(kind.group(1) or kind.group(2))
        add_stage_note(exc, self._label, position)
        return exc


#: Python's message for awaiting what cannot be awaited (3.11, and 3.12 on).
_not_awaited = re.compile(r"object (\w+) can't be used in 'await'|'(\w+)' object can't be awaited")
