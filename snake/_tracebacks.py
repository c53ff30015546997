"""A user's traceback as it leaves snake: the frames of snake's machinery above their own cut.

A user function's error crosses the stage's task, the nursery, the runner,
context managers, the sync bridge's thread and, from a worker process, the
worker's job loop: some 20 frames of snake, trio and ``contextlib`` between
the call site and the function, which a user reads past to find their own.
Where an error leaves snake (``collect``, ``open``, the sync iterator), the
frames from there down to the first frame that is not the machinery's (the
user's function, or what it called) are cut; that frame and every one after
it stay, and so do the exception's notes, cause and context. Only exceptions
snake annotated as a user's (a note of snake's) are cut, so a bug of snake's
keeps its whole traceback; when no frame is the user's (a built-in such as
``int`` raised), the last frame, where snake called it, stays.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import outcome
import trio

if TYPE_CHECKING:
    from types import TracebackType

#: Files of the machinery: snake's, trio's (and its ``outcome``), ``contextlib``.
_MACHINERY = (
    *(os.path.dirname(m.__file__ or "") + os.sep for m in (trio, outcome)),
    os.path.dirname(__file__) + os.sep,
    contextlib.__file__ or "",
)


def trimmed(exc: BaseException) -> BaseException:
    """``exc``, its traceback (and those of a group's exceptions) cut as the module says."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            trimmed(inner)
    if exc.__traceback__ is not None and any(
        isinstance(note, str) and note.startswith("snake: ")
        for note in getattr(exc, "__notes__", ())
    ):
        exc.__traceback__ = _cut(exc.__traceback__)
    return exc


def _cut(tb: TracebackType) -> TracebackType:
    """``tb`` from its first frame that is not the machinery's, or its last frame.

    ``tb`` starts where snake caught the error, so its first frames are the
    machinery's; the later ones keep their links.
    """
    while tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_MACHINERY):
        tb = tb.tb_next
    return tb
