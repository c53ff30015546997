"""The operator protocol: what every operator says about itself, in one place.

Each operator the user adds to a pipeline is a frozen spec. Everything the
rest of snake asks of an operator, the spec answers; no other module checks
operator types or label text:

* ``describe()``: the operator as the user wrote it, for labels, notes and
  ``repr``;
* ``advice``: what the bottleneck verdict suggests when its stage is the
  slowest (see ``_stats``);
* an inline operator (:class:`InlineSpec`) gives its ``step``, fused into
  the stage before it, and says with ``in_workers`` whether that same step
  may run inside a ``par_map``'s workers, right after the map's function;
* a stage operator (:class:`StageSpec`) makes its stage for one run with
  ``build``, says with ``workers`` where it runs user code that inline
  operators after it may follow, and with ``processes`` which worker
  processes it needs;
* ``length(n)``: how many items it yields from ``n``, for ``len(pipeline)``
  (see ``_length``); ``most``, the bound a ``take`` puts on endless items;
* ``rehearsed(rehearsal)``: the operator as a test runs it, in this process
  (``snake.testing``, see ``_rehearsal``).

Buffering: what a running step or stage holds is its own (a batch's partial
batch, a shuffle's buffer, a parallel stage's window), bounded by its spec's
arguments and documented per operator in ``docs/operators.md``.

State: a spec never changes and holds no state of a run; what a run has done
(positions, held items, random generators) lives on its running objects, the
:class:`Step` and the :class:`Stage`, and nowhere else. Each says where it
stood at a point of its output with ``saved(out)`` (see ``_position``), and
is made from that again with ``step(..., saved=)`` or :class:`Context`'s
``saved`` when a run resumes. ``shape()`` is what a saved state must have
been made by (``describe()`` and what else changes its output); a spec that
``holds_nothing`` (``prefetch``) may come and go between a save and a resume.
"""

from __future__ import annotations

import enum
import pickle
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import attrs

from ._length import Unknown

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._auto import Auto
    from .._chunking import Inbox, Outbox
    from .._policy import ErrorPolicy, Failures
    from .._position import Saved
    from .._workers._executors import Executors
    from .._workers._options import MapOptions
    from ._length import Length
    from ._rehearsal import Rehearsal


class Spec(ABC):
    """A frozen description of one operator, as the user built it."""

    __slots__ = ()

    @property
    def advice(self) -> str:
        """What to try when this operator's stage is the pipeline's bottleneck."""
        return "make it faster, or split its work into a par_map"

    @abstractmethod
    def describe(self) -> str:
        """The operator as the user wrote it, such as ``par_map(decode)``."""

    def length(self, n: int) -> Length:
        """How many items it yields from ``n`` items, for ``len(pipeline)``.

        ``n`` is its input's number of items (0 for a source, which has no
        input; a source counts its own, or its pipelines', with
        ``_length.nested``). ``ENDLESS``: items that never end.

        Raises:
          Unknown: the number depends on the items or on a function, saying
            why, as the end of a sentence that starts with the operator.
        """
        raise Unknown("may change the number of items")

    def shape(self) -> str:
        """What a saved state of it must come from: by default ``describe()``."""
        return self.describe()

    def shuffled(self, seed: int | None) -> StageSpec | None:
        """A source's items in a shuffled order of their indices (``shuffle()``),
        if it can give them so."""
        return None

    def reader(self) -> Callable[[int], Any] | None:
        """A source's item at a position, read on its own, if it can give one
        so (a sequence, by index): a resumed ``shuffle`` right after it reads
        its slots' items so instead of reading every item from the oldest."""
        return None

    def inner(self) -> tuple[tuple[Spec, ...], ...]:
        """The pipelines it runs nested (``concat``'s, ``repeat``'s)."""
        return ()

    def tuned(self) -> bool:
        """Whether a setting of it is ``"auto"``: sized while it runs, within
        its share of the run's ``memory_budget`` (see ``_auto``)."""
        return False

    #: It draws at random with no seed of its own (a ``shuffle()``).
    unseeded: ClassVar[bool] = False

    def reorders(self) -> bool:
        """Whether its items may leave in another order from run to run."""
        return False

    #: Reordering items, it can take back which of its items the stages
    #: after it delivered past their positions (see ``_position.back``).
    absorbs: ClassVar[bool] = False

    def unresumable(self, reordered: str | None) -> str | None:
        """Why a run with it cannot save its position (continuing its label), if
        it cannot; ``reordered`` names an operator before it that ``reorders``."""
        return None

    #: It keeps no position (``prefetch``): absent from saved states, so it
    #: may be added or removed between a save and a resume.
    holds_nothing: ClassVar[bool] = False

    @property
    def most(self) -> int | None:
        """The most items it yields however many it gets (``take(n)``'s ``n``):
        what it makes of endless items. ``None``: they stay endless."""
        return None

    def rehearsed(self, rehearsal: Rehearsal) -> Spec:
        """The operator as ``snake.testing`` runs it: its calls of user
        functions in this process, waiting as ``rehearsal`` says before each,
        and, where it is ``sequential``, one call at a time in input order.
        Itself by default (inline steps, which call in order already)."""
        return self


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

    def saved(self, out: int) -> list[Saved]:
        """Where it stood when it had yielded ``out`` items (before the steps
        fused after it): one entry per operator it runs, in their order (a
        ``par_map`` and the steps in its workers)."""
        ...


