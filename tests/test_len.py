"""``len(pipeline)``: the number of items a run gives, where the operators say it.

The property test builds random chains of the operators that keep the length
known over a list of random length and runs them; the others are refused
with a ``TypeError`` naming the operator. The progress display shows the
length as its total.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

import attrs
import fake_torch
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import snake

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

P = snake.from_iterable
EXAMPLES = settings().max_examples or 100


async def same(x: Any) -> Any:
    return x


def identity(x: Any) -> Any:
    return x


def run(pipeline: snake.Pipeline[Any]) -> list[Any]:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(pipeline.collect, clock=clock)


@attrs.frozen
class Op:
    """An operator to add to a pipeline, shown as written in hypothesis's reports."""

    text: str = attrs.field(repr=False)
    add: Callable[[snake.Pipeline[Any]], snake.Pipeline[Any]] = attrs.field(repr=False)

    def __repr__(self) -> str:
        return self.text


small = st.integers(0, 12)
others = st.lists(st.integers(), max_size=12)


def _inline() -> st.SearchStrategy[Op]:
    return st.one_of(
        st.just(Op(".map(identity)", lambda p: p.map(identity))),
        small.map(lambda s: Op(f".enumerate({s})", lambda p: p.enumerate(s))),
        small.map(lambda n: Op(f".take({n})", lambda p: p.take(n))),
        small.map(lambda n: Op(f".skip({n})", lambda p: p.skip(n))),
        st.tuples(st.integers(1, 7), st.booleans()).map(
            lambda a: Op(f".batch{a}", lambda p: p.batch(a[0], drop_last=a[1]))
        ),
        st.integers(1, 5).flatmap(
            lambda count: st.builds(
                _shard,
                st.just(count),
                st.integers(0, count - 1),
                st.sampled_from([None, "drop", "pad"]),
            )
        ),
        st.tuples(st.integers(1, 20), small).map(
            lambda a: Op(f".shuffle{a}", lambda p: p.shuffle(a[0], seed=a[1]))
        ),
    )


def _shard(count: int, index: int, equal: Any) -> Op:
    return Op(
        f".shard({index}, {count}, equal={equal!r})", lambda p: p.shard(index, count, equal=equal)
    )


def _stages() -> st.SearchStrategy[Op]:
    return st.one_of(
        st.just(Op(".then(same)", lambda p: p.then(same))),
        st.tuples(st.integers(1, 4), st.booleans()).map(
            lambda a: Op(
                f".par_then(same, concurrency={a[0]}, ordered={a[1]})",
                lambda p: p.par_then(same, concurrency=a[0], ordered=a[1]),
            )
        ),
        st.booleans().map(
            lambda o: Op(
                f'.par_map(identity, executor="thread", ordered={o})',
                lambda p: p.par_map(identity, executor="thread", ordered=o, concurrency=2),
            )
        ),
        st.just(
            Op(
                '.par_map(identity, executor="inline")',
                lambda p: p.par_map(identity, executor="inline"),
            )
        ),
        st.integers(1, 5).map(lambda n: Op(f".prefetch({n})", lambda p: p.prefetch(n))),
        st.integers(0, 3).map(lambda n: Op(f".repeat({n})", lambda p: p.repeat(n))),
    )


def _combined() -> st.SearchStrategy[Op]:
    """The pipeline so far with another one, a list's."""
    return st.one_of(
        others.map(lambda xs: Op(f"concat(p, P({xs}))", lambda p: snake.concat(p, P(xs)))),
        others.map(lambda xs: Op(f"concat(P({xs}), p)", lambda p: snake.concat(P(xs), p))),
        others.map(lambda xs: Op(f"zip(p, P({xs}))", lambda p: snake.zip(p, P(xs)))),
        others.map(lambda xs: Op(f"merge(p, P({xs}))", lambda p: snake.merge(p, P(xs)))),
        st.tuples(others, small).map(
            lambda a: Op(
                f"mix([p, P({a[0]})], [1, 2], seed={a[1]}, stop='all_exhausted')",
                lambda p: snake.mix([p, P(a[0])], [1, 2], seed=a[1], stop="all_exhausted"),
            )
        ),
    )


