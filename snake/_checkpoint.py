"""The saved state of a run, as JSON-ready data, and loading it into a resumed run.

A state holds positions, never items (see ``_position``)::

    {"snake_state": 1, "shape": ["from_iterable(range of 10)", "batch(4)"],
     "epoch": 0, "seed": 123, "position": 2,
     "operators": [{"at": 8}, {"at": 8}]}

``shape`` is what the pipeline must still be (``Spec.shape``: its operators
in order, with seeds, sizes and its source's kind and length; not
concurrency, executors, workers or prefetch); ``position`` counts the items
the consumer received; ``operators`` has an entry per operator but the ones
that hold nothing (``prefetch``). A state that does not fit raises
:class:`StateMismatchError` naming what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._exceptions import StateMismatchError
from ._position import NotResumable, Saved

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._info import Epoch, Runs
    from ._stages._base import Spec

#: The version of the format; a state of another version is refused.
FORMAT = 1


def kept(specs: Sequence[Spec]) -> list[Spec]:
    """The operators a state has an entry for."""
    return [spec for spec in specs if not spec.holds_nothing]


def shape(specs: Sequence[Spec]) -> list[str]:
    return [spec.shape() for spec in kept(specs)]


def unseeded(specs: Sequence[Spec]) -> list[Spec]:
    """The operators with no seed among ``specs`` and in their nested pipelines,
    depth first: numbered so, they draw from the run's seed (``_info.Draws``)."""
    found: list[Spec] = []
    for spec in specs:
        if spec.unseeded:
            found.append(spec)
        for inner in spec.inner():
            found += unseeded(inner)
    return found


def first_reordering(specs: Sequence[Spec]) -> int | None:
    """The index of the first of ``specs`` that reorders items, if any."""
    return next((k for k, spec in enumerate(specs) if spec.reorders()), None)


def not_resumable(specs: Sequence[Spec]) -> str | None:
    """Why a run of ``specs`` cannot save its position, or ``None`` if it can."""
    reordered, absorbs = None, False
    for k, spec in enumerate(specs):
        why = spec.unresumable(reordered)
        if why is None and spec.reorders() and reordered is not None and not absorbs:
            why = (
                f"reorders items after {reordered}, which cannot take back which of its "
                "items were delivered: keep the order of one of them"
            )
        if why is not None:
            return f"#{k} {spec.describe()} {why}"
        if spec.reorders() and reordered is None:
            reordered, absorbs = f"#{k} {spec.describe()}", spec.absorbs
    return None


def state(
    specs: Sequence[Spec], epoch: Epoch, position: int, entries: list[Saved]
) -> dict[str, Any]:
    """The JSON-ready state of a run of ``specs`` whose consumer had ``position`` items."""
    return {
        "snake_state": FORMAT,
        "shape": shape(specs),
        "epoch": epoch.number,
        "seed": epoch.seed,
        "position": position,
        "operators": [entry.to_json() for entry in entries],
    }


@attrs.frozen
class Resume:
    """A loaded state: where each operator resumes (``entries``, one per
    operator, ``None`` for those that hold nothing) and the consumer's
    position."""

    position: int
    entries: tuple[Saved | None, ...]


def start(
    specs: Sequence[Spec], runs: Runs, epoch: int | None, saved: object | None
) -> tuple[Epoch, Resume | None]:
    """The epoch of a run of ``specs`` and, given a ``saved`` state, where it resumes."""
    if saved is None:
        return runs.next(epoch), None
    number, seed, resume = load(specs, saved)
    if epoch is not None and epoch != number:
        raise StateMismatchError(
            f"the state was saved in epoch {number}, not in epoch={epoch}: a resumed run "
            "goes on in the epoch it was saved in, so leave epoch= out"
        )
    return runs.resumed(number, seed), resume


def load(specs: Sequence[Spec], saved: object) -> tuple[int, int, Resume]:
    """The epoch, run seed and resume point in ``saved``, checked against ``specs``.

    Raises:
      StateMismatchError: it is not a state of this pipeline, saying what differs.
    """
    if not isinstance(saved, Mapping) or saved.get("snake_state") is None:
        raise StateMismatchError(
            "state= needs what state_dict() returned (a dict, after JSON if you like), "
            f"got {type(saved).__name__}"
        )
    if saved["snake_state"] != FORMAT:
        raise StateMismatchError(
            f"the state is of format {saved['snake_state']!r}, this version of snake "
            f"reads format {FORMAT}: resume with the version that saved it"
        )
    try:
        _same_shape(list(saved["shape"]), shape(specs))
        position = int(saved["position"])
        resume = nested(specs, saved["operators"], position)
        return int(saved["epoch"]), int(saved["seed"]), resume
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StateMismatchError):
            raise
        raise StateMismatchError(
            f"the state is incomplete or damaged ({type(exc).__name__}: {exc}): "
            "pass state_dict()'s dict as it was, or its JSON loaded again"
        ) from exc


def nested(specs: Sequence[Spec], operators: Sequence[Any], position: int) -> Resume:
    """The resume point of a pipeline from its entries, each told its output position."""
    entries: list[Saved | None] = []
    out = position
    for _, data in zip(reversed(kept(specs)), reversed(operators), strict=True):
        entry = Saved.from_json(data, out)
        entries.append(entry)
        out = entry.at
    entries.reverse()
    it = iter(entries)
    return Resume(position, tuple(None if s.holds_nothing else next(it) for s in specs))


def _same_shape(saved: list[str], here: list[str]) -> None:
    for k, (was, now) in enumerate(zip(saved, here, strict=False)):
        if was != now:
            raise StateMismatchError(
                f"the state was saved by another pipeline: its operator {k + 1} was "
                f"{was}, this pipeline's is {now} (operators that hold no items, such as "
                "prefetch, are not counted)"
            )
    if len(saved) != len(here):
        raise StateMismatchError(
            f"the state was saved by a pipeline of {len(saved)} operators, this one has "
            f"{len(here)} (operators that hold no items, such as prefetch, are not "
            f"counted): {saved} against {here}"
        )


def refuse(why: str) -> NotResumable:
    return NotResumable(
        f"this pipeline cannot save its position: {why}; "
        "state_dict() works for pipelines without it"
    )
