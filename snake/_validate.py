"""Argument checks run when a pipeline is built, with messages that name the fix.

Each check takes the value and the argument's name and raises with a message
of one shape: the name, the constraint, what it got. The builder calls them
directly; option records (``ErrorPolicy``, ``WorkerOptions``, ``Reporting``)
use the same checks as attrs validators, through :func:`validator`.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import cloudpickle

if TYPE_CHECKING:
    import attrs

T = TypeVar("T")

#: What attrs calls to validate a field: ``(instance, attribute, value)``.
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def validator(check: Callable[..., object], *args: Any, **kwargs: Any) -> Validator:
    """``check(value, name, *args, **kwargs)`` as an attrs validator, with the
    field's name as the caller spells the argument."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(value, attribute.alias, *args, **kwargs)

    return validate


def func_name(fn: object) -> str:
    """A short, readable name for a user's callable, for labels and messages."""
    if isinstance(fn, functools.partial):
        return f"partial({func_name(fn.func)})"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if isinstance(name, str):
        return name.rpartition("<locals>.")[2]
    return type(fn).__name__


def check_int(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def check_concurrency(value: object, name: str = "concurrency") -> int | Literal["auto"]:
    """A concurrency (or a size): an int >= 1, or ``"auto"`` (tuned while it runs)."""
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        raise ValueError(f'`{name}` must be an int >= 1 or "auto", got {value!r}')
    return check_int(value, name, minimum=1)


def check_seconds(value: object, name: str, *, finite: bool = False) -> float:
    """A duration: a number of seconds > 0 (and not infinite, if ``finite``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`{name}` must be a number of seconds, got {type(value).__name__} {value!r}"
        )
    if not (value > 0 and (value < math.inf or not finite)):
        raise ValueError(f"`{name}` must be > 0 seconds, got {value}")
    return value


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be {options}, got {value!r}")
    assert isinstance(value, str)
    return value


def check_max_failures(limit: object, errors: str) -> None:
    """``max_failures``: with ``errors="skip"``, a count or a fraction of the items seen."""
    if limit is None:
        return
    if errors != "skip":
        raise ValueError(
            '`max_failures` applies with errors="skip" only; add errors="skip" or drop it'
        )
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise TypeError(
            "`max_failures` must be a count (int >= 0) or a fraction of the items seen "
            f"(float between 0 and 1), got {type(limit).__name__} {limit!r}"
        )
    if isinstance(limit, int) and limit < 0:
        raise ValueError(f"`max_failures` as a count must be >= 0, got {limit}")
    if isinstance(limit, float) and not 0.0 < limit < 1.0:
        raise ValueError(
            f"`max_failures` as a fraction must be between 0 and 1 (exclusive), got {limit}"
        )


def check_taking(value: object, name: str, argument: str) -> None:
    """A callback: anything callable, which snake calls with an ``argument``."""
    if not callable(value):
        raise TypeError(
            f"`{name}` must be a callable taking {argument}, got {type(value).__name__} {value!r}"
        )


def check_callable(fn: object, method: str, name: str = "fn") -> None:
    if not callable(fn):
        raise TypeError(f"{method}() needs a callable `{name}`, got {type(fn).__name__} {fn!r}")


def is_async_callable(fn: object) -> bool:
    """True for ``async def`` functions, partials of them and async ``__call__``."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - the method, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


def is_surely_sync(fn: object) -> bool:
    """True for a named ``def`` function or a builtin, which cannot be awaited.

    Lambdas, partials and callable objects may return awaitables
    (``lambda u: fetch(u, timeout=3)``), so they are given the benefit of the
    doubt and checked when called.
    """
    target = fn.func if isinstance(fn, functools.partial) else fn
    if inspect.isbuiltin(target):
        return True
    return (
        inspect.isfunction(target)
        and target.__name__ != "<lambda>"
        and not inspect.iscoroutinefunction(target)
        and not inspect.isasyncgenfunction(target)
    )


def check_sync_fn(fn: object, method: str, name: str = "fn") -> None:
    """Reject an async function given to an operator that calls it synchronously."""
    check_callable(fn, method, name)
    if is_async_callable(fn):
        arg, fname = name, func_name(fn)
        many = f".par_then({fname}, concurrency=...) for many calls at once"
        one = f".then({fname}) for one call at a time"
        fixes = f"{many}, or {one}" if method == "par_map" else f"{one}, or {many}"
        raise TypeError(
            f"{method}() calls `{arg}` synchronously, but {fname} is an async function: use {fixes}"
        )


def check_async_fn(fn: object, method: str) -> None:
    """Reject a plain function given to ``then``/``par_then``."""
    check_callable(fn, method)
    if is_surely_sync(fn):
        name = func_name(fn)
        raise TypeError(
            f"{method}() awaits `fn`, but {name} is a regular (sync) function: "
            f"use .par_map({name}) for CPU work in worker processes or "
            f".map({name}) for cheap work"
        )


def check_picklable(fn: Any, method: str) -> None:
    """A process map ships `fn` to worker processes: fail now if it cannot go."""
    try:
        cloudpickle.dumps(fn)
    except Exception as exc:
        raise TypeError(
            f"{method}() cannot send {func_name(fn)} to worker processes because it "
            f"cannot be pickled ({type(exc).__name__}: {exc}); make what it captures "
            f'picklable, or use executor="thread"'
        ) from exc


def check_executor(fn: object, executor: object, timeout: object) -> None:
    """``par_map``'s executor, and what it asks of ``fn`` and ``timeout``."""
    check_choice(executor, "executor", ("process", "thread", "ray", "inline"))
    if executor in ("process", "ray"):
        check_picklable(fn, "par_map")
    if executor == "inline" and timeout is not None:
        raise ValueError(
            '`timeout` cannot be kept with executor="inline": the call runs in the '
            "pipeline's own thread, where nothing can stop it. Leave timeout out "
            'while debugging, or use executor="thread" or "process"'
        )


def awaitable(value: Awaitable[T]) -> Awaitable[T]:
    """``value``, or a ``TypeError`` naming it if it cannot be awaited."""
    if not hasattr(value, "__await__"):
        raise not_awaitable(type(value).__name__)
    return value


class NotAwaitable(TypeError):
    """A function that should return an awaitable did not: a bug, never skipped or retried."""


def not_awaitable(kind: str) -> TypeError:
    """The error for a function that returned a ``kind`` instead of an awaitable."""
    return NotAwaitable(
        f"expected an awaitable, got {kind}: the function must be an async function "
        "or return an awaitable (for a plain function, use .map() or .par_map())"
    )


def check_shard(index: object, count: object) -> tuple[int, int]:
    """``shard``'s rank and world size: as given, else from the environment."""
    if (index is None) != (count is None):
        raise TypeError(
            "shard() takes both `index` and `count`, or neither (to read RANK and WORLD_SIZE)"
        )
    source = "shard()"
    if index is None:
        index, count, source = _rank_and_world()
    index = check_int(index, "index", minimum=0)
    count = check_int(count, "count", minimum=1)
    if index >= count:
        raise ValueError(
            f"shard index {index} is out of range for {count} shards (from {source}): "
            "it must be in 0 .. count - 1"
        )
    return index, count


def _rank_and_world() -> tuple[object, object, str]:
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if (rank is None) != (world is None):
        raise ValueError(
            f"RANK={rank!r} and WORLD_SIZE={world!r} in the environment: set both or neither"
        )
    if rank is not None and world is not None:
        try:
            return int(rank), int(world), "RANK and WORLD_SIZE"
        except ValueError:
            raise ValueError(
                f"RANK={rank!r} and WORLD_SIZE={world!r} must be whole numbers"
            ) from None
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), "torch.distributed"
    return 0, 1, "a single process"


