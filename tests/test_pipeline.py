"""The builder, the sources, ``then`` and ``prefetch``, and what every operator shares."""

from __future__ import annotations

import inspect
import itertools
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from operators import OPERATORS, Boom, Endless, Naturals, Operator

import snake
import snake.testing
from snake.testing._processes import worker_processes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

T = TypeVar("T")


def test_the_public_api_is_exactly_this() -> None:
    assert sorted(snake.__all__) == [
        "ItemTimeoutError", "Pipeline", "PipelineIterator", "PipelineReceiver", "RayOptions", "RemoteError", "Resumable", "StageStatistics", "StateMismatchError", "StatefulLoader", "Statistics", "TuningStatistics", "WorkerDiedError", "WorkerError", "WorkerInfo", "WorkerOptions", "WorkerStatistics",
        "concat", "current_epoch",
        "from_iterable", "merge", "mix", "persistent_workers", "worker_info", "zip",
    ]  # fmt: skip
    for name in snake.__all__:
        assert getattr(snake, name).__module__.split(".")[0] == "snake"
    assert isinstance(snake.__version__, str)


def test_the_public_api_of_snake_testing_is_exactly_this() -> None:
    assert sorted(snake.testing.__all__) == [
        "Delays", "InjectedError", "LeakError", "Op", "assert_ordered_equal", "assert_permutation",
        "assert_prefix", "assert_same_error", "assert_same_items", "build", "delays", "failing",
        "failures", "in_process", "no_leaks", "operators", "reference", "run", "sequential",
    ]  # fmt: skip
    for name in snake.testing.__all__:
        assert getattr(snake.testing, name).__module__.startswith("snake.testing")
    assert set(snake.testing.__all__) <= set(dir(snake.testing))


async def test_a_pipeline_is_immutable_and_can_be_extended_in_several_ways() -> None:
    base = snake.from_iterable(range(5))
    doubled = base.map(lambda x: x * 2)
    odd = base.filter(lambda x: x % 2)
    assert await base.collect() == [0, 1, 2, 3, 4]
    assert await doubled.collect() == [0, 2, 4, 6, 8]
    assert await odd.collect() == [1, 3]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        base._specs = ()  # type: ignore[misc]


async def test_a_pipeline_can_be_run_many_times(autojump_clock: trio.testing.MockClock) -> None:
    pipeline = snake.from_iterable(range(100)).par_then(trio.sleep, concurrency=4).take(3)
    assert [await pipeline.collect() for _ in range(3)] == [[None] * 3] * 3


def test_repr_spells_the_chain() -> None:
    async def fetch(x: int) -> int:
        return x

    pipeline = snake.from_iterable([1]).par_then(fetch, concurrency=3).batch(2).take(1)
    assert repr(pipeline) == ("snake.from_iterable(list).par_then(fetch).batch(2).take(1)")


async def test_sources_sync_and_async() -> None:
    async def agen() -> AsyncIterator[int]:
        for i in range(4):
            await trio.lowlevel.checkpoint()
            yield i

    def gen() -> Any:
        yield from range(4)

    class OldStyle:  # iterable through __getitem__ only
        def __getitem__(self, i: int) -> int:
            if i >= 4:
                raise IndexError
            return i

    send, recv = trio.open_memory_channel[int](10)
    async with send:
        for i in range(4):
            await send.send(i)
    for source in [range(4), [0, 1, 2, 3], gen(), agen(), OldStyle(), recv]:
        assert await snake.from_iterable(source).collect() == [0, 1, 2, 3], source


class Indexed:
    """A map-style dataset, as torch's: ``__len__`` and ``__getitem__``, no
    ``__iter__``, and no ``IndexError`` past the end. Records what is read."""

    def __init__(self, items: list[int], fail_at: int = -1) -> None:
        self.items = items
        self.fail_at = fail_at
        self.reads: list[int] = []

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> int:
        self.reads.append(i)
        if i == self.fail_at:
            raise KeyError(i)
        return self.items[i] if i < len(self.items) else -1  # past the end: no IndexError


