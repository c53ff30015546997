"""``concat``, ``zip`` and ``merge``: sources made of other pipelines.

Each runs its pipelines nested in its own task, so each keeps its own
stages, buffers and workers, and stopping the combined pipeline stops them
all. ``concat`` runs them one after another, ``zip`` together in lockstep
(stopping at the shortest, as Python's ``zip``), ``merge`` together,
passing items on as they come (completion order).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from .._chunking import MAX_CHUNK, Outbox
from .._errors import open_nursery
from .._policy import Failures
from ._base import Spec, Stage, StageSpec


def _inner(pipelines: Sequence[tuple[Spec, ...]]) -> str:
    return ", ".join(".".join(spec.describe() for spec in specs) for specs in pipelines)


@attrs.frozen
class Combine(StageSpec):
    how: str  # "concat", "zip", "merge" or "mix"
    pipelines: tuple[tuple[Spec, ...], ...]
    #: For "mix": the weights, the seed, and when to stop.
    weights: tuple[float, ...] = ()
    seed: int | None = None
    stop: str = "first_exhausted"

    def describe(self) -> str:
        if self.how == "mix":
            return f"mix([{_inner(self.pipelines)}], {list(self.weights)})"
        return f"{self.how}({_inner(self.pipelines)})"

    def build(self, label: str, executors: Any) -> Stage:
        return _CombineStage(self)


class _CombineStage:
    failures: Failures | None = None  # never skips

    def __init__(self, spec: Combine) -> None:
        self._spec = spec
        self._how = spec.how
        self._pipelines = spec.pipelines

    async def run(self, inbox: Any, outbox: Outbox) -> None:
        await getattr(self, f"_{self._how}")(outbox)

    async def _concat(self, outbox: Outbox) -> None:
        from .._runner import open_pipeline  # the runner imports the stages

        for specs in self._pipelines:
            async with open_pipeline(specs) as items:
                while not outbox.done:
                    try:
                        await outbox.emit(await items._receive_chunk())
                    except trio.EndOfChannel:
                        break
            if outbox.done:
                return

    async def _zip(self, outbox: Outbox) -> None:
        from .._runner import open_pipeline

        if not self._pipelines:
            return
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(open_pipeline(s)) for s in self._pipelines]
            held: list[list[Any]] = [[] for _ in streams]
            while not outbox.done:
                for k, items in enumerate(streams):
                    if not held[k]:
                        try:
                            held[k] = await items._receive_chunk()
                        except trio.EndOfChannel:
                            return  # the shortest has ended
                n = min(map(len, held))
                await outbox.emit(list(zip(*(h[:n] for h in held), strict=True)))
                held = [h[n:] for h in held]

    async def _mix(self, outbox: Outbox) -> None:
        """Each item from a pipeline drawn at random by weight (seeded, so repeatable)."""
        from .._runner import open_pipeline

        spec = self._spec
        draw = random.Random(spec.seed).choices
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(open_pipeline(s)) for s in self._pipelines]
            held: list[list[Any]] = [[] for _ in streams]
            active = list(range(len(streams)))
            weights = list(spec.weights)
            out: list[Any] = []
            while active and not outbox.done:
                k = draw(active, weights)[0]
                if not held[k]:
                    if out:  # hand over what is ready before waiting for more
                        await outbox.emit(out)
                        out = []
                    try:
                        held[k] = (await streams[k]._receive_chunk())[::-1]
                    except trio.EndOfChannel:
                        if spec.stop == "first_exhausted":
                            break
                        at = active.index(k)
                        del active[at], weights[at]
                        continue
                out.append(held[k].pop())
                if len(out) >= MAX_CHUNK:
                    await outbox.emit(out)
                    out = []
            if out and not outbox.done:
                await outbox.emit(out)

    async def _merge(self, outbox: Outbox) -> None:
        from .._runner import open_pipeline

        send, receive = trio.open_memory_channel[list[Any]](len(self._pipelines) or 1)

        async def forward(specs: tuple[Spec, ...], send: trio.MemorySendChannel[list[Any]]) -> None:
            with send:
                async with open_pipeline(specs) as items:
                    while True:
                        try:
                            chunk = await items._receive_chunk()
                        except trio.EndOfChannel:
                            return
                        await send.send(chunk)

        async with open_nursery() as nursery:
            with send:
                for specs in self._pipelines:
                    nursery.start_soon(forward, specs, send.clone())
            with receive:
                async for chunk in receive:
                    await outbox.emit(chunk)
                    if outbox.done:
                        break
            nursery.cancel_scope.cancel()
