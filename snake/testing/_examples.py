"""The operator table's examples: an ``Op`` per use, and the functions they call."""

# Worker processes import functions from here by name (``negate``): it
# imports no hypothesis.

from __future__ import annotations

import collections
import itertools
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from .. import _combinators as combine
from .._pipeline import Pipeline, from_iterable
from ._ops import Op
from ._references import Naturals, chunked, interleaved, repeated, sharded

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable


# --- the functions the examples call -------------------------------------------


@attrs.frozen
class Fn:
    """A function of one int, and how an example's label shows it."""

    name: str
    call: Callable[[int], Any]

    def __str__(self) -> str:
        return self.name


def negate(x: int) -> int:  # module-level: worker processes import it by name
    return -x


IDENTITY = Fn("x", lambda x: x)
NEGATE = Fn("-x", negate)


def linear(k: int, c: int) -> Fn:
    return Fn(f"x*{k}+{c}", lambda x: x * k + c)


def waiting(fn: Fn, waits: list[float]) -> Callable[[int], Awaitable[Any]]:
    """``fn`` as an async function that first sleeps ``waits[x % len(waits)]``."""

    async def call(x: int) -> Any:
        await trio.sleep(waits[x % len(waits)])
        return fn.call(x)

    return call


def delayed(waits: list[float]) -> Callable[[int], Awaitable[int]]:
    """The identity, after a sleep of ``waits[x % len(waits)]``."""
    return waiting(IDENTITY, waits)


#: The waits of the fixed examples' async functions: half the calls wait, one in four for long.
WAITS = [0.0, 0.001, 0.0, 0.01]


# --- failing functions, for the errors an operator's own function raises ------


class Boom(Exception):
    """What the table's failing functions raise."""


def fails_at(bad: int) -> Callable[[int], int]:
    def fn(x: int) -> int:
        if x == bad:
            raise Boom(f"item {x}")
        return x

    return fn


async def afails_at_3(x: int) -> int:
    await trio.sleep(0.01 * (x % 4))
    if x == 3:
        raise Boom("async")
    return x


def fails_at_batch(bad_first: int) -> Callable[[list[int]], int]:
    def fn(batch: list[int]) -> int:
        if batch[0] == bad_first:
            raise Boom("collate")
        return sum(batch)

    return fn


# --- examples: inline operators -------------------------------------------------


def mapped(fn: Fn) -> Op:
    return Op(f"map({fn})", lambda p: p.map(fn.call), lambda it: map(fn.call, it))


def filtered(m: int, r: int) -> Op:
    def keep(x: int) -> bool:
        return x % m != r

    return Op(f"filter(x%{m}!={r})", lambda p: p.filter(keep), lambda it: filter(keep, it))


def flat_mapped(fn: Fn, n: int) -> Op:
    def many(x: int) -> list[Any]:
        return [fn.call(x)] * n

    return Op(
        f"flat_map([{fn}]*{n})", lambda p: p.flat_map(many),
        lambda it: itertools.chain.from_iterable(map(many, it)),
    )  # fmt: skip


def pack(pair: tuple[int, int]) -> int:
    return pair[0] * 1000 + pair[1]


def enumerated(start: int) -> Op:
    return Op(
        f"enumerate({start}).map(i*1000+x)", lambda p: p.enumerate(start).map(pack),
        lambda it: map(pack, enumerate(it, start)),
    )  # fmt: skip


def taken(n: int) -> Op:
    return Op(
        f"take({n})", lambda p: p.take(n), lambda it: itertools.islice(it, n), ends_early=True
    )


def skipped(n: int) -> Op:
    return Op(f"skip({n})", lambda p: p.skip(n), lambda it: itertools.islice(it, n, None))


def batched(size: int, drop_last: bool) -> Op:
    return Op(
        f"batch({size}, drop_last={drop_last}, collate=sum)",
        lambda p: p.batch(size, drop_last=drop_last, collate=sum),
        lambda it: map(sum, chunked(it, size, drop_last)),
    )


def unbatched(size: int) -> Op:
    return Op(f"batch({size}).unbatch()", lambda p: p.batch(size).unbatch(), lambda it: it)


def shuffled(buffer_size: int, seed: int | None) -> Op:
    return Op(
        f"shuffle({buffer_size}, seed={seed})", lambda p: p.shuffle(buffer_size, seed=seed),
        lambda it: it, ordered=False,
    )  # fmt: skip


def shards(index: int, count: int, equal: Literal["drop", "pad"] | None) -> Op:
    return Op(
        f"shard({index}, {count}, equal={equal!r})",
        lambda p: p.shard(index, count, equal=equal),
        lambda it: sharded(it, index, count, equal),
    )


def repeats(times: int | None) -> Op:
    if times is None:
        return Op("repeat()", lambda p: p.repeat(), itertools.cycle)
    return Op(f"repeat({times})", lambda p: p.repeat(times), lambda it: repeated(it, times))


def prefetched(n: int | Literal["auto"]) -> Op:
    return Op(f"prefetch({n!r})", lambda p: p.prefetch(n), lambda it: it)


# --- examples: stages -----------------------------------------------------------