async def test_a_map_style_dataset_is_read_by_index_up_to_its_length_each_run() -> None:
    ds = Indexed([10, 11, 12])
    assert await snake.from_iterable(ds).take(6).collect() == [10, 11, 12]
    assert ds.reads == [0, 1, 2]
    assert await snake.from_iterable(ds).repeat(2).collect() == [10, 11, 12] * 2
    ds.items.append(13)  # the length is taken afresh each run
    assert await snake.from_iterable(ds).collect() == [10, 11, 12, 13]
    assert repr(snake.from_iterable(ds)) == "snake.from_iterable(Indexed)"


async def test_a_map_style_dataset_that_fails_names_the_index() -> None:
    with pytest.raises(KeyError) as info:
        await snake.from_iterable(Indexed(list(range(20)), fail_at=13)).collect()
    assert info.value.__notes__ == ["snake: in stage #0 from_iterable(Indexed), producing item 13"]


async def test_an_object_with_iter_as_well_is_iterated() -> None:
    class Both(Indexed):  # as a list: __iter__ wins over indexing
        def __iter__(self) -> Iterator[int]:
            return reversed(self.items)

    ds = Both([1, 2, 3])
    assert await snake.from_iterable(ds).collect() == [3, 2, 1]
    assert ds.reads == []


@given(st.lists(st.integers(-5, 5), max_size=40), st.integers(0, 50))
def test_a_map_style_dataset_gives_its_items_by_index(items: list[int], n: int) -> None:
    ds = Indexed(items)
    expected = [ds[i] for i in range(len(ds))]
    assert trio.run(snake.from_iterable(ds).collect) == expected
    assert trio.run(snake.from_iterable(ds).take(n).collect) == expected[:n]


def test_a_torch_map_style_dataset_is_read_by_index() -> None:
    pytest.importorskip("torch")
    from torch.utils.data import Dataset

    class Squares(Dataset[int]):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> int:
            return i * i  # no IndexError: torch's samplers never ask past len()

    assert list(snake.from_iterable(Squares()).take(10)) == [0, 1, 4, 9]


async def test_an_empty_source_gives_nothing_through_every_operator() -> None:
    p = (
        snake.from_iterable([])
        .map(str)
        .then(_echo)
        .par_then(_echo)
        .par_map(abs, executor="thread")
        .batch(3)
        .unbatch()
        .prefetch(2)
    )
    assert await p.collect() == []


async def _echo(x: Any) -> Any:
    await trio.lowlevel.checkpoint()
    return x