sized_ops = st.one_of(_inline(), _stages(), _combined())


@settings(max_examples=EXAMPLES * 3)
@given(st.lists(st.integers(), max_size=40), st.lists(sized_ops, max_size=6))
def test_len_is_the_number_of_items_a_run_gives(data: list[int], chain: list[Op]) -> None:
    pipeline = P(data)
    for op in chain:
        pipeline = op.add(pipeline)
    assert len(pipeline) == len(run(pipeline))


#: Operators that keep endless items endless: all but take.
endless_ops = _inline().filter(lambda op: not op.text.startswith(".take"))


@given(
    st.lists(st.integers(), min_size=1, max_size=10),
    st.lists(endless_ops, max_size=3),
    st.integers(0, 50),
)
def test_take_after_an_endless_repeat_makes_len_known(
    data: list[int], chain: list[Op], n: int
) -> None:
    pipeline = P(data).repeat()
    for op in chain:
        pipeline = op.add(pipeline)
    with pytest.raises(TypeError, match=r"len\(\) is unknown: #0 .*\.repeat\(\) never ends"):
        len(pipeline)
    assert len(pipeline.take(n)) == n == len(run(pipeline.take(n)))


def test_process_maps_keep_len_known() -> None:
    pipeline = P(range(20)).par_map(abs, concurrency=2).batch(3).par_map(len, ordered=False)
    assert len(pipeline) == 7
    assert len(list(pipeline)) == 7


def test_sized_sources_of_every_kind() -> None:
    class Dataset:  # torch style: __len__ and __getitem__
        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int) -> int:
            if i >= 5:
                raise IndexError(i)
            return i * i

    class Channel:  # an async iterable that knows its length
        def __len__(self) -> int:
            return 3

        async def __aiter__(self) -> AsyncIterator[int]:
            for i in range(3):
                yield i

    for source, n in [(Dataset(), 5), (Channel(), 3), ({"a": 1, "b": 2}, 2), ("abcd", 4),
                      (range(10, 0, -3), 4), (range(5, 5), 0)]:  # fmt: skip
        pipeline = P(source).map(identity)
        assert len(pipeline) == n == len(list(pipeline))


def test_to_device_keeps_len_known() -> None:
    with fake_torch.installed():
        pipeline = P(range(4)).batch(3).to_device("cpu", pin_memory=False)
        assert len(pipeline) == 2 == len(list(pipeline))


def test_len_runs_nothing() -> None:
    calls: list[int] = []

    def gen() -> Iterator[int]:
        calls.append(0)
        yield 1

    source = gen()
    with pytest.raises(TypeError):
        len(P(source))
    assert len(P(range(3)).map(calls.append)) == 3
    assert calls == []
    assert list(P(source)) == [1]  # the generator is untouched


def test_a_range_longer_than_len_allows_has_a_length_still() -> None:
    huge = P(range(2**70))
    assert len(huge.take(5)) == 5
    assert len(huge.batch(2**10).skip(2**60 - 3)) == 3
    with pytest.raises(
        OverflowError, match=r"has 1,180,591,620,717,411,303,424 items, more than len\(\) can give"
    ):
        len(huge)


def gen_of(n: int) -> Iterator[int]:
    yield from range(n)


async def agen() -> AsyncIterator[int]:
    yield 1


def to_pipeline(x: int) -> snake.Pipeline[int]:
    return P(range(x))


