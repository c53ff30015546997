"""What the main process and a worker process say to each other about a job.

Each is pickled into one message on the worker's socket (``_wire``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._shm import Packed
    from ._work import Skipped


@attrs.frozen
class JobMessage:
    """A job, as its worker receives it.

    Work goes to each worker once, not with every job (its functions may
    hold large data): as the worker starts, or as ``work`` with the first
    job of it that the worker's lane sends.
    """

    #: Which of the work this worker keeps the job is for.
    key: str
    #: The pickled work, with a worker's first job of it; else ``None``.
    work: bytes | None
    #: Its items, possibly packed with their large buffers in shared memory.
    items: list[Any] | Packed
    #: The position of the first item in the input of the job's stage.
    base: int
    #: The executor's prefix for shared-memory names (``None``: everything
    #: pickled), and the slot the results' large buffers may go to.
    shm_prefix: str | None
    slot: tuple[str, int] | None


@attrs.frozen
class Result:
    """What a job that ran gives back: results packed, seconds taken, items skipped."""

    packed: Packed
    seconds: float
    skipped: Skipped


@attrs.frozen
class Reply:
    """A worker's answer to a job."""

    #: The job's result, or the exception that ended it.
    outcome: Result | BaseException
    #: The worker has done the items it may: it takes no more jobs.
    retiring: bool
    #: Slots of the main process no item of this worker uses any more.
    released: list[str]