@attrs.frozen
class Moved:
    """An inline operator that runs in a stage's workers, right after its function."""

    label: str
    spec: InlineSpec
    #: Its pickle, made when the run's plan checked that it can go to worker
    #: processes (``None`` for threads): pickling this ships that one again,
    #: instead of pickling what the operator holds a second time.
    pickled: bytes | None = attrs.field(default=None, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.pickled is None:
            return (Moved, (self.label, self.spec))
        return (_unpickled, (self.label, self.pickled))


def _unpickled(label: str, pickled: bytes) -> Moved:
    return Moved(label, pickle.loads(pickled))


@attrs.frozen
class Context:
    """What a stage is built with, for one run of its pipeline."""

    #: How notes and statistics name the stage: ``#2 par_map(decode)``.
    label: str
    executors: Executors
    #: The inline operators that run in its workers after its function
    #: (see ``StageSpec.workers``).
    in_workers: tuple[Moved, ...] = ()
    #: Where it and its workers' steps resume from, one entry each; empty
    #: for a fresh run.
    saved: tuple[Saved, ...] = ()
    #: With an ``"auto"`` setting: its share of the run's ``memory_budget``,
    #: and where its last run left it (``None`` in a nested pipeline).
    auto: Auto | None = None


class OnePerItem:
    """A stage that yields an item per item it gets (``then``, ``par_map``, ...),
    unless it skips the failing ones (``errors="skip"``)."""

    __slots__ = ()
    policy: ErrorPolicy

    def length(self, n: int) -> int:
        if self.policy.skips:
            raise Unknown('skips the items that fail (errors="skip")')
        return n


class StageSpec(Spec):
    """An operator that runs as a stage of its own."""

    __slots__ = ()

    @abstractmethod
    def build(self, context: Context) -> Stage:
        """A fresh stage for one run of the pipeline."""

    def workers(self) -> Literal["process", "thread", "ray"] | None:
        """Where its stage calls a user function on each item, if inline operators
        after it may run there too, right after that function; else ``None``."""
        return None

    def processes(self) -> list[tuple[MapOptions, int | None]]:
        """The worker processes its stage runs on, pipelines nested in it
        included: their options and how many at once (``None``: one per CPU),
        so the run can start them (or connect to Ray) before the first item."""
        return []


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

    def saved(self, out: int) -> Saved:
        """Where it stood when it had yielded ``out`` items."""
        ...


class InWorkers(enum.Enum):
    """Whether an inline operator's step may also run in a map's workers."""

    #: Only in the stage it is fused into.
    NO = enum.auto()
    #: There too; it keeps each item at its position, so more may follow it.
    KEEPS_POSITIONS = enum.auto()
    #: There too, as the last one: after it, items have other positions.
    LAST = enum.auto()


class InlineSpec(Spec):
    """An operator fused into the stage before it."""

    __slots__ = ()

    #: Whether its step may run in a map's workers (a job at a time, each
    #: step made with the job's first position; see ``_workers._worker``).
    in_workers: ClassVar[InWorkers] = InWorkers.NO

    @abstractmethod
    def step(self, label: str, position: int = 0, saved: Saved | None = None) -> Step:
        """A fresh step for one run (or, in a worker, one job).

        ``label`` names it in notes; ``position`` is the position of the
        first item it will see, in its input; ``saved``, where a resumed run
        left it (``position`` is then ``saved.at``).
        """

    @property
    def unit(self) -> int:
        """In a map's workers, jobs hold whole multiples of this many items
        (a batch's size), all but the last."""
        return 1

    #: In a map's workers, each item it gives stands for ``unit`` items it
    #: got (the last for fewer): so positions in and out are known exactly
    #: (not so for a ``filter``).
    whole_units: ClassVar[bool] = True
