"""Stage boundaries: stages exchange chunks, sent when full, late, or idle.

A trio memory-channel hop costs several microseconds; a Python call costs a
tenth of one. So stages send lists of items, and the one rule for when a
pending chunk goes out lives here:

* it holds ``MAX_CHUNK`` items (throughput for fast stages);
* the stage is about to wait for input (nothing sits idle in a buffer);
* its oldest item would otherwise wait longer than ``LATENCY_BUDGET``, judged
  *before* the next unit of work from how long the last one took, so a stage
  whose items take a second each sends every item on its own.

Synchronous work (pulling from a sync iterator, running fused inline ops) is
cut into units sized to take about half the budget (:class:`Pacer`), so the
rule can be checked between units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import trio

#: Most items in one chunk.
MAX_CHUNK = 256
#: Longest an item should wait in a pending chunk while its stage works on.
LATENCY_BUDGET = 0.001
#: Chunks buffered in each channel between two stages.
CHANNEL_CHUNKS = 1


class DownstreamClosed(Exception):
    """The next stage stopped reading: this stage stops quietly."""


class Chain(Protocol):
    """Inline operators fused into the stage before them (see ``_stages._inline``)."""

    done: bool

    def process(self, items: list[Any]) -> list[Any]: ...

    def finish(self) -> list[Any]: ...


class Pacer:
    """Sizes units of work from how long the last one took.

    Aims for ``target`` seconds a unit, with at most ``maximum`` items;
    starts at one item and at most doubles per unit, so a slow function is
    noticed after one item, not after a whole chunk. ``expected`` is the
    predicted duration of the next unit.
    """

    __slots__ = ("_maximum", "_target", "expected", "size")

    def __init__(self, target: float = LATENCY_BUDGET / 2, maximum: int = MAX_CHUNK) -> None:
        self._target = target
        self._maximum = maximum
        self.size = 1
        self.expected = 0.0

    def record(self, count: int, elapsed: float) -> None:
        if count <= 0:
            return
        per_item = elapsed / count
        fit = int(self._target / per_item) if per_item > 0 else self._maximum
        self.size = max(1, min(fit, 2 * self.size, self._maximum))
        self.expected = per_item * self.size


class Outbox:
    """The sending side of a stage: hosted inline ops, the pending chunk, the rule.

    Owned by one task. ``sent`` counts the items delivered downstream.
    """

    __slots__ = ("_chain", "_pacer", "_send", "_since", "now", "pending", "sent")

    def __init__(
        self,
        send: trio.MemorySendChannel[list[Any]],
        chain: Chain | None,
        now: Callable[[], float],
    ) -> None:
        self._send = send
        self._chain = chain
        self._pacer = Pacer()
        self._since = 0.0
        self.now = now
        self.pending: list[Any] = []
        self.sent = 0

    @property
    def done(self) -> bool:
        """A fused ``take`` has all it needs: the stage should stop."""
        return self._chain is not None and self._chain.done

    def due(self, now: float, expected: float) -> bool:
        """Would the oldest pending item exceed the budget during ``expected`` more seconds?"""
        return bool(self.pending) and now - self._since + expected >= LATENCY_BUDGET

    async def flush(self) -> None:
        """Send the pending chunk, if any."""
        chunk = self.pending
        if chunk:
            self.pending = []
            try:
                await self._send.send(chunk)
            except trio.BrokenResourceError:
                raise DownstreamClosed from None
            self.sent += len(chunk)

    async def emit(self, items: list[Any], started: float) -> None:
        """Queue the output of a unit of work begun at ``started``.

        The hosted inline ops run here, in paced slices. ``items`` becomes
        the outbox's: the caller must not touch it again.
        """
        chain = self._chain
        if chain is None:
            await self._add(items, started)
            return
        pacer, now = self._pacer, self.now
        start, count = 0, len(items)
        while start < count and not chain.done:
            size = pacer.size
            part = items if start == 0 and size >= count else items[start : start + size]
            start += size
            began = now()
            if self.due(began, pacer.expected):
                await self.flush()
            out = chain.process(part)
            pacer.record(len(part), now() - began)
            await self._add(out, began)

    async def finish(self) -> None:
        """End of input: send what the hosted ops still hold, such as a last batch."""
        if self._chain is not None:
            await self._add(self._chain.finish(), self.now())
        await self.flush()

    async def _add(self, items: list[Any], started: float) -> None:
        if not items:
            return
        if self.pending:
            self.pending += items
        else:
            self.pending = items
            self._since = started
        if len(self.pending) >= MAX_CHUNK:
            await self.flush()


class Inbox:
    """The receiving side of a stage.

    Before it waits for input it flushes the stage's outbox, so nothing
    finished sits in a pending chunk while the stage is idle. ``received``
    counts the items taken in.
    """

    __slots__ = ("_outbox", "_recv", "received")

    def __init__(
        self, recv: trio.MemoryReceiveChannel[list[Any]], outbox: Outbox | None
    ) -> None:
        self._recv = recv
        self._outbox = outbox
        self.received = 0

    async def next(self, *, flush: bool = True) -> list[Any] | None:
        """The next chunk, or ``None`` at the end of the input.

        ``flush=False`` is for a helper task that must not touch the outbox
        (its owner flushes when it waits).
        """
        try:
            chunk = self._recv.receive_nowait()
        except trio.WouldBlock:
            if flush and self._outbox is not None:
                await self._outbox.flush()
            try:
                chunk = await self._recv.receive()
            except trio.EndOfChannel:
                return None
        except trio.EndOfChannel:
            return None
        self.received += len(chunk)
        return chunk
