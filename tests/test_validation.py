"""Bad input is refused when the pipeline is built, with a message naming the fix."""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING, Any

import pytest

import snake

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

SRC = snake.from_iterable(range(3))


async def fetch(x: int) -> int:
    return x


def work(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: SRC.par_then(fetch, concurrency=0),
            ValueError,
            "`concurrency` must be >= 1, got 0",
        ),
        (
            lambda: SRC.par_map(work, concurrency=-2),
            ValueError,
            "`concurrency` must be >= 1, got -2",
        ),
        (
            lambda: SRC.par_then(fetch, concurrency=2.5),
            TypeError,
            "`concurrency` must be an int, got float 2.5",
        ),
        (
            lambda: SRC.par_then(fetch, concurrency=True),
            TypeError,
            "`concurrency` must be an int, got bool True",
        ),
        (
            lambda: SRC.par_map(work, ordered="yes"),
            TypeError,
            "`ordered` must be True or False, got str 'yes'",
        ),
        (
            lambda: SRC.par_map(work, executor="gpu"),
            ValueError,
            "`executor` must be 'process' or 'thread' or 'ray' or 'inline', got 'gpu'",
        ),
        (lambda: SRC.batch(0), ValueError, "`size` must be >= 1, got 0"),
        (
            lambda: SRC.batch(2, drop_last=1),
            TypeError,
            "`drop_last` must be True or False, got int 1",
        ),
        (
            lambda: SRC.batch(2, collate=5),
            TypeError,
            "batch() needs a callable `collate`, got int 5",
        ),
        (lambda: SRC.take(-1), ValueError, "`n` must be >= 0, got -1"),
        (lambda: SRC.skip("3"), TypeError, "`n` must be an int, got str '3'"),
        (lambda: SRC.prefetch(0), ValueError, "`n` must be >= 1, got 0"),
        (lambda: SRC.enumerate(start=1.0), TypeError, "`start` must be an int, got float 1.0"),
        (lambda: SRC.map(3), TypeError, "map() needs a callable `fn`, got int 3"),
        (
            lambda: SRC.filter(None),
            TypeError,
            "filter() needs a callable `pred`, got NoneType None",
        ),
        (
            lambda: snake.from_iterable(5),
            TypeError,
            "from_iterable() needs an iterable or an async iterable, got int 5",
        ),
    ],
)
def test_bad_arguments_are_refused_at_build_time(build: Any, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        build()
    assert str(info.value) == message


@pytest.mark.parametrize("method", ["map", "filter", "flat_map", "par_map"])
def test_an_async_function_where_a_sync_one_is_called_names_then_and_par_then(method: str) -> None:
    first = "par_then" if method == "par_map" else "then"
    with pytest.raises(TypeError, match=rf"fetch is an async function: use \.{first}\(fetch"):
        getattr(SRC, method)(fetch)
    with pytest.raises(TypeError, match=rf"partial\(fetch\) is an async function: use \.{first}\("):
        getattr(SRC, method)(functools.partial(fetch))


@pytest.mark.parametrize("method", ["then", "par_then"])
def test_a_sync_function_where_an_async_one_is_awaited_names_par_map_and_map(method: str) -> None:
    with pytest.raises(
        TypeError,
        match=r"work is a regular \(sync\) function: use \.par_map\(work\) .* \.map\(work\)",
    ):
        getattr(SRC, method)(work)
    with pytest.raises(TypeError, match=r"abs is a regular"):
        getattr(SRC, method)(abs)


def test_a_lambda_returning_a_coroutine_is_accepted_by_par_then() -> None:
    assert snake.from_iterable(range(3)).par_then(lambda x: fetch(x + 1)).collect  # builds


def test_a_function_that_cannot_be_pickled_is_refused_for_processes_only() -> None:
    lock = threading.Lock()

    def holds_a_lock(x: int) -> int:
        with lock:
            return x

    with pytest.raises(
        TypeError,
        match=r"par_map\(\) cannot send holds_a_lock to worker processes .* use executor=\"thread\"",
    ):
        SRC.par_map(holds_a_lock)
    SRC.par_map(holds_a_lock, executor="thread")  # threads share memory: fine


def test_an_uncalled_generator_function_is_refused_with_the_fix() -> None:
    def numbers() -> Iterator[int]:
        yield 1

    async def anumbers() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match=r"call it, as in from_iterable\(numbers\(\)\)"):
        snake.from_iterable(numbers)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"from_iterable\(anumbers\(\)\)"):
        snake.from_iterable(anumbers)  # type: ignore[arg-type]


