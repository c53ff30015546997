"""Synchronous iteration: the pipeline runs under trio in a background thread.

Chunks cross to the consuming thread through a queue, several at a time when
they have piled up (waking a thread costs far more than an item); the trio
side keeps at most ``HANDOFFS`` handoffs there, so a slow consumer holds the
pipeline back instead of filling memory: it waits on at most
``HANDOFFS * (HANDOFF_ITEMS + MAX_CHUNK)`` items beyond what the pipeline's
own channels hold. Items of a MiB or more cross one per handoff, at most
``LARGE_HANDOFFS`` of them waiting, and the next is taken from the pipeline
only once there is room for it. Stopping (``break``, ``close()``,
garbage collection, an exception such as Ctrl-C's ``KeyboardInterrupt`` in
the consumer) cancels the run and joins the thread before returning; a
synchronous call blocking the event loop then (a source's ``next()``, an
inline ``map``) ends, and no other starts (``_chunking.STOPPING``).
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import itertools
import queue
import threading
from operator import length_hint
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import trio

from ._chunking import STOPPING
from ._errors import uncarried
from ._nursery import raise_as_is
from ._tracebacks import trimmed
from ._weight import CHUNK_BYTES, nbytes, per_chunk

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from contextlib import AbstractAsyncContextManager

    from ._receiver import PipelineReceiver

T = TypeVar("T")

#: Handoffs that may wait for the consuming thread.
HANDOFFS = 2
#: Handoffs of items of a MiB or more that may wait: one, so that the
#: consumer's next item is at hand when it is done with one, and no more.
LARGE_HANDOFFS = 1
#: Most items in one handoff: waking the other thread costs tens of
#: microseconds, so chunks that pile up meanwhile cross together.
HANDOFF_ITEMS = 4096
#: Buffer of the pipeline's last channel, in chunks, where they pile up.
OUTPUT_CHUNKS = 2


def _handoff_items(size: int) -> int:
    """Items one handoff takes at most, of ``size`` bytes of buffers each:
    ``HANDOFF_ITEMS``, fewer for items holding large buffers (a chunk's
    worth: one item of a MiB or more)."""
    return per_chunk(size, HANDOFF_ITEMS)


class Opener(Protocol[T]):
    def __call__(
        self, *, output_chunks: int
    ) -> AbstractAsyncContextManager[PipelineReceiver[T]]: ...


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class _Bridge(Generic[T]):
    def __init__(self, open_pipeline: Opener[T], consumer: _Consumer[T]) -> None:
        self._open = open_pipeline
        self._consumer = consumer
        # The receiver, once the pipeline runs: where its run stands.
        self._items: PipelineReceiver[T] | None = None
        self._opened = threading.Event()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stopping = threading.Event()
        self._scope = trio.CancelScope()
        self._room = trio.Semaphore(HANDOFFS)
        self._thread = threading.Thread(
            target=self._thread_main, name="snake pipeline", daemon=True
        )
        self._thread.start()

    def _thread_main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:
            self._queue.put(_Failed(exc))
        else:
            self._queue.put(_END)

    async def _serve(self) -> None:
        with self._scope:
            # The consuming thread reaches the scope and the semaphore through
            # the token; a stop asked for before it was published is seen here.
            self._token = trio.lowlevel.current_trio_token()
            if self._stopping.is_set():
                self._scope.cancel()
            # The stages see a stop at once, before the cancel reaches them.
            STOPPING.set(self._stopping)
            async with self._open(output_chunks=OUTPUT_CHUNKS) as items:
                if items._trim_at is not None:
                    # Positions are forgotten behind the consumer, not behind
                    # the handoffs: ``before`` is read across threads, and is
                    # at most late.
                    consumer = self._consumer
                    items._trim_at = lambda: consumer.before
                self._items = items
                self._opened.set()
                await self._hand_over(items)

    async def _hand_over(self, items: PipelineReceiver[T]) -> None:
        """Put the pipeline's chunks in the queue, as there is room for them.

        While items are large, room for ``HANDOFFS - LARGE_HANDOFFS`` handoffs
        is held back, and room for the next is taken before it is received.
        """
        room = self._room
        kept = 0  # room held back
        while True:
            if kept:  # room first: a large item does not wait here for it
                await room.acquire()
            try:
                chunk = await items.receive_chunk()
            except trio.EndOfChannel:
                return
            if not kept:
                await room.acquire()
            size = nbytes(chunk[0]) if chunk else 0
            keep = HANDOFFS - LARGE_HANDOFFS if size >= CHUNK_BYTES else 0
            for _ in range(kept, keep):
                await room.acquire()
            for _ in range(keep, kept):
                room.release()
            kept = keep
            handoff = [chunk]
            items._receive_chunks_nowait(handoff, _handoff_items(size) - len(chunk))
            self._queue.put(handoff)

    def get(self) -> list[list[T]] | None:
        """The next chunks, ``None`` at the end; raises the pipeline's error."""
        got = self._queue.get()
        if got is _END:
            return None
        if isinstance(got, _Failed):
            raise_as_is(uncarried(got.exc))
        self._call_soon(self._room.release)
        chunks: list[list[T]] = got
        return chunks

    def state(self, position: int) -> dict[str, Any]:
        """The run's state once the consumer has ``position`` items, computed
        in the pipeline's thread while it runs (its stages keep positions there)."""
        while not self._opened.wait(0.01):
            if not self._thread.is_alive():
                raise RuntimeError("the pipeline ended before it started: it has no state")
        items = self._items
        assert items is not None
        if self._thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                state: dict[str, Any] = trio.from_thread.run_sync(
                    items._state_at, position, trio_token=self._token
                )
                return state
        return items._state_at(position)

    def close(self) -> None:
        """Cancel the run, if still going, and wait for its thread to end."""
        self._stopping.set()
        self._call_soon(self._scope.cancel)
        self._thread.join()

    def _call_soon(self, fn: Callable[[], object]) -> None:
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(fn)


