"""errors="skip" and max_failures: failing items are dropped, counted, logged once, limited."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import snake


class Bad(Exception):
    pass


def failing_on(bad: frozenset[int], delays: list[float]) -> Any:
    async def fn(x: int) -> int:
        await trio.sleep(delays[x % len(delays)])
        if x in bad:
            raise Bad(f"bad {x}")
        return x * 10

    return fn


@given(
    n=st.integers(0, 80),
    bad=st.frozensets(st.integers(0, 79)),
    delays=st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.3]), min_size=1, max_size=4),
    method=st.sampled_from(["then", "par_then"]),
)
def test_skipping_gives_the_results_of_the_items_that_did_not_fail(
    n: int, bad: frozenset[int], delays: list[float], method: str
) -> None:
    fn = failing_on(bad, delays)
    pipeline = getattr(snake.from_iterable(range(n)), method)(fn, errors="skip")

    async def main() -> list[int]:
        return await pipeline.collect()  # type: ignore[no-any-return]

    got = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert got == [x * 10 for x in range(n) if x not in bad]


def fails_on_multiples_of_7(x: int) -> int:
    if x % 7 == 0:
        raise Bad(f"bad {x}")
    return x


@pytest.mark.parametrize("executor", ["process", "thread"])
async def test_par_map_skips_in_its_workers_and_runs_the_maps_after_it(executor: str) -> None:
    got = await (
        snake.from_iterable(range(100))
        .par_map(fails_on_multiples_of_7, executor=executor, errors="skip")  # type: ignore[arg-type]
        .map(lambda x: -x)
        .collect()
    )
    assert got == [-x for x in range(100) if x % 7]


@pytest.mark.parametrize("method", ["then", "par_then", "par_map"])
async def test_past_max_failures_the_error_over_the_limit_is_raised(method: str) -> None:
    async def fails_async(x: int) -> int:
        return fails_on_multiples_of_7(x)

    fn = fails_on_multiples_of_7 if method == "par_map" else fails_async
    pipeline = getattr(snake.from_iterable(range(100)), method)(fn, errors="skip", max_failures=3)
    # The 4th failure: 0, 7, 14, then 21 in input order; a parallel stage
    # counts them as calls end, so a later one may come fourth.
    with pytest.raises(Bad, match="bad 21" if method == "then" else r"bad \d+") as info:
        await pipeline.collect()
    [limit] = [n for n in info.value.__notes__ if "max_failures" in n]
    skipped = int(limit.split(" skipped ")[1].split()[0])
    assert limit.startswith(f"snake: stage #1 {method}({fn.__name__}) skipped ")
    # Past the limit at the 4th; jobs ending together may count a few more.
    assert skipped == 4 if method == "then" else skipped >= 4
    assert limit.endswith("more than max_failures=3 allows")


async def test_a_fraction_allows_that_share_of_the_items_seen_and_at_least_one() -> None:
    async def fails_async(x: int) -> int:
        return fails_on_multiples_of_7(x)

    # 1 in 7 fail (15 of 100): a tenth is too few, a fifth enough.
    enough = snake.from_iterable(range(1, 101)).then(fails_async, errors="skip", max_failures=0.2)
    assert len(await enough.collect()) == 100 - 14
    too_few = snake.from_iterable(range(1, 101)).then(fails_async, errors="skip", max_failures=0.1)
    with pytest.raises(Bad):
        await too_few.collect()


async def test_each_kind_of_error_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def two_kinds(x: int) -> int:
        if x % 2:
            raise Bad(f"odd {x}")
        if x % 3 == 0:
            raise KeyError(x)
        return x

    with caplog.at_level(logging.WARNING, logger="snake"):
        got = await snake.from_iterable(range(60)).then(two_kinds, errors="skip").collect()
    assert got == [x for x in range(60) if x % 2 == 0 and x % 3]
    messages = [r.getMessage() for r in caplog.records if r.name == "snake"]
    assert len(messages) == 2
    assert messages[0].startswith("stage #1 then(two_kinds) skipped item 0: KeyError: 0")
    assert messages[1].startswith("stage #1 then(two_kinds) skipped item 1: Bad: odd 1")


@pytest.mark.parametrize("method", ["then", "par_then"])
async def test_a_function_that_returns_no_awaitable_is_a_bug_never_skipped_nor_retried(
    method: str,
) -> None:
    calls: list[int] = []
    not_async = lambda x: calls.append(x) or x  # noqa: E731 - a lambda passes the build-time check

    began = time.perf_counter()
    with pytest.raises(TypeError, match="expected an awaitable, got int") as info:
        await getattr(snake.from_iterable(range(3)), method)(
            not_async, errors="skip", retries=5
        ).collect()
    assert info.value.__notes__[0].endswith("at item 0 of its input")
    assert calls[:1] == [0]
    assert calls.count(0) == 1
    # Five retries would wait 3.1 s between them; a busy machine may be slow.
    assert time.perf_counter() - began < 1.0


async def echo(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"errors": "ignore"}, ValueError, "`errors` must be 'raise' or 'skip', got 'ignore'"),
        ({"max_failures": 3}, ValueError, '`max_failures` applies with errors="skip" only'),
        ({"errors": "skip", "max_failures": -1}, ValueError, "must be >= 0, got -1"),
        ({"errors": "skip", "max_failures": 1.5}, ValueError, "between 0 and 1"),
        ({"errors": "skip", "max_failures": True}, TypeError, "a count .* or a fraction"),
        ({"errors": "skip", "max_failures": "3"}, TypeError, "got str '3'"),
    ],
)
@pytest.mark.parametrize("method", ["then", "par_then", "par_map"])
def test_bad_policies_are_refused_when_the_pipeline_is_built(
    method: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    fn = abs if method == "par_map" else echo
    with pytest.raises(error, match=message):
        getattr(snake.from_iterable(range(3)), method)(fn, **kwargs)


def hangs_on(slow: frozenset[int], seconds: float = 30.0) -> Any:
    async def fn(x: int) -> int:
        if x in slow:
            await trio.sleep(seconds)
        return x

    return fn


async def test_a_par_then_call_past_its_timeout_raises_item_timeout_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pipeline = snake.from_iterable(range(20)).par_then(hangs_on(frozenset({6})), timeout=2.0)
    with pytest.raises(
        snake.ItemTimeoutError, match="longer than its stage's timeout of 2 s"
    ) as info:
        await pipeline.collect()
    assert isinstance(info.value, TimeoutError)
    assert info.value.__notes__ == ["snake: in stage #1 par_then(fn), at item 6 of its input"]


async def test_with_skip_items_past_the_timeout_are_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pipeline = snake.from_iterable(range(30)).par_then(
        hangs_on(frozenset({3, 17})), timeout=1.0, errors="skip", max_failures=2
    )
    assert await pipeline.collect() == [x for x in range(30) if x not in (3, 17)]


def sleeps_on(x: int) -> tuple[int, int]:
    import time

    if x in (3, 11):
        time.sleep(30)
    return x, os.getpid()


async def test_a_process_map_kills_a_worker_past_the_timeout_and_goes_on_with_a_new_one() -> None:
    began = time.perf_counter()
    pipeline = snake.from_iterable(range(40)).par_map(sleeps_on, timeout=0.5, errors="skip")
    with trio.fail_after(20):
        async with pipeline.open() as items:
            got = [x async for x in items]
    assert [x for x, _ in got] == [x for x in range(40) if x not in (3, 11)]
    # Each timeout killed a worker, and its lane started another.
    started = sum(w.started for w in items.statistics().workers)
    assert started >= len(os.sched_getaffinity(0)) + 2
    assert time.perf_counter() - began < 10


async def test_a_process_map_past_the_timeout_raises_naming_the_item() -> None:
    with trio.fail_after(20):
        with pytest.raises(snake.ItemTimeoutError) as info:
            await snake.from_iterable(range(10)).par_map(sleeps_on, timeout=0.5).collect()
    assert info.value.__notes__ == ["snake: in stage #1 par_map(sleeps_on), at item 3 of its input"]


def sleeps_a_little(x: int) -> int:
    import time

    if x == 2:
        time.sleep(0.5)
    return x


async def test_a_thread_map_past_the_timeout_abandons_the_thread() -> None:
    began = time.perf_counter()
    with pytest.raises(snake.ItemTimeoutError):
        await (
            snake.from_iterable(range(5))
            .par_map(sleeps_a_little, executor="thread", timeout=0.1)
            .collect()
        )
    assert time.perf_counter() - began < 0.45  # did not wait for the thread


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        (0, ValueError, "`timeout` must be > 0 seconds, got 0"),
        (-1.5, ValueError, "must be > 0 seconds"),
        ("1", TypeError, "`timeout` must be a number of seconds, got str '1'"),
        (True, TypeError, "got bool True"),
    ],
)
@pytest.mark.parametrize("method", ["par_then", "par_map"])
def test_bad_timeouts_are_refused_when_the_pipeline_is_built(
    method: str, timeout: object, error: type[Exception], message: str
) -> None:
    fn = abs if method == "par_map" else echo
    with pytest.raises(error, match=message):
        getattr(snake.from_iterable(range(3)), method)(fn, timeout=timeout)


def flaky(times: int) -> Any:
    """An async function failing its first ``times`` calls for each item."""
    calls: dict[int, int] = {}

    async def read(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if calls[x] <= times:
            raise ConnectionError(f"flake {calls[x]} on {x}")
        return x

    return read


@pytest.mark.parametrize("method", ["then", "par_then"])
async def test_retries_try_again_with_growing_delays(
    method: str, autojump_clock: trio.testing.MockClock
) -> None:
    began = trio.current_time()
    got = await getattr(snake.from_iterable(range(5)), method)(flaky(2), retries=2).collect()
    assert got == list(range(5))
    # Per item, 0.1 s then 0.2 s of backoff (par_then waits for items together).
    assert trio.current_time() - began == pytest.approx(0.3 * (5 if method == "then" else 1))


@pytest.mark.parametrize("method", ["then", "par_then"])
async def test_the_last_tries_error_says_how_many_tries_failed(
    method: str, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(ConnectionError, match=r"flake 4 on \d") as info:
        await getattr(snake.from_iterable(range(3)), method)(flaky(9), retries=3).collect()
    assert "snake: the call failed 4 times (retries=3)" in info.value.__notes__


_tries: dict[int, int] = {}


def flaky_in_worker(x: int) -> tuple[int, int]:
    # Per worker process: the first two tries of each item fail.
    _tries[x] = _tries.get(x, 0) + 1
    if _tries[x] <= 2:
        raise ConnectionError(f"flake on {x}")
    return x, _tries[x]


@pytest.mark.parametrize("executor", ["process", "thread"])
async def test_a_par_map_retries_in_its_workers(executor: str) -> None:
    _tries.clear()
    got = await (
        snake.from_iterable(range(6))
        .par_map(flaky_in_worker, executor=executor, retries=2)  # type: ignore[arg-type]
        .collect()
    )
    assert got == [(x, 3) for x in range(6)]


def dies_once(path: str) -> Any:
    def fn(x: int) -> int:
        if x == 4 and not os.path.exists(path):
            open(path, "w").close()
            os._exit(9)  # the first try's worker dies
        return x

    return fn


async def test_a_job_whose_worker_died_is_retried_on_another(tmp_path: Any) -> None:
    with trio.fail_after(20):
        got = await (
            snake.from_iterable(range(10))
            .par_map(dies_once(str(tmp_path / "died")), retries=1)
            .collect()
        )
    assert got == list(range(10))
    with pytest.raises(snake.WorkerDiedError, match="exited with code 9"):
        await snake.from_iterable(range(10)).par_map(dies_once(str(tmp_path / "again"))).collect()


@pytest.mark.parametrize("retries", [-1, 1.5, True])
def test_bad_retries_are_refused(retries: object) -> None:
    with pytest.raises((TypeError, ValueError), match="`retries` must be"):
        snake.from_iterable(range(3)).then(echo, retries=retries)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["then", "par_then"])
async def test_a_call_that_raises_before_giving_its_awaitable_is_tried_again_too(
    method: str, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[int] = []

    async def ok(x: int) -> int:
        return x

    def starts(x: int) -> Any:
        calls.append(x)
        if calls.count(x) == 1:
            raise ConnectionError(f"refused {x}")  # raised by the call itself
        return ok(x)

    got = await getattr(snake.from_iterable(range(3)), method)(
        lambda x: starts(x), retries=1
    ).collect()
    assert got == [0, 1, 2]
    assert sorted(calls) == [0, 0, 1, 1, 2, 2]


def slow_3_fails_and_7_fails(x: int) -> int:
    if x == 3:
        time.sleep(0.3)  # item 7 fails first, by far
    if x in (3, 7):
        raise Bad(f"bad {x}")
    return x


@pytest.mark.parametrize("executor", ["thread", "process"])
async def test_an_ordered_par_map_counts_skipped_items_in_order_as_a_loop_would(
    executor: str,
) -> None:
    # A sequential loop skips item 3, its one allowed failure, and stops at
    # item 7, whichever of the two failed first.
    pipeline = snake.from_iterable(range(10)).par_map(
        slow_3_fails_and_7_fails,
        executor=executor,
        errors="skip",
        max_failures=1,  # type: ignore[arg-type]
    )
    got: list[int] = []
    with trio.fail_after(30), pytest.raises(Bad, match="bad 7") as info:
        async with pipeline.open() as items:
            async for x in items:
                got.append(x)
    assert "skipped 2 failing items of the 8 it has seen" in info.value.__notes__[-1]
    assert got == [0, 1, 2, 4, 5, 6][: len(got)]