class NoLen:
    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        raise TypeError("no length")


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (P(range(5)).map(identity).filter(bool), "#2 filter(bool) may drop items"),
        (P(["ab"]).flat_map(list), "#1 flat_map(list) yields as many items as fn returns for each"),
        (P([[1, 2]]).unbatch(), "#1 unbatch() yields as many items as its batches hold"),
        (P([1]).then(same, errors="skip"), '#1 then(same) skips the items that fail (errors="skip")'),
        (P([1]).par_then(same, errors="skip"), "#1 par_then(same) skips the items that fail"),
        (P([1]).par_map(abs, errors="skip"), "#1 par_map(abs) skips the items that fail"),
        (P([1]).par_map(abs, executor="inline", errors="skip"), "#1 par_map(abs) skips the items that fail"),
        (P(gen_of(3)), "#0 from_iterable(gen_of) has no len() (a generator): "
                       "start from one that has, such as a list, a range or a dataset with __len__"),
        (P(agen()), "#0 from_iterable(agen) has no len() (an async_generator)"),
        (P(NoLen()), "#0 from_iterable(NoLen) has no len() (a NoLen)"),
        (P(iter([1, 2])).batch(2), "#0 from_iterable(list_iterator) has no len()"),
        (P(range(3)).repeat().map(identity),
         "#0 from_iterable(range).repeat() never ends: give repeat() a number of times, "
         "or add .take(n) after it for n items"),
        (snake.mix([P([1]), P([2])], [1, 1]),
         "#0 mix([from_iterable(list), from_iterable(list)], [1.0, 1.0]) stops when a pipeline "
         'it draws from runs out, which its draws decide; with stop="all_exhausted" its length is known'),
        (P([1]).interleave(to_pipeline, cycle_length=2),
         "#1 interleave(to_pipeline) yields as many items as the pipelines fn returns hold"),
        (snake.concat(P([1]), P([2]).skip(1).filter(bool)),
         "#2 filter(bool), in pipeline 2 of #0 concat(from_iterable(list), "
         "from_iterable(list).skip(1).filter(bool)), may drop items"),
        (snake.zip(P([1]), P(range(2)).filter(bool).repeat(2)),
         "#1 filter(bool), in #0 from_iterable(range).filter(bool).repeat(2), in pipeline 2 of "
         "#0 zip(from_iterable(list), from_iterable(range).filter(bool).repeat(2)), may drop items"),
    ],
)  # fmt: skip
def test_an_unknown_len_names_the_operator_that_makes_it_so(
    pipeline: snake.Pipeline[Any], message: str
) -> None:
    with pytest.raises(TypeError) as raised:
        len(pipeline)
    assert str(raised.value).startswith("len() is unknown: " + message)


def test_what_keeps_it_unknown_or_makes_it_known_again() -> None:
    # The first operator that makes it unknown is named; a take after it
    # does not help, as the items before it may be fewer.
    with pytest.raises(TypeError, match=r"#1 filter\(bool\)"):
        len(P(range(9)).filter(bool).take(2).flat_map(list))
    # An endless repeat, or a pipeline of one, does not reach the pipelines after it.
    endless = P([1]).repeat()
    assert len(snake.concat(endless, P(gen_of(2))).take(4)) == 4
    assert len(snake.zip(endless, P([1, 2]))) == 2
    assert len(P(range(3)).filter(bool).repeat(0)) == 0
    assert len(endless.filter(bool).take(3)) == 3
    with pytest.raises(TypeError, match=r"#0 merge\(.*\) never ends"):
        len(snake.merge(endless, P([1])))


async def test_the_progress_line_shows_the_total(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    await P(range(1000)).then(same).batch(3).collect(progress=True)
    assert capsys.readouterr().err.splitlines()[-1].startswith("snake: 334/334 items, ")
    await P(range(1000)).filter(bool).collect(progress=True)
    assert capsys.readouterr().err.splitlines()[-1].startswith("snake: 999 items, ")


@attrs.define
class FakeTqdm:
    total: int | None = None
    n: int = 0
    closed: bool = False

    def update(self, n: int) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_a_tqdm_bar_gets_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeTqdm] = []

    def tqdm(*, total: int | None, **kwargs: Any) -> FakeTqdm:
        made.append(FakeTqdm(total))
        return made[-1]

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=tqdm))
    assert list(P(range(10)).shard(1, 4, equal="pad").iterate(progress=True)) == [1, 5, 9]
    assert list(P(gen_of(4)).iterate(progress=True)) == [0, 1, 2, 3]
    assert [(bar.total, bar.n, bar.closed) for bar in made] == [(3, 3, True), (None, 4, True)]


def test_a_pipeline_is_true_whatever_its_len() -> None:
    for pipeline in (P([]), P(gen_of(0)), P(range(2**70))):
        assert pipeline
