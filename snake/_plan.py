"""Planning a run: a pipeline's operators grouped into stages.

Each operator with a task of its own (a ``StageSpec``) makes a stage; the
inline operators after it are fused into it, and those that may run in its
workers instead (after a ``par_map``'s function) move there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import cloudpickle

from . import _checkpoint
from ._position import tracking
from ._stages._base import InlineSpec, InWorkers, Moved, Spec, StageSpec
from ._workers._script import dumps

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._checkpoint import Resume


def label(index: int, spec: Spec) -> str:
    """How notes and messages name an operator: ``#2 par_map(decode)``."""
    return f"#{index} {spec.describe()}"


@attrs.frozen
class StagePlan:
    """One stage: an operator with a task of its own, and the inline ops it hosts.

    ``in_workers`` run in its workers, right after its function; ``fused``
    run in its task, on what it hands over, each with its index in the
    pipeline.
    """

    index: int
    spec: StageSpec
    in_workers: tuple[Moved, ...] = ()
    fused: tuple[tuple[int, InlineSpec], ...] = ()


def plan(specs: Sequence[Spec], resume: Resume | None = None) -> list[StagePlan]:
    """Group a pipeline's operators into stages; inline ops join the stage before.

    Those that may, and follow a stage that runs user code in workers (a
    ``par_map``), run there instead (see :func:`into_workers`), unless a
    resumed run has them drop items they make again (see ``_position``):
    only the last op in the workers may.
    """
    plans: list[StagePlan] = []
    for index, spec in enumerate(specs):
        if isinstance(spec, InlineSpec):
            last = plans[-1]
            plans[-1] = attrs.evolve(last, fused=(*last.fused, (index, spec)))
        else:
            assert isinstance(spec, StageSpec)
            plans.append(StagePlan(index, spec))
    first = _checkpoint.first_reordering(specs)
    moved = [into_workers(p, first is not None and first < p.index) for p in plans]
    if resume is not None:
        moved = [m if _may_move(m, resume) else p for p, m in zip(plans, moved, strict=True)]
    return moved


def _may_move(p: StagePlan, resume: Resume) -> bool:
    entries = resume.entries[p.index : p.index + len(p.in_workers)]
    return not any(entry is not None and entry.skip for entry in entries)


def into_workers(p: StagePlan, reordered: bool = False) -> StagePlan:
    """Move the inline ops that may run in a stage's workers there.

    Their output then crosses the process boundary instead of their input
    (a collated batch instead of its items), and the event loop, whose CPU
    the workers need, does less (with threads: collating no longer holds the
    loop). Ops move in order while their step keeps items at their
    positions (``InWorkers.KEEPS_POSITIONS``), and then one more that may be
    the last (``InWorkers.LAST``), so error notes stay exact. For
    processes, an op that cannot be pickled stays in the main process, with
    what follows it.
    """
    where = p.spec.workers()
    if where is None:
        return p
    moved: list[Moved] = []
    # Where a run keeps positions, the items of a stage that reorders them,
    # or follows one that does (``reordered``), must keep theirs in its
    # workers (see ``_position.exact``).
    reordered = (reordered or p.spec.reorders()) and tracking()
    for index, spec in p.fused:
        if spec.in_workers is InWorkers.NO:
            break
        if reordered and not spec.whole_units:
            break
        # Ray's tasks, like processes, receive them pickled.
        pickled = None if where == "thread" else _pickled(spec, where)
        if where != "thread" and pickled is None:
            break
        moved.append(Moved(label(index, spec), spec, pickled))
        if spec.in_workers is InWorkers.LAST:
            break
    return attrs.evolve(p, in_workers=tuple(moved), fused=p.fused[len(moved) :])


def _pickled(spec: InlineSpec, where: str) -> bytes | None:
    """``spec`` pickled, to go to worker processes or Ray; ``None`` if it cannot be."""
    try:
        return dumps(spec) if where == "process" else cloudpickle.dumps(spec)
    except Exception:
        return None


def describe(specs: Sequence[Spec]) -> str:
    """The stages a run of ``specs`` has, a line each, with what is fused into them."""
    lines = []
    for p in plan(specs):
        line = label(p.index, p.spec)
        if p.in_workers:
            line += "; in its workers: " + ", ".join(m.label for m in p.in_workers)
        if p.fused:
            line += "; then fused: " + ", ".join(label(i, spec) for i, spec in p.fused)
        lines.append(line)
    return "\n".join(lines)
