"""``WorkerDiedError``: a worker process died, and what its death most often means."""

from __future__ import annotations

import signal

import trio_parallel


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
        return _signal_name(-self.exitcode)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.pid, self.exitcode))


WorkerDiedError.__module__ = "snake"  # shown, and pickled, as users import it


def died(
    cause: BaseException,
    label: str,
    count: int,
    base: int,
    *,
    running: bool,
    started: bool = True,
    kind: str = "worker process",
) -> WorkerDiedError:
    """The error for a job of stage ``label`` whose worker died running it, or
    running another job before it; ``cause`` is trio_parallel's error, or
    Ray's for a ``kind="Ray worker"``."""
    process = cause.args[1] if len(cause.args) > 1 else None
    pid = getattr(process, "pid", None)
    exitcode = getattr(process, "exitcode", None)
    where = span(base, count) + " of its input"
    worker = f"a {kind}" if pid is None else f"{kind} {pid}"
    how = _how(exitcode)
    if not started:
        what = f"{worker} {how} as it started"
        hint = (
            'If your script has no `if __name__ == "__main__":` guard, that is probably '
            "the cause: workers import the script, and without the guard it starts the "
            "pipeline again. Otherwise, an import of the script failed in the worker"
        )
    else:
        what = f"{worker} {how}"
        hint = "" if exitcode is None else _HINTS.get(min(exitcode, 0), "")
    if running:
        during = "before it could run" if not started else "while running"
        message = f"in stage {label}, {what} {during} {where}"
    else:
        message = f"in stage {label}, {where} were not run: {what}"
    error = WorkerDiedError(f"{message}. {hint}".rstrip(". ") + ".", pid, exitcode)
    error.__cause__ = cause
    return error


def span(base: int, count: int) -> str:
    """``count`` items from item ``base``, as messages name them."""
    return f"item {base}" if count == 1 else f"items {base} to {base + count - 1}"


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "died"
    if exitcode < 0:
        return f"was killed by {_signal_name(-exitcode)}"
    return f"exited with code {exitcode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


#: What a worker's death most often means, by minus its signal (0: it exited).
_HINTS = {
    -signal.SIGKILL: "SIGKILL is what the kernel's out-of-memory killer sends: the machine "
    "(or container) probably ran out of memory; use fewer workers or smaller items",
    -signal.SIGBUS: "SIGBUS in a worker usually means shared memory (/dev/shm) ran full; free "
    "some, or give the machine or container more (docker: --shm-size)",
    -signal.SIGSEGV: "a crash in native code (a C extension); the worker's C-level traceback "
    "is on stderr",
    -signal.SIGABRT: "native code aborted; the worker's C-level traceback is on stderr",
    0: "Something in the job called os._exit(), or native code exited the process",
}
