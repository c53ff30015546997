"""``through``, ``apply`` and ``send_to``: a user's generator over the stream,
fragments of pipelines, and a pipeline feeding a channel of a trio program."""

from __future__ import annotations

import collections
import functools
import itertools
import math
import os
import traceback
import zlib
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from operators import Boom

import snake

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

#: Most items in one chunk (see the operators page): what a stage may hold in
#: its input chunk, its pending output, or a channel.
CHUNK = 1024


def pack(size: int, pad: int = 0) -> Callable[[AsyncIterator[list[int]]], AsyncIterator[list[int]]]:
    """Token lists packed into rows of ``size`` tokens, the last row padded."""

    async def packed(documents: AsyncIterator[list[int]]) -> AsyncIterator[list[int]]:
        row: list[int] = []
        async for tokens in documents:
            row += tokens
            while len(row) >= size:
                yield row[:size]
                row = row[size:]
        if row:
            yield row + [pad] * (size - len(row))

    return packed


def packed_reference(documents: list[list[int]], size: int, pad: int = 0) -> list[list[int]]:
    flat = [token for tokens in documents for token in tokens]
    rows = [flat[i : i + size] for i in range(0, len(flat), size)]
    if rows and len(rows[-1]) < size:
        rows[-1] += [pad] * (size - len(rows[-1]))
    return rows


def sliding(k: int) -> Callable[[AsyncIterator[int]], AsyncIterator[tuple[int, ...]]]:
    """Windows of ``k`` consecutive items, one per item from the ``k``-th on."""

    async def windows(items: AsyncIterator[int]) -> AsyncIterator[tuple[int, ...]]:
        window: collections.deque[int] = collections.deque(maxlen=k)
        async for x in items:
            window.append(x)
            if len(window) == k:
                yield tuple(window)

    return windows


async def delayed(x: Any) -> Any:
    # Waits of 0 to 3 ms: the stage before it hands items over in chunks of
    # many sizes, so the generator's reads cross chunk boundaries anywhere.
    await trio.sleep(0.001 * (zlib.crc32(repr(x).encode()) % 4))
    return x


async def one_by_one(x: Any) -> Any:
    # A wait on every item: each reaches the next stage on its own.
    await trio.sleep(0.001)
    return x


def on_autojump(pipeline: snake.Pipeline[Any]) -> list[Any]:
    return trio.run(pipeline.collect, clock=trio.testing.MockClock(autojump_threshold=0))


# --- what it gives ---------------------------------------------------------


@given(
    st.lists(st.lists(st.integers(0, 99), max_size=20), max_size=60),
    st.integers(1, 16),
    st.booleans(),
)
def test_through_packs_token_lists_into_rows_as_a_loop_does(
    documents: list[list[int]], size: int, waits: bool
) -> None:
    pipeline = snake.from_iterable(documents)
    if waits:
        pipeline = pipeline.then(delayed)
    assert on_autojump(pipeline.through(pack(size, pad=-1))) == packed_reference(
        documents, size, pad=-1
    )


@given(st.lists(st.integers(), max_size=300), st.integers(1, 6), st.booleans())
def test_through_gives_sliding_windows_as_slicing_does(
    items: list[int], k: int, waits: bool
) -> None:
    pipeline = snake.from_iterable(items)
    if waits:
        pipeline = pipeline.then(delayed)
    expected = [tuple(items[i : i + k]) for i in range(len(items) - k + 1)]
    assert on_autojump(pipeline.through(sliding(k))) == expected


async def test_through_may_yield_many_items_per_input_item_and_read_twice() -> None:
    async def echo_then_pairs(items: AsyncIterator[int]) -> AsyncIterator[int]:
        async for x in items:
            yield x
            if x == 2:
                break  # then read the rest of the same input again
        async for x in items:
            yield x
            yield x

    got = await snake.from_iterable(range(5)).through(echo_then_pairs).collect()
    assert got == [0, 1, 2, 3, 3, 4, 4]


