"""One table of every public operator, which the test suites draw from.

Each row of ``OPERATORS`` names an operator and gives a small ``Example`` of
it: how to add it to a pipeline of ints, and a lazy reference of what it
should give, computed by Python and itertools on any iterable of ints (so on
``itertools.count()`` too). A row may also say how to draw random examples
of the same operator for the property suites (``draw``), how its own
function fails and which note that error gets (``error``), and what the
suites must know about it: whether it keeps input order, starts worker
processes, gives items for ever, ends before its input does, or could drop
every item of an infinite stream.

A new operator is one more row here; ``test_pipeline`` fails until it has one.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Literal, TypeVar

import attrs
import fake_torch
import trio
from fake_torch import FakeTensor
from hypothesis import strategies as st

import snake

T = TypeVar("T")
Build = Callable[[snake.Pipeline[Any]], snake.Pipeline[Any]]
Reference = Callable[[Iterable[Any]], Iterable[Any]]


# --- sources that start afresh on each run, as repeat() needs ----------------


class Naturals:
    """0, 1, 2, ... for ever, from the start on every run (``itertools.count()`` runs once)."""

    def __iter__(self) -> Iterator[int]:
        return itertools.count()


class Endless:
    """An async source of 0, 1, 2, ... for ever, pausing every 100 items; each run starts again."""

    def __aiter__(self) -> AsyncIterator[int]:
        return self._items()

    async def _items(self) -> AsyncIterator[int]:
        for i in itertools.count():
            if i % 100 == 0:
                await trio.sleep(0.001)
            yield i


# --- the functions the examples call -------------------------------------------


@attrs.frozen
class Fn:
    """A function of one int, and how an example's name shows it."""

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
    pass


def fails_at(bad: int) -> Any:
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


def fails_at_batch(bad_first: int) -> Any:
    def fn(batch: list[int]) -> int:
        if batch[0] == bad_first:
            raise Boom("collate")
        return sum(batch)

    return fn


# --- references ----------------------------------------------------------------


def chunked(it: Iterable[T], size: int, drop_last: bool) -> Iterator[list[T]]:
    it = iter(it)
    while batch := list(itertools.islice(it, size)):
        if len(batch) == size or not drop_last:
            yield batch


def sharded(
    items: Iterable[T], index: int, count: int, equal: Literal["drop", "pad"] | None
) -> Iterator[T]:
    """The items at ``index``, ``index + count``, ...; the last, short round as ``equal`` says.

    Each item leaves as soon as it arrives, but with ``"drop"``, when its round
    is complete (the last, short one is dropped); ``"pad"`` completes the last
    round from the first one, as PyTorch's ``DistributedSampler`` does.
    """
    first: list[T] = []
    held: list[T] = []  # with "drop": this rank's item of the current round
    seen = 0
    for position, item in enumerate(items):
        seen = position + 1
        if position < count:
            first.append(item)
        if position % count == index:
            if equal == "drop":
                held.append(item)
            else:
                yield item
        if position % count == count - 1:
            yield from held
            held.clear()
    short = seen % count
    if equal == "pad" and short and index >= short:
        yield first[(index - short) % len(first)]


_END = object()


def interleaved(files: Iterable[Iterable[T]], cycle: int, block: int) -> Iterator[T]:
    """tf.data's deterministic interleave, as snake documents it."""
    pending = iter(files)
    slots: list[Iterator[T] | None] = [iter(f) for f in itertools.islice(pending, cycle)]
    at = 0
    while any(s is not None for s in slots):
        slot = slots[at]
        if slot is not None:
            for _ in range(block):
                item = next(slot, _END)
                if item is _END:
                    following = next(pending, None)
                    slots[at] = None if following is None else iter(following)
                    break
                yield item  # type: ignore[misc]
        at = (at + 1) % len(slots)


def repeated(it: Iterable[T], times: int) -> Iterator[T]:
    return itertools.chain.from_iterable(itertools.tee(it, times))


# --- examples ------------------------------------------------------------------


