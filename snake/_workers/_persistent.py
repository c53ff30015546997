"""``snake.persistent_workers()``: worker processes kept from one run to the next, in a scope.

Each run of a pipeline opens ``trio_parallel`` worker contexts of its own and
closes them at its end, so every epoch of a training loop starts its workers
again (and runs their ``init``, which may import torch). Inside this scope,
runs take their contexts from it instead: a run's lanes then call into the
workers the last run left idle, and only the scope's end shuts them down.

A context here outlives the trio run that first used it (a synchronous
iteration is a run of its own, in a thread), as ``trio_parallel``'s default
context outlives runs: it is made with the constructor ``open_worker_context``
uses and closed as that closes it, or, outside trio, as ``trio_parallel``
closes its default context at exit.
"""

from __future__ import annotations

import contextvars
import math
import weakref
from typing import TYPE_CHECKING, Any, Self

import trio_parallel

from ._worker import should_retire

if TYPE_CHECKING:
    from types import TracebackType

    from .._sync import PipelineIterator
    from ._options import WorkerOptions

#: The scope the runs started here belong to.
_scope: contextvars.ContextVar[persistent_workers | None] = contextvars.ContextVar(
    "snake_persistent_workers", default=None
)


def current() -> persistent_workers | None:
    return _scope.get()


class persistent_workers:
    """Keep worker processes from one run to the next until the block ends.

    ``with snake.persistent_workers():`` (or ``async with`` in a trio program)
    around a training loop's epochs: each run of a pipeline started inside
    it (``for x in pipeline``, ``iterate()``, ``open()``, ``collect()``)
    reuses the worker processes of earlier runs whose process maps had equal
    ``WorkerOptions``, instead of starting its own, so ``WorkerOptions.init``
    runs once per worker for the whole block, as with DataLoader's
    ``persistent_workers=True``. Workers still get a new seed each epoch
    (``snake.worker_info()``). When the block ends, iterators still open are
    closed and every worker is shut down: nothing outlives the block.

    A worker killed by a run (its pipeline failed or stopped with jobs in
    flight, or an item ran past its ``timeout``) is replaced in the next.

    Example:
        >>> with snake.persistent_workers():
        ...     pipeline = snake.from_iterable(range(3)).par_map(abs)
        ...     for epoch in range(2):
        ...         print(list(pipeline))
        [0, 1, 2]
        [0, 1, 2]
    """

    def __init__(self) -> None:
        self._contexts: dict[WorkerOptions, trio_parallel.WorkerContext] = {}
        self._iterators: weakref.WeakSet[PipelineIterator[Any]] = weakref.WeakSet()
        self._token: contextvars.Token[persistent_workers | None] | None = None
        self._closed = False

    def context(self, options: WorkerOptions, **settings: Any) -> trio_parallel.WorkerContext:
        """The scope's workers for ``options``, made with ``settings`` the first time."""
        if self._closed:
            raise RuntimeError(
                "this snake.persistent_workers() block has ended: start the run inside it"
            )
        context = self._contexts.get(options)
        if context is None:
            settings["idle_timeout"] = math.inf  # the block decides when they go
            context = self._contexts[options] = trio_parallel.WorkerContext._create(**settings)
        return context

    def keep(self, iterator: PipelineIterator[Any]) -> None:
        """A synchronous iteration started in the block: closed when it ends."""
        self._iterators.add(iterator)

    def _enter(self) -> None:
        if self._token is not None or self._closed:
            raise RuntimeError("a snake.persistent_workers() object can be entered only once")
        self._token = _scope.set(self)

    def _leave(self) -> list[trio_parallel.WorkerContext]:
        assert self._token is not None
        _scope.reset(self._token)
        self._closed = True
        for iterator in list(self._iterators):
            iterator.close()
        contexts = list(self._contexts.values())
        self._contexts.clear()
        return contexts

    def __enter__(self) -> Self:
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for context in self._leave():
            # As trio_parallel shuts its default context down at exit.
            context._worker_cache.shutdown(context.grace_period)

    async def __aenter__(self) -> Self:
        self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for context in self._leave():
            await context._aclose()  # as open_worker_context closes its context


def settings(options: WorkerOptions, start: Any, grace_period: float) -> dict[str, Any]:
    """What a ``trio_parallel`` context for ``options`` is opened with."""
    return {
        "init": start,
        "retire": should_retire,
        "grace_period": grace_period,
        "worker_type": _WORKER_TYPES[options.start_method],
    }


_WORKER_TYPES = {
    "spawn": trio_parallel.WorkerType.SPAWN,
    "forkserver": trio_parallel.WorkerType.FORKSERVER,
}
