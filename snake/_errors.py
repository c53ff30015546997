"""Stage notes: which stage raised a user's exception, and on which item.

Imports nothing but the standard library and ``_exceptions``: steps that run
inside worker processes annotate their errors here too.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from ._exceptions import WorkerError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Set by the worker loop in a worker process (see ``_workers._worker.serve``).
_in_worker_process = False


def add_stage_note(exc: BaseException, label: str, position: int, *, source: bool = False) -> None:
    """Say, on a user's exception, which stage raised it and on which item.

    ``position`` counts from 0: the item of the stage's input it was working
    on, or for a source the item it was producing. Only ``Exception``
    subclasses are annotated: ``KeyboardInterrupt``, ``SystemExit`` and
    ``trio.Cancelled`` are control flow, not item failures.
    """
    if isinstance(exc, Exception):
        where = f"producing item {position}" if source else f"at item {position} of its input"
        exc.add_note(f"snake: in stage {label}, {where}")


def item_error(exc: BaseException, label: str, position: int) -> BaseException:
    """What a user function's ``exc`` on an item of a step's input is raised as.

    ``exc`` itself, with its stage note; but in a worker process a
    ``KeyboardInterrupt`` or ``SystemExit`` would end the worker, not the
    program, so it becomes a ``WorkerError`` with the note, which the caller
    raises from ``exc``. In threads and in the main process they stay
    themselves.
    """
    if _in_worker_process and not isinstance(exc, Exception):
        error = WorkerError(
            f"{type(exc).__name__}({', '.join(map(repr, exc.args))}) raised in a worker "
            "process by a user function; it stops the pipeline instead"
        )
        add_stage_note(error, label, position)
        return error
    add_stage_note(exc, label, position)
    return exc


def in_worker_process() -> None:
    """Mark this process as a worker process, for :func:`item_error`."""
    global _in_worker_process
    _in_worker_process = True


def failed_at(items: list[Any], it: Iterator[Any]) -> int:
    """Index in ``items`` of the item being processed when its iterator ``it`` stopped.

    What is left of the list's own iterator says how far it got, so the happy
    path pays nothing for knowing where an error happened.
    """
    return len(items) - operator.length_hint(it) - 1