@attrs.frozen
class Example:
    """One use of an operator: how to add it to a pipeline, and what it should give."""

    label: str
    add: Build
    reference: Reference
    ends_early: bool = False  # a take: the stages before it may run past its end

    def __repr__(self) -> str:
        return self.label


def mapped(fn: Fn) -> Example:
    return Example(f"map({fn})", lambda p: p.map(fn.call), lambda it: map(fn.call, it))


def filtered(m: int, r: int) -> Example:
    def keep(x: int) -> bool:
        return x % m != r

    return Example(f"filter(x%{m}!={r})", lambda p: p.filter(keep), lambda it: filter(keep, it))


def flat_mapped(fn: Fn, n: int) -> Example:
    def many(x: int) -> list[Any]:
        return [fn.call(x)] * n

    return Example(
        f"flat_map([{fn}]*{n})", lambda p: p.flat_map(many),
        lambda it: itertools.chain.from_iterable(map(many, it)),
    )  # fmt: skip


def pack(pair: tuple[int, int]) -> int:
    return pair[0] * 1000 + pair[1]


def enumerated(start: int) -> Example:
    return Example(
        f"enumerate({start}).map(i*1000+x)", lambda p: p.enumerate(start).map(pack),
        lambda it: map(pack, enumerate(it, start)),
    )  # fmt: skip


def taken(n: int) -> Example:
    return Example(
        f"take({n})", lambda p: p.take(n), lambda it: itertools.islice(it, n), ends_early=True
    )


def skipped(n: int) -> Example:
    return Example(f"skip({n})", lambda p: p.skip(n), lambda it: itertools.islice(it, n, None))


def batched(size: int, drop_last: bool) -> Example:
    return Example(
        f"batch({size}, drop_last={drop_last}, collate=sum)",
        lambda p: p.batch(size, drop_last=drop_last, collate=sum),
        lambda it: map(sum, chunked(it, size, drop_last)),
    )


def unbatched(size: int) -> Example:
    return Example(f"batch({size}).unbatch()", lambda p: p.batch(size).unbatch(), lambda it: it)


def awaited(fn: Fn, waits: list[float]) -> Example:
    call = waiting(fn, waits)
    return Example(
        f"then({fn}, waits={waits})", lambda p: p.then(call), lambda it: map(fn.call, it)
    )


def par_awaited(fn: Fn, waits: list[float], concurrency: int, ordered: bool) -> Example:
    call = waiting(fn, waits)
    return Example(
        f"par_then({fn}, waits={waits}, concurrency={concurrency}, ordered={ordered})",
        lambda p: p.par_then(call, concurrency=concurrency, ordered=ordered),
        lambda it: map(fn.call, it),
    )


def par_mapped(fn: Fn, concurrency: int | None, ordered: bool, executor: str) -> Example:
    return Example(
        f"par_map({fn}, concurrency={concurrency}, ordered={ordered}, executor={executor!r})",
        lambda p: p.par_map(
            fn.call,
            concurrency=concurrency,
            ordered=ordered,
            executor=executor,  # type: ignore[arg-type]
        ),
        lambda it: map(fn.call, it),
    )


def shuffled(buffer_size: int, seed: int | None) -> Example:
    # Not in order: the suites compare it with its reference as a multiset.
    return Example(
        f"shuffle({buffer_size}, seed={seed})", lambda p: p.shuffle(buffer_size, seed=seed),
        lambda it: it,
    )  # fmt: skip


def shards(index: int, count: int, equal: Literal["drop", "pad"] | None) -> Example:
    return Example(
        f"shard({index}, {count}, equal={equal!r})",
        lambda p: p.shard(index, count, equal=equal),
        lambda it: sharded(it, index, count, equal),
    )


