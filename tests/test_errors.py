"""Errors leave as themselves, with a note naming the stage and the item."""

from __future__ import annotations

import inspect
import time
import traceback
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from operators import OPERATORS, Boom, afails_at_3, fails_at

import snake

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator


def fails_in_worker(x: int) -> int:
    if x == 7:
        raise Boom("from a worker")
    return x


def notes(exc: BaseException) -> list[str]:
    return list(getattr(exc, "__notes__", []))


#: Each row's own function failing, and the note its error gets.
OWN_ERRORS = [
    pytest.param(row.error.add, row.error.note, id=str(row))
    for row in OPERATORS
    if row.error is not None
]
#: A map after a skip: its note counts the map's own input, not the source's.
AFTER_SKIP = pytest.param(
    lambda p: p.skip(2).map(fails_at(4)), "#2 map(fn), at item 2 of its input", id="skip(2).map"
)


def test_every_operator_that_calls_a_function_of_yours_has_an_error_case() -> None:
    def calls_yours(name: str) -> bool:
        operator = getattr(snake.Pipeline, name, None) or getattr(snake, name)
        return bool({"fn", "pred", "collate"} & set(inspect.signature(operator).parameters))

    missing = {str(row) for row in OPERATORS if calls_yours(row.name) and row.error is None}
    # An error raised by interleave's own function gets no stage note yet.
    assert missing == {"interleave", "interleave unordered"}


@pytest.mark.parametrize(("build", "note"), [*OWN_ERRORS, AFTER_SKIP])
async def test_a_single_error_arrives_bare_with_its_stage_note(build: Any, note: str) -> None:
    with pytest.raises((Boom, TypeError)) as info:
        await build(snake.from_iterable(range(10))).collect()
    assert not isinstance(info.value, BaseExceptionGroup)
    assert len(notes(info.value)) == 1
    assert note in notes(info.value)[0]


async def test_a_worker_process_error_keeps_its_type_note_and_remote_traceback() -> None:
    with pytest.raises(Boom) as info:
        await snake.from_iterable(range(20)).par_map(fails_in_worker, concurrency=2).collect()
    assert notes(info.value) == [
        "snake: in stage #1 par_map(fails_in_worker), at item 7 of its input"
    ]
    text = "".join(traceback.format_exception(info.value))
    assert "fails_in_worker" in text
    assert 'raise Boom("from a worker")' in text


async def test_a_sync_source_error_names_the_item_it_was_producing() -> None:
    def source() -> Iterator[int]:
        yield from range(5)
        raise Boom("source")

    with pytest.raises(Boom) as info:
        await snake.from_iterable(source()).collect()
    assert notes(info.value) == ["snake: in stage #0 from_iterable(source), producing item 5"]


async def test_an_async_source_error_names_the_item_it_was_producing() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(3):
            yield i
        raise Boom("async source")

    with pytest.raises(Boom) as info:
        await snake.from_iterable(source()).collect()
    assert notes(info.value) == ["snake: in stage #0 from_iterable(source), producing item 3"]


async def test_what_arrives_before_an_error_is_a_prefix_of_the_output() -> None:
    async def pause(x: int) -> int:
        await trio.sleep(0.001)
        return x

    for pipeline in [
        snake.from_iterable(range(10)).map(fails_at(6)),
        snake.from_iterable(range(10)).then(pause).map(fails_at(6)),
    ]:
        got = []
        with pytest.raises(Boom):
            async with pipeline.open() as items:
                async for x in items:
                    got.append(x)
        assert got == list(range(len(got)))
    # A stage that suspends hands each item over before it fails.
    assert got == [0, 1, 2, 3, 4, 5]