async def test_then_runs_one_call_at_a_time_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    running = 0
    most = 0

    async def slow(x: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await trio.sleep(1 + (x % 3))
        running -= 1
        return x

    start = trio.current_time()
    assert await snake.from_iterable(range(9)).then(slow).collect() == list(range(9))
    assert most == 1
    assert trio.current_time() - start == pytest.approx(9 + 9)


async def test_prefetch_lets_the_upstream_run_ahead_by_n_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    produced = 0

    async def source() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(100):
            await trio.sleep(0.001)
            produced += 1
            yield i

    for n in (5, 60):
        produced = 0
        async with snake.from_iterable(source()).prefetch(n).open() as items:
            assert await items.receive() == 0
            await trio.sleep(10)  # a slow consumer: the buffer fills, then waits
            # n wait in the buffer; the rest in pending chunks and channels,
            # each holding what a stage makes in one latency budget or less.
            assert n + 1 <= produced < n + 80
            assert [x async for x in items] == list(range(1, 100))


# --- what every operator shares ---------------------------------------------
#
# Every row of the operator table, run on its fixed example. Worker processes
# run on the real clock; everything else on trio's autojump clock, where the
# examples' waits cost no time.

#: The methods of a pipeline that run it rather than build on it.
RUNNING = {"open", "collect", "iterate", "send_to", "describe"}


def builds_a_pipeline(fn: Callable[..., Any]) -> bool:
    returns = str(inspect.signature(fn).return_annotation)
    return returns == "Pipeline" or returns.startswith("Pipeline[")


def test_every_public_operator_has_a_row_in_the_operator_table() -> None:
    methods = {
        name
        for name, fn in inspect.getmembers(snake.Pipeline, inspect.isfunction)
        if not name.startswith("_")
    }
    builders = {name for name in methods if builds_a_pipeline(getattr(snake.Pipeline, name))}
    assert methods - builders == RUNNING
    functions = {
        name
        for name in snake.__all__
        if inspect.isfunction(getattr(snake, name)) and builds_a_pipeline(getattr(snake, name))
    }
    assert {"from_iterable", "concat", "zip", "merge", "mix"} <= functions
    assert {row.name for row in OPERATORS} == builders | functions
    # Both executors of par_map, in and out of order.
    assert {(row.processes, row.ordered) for row in OPERATORS if row.name == "par_map"} == {
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    }


def run(row: Operator, main: Callable[[], Awaitable[T]]) -> T:
    clock = None if row.processes else trio.testing.MockClock(autojump_threshold=0)
    return trio.run(main, clock=clock)


def fail_at(n: int) -> Callable[[int], int]:
    def check(x: int) -> int:
        if x == n:
            raise Boom(x)
        return x

    return check


@pytest.mark.parametrize("row", OPERATORS, ids=str)
def test_every_operator_gives_what_its_reference_gives(row: Operator) -> None:
    # repeat() of an empty pipeline waits for an item for ever: no empty run.
    for data in [list(range(row.size))] if row.endless else [[], list(range(row.size))]:
        pipeline = row.example.add(snake.from_iterable(data))
        expected = row.example.reference(data)
        if row.endless:
            pipeline = pipeline.take(3 * row.size + 7)
            expected = itertools.islice(expected, 3 * row.size + 7)
        got = run(row, pipeline.collect)
        if row.ordered:
            assert got == list(expected)
        else:
            assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("row", OPERATORS, ids=str)
def test_every_operator_passes_an_upstream_error_on_as_itself(row: Operator) -> None:
    # A combinator runs the upstream map nested in its own stage; the note
    # still counts that map's place in the chain it was written in.
    bad = row.size * 5 // 6
    pipeline = row.example.add(snake.from_iterable(range(row.size)).map(fail_at(bad)))
    with pytest.raises(Boom) as info:
        run(row, pipeline.collect)
    assert info.value.args == (bad,)
    assert info.value.__notes__ == [f"snake: in stage #1 map(check), at item {bad} of its input"]


@pytest.mark.parametrize("row", OPERATORS, ids=str)
def test_every_operator_stops_for_a_take_after_it_on_an_infinite_source(row: Operator) -> None:
    got = run(row, row.example.add(snake.from_iterable(Naturals())).take(1234).collect)
    assert len(got) == 1234
    if row.ordered:
        assert got == list(itertools.islice(row.example.reference(itertools.count()), 1234))


@pytest.mark.parametrize("row", OPERATORS, ids=str)
def test_every_operator_stops_at_an_outer_cancel(row: Operator) -> None:
    async def main() -> trio.CancelScope:
        # On the autojump clock, the source gives about 1000 items by then.
        with trio.move_on_after(0.5 if row.processes else 0.01) as scope:
            async with row.example.add(snake.from_iterable(Endless())).open() as items:
                async for _ in items:
                    pass
        return scope

    assert run(row, main).cancelled_caught


@pytest.mark.parametrize("row", OPERATORS, ids=str)
def test_every_operator_runs_worker_processes_only_if_its_row_says_so(row: Operator) -> None:
    # The leak check around every test then sees those processes ended.
    async def main() -> list[Any]:
        async with row.example.add(snake.from_iterable(Naturals())).open() as items:
            await items.receive()
            return worker_processes()

    assert bool(run(row, main)) == row.processes


@pytest.mark.parametrize("n", [0, 1, 5])
async def test_then_makes_no_call_past_a_take_after_it(n: int) -> None:
    calls: list[int] = []

    async def record(x: int) -> int:
        calls.append(x)
        return x

    for pipeline in [
        snake.from_iterable(range(100)).then(record).take(n),
        snake.from_iterable(range(100)).then(record).filter(lambda x: x % 2).take(n),
    ]:
        calls.clear()
        got = await pipeline.collect()
        assert len(got) == n
        assert calls == list(range((got[-1] + 1) if got else 0))