def interleaving(
    cycle: int, block: int, width: int, ordered: bool, as_pipeline: bool, waits: list[float]
) -> Example:
    """Each item ``x`` opens a file of ``width`` records ``x*10``, ``x*10+1``, ..."""

    def records(x: int) -> list[int]:
        return [x * 10 + j for j in range(width)]

    def read(x: int) -> snake.Pipeline[int] | list[int]:
        if as_pipeline:
            return snake.from_iterable(records(x)).then(delayed(waits))
        return records(x)

    def reference(it: Iterable[int]) -> Iterable[int]:
        files = map(records, it)
        if ordered:
            return interleaved(files, cycle, block)
        return itertools.chain.from_iterable(files)

    kind = f"pipelines waiting {waits}" if as_pipeline else "lists"
    return Example(
        f"interleave(files of {width} as {kind}, cycle_length={cycle}, block_length={block}, "
        f"ordered={ordered})",
        lambda p: p.interleave(read, cycle_length=cycle, block_length=block, ordered=ordered),
        reference,
    )


def repeats(times: int | None) -> Example:
    if times is None:
        return Example("repeat()", lambda p: p.repeat(), itertools.cycle)
    return Example(f"repeat({times})", lambda p: p.repeat(times), lambda it: repeated(it, times))


def arrived(tensor: FakeTensor) -> int:
    """The value of a tensor that ``to_device("cuda:1")`` pinned and moved in a thread."""
    if tensor.device != "cuda:1" or not tensor.pinned or tensor.thread == "MainThread":
        raise AssertionError(f"not moved: {tensor.device}, {tensor.pinned}, {tensor.thread}")
    return tensor.value


def to_device(p: snake.Pipeline[int]) -> snake.Pipeline[int]:
    # torch is looked up when the pipeline is built, so the stand-in needs to
    # be there only then; moving calls the tensors' own methods.
    with fake_torch.installed():
        moved = p.map(FakeTensor).to_device("cuda:1")
    return moved.map(arrived)


def prefetched(n: int) -> Example:
    return Example(f"prefetch({n})", lambda p: p.prefetch(n), lambda it: it)


#: What the combinators add around the pipeline under test.
HEAD, TAIL = [-1, -2], [-3, -4, -5]


def add_position(pair: tuple[int, int]) -> int:
    return pair[0] + pair[1]


def concatenated() -> Example:
    return Example(
        "concat(HEAD, p, TAIL)",
        lambda p: snake.concat(snake.from_iterable(HEAD), p, snake.from_iterable(TAIL)),
        lambda it: itertools.chain(HEAD, it, TAIL),
    )


def zipped() -> Example:
    return Example(
        "zip(p, naturals).map(x+i)",
        lambda p: snake.zip(p, snake.from_iterable(Naturals())).map(add_position),
        lambda it: (x + i for i, x in enumerate(it)),
    )


def merged() -> Example:
    return Example(
        "merge(p, TAIL)",
        lambda p: snake.merge(p, snake.from_iterable(TAIL)),
        lambda it: itertools.chain(it, TAIL),
    )


def mixed(weights: tuple[float, float], seed: int | None) -> Example:
    return Example(
        f"mix([p, TAIL], {list(weights)}, seed={seed}, stop='all_exhausted')",
        lambda p: snake.mix(
            [p, snake.from_iterable(TAIL)], list(weights), seed=seed, stop="all_exhausted"
        ),
        lambda it: itertools.chain(it, TAIL),
    )


def windows(k: int, step: int, fn: Fn, waits: list[float]) -> Example:
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

    return Example(
        f"through(sums of windows of {k} every {step}, then {fn}, waits={waits})",
        lambda p: p.through(window_sums),
        reference,
    )


async def through_fails_at_3(items: AsyncIterator[int]) -> AsyncIterator[int]:
    async for x in items:
        if x == 3:
            raise Boom("through")
        yield x


def applied(fn: Fn) -> Example:
    def fragment(p: snake.Pipeline[int]) -> snake.Pipeline[Any]:
        return p.map(fn.call)

    return Example(f"apply(map({fn}))", lambda p: p.apply(fragment), lambda it: map(fn.call, it))


# --- the table -----------------------------------------------------------------


