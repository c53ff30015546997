"""``concurrency="auto"``: the tuner finds a stage's concurrency while it runs.

Every run here is on trio's autojump clock: a call of ``latency`` seconds
costs none, and the tuner's choices are deterministic.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

import snake
from snake._stages._tuner import PAR_THEN_MOST, PAR_THEN_START, STEP, THREADS_MOST, Tuner
from snake._workers._options import cpu_count

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

LATENCY = 0.05


def service(capacity: int | None, latency: float = LATENCY) -> Callable[[int], Awaitable[int]]:
    """A call of ``latency`` seconds to a service that serves ``capacity`` at once."""
    limiter = None if capacity is None else trio.CapacityLimiter(capacity)

    async def call(x: int) -> int:
        if limiter is None:
            await trio.sleep(latency)
        else:
            async with limiter:
                await trio.sleep(latency)
        return x

    return call


def tuned(
    pipeline: snake.Pipeline[Any], *, halfway: bool = False
) -> tuple[list[Any], list[snake.StageStatistics]]:
    """The items of a run, and its tuned stage's statistics at the end (and
    halfway, first, if asked)."""

    async def main() -> tuple[list[Any], list[snake.StageStatistics]]:
        seen: list[snake.StageStatistics] = []
        got: list[Any] = []
        async with pipeline.open() as items:
            async for x in items:
                got.append(x)
                if halfway and len(got) == len(pipeline) // 2:
                    seen.append(_tuned_stage(items.statistics()))
            seen.append(_tuned_stage(items.statistics()))
        return got, seen

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def _tuned_stage(statistics: snake.Statistics) -> snake.StageStatistics:
    [stage] = [s for s in statistics.stages if s.tuning is not None]
    return stage


@pytest.mark.parametrize("capacity", [4, 8, 50, 100, 300])
def test_it_finds_enough_concurrency_for_a_service_of_known_capacity(capacity: int) -> None:
    # Down from where it starts too, once calls queue in the service.
    pipeline = snake.from_iterable(range(100 * capacity)).par_then(
        service(capacity), concurrency="auto"
    )
    got, [stage] = tuned(pipeline)
    assert got == list(range(100 * capacity))
    assert stage.tuning is not None
    value, rates = stage.tuning.value, dict(stage.tuning.tried)
    # Enough calls at once for the service's capacity, and not far more.
    assert capacity <= value <= 4 * capacity
    assert rates[value] >= 0.9 * capacity / LATENCY, stage.tuning
    assert stage.concurrency == value


def test_calls_that_do_not_compete_grow_it_to_its_most() -> None:
    pipeline = snake.from_iterable(range(5_000)).par_then(service(None), concurrency="auto")
    _, [stage] = tuned(pipeline)
    assert stage.tuning is not None
    assert stage.tuning.value == PAR_THEN_MOST
    values = [v for v, _ in stage.tuning.tried]
    assert values[0] == PAR_THEN_START
    assert values == sorted(values)  # up all the way, each step faster
    rates = [r for _, r in stage.tuning.tried]
    assert rates == sorted(rates)


def values_seen(call: Callable[[int], Awaitable[int]], n: int, at: set[int]) -> dict[int, int]:
    """The tuned concurrency once each of ``at`` items has come out."""

    async def main() -> dict[int, int]:
        pipeline = snake.from_iterable(range(n)).par_then(call, concurrency="auto")
        seen = {}
        async with pipeline.open() as items:
            k = 0
            async for _ in items:
                k += 1
                if k in at:
                    seen[k] = _tuned_stage(items.statistics()).concurrency
        return seen

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_it_grows_within_a_few_hundred_items() -> None:
    # Slow start: each call that ends while the stage is the limit adds
    # three, so the concurrency grows fourfold per latency, unjudged.
    seen = values_seen(service(None), 5_000, {100, 400})
    assert seen[400] == PAR_THEN_MOST

    async def uneven(x: int) -> int:  # the seed workload's reads: 0, 50 or 100 ms
        await trio.sleep((x % 3) * LATENCY)
        return x

    # Calls of unequal latency do not look queued: it grows past all 100 items.
    assert values_seen(uneven, 100, {50})[50] >= 100


def test_calls_that_end_together_each_grow_it() -> None:
    # On a real clock, calls that end together end microseconds apart, while
    # trio runs the tasks they woke: in those microseconds the stage's input
    # does not wait for room (the stage is busy starting calls), which says
    # nothing of whether the stage is the limit. Each call still adds its
    # step (with the input looked at over each few microseconds instead, it
    # grew by one step per burst: 16 to 19 here, 256 to 325 in
    # benchmarks/autotune.py).
    burst = LATENCY  # the input waited for room until the calls began to end
    tuner = Tuner(PAR_THEN_START, PAR_THEN_MOST)
    tuner.parked = lambda now: min(now, burst)
    tokens = [tuner.started(0.0) for _ in range(PAR_THEN_START)]
    for k, token in enumerate(tokens):
        now = burst + k * 1e-5
        tuner.ended(now, now, token)
    assert tuner.value == PAR_THEN_START * (1 + STEP)


def test_a_round_in_which_none_of_its_calls_ended_is_judged_too() -> None:
    # Behind a slow consumer its window is full of results, and its calls
    # start only when the consumer's buffers take a chunk, seconds apart. A
    # round ends by time at the first call that starts after it, with no
    # call of its own ended: held back, the stage falls to the calls it had
    # running (with headroom, not below where it started). Before, such a
    # round lasted until a call of its own ended, and it stayed at 64.
    tuner = Tuner(64, PAR_THEN_MOST, least=PAR_THEN_START)
    tokens = [tuner.started(0.0) for _ in range(64)]
    for token in tokens:  # no input waited for room: it settles at 64
        tuner.ended(LATENCY, LATENCY, token)
    tuner.started(LATENCY + 0.001)  # the first round ends; a call starts
    assert (tuner.changed(), tuner.value) == (None, 64)
    tuner.started(10.0)  # the next call, when a chunk of results has left
    tuner.started(20.0)
    assert (tuner.changed(), tuner.value) == (PAR_THEN_START, PAR_THEN_START)
    assert tuner.why == "settled: the stage is not the limit"


@pytest.mark.parametrize("kinds", [3, 8])
def test_calls_of_unequal_latency_do_not_look_queued(kinds: int) -> None:
    # The first calls to end are the fast ones: the latency the later rounds
    # are held against is the mean of all the first round's calls.
    async def uneven(x: int) -> int:
        await trio.sleep((x % kinds) * LATENCY)
        return x

    _, [stage] = tuned(snake.from_iterable(range(3_000)).par_then(uneven, concurrency="auto"))
    assert stage.tuning is not None
    assert stage.tuning.value >= PAR_THEN_MOST // 2, stage.tuning
    assert "queued" not in stage.tuning.why


def test_it_goes_below_where_it_started_for_a_service_of_fewer_calls() -> None:
    seen = values_seen(service(2), 1_000, {100, 999})
    assert 2 <= seen[100] < PAR_THEN_START
    assert seen[999] == seen[100]


def test_once_settled_it_stays_put() -> None:
    n = 40_000
    pipeline = snake.from_iterable(range(n)).par_then(service(100), concurrency="auto")
    _, (half, end) = tuned(pipeline, halfway=True)
    assert half.tuning is not None
    assert end.tuning is not None
    assert half.tuning.why.startswith("settled")
    # The second half of the run changed nothing: no oscillation.
    assert end.tuning.value == half.tuning.value
    assert [v for v, _ in end.tuning.tried] == [v for v, _ in half.tuning.tried]


def test_a_stage_that_is_not_the_limit_does_not_grow() -> None:
    async def slow_source(x: int) -> int:
        await trio.sleep(0.01)  # 100 items/s reach it: 5 calls at once are enough
        return x

    pipeline = (
        snake.from_iterable(range(2_000))
        .then(slow_source)
        .par_then(service(None), concurrency="auto")
    )
    _, [stage] = tuned(pipeline)
    assert stage.tuning is not None
    assert stage.tuning.value == PAR_THEN_START
    assert stage.tuning.why == "settled: the stage is not the limit"


def test_a_stage_held_back_by_its_consumer_falls_back() -> None:
    # It grows while the stages after it take in what it makes (their
    # buffers fill), then the window fills with results the consumer has not
    # taken: more calls would only hold more of them. The consumer's buffers
    # take its results a chunk at a time, long apart, and its calls end only
    # then: it falls at the first call it starts once its window has room,
    # not rounds of calls later (at item 83-814 in runs here; at
    # item 1,849-1,981 before).
    async def main() -> tuple[snake.StageStatistics, int, int | None]:
        pipeline = snake.from_iterable(range(3_000)).par_then(service(None), concurrency="auto")
        most, fell, i = 0, None, 0
        async with pipeline.open() as items:
            async for _ in items:
                i += 1
                await trio.sleep(0.02)  # 50 items/s: 1 call at a time would do
                now = _tuned_stage(items.statistics()).concurrency or 0
                most = max(most, now)
                if fell is None and now == PAR_THEN_START < most:
                    fell = i
            return _tuned_stage(items.statistics()), most, fell

    stage, most, fell = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert stage.tuning is not None
    assert stage.tuning.why == "settled: the stage is not the limit", stage.tuning
    assert stage.tuning.value == PAR_THEN_START < most, (stage.tuning, most)
    assert stage.concurrency == stage.tuning.value
    assert fell is not None
    assert fell < 1_500, fell


def test_a_rate_that_changes_sets_off_a_new_search() -> None:
    # Fast calls to a service of 8 at once; halfway, slow calls that do not
    # compete (the fourth workload of benchmarks/autotune.py, in small).
    n = 20_000
    limiter = trio.CapacityLimiter(8)

    async def call(x: int) -> int:
        if x < n // 2:
            async with limiter:
                await trio.sleep(0.005)
        else:
            await trio.sleep(0.1)
        return x

    pipeline = snake.from_iterable(range(n)).par_then(call, concurrency="auto")
    _, (before, after) = tuned(pipeline, halfway=True)
    assert before.tuning is not None
    assert after.tuning is not None
    assert before.tuning.why.startswith("settled")
    assert before.tuning.value <= 2 * PAR_THEN_START
    # The slow calls gain from more at once: it grew again, to its most.
    assert after.tuning.value == PAR_THEN_MOST
    assert "growing again" in after.tuning.why or after.tuning.why.startswith("settled at")


def test_the_search_is_the_same_on_every_run() -> None:
    # trio runs the tasks of one moment in a random order: the tuner sums
    # over moments, so only the floats' last bits may differ.
    def once() -> list[tuple[int, float]]:
        pipeline = snake.from_iterable(range(3_000)).par_then(service(60), concurrency="auto")
        _, [stage] = tuned(pipeline)
        assert stage.tuning is not None
        return [(value, round(rate, 6)) for value, rate in stage.tuning.tried]

    assert once() == once()


def test_it_is_described_shown_in_the_statistics_and_left_out_of_saved_states() -> None:
    pipeline = snake.from_iterable(range(3_000)).par_then(service(60), concurrency="auto")
    assert 'par_then(call, concurrency="auto")' in pipeline.describe()

    async def main() -> tuple[str, dict[str, Any]]:
        async with pipeline.open(epoch=0) as items:
            for _ in range(1_000):
                await items.receive()
            return items.statistics().table(), items.state_dict()

    table, state = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    line = next(line for line in table.splitlines() if "concurrency auto:" in line)
    assert line.startswith('#1 par_then(call, concurrency="auto"): concurrency auto: ')
    assert "items/s at each: 16: " in line
    # Concurrency may change between a save and a resume: "auto" too.
    fixed = snake.from_iterable(range(3_000)).par_then(service(60), concurrency=7)
    rest = trio.run(
        lambda: fixed.collect(state=json.loads(json.dumps(state))),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    assert rest == list(range(1_000, 3_000))


@pytest.mark.parametrize("bad", ["Auto", "", 0])
def test_a_concurrency_that_is_neither_an_int_nor_auto_is_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="concurrency"):
        snake.from_iterable([1]).par_then(service(None), concurrency=bad)  # type: ignore[arg-type]
    if isinstance(bad, str):
        with pytest.raises(ValueError, match='an int >= 1 or "auto"'):
            snake.from_iterable([1]).par_then(service(None), concurrency=bad)  # type: ignore[arg-type]


# --- par_map: threads and processes, on the real clock ---------------------------


def sleeping(x: int) -> int:
    time.sleep(0.005)  # releases the GIL: more threads, more items/s
    return x


def spinning(x: int) -> int:
    return sum(range(2_000)) * 0 + x


def run_for_real(pipeline: snake.Pipeline[Any]) -> tuple[list[Any], snake.StageStatistics]:
    async def main() -> tuple[list[Any], snake.StageStatistics]:
        async with pipeline.open() as items:
            got = [x async for x in items]
            return got, _tuned_stage(items.statistics())

    return trio.run(main)


def test_a_thread_map_grows_past_one_thread_per_cpu_while_that_pays() -> None:
    pipeline = snake.from_iterable(range(2_000)).par_map(
        sleeping, executor="thread", concurrency="auto"
    )
    assert 'par_map(sleeping, concurrency="auto")' in pipeline.describe()
    got, stage = run_for_real(pipeline)
    assert got == list(range(2_000))
    assert stage.tuning is not None
    start = stage.tuning.tried[0][0]
    assert start == cpu_count()
    assert start < stage.tuning.value <= THREADS_MOST
    assert stage.concurrency == 3 * stage.tuning.value  # jobs in its window: three per thread


def test_a_process_map_stays_within_the_cpus() -> None:
    pipeline = snake.from_iterable(range(2_000)).par_map(spinning, concurrency="auto")
    got, stage = run_for_real(pipeline)
    assert got == list(range(2_000))
    assert stage.tuning is not None
    assert stage.tuning.value == cpu_count()
    # At its most from the start; a round the feeder was slow in may have
    # settled it first, with nothing below the start to fall to.
    reasons = (f"settled at its most, {cpu_count()}", "settled: the stage is not the limit")
    assert stage.tuning.why in reasons, stage.tuning


def test_a_map_tuned_in_one_run_resumes_with_a_fixed_concurrency() -> None:
    def build(concurrency: Any) -> snake.Pipeline[int]:
        return snake.from_iterable(range(300)).par_map(
            abs, executor="thread", concurrency=concurrency
        )

    it = build("auto").iterate(epoch=0)
    head = [next(it) for _ in range(100)]
    state = it.state_dict()
    it.close()
    assert head + list(build(3).iterate(state=state)) == list(range(300))


# --- epochs: a pipeline run again starts where its last run ended ---------------


def test_the_next_epoch_starts_where_the_last_one_ended() -> None:
    pipeline = snake.from_iterable(range(3_000)).par_then(service(None), concurrency="auto")

    async def epoch() -> tuple[float, snake.TuningStatistics]:
        began = trio.current_time()
        async with pipeline.open() as items:
            async for _ in items:
                pass
            stage = _tuned_stage(items.statistics())
        assert stage.tuning is not None
        return trio.current_time() - began, stage.tuning

    async def main() -> list[tuple[float, snake.TuningStatistics]]:
        return [await epoch() for _ in range(2)]

    clock = trio.testing.MockClock(autojump_threshold=0)
    (first_seconds, first), (second_seconds, second) = trio.run(main, clock=clock)
    assert first.tried[0][0] == PAR_THEN_START
    assert first.value == PAR_THEN_MOST
    assert second.why == f"settled at {PAR_THEN_MOST}, where its last run ended"
    assert {v for v, _ in second.tried} <= {PAR_THEN_MOST}  # it tried nothing else
    assert second.value == PAR_THEN_MOST
    assert second_seconds < first_seconds / 2
    # A new pipeline object, as another program's, searches from the start.
    rebuilt = snake.from_iterable(range(300)).par_then(service(None), concurrency="auto")
    _, [stage] = tuned(rebuilt)
    assert stage.tuning is not None
    assert stage.tuning.tried[0][0] == PAR_THEN_START


def test_the_next_epoch_keeps_a_value_below_the_start() -> None:
    pipeline = snake.from_iterable(range(400)).par_then(service(4), concurrency="auto")
    _, [first] = tuned(pipeline)
    _, [second] = tuned(pipeline)
    assert first.tuning is not None
    assert second.tuning is not None
    assert first.tuning.value < PAR_THEN_START
    # Settled there from the start: no second search, no calls queued again.
    assert second.tuning.value == first.tuning.value
    assert [v for v, _ in second.tuning.tried] == [first.tuning.value]


def test_a_run_that_ended_still_growing_starts_the_next_further_on() -> None:
    # 150 calls end before the slow start reaches the top: the next epoch
    # starts where a latency more of growth would have taken it.
    pipeline = snake.from_iterable(range(150)).par_then(service(None), concurrency="auto")
    _, [first] = tuned(pipeline)
    _, [second] = tuned(pipeline)
    assert first.tuning is not None
    assert second.tuning is not None
    assert first.tuning.why.startswith("starting"), first.tuning
    ended = first.tuning.value
    assert PAR_THEN_START < ended <= PAR_THEN_MOST // 4
    grown = 4 * ended
    assert (
        second.tuning.why == f"starting from {grown}: its last run ended at {ended}, still growing"
    )
