"""The errors snake raises itself, for what goes wrong in worker processes."""

from __future__ import annotations

import signal

import trio_parallel

# Shown, and pickled, as what users import: snake.WorkerDiedError and so on.
_PUBLIC_MODULE = "snake"


class WorkerDiedError(trio_parallel.BrokenWorkerError):  # type: ignore[misc]  # untyped
    """A worker process died (killed, crashed or exited) while a job needed it.

    ``pid`` and ``exitcode`` are the process's (``exitcode`` is minus the
    signal that killed it, as in ``multiprocessing``); ``signal`` names that
    signal, if any. The message names the stage and the items, and says what
    the signal or exit code usually means.
    """

    def __init__(self, message: str, pid: int | None, exitcode: int | None) -> None:
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode

    @property
    def signal(self) -> str | None:
        if self.exitcode is None or self.exitcode >= 0:
            return None
        try:
            return signal.Signals(-self.exitcode).name
        except ValueError:
            return f"signal {-self.exitcode}"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.pid, self.exitcode))


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


for _error in (WorkerDiedError, WorkerError, RemoteError, ItemTimeoutError):
    _error.__module__ = _PUBLIC_MODULE