def check_iterable(obj: object, pipeline: type) -> None:
    """``from_iterable``'s argument: an iterable, not a generator function or a pipeline."""
    if inspect.isgeneratorfunction(obj) or inspect.isasyncgenfunction(obj):
        name = func_name(obj)
        raise TypeError(
            f"from_iterable() got the generator function {name}, not a generator: "
            f"call it, as in from_iterable({name}())"
        )
    if isinstance(obj, pipeline):
        raise TypeError(
            "from_iterable() got a Pipeline: use the pipeline itself, chaining onto it "
            "(pipeline.map(fn), ...), or join pipelines with snake.concat(first, second)"
        )
    if not any(hasattr(obj, a) for a in ("__iter__", "__aiter__", "__getitem__")):
        raise TypeError(
            "from_iterable() needs an iterable or an async iterable, "
            f"got {type(obj).__name__} {obj!r}"
        )


def check_applied(result: object, fn: object, pipeline: type[T]) -> T:
    """What ``apply(fn)`` returns: ``fn``'s result, which must be a pipeline."""
    if not isinstance(result, pipeline):
        raise TypeError(
            f"apply() needs `fn` to return a snake.Pipeline, but {func_name(fn)} returned "
            f"{type(result).__name__} {result!r}: return the pipeline it builds, as in "
            "`def fragment(pipeline): return pipeline.map(...)`"
        )
    return result


def check_reiterable(source: object, method: str) -> None:
    """A source that ``method`` will run again must be iterable again."""
    obj = getattr(source, "obj", None)
    if obj is None:
        return  # a repeat of a repeat, say
    once = hasattr(obj, "__next__") or hasattr(obj, "__anext__")
    if once:
        raise TypeError(
            f"{method}() runs the source again each epoch, but {type(obj).__name__} is used "
            "up after one pass: pass the iterable itself (a list, a range, a dataset), or a "
            "generator function's call wrapped in a class whose __iter__ calls it"
        )


def check_pipelines(pipelines: Sequence[object], function: str) -> tuple[tuple[Any, ...], ...]:
    """The operator specs of each pipeline ``function`` combines."""
    specs = []
    for k, p in enumerate(pipelines):
        inner = getattr(p, "_specs", None)
        if inner is None:
            raise TypeError(
                f"snake.{function}() takes pipelines, got {type(p).__name__} {p!r} as argument "
                f"{k}: wrap an iterable in snake.from_iterable(...)"
            )
        specs.append(inner)
    return tuple(specs)


def check_weights(weights: object, count: int) -> tuple[float, ...]:
    """``mix`` weights: one non-negative number per pipeline, not all zero."""
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise TypeError(f"mix() needs a list of weights, got {type(weights).__name__}")
    values = list(weights)  # type: ignore[call-overload]
    if len(values) != count:
        raise ValueError(f"mix() got {count} pipelines but {len(values)} weights: give one each")
    for w in values:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
            raise ValueError(f"mix() weights must be numbers >= 0, got {w!r}")
    if count and not sum(values) > 0:
        raise ValueError("mix() weights must not all be 0")
    return tuple(float(w) for w in values)


def index_shuffled(specs: Sequence[Any], seed: int | None) -> Any:
    """The source of ``specs`` shuffled by index, for ``shuffle()`` with no buffer size."""
    shuffled = specs[0].shuffled(seed) if len(specs) == 1 else None
    if shuffled is None:
        raise TypeError(
            "shuffle() without a buffer size shuffles the indices of a sequence: call it "
            "right after from_iterable(a list, a range, an array or a map-style dataset), "
            "or give a buffer size, shuffle(10_000), to shuffle any items through a buffer"
        )
    return shuffled
