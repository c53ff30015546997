"""A randomized fault suite: random pipelines, random failures, early exits and cancels.

Each example builds a pipeline from the ordered rows of the operator table
(``operators.py``), with failures injected into the functions its operators
call on each item (raising on some values), runs it under trio's
autojump clock, and may stop reading early or be cancelled from outside.
Whatever happens, it must not hang (a virtual-time ``fail_after``), the
error that comes out must be injected ones (alone or as a group), the items
received must be a prefix of what the same chain gives sequentially, and an
error the sequential chain meets must not be lost. The leak fixture checks
that nothing is left running. The ``slow`` profile runs more examples; a
second test does the same with worker processes, on the real clock.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from operators import OPERATORS, Draws, Example, Fn, Operator, examples

import snake

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


class Injected(Exception):
    """A failure the suite put there: which operator, on which value."""


def failing(name: str, modulus: int | None, fn: Callable[[int], int]) -> Callable[[int], int]:
    """``fn``, raising ``Injected`` on values that are 0 modulo ``modulus``."""

    def call(x: int) -> int:
        if modulus is not None and x % modulus == 0:
            raise Injected(f"{name} on {x}")
        return fn(x)

    return call


delays = st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.05, 1.0]), min_size=1, max_size=4)
moduli = st.one_of(st.none(), st.integers(3, 60))


@st.composite
def failing_fns(draw: st.DrawFn) -> Fn:
    k = draw(st.sampled_from([1, 2, 3]))
    m = draw(moduli)
    name = f"x*{k}+1, fails%{m}"
    return Fn(name, failing(name, m, lambda x: x * k + 1))


#: Every row that keeps order, with failures injected where an operator calls
#: a function on each item. Process maps run in a test of their own, on the
#: real clock. Rows that run calls in threads are left out: the autojump
#: clock jumps while a thread works, so the virtual ``fail_after`` below
#: would fire on a run that is not hung. The endless repeat() is never drawn.
ORDERED = [row for row in OPERATORS if row.ordered and not row.processes and not row.threads]
PROCESSES = [row for row in OPERATORS if row.name == "par_map" and row.processes]


def ops() -> st.SearchStrategy[Example]:
    return examples(ORDERED, Draws(delays=delays, fn=failing_fns()))


def reference(data: list[int], chain: list[Example]) -> tuple[list[int], Injected | None]:
    """What the chain gives sequentially, and the error that stops it, if any."""
    it: Iterable[Any] = data
    for op in chain:
        it = op.reference(it)
    out: list[int] = []
    try:
        for x in it:
            out.append(x)
    except Injected as exc:
        return out, exc
    return out, None


def leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


@attrs.frozen
class Outcome:
    got: list[int]
    error: BaseException | None
    stopped: bool  # the consumer left early
    cancelled: bool  # the outer deadline fired


async def consume(
    pipeline: snake.Pipeline[int], stop_after: int | None, cancel_after: float | None
) -> Outcome:
    got: list[int] = []
    error: BaseException | None = None
    stopped = False
    with trio.move_on_after(cancel_after if cancel_after is not None else float("inf")) as scope:
        try:
            async with pipeline.open() as items:
                async for x in items:
                    got.append(x)
                    if len(got) == stop_after:
                        stopped = True
                        break
        except Exception as exc:
            error = exc
    return Outcome(got, error, stopped, scope.cancelled_caught)


def check(
    outcome: Outcome, expected: list[int], expected_error: Injected | None, chain: list[Example]
) -> None:
    got, error = outcome.got, outcome.error
    # A prefix of the sequential output: nothing skipped, nothing reordered.
    assert got == expected[: len(got)], (got, expected)
    if error is not None:
        for leaf in leaves(error):
            assert isinstance(leaf, (Injected, snake.WorkerDiedError)), repr(leaf)
        return
    if outcome.stopped or outcome.cancelled:
        return
    # It ran to the end: all of it, and the sequential error was not lost.
    assert got == expected
    if not any(op.ends_early for op in chain):
        assert expected_error is None, f"lost: {expected_error!r}"


#: Virtual seconds: a hang jumps straight here.
NEVER = 10**6


# Many examples: the chains draw from every ordered row of the table.
@settings(max_examples=(settings().max_examples or 100) * 12)
@given(
    data=st.lists(st.integers(-500, 500), max_size=80),
    chain=st.lists(ops(), min_size=1, max_size=5),
    stop_after=st.one_of(st.none(), st.integers(0, 40)),
    cancel_after=st.one_of(st.none(), st.sampled_from([0.0, 0.01, 0.5, 3.0])),
)
def test_random_faults_never_hang_lose_errors_or_reorder(
    data: list[int], chain: list[Example], stop_after: int | None, cancel_after: float | None
) -> None:
    pipeline = snake.from_iterable(data)
    for op in chain:
        pipeline = op.add(pipeline)
    expected, expected_error = reference(data, chain)

    async def main() -> Outcome:
        with trio.fail_after(NEVER):
            return await consume(pipeline, stop_after, cancel_after)

    outcome = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    check(outcome, expected, expected_error, chain)
    if (
        stop_after is None
        and cancel_after is None
        and expected_error is None
        and not any(op.ends_early for op in chain)
    ):
        assert outcome.error is None


def process_step(modulus: int | None, dies: bool) -> Callable[[int], int]:
    def step(x: int) -> int:
        if modulus is not None and x % modulus == 0:
            if dies:
                os._exit(1)
            raise Injected(f"par_map on {x}")
        return x * 2 + 1

    return step


@settings(max_examples=max(10, (settings().max_examples or 100) // 4), deadline=None)
@given(
    data=st.lists(st.integers(-500, 500), max_size=200),
    modulus=moduli,
    dies=st.booleans(),
    stop_after=st.one_of(st.none(), st.integers(0, 100)),
    cancel_after=st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.3])),
    row=st.sampled_from(PROCESSES),
    pick=st.data(),
)
def test_random_faults_in_worker_processes(
    data: list[int],
    modulus: int | None,
    dies: bool,
    stop_after: int | None,
    cancel_after: float | None,
    row: Operator,
    pick: st.DataObject,
) -> None:
    step = process_step(modulus, dies)
    example = pick.draw(row.examples(Draws(fn=st.just(Fn("step", step)))))
    pipeline = example.add(snake.from_iterable(data))
    ordered = row.ordered

    async def main() -> Outcome:
        with trio.fail_after(60):  # real seconds
            return await consume(pipeline, stop_after, cancel_after)

    outcome = trio.run(main)

    def sequential(x: int) -> int:
        if modulus is not None and x % modulus == 0:
            raise Injected(f"par_map on {x}")
        return x * 2 + 1

    # Not the row's reference: a worker that dies here raises in the sequential loop.
    expected, expected_error = reference(
        data, [Example("par_map", example.add, lambda it: map(sequential, it))]
    )
    if ordered:
        check(outcome, expected, expected_error, [])
    else:
        # Any order, but only items the sequential chain gives.
        full = [sequential(x) for x in data if modulus is None or x % modulus]
        remaining = list(full)
        for x in outcome.got:
            remaining.remove(x)
        if outcome.error is None and not outcome.stopped and not outcome.cancelled:
            assert sorted(outcome.got) == sorted(full)
            assert expected_error is None
        if outcome.error is not None:
            assert all(
                isinstance(e, (Injected, snake.WorkerDiedError)) for e in leaves(outcome.error)
            )
        elif expected_error is not None:
            assert outcome.stopped or outcome.cancelled, "an error was lost"