async def test_the_error_carries_no_cancelled_or_group_as_context(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(x: int) -> int:
        await trio.sleep(10)
        return x

    pipeline = snake.from_iterable(range(3)).then(slow).map(fails_at(0))
    with pytest.raises(Boom) as info:
        async with snake.from_iterable(range(3)).map(fails_at(1)).open() as items:
            async for _ in items:
                pass
    assert info.value.__context__ is None
    # An error raised while the consumer waits (and is cancelled) likewise.
    with pytest.raises(Boom) as info:
        async with pipeline.open() as items:
            async for _ in items:
                pass
    assert info.value.__context__ is None


async def test_the_consumers_own_error_leaves_bare() -> None:
    with pytest.raises(KeyError):
        async with snake.from_iterable(range(10)).open() as items:
            async for x in items:
                if x == 3:
                    raise KeyError(x)


async def test_a_keyboard_interrupt_in_a_stage_arrives_bare() -> None:
    def interrupt(x: int) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        await snake.from_iterable(range(3)).map(interrupt).collect()
    assert not notes(info.value)


async def test_two_stages_failing_at_once_give_a_flat_group_of_both() -> None:
    go = trio.Event()

    async def fail_on_go(x: int) -> int:
        await go.wait()
        raise Boom(f"then {x}")

    async def source() -> AsyncIterator[int]:
        yield 0
        await go.wait()
        raise Boom("source")

    async def release_both_later() -> None:
        await trio.testing.wait_all_tasks_blocked()
        go.set()  # both stages resume in the same batch: neither is cancelled first

    with pytest.raises(BaseExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_both_later)
            await snake.from_iterable(source()).then(fail_on_go).collect()
    group = info.value
    # The test's own nursery wraps what collect() raised: one flat group of two.
    assert len(group.exceptions) == 1
    leaves = group.exceptions[0]
    assert isinstance(leaves, BaseExceptionGroup)
    assert sorted(str(e) for e in leaves.exceptions) == ["source", "then 0"]
    assert sorted(notes(e)[0] for e in leaves.exceptions) == [
        "snake: in stage #0 from_iterable(source), producing item 1",
        "snake: in stage #1 then(fail_on_go), at item 0 of its input",
    ]


async def test_items_in_flight_failing_at_once_give_the_earliest_items_error() -> None:
    go = trio.Event()

    async def fail_on_go(x: int) -> int:
        await go.wait()
        raise Boom(f"item {x}")

    async def release_all_later() -> None:
        await trio.testing.wait_all_tasks_blocked()
        go.set()  # all eight calls fail in the same batch

    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_all_later)
        with pytest.raises(Boom, match="item 0") as info:
            await snake.from_iterable(range(8)).par_then(fail_on_go, concurrency=8).collect()
    assert notes(info.value) == [
        "snake: in stage #1 par_then(fail_on_go), at item 0 of its input",
        "snake: 7 later item(s) of this stage failed at the same time; their errors are not shown",
    ]


@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.sets(st.integers(0, n - 1), min_size=1),
            st.lists(st.sampled_from([0.0, 0.001, 0.01, 0.5, 3.0]), min_size=n, max_size=n),
            st.sets(st.integers(0, n - 1)),
        )
    ),
    st.integers(1, 8),
    st.none() | st.integers(0, 3),
)
def test_an_ordered_par_then_raises_the_error_a_sequential_loop_would(
    case: tuple[set[int], list[float], set[int]], concurrency: int, budget: int | None
) -> None:
    # With a failure budget (errors="skip", max_failures=budget), the item
    # that goes over it is the one a sequential loop would stop at.
    failing, delays, grouped = case
    made: dict[int, Exception] = {}  # what each failing item raised: a group of its own, or not

    async def slow_or_failing(x: int) -> int:
        await trio.sleep(delays[x])
        if x in failing:
            made[x] = MyGroup(f"item {x}", [Boom(x)]) if x in grouped else Boom(f"item {x}")
            raise made[x]
        return x

    policy: dict[str, Any] = {} if budget is None else {"errors": "skip", "max_failures": budget}
    stop = sorted(failing)[budget or 0] if budget is None or budget < len(failing) else None

    async def main() -> tuple[list[int], Exception | None]:
        got: list[int] = []
        pipeline = snake.from_iterable(range(len(delays))).par_then(
            slow_or_failing, concurrency=concurrency, **policy
        )
        try:
            async with pipeline.open() as items:
                async for x in items:
                    got.append(x)
        except (Boom, MyGroup) as exc:
            return got, exc
        return got, None

    got, error = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # Whatever finished first, that item's error arrives, as raised, after
    # none but earlier items (those that did not fail, if skipped).
    before = [x for x in range(len(delays) if stop is None else stop) if x not in failing]
    if stop is None:
        assert error is None
        assert got == before
        return
    assert error is made[stop]
    assert notes(error)[0] == (
        f"snake: in stage #1 par_then(slow_or_failing), at item {stop} of its input"
    )
    if budget is not None:
        assert notes(error)[1] == (
            f"snake: stage #1 par_then(slow_or_failing) skipped {budget + 1} failing items of "
            f"the {stop + 1} it has seen, more than max_failures={budget} allows"
        )
    assert got == before[: len(got)]


