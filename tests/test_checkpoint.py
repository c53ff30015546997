"""Exact checkpoint and resume: stop anywhere, resume to exactly the rest of the run.

The property: random pipelines from the operator table, random per-item
delays on the autojump clock, the consumer stopped at 1-3 points weighted
towards the edges; at each a JSON round trip of ``state_dict()`` and a
resume. Ordered pipelines give exactly the uninterrupted run; pipelines
with a stage that reorders give each item once (compared as multisets,
batches flattened).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import checkpoint_script
import pytest
import trio
import trio.testing
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from operators import OPERATORS, Draws, Example, examples

import snake

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

delays = st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.5]), min_size=1, max_size=4)

#: Rows that keep their items' order from run to run (given their seed).
STEADY = [
    row
    for row in OPERATORS
    if not row.processes
    and not row.endless
    and row.name not in ("merge", "to_device", "through")  # through: cannot save
    and (row.ordered or row.name in ("shuffle", "mix"))
]
#: Rows that give their items in an order that may change from run to run.
REORDERING = [
    row
    for row in OPERATORS
    if not row.ordered and row.name in ("par_then", "par_map", "merge", "interleave")
]
REORDERING = [row for row in REORDERING if not row.processes]
#: Rows that may follow one of those: what they make of each item is the
#: item's own (so the items are the same, in any order; batches are
#: compared flat, so here they are lists).
ITEMWISE = [row for row in STEADY if row.name in ("map", "filter", "then", "par_then", "par_map")]
ITEMWISE += [row for row in STEADY if row.name == "prefetch"]


def lists_of(size: int) -> Example:
    return Example(f"batch({size})", lambda p: p.batch(size), lambda it: it)


class Records:
    """A source that saves its own position (``iter_from``): here, an index in a list."""

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[int]:
        return self.iter_from(0)

    def iter_from(self, position: Any) -> Iterator[int]:
        return _Reader(self.items, int(position))


class _Reader:
    def __init__(self, items: list[int], at: int) -> None:
        self._items, self._at = items, at

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> int:
        if self._at >= len(self._items):
            raise StopIteration
        self._at += 1
        return self._items[self._at - 1]

    def position(self) -> int:
        return self._at


class Again:
    """A re-iterable source that is no sequence: resumed by reading again."""

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[int]:
        return iter(self.items)


SOURCES = {"list": list, "range": None, "records": Records, "again": Again, "permuted": None}


def source(kind: str, n: int) -> Iterable[int]:
    if kind == "range":
        return range(n)
    return SOURCES[kind](list(range(n)))  # type: ignore[no-any-return, misc]


def build(kind: str, n: int, chain: list[Example]) -> snake.Pipeline[Any]:
    random.seed(1234)  # unseeded shuffles and mixes draw their seed from it
    if kind == "permuted":  # a shuffle of the indices of a sequence
        pipeline = snake.from_iterable(range(n)).shuffle()
    else:
        pipeline = snake.from_iterable(source(kind, n))
    for op in chain:
        pipeline = op.add(pipeline)
    return pipeline


def run(make: Any, stops: list[int]) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
    """The uninterrupted run, and the run stopped at ``stops`` (counts of items
    taken in each segment) and resumed each time; with the states saved."""

    async def main() -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
        full = await make().collect(epoch=0)
        got: list[Any] = []
        states: list[dict[str, Any]] = []
        state: dict[str, Any] | None = None
        for k in stops:
            opened = make().open(epoch=0) if state is None else make().open(state=state)
            async with opened as items:
                if state is not None:
                    assert items.state_dict() == state  # right after a resume: the loaded one
                for _ in range(k):
                    try:
                        got.append(await items.receive())
                    except trio.EndOfChannel:
                        break
                saved = items.state_dict()
                assert items.state_dict() == saved  # idempotent
            state = json.loads(json.dumps(saved))
            states.append(state)
        assert state is not None
        got += await make().collect(state=state)
        return full, got, states

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def flat(items: Iterable[Any]) -> Counter[Any]:
    out: Counter[Any] = Counter()
    for x in items:
        if isinstance(x, list):
            out.update(flat(x))
        else:
            out[x if not isinstance(x, tuple) else repr(x)] += 1
    return out


#: What follows a reordering stage: item by item, another stage that
#: reorders (not interleave: its items are not its input's), and maybe a
#: batch at the end.
AGAIN = [row for row in REORDERING if row.name in ("par_then", "par_map")]
after_reordering = st.tuples(
    st.lists(
        st.one_of(examples(ITEMWISE, Draws(delays=delays)), examples(AGAIN, Draws(delays=delays))),
        max_size=3,
    ),
    st.lists(st.builds(lists_of, st.integers(1, 5)), max_size=1),
).map(lambda pair: pair[0] + pair[1])
#: Items taken before each save: weighted towards the edges (nothing, one
#: item), the operators' sizes and their neighbours (batches and buffers of
#: 1 to 6 and 50, chunks of 16), and anywhere up to past the end.
EDGES = sorted({0, 1} | {k + d for k in (2, 3, 4, 5, 6, 16, 32, 50) for d in (-1, 0, 1)})
stops = st.lists(st.one_of(st.sampled_from(EDGES), st.integers(0, 200)), min_size=1, max_size=3)
kinds = st.sampled_from(sorted(SOURCES))


@settings(max_examples=300, deadline=None)
@given(
    kinds,
    st.integers(0, 150),
    st.lists(examples(STEADY, Draws(delays=delays)), max_size=5),
    stops,
)
def test_an_ordered_pipeline_resumes_to_exactly_the_rest_of_its_run(
    kind: str, n: int, chain: list[Example], segments: list[int]
) -> None:
    full, got, _ = run(lambda: build(kind, n, chain), segments)
    assert got == full


@settings(max_examples=150, deadline=None)
@given(
    kinds,
    st.integers(0, 150),
    st.lists(examples(STEADY, Draws(delays=delays)), max_size=3),
    examples(REORDERING, Draws(delays=delays)),
    after_reordering,
    stops,
)
def test_an_unordered_pipeline_resumes_giving_each_item_once(
    kind: str,
    n: int,
    before: list[Example],
    reordering: Example,
    after: list[Example],
    segments: list[int],
) -> None:
    # Only a par_then or par_map takes back the items the stages after it
    # delivered; after merge or interleave, a second reordering stage is refused.
    again = any("ordered=False" in op.label for op in after)
    assume(not again or reordering.label.startswith("par_"))
    chain = [*before, reordering, *after]
    full, got, _ = run(lambda: build(kind, n, chain), segments)
    assert flat(got) == flat(full)


def test_a_state_at_the_end_resumes_to_nothing() -> None:
    pipeline = snake.from_iterable(range(10)).map(lambda x: x + 1).shuffle(4, seed=1).batch(3)
    it = pipeline.iterate()
    assert len(list(it)) == 4
    state = it.state_dict()
    assert list(pipeline.iterate(state=state)) == []


def test_the_sync_iterator_saves_and_resumes_as_the_receiver_does() -> None:
    pipeline = snake.from_iterable(range(100)).shuffle(10, seed=3).batch(4).enumerate()
    full = list(pipeline.iterate(epoch=2))
    for k in (0, 1, 5, 24, 25):
        it = pipeline.iterate(epoch=2)
        head = [next(it) for _ in range(k)]
        state = json.loads(json.dumps(it.state_dict()))
        it.close()
        assert state["epoch"] == 2
        assert head + list(pipeline.iterate(state=state)) == full


# --- concurrency may change; the pipeline may not ------------------------------


async def _slow_identity(x: int) -> int:
    await trio.sleep(0.001 * (x % 7))
    return x


def _concurrent(concurrency: int, ordered: bool, executor: str) -> snake.Pipeline[Any]:
    return (
        snake.from_iterable(range(60))
        .par_then(_slow_identity, concurrency=concurrency, ordered=ordered)
        .par_map(abs, concurrency=concurrency, ordered=ordered, executor=executor)
        .prefetch(concurrency)
        .batch(3)
    )


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(1, 8),
    st.booleans(),
    st.sampled_from(["thread", "inline"]),
    st.integers(0, 20),
)
def test_a_run_resumes_with_other_concurrency_executor_and_prefetch(
    before: int, after: int, ordered: bool, executor: str, stop: int
) -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        async with _concurrent(before, ordered, "thread").open(epoch=0) as items:
            head = [await items.receive() for _ in range(stop)]
            state = json.loads(json.dumps(items.state_dict()))
        # An inline map keeps its order.
        again = _concurrent(after, ordered, executor if ordered else "thread")
        rest = await again.collect(state=state)
        return head, rest

    head, rest = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    if ordered:
        assert head + rest == list(snake.from_iterable(range(60)).batch(3))
    else:
        assert sorted(flat(head + rest).elements()) == list(range(60))


def test_a_state_of_another_pipeline_is_refused_naming_what_differs() -> None:
    state = snake.from_iterable(range(10)).batch(4).iterate().state_dict()
    with pytest.raises(snake.StateMismatchError, match=r"operator 2 was batch\(4\).*batch\(5\)"):
        snake.from_iterable(range(10)).batch(5).iterate(state=state)
    with pytest.raises(snake.StateMismatchError, match=r"range of 10\).*range of 11\)"):
        snake.from_iterable(range(11)).batch(4).iterate(state=state)
    with pytest.raises(snake.StateMismatchError, match="2 operators, this one has 3"):
        snake.from_iterable(range(10)).batch(4).map(str).iterate(state=state)
    with pytest.raises(snake.StateMismatchError, match="format"):
        snake.from_iterable(range(10)).batch(4).iterate(state={**state, "snake_state": 99})
    with pytest.raises(snake.StateMismatchError, match="epoch"):
        snake.from_iterable(range(10)).batch(4).iterate(state=state, epoch=3)
    with pytest.raises(snake.StateMismatchError, match="what state_dict"):
        snake.from_iterable(range(10)).iterate(state=[1, 2])
    damaged = {**state, "operators": state["operators"][:1]}
    with pytest.raises(snake.StateMismatchError, match="incomplete or damaged"):
        snake.from_iterable(range(10)).batch(4).iterate(state=damaged)
    # Holding nothing, a prefetch may come and go.
    assert list(snake.from_iterable(range(10)).prefetch(3).batch(4).iterate(state=state)) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]


def test_a_one_shot_iterator_cannot_be_resumed_past_its_start() -> None:
    it = snake.from_iterable(iter(range(10))).iterate()
    assert [next(it), next(it)] == [0, 1]
    state = it.state_dict()
    it.close()
    with pytest.raises(RuntimeError, match="one-shot iterator"):
        list(snake.from_iterable(iter(range(10))).iterate(state=state))


@pytest.mark.parametrize(
    ("pipeline", "why"),
    [
        (
            snake.from_iterable(range(9)).par_then(_slow_identity, ordered=False).shuffle(3),
            "shuffle.*comes after #1 par_then",
        ),
        (
            snake.from_iterable(range(9)).par_map(abs, ordered=False).flat_map(lambda x: [x]),
            "flat_map.*comes after #1 par_map",
        ),
        (
            snake.merge(snake.from_iterable(range(9))).par_map(abs, ordered=False),
            "par_map.*reorders items after #0 merge",
        ),
        (
            snake.from_iterable(range(9)).par_map(abs, ordered=False).shard(0, 1),
            "shard.*comes after #1 par_map",
        ),
    ],
)
def test_a_pipeline_that_cannot_save_its_position_says_why(
    pipeline: snake.Pipeline[Any], why: str
) -> None:
    it = pipeline.iterate()
    try:
        with pytest.raises(RuntimeError, match=why):
            it.state_dict()
        assert len(list(it)) == 9  # it runs as ever
    finally:
        it.close()


def test_skipped_items_count_against_the_budget_across_a_resume() -> None:
    def fails_on_threes(x: int) -> int:
        if x % 3 == 0:
            raise ValueError(x)
        return x

    def pipeline() -> snake.Pipeline[int]:
        return snake.from_iterable(range(30)).par_map(
            fails_on_threes, executor="thread", errors="skip"
        )

    it = pipeline().iterate()
    head = [next(it) for _ in range(6)]  # 1 2 4 5 7 8: three skipped (0, 3, 6)
    state = it.state_dict()
    it.close()
    assert head == [1, 2, 4, 5, 7, 8]
    assert state["operators"][1] == {"at": 9, "own": {"skipped": 3}}

    async def rest() -> tuple[list[int], int]:
        async with pipeline().open(state=state) as items:
            got = [x async for x in items]
            return got, items.statistics().stages[1].skipped

    got, skipped = trio.run(rest)
    assert got == [x for x in range(9, 30) if x % 3]
    assert skipped == 10  # the three before the save, and seven after


def test_a_state_holds_positions_so_its_size_does_not_grow_with_the_data() -> None:
    def saved_at_half(n: int) -> int:
        it = snake.from_iterable(range(n)).map(str).shuffle(100, seed=1).batch(8).iterate()
        for _ in range(n // 16):
            next(it)
        state = it.state_dict()
        it.close()
        return len(json.dumps(state))

    small, large = saved_at_half(10_000), saved_at_half(100_000)
    # Positions, never items: only the positions' digits grow.
    assert large <= small * 1.25
    assert large < 2_000


class Counted:
    """A map-style dataset that counts the items read from it, and may fail on one."""

    def __init__(self, n: int, fails: int | None = None) -> None:
        self.n, self.fails, self.reads = n, fails, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        self.reads += 1
        if i == self.fails:
            raise KeyError(i)
        return i


def test_a_shuffle_right_after_a_sequence_reads_only_its_slots_again() -> None:
    data = Counted(2_000)
    pipeline = snake.from_iterable(data).shuffle(100, seed=2).batch(10)
    full = list(pipeline.iterate(epoch=0))
    it = pipeline.iterate(epoch=0)
    head = [next(it) for _ in range(150)]
    state = json.loads(json.dumps(it.state_dict()))
    it.close()
    # The source goes on from where the shuffle was, not from its oldest slot.
    assert state["operators"][0]["at"] == 100 + 1_500
    assert state["operators"][1]["own"]["read"] is True
    data.reads = 0
    assert head + list(pipeline.iterate(state=state)) == full
    assert data.reads == 100 + 400  # the slots' items, then the rest of the epoch

    # After a map, the shuffle's input is no source's item: read from the oldest slot.
    mapped = snake.from_iterable(data).map(int).shuffle(100, seed=2).batch(10)
    it = mapped.iterate(epoch=0)
    head = [next(it) for _ in range(150)]
    state = it.state_dict()
    it.close()
    assert state["operators"][0]["at"] == min(state["operators"][2]["own"]["slots"])
    assert head + list(mapped.iterate(state=state)) == full


def test_an_item_that_fails_as_a_resumed_shuffle_reads_it_again_names_the_source() -> None:
    pipeline = snake.from_iterable(Counted(500)).shuffle(50, seed=1)
    it = pipeline.iterate()
    for _ in range(100):
        next(it)
    state = it.state_dict()
    it.close()
    slot = min(state["operators"][1]["own"]["slots"])
    failing = snake.from_iterable(Counted(500, fails=slot)).shuffle(50, seed=1)
    with pytest.raises(KeyError) as caught:
        list(failing.iterate(state=state))
    assert any(
        "#0 from_iterable(Counted)" in note and str(slot) in note for note in caught.value.__notes__
    )


def test_a_source_that_says_its_own_position_resumes_from_it() -> None:
    opened: list[Any] = []

    class Tracked(Records):
        def iter_from(self, position: Any) -> Iterator[int]:
            opened.append(position)
            return super().iter_from(position)

    pipeline = snake.from_iterable(Tracked(list(range(50)))).batch(4)
    full = list(pipeline)
    it = pipeline.iterate()
    head = [next(it) for _ in range(3)]
    state = it.state_dict()
    it.close()
    assert state["operators"][0]["at"] <= 12  # a mark at or before the 13th record
    opened.clear()
    assert head + list(pipeline.iterate(state=state)) == full
    assert opened == [state["operators"][0]["own"]]  # from its own position, once


# --- StatefulLoader: PyTorch's checkpointing protocol --------------------------


def test_a_stateful_loader_is_what_torch_checkpointing_saves_and_loads() -> None:
    stateful = pytest.importorskip("torch.distributed.checkpoint.stateful")
    pipeline = snake.from_iterable(range(40)).shuffle(10, seed=5).batch(4)
    loader = snake.StatefulLoader(pipeline)
    assert isinstance(loader, stateful.Stateful)
    assert len(loader) == 10
    epoch0 = list(loader)
    assert loader.state_dict() == {"epoch": 1}  # ended: the next starts epoch 1
    it = iter(loader)
    head = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(loader.state_dict()))
    with pytest.raises(RuntimeError, match="being iterated"):
        loader.load_state_dict(state)  # never applied later than asked
    it.close()

    again = snake.StatefulLoader(pipeline)
    again.load_state_dict(state)
    assert again.state_dict() == state  # pending, as loaded
    assert head + list(again) == list(pipeline.iterate(epoch=1))
    assert list(again) == list(pipeline.iterate(epoch=2))  # then the next epoch
    assert epoch0 == list(pipeline.iterate(epoch=0))


def test_a_state_from_another_pipeline_fails_at_the_next_iteration() -> None:
    state = snake.StatefulLoader(snake.from_iterable(range(4)))
    it = iter(state)
    next(it)
    saved = state.state_dict()
    it.close()
    other = snake.StatefulLoader(snake.from_iterable(range(5)))
    other.load_state_dict(saved)
    with pytest.raises(snake.StateMismatchError, match="range of 4"):
        iter(other)


# --- shuffle(): a permutation of a sequence's indices --------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**32), st.integers(0, 5))
def test_an_index_shuffle_is_a_permutation_per_seed_and_epoch(
    n: int, seed: int, epoch: int
) -> None:
    pipeline = snake.from_iterable(range(n)).shuffle(seed=seed)
    order = list(pipeline.iterate(epoch=epoch))
    assert sorted(order) == list(range(n))
    assert order == list(pipeline.iterate(epoch=epoch))  # the same seed and epoch: again
    if n >= 8:
        assert order != list(pipeline.iterate(epoch=epoch + 1))  # another each epoch


def test_an_index_shuffle_moves_items_anywhere_and_resumes_at_once() -> None:
    n = 1000
    firsts = Counter(next(iter(snake.from_iterable(range(n)).shuffle(seed=s))) for s in range(300))
    assert len(firsts) > 200  # not a local shuffle: the first item comes from anywhere
    pipeline = snake.from_iterable(range(n)).shuffle(seed=3).batch(10)
    it = pipeline.iterate()
    for _ in range(90):
        next(it)
    state = it.state_dict()
    it.close()
    assert state["operators"] == [{"at": 900}, {"at": 900}]  # one index, nothing replayed
    assert list(pipeline.iterate(state=state)) == list(pipeline.iterate(epoch=0))[90:]


def test_shuffle_without_a_size_needs_a_sequence_right_before_it() -> None:
    with pytest.raises(TypeError, match="right after from_iterable"):
        snake.from_iterable(range(3)).map(str).shuffle()
    with pytest.raises(TypeError, match="give a buffer size"):
        snake.from_iterable(x for x in range(3)).shuffle()


# --- worker processes, and a fresh program ------------------------------------


def _script(tmp_path: Path, *args: str) -> list[Any]:
    script = Path(__file__).with_name("checkpoint_script.py")
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("stop", [1, 13])
def test_a_fresh_program_resumes_a_process_map_with_jobs_in_flight(
    tmp_path: Path, stop: int
) -> None:
    whole = _script(tmp_path, "whole")
    head = _script(tmp_path, "save", "state.json", str(stop))
    rest = _script(tmp_path, "resume", "state.json")
    assert head + rest == whole
    assert len(json.dumps(json.loads((tmp_path / "state.json").read_text()))) < 1_500


def _squares(ordered: bool) -> snake.Pipeline[Any]:
    return (
        snake.from_iterable(range(400))
        .par_map(checkpoint_script.slow_square, concurrency=2, ordered=ordered)
        .batch(8)
    )


@pytest.mark.parametrize("ordered", [True, False])
def test_a_process_map_saved_with_jobs_in_flight_resumes_exactly(ordered: bool) -> None:
    it = _squares(ordered).iterate()
    head = [next(it) for _ in range(9)]
    state = json.loads(json.dumps(it.state_dict()))
    it.close()
    rest = list(_squares(ordered).iterate(state=state))
    if ordered:
        assert head + rest == list(snake.from_iterable(range(400)).map(lambda x: x * x).batch(8))
    else:
        assert sorted(flat(head + rest).elements()) == [x * x for x in range(400)]


def test_states_taken_all_along_a_long_run_each_resume_exactly() -> None:
    # Many chunks: the operators forget positions behind the consumer as it
    # goes (from the pipeline's thread), while states are taken from this one.
    def pipeline() -> snake.Pipeline[Any]:
        return (
            snake.from_iterable(range(60_000))
            .filter(lambda x: x % 7 != 3)
            .shuffle(300, seed=4)
            .par_map(abs, executor="thread")
            .batch(5)
        )

    full = list(pipeline().iterate(epoch=0))
    it = pipeline().iterate(epoch=0)
    states = {}
    for k in range(len(full)):
        if k % 997 == 0:
            states[k] = json.loads(json.dumps(it.state_dict()))
        assert next(it) == full[k]
    for k in (0, 997 * 5, max(states)):
        assert list(pipeline().iterate(state=states[k])) == full[k:]


async def _identity(x: int) -> int:
    return x


def test_a_state_after_every_item_of_the_synchronous_iterator_resumes_exactly() -> None:
    # The operators forget positions behind the consumer as the pipeline's
    # thread reads ahead, while the consumer's states ask of later ones.
    pipeline = (
        snake.from_iterable(range(20_000))
        .par_then(_identity, concurrency=4)  # small chunks: many of them
        .shuffle(200, seed=0)
        .batch(8)
    )
    full = list(pipeline.iterate(epoch=0))
    it = pipeline.iterate(epoch=0)
    states = []
    for _ in it:
        states.append(it.state_dict())
    for state in states[::61]:
        resumed = pipeline.iterate(state=state)
        assert next(resumed, None) == [*full, None][state["position"]]
        resumed.close()
