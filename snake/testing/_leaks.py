"""The leak check: worker processes, threads and shared memory a block left behind."""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import attrs

from ._processes import check_readable, worker_processes

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from types import TracebackType

P = ParamSpec("P")
R = TypeVar("R")

#: Seconds stray threads and processes get to end by default, as snake's own
#: suite gives them: ample for a run's workers to exit on a loaded machine.
PATIENCE = 5.0
#: Seconds between two looks while waiting for them.
_POLL = 0.02
#: Where Linux keeps shared memory; snake names its segments ``snake-<pid>-...``.
_SHM_DIR = "/dev/shm"
#: The thread that runs a pipeline for a ``for`` loop over it (``snake._sync``).
_ITERATOR_THREAD = "snake pipeline"

#: What to do about each kind of leftover, said once however many there are.
_ADVICE = {
    "iterator": (
        f"thread {_ITERATOR_THREAD!r} runs a pipeline for a `for` loop that stopped early: "
        "close its iterator (`items.close()`, or "
        "`with contextlib.closing(iter(pipeline)) as items:`) or run the loop to its end"
    ),
    "thread": "a thread started in the block still runs: have it end, and join it, in the block",
    "process": (
        "a child process still runs: a run's worker processes end with the run, so leave "
        "`async with pipeline.open()`'s block, close a `for` loop's iterator, and leave "
        "`snake.persistent_workers()`'s block; wait for processes the code starts itself "
        "(`Popen.wait()`, `Process.join()`)"
    ),
    "shared memory": (
        "snake's shared memory is held by a run that has not ended: leave `open()`'s block "
        "or close the iterator (left after every run ended, it is a bug of snake's: "
        "please report it)"
    ),
}


class LeakError(AssertionError):
    """What :class:`no_leaks` raises: the block left worker processes, threads or
    shared memory behind. The message lists each, one a line, and says what to
    do.

    Attributes:
        leftovers: One line for each thing left behind, as the message lists them.
    """

    __module__ = "snake.testing"  # where to import it from, as errors show it

    leftovers: tuple[str, ...] = ()


@attrs.frozen
class Leftover:
    """One thing left behind: which kind (a key of ``_ADVICE``) and which one."""

    kind: str
    description: str


def leftovers(before: Collection[threading.Thread]) -> list[Leftover]:
    """The worker processes of this process, the threads alive now that were
    not in ``before`` (trio's idle cached threads aside), and this process's
    shared memory segments."""
    found = [
        Leftover("iterator" if t.name == _ITERATOR_THREAD else "thread", f"thread {t.name!r}")
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not _idle_trio_thread(t)
    ]
    found += [Leftover("process", str(p)) for p in worker_processes()]
    if os.path.isdir(_SHM_DIR):
        mine = f"snake-{os.getpid()}-"
        found += [
            Leftover("shared memory", f"shared memory {os.path.join(_SHM_DIR, name)}")
            for name in sorted(os.listdir(_SHM_DIR))
            if name.startswith(mine)
        ]
    return found


def _idle_trio_thread(thread: threading.Thread) -> bool:
    # trio keeps finished worker threads cached for a while, named
    # "Trio thread N" while idle; any other name means it runs something.
    return thread.name.startswith("Trio thread ")


def wait_for_leftovers(before: Collection[threading.Thread], patience: float) -> list[Leftover]:
    """``leftovers(before)`` once they are none, or after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while (found := leftovers(before)) and time.monotonic() < deadline:
        time.sleep(_POLL)
    return found


def message(found: Collection[Leftover], patience: float) -> str:
    """The leftovers one a line, then what to do about each kind."""
    lines = [f"left behind, still there {patience:g} s after the block ended:"]
    lines += [f"  {item.description}" for item in found]
    lines.append("what to do:")
    lines += [f"  - {_ADVICE[kind]}" for kind in dict.fromkeys(item.kind for item in found)]
    return "\n".join(lines)


class no_leaks:  # lower case: used as a function, as snake.persistent_workers is
    """Fail a block that leaves worker processes, threads or shared memory behind.

    On leaving the block, waits up to ``patience`` seconds for them to end,
    then raises :class:`LeakError` listing each still there:

    - worker processes: any child process of this one and the processes below
      it, but ``multiprocessing``'s fork server and resource tracker, which
      live as long as the interpreter;
    - threads started in the block that still run, but trio's idle cached
      worker threads (named ``"Trio thread N"``);
    - shared memory segments snake made for this process
      (``/dev/shm/snake-<pid>-*``).

    If the block raises an :class:`Exception`, that exception leaves it
    instead, with the list added as a note. A :class:`KeyboardInterrupt` or
    another :class:`BaseException` leaves at once, unchecked.

    It waits by blocking, so it goes around ``trio.run(...)``, never inside a
    trio run (where it raises :class:`RuntimeError`); for async tests, use
    the pytest plugin, ``snake.testing.pytest_plugin``. Used as a decorator
    (``@no_leaks()``), it checks each call of a synchronous function.

    Child processes are read from ``/proc`` on Linux; elsewhere listing them
    needs psutil (``pip install psutil``), and the check raises
    :class:`ImportError` saying so.

    Args:
        patience: Seconds to wait for leftovers to end before failing.

    Raises:
        LeakError: Something was left behind after ``patience`` seconds.

    Example:
        >>> import snake.testing
        >>> with snake.testing.no_leaks():
        ...     list(snake.from_iterable(range(3)).map(abs))
        [0, 1, 2]
    """

    __module__ = "snake.testing"

    def __init__(self, patience: float = PATIENCE) -> None:
        if isinstance(patience, bool) or not isinstance(patience, (int, float)):
            kind = type(patience).__name__
            raise TypeError(f"`patience` must be a number of seconds, got {kind} {patience!r}")
        if not 0 <= patience < math.inf:
            raise ValueError(f"`patience` must be >= 0 seconds and finite, got {patience}")
        self.patience = float(patience)
        self._before: set[threading.Thread] = set()

    def __enter__(self) -> None:
        _refuse_in_trio_run()
        check_readable()
        self._before = set(threading.enumerate())

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True  # pytest shows the test's frames, not these
        if error is not None and not isinstance(error, Exception):
            return
        found = wait_for_leftovers(self._before, self.patience)
        if not found:
            return
        text = message(found, self.patience)
        if error is not None:
            error.add_note(f"snake.testing.no_leaks: {text}")
            return
        leak = LeakError(text)
        leak.leftovers = tuple(item.description for item in found)
        raise leak

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"no_leaks() checks synchronous functions, got async function {fn.__name__}: "
                "put `with no_leaks():` around its trio.run(...), or use the pytest plugin"
            )

        @functools.wraps(fn)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            with no_leaks(self.patience):
                return fn(*args, **kwargs)

        return checked


def _refuse_in_trio_run() -> None:
    trio = sys.modules.get("trio")  # not imported: not in a trio run either
    if trio is not None and trio.lowlevel.in_trio_run():
        raise RuntimeError(
            "no_leaks() waits by blocking, which would stop this trio run: put it around "
            "trio.run(...), or use snake.testing.pytest_plugin for async tests"
        )
