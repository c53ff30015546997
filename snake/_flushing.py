"""Handing a stage's output over the moment its task blocks.

A stage must not sit on finished items while it waits, and a user's
coroutine may finish at once or wait for seconds: only running it tells.
Rather than step every call by hand to find out, a trio instrument watches
the tasks of the stages that await user code and, right after such a task
blocks, settles its output (runs the inline ops fused after it) and hands
over what it can without waiting. The hot loop stays a plain ``await``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._chunking import Outbox


class _FlushOnBlock(trio.abc.Instrument):
    """One per trio run that has watched stages; see :func:`watching`."""

    def __init__(self) -> None:
        self.watched: dict[trio.lowlevel.Task, Outbox] = {}

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        outbox = self.watched.get(task)
        if outbox is not None:
            outbox.on_block()


_INSTRUMENT: trio.lowlevel.RunVar[_FlushOnBlock] = trio.lowlevel.RunVar("snake_flush_on_block")


@contextmanager
def watching(outbox: Outbox) -> Iterator[None]:
    """Flush ``outbox`` whenever the current task blocks, for the block's duration."""
    try:
        instrument = _INSTRUMENT.get()
    except LookupError:
        instrument = _FlushOnBlock()
        _INSTRUMENT.set(instrument)
    if not instrument.watched:
        trio.lowlevel.add_instrument(instrument)
    task = trio.lowlevel.current_task()
    instrument.watched[task] = outbox
    try:
        yield
    finally:
        del instrument.watched[task]
        if not instrument.watched:
            trio.lowlevel.remove_instrument(instrument)
