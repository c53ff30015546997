"""What a run gives its stages with an ``"auto"`` setting
(``concurrency="auto"``, ``prefetch("auto")``): their share of
``memory_budget=``, and where each one's tuning ended in the last run of the
same ``Pipeline`` object.

``memory_budget=`` (``open()``, ``iterate()``, ``collect()``, ``send_to()``):
the ``"auto"`` stages share it equally, and each sizes its window or buffer
so that the bytes it holds, as snake weighs its items (arrays, tensors,
``bytes``: see ``_weight``), stay within its share. Items it cannot weigh
(plain Python objects) weigh nothing, so only the item counts bound those.
Fixed settings are the user's own and not bounded by it; a nested
pipeline's stages are not either.

A stage run again (the next epoch, iterating the same pipeline) starts
where its last run left it instead of from the default, so that epochs
after the first do not search again from the start (see ``_tuner.tuned``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from . import _validate as check

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._stages._base import Spec


@attrs.define
class Kept:
    """Where a stage's tuning stands: its last value, in this run or the
    last, and whether it had settled there (else it was still searching)."""

    value: int | None = None
    settled: bool = False


@attrs.frozen
class Auto:
    """What one ``"auto"`` stage of a run is given."""

    #: Its share of the run's ``memory_budget``, in bytes (``None``: no budget).
    memory: int | None
    #: Where its tuning stands; the pipeline's next run starts there.
    kept: Kept


@attrs.frozen
class AutoRun:
    """What a run gives its ``"auto"`` stages."""

    #: Each one's share of the budget.
    memory: int | None
    #: Their ``Kept``, by the stage's index: the ``Pipeline`` object's own.
    kept: dict[int, Kept]

    @classmethod
    def start(cls, budget: object, specs: Sequence[Spec], kept: dict[int, Kept]) -> AutoRun:
        """``budget`` checked against the pipeline it bounds, shared out."""
        if budget is None:
            return cls(None, kept)
        check.check_int(budget, "memory_budget", minimum=1)
        tuned = sum(spec.tuned() for spec in specs)
        assert isinstance(budget, int)
        if not tuned:
            raise ValueError(
                '`memory_budget` bounds what the stages with an "auto" setting hold, '
                'and this pipeline has none: give a stage `concurrency="auto"` or add '
                '`.prefetch("auto")`, or leave `memory_budget` out (fixed settings '
                "bound their items themselves)"
            )
        return cls(max(1, budget // tuned), kept)

    def stage(self, index: int) -> Auto:
        return Auto(self.memory, self.kept.setdefault(index, Kept()))


def slots(budget: int | None, nbytes: int) -> int | None:
    """How many units of ``nbytes`` each fit in ``budget`` (one at least), or
    ``None`` for no bound (no budget, or units that weigh nothing)."""
    if budget is None or nbytes <= 0:
        return None
    return max(1, budget // nbytes)
