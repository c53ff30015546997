"""``WorkerOptions``: how a process map's worker processes start and live."""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING, Literal

import attrs

from .. import _validate as check

if TYPE_CHECKING:
    from collections.abc import Callable

StartMethod = Literal["spawn", "forkserver"]

#: Where it exists, a fork server: workers start in milliseconds, not tenths
#: of a second, and it is as safe as spawning (Python 3.14 chose it too).
DEFAULT_START_METHOD: StartMethod = (
    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
)


def _start_method(value: object, name: str) -> None:
    check.check_choice(value, name, ("spawn", "forkserver"))
    if value not in multiprocessing.get_all_start_methods():
        raise ValueError(f"`{name}` {value!r} is not available on this platform")


def _init(value: object, name: str) -> None:
    check.check_sync_fn(value, "WorkerOptions", name)
    check.check_picklable(value, "WorkerOptions")


@attrs.frozen(kw_only=True)
class WorkerOptions:
    """How the worker processes of a ``par_map(..., executor="process")`` start and live.

    Args:
      start_method: ``"forkserver"`` (the default where it exists, as on
        Linux and macOS: workers are forked from a server process that
        loaded snake and your script, with what it imports, once, so after
        the first pipeline they start in milliseconds, even if the script
        imports torch; the server, one per interpreter, stays until the
        interpreter exits) or ``"spawn"`` (a fresh interpreter per worker,
        which runs your script's module again: about 0.1 s plus its
        imports). Either way the script runs again in another process, so
        it needs an ``if __name__ == "__main__":`` guard. ``"fork"`` is
        not offered: forking a process that runs threads, as trio does, can
        deadlock the child.
      init: called once in each worker process before its first item, with
        the worker's number (0, 1, ... in the order they start; a worker
        started to replace one gets the next number), for instance to seed
        random generators per worker as PyTorch's ``worker_init_fn`` does.
        An exception it raises arrives with the first items that worker
        was given.
      max_items: retire a worker once it has processed this many items (a
        fresh one takes over), for libraries that leak memory.

    Maps with equal options share their worker processes; all process maps
    of a pipeline share one CPU budget.

    Example::

        pipeline.par_map(augment, workers=snake.WorkerOptions(init=seed_worker))
    """

    start_method: StartMethod = attrs.field(
        factory=lambda: DEFAULT_START_METHOD, validator=check.validator(_start_method)
    )
    init: Callable[[int], object] | None = attrs.field(
        default=None, validator=attrs.validators.optional(check.validator(_init))
    )
    max_items: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(check.validator(check.check_int, minimum=1)),
    )