async def test_through_accepts_partials_callables_and_lambdas_of_async_generators() -> None:
    async def scaled(items: AsyncIterator[int], k: int) -> AsyncIterator[int]:
        async for x in items:
            yield k * x

    class Scaler:
        async def __call__(self, items: AsyncIterator[int]) -> AsyncIterator[int]:
            async for x in items:
                yield 3 * x

    source = snake.from_iterable(range(3))
    assert await source.through(functools.partial(scaled, k=2)).collect() == [0, 2, 4]
    assert await source.through(Scaler()).collect() == [0, 3, 6]
    assert await source.through(lambda items: scaled(items, 4)).collect() == [0, 4, 8]


async def test_through_with_a_take_after_it_and_with_nothing_to_take() -> None:
    pulled: list[int] = []

    async def record(items: AsyncIterator[int]) -> AsyncIterator[int]:
        async for x in items:
            pulled.append(x)
            yield x

    assert await snake.from_iterable(range(10)).through(record).take(0).collect() == []
    assert pulled == []  # take(0): the generator is not even started
    assert await snake.from_iterable([]).through(record).collect() == []


# --- errors ----------------------------------------------------------------


def fails_at(bad: int | None) -> Callable[[AsyncIterator[int]], AsyncIterator[int]]:
    """A generator that raises on taking item ``bad`` (``None``: after its last item)."""

    async def checks(items: AsyncIterator[int]) -> AsyncIterator[int]:
        async for x in items:
            if x == bad:
                raise Boom(x)
            yield x
        if bad is None:
            raise Boom("at the end")

    return checks


@pytest.mark.parametrize(("bad", "position"), [(0, 0), (3, 3), (2500, 2500), (None, 2999)])
async def test_an_error_of_the_generator_arrives_bare_noting_the_last_item_it_took(
    bad: int | None, position: int
) -> None:
    with pytest.raises(Boom) as info:
        await snake.from_iterable(range(3000)).map(abs).through(fails_at(bad)).collect()
    assert info.value.__notes__ == [
        f"snake: in stage #2 through(checks), at item {position} of its input"
    ]


async def test_an_error_before_the_generator_takes_any_item_notes_item_0() -> None:
    async def refuses(items: AsyncIterator[int]) -> AsyncIterator[int]:
        raise Boom("no")
        yield 0  # an async generator all the same

    with pytest.raises(Boom) as info:
        await snake.from_iterable(range(5)).through(refuses).collect()
    assert info.value.__notes__ == ["snake: in stage #1 through(refuses), at item 0 of its input"]


async def test_items_before_an_error_of_the_generator_are_delivered() -> None:
    got = []
    with pytest.raises(Boom):
        async with (
            snake.from_iterable(range(10)).then(one_by_one).through(fails_at(6)).open() as items
        ):
            async for x in items:
                got.append(x)
    assert got == [0, 1, 2, 3, 4, 5]


async def test_a_lambda_that_returns_no_async_iterator_fails_when_run() -> None:
    with pytest.raises(
        TypeError, match=r"expected <lambda>\(items\) to return an async iterator, got list"
    ):
        await snake.from_iterable(range(3)).through(lambda items: [1, 2]).collect()  # type: ignore[arg-type, return-value]


# --- stopping: the generator is closed --------------------------------------


def closing(log: list[str]) -> Callable[[AsyncIterator[int]], AsyncIterator[int]]:
    async def logged(items: AsyncIterator[int]) -> AsyncIterator[int]:
        try:
            async for x in items:
                log.append(f"took {x}")
                yield x
        finally:
            log.append("closed")

    return logged


async def slowly() -> AsyncIterator[int]:
    for i in itertools.count():
        await trio.sleep(1)
        yield i


async def test_an_outer_cancel_closes_the_generator_waiting_for_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    with trio.move_on_after(2.5):
        await snake.from_iterable(slowly()).through(closing(log)).collect()
    assert log == ["took 0", "took 1", "closed"]


