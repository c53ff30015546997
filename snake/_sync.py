"""Synchronous iteration: the pipeline runs under trio in a background thread.

Chunks cross to the consuming thread through a queue; a semaphore on the trio
side keeps at most ``HANDOFF_CHUNKS`` of them there, so a slow consumer holds
the pipeline back instead of filling memory. Stopping (``break``, ``close()``,
garbage collection, an exception such as Ctrl-C's ``KeyboardInterrupt`` in
the consumer) cancels the run and joins the thread before returning.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

import trio

from ._errors import raise_as_is
from ._receiver import PipelineReceiver

T = TypeVar("T")

#: Chunks that may wait for the consuming thread.
HANDOFF_CHUNKS = 2

Opener = Callable[[], AbstractAsyncContextManager[PipelineReceiver[T]]]


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class _Bridge(Generic[T]):
    def __init__(self, open_pipeline: Opener[T]) -> None:
        self._open = open_pipeline
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stopping = False
        self._scope = trio.CancelScope()
        self._room = trio.Semaphore(HANDOFF_CHUNKS)
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
            if self._stopping:
                self._scope.cancel()
            async with self._open() as items:
                while True:
                    try:
                        chunk = await items._receive_chunk()
                    except trio.EndOfChannel:
                        return
                    await self._room.acquire()
                    self._queue.put(chunk)

    def get(self) -> list[T] | None:
        """The next chunk, ``None`` at the end; raises the pipeline's error."""
        got = self._queue.get()
        if got is _END:
            return None
        if isinstance(got, _Failed):
            raise_as_is(got.exc)
        self._call_soon(self._room.release)
        chunk: list[T] = got
        return chunk

    def close(self) -> None:
        """Cancel the run, if still going, and wait for its thread to end."""
        self._stopping = True
        self._call_soon(self._scope.cancel)
        self._thread.join()

    def _call_soon(self, fn: Callable[[], object]) -> None:
        token = self._token
        if token is not None:
            try:
                token.run_sync_soon(fn)
            except trio.RunFinishedError:
                pass


def iterate(open_pipeline: Opener[T]) -> Iterator[T]:
    """Run the pipeline in a background thread and yield its items here."""
    if trio.lowlevel.in_trio_run():
        raise RuntimeError(
            "iterating a pipeline synchronously would block this trio program: "
            "use `await pipeline.collect()` or "
            "`async with pipeline.open() as items: async for x in items: ...`"
        )
    return _items(open_pipeline)


def _items(open_pipeline: Opener[T]) -> Iterator[T]:
    bridge = _Bridge(open_pipeline)
    try:
        while (chunk := bridge.get()) is not None:
            yield from chunk
    finally:
        bridge.close()
