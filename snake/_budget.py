"""``memory_budget=``: the bytes a run's automatically sized stages may hold.

``open()``, ``iterate()`` and ``collect()`` take it. The stages with an
``"auto"`` setting (``concurrency="auto"``, ``prefetch("auto")``) share it
equally: each sizes its window or buffer so that the bytes it holds, as
snake weighs its items (arrays, tensors, ``bytes``: see ``_weight``), stay
within its share. Items it cannot weigh (plain Python objects) weigh
nothing, so only the item counts bound those. Fixed settings are the user's
own and not bounded by it; a nested pipeline's stages are not either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _validate as check

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._stages._base import Spec


def check_budget(budget: object, specs: Sequence[Spec]) -> int | None:
    """``budget``, checked against the pipeline it bounds: ``None``, or bytes."""
    if budget is None:
        return None
    check.check_int(budget, "memory_budget", minimum=1)
    assert isinstance(budget, int)
    if not any(spec.tuned() for spec in specs):
        raise ValueError(
            '`memory_budget` bounds what the stages with an "auto" setting hold, '
            'and this pipeline has none: give a stage `concurrency="auto"` or add '
            '`.prefetch("auto")`, or leave `memory_budget` out (fixed settings '
            "bound their items themselves)"
        )
    return budget


def share(budget: int | None, specs: Sequence[Spec]) -> int | None:
    """The bytes each stage with an ``"auto"`` setting may hold: an equal share."""
    if budget is None:
        return None
    return max(1, budget // sum(spec.tuned() for spec in specs))


def slots(budget: int | None, nbytes: int) -> int | None:
    """How many units of ``nbytes`` each fit in ``budget`` (one at least), or
    ``None`` for no bound (no budget, or units that weigh nothing)."""
    if budget is None or nbytes <= 0:
        return None
    return max(1, budget // nbytes)