def test_a_pipeline_given_to_from_iterable_names_chaining_and_concat() -> None:
    with pytest.raises(
        TypeError,
        match=r"got a Pipeline: use the pipeline itself, chaining onto it \(pipeline\.map\(fn\), "
        r"\.\.\.\), or join pipelines with snake\.concat\(first, second\)",
    ):
        snake.from_iterable(SRC)


async def test_open_under_a_plain_with_names_async_with_and_sync_iteration() -> None:
    opened = SRC.open()
    with pytest.raises(
        TypeError,
        match=r"needs `async with`: inside trio, `async with pipeline\.open\(\) as items: .*"
        r"in synchronous code, `for x in pipeline: \.\.\.` or `pipeline\.iterate\(\)`",
    ):
        with opened:  # type: ignore[attr-defined]
            pass
    async with opened as items:  # still an async context manager, unharmed
        assert [x async for x in items] == [0, 1, 2]


@pytest.mark.parametrize("method", ["then", "par_then"])
async def test_a_non_awaitable_from_then_fails_with_a_clear_type_error(method: str) -> None:
    with pytest.raises(
        TypeError, match=r"expected an awaitable, got int: .* use \.map\(\)"
    ) as info:
        await getattr(SRC, method)(lambda x: x + 1).collect()
    assert (
        info.value.__notes__[0] == f"snake: in stage #1 {method}(<lambda>), at item 0 of its input"
    )


def test_the_function_is_positional_only_and_knobs_keyword_only() -> None:
    with pytest.raises(TypeError):
        SRC.map(fn=work)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        SRC.par_then(fetch, 4)  # type: ignore[misc]
    with pytest.raises(TypeError):
        SRC.batch(2, True)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: snake.WorkerOptions(start_method="fork"),
            ValueError,
            "`start_method` must be 'spawn' or 'forkserver', got 'fork'",
        ),
        (lambda: snake.WorkerOptions(max_items=0), ValueError, "`max_items` must be >= 1, got 0"),
        (
            lambda: snake.WorkerOptions(init=5),
            TypeError,
            "WorkerOptions() needs a callable `init`, got int 5",
        ),
        (
            lambda: snake.WorkerOptions(init=fetch),
            TypeError,
            "WorkerOptions(init=...) must be a plain (sync) function, called once in each worker "
            "process with its number, but fetch is an async function: for async set-up, run it "
            "from a plain function, as in `def init(worker): trio.run(fetch, worker)`",
        ),
        (lambda: snake.WorkerOptions("spawn"), TypeError, "positional"),
        (
            lambda: SRC.par_map(work, workers="spawn"),
            TypeError,
            "`workers` of executor=\"process\" must be a snake.WorkerOptions, got str 'spawn'",
        ),
        (
            lambda: SRC.par_map(work, workers=snake.RayOptions()),
            TypeError,
            '`workers` of executor="process" must be a snake.WorkerOptions, got RayOptions',
        ),
        (
            lambda: SRC.par_map(work, executor="ray", workers=snake.WorkerOptions()),
            TypeError,
            '`workers` of executor="ray" must be a snake.RayOptions, got WorkerOptions',
        ),
        (
            lambda: SRC.par_map(work, executor="thread", workers=snake.WorkerOptions()),
            ValueError,
            '`workers` applies to executor="process" or "ray" only',
        ),
        (
            lambda: snake.RayOptions(num_cpus=-1),
            ValueError,
            "`num_cpus` must be a number >= 0, got -1",
        ),
        (
            lambda: snake.RayOptions(memory=0),
            ValueError,
            "`memory` must be >= 1, got 0",
        ),
        (
            lambda: snake.RayOptions(resources={"decoder": "one"}),
            ValueError,
            "`resources['decoder']` must be a number >= 0, got 'one'",
        ),
        (
            lambda: snake.RayOptions(resources=["decoder"]),
            TypeError,
            "`resources` must be a dict of resource names to amounts, got ['decoder']",
        ),
    ],
)
def test_worker_options_are_checked_when_made(build: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        build()


def test_a_ray_map_without_ray_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a)
    )
    with pytest.raises(ImportError, match=re.escape('pip install "snake[ray]"')):
        SRC.par_map(work, executor="ray")
