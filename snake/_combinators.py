"""The combinators: pipelines made of other pipelines, run at once or one after another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _validate as check
from ._pipeline import Pipeline

if TYPE_CHECKING:
    from collections.abc import Sequence

T = TypeVar("T")


def concat(*pipelines: Pipeline[T]) -> Pipeline[T]:
    """The items of each pipeline, one pipeline after another (``itertools.chain``).

    Example:
        >>> list(snake.concat(snake.from_iterable("ab"), snake.from_iterable("cd")))
        ['a', 'b', 'c', 'd']
    """
    from ._stages._combine import Concat

    return Pipeline((Concat(check.check_pipelines(pipelines, "concat")),))


def zip(*pipelines: Pipeline[Any]) -> Pipeline[tuple[Any, ...]]:  # noqa: A001 - as snake.zip
    """Tuples of the pipelines' items in lockstep, until the shortest ends (``zip``).

    The pipelines run at once, each with its own stages; when the shortest
    ends, the others are stopped.

    Example:
        >>> list(snake.zip(snake.from_iterable("abc"), snake.from_iterable(range(2))))
        [('a', 0), ('b', 1)]
    """
    from ._stages._combine import Zip

    return Pipeline((Zip(check.check_pipelines(pipelines, "zip")),))


def merge(*pipelines: Pipeline[T]) -> Pipeline[T]:
    """The items of all the pipelines, running at once, in the order they arrive.

    Each pipeline's own items keep their order; between pipelines, whichever
    produces first goes first (completion order).

    Example:
        >>> sorted(snake.merge(snake.from_iterable([1, 3]), snake.from_iterable([2])))
        [1, 2, 3]
    """
    from ._stages._combine import Merge

    return Pipeline((Merge(check.check_pipelines(pipelines, "merge")),))


def mix(
    pipelines: Sequence[Pipeline[T]],
    weights: Sequence[float],
    /,
    *,
    seed: int | None = None,
    stop: Literal["first_exhausted", "all_exhausted"] = "first_exhausted",
) -> Pipeline[T]:
    """Items drawn from the pipelines at random, each by its weight: mixing datasets.

    Each next item comes from a pipeline drawn with probability
    proportional to its weight, at random from ``(seed, epoch)``, so the
    same seed gives the same mix (of the same items) in the same epoch, and
    another in the next (see ``Pipeline.open``). ``stop="first_exhausted"``
    ends when a drawn pipeline has no more items; ``"all_exhausted"`` goes
    on with the others until every one is used up. A pipeline of weight 0
    is drawn only once every other is used up (with ``"all_exhausted"``),
    the pipelines of weight 0 then with equal chances. The pipelines run at
    once, each with its own stages.

    Example:
        >>> a, b = snake.from_iterable("aaaa"), snake.from_iterable("bbbb")
        >>> list(snake.mix([a, b], [3, 1], seed=0))
        ['a', 'a', 'a', 'a', 'b']
        >>> list(snake.mix([a, b], [3, 1], seed=0, stop="all_exhausted"))
        ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b']
    """
    specs = check.check_pipelines(pipelines, "mix")
    weights = check.check_weights(weights, len(specs))
    check.check_choice(stop, "stop", ("first_exhausted", "all_exhausted"))
    if seed is not None:
        check.check_int(seed, "seed", minimum=-(2**63))
    from ._stages._combine import Mix

    return Pipeline((Mix(specs, weights, seed, stop),))