@attrs.frozen
class Draws:
    """What a suite lets the drawn examples vary."""

    #: The waits of async functions (``then``, ``par_then``, interleaved files).
    delays: st.SearchStrategy[list[float]] = attrs.field(factory=lambda: st.just([0.0]))
    #: The function an operator calls on each item; ``None``: the row's own.
    fn: st.SearchStrategy[Fn] | None = None
    #: The examples must keep an infinite stream infinite (and not empty).
    infinite: bool = False


Draw = Callable[[st.DrawFn, Draws], Example]


@attrs.frozen
class OwnError:
    """The operator's own function failing on ``from_iterable(range(10))``, and the note's end."""

    add: Build
    note: str


@attrs.frozen
class Operator:
    """A row of the table: a public operator, a fixed small example, and its flags."""

    name: str  # as snake spells it: "par_map", "concat"
    example: Example
    label: str = ""  # the row's test id, when one operator has several rows
    #: Random examples of the operator, for the property suites; None: the fixed one.
    draw: Draw | None = None
    error: OwnError | None = None
    ordered: bool = True  # gives its reference in order; else the same items, in any order
    processes: bool = False  # starts worker processes: the real clock, fewer items
    #: Calls run in worker threads. The autojump clock does not wait for them:
    #: it jumps to the next deadline while a thread works.
    threads: bool = False
    endless: bool = False  # gives items for ever, even from a finite input
    starves: bool = False  # may drop every item of an infinite stream: a take could wait for ever
    size: int = 3000  # items of the conformance runs

    def __str__(self) -> str:
        return self.label or self.name

    def examples(self, draws: Draws) -> st.SearchStrategy[Example]:
        if self.draw is None:
            return st.just(self.example)
        draw = self.draw
        return st.composite(lambda d: draw(d, draws))()


def examples(rows: Iterable[Operator], draws: Draws) -> st.SearchStrategy[Example]:
    """An example of one of ``rows``; never of an endless row, and with ``draws.infinite``,
    never of one that could starve an infinite stream."""
    rows = [r for r in rows if not r.endless and not (draws.infinite and r.starves)]
    return st.sampled_from(rows).flatmap(lambda row: row.examples(draws))


def fn_or(draw: st.DrawFn, draws: Draws, own: st.SearchStrategy[Fn]) -> Fn:
    return draw(draws.fn if draws.fn is not None else own)


linears = st.builds(linear, st.integers(-3, 3), st.integers(-5, 5))


def draw_filter(draw: st.DrawFn, draws: Draws) -> Example:
    m = draw(st.integers(2, 4))
    return filtered(m, draw(st.integers(0, m - 1)))


def draw_shard(draw: st.DrawFn, draws: Draws) -> Example:
    count = draw(st.integers(1, 4))
    index = draw(st.integers(0, count - 1))
    return shards(index, count, draw(st.sampled_from([None, "drop", "pad"])))


def draw_interleave(ordered: bool) -> Draw:
    def draw_it(draw: st.DrawFn, draws: Draws) -> Example:
        return interleaving(
            cycle=draw(st.integers(1, 4)),
            block=draw(st.integers(1, 3)),
            # empty files from every item of an infinite stream: nothing, for ever
            width=draw(st.integers(1 if draws.infinite else 0, 3)),
            ordered=ordered,
            as_pipeline=draw(st.booleans()),
            waits=draw(draws.delays),
        )

    return draw_it


def draw_par_map(ordered: bool, executor: str, concurrency: st.SearchStrategy[Any]) -> Draw:
    def draw_it(draw: st.DrawFn, draws: Draws) -> Example:
        fn = fn_or(draw, draws, st.just(NEGATE))
        return par_mapped(fn, draw(concurrency), ordered, executor)

    return draw_it


def draw_par_then(ordered: bool) -> Draw:
    def draw_it(draw: st.DrawFn, draws: Draws) -> Example:
        fn = fn_or(draw, draws, st.just(IDENTITY))
        return par_awaited(fn, draw(draws.delays), draw(st.integers(1, 8)), ordered)

    return draw_it


