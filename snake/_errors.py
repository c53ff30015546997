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


def item_error(
    exc: BaseException, label: str, position: int, *, source: bool = False
) -> BaseException:
    """What a user function's ``exc`` on an item of a stage is raised as.

    ``exc`` itself, with its stage note, when it can travel as itself;
    otherwise what the caller raises instead, from ``exc``: a user's
    exception group, carried (see :class:`Carried`); in a worker process,
    a ``KeyboardInterrupt`` or ``SystemExit``, which would end the worker,
    not the program, as a ``WorkerError`` with the note. In threads and in
    the main process those two stay themselves.
    """
    if _in_worker_process and not isinstance(exc, Exception):
        error = WorkerError(
            f"{type(exc).__name__}({', '.join(map(repr, exc.args))}) raised in a worker "
            "process by a user function; it stops the pipeline instead"
        )
        add_stage_note(error, label, position, source=source)
        return error
    add_stage_note(exc, label, position, source=source)
    return carried(exc)


class Carried(Exception):
    """A user's exception group on its way through a pipeline.

    trio's cancel scopes split every exception group that leaves a
    cancelled scope, and on CPython 3.11 to 3.13 a split rebuilds the group
    as a plain ``ExceptionGroup``: a subclass loses its type, and every
    group its identity. Inside a pipeline a user's group travels in this,
    which is no group, so it arrives as the object the user raised; where it
    leaves snake (``uncarried``), it is taken out, with any note added to
    the carrier on its way.
    """

    def __init__(self, group: ExceptionGroup[Exception]) -> None:
        super().__init__(group)
        self.group = group


def carried(exc: BaseException) -> BaseException:
    """``exc`` as snake raises it inside a pipeline: a user's exception group carried."""
    return Carried(exc) if isinstance(exc, ExceptionGroup) else exc


def uncarried(exc: BaseException) -> BaseException:
    """``exc`` as it leaves snake: each carried group taken out, also inside
    the group snake raises for several errors at once."""
    if isinstance(exc, Carried):
        for note in getattr(exc, "__notes__", ()):
            exc.group.add_note(note)
        return exc.group
    if isinstance(exc, BaseExceptionGroup) and any(isinstance(e, Carried) for e in exc.exceptions):
        several = exc.derive([uncarried(e) for e in exc.exceptions])
        several.__traceback__ = exc.__traceback__
        return several
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
