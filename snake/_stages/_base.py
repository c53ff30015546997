"""What every operator spec and stage provides to the runner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._chunking import Inbox, Outbox
    from .._policy import Failures
    from .._workers._executors import Executors


class Spec(ABC):
    """A frozen description of one operator, as the user built it."""

    __slots__ = ()

    @abstractmethod
    def describe(self) -> str:
        """The operator as the user wrote it, such as ``par_map(decode)``."""


class Stage(Protocol):
    """A running operator: one task in the pipeline's nursery.

    ``run`` reads chunks from ``inbox`` (``None`` for a source), hands its
    output to ``outbox`` and returns at the end of its input or as soon as
    ``outbox.done``. The runner flushes the outbox and closes the channels.
    A stage that skips failing items (``errors="skip"``) counts them in
    ``failures``, which the statistics read.
    """

    failures: Failures | None

    async def run(self, inbox: Inbox | None, outbox: Outbox) -> None: ...


class StageSpec(Spec):
    """An operator that runs as a stage of its own."""

    __slots__ = ()

    @abstractmethod
    def build(self, label: str, executors: Executors) -> Stage:
        """A fresh stage for one run of the pipeline; ``label`` names it in notes."""


class Step(Protocol):
    """A running inline operator: synchronous, chunk in, chunk out.

    ``done`` turns true once it will take no more input (a satisfied
    ``take``), which only a step with ``ends`` does; ``finish`` returns what
    it still holds at the end of input.
    """

    done: bool
    ends: bool

    def process(self, items: list[Any]) -> list[Any]: ...

    def finish(self) -> list[Any]: ...


class InlineSpec(Spec):
    """An operator fused into the stage before it."""

    __slots__ = ()

    @abstractmethod
    def step(self, label: str) -> Step:
        """A fresh step for one run of the pipeline; ``label`` names it in notes."""
