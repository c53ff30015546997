"""``WorkerOptions`` and ``RayOptions``: where a map's workers run, and how they start and live."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .. import _validate as check

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

StartMethod = Literal["spawn", "forkserver"]

#: Where it exists, a fork server: workers start in milliseconds, not tenths
#: of a second, and it is as safe as spawning (Python 3.14 chose it too).
DEFAULT_START_METHOD: StartMethod = (
    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
)


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask), at least one."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _start_method(value: object, name: str) -> None:
    check.check_choice(value, name, ("spawn", "forkserver"))
    if value not in multiprocessing.get_all_start_methods():
        raise ValueError(f"`{name}` {value!r} is not available on this platform")


def _init(value: object, name: str) -> None:
    check.check_callable(value, "WorkerOptions", name)
    if check.is_async_callable(value):
        fname = check.func_name(value)
        raise TypeError(
            f"WorkerOptions(init=...) must be a plain (sync) function, called once in each "
            f"worker process with its number, but {fname} is an async function: for async "
            f"set-up, run it from a plain function, as in "
            f"`def init(worker): trio.run({fname}, worker)`"
        )
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
        the worker's id, as PyTorch's ``worker_init_fn``; ``snake.worker_info()``
        can be read there. Seeding needs none: each worker seeds Python's
        ``random``, numpy's and torch's global generators per epoch (see
        :func:`snake.worker_info`). An exception it raises arrives with the
        first items that worker was given.
      max_items: retire a worker once it has processed this many items (a
        fresh one takes over), for libraries that leak memory.

    Maps with equal options share their worker processes; all process maps
    of a pipeline share one CPU budget.

    Example:
        >>> options = snake.WorkerOptions(max_items=1000)
        >>> list(snake.from_iterable(range(-2, 2)).par_map(abs, workers=options))
        [2, 1, 0, 1]
    """

    start_method: Literal["spawn", "forkserver"] = attrs.field(
        default=DEFAULT_START_METHOD, validator=check.validator(_start_method)
    )
    init: Callable[[int], object] | None = attrs.field(
        default=None, validator=attrs.validators.optional(check.validator(_init))
    )
    max_items: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(check.validator(check.check_int, minimum=1)),
    )


def _amount(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0, got {value!r}")


def _resources(value: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    """Custom resources as sorted pairs: options stay hashable and compare equal."""
    if value is None:
        return ()
    if not hasattr(value, "items"):
        raise TypeError(f"`resources` must be a dict of resource names to amounts, got {value!r}")
    pairs = tuple(sorted(value.items()))
    for name, amount in pairs:
        if not isinstance(name, str):
            raise TypeError(f"`resources` names must be strings, got {name!r}")
        _amount(amount, f"resources[{name!r}]")
    return pairs


@attrs.frozen(kw_only=True)
class RayOptions:
    """What each task of a ``par_map(..., executor="ray")`` asks of the Ray cluster.

    Args:
      num_cpus: CPUs each task holds (Ray's ``num_cpus``, 1 by default). With
        ``concurrency=None``, a stage runs as many tasks at once as the
        cluster has CPUs for.
      num_gpus: GPUs each task holds (Ray's ``num_gpus``).
      memory: bytes of memory each task reserves (Ray's ``memory``).
      resources: custom resources each task holds, such as
        ``{"decoder": 1}`` for nodes started with that resource.
      scheduling_strategy: where Ray places the tasks: ``"DEFAULT"``,
        ``"SPREAD"``, or one of Ray's strategy objects (a placement group's,
        a node's).

    Jobs run on the Ray runtime the program connected to with
    ``ray.init(address=...)``; with none, snake starts a local one, as Ray
    does on a first task (and logs it). snake (and what the function needs)
    must be importable on every node, or be given to Ray in a runtime
    environment.

    Example:
        >>> options = snake.RayOptions(num_cpus=2)
        >>> options
        RayOptions(num_cpus=2, num_gpus=0, memory=None, resources=(), scheduling_strategy=None)
        >>> pipeline = snake.from_iterable(range(3)).par_map(abs, executor="ray", workers=options)
    """

    num_cpus: float = attrs.field(default=1, validator=check.validator(_amount))
    num_gpus: float = attrs.field(default=0, validator=check.validator(_amount))
    memory: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(check.validator(check.check_int, minimum=1)),
    )
    resources: tuple[tuple[str, float], ...] = attrs.field(default=None, converter=_resources)
    scheduling_strategy: Any = None

    def task_options(self) -> dict[str, Any]:
        """The keywords of Ray's ``.options()`` for each task."""
        options: dict[str, Any] = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            options["num_gpus"] = self.num_gpus
        if self.memory is not None:
            options["memory"] = self.memory
        if self.resources:
            options["resources"] = dict(self.resources)
        if self.scheduling_strategy is not None:
            options["scheduling_strategy"] = self.scheduling_strategy
        return options


#: The options of a ``par_map``'s workers: processes, or tasks on Ray.
MapOptions = WorkerOptions | RayOptions


def check_workers(workers: object, executor: str) -> MapOptions:
    """The options of a ``par_map``'s workers: those given, which must fit
    ``executor``, or its defaults. Ray must be installed for ``"ray"``."""
    if executor == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ImportError(
                '`executor="ray"` needs Ray, which is not installed: pip install "snake[ray]"'
            )
        wanted: type[MapOptions] = RayOptions
    else:
        wanted = WorkerOptions
    if workers is None or (executor == "inline" and isinstance(workers, WorkerOptions)):
        return wanted()  # the inline executor has no workers: options are for later
    if executor == "thread":
        raise ValueError('`workers` applies to executor="process" or "ray" only')
    if not isinstance(workers, wanted):
        raise TypeError(
            f'`workers` of executor="{executor}" must be a snake.{wanted.__name__}, '
            f"got {type(workers).__name__} {workers!r}"
        )
    return workers
