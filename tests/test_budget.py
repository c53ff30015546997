"""``prefetch("auto")`` and ``memory_budget=``: sizes found while a run goes,
within the bytes the user allows.

On trio's autojump clock: a call of ``seconds`` costs none, and what the
tuners choose is deterministic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import trio
import trio.testing

import snake
from snake._stages._prefetch import AUTO_BYTES, AUTO_START

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

MiB = 2**20


def made_in(seconds: float, size: int = 0) -> Callable[[int], Awaitable[Any]]:
    """A call that takes ``seconds`` and gives ``x`` (or ``size`` bytes)."""

    async def call(x: int) -> Any:
        await trio.sleep(seconds)
        return np.zeros(size, np.uint8) if size else x

    return call


def consumed(
    pipeline: snake.Pipeline[Any], step: float, burst: int = 1, **options: Any
) -> tuple[float, list[snake.StageStatistics], int]:
    """Take ``burst`` items at a time, then spend ``step`` seconds on them:
    the run's seconds, its stages at the end, and the most calls or jobs an
    ``"auto"`` parallel stage had in its window (its ``in_flight``)."""

    async def main() -> tuple[float, list[snake.StageStatistics], int]:
        began, most = trio.current_time(), 0
        async with pipeline.open(**options) as items:
            k = 0
            async for _ in items:
                k += 1
                for stage in items.statistics().stages:
                    if stage.tuning is not None and stage.in_flight is not None:
                        most = max(most, stage.in_flight)
                if k % burst == 0:
                    await trio.sleep(step)
            stages = items.statistics().stages
        return trio.current_time() - began, stages, most

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def tuning(stages: list[snake.StageStatistics], setting: str) -> snake.TuningStatistics:
    [found] = [s.tuning for s in stages if s.tuning is not None and s.tuning.setting == setting]
    return found


# --- prefetch("auto") ----------------------------------------------------------


def test_prefetch_auto_grows_to_cover_a_consumer_that_takes_bursts() -> None:
    # 1,280 items of a MiB made at 10 ms each (12.8 s); taken 64 at a time,
    # each burst then 640 ms of work (12.8 s): overlapped, about 12.8 s.
    # Items of a MiB travel one at a time: the channels hold few of them.
    def pipeline(n: int | str) -> snake.Pipeline[int]:
        made = snake.from_iterable(range(1_280)).then(made_in(0.01, MiB))
        return made.prefetch(n)  # type: ignore[arg-type]

    auto_seconds, stages, _ = consumed(pipeline("auto"), 0.64, burst=64)
    fixed_seconds, _, _ = consumed(pipeline(AUTO_START), 0.64, burst=64)
    found = tuning(stages, "prefetch")
    assert found.value >= 64, found
    assert found.why.startswith("grown to"), found
    assert found.line().startswith("prefetch auto: ")
    # Its first bursts find it small: about 2 s lost while it grows.
    assert auto_seconds < 1.2 * 12.8
    assert fixed_seconds > 1.4 * auto_seconds, (fixed_seconds, auto_seconds)


@pytest.mark.parametrize(("make", "take"), [(0.001, 0.01), (0.01, 0.001)])
def test_prefetch_auto_keeps_its_size_when_more_room_would_not_help(
    make: float, take: float
) -> None:
    # A steady consumer slower than the producer keeps it full; one faster
    # keeps it empty: neither a full buffer drained by a burst.
    pipeline = snake.from_iterable(range(500)).then(made_in(make)).prefetch("auto")
    _, stages, _ = consumed(pipeline, take)
    found = tuning(stages, "prefetch")
    assert found.value == AUTO_START, found
    assert found.why == f"starting at {AUTO_START} items"


def test_prefetch_auto_holds_no_more_bytes_than_allowed() -> None:
    # Bursts of 64 large items: it would grow past 64, but 8 MiB of them fit.
    pipeline = snake.from_iterable(range(600)).then(made_in(0.01, MiB)).prefetch("auto")
    _, stages, _ = consumed(pipeline, 0.64, burst=64, memory_budget=8 * MiB)
    found = tuning(stages, "prefetch")
    assert found.value == 8, found
    assert found.why.endswith("; 8 of these items fill its bytes"), found
    # Without a budget, its own bound in bytes.
    _, stages, _ = consumed(pipeline, 0.64, burst=64)
    assert 32 <= tuning(stages, "prefetch").value <= AUTO_BYTES // MiB


def test_prefetch_auto_is_described_and_checked() -> None:
    pipeline = snake.from_iterable([1, 2]).prefetch("auto")
    assert pipeline.describe().splitlines()[-1] == '#1 prefetch("auto")'
    assert list(pipeline) == [1, 2]
    with pytest.raises(ValueError, match="`n` must be an int >= 1 or \"auto\", got 'Auto'"):
        snake.from_iterable([1]).prefetch("Auto")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`n` must be >= 1, got 0"):
        snake.from_iterable([1]).prefetch(0)


# --- memory_budget= ---------------------------------------------------------------


def test_a_tuned_stage_holds_no_more_than_the_budget() -> None:
    # Results of 256 KiB from calls that do not compete: the tuner would
    # grow to 1,024 calls, 256 MiB of results; 8 MiB hold 32.
    pipeline = snake.from_iterable(range(3_000)).par_then(
        made_in(0.05, MiB // 4), concurrency="auto"
    )
    _, stages, most = consumed(pipeline, 0.0, memory_budget=8 * MiB)
    found = tuning(stages, "concurrency")
    assert found.value == 32, found
    assert "memory budget" in found.why, found
    assert 16 < most <= 32  # it grew past its start, and held no more than fit


def test_the_budget_is_shared_by_the_auto_stages() -> None:
    pipeline = (
        snake.from_iterable(range(2_000))
        .par_then(made_in(0.05, MiB // 4), concurrency="auto")
        .prefetch("auto")
    )
    _, stages, _ = consumed(pipeline, 0.64, burst=64, memory_budget=8 * MiB)
    assert tuning(stages, "concurrency").value <= 16  # 4 MiB each
    assert tuning(stages, "prefetch").value <= 16


@pytest.mark.parametrize(
    ("budget", "error", "match"),
    [
        (0, ValueError, "`memory_budget` must be >= 1, got 0"),
        ("1GB", TypeError, "`memory_budget` must be an int, got str '1GB'"),
        (2**30, ValueError, 'this pipeline has none: give a stage `concurrency="auto"`'),
    ],
)
def test_a_bad_budget_is_refused_when_the_run_starts(budget: Any, error: type, match: str) -> None:
    fixed = snake.from_iterable([1]).par_then(made_in(0.0), concurrency=4)
    with pytest.raises(error, match=match):
        fixed.iterate(memory_budget=budget)
    with pytest.raises(error, match=match):
        fixed.open(memory_budget=budget)


def test_prefetch_auto_starts_the_next_epoch_at_the_size_it_grew_to() -> None:
    pipeline = snake.from_iterable(range(640)).then(made_in(0.01, MiB)).prefetch("auto")
    first_seconds, first, _ = consumed(pipeline, 0.64, burst=64)
    second_seconds, second, _ = consumed(pipeline, 0.64, burst=64)
    grown = tuning(first, "prefetch").value
    assert grown >= 64
    again = tuning(second, "prefetch")
    assert again.why == f"starting from {grown} items, where its last run ended", again
    assert again.value == grown
    assert second_seconds < 0.9 * first_seconds  # no bursts lost to growing