async def test_leaving_open_closes_the_generator_held_at_a_yield(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    pipeline = snake.from_iterable(itertools.count()).through(closing(log)).then(delayed)
    async with pipeline.open() as items:
        assert await items.receive() == 0
    assert log[-1] == "closed"
    assert log.count("closed") == 1


async def test_an_error_downstream_closes_the_generator() -> None:
    log: list[str] = []

    def check(x: int) -> int:
        if x == 5:
            raise Boom(x)
        return x

    pipeline = snake.from_iterable(range(100_000)).through(closing(log)).then(delayed).map(check)
    with pytest.raises(Boom):
        await pipeline.collect()
    assert log[-1] == "closed"


async def test_a_take_after_it_closes_the_generator_which_takes_no_more_items() -> None:
    log: list[str] = []
    produced = 0

    def source() -> Iterator[int]:
        nonlocal produced
        for i in itertools.count():
            produced += 1
            yield i

    assert await snake.from_iterable(source()).through(closing(log)).take(3).collect() == [0, 1, 2]
    assert log == ["took 0", "took 1", "took 2", "closed"]
    # The source ran ahead by what the stages buffer, not the stream: the
    # generator's input chunk, the chunk in the channel, and the source's
    # pending output, less than two chunks.
    assert produced < 4 * CHUNK


async def test_a_take_in_a_later_stage_stops_and_closes_it() -> None:
    log: list[str] = []
    pipeline = snake.from_iterable(itertools.count()).through(closing(log)).then(delayed).take(5)
    assert await pipeline.collect() == [0, 1, 2, 3, 4]
    assert log[-1] == "closed"
    # It took no more than the stages after it buffer (as the source above).
    assert len(log) - 1 < 4 * CHUNK


# --- buffering -------------------------------------------------------------


@pytest.mark.parametrize("takes", [0, 1, 2000])
async def test_a_generator_that_stops_asking_stalls_the_source_at_a_bounded_count(
    autojump_clock: trio.testing.MockClock, takes: int
) -> None:
    produced = 0

    async def source() -> AsyncIterator[int]:
        nonlocal produced
        for i in itertools.count():
            produced += 1
            yield i
            await trio.lowlevel.checkpoint()

    async def stuck(items: AsyncIterator[int]) -> AsyncIterator[int]:
        for _ in range(takes):
            await items.__anext__()
        await trio.sleep_forever()
        yield 0

    async with snake.from_iterable(source()).through(stuck).open():
        await trio.sleep(10)
        stalled = produced
        await trio.sleep(1000)
        assert produced == stalled  # it waits, and waits at a bound
    assert takes <= stalled < takes + 4 * CHUNK  # chunks: in hand, in the channel, pending


# --- what it says about itself ------------------------------------------------


def test_through_describes_itself_and_has_no_known_length() -> None:
    pipeline = snake.from_iterable(range(10)).map(abs).through(sliding(2)).map(len)
    assert repr(pipeline) == "snake.from_iterable(range).map(abs).through(windows).map(len)"
    assert pipeline.describe().splitlines() == [
        "#0 from_iterable(range); then fused: #1 map(abs)",
        "#2 through(windows); then fused: #3 map(len)",
    ]
    with pytest.raises(TypeError, match=r"#2 through\(windows\) may change the number of items"):
        len(pipeline)


async def test_its_statistics_count_what_it_took_and_gave(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pipeline = snake.from_iterable([[1, 2, 3]] * 100).through(pack(10))
    async with pipeline.open() as items:
        got = [x async for x in items]
    assert len(got) == 30
    _, through = items.statistics().stages
    assert through.label == "#1 through(packed)"
    assert (through.items_in, through.items_out) == (100, 30)
    assert "#1 through(packed)" in items.statistics().table()


@pytest.mark.parametrize(
    "pipeline",
    [
        snake.from_iterable(range(50)).through(sliding(2)),
        snake.concat(snake.from_iterable(range(50)).through(sliding(2))),
    ],
    ids=["own", "nested"],
)
def test_a_run_with_it_cannot_save_its_position_and_says_why(pipeline: snake.Pipeline[Any]) -> None:
    it = pipeline.iterate()
    try:
        assert next(it) == (0, 1)
        with pytest.raises(
            RuntimeError,
            match=r"through\(windows\) keeps state of its own that a saved position cannot hold",
        ):
            it.state_dict()
        assert len(list(it)) == 48  # it runs on as ever
    finally:
        it.close()


# --- validation ------------------------------------------------------------


def plain(items: Any) -> int:
    return 0


async def coroutine(items: Any) -> int:
    return 0


def generator(items: Any) -> Iterator[int]:
    yield 0


class AsyncCall:
    async def __call__(self, items: Any) -> int:
        return 0


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (
            plain,
            r"plain is a regular \(sync\) function: make it an async generator, or use \.map\(plain\)",
        ),
        (coroutine, r"coroutine is an async function with no `yield`: .* use \.then\(coroutine\)"),
        (generator, r"generator is a sync generator function: define it with `async def`"),
        (functools.partial(generator), r"partial\(generator\) is a sync generator function"),
        (len, r"len is a regular \(sync\) function"),
        (AsyncCall(), r"AsyncCall is an async function with no `yield`"),
        (3, r"through\(\) needs a callable `fn`, got int 3"),
    ],
)
def test_through_refuses_what_is_no_async_generator_function_naming_the_fix(
    fn: Any, match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        snake.from_iterable(range(3)).through(fn)


# --- apply -------------------------------------------------------------------


def test_apply_returns_what_its_function_builds() -> None:
    def tokenized(pipeline: snake.Pipeline[str]) -> snake.Pipeline[list[str]]:
        return pipeline.map(str.split).filter(bool)

    pipeline = snake.from_iterable(["a b", "", "c"]).apply(tokenized).apply(lambda p: p.unbatch())
    assert list(pipeline) == ["a", "b", "c"]
    assert repr(pipeline) == "snake.from_iterable(list).map(str.split).filter(bool).unbatch()"


def test_apply_refuses_a_function_that_returns_no_pipeline() -> None:
    with pytest.raises(
        TypeError,
        match=r"apply\(\) needs `fn` to return a snake.Pipeline, but <lambda> returned list \[\]",
    ):
        snake.from_iterable(range(3)).apply(lambda p: [])  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"apply\(\) needs a callable `fn`, got int 3"):
        snake.from_iterable(range(3)).apply(3)  # type: ignore[arg-type]


