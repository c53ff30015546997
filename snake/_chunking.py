"""Stage boundaries: stages exchange chunks, handed over when full or idle.

A trio memory-channel hop costs several microseconds; a Python call costs a
tenth of one. So stages send lists of items, and the one rule for when a
pending chunk goes out lives here. It goes out

* when it holds ``MAX_CHUNK`` items, the most a chunk ever holds
  (throughput for fast stages, and a bound on memory);
* when its stage is about to wait: for input, for results in flight, or
  inside a user's coroutine that suspends (detected exactly, see
  ``_flushing``), so nothing finished sits idle;
* at least once per ``LATENCY_BUDGET`` of busy work, when the stage also
  yields to the scheduler, so a stage computing for long still lets the
  next one start.

Synchronous work (pulling from a sync iterator, running fused inline ops) is
cut into units sized to take about half the budget (:class:`Pacer`), so the
last rule can be kept between units. Such work holds the event loop, so a
cancel takes effect only between units: each unit starts with
:func:`before_sync_work`, and none starts once the stage is cancelled.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from time import perf_counter
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._weight import CHUNK_BYTES, nbytes, per_chunk

if TYPE_CHECKING:
    import threading

    from ._stages._inline import FusedSteps
    from ._stats import StageClock

#: Most items in one chunk.
MAX_CHUNK = 1024
#: Longest a stage works without handing over its output and yielding.
LATENCY_BUDGET = 0.001
#: Chunks buffered in each channel between two stages.
CHANNEL_CHUNKS = 1
#: A loop over items checks the clock when ``i & CHECK_EVERY == 0``.
CHECK_EVERY = 15


class Taken:
    """What the next stage sets off each time it takes a chunk: one per
    channel, shared by the stage sending and the one receiving.

    It wakes a stage that sent a large item and waits for it to be taken,
    and hands over the items a stage could not as it blocked (the channel
    was full then): a stage blocked in user code, a source waiting for its
    next item, say, would otherwise keep them until it runs again.
    """

    __slots__ = ("_lot", "stalled")

    def __init__(self) -> None:
        self._lot = trio.lowlevel.ParkingLot()
        #: The sending stage's outbox, while it holds items it could not send.
        self.stalled: Outbox | None = None

    async def park(self) -> None:
        await self._lot.park()

    def took(self) -> None:
        """The receiving stage took a chunk: there is room in the channel."""
        if self._lot:
            self._lot.unpark_all()
        stalled, self.stalled = self.stalled, None
        if stalled is not None:
            stalled.flush_stalled()


#: Set by the synchronous bridge (``_sync``) once its consumer has stopped.
#: The cancel it sends from the consumer's thread reaches the stages only
#: when the event loop is free again: until then, work that holds the loop
#: must not start.
STOPPING: ContextVar[threading.Event | None] = ContextVar("snake_stopping", default=None)


async def before_sync_work() -> None:
    """Raise ``Cancelled`` if the stage is cancelled, or its cancel is on its way.

    Called before each unit of synchronous user code (a source's ``next()``,
    fused inline ops), which blocks the event loop while it runs: so no unit
    starts after a cancel, and stopping waits for the unit in progress only,
    a single call once calls take longer than the ``Pacer``'s target.
    """
    stopping = STOPPING.get()
    if stopping is not None and stopping.is_set():
        await trio.sleep_forever()  # the bridge's cancel is queued: it ends this
    await trio.lowlevel.checkpoint_if_cancelled()


class DownstreamClosed(Exception):
    """The next stage stopped reading: this stage stops quietly."""


@attrs.define(eq=False)
class Pacer:
    """Sizes units of work from how long the last one took.

    Aims for ``target`` seconds a unit, with at most ``maximum`` items and,
    given ``max_bytes``, at most that many bytes of large buffers in its
    results; starts at one item and at most doubles per unit, so a slow
    function is noticed after one item, not after a whole chunk.
    """

    _target: float = LATENCY_BUDGET / 2
    _maximum: int = MAX_CHUNK
    _max_bytes: int = 0
    #: Items in the next unit.
    size: int = attrs.field(default=1, init=False)

    def record(self, count: int, elapsed: float, nbytes: int = 0) -> None:
        if count <= 0:
            return
        per_item = elapsed / count
        fit = int(self._target / per_item) if per_item > 0 else self._maximum
        if nbytes and self._max_bytes:
            fit = min(fit, self._max_bytes * count // nbytes)
        self.size = max(1, min(fit, 2 * self.size, self._maximum))


@attrs.define(eq=False)
class Outbox:
    """The sending side of a stage: hosted inline ops, the pending chunk, the rule.

    Owned by one task. ``sent`` counts the items delivered downstream. A
    large item (``CHUNK_BYTES`` or more), once sent, waits in the channel
    until the next stage takes it (``taken`` wakes the stage then): the
    stage makes no other large item to hold meanwhile, so a channel of any
    buffer holds one large item, not a buffer's worth and one more.
    """

    _send: trio.MemorySendChannel[list[Any]]
    _chain: FusedSteps | None
    _scope: trio.CancelScope | None = None
    #: Where the time spent waiting for room downstream is added up.
    clock: StageClock | None = None
    #: Set off by the next stage each time it takes a chunk.
    taken: Taken | None = None
    _pacer: Pacer = attrs.field(init=False, factory=lambda: Pacer(max_bytes=CHUNK_BYTES))
    _yield_at: float = attrs.field(init=False, factory=lambda: perf_counter() + LATENCY_BUDGET)
    #: The stage's own output, not yet through the hosted ops: a stage
    #: that awaits user code appends here (see ``_flushing``).
    raw: list[Any] = attrs.field(init=False, factory=list)
    pending: list[Any] = attrs.field(init=False, factory=list)
    sent: int = attrs.field(init=False, default=0)
    #: Items the stage produced, before its hosted ops.
    accepted: int = attrs.field(init=False, default=0)
    #: An error of the hosted ops met while settling from outside the
    #: stage's code; it ends the stage through ``scope``.
    failed: BaseException | None = attrs.field(init=False, default=None)
    #: Items in a chunk at most: ``MAX_CHUNK``, fewer for items holding
    #: large buffers (``_weight``), weighed once a unit of output.
    chunk: int = attrs.field(init=False, default=MAX_CHUNK)
    #: Bytes of buffers in the last item weighed.
    item_bytes: int = attrs.field(init=False, default=0)

    @property
    def done(self) -> bool:
        """A fused ``take`` has all it needs: the stage should stop."""
        return self._chain is not None and self._chain.done

    @property
    def ends(self) -> bool:
        """A fused ``take`` may end the stream: feed it each item as it comes."""
        return self._chain is not None and self._chain.ends

    async def flush(self) -> None:
        """Send the pending items, if any, waiting for room downstream."""
        if self.pending:
            while self.pending:
                await self._send_chunk()
            self._yield_at = perf_counter() + LATENCY_BUDGET

    async def _send_chunk(self) -> None:
        chunk, self.pending = self._split()
        send = self._send
        # Counted before the handoff: the next stage may run before this one
        # resumes. As ``send()`` does, but the time spent blocked is measured.
        self.sent += len(chunk)
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                send.send_nowait(chunk)
            except trio.WouldBlock:
                began = trio.current_time()
                await send.send(chunk)
                if self.clock is not None:
                    self.clock.waiting_for_output += trio.current_time() - began
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
        except BaseException as exc:
            self.sent -= len(chunk)  # not delivered
            if isinstance(exc, trio.BrokenResourceError):
                raise DownstreamClosed from None
            raise
        if self.item_bytes >= CHUNK_BYTES:
            await self._handed_over()

    async def _handed_over(self) -> None:
        """Wait until the next stage has taken what waits in the channel.

        Cancelled, the items stay delivered: a stage whose channel is closed
        early is cancelled by the runner.
        """
        taken = self.taken
        if taken is not None:
            began = trio.current_time()
            while self._send.statistics().current_buffer_used:
                await taken.park()
            if self.clock is not None:
                self.clock.waiting_for_output += trio.current_time() - began

    def flush_nowait(self) -> None:
        """Hand pending items over as far as there is room downstream right now.

        If there is none, the next stage is busy and not waiting for them:
        they stay pending, to go out with the next flush.
        """
        while self.pending:
            chunk, rest = self._split()
            try:
                self._send.send_nowait(chunk)
            except (trio.WouldBlock, trio.BrokenResourceError):
                return  # a closed downstream is reported by the next flush()
            self.pending = rest
            self.sent += len(chunk)

    def _split(self) -> tuple[list[Any], list[Any]]:
        # The next chunk to send, and what stays pending after it.
        pending, chunk = self.pending, self.chunk
        if len(pending) <= chunk:
            return pending, []
        return pending[:chunk], pending[chunk:]

    def _weigh(self, items: list[Any]) -> None:
        """Size chunks from the first of ``items``: items of ``CHUNK_BYTES`` or
        more go one per chunk; items holding no buffers, ``MAX_CHUNK``."""
        if items:
            self.item_bytes = nbytes(items[0])
            self.chunk = per_chunk(self.item_bytes, MAX_CHUNK)

    def on_block(self) -> None:
        """The stage's task has just blocked: settle its output, hand over what fits.

        Called by the ``_flushing`` instrument, outside the stage's code: an
        error of the hosted ops is kept in ``failed`` and ends the stage by
        cancelling its scope, and the runner raises it. What does not fit
        goes when the next stage takes a chunk (``Taken.took``), if this one
        is still blocked then.
        """
        if self.raw:
            try:
                self.settle()
            except BaseException as exc:
                self.failed = exc
                if self._scope is not None:
                    self._scope.cancel()
                return
        self.flush_stalled()

    def flush_stalled(self) -> None:
        """``flush_nowait``, and if items are left, again when there is room."""
        with contextlib.suppress(trio.ClosedResourceError):  # the stage has ended
            self.flush_nowait()
            if self.pending and self.taken is not None:
                self.taken.stalled = self

    def settle(self) -> None:
        """Run what ``raw`` holds through the hosted ops, into ``pending``."""
        self.add_nowait(self._take_raw())

    async def emit_raw(self) -> None:
        """``emit`` what ``raw`` holds."""
        if self.raw:
            await self.emit(self._take_raw())

    def _take_raw(self) -> list[Any]:
        items = self.raw[:]
        self.raw.clear()  # in place: the stage holds on to this list
        return items

    def add_nowait(self, items: list[Any]) -> None:
        """Queue items without waiting: the hosted ops run, nothing is sent.

        For a stage about to wait; it must call ``flush_nowait()`` next and
        let the pending items go out in full chunks with the next flush.
        """
        self.accepted += len(items)
        if self._chain is not None and not self._chain.done:
            items = self._chain.process(items)
        self._weigh(items)
        if self.pending:
            self.pending += items
        else:
            self.pending = items

    async def emit(self, items: list[Any]) -> None:
        """Queue the output of a unit of work; the hosted inline ops run here.

        ``items`` becomes the outbox's: the caller must not touch it again.
        """
        self.accepted += len(items)
        chain = self._chain
        if chain is None:
            await self._add(items)
            return
        pacer = self._pacer
        start, count = 0, len(items)
        while start < count and not chain.done:
            size = pacer.size
            part = items if start == 0 and size >= count else items[start : start + size]
            start += size
            await before_sync_work()
            began = perf_counter()
            out = chain.process(part)
            elapsed = perf_counter() - began
            await self._add(out)  # weighs ``out``
            # Units of large items are sized by bytes too.
            pacer.record(len(part), elapsed, self.item_bytes * len(out))

    async def finish(self) -> None:
        """End of input: send what the hosted ops still hold, such as a last batch."""
        await self.emit_raw()
        if self._chain is not None:
            await before_sync_work()
            await self._add(self._chain.finish())
        await self.flush()

    async def _add(self, items: list[Any]) -> None:
        self._weigh(items)
        if self.pending:
            self.pending += items
        else:
            self.pending = items
        while len(self.pending) >= self.chunk:
            await self._send_chunk()
        if perf_counter() >= self._yield_at:
            # Busy for a whole budget: hand over what there is, let others run.
            if self.pending:
                await self.flush()
            else:
                await trio.lowlevel.checkpoint()
                self._yield_at = perf_counter() + LATENCY_BUDGET


@attrs.define(eq=False)
class Inbox:
    """The receiving side of a stage.

    Before it waits for input it flushes the stage's outbox, so nothing
    finished sits in a pending chunk while the stage is idle. ``received``
    counts the items taken in; ``position`` is where they end in the input
    (in a resumed run, counted from its start: see ``_position``).
    """

    _recv: trio.MemoryReceiveChannel[list[Any]]
    _outbox: Outbox | None
    #: Where the time spent waiting for input is added up.
    clock: StageClock | None = None
    #: Set off on taking each chunk (see ``Outbox``).
    taken: Taken | None = None
    received: int = attrs.field(default=0, init=False)
    #: The position of its first item.
    start: int = attrs.field(default=0, kw_only=True)

    @property
    def position(self) -> int:
        return self.start + self.received

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
            began = trio.current_time()
            try:
                chunk = await self._recv.receive()
            except trio.EndOfChannel:
                return None
            finally:
                if self.clock is not None:
                    self.clock.waiting_for_input += trio.current_time() - began
        except trio.EndOfChannel:
            return None
        self.received += len(chunk)
        if self.taken is not None:
            self.taken.took()
        return chunk