@pytest.mark.parametrize("ordered", [True, False])
async def test_an_ordered_stage_waits_for_the_earliest_error_an_unordered_one_does_not(
    autojump_clock: trio.testing.MockClock, ordered: bool
) -> None:
    async def item_0_fails_late(x: int) -> int:
        await trio.sleep(10 if x == 0 else 0)
        raise Boom(f"item {x}")

    began = trio.current_time()
    with pytest.raises(Boom) as info:
        await snake.from_iterable(range(2)).par_then(item_0_fails_late, ordered=ordered).collect()
    if ordered:  # it waits for item 0, whose error comes first in the output
        assert (str(info.value), trio.current_time() - began) == ("item 0", 10)
    else:  # item 1's error, at once: item 0's call is cancelled
        assert (str(info.value), trio.current_time() - began) == ("item 1", 0)


async def test_an_ordered_stage_ended_by_a_take_before_its_error_ends_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow_then_failing(x: int) -> int:
        if x >= 3:
            raise Boom(f"item {x}")  # at once, while items 0 to 2 still wait
        await trio.sleep(1)
        return x

    # A sequential loop would stop after three items and never meet item 3.
    got = await snake.from_iterable(range(6)).par_then(slow_then_failing).take(3).collect()
    assert got == [0, 1, 2]


def first_fails_last(x: int) -> int:
    if x == 0:
        time.sleep(0.3)
    raise Boom(f"item {x}")


@pytest.mark.parametrize("executor", ["thread", "process"])
async def test_an_ordered_par_map_raises_the_earliest_items_error_even_when_it_comes_last(
    executor: str,
) -> None:
    with pytest.raises(Boom) as info:
        await snake.from_iterable(range(6)).par_map(first_fails_last, executor=executor).collect()
    assert str(info.value) == "item 0"
    assert notes(info.value)[0] == (
        "snake: in stage #1 par_map(first_fails_last), at item 0 of its input"
    )


async def test_a_users_own_exception_group_arrives_intact() -> None:
    async def fans_out(x: int) -> int:
        async with trio.open_nursery() as nursery:  # raises a group of its own
            nursery.start_soon(afails_at_3, 3)
        return x

    for pipeline in [
        snake.from_iterable(range(2)).then(fans_out),
        snake.from_iterable(range(2)).par_then(fans_out),
    ]:
        with pytest.raises(ExceptionGroup) as info:
            await pipeline.collect()
        assert [type(e) for e in info.value.exceptions] == [Boom]
    # Likewise one raised by the consumer itself.
    with pytest.raises(ExceptionGroup) as info:
        async with snake.from_iterable(range(3)).open():
            raise ExceptionGroup("mine", [KeyError(1)])
    assert str(info.value) == "mine (1 sub-exception)"


class MyGroup(ExceptionGroup):
    """A user's own exception group type."""


#: The groups the functions below raised, to check that the same object arrives.
raised: list[BaseException] = []


def group_at(bad: int) -> Callable[[Any], Any]:
    def fn(x: Any) -> Any:
        if x == bad:
            group = MyGroup("mine", [ValueError(x)])
            raised.append(group)
            raise group
        return x

    return fn