# --- send_to -------------------------------------------------------------------


async def test_send_to_feeds_other_tasks_and_closes_the_channel_at_the_end() -> None:
    send, receive = trio.open_memory_channel[int](0)
    got: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(snake.from_iterable(range(3000)).then(delayed).send_to, send)
        async for x in receive:  # ends as the channel is closed
            got.append(x)
    assert got == list(range(3000))
    with pytest.raises(trio.ClosedResourceError):
        send.send_nowait(0)


async def test_send_to_closes_the_channel_on_an_error_which_leaves_bare() -> None:
    send, receive = trio.open_memory_channel[int](math.inf)
    with pytest.raises(Boom) as info:
        await snake.from_iterable(range(10)).then(one_by_one).through(fails_at(4)).send_to(send)
    assert info.value.__notes__ == ["snake: in stage #2 through(checks), at item 4 of its input"]
    assert [x async for x in receive] == [0, 1, 2, 3]  # then the end
    # The traceback leads from this call straight to the generator.
    files = [frame.filename for frame in traceback.extract_tb(info.value.__traceback__)]
    snake_dir = os.path.dirname(snake.__file__)
    assert not [f for f in files if f.startswith((snake_dir, os.path.dirname(trio.__file__)))]


async def test_send_to_closes_the_channel_when_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[int](0)
    with trio.move_on_after(1) as scope:
        await snake.from_iterable(itertools.count()).send_to(send)  # no reader
    assert scope.cancelled_caught
    with pytest.raises(trio.ClosedResourceError):
        send.send_nowait(0)
    with pytest.raises(trio.EndOfChannel):
        receive.receive_nowait()


async def test_send_to_a_channel_whose_reader_left_stops_the_run() -> None:
    send, receive = trio.open_memory_channel[int](0)
    await receive.aclose()
    with pytest.raises(trio.BrokenResourceError):
        await snake.from_iterable(itertools.count()).send_to(send)


async def test_an_error_of_a_lambda_called_on_the_items_keeps_its_cause() -> None:
    def opens(items: AsyncIterator[int]) -> AsyncIterator[int]:
        try:
            {}[0]
        except KeyError as exc:
            raise Boom("cannot start") from exc
        return items

    with pytest.raises(Boom) as info:
        await snake.from_iterable(range(3)).through(lambda items: opens(items)).collect()
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.__notes__ == ["snake: in stage #1 through(<lambda>), at item 0 of its input"]
