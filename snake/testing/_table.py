"""One table of snake's operators, each with a small example and random ones to draw."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs
from hypothesis import strategies as st

from ._examples import (
    IDENTITY,
    NEGATE,
    WAITS,
    Fn,
    afails_at_3,
    applied,
    awaited,
    batched,
    concatenated,
    enumerated,
    fails_at,
    fails_at_batch,
    filtered,
    flat_mapped,
    interleaving,
    linear,
    mapped,
    merged,
    mixed,
    par_awaited,
    par_mapped,
    prefetched,
    repeats,
    shards,
    shuffled,
    skipped,
    taken,
    through_fails_at_3,
    unbatched,
    windows,
    zipped,
)
from ._ops import Op

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._pipeline import Pipeline


@attrs.frozen
class Draws:
    """What a suite lets the drawn examples vary."""

    #: The waits of async functions (``then``, ``par_then``, interleaved files).
    delays: st.SearchStrategy[list[float]] = attrs.field(factory=lambda: st.just([0.0]))
    #: The function an operator calls on each item; ``None``: the row's own.
    fn: st.SearchStrategy[Fn] | None = None
    #: The examples must keep an infinite stream infinite (and not empty).
    infinite: bool = False


@attrs.frozen
class OwnError:
    """The operator's own function failing on ``from_iterable(range(10))``, and the note's end."""

    add: Callable[[Pipeline[Any]], Pipeline[Any]]
    note: str


@attrs.frozen
class Operator:
    """A row of the table: a public operator, a fixed small example, and its flags."""

    name: str  # as snake spells it: "par_map", "concat"
    example: Op
    label: str = ""  # the row's test id, when one operator has several rows
    #: Random examples of the operator; None: the fixed one.
    draw: Callable[[st.DrawFn, Draws], Op] | None = None
    error: OwnError | None = None
    processes: bool = False  # starts worker processes: the real clock, fewer items
    #: Calls run in worker threads. The autojump clock does not wait for them:
    #: it jumps to the next deadline while a thread works.
    threads: bool = False
    endless: bool = False  # gives items for ever, even from a finite input
    starves: bool = False  # may drop every item of an infinite stream: a take could wait for ever
    size: int = 3000  # items of the conformance runs

    def __str__(self) -> str:
        return self.label or self.name

    @property
    def ordered(self) -> bool:
        """Gives its reference in order; else the same items, in any order."""
        return self.example.ordered

    def examples(self, draws: Draws) -> st.SearchStrategy[Op]:
        if self.draw is None:
            return st.just(self.example)
        draw = self.draw
        return st.composite(lambda d: draw(d, draws))()


def examples(rows: Iterable[Operator], draws: Draws) -> st.SearchStrategy[Op]:
    """An example of one of ``rows``; never of an endless row, and with ``draws.infinite``,
    never of one that could starve an infinite stream."""
    rows = [r for r in rows if not r.endless and not (draws.infinite and r.starves)]
    return st.sampled_from(rows).flatmap(lambda row: row.examples(draws))


# --- drawing examples ------------------------------------------------------------


def fn_or(draw: st.DrawFn, draws: Draws, own: st.SearchStrategy[Fn]) -> Fn:
    return draw(draws.fn if draws.fn is not None else own)


linears = st.builds(linear, st.integers(-3, 3), st.integers(-5, 5))
seeds = st.one_of(st.none(), st.integers(0, 2**32))


def draw_filter(draw: st.DrawFn, draws: Draws) -> Op:
    m = draw(st.integers(2, 4))
    return filtered(m, draw(st.integers(0, m - 1)))


def draw_flat_map(draw: st.DrawFn, draws: Draws) -> Op:
    fn = fn_or(draw, draws, st.just(IDENTITY))
    # an empty list from every item of an infinite stream: nothing, for ever
    return flat_mapped(fn, draw(st.integers(1 if draws.infinite else 0, 3)))


def draw_shard(draw: st.DrawFn, draws: Draws) -> Op:
    count = draw(st.integers(1, 4))
    index = draw(st.integers(0, count - 1))
    return shards(index, count, draw(st.sampled_from([None, "drop", "pad"])))


def draw_interleave(ordered: bool) -> Callable[[st.DrawFn, Draws], Op]:
    def draw_it(draw: st.DrawFn, draws: Draws) -> Op:
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


def draw_par_map(
    ordered: bool,
    executor: Literal["process", "thread", "inline"],
    concurrency: st.SearchStrategy[int | None],
) -> Callable[[st.DrawFn, Draws], Op]:
    def draw_it(draw: st.DrawFn, draws: Draws) -> Op:
        fn = fn_or(draw, draws, st.just(NEGATE))
        return par_mapped(fn, draw(concurrency), ordered, executor)

    return draw_it


def draw_par_then(ordered: bool) -> Callable[[st.DrawFn, Draws], Op]:
    def draw_it(draw: st.DrawFn, draws: Draws) -> Op:
        fn = fn_or(draw, draws, st.just(IDENTITY))
        return par_awaited(fn, draw(draws.delays), draw(st.integers(1, 8)), ordered)

    return draw_it


#: Each row names an operator and gives a small ``Op`` of it: how to add it to
#: a pipeline of ints, and a lazy reference of what it should give, computed
#: by Python and itertools on any iterable of ints (``itertools.count()``
#: too). A row may also say how to draw random examples of the operator
#: (``draw``), how its own function fails and which note that error gets
#: (``error``), and what a suite must know about it: whether it starts worker
#: processes, gives items for ever, or could drop every item of an infinite
#: stream. snake's own suite adds the rows that need its stand-ins.
OPERATORS: list[Operator] = [
    # The source: every example starts from one.
    Operator("from_iterable", Op("from_iterable", lambda p: p, lambda it: it)),
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
        draw=draw_flat_map,
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
            lambda p: p.map(lambda x: x if x != 4 else 1).unbatch(),  # type: ignore[misc]
            "#2 unbatch(), at item 0",
        ),
    ),
    Operator(
        "shuffle",
        shuffled(100, 7),
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
        size=1200,
        draw=draw_interleave(False),
    ),
    Operator("repeat", repeats(2), draw=lambda draw, d: repeats(draw(st.integers(0, 3)))),
    # repeat() of an empty pipeline never ends (where itertools.cycle would):
    # the property suites, whose chains can empty a stream, do not draw it.
    Operator("repeat", repeats(None), label="repeat for ever", endless=True),
    Operator(
        "prefetch",
        prefetched(3),
        draw=lambda draw, d: prefetched(draw(st.integers(1, 20) | st.just("auto"))),
    ),
    # Combinators: the pipeline under test runs nested in their stage.
    Operator("concat", concatenated()),
    Operator("zip", zipped()),
    Operator("merge", merged()),
    Operator(
        "mix",
        mixed((3, 1), 0),
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