def agroup_at(bad: int) -> Callable[[Any], Awaitable[Any]]:
    check = group_at(bad)

    async def fn(x: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return check(x)

    return fn


def grouping_items() -> Iterator[int]:
    """Items 0 and 1, then a group."""
    yield from range(2)
    group_at(2)(2)


async def grouping_aitems() -> AsyncIterator[int]:
    for x in grouping_items():
        await trio.lowlevel.checkpoint()
        yield x


def src(n: int = 10) -> snake.Pipeline[int]:
    return snake.from_iterable(range(n))


#: Every way a user's exception group can come out of a pipeline's stages.
GROUP_PATHS = {
    "map": lambda: src().map(group_at(4)),
    "batch collate": lambda: src().batch(3, collate=group_at([3, 4, 5])),
    "then": lambda: src().then(agroup_at(4)),
    "par_then": lambda: src().par_then(agroup_at(4), concurrency=3),
    "par_then unordered": lambda: src().par_then(agroup_at(4), ordered=False),
    "par_map thread": lambda: src().par_map(group_at(4), executor="thread"),
    "map in a thread par_map's workers": lambda: (
        src().par_map(abs, executor="thread").map(group_at(4))
    ),
    "then, skip over the budget": lambda: src().then(agroup_at(4), errors="skip", max_failures=0),
    "par_map thread, skip over the budget": lambda: src().par_map(
        group_at(4), executor="thread", errors="skip", max_failures=0
    ),
    "sync source": lambda: snake.from_iterable(grouping_items()),
    "async source": lambda: snake.from_iterable(grouping_aitems()),
    "concat": lambda: snake.concat(src(2), src().map(group_at(4))),
    "zip": lambda: snake.zip(src(), src().map(group_at(4))),
    "interleave's function": lambda: src().interleave(lambda x: [group_at(4)(x)], cycle_length=2),
}


@pytest.mark.parametrize("path", GROUP_PATHS)
async def test_a_users_exception_group_arrives_as_the_object_raised(path: str) -> None:
    raised.clear()
    with pytest.raises(MyGroup) as info:
        await GROUP_PATHS[path]().collect()
    assert info.value is raised[-1]
    with pytest.raises(MyGroup) as info:  # and through open()
        async with GROUP_PATHS[path]().open() as items:
            async for _ in items:
                pass
    assert info.value is raised[-1]


def test_a_users_exception_group_arrives_as_the_object_raised_in_sync_iteration() -> None:
    raised.clear()
    with pytest.raises(MyGroup) as info:
        list(src().map(group_at(4)))
    assert info.value is raised[-1]
    assert notes(info.value) == ["snake: in stage #1 map(fn), at item 4 of its input"]
    group = MyGroup("body", [KeyError(1)])
    with pytest.raises(MyGroup) as info:
        for _ in src():
            raise group
    assert info.value is group


async def test_a_users_exception_group_raised_in_the_body_or_a_report_arrives_as_raised() -> None:
    group = MyGroup("body", [KeyError(1)])
    with pytest.raises(MyGroup) as info:
        async with src().open() as items:
            async for _ in items:
                raise group
    assert info.value is group

    def report(stats: snake.Statistics) -> None:
        raise group

    with pytest.raises(MyGroup) as info:
        await snake.from_iterable(range(3)).collect(report=report)
    assert info.value is group


async def test_a_users_exception_group_from_a_worker_process_keeps_its_type() -> None:
    # A process boundary copies every object: the type, message, leaves and
    # note arrive, not the object itself.
    with pytest.raises(MyGroup) as info:
        await src().par_map(group_at(4)).collect()
    assert str(info.value) == "mine (1 sub-exception)"
    assert [repr(e) for e in info.value.exceptions] == ["ValueError(4)"]
    assert notes(info.value) == ["snake: in stage #1 par_map(fn), at item 4 of its input"]


def dies(x: int) -> int:
    import os

    os._exit(3)


async def test_a_dead_worker_process_is_reported_with_its_stage_and_items() -> None:
    import trio_parallel

    with pytest.raises(trio_parallel.BrokenWorkerError) as info:
        await snake.from_iterable([1]).par_map(dies).collect()
    assert isinstance(info.value, snake.WorkerDiedError)
    assert str(info.value).startswith("in stage #1 par_map(dies), worker process ")
    assert "exited with code 3 while running item 0 of its input" in str(info.value)
    assert info.value.exitcode == 3
    assert info.value.signal is None


@pytest.mark.parametrize("fused_take", [False, True])
async def test_an_error_from_then_keeps_its_cause_and_its_frames(fused_take: bool) -> None:
    async def parse(x: int) -> int:
        if x == 37:
            try:
                {}[x]
            except KeyError as exc:
                raise ValueError("bad record") from exc
        return x

    pipeline = snake.from_iterable(range(100)).then(parse)
    with pytest.raises(ValueError, match="bad record") as info:
        await (pipeline.take(90) if fused_take else pipeline).collect()
    assert isinstance(info.value.__cause__, KeyError)
    assert notes(info.value) == ["snake: in stage #1 then(parse), at item 37 of its input"]
    assert "parse" in "".join(traceback.format_exception(info.value))
