"""Property tests: random pipelines agree with Python's own itertools.

Each operator is drawn with a lazy reference built from ``map``, ``filter``,
``itertools.islice``, ``enumerate`` and chunking; per-item delays run on
trio's autojump clock, so an example costs milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import snake

Build = Callable[[snake.Pipeline[int]], snake.Pipeline[int]]
Reference = Callable[[Iterable[int]], Iterable[int]]


@attrs.frozen
class Op:
    """One drawn operator: how to add it to a pipeline, and what it should do."""

    name: str
    build: Build
    reference: Reference

    def __repr__(self) -> str:
        return self.name


def chunked(it: Iterable[int], size: int, drop_last: bool) -> Iterator[list[int]]:
    it = iter(it)
    while batch := list(itertools.islice(it, size)):
        if len(batch) == size or not drop_last:
            yield batch


def delayed(delays: list[float]) -> Callable[[int], Any]:
    async def fn(x: int) -> int:
        await trio.sleep(delays[x % len(delays)])
        return x

    return fn


delays = st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.5, 3.0]), min_size=1, max_size=5)


@st.composite
def ops(draw: st.DrawFn, *, infinite: bool = False) -> Op:
    """An operator; with ``infinite``, one that keeps an infinite stream infinite.

    A filter can drop every item once a map made them alike (``x*0+c``), so
    infinite chains draw no filter here; the test puts one at the front,
    where the items are still distinct.
    """
    kinds = ["map", "filter", "flat_map", "enumerate", "take", "skip", "batch", "rebatch",
             "then", "par_then", "par_map", "prefetch"]  # fmt: skip
    if infinite:
        kinds.remove("filter")
    kind = draw(st.sampled_from(kinds))
    if kind == "map":
        k, c = draw(st.integers(-3, 3)), draw(st.integers(-5, 5))
        f = lambda x: x * k + c  # noqa: E731
        return Op(f"map(x*{k}+{c})", lambda p: p.map(f), lambda it: map(f, it))
    if kind == "filter":
        m = draw(st.integers(2, 4))
        r = draw(st.integers(0, m - 1))
        pred = lambda x: x % m != r  # noqa: E731
        return Op(f"filter(x%{m}!={r})", lambda p: p.filter(pred), lambda it: filter(pred, it))
    if kind == "flat_map":
        n = draw(st.integers(1 if infinite else 0, 3))
        f = lambda x: [x] * n  # noqa: E731
        return Op(
            f"flat_map([x]*{n})", lambda p: p.flat_map(f),
            lambda it: itertools.chain.from_iterable(map(f, it)),
        )  # fmt: skip
    if kind == "enumerate":
        start = draw(st.integers(-10, 10))
        pack = lambda pair: pair[0] * 1000 + pair[1]  # noqa: E731
        return Op(
            f"enumerate({start})", lambda p: p.enumerate(start).map(pack),
            lambda it: map(pack, enumerate(it, start)),
        )  # fmt: skip
    if kind in ("take", "skip"):
        n = draw(st.integers(0, 40))
        if kind == "take":
            return Op(f"take({n})", lambda p: p.take(n), lambda it: itertools.islice(it, n))
        return Op(f"skip({n})", lambda p: p.skip(n), lambda it: itertools.islice(it, n, None))
    if kind == "batch":
        size, drop = draw(st.integers(1, 6)), draw(st.booleans())
        return Op(
            f"batch({size}, drop_last={drop}, collate=sum)",
            lambda p: p.batch(size, drop_last=drop, collate=sum),
            lambda it: map(sum, chunked(it, size, drop)),
        )
    if kind == "rebatch":
        size = draw(st.integers(1, 6))
        return Op(f"batch({size}).unbatch()", lambda p: p.batch(size).unbatch(), lambda it: it)
    if kind == "prefetch":
        n = draw(st.integers(1, 20))
        return Op(f"prefetch({n})", lambda p: p.prefetch(n), lambda it: it)
    if kind == "par_map":
        c = draw(st.integers(1, 4))
        return Op(
            f"par_map(neg, concurrency={c}, thread)",
            lambda p: p.par_map(lambda x: -x, concurrency=c, executor="thread"),
            lambda it: (-x for x in it),
        )
    fn = delayed(draw(delays))
    if kind == "then":
        return Op("then(delayed)", lambda p: p.then(fn), lambda it: it)
    c = draw(st.integers(1, 8))
    return Op(
        f"par_then(delayed, concurrency={c})", lambda p: p.par_then(fn, concurrency=c),
        lambda it: it,
    )  # fmt: skip


def build(source: Iterable[int], chain: list[Op]) -> snake.Pipeline[int]:
    pipeline = snake.from_iterable(source)
    for op in chain:
        pipeline = op.build(pipeline)
    return pipeline


def reference(source: Iterable[int], chain: list[Op]) -> Iterable[int]:
    it: Iterable[int] = source
    for op in chain:
        it = op.reference(it)
    return it


def run(pipeline: snake.Pipeline[int]) -> list[int]:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(pipeline.collect, clock=clock)


items = st.lists(st.integers(-1000, 1000), max_size=120)


@given(items, st.lists(ops(), max_size=6))
def test_an_ordered_pipeline_gives_what_itertools_gives(data: list[int], chain: list[Op]) -> None:
    assert run(build(data, chain)) == list(reference(data, chain))


@given(st.lists(ops(infinite=True), max_size=5), st.integers(0, 60), st.integers(0, 4))
def test_take_on_an_infinite_source_terminates_with_the_reference_prefix(
    chain: list[Op], n: int, m: int
) -> None:
    if m >= 2:
        chain = [Op(f"filter(x%{m}!=0)", lambda p: p.filter(lambda x: x % m != 0),
                    lambda it: (x for x in it if x % m != 0))] + chain  # fmt: skip
    got = run(build(itertools.count(), chain).take(n))
    assert got == list(itertools.islice(reference(itertools.count(), chain), n))


@given(items, st.lists(ops(), max_size=3), delays, st.integers(1, 8), st.booleans())
def test_an_unordered_stage_gives_a_permutation(
    data: list[int], chain: list[Op], delay: list[float], concurrency: int, threads: bool
) -> None:
    pipeline = build(data, chain)
    if threads:
        pipeline = pipeline.par_map(abs, concurrency=concurrency, ordered=False, executor="thread")
        expected = [abs(x) for x in reference(data, chain)]
    else:
        pipeline = pipeline.par_then(delayed(delay), concurrency=concurrency, ordered=False)
        expected = list(reference(data, chain))
    assert sorted(run(pipeline)) == sorted(expected)


@given(items, st.integers(1, 300), delays)
def test_batch_then_unbatch_is_the_identity(data: list[int], size: int, delay: list[float]) -> None:
    pipeline = snake.from_iterable(data).then(delayed(delay)).batch(size).unbatch()
    assert run(pipeline) == data


@given(items, st.integers(1, 300), st.booleans())
def test_batch_matches_chunking(data: list[int], size: int, drop_last: bool) -> None:
    got = run(snake.from_iterable(data).batch(size, drop_last=drop_last))  # type: ignore[arg-type]
    assert got == list(chunked(data, size, drop_last))