def awaited(fn: Fn, waits: list[float]) -> Op:
    call = waiting(fn, waits)
    return Op(f"then({fn}, waits={waits})", lambda p: p.then(call), lambda it: map(fn.call, it))


def par_awaited(fn: Fn, waits: list[float], concurrency: int, ordered: bool) -> Op:
    call = waiting(fn, waits)
    return Op(
        f"par_then({fn}, waits={waits}, concurrency={concurrency}, ordered={ordered})",
        lambda p: p.par_then(call, concurrency=concurrency, ordered=ordered),
        lambda it: map(fn.call, it),
        ordered=ordered,
    )


def par_mapped(
    fn: Fn, concurrency: int | None, ordered: bool, executor: Literal["process", "thread", "inline"]
) -> Op:
    return Op(
        f"par_map({fn}, concurrency={concurrency}, ordered={ordered}, executor={executor!r})",
        lambda p: p.par_map(fn.call, concurrency=concurrency, ordered=ordered, executor=executor),
        lambda it: map(fn.call, it),
        ordered=ordered,
    )


def interleaving(
    cycle: int, block: int, width: int, ordered: bool, as_pipeline: bool, waits: list[float]
) -> Op:
    """Each item ``x`` opens a file of ``width`` records ``x*10``, ``x*10+1``, ..."""

    def records(x: int) -> list[int]:
        return [x * 10 + j for j in range(width)]

    def read(x: int) -> Pipeline[int] | list[int]:
        if as_pipeline:
            return from_iterable(records(x)).then(delayed(waits))
        return records(x)

    def reference(it: Iterable[int]) -> Iterable[int]:
        files = map(records, it)
        if ordered:
            return interleaved(files, cycle, block)
        return itertools.chain.from_iterable(files)

    kind = f"pipelines waiting {waits}" if as_pipeline else "lists"
    return Op(
        f"interleave(files of {width} as {kind}, cycle_length={cycle}, block_length={block}, "
        f"ordered={ordered})",
        lambda p: p.interleave(read, cycle_length=cycle, block_length=block, ordered=ordered),
        reference,
        ordered=ordered,
    )


# --- examples: the user's own stages and fragments ------------------------------


def windows(k: int, step: int, fn: Fn, waits: list[float]) -> Op:
    """``through``: the sums of sliding windows of ``k`` items, one every ``step``
    items, each passed to ``fn``; the generator sleeps ``waits[x % len(waits)]``
    on each item."""

    async def window_sums(items: AsyncIterator[int]) -> AsyncIterator[Any]:
        window: collections.deque[int] = collections.deque(maxlen=k)
        seen = 0
        async for x in items:
            await trio.sleep(waits[x % len(waits)])
            window.append(x)
            seen += 1
            if seen >= k and (seen - k) % step == 0:
                yield fn.call(sum(window))

    def reference(it: Iterable[int]) -> Iterable[Any]:
        shifted = [itertools.islice(c, j, None) for j, c in enumerate(itertools.tee(it, k))]
        return map(fn.call, map(sum, itertools.islice(zip(*shifted, strict=False), 0, None, step)))

    return Op(
        f"through(sums of windows of {k} every {step}, then {fn}, waits={waits})",
        lambda p: p.through(window_sums),
        reference,
    )


async def through_fails_at_3(items: AsyncIterator[int]) -> AsyncIterator[int]:
    async for x in items:
        if x == 3:
            raise Boom("through")
        yield x


def applied(fn: Fn) -> Op:
    def fragment(p: Pipeline[int]) -> Pipeline[Any]:
        return p.map(fn.call)

    return Op(f"apply(map({fn}))", lambda p: p.apply(fragment), lambda it: map(fn.call, it))


# --- examples: combinators, where the pipeline under test runs nested ------------

#: What the combinators add around the pipeline under test.
HEAD, TAIL = [-1, -2], [-3, -4, -5]


def add_position(pair: tuple[int, int]) -> int:
    return pair[0] + pair[1]


def concatenated() -> Op:
    return Op(
        "concat(HEAD, p, TAIL)",
        lambda p: combine.concat(from_iterable(HEAD), p, from_iterable(TAIL)),
        lambda it: itertools.chain(HEAD, it, TAIL),
    )


def zipped() -> Op:
    return Op(
        "zip(p, naturals).map(x+i)",
        lambda p: combine.zip(p, from_iterable(Naturals())).map(add_position),
        lambda it: (x + i for i, x in enumerate(it)),
    )


def merged() -> Op:
    return Op(
        "merge(p, TAIL)",
        lambda p: combine.merge(p, from_iterable(TAIL)),
        lambda it: itertools.chain(it, TAIL),
        ordered=False,
    )


def mixed(weights: tuple[float, float], seed: int | None) -> Op:
    return Op(
        f"mix([p, TAIL], {list(weights)}, seed={seed}, stop='all_exhausted')",
        lambda p: combine.mix(
            [p, from_iterable(TAIL)], list(weights), seed=seed, stop="all_exhausted"
        ),
        lambda it: itertools.chain(it, TAIL),
        ordered=False,
    )
