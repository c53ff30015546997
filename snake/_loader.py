"""``StatefulLoader``: a pipeline as a loader with ``state_dict``/``load_state_dict``.

PyTorch's distributed checkpointing saves and loads every object that has
those two methods (``torch.distributed.checkpoint.stateful.Stateful``), as
torchdata's ``StatefulDataLoader`` does. Loading into a running loader is
the classic way to lose a state silently, so here it raises; a loaded state
applies to the next iteration, and only to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._pipeline import Pipeline
    from ._sync import PipelineIterator

T = TypeVar("T")


class StatefulLoader(Generic[T]):
    """Iterate a pipeline epoch after epoch, and checkpoint it as PyTorch does.

    ``for batch in loader`` runs the pipeline's next epoch (as iterating a
    ``Pipeline`` does), or resumes the one a loaded state was saved in.
    ``state_dict()`` says where the current iteration stands (JSON-ready
    data, see ``PipelineIterator.state_dict``); once it has ended, it says to
    start the next epoch. ``load_state_dict()`` applies a state to the next
    iteration, and raises if one is running: a state is never applied later
    than asked, or to a loader it does not fit (``StateMismatchError`` then,
    at the next iteration).

    Example:
        >>> loader = snake.StatefulLoader(snake.from_iterable(range(6)).batch(2))
        >>> it = iter(loader)
        >>> next(it)
        [0, 1]
        >>> state = loader.state_dict()
        >>> it.close()
        >>> again = snake.StatefulLoader(snake.from_iterable(range(6)).batch(2))
        >>> again.load_state_dict(state)
        >>> list(again)
        [[2, 3], [4, 5]]
    """

    def __init__(self, pipeline: Pipeline[T]) -> None:
        self._pipeline = pipeline
        self._running: PipelineIterator[T] | None = None
        self._loaded: dict[str, Any] | None = None
        self._epoch = 0

    def __iter__(self) -> PipelineIterator[T]:
        if self._busy():
            assert self._running is not None
            self._running.close()  # a new epoch ends the last one, as DataLoader's does
        loaded, self._loaded = self._loaded, None
        if loaded is not None and "snake_state" in loaded:
            self._running = self._pipeline.iterate(state=loaded)
            self._epoch = loaded["epoch"] + 1
        else:
            epoch = self._epoch if loaded is None else int(loaded["epoch"])
            self._running = self._pipeline.iterate(epoch=epoch)
            self._epoch = epoch + 1
        return self._running

    def __len__(self) -> int:
        return len(self._pipeline)

    def _busy(self) -> bool:
        """Whether an iteration has started and not ended or been closed."""
        running = self._running
        return running is not None and not running._ended()

    def state_dict(self) -> dict[str, Any]:
        """Where the current iteration stands; after its end, or before any,
        ``{"epoch": k}``: the next iteration starts epoch ``k``."""
        if self._loaded is not None:
            return dict(self._loaded)
        if self._busy():
            assert self._running is not None
            return self._running.state_dict()
        return {"epoch": self._epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from ``state`` at the next iteration.

        Raises:
          RuntimeError: an iteration is running: it would not be resumed;
            load before iterating, or close the iterator first.
        """
        if self._busy():
            raise RuntimeError(
                "load_state_dict() on a StatefulLoader that is being iterated: the "
                "state would apply only to the next iteration; load it before "
                "iterating, or close() the running iterator first"
            )
        self._loaded = dict(state)
