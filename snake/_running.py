"""The three ways to run a pipeline: ``open()``, ``collect()`` and iteration.

Each run is an epoch (see ``_info``), fresh or resumed from a saved state
(see ``_checkpoint``), in the ``persistent_workers`` scope it starts in, if
any; the three differ only in how the items reach the caller.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._auto import AutoRun
from ._checkpoint import start
from ._receiver import Opened
from ._runner import open_inner, open_pipeline, processes
from ._sync import PipelineIterator
from ._workers import _persistent as persistent
from ._workers._forkserver import fork_server_here
from ._workers._options import WorkerOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractAsyncContextManager

    from ._checkpoint import Resume
    from ._info import Epoch, Runs
    from ._receiver import PipelineReceiver
    from ._report import Reporting
    from ._stages._base import Spec


@attrs.frozen
class Run:
    """One run of a pipeline, as its caller asked for it."""

    specs: Sequence[Spec]
    epoch: Epoch
    resume: Resume | None
    reporting: Reporting
    kept: persistent.persistent_workers | None
    #: What its ``"auto"`` stages are given (see ``_auto``).
    auto: AutoRun | None = None

    @classmethod
    def start(
        cls,
        specs: Sequence[Spec],
        runs: Runs,
        epoch: int | None,
        state: object | None,
        reporting: Reporting,
        memory_budget: object = None,
    ) -> Run:
        """The next run of a pipeline's ``runs``: epoch ``epoch``, or from ``state``."""
        auto = AutoRun.start(memory_budget, specs, runs.kept)
        run, resume = start(specs, runs, epoch, state)
        return cls(specs, run, resume, reporting, persistent.current(), auto)

    def opening(self) -> AbstractAsyncContextManager[PipelineReceiver[Any]]:
        return open_pipeline(
            self.specs, self.epoch, reporting=self.reporting, kept=self.kept, resume=self.resume,
            auto=self.auto,
        )  # fmt: skip


def opened(run: Run) -> AbstractAsyncContextManager[PipelineReceiver[Any]]:
    return Opened(run.opening())


async def collected(run: Run) -> list[Any]:
    out: list[Any] = []
    async with run.opening() as items:
        while True:
            try:
                out += await items.receive_chunk()
            except trio.EndOfChannel:
                return out


async def sent(start: Callable[[], Run], channel: trio.abc.SendChannel[Any]) -> None:
    """Run ``start()`` into ``channel``, which is closed at the end, as on an error."""
    async with channel:
        async with start().opening() as items:
            while True:
                try:
                    chunk = await items.receive_chunk()
                except trio.EndOfChannel:
                    return
                for x in chunk:
                    await channel.send(x)


def iterated(run: Run) -> PipelineIterator[Any]:
    if any(
        isinstance(options, WorkerOptions) and options.start_method == "forkserver"
        for options, _ in processes(run.specs)
    ):
        # Before the pipeline's thread starts: then the fork server can
        # be a fork of the program, and workers start in milliseconds.
        fork_server_here()
    # The bridge takes a user's carried exception groups out itself.
    opener = functools.partial(
        open_inner, run.specs, run.epoch, reporting=run.reporting, kept=run.kept,
        resume=run.resume, auto=run.auto,
    )  # fmt: skip
    iterator = PipelineIterator(opener, 0 if run.resume is None else run.resume.position)
    if run.kept is not None:
        run.kept.keep(iterator)  # closed when its block ends
    return iterator
