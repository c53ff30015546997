"""The errors snake raises itself, for items that time out and for worker processes.

``WorkerDiedError`` is with the rest of the worker side (``_workers._deaths``).
"""

from __future__ import annotations

# Shown, and pickled, as what users import: snake.WorkerError and so on.
_PUBLIC_MODULE = "snake"


class ItemTimeoutError(TimeoutError):
    """An item's call took longer than its stage's ``timeout``.

    For a process ``par_map``, the worker running it was killed (and
    replaced); a thread cannot be killed, so its call is abandoned.
    """


def timed_out(timeout: float) -> ItemTimeoutError:
    """The error for a call that took longer than ``timeout`` seconds."""
    return ItemTimeoutError(f"the call took longer than its stage's timeout of {timeout:g} s")


class WorkerError(RuntimeError):
    """``KeyboardInterrupt`` or ``SystemExit`` raised by a user function in a worker.

    In a worker they would end the worker, not the program; they stop the
    pipeline with this error instead, caused by the original.
    """


class RemoteError(RuntimeError):
    """An exception raised in a worker process that could not be sent back as itself.

    Carries what could be sent: the original type's name, its message and
    the formatted traceback from the worker.
    """

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(type_name, message, traceback)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        return (
            f"{self.type_name}: {self.message} (raised in a worker process; the exception "
            "could not be pickled, so it arrives as this RemoteError)"
        )


class StateMismatchError(ValueError):
    """A saved state handed to ``open(state=...)`` does not fit the pipeline.

    Its message names what differs: the format version, or the first
    operator whose shape (kind, seed, size, source and length) is not the
    one that saved it. Concurrency, executors, workers and ``prefetch`` may
    change between a save and a resume; the pipeline's operators may not.
    """


for _error in (WorkerError, RemoteError, ItemTimeoutError, StateMismatchError):
    _error.__module__ = _PUBLIC_MODULE
