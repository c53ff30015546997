"""Per-stage statistics: counts that add up, and the stage the others wait on."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

import snake


def sleeping(seconds: float) -> object:
    async def fn(x: int) -> int:
        await trio.sleep(seconds)
        return x

    return fn


async def fast(x: int) -> int:
    return x


async def slow(x: int) -> int:
    await trio.sleep(0.01)
    return x


async def test_the_counts_add_up_stage_to_stage(autojump_clock: trio.testing.MockClock) -> None:
    async def fails_on_sevens(x: int) -> int:
        if x % 7 == 0:
            raise ValueError(x)
        return x

    pipeline = (
        snake.from_iterable(range(1000))
        .filter(lambda x: x % 2)
        .then(fails_on_sevens, errors="skip")
        .par_then(fast, concurrency=4)
        .batch(10)
    )
    async with pipeline.open() as items:
        got = [x async for x in items]
    stats = items.statistics()
    source, then, par_then = stats.stages
    assert [s.label for s in stats.stages] == [
        "#0 from_iterable(range)", "#2 then(fails_on_sevens)", "#3 par_then(fast)",
    ]  # fmt: skip
    assert source.fused == ("filter(<lambda>)",)
    assert par_then.fused == ("batch(10)",)
    assert (source.items_in, source.items_out) == (1000, 500)
    assert then.items_in == source.items_out
    assert then.skipped == 71
    assert par_then.items_in == then.items_out == 500 - 71
    assert par_then.items_out == len(got) == 43  # batches of 10
    assert stats.elapsed >= max(s.seconds for s in stats.stages)


async def test_the_verdict_names_the_slow_stage(autojump_clock: trio.testing.MockClock) -> None:
    pipeline = snake.from_iterable(range(5000)).then(fast).then(slow).then(fast)
    async with pipeline.open() as items:
        async for _ in items:
            pass
    stats = items.statistics()
    assert stats.bottleneck() is stats.stages[2]
    assert stats.share(stats.stages[2].busy) > 0.9
    # The stage before it waits for room (until its input ends and its last
    # chunks fit in the buffers), the one after it for input.
    assert stats.share(stats.stages[1].waiting_for_output) > 0.5
    assert stats.share(stats.stages[3].waiting_for_input) > 0.9
    verdict = stats.verdict()
    assert verdict.startswith("#2 then(slow): busy ")
    assert "upstream blocked on it" in verdict
    assert "par_then" in verdict


async def test_a_slow_consumer_is_the_bottleneck(autojump_clock: trio.testing.MockClock) -> None:
    async with snake.from_iterable(range(3000)).then(fast).open() as items:
        async for _ in items:
            await trio.sleep(0.001)
    assert items.statistics().verdict().startswith("the consumer (your loop): #1 then(fast) waits")


async def test_statistics_while_it_runs_and_as_a_table(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with snake.from_iterable(range(100)).par_then(slow, concurrency=5).open() as items:
        for _ in range(10):
            await items.receive()
        early = items.statistics()
        assert 10 <= early.stages[1].items_out < 100
        rest = [x async for x in items]
    assert len(rest) == 90
    table = items.statistics().table()
    assert "#1 par_then(slow)" in table.splitlines()[3]
    assert table.splitlines()[-1].startswith("elapsed ")


def test_describe_shows_each_stage_with_what_is_fused_into_it() -> None:
    pipeline = (
        snake.from_iterable(range(3))
        .filter(abs)
        .then(fast)
        .par_map(abs)
        .map(abs)
        .batch(4)
        .map(len)
        .take(2)
    )
    assert pipeline.describe().splitlines() == [
        "#0 from_iterable(range); then fused: #1 filter(abs)",
        "#2 then(fast)",
        "#3 par_map(abs); in its workers: #4 map(abs), #5 batch(4); then fused: #6 map(len), "
        "#7 take(2)",
    ]


async def test_latency_percentiles_and_calls_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def varied(x: int) -> int:
        await trio.sleep(0.1 if x % 10 == 9 else 0.01)  # one item in ten is slow
        return x

    pipeline = snake.from_iterable(range(500)).par_then(varied, concurrency=8)
    async with pipeline.open() as items:
        for _ in range(100):
            await items.receive()
        during = items.statistics().stages[1]
        assert during.concurrency == 8
        assert during.in_flight is not None
        assert 0 < during.in_flight <= 8
        rest = [x async for x in items]
    assert len(rest) == 400
    stage = items.statistics().stages[1]
    assert stage.in_flight is None  # it has ended
    assert stage.latency is not None
    p50, p90, p99 = stage.latency
    assert p50 == pytest.approx(0.01)
    assert p99 == pytest.approx(0.1)
    assert p50 <= p90 <= p99


async def test_a_report_callback_gets_the_figures_periodically_and_at_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reports: list[snake.Statistics] = []
    pipeline = snake.from_iterable(range(100)).then(slow)  # 1 virtual second
    got = await pipeline.collect(report=reports.append, report_every=0.25)
    assert len(got) == 100
    assert 4 <= len(reports) <= 6  # every quarter of a second, and once at the end
    outs = [r.stages[-1].items_out for r in reports]
    assert outs == sorted(outs)
    assert outs[-1] == 100
    assert reports[-1].bottleneck() is reports[-1].stages[1]


async def test_progress_prints_items_rate_and_bottleneck(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    await snake.from_iterable(range(100)).then(slow).collect(progress=True, report_every=0.5)
    lines = capsys.readouterr().err.splitlines()  # not a terminal: a line per report
    assert len(lines) >= 2
    assert lines[-1].startswith("snake: 100/100 items, ")  # its len() is the total
    assert "items/s" in lines[-1]
    assert "bottleneck #1 then(slow)" in lines[-1]


def test_synchronous_iteration_reports_too() -> None:
    reports: list[snake.Statistics] = []
    items = list(snake.from_iterable(range(50)).iterate(report=reports.append, report_every=10))
    assert items == list(range(50))
    assert len(reports) == 1
    assert reports[0].stages[0].items_out == 50


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"report_every": 0}, ValueError, "`report_every` must be > 0 seconds, got 0"),
        ({"report_every": "1"}, TypeError, "`report_every` must be a number of seconds"),
        ({"report": 5}, TypeError, "`report` must be a callable taking snake.Statistics"),
        ({"progress": 1}, TypeError, "`progress` must be True or False"),
    ],
)
def test_bad_reporting_options_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        snake.from_iterable(range(3)).open(**kwargs)  # type: ignore[arg-type]


def square(x: int) -> int:
    return x * x


async def test_process_maps_report_each_worker_lane() -> None:
    async with snake.from_iterable(range(300)).par_map(square).open() as items:
        got = [x async for x in items]
    assert got == [x * x for x in range(300)]
    workers = items.statistics().workers
    assert len(workers) == len(os.sched_getaffinity(0))
    assert sum(w.items for w in workers) == 300
    # A worker still starting when the run ended never connected: no pid, no jobs.
    assert all(w.started == 1 and (w.pid is not None or w.jobs == 0) for w in workers)
    assert sum(w.jobs for w in workers) > 0  # a worker that started late may have had none
    assert {w.lane for w in workers} == set(range(len(workers)))