seeds = st.one_of(st.none(), st.integers(0, 2**32))

OPERATORS: list[Operator] = [
    # The source: every example starts from one.
    Operator("from_iterable", Example("from_iterable", lambda p: p, lambda it: it)),
    # Inline operators.
    Operator(
        "map",
        mapped(linear(3, -1)),
        draw=lambda draw, d: mapped(fn_or(draw, d, linears)),
        error=OwnError(lambda p: p.map(fails_at(4)), "#1 map(fn), at item 4 of its input"),
    ),
    Operator(
        "filter",
        filtered(3, 0),
        draw=draw_filter,
        starves=True,
        error=OwnError(lambda p: p.filter(fails_at(4)), "#1 filter(fn), at item 4 of its input"),
    ),
    Operator(
        "flat_map",
        flat_mapped(IDENTITY, 2),
        draw=lambda draw, d: flat_mapped(
            fn_or(draw, d, st.just(IDENTITY)), draw(st.integers(1 if d.infinite else 0, 3))
        ),
        error=OwnError(
            lambda p: p.flat_map(lambda x: [fails_at(4)(x)]), "#1 flat_map(<lambda>), at item 4"
        ),
    ),
    Operator(
        "enumerate", enumerated(5), draw=lambda draw, d: enumerated(draw(st.integers(-10, 10)))
    ),
    Operator("take", taken(2900), draw=lambda draw, d: taken(draw(st.integers(0, 50)))),
    Operator("skip", skipped(100), draw=lambda draw, d: skipped(draw(st.integers(0, 50)))),
    Operator(
        "batch",
        batched(7, False),
        draw=lambda draw, d: batched(draw(st.integers(1, 6)), draw(st.booleans())),
        error=OwnError(
            lambda p: p.batch(3, collate=fails_at_batch(3)), "#1 batch(3, collate=fn), at item 5"
        ),
    ),
    Operator(
        "unbatch",
        unbatched(3),
        draw=lambda draw, d: unbatched(draw(st.integers(1, 6))),
        error=OwnError(  # an item that is not a batch
            lambda p: p.map(lambda x: x if x != 4 else 1).unbatch(), "#2 unbatch(), at item 0"
        ),
    ),
    Operator(
        "shuffle",
        shuffled(100, 7),
        ordered=False,
        draw=lambda draw, d: shuffled(draw(st.integers(1, 50)), draw(seeds)),
    ),
    Operator("shard", shards(1, 3, None), draw=draw_shard),
    # Stages.
    Operator(
        "then",
        awaited(IDENTITY, WAITS),
        draw=lambda draw, d: awaited(fn_or(draw, d, st.just(IDENTITY)), draw(d.delays)),
        error=OwnError(
            lambda p: p.then(afails_at_3), "#1 then(afails_at_3), at item 3 of its input"
        ),
    ),
    Operator(
        "par_then",
        par_awaited(IDENTITY, WAITS, 3, True),
        draw=draw_par_then(True),
        error=OwnError(
            lambda p: p.par_then(afails_at_3, concurrency=4), "#1 par_then(afails_at_3), at item 3"
        ),
    ),
    Operator(
        "par_then",
        par_awaited(IDENTITY, WAITS, 3, False),
        label="par_then unordered",
        ordered=False,
        draw=draw_par_then(False),
        error=OwnError(
            lambda p: p.par_then(afails_at_3, concurrency=4, ordered=False),
            "#1 par_then(afails_at_3), at item 3",
        ),
    ),
    Operator(
        "par_map",
        par_mapped(NEGATE, 2, True, "thread"),
        label="par_map thread",
        threads=True,
        draw=draw_par_map(True, "thread", st.integers(1, 4)),
        error=OwnError(
            lambda p: p.par_map(fails_at(4), executor="thread"),
            "#1 par_map(fn), at item 4 of its input",
        ),
    ),
    Operator(
        "par_map",
        par_mapped(NEGATE, 2, False, "thread"),
        label="par_map thread unordered",
        threads=True,
        ordered=False,
        draw=draw_par_map(False, "thread", st.integers(1, 4)),
        error=OwnError(
            lambda p: p.par_map(fails_at(4), ordered=False, executor="thread"),
            "#1 par_map(fn), at item 4 of its input",
        ),
    ),
    Operator(
        "par_map",
        par_mapped(NEGATE, 2, True, "inline"),
        label="par_map inline",
        draw=draw_par_map(True, "inline", st.sampled_from([None, 1, 2])),
        error=OwnError(
            lambda p: p.par_map(fails_at(4), executor="inline"),
            "#1 par_map(fn), at item 4 of its input",
        ),
    ),
    Operator(
        "par_map",
        par_mapped(NEGATE, 2, True, "process"),
        label="par_map process",
        processes=True,
        size=600,
        draw=draw_par_map(True, "process", st.sampled_from([None, 1, 2])),
        error=OwnError(
            lambda p: p.par_map(fails_at(4), concurrency=2),
            "#1 par_map(fn), at item 4 of its input",
        ),
    ),
    Operator(
        "par_map",
        par_mapped(NEGATE, 2, False, "process"),
        label="par_map process unordered",
        ordered=False,
        processes=True,
        size=600,
        draw=draw_par_map(False, "process", st.sampled_from([None, 1, 2])),
        error=OwnError(
            lambda p: p.par_map(fails_at(4), concurrency=2, ordered=False),
            "#1 par_map(fn), at item 4 of its input",
        ),
    ),
    # An error raised by interleave's own function gets no stage note, unlike
    # every other operator's: no ``error`` until it does.
    Operator(
        "interleave",
        interleaving(2, 1, 2, True, True, WAITS),
        size=1200,
        draw=draw_interleave(True),
    ),
    Operator(
        "interleave",
        interleaving(3, 2, 2, False, True, WAITS),
        label="interleave unordered",
        ordered=False,
        size=1200,
        draw=draw_interleave(False),
    ),
    Operator("repeat", repeats(2), draw=lambda draw, d: repeats(draw(st.integers(0, 3)))),
    # repeat() of an empty pipeline never ends (where itertools.cycle would):
    # the property suites, whose chains can empty a stream, do not draw it.
    Operator("repeat", repeats(None), label="repeat for ever", endless=True),
    Operator(
        "to_device",
        Example("to_device('cuda:1') of FakeTensors, stand-in torch", to_device, lambda it: it),
        threads=True,
    ),
    Operator("prefetch", prefetched(3), draw=lambda draw, d: prefetched(draw(st.integers(1, 20)))),
    # Combinators: the pipeline under test runs nested in their stage.
    Operator("concat", concatenated()),
    Operator("zip", zipped()),
    Operator("merge", merged(), ordered=False),
    Operator(
        "mix",
        mixed((3, 1), 0),
        ordered=False,
        draw=lambda draw, d: mixed(
            (draw(st.floats(0.1, 10)), draw(st.floats(0.1, 10))), draw(seeds)
        ),
    ),
    # A stage made of the user's async generator over all the items.
    Operator(
        "through",
        windows(3, 1, IDENTITY, WAITS),
        draw=lambda draw, d: windows(
            draw(st.integers(1, 4)),
            draw(st.integers(1, 3)),
            fn_or(draw, d, st.just(IDENTITY)),
            draw(d.delays),
        ),
        error=OwnError(
            lambda p: p.through(through_fails_at_3),
            "#1 through(through_fails_at_3), at item 3 of its input",
        ),
    ),
    # A fragment of a pipeline: what it adds is the pipeline.
    Operator(
        "apply",
        applied(linear(2, 1)),
        draw=lambda draw, d: applied(fn_or(draw, d, linears)),
        error=OwnError(
            lambda p: p.apply(lambda q: q.map(fails_at(4))), "#1 map(fn), at item 4 of its input"
        ),
    ),
]