class PipelineIterator(itertools.chain[T], Generic[T]):
    """The items of a pipeline running in a background thread.

    Taking an item costs what a list iterator costs: chunks arrive from the
    thread whole and are read at C speed. ``close()`` (or dropping the
    iterator) stops every stage and joins the thread.
    """

    __slots__ = ("__weakref__", "_chunks", "_consumer")

    _chunks: Generator[Iterator[T], None, None]
    _consumer: _Consumer[T]

    def __new__(cls, open_pipeline: Opener[T], start: int = 0) -> PipelineIterator[T]:
        if trio.lowlevel.in_trio_run():
            raise RuntimeError(
                "iterating a pipeline synchronously would block this trio program: "
                "use `await pipeline.collect()` or "
                "`async with pipeline.open() as items: async for x in items: ...`"
            )
        consumer = _Consumer(open_pipeline, start)
        chunks = _chunks(consumer)
        self = cast("PipelineIterator[T]", cls.from_iterable(chunks))
        self._chunks = chunks
        self._consumer = consumer
        return self

    def close(self) -> None:
        """Stop the pipeline; the iterator is exhausted afterwards."""
        self._chunks.close()

    def _ended(self) -> bool:
        """Whether it has given its last item, or was closed."""
        return inspect.getgeneratorstate(self._chunks) == inspect.GEN_CLOSED

    def state_dict(self) -> dict[str, Any]:
        """Where the run stands, after the last item taken: see
        :meth:`snake.PipelineReceiver.state_dict`. Resume with
        ``pipeline.iterate(state=...)``. Before the first item, it starts
        the pipeline."""
        consumer = self._consumer
        return consumer.bridge().state(consumer.position())


class _Consumer(Generic[T]):
    """The consuming thread's side: the bridge, started when first needed, and
    the items taken: ``before`` the chunk being read, and of it."""

    __slots__ = ("_bridge", "_open", "before", "current", "size")

    def __init__(self, open_pipeline: Opener[T], start: int) -> None:
        self._open = open_pipeline
        self._bridge: _Bridge[T] | None = None
        self.before = start
        self.current: Iterator[T] = iter(())
        self.size = 0

    def bridge(self) -> _Bridge[T]:
        if self._bridge is None:
            self._bridge = _Bridge(self._open, self)
        return self._bridge

    def position(self) -> int:
        return self.before + self.size - length_hint(self.current)

    def closed(self) -> None:
        # After close(), the chunk being read must not go on giving items.
        collections.deque(self.current, maxlen=0)
        if self._bridge is not None:
            self._bridge.close()


def _chunks(consumer: _Consumer[T]) -> Generator[Iterator[T], None, None]:
    bridge = consumer.bridge()
    try:
        while (handoff := bridge.get()) is not None:
            # Popped, so that nothing here holds a chunk once it is read: its
            # items are the consumer's alone while the next handoff comes.
            handoff.reverse()
            while handoff:
                chunk = handoff.pop()
                consumer.before += consumer.size
                consumer.size = len(chunk)
                consumer.current = current = iter(chunk)
                del chunk
                yield current
    except BaseException as exc:
        trimmed(exc)
        raise  # as it is: from the consumer's loop straight to the user's frames
    finally:
        consumer.closed()
