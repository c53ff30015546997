"""What ``Pipeline.open()`` returns, and the channel it yields: items out of the
last stage's chunks."""

from __future__ import annotations

import collections
import itertools
from contextlib import AbstractAsyncContextManager
from operator import length_hint
from time import perf_counter
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import trio

from ._chunking import LATENCY_BUDGET, Pacer, Taken
from ._position import NotResumable

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterator
    from types import AsyncGeneratorType

    from ._position import Saved
    from ._stats import Statistics

T = TypeVar("T")

#: Chunks received between two walks that let the operators forget the
#: positions the consumer has passed (see ``_position``).
TRIM_EVERY = 32


class PipelineReceiver(trio.abc.ReceiveChannel[T]):
    """Receives a pipeline's items one by one.

    Items arrive in chunks; every way of reading shares one iterator over
    the current chunk, so ``receive()``, ``async for`` (also resumed after a
    ``break``) and several tasks reading at once each get every item exactly
    once, in order. Reading is a full checkpoint when a chunk is fetched,
    and at least once per ``LATENCY_BUDGET`` of real time otherwise, so
    cancellation still reaches a consumer that never blocks. Closing it
    stops every stage of the pipeline.
    """

    __slots__ = (
        "_busy", "_chunks", "_fetched", "_fetching", "_iterator", "_pending", "_received",
        "_since_trim", "_state", "_statistics", "_stop", "_taken", "_trim_at", "_walk",
        "_walked", "_yield_at",
    )  # fmt: skip

    def __init__(
        self,
        chunks: trio.MemoryReceiveChannel[list[T]],
        stop: Callable[[], None],
        statistics: Callable[[], Statistics],
        taken: Taken | None = None,
    ) -> None:
        self._chunks = chunks
        # Set off on taking each chunk: the last stage may wait for it (see Outbox).
        self._taken = taken
        self._stop = stop
        self._statistics = statistics
        self._pending: Iterator[T] = iter(())
        self._yield_at = 0.0
        self._iterator: AsyncGeneratorType[T, None] | None = None
        # True while the iterator awaits: another task must not enter it then.
        self._busy = False
        # One task at a time waits for the next chunk; others wait for it to
        # arrive. Two tasks each receiving a chunk could resume in either
        # order, and the later chunk would be read first.
        self._fetching = False
        self._fetched = trio.lowlevel.ParkingLot()
        # Positions (see ``_position``): items taken out of the channel, in
        # a resumed run counted from where it resumed; where each operator
        # stood at a position; the run's state at one (the runner's).
        self._received = 0
        self._walk: Callable[[int], list[Saved]] | None = None
        self._state: Callable[[int], dict[str, Any]] | None = None
        # Chunks since the operators last forgot positions behind the
        # consumer, and where the consumer is, for that.
        self._since_trim = 0
        self._trim_at: Callable[[], int] | None = None
        # The furthest position walked to: the operators have forgotten the
        # ones before it, so no walk goes back (the synchronous bridge's
        # consumer position, read from another thread, may lag behind).
        self._walked = 0

    def _track(self, walk: Callable[[int], list[Saved]], start: int, *, trims: bool) -> None:
        """Keep positions: the run's operators' ``walk``, from ``start`` items;
        ``trims``: the operators forget the positions the consumer has passed
        every ``TRIM_EVERY`` chunks (a nested run's are trimmed by its stage's)."""
        self._walk = walk
        self._received = self._walked = start
        if trims:
            self._trim_at = self._position

    def _position(self) -> int:
        """Items the consumer has received."""
        return self._received - length_hint(self._pending)

    def _saved(self, out: int) -> list[Saved]:
        if self._walk is None:
            raise NotResumable(
                "this run does not keep positions (a pipeline nested in one that cannot save them)"
            )
        self._walked = max(self._walked, out)
        return self._walk(out)

    def _took_chunk(self, size: int) -> None:
        self._received += size
        if self._trim_at is not None:
            self._since_trim += 1
            if self._since_trim >= TRIM_EVERY:
                self._since_trim = 0
                self._saved(max(self._trim_at(), self._walked))

    def state_dict(self) -> dict[str, Any]:
        """Where the run stands, after the last item received, as JSON-ready data.

        Synchronous and cheap: call it at any time, as often as you like. It
        holds positions, never items. ``pipeline.open(state=...)`` (or
        ``iterate``, ``collect``) runs the rest of the run: exactly the items
        that would have followed, for a pipeline that keeps its order.

        Raises:
          RuntimeError: the pipeline cannot save its position, saying which
            operator and what to do instead.
        """
        return self._state_at(self._position())

    def _state_at(self, position: int) -> dict[str, Any]:
        if self._state is None:
            raise NotResumable("state_dict() is for the receiver that pipeline.open() yields")
        return self._state(position)

    def statistics(self) -> Statistics:
        """Each stage's figures so far, and the bottleneck: see :class:`snake.Statistics`.

        Cheap to call while the pipeline runs; after it has ended, the
        figures of the whole run.
        """
        return self._statistics()

    async def receive(self) -> T:
        """The next item.

        Raises:
          trio.EndOfChannel: the pipeline has produced all its items.
          trio.ClosedResourceError: this channel was closed.
        """
        if perf_counter() >= self._yield_at:
            await self._pause()
        while True:
            for x in self._pending:
                return x
            await self._refill()

    async def receive_chunk(self) -> list[T]:
        """The next items in bulk: the rest of the chunk being read, or the next chunk.

        For consumers that take many items at a time (``collect()`` reads
        this way); mixed with ``receive()`` and ``async for``, every item
        still comes out once, in order.

        Raises:
          trio.EndOfChannel: the pipeline has produced all its items.
        """
        rest = list(self._pending)
        if rest:
            await trio.lowlevel.checkpoint_if_cancelled()
            return rest
        chunk = await self._chunks.receive()
        self._took()
        self._took_chunk(len(chunk))
        return chunk

    def __aiter__(self) -> AsyncIterator[T]:  # type: ignore[override]
        # `async for` is a pipeline's hot loop: an async generator resumed
        # from C costs a fraction of a receive() call per item. The receiver
        # keeps it, so a `break` does not abandon it; a second task looping
        # while it waits for a chunk falls back to receive().
        iterator = self._iterator
        if iterator is None or iterator.ag_frame is None:  # none yet, or it ended
            iterator = self._iterator = cast("AsyncGeneratorType[T, None]", self._iterate())
        elif self._busy:
            return self
        return iterator

    async def aclose(self) -> None:
        """Stop receiving, and stop every stage of the pipeline."""
        self._chunks.close()
        self._stop()
        await self._close_iterator()
        await trio.lowlevel.checkpoint()

    async def _close_iterator(self) -> None:
        # Nothing more may come out of the chunk being read, from any path.
        collections.deque(self._pending, maxlen=0)
        iterator, self._iterator = self._iterator, None
        if iterator is not None and not self._busy:
            await iterator.aclose()  # at a `yield`: no checkpoint, cannot be cancelled

    async def _iterate(self) -> AsyncGenerator[T, None]:
        # Items go out in slices sized to take the consumer about half the
        # budget, with the time checked only between slices.
        pacer = Pacer()
        while True:
            if perf_counter() >= self._yield_at:
                self._busy = True
                try:
                    await self._pause()
                finally:
                    self._busy = False
            it = self._pending
            count = min(pacer.size, length_hint(it))
            if not count:
                self._busy = True
                try:
                    await self._refill()
                except trio.EndOfChannel:
                    return
                finally:
                    self._busy = False
                continue
            began = perf_counter()
            for x in itertools.islice(it, count):
                yield x
            pacer.record(count, perf_counter() - began)

    def _receive_chunks_nowait(self, into: list[list[T]], limit: int) -> int:
        """Append chunks that are already here to ``into``, up to ``limit`` items.

        Returns how many items were added.
        """
        added = 0
        while added < limit:
            try:
                chunk = self._chunks.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            into.append(chunk)
            added += len(chunk)
            self._took_chunk(len(chunk))
        self._took()
        return added

    def _took(self) -> None:
        if self._taken is not None:
            self._taken.took()

    async def _pause(self) -> None:
        await trio.lowlevel.checkpoint()
        self._yield_at = perf_counter() + LATENCY_BUDGET

    async def _refill(self) -> None:
        """Wait for the next chunk to be in ``_pending``, or for the end.

        Callers read ``_pending`` again after: another task's fetch may have
        filled it, or ended (and this task's own fetch raises ``EndOfChannel``).
        """
        if self._fetching:
            await self._fetched.park()
            return
        self._fetching = True
        try:
            # Only this task installs a chunk, and only once the last is read.
            chunk = await self._chunks.receive()
            self._pending = iter(chunk)
            self._took()
            self._took_chunk(len(chunk))
            self._yield_at = perf_counter() + LATENCY_BUDGET
        finally:
            self._fetching = False
            self._fetched.unpark_all()


class Opened(AbstractAsyncContextManager[T]):
    """``open()``'s async context manager, which a plain ``with`` names the fix for.

    ``__aenter__`` and ``__aexit__`` hand back ``manager``'s awaitables
    rather than awaiting them, so tracebacks gain no frame of this class.
    """

    __slots__ = ("_manager",)

    def __init__(self, manager: AbstractAsyncContextManager[T]) -> None:
        self._manager = manager

    def __aenter__(self) -> Coroutine[Any, Any, T]:
        return self._manager.__aenter__()

    def __aexit__(self, *exc_info: Any) -> Coroutine[Any, Any, bool | None]:
        return self._manager.__aexit__(*exc_info)

    def __enter__(self) -> NoReturn:
        raise TypeError(
            "pipeline.open() runs the pipeline in a trio nursery, so it needs `async with`: "
            "inside trio, `async with pipeline.open() as items: async for x in items: ...`; "
            "in synchronous code, `for x in pipeline: ...` or `pipeline.iterate()`"
        )

    def __exit__(self, *exc_info: object) -> None:  # `with` needs it; never reached
        return None
