"""shuffle, shard and repeat: permutations, partitions and passes, property-tested."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import snake

items = st.lists(st.integers(), max_size=300)


def run(pipeline: snake.Pipeline[Any]) -> list[Any]:
    return trio.run(pipeline.collect)


@given(items, st.integers(1, 50), st.integers(0, 2**32))
def test_shuffle_is_a_reproducible_permutation_bounded_by_its_buffer(
    data: list[int], size: int, seed: int
) -> None:
    tagged = list(enumerate(data))
    got = run(snake.from_iterable(tagged).shuffle(size, seed=seed))
    assert sorted(got) == tagged
    assert got == run(snake.from_iterable(tagged).shuffle(size, seed=seed))
    for out_position, (in_position, _) in enumerate(got):
        assert out_position >= in_position - size  # it left after its arrival


@given(st.lists(st.integers(), min_size=1, max_size=50), st.integers(0, 4), st.integers(0, 99))
def test_repeat_gives_k_passes_each_reshuffled_from_seed_and_epoch(
    data: list[int], k: int, seed: int
) -> None:
    got = run(snake.from_iterable(data).shuffle(len(data), seed=seed).repeat(k))
    assert len(got) == k * len(data)
    passes = [got[e * len(data) : (e + 1) * len(data)] for e in range(k)]
    assert all(sorted(p) == sorted(data) for p in passes)
    again = run(snake.from_iterable(data).shuffle(len(data), seed=seed).repeat(k))
    assert got == again  # the same seed: the same epochs


def test_epochs_are_shuffled_differently() -> None:
    data = list(range(100))
    got = run(snake.from_iterable(data).shuffle(100, seed=7).repeat(3))
    passes = [got[:100], got[100:200], got[200:]]
    assert len({tuple(p) for p in passes}) == 3
    assert run(snake.from_iterable(data).shuffle(100, seed=7)) == passes[0]  # epoch 0


@given(items, st.integers(1, 7), st.sampled_from([None, "drop", "pad"]))
def test_shards_partition_the_items(data: list[int], count: int, equal: Any) -> None:
    tagged = list(enumerate(data))
    shards = [run(snake.from_iterable(tagged).shard(i, count, equal=equal)) for i in range(count)]
    for i, shard in enumerate(shards):
        kept = [t for t in tagged if t[0] % count == i]
        if equal is None:
            assert shard == kept
        elif equal == "drop":
            assert len(shard) == len(data) // count
            assert shard == kept[: len(shard)]
        else:  # padded from the start of the stream, as DistributedSampler does
            place = len(data) % count
            pad = [tagged[(i - place) % min(count, len(data))]] if place and i >= place else []
            assert shard == kept + pad
            assert len(shard) == math.ceil(len(data) / count)
    if equal is None:
        assert sorted(t for s in shards for t in s) == tagged  # disjoint and complete


def test_shard_without_arguments_reads_rank_and_world_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert run(snake.from_iterable(range(12)).shard()) == [2, 6, 10]
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert run(snake.from_iterable(range(3)).shard()) == [0, 1, 2]  # a single process


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RANK": "1"}, "set both or neither"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "must be whole numbers"),
        ({"RANK": "4", "WORLD_SIZE": "4"}, r"index 4 is out of range for 4 shards \(from RANK"),
    ],
)
def test_inconsistent_rank_settings_are_refused_when_built(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        snake.from_iterable(range(3)).shard()


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda p: p.shard(1), TypeError, "both `index` and `count`, or neither"),
        (lambda p: p.shard(3, 3), ValueError, "index 3 is out of range for 3 shards"),
        (lambda p: p.shard(0, 2, equal="all"), ValueError, "`equal` must be 'drop' or 'pad'"),
        (lambda p: p.shuffle(0), ValueError, "`buffer_size` must be >= 1"),
        (lambda p: p.shuffle(4, seed=1.5), TypeError, "`seed` must be an int"),
        (lambda p: p.repeat(-1), ValueError, "`times` must be >= 0"),
    ],
)
def test_bad_arguments_are_refused_when_built(build: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        build(snake.from_iterable(range(3)))


def test_repeat_refuses_a_source_that_one_pass_uses_up() -> None:
    with pytest.raises(
        TypeError, match=r"repeat\(\) runs the source again each epoch, but generator"
    ):
        snake.from_iterable(x for x in range(3)).repeat(2)


async def test_stages_before_repeat_see_the_epoch() -> None:
    async def tag(x: int) -> tuple[int, int]:
        return snake.current_epoch(), x

    got = await snake.from_iterable(range(2)).then(tag).repeat(3).collect()
    assert got == [(e, x) for e in range(3) for x in range(2)]


async def test_take_after_repeat_forever_stops() -> None:
    got = await snake.from_iterable(range(3)).repeat().take(7).collect()
    assert got == [0, 1, 2, 0, 1, 2, 0]
