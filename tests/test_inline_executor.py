"""``par_map(executor="inline")``: the map run as ``num_workers=0`` runs it, for debugging."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

import snake

if TYPE_CHECKING:
    from pathlib import Path


@given(st.lists(st.integers(), max_size=200), st.sampled_from([None, 1, 4]), st.booleans())
def test_inline_gives_what_the_other_executors_give_calling_in_input_order(
    data: list[int], concurrency: int | None, ordered: bool
) -> None:
    calls: list[int] = []

    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    pipeline = snake.from_iterable(data).par_map(
        double, executor="inline", concurrency=concurrency, ordered=ordered
    )
    assert list(pipeline) == [2 * x for x in data]
    assert calls == data  # one call at a time, in input order


async def test_inline_calls_in_the_pipelines_thread_with_no_workers() -> None:
    def where(x: int) -> tuple[int, snake.WorkerInfo | None, int]:
        return threading.get_ident(), snake.worker_info(), len(psutil.Process().children())

    before = len(psutil.Process().children())  # a fork server of earlier tests, say
    got = await snake.from_iterable(range(3)).par_map(where, executor="inline").collect()
    assert got == [(threading.get_ident(), None, before)] * 3


def test_inline_keeps_the_error_contract() -> None:
    def fail_on_3(x: int) -> int:
        if x in (3, 5):
            raise ValueError(f"bad {x}")
        return x

    source = snake.from_iterable(range(8))
    with pytest.raises(ValueError, match="bad 3") as info:
        list(source.par_map(fail_on_3, executor="inline"))
    assert info.value.__notes__ == ["snake: in stage #1 par_map(fail_on_3), at item 3 of its input"]
    skipping = source.par_map(fail_on_3, executor="inline", errors="skip")
    assert list(skipping) == [0, 1, 2, 4, 6, 7]
    with pytest.raises(ValueError, match="bad 5"):
        list(source.par_map(fail_on_3, executor="inline", errors="skip", max_failures=1))


async def test_inline_retries_a_failing_call(autojump_clock: Any) -> None:
    tries: list[int] = []

    def flaky(x: int) -> int:
        tries.append(x)
        if tries.count(x) < 3:
            raise OSError("flaky")
        return x

    got = await snake.from_iterable([7]).par_map(flaky, executor="inline", retries=2).collect()
    assert got == [7]
    assert tries == [7, 7, 7]


def test_inline_refuses_a_timeout_it_cannot_keep_and_ignores_worker_options() -> None:
    with pytest.raises(ValueError, match=r'`timeout` cannot be kept with executor="inline"'):
        snake.from_iterable(range(3)).par_map(abs, executor="inline", timeout=1)
    options = snake.WorkerOptions(max_items=1)
    assert list(snake.from_iterable([-1]).par_map(abs, executor="inline", workers=options)) == [1]
    # And it needs no pickling: a function holding a lock runs.
    lock = threading.Lock()
    assert list(snake.from_iterable([1]).par_map(lambda x: (x, lock)[0], executor="inline")) == [1]


def test_a_breakpoint_in_an_inline_map_stops_in_pdb(tmp_path: Path) -> None:
    script = tmp_path / "debug_me.py"
    script.write_text(
        textwrap.dedent(
            """
            import snake

            def double(x):
                breakpoint()
                return 2 * x

            if __name__ == "__main__":
                print(list(snake.from_iterable([21]).par_map(double, executor="inline")))
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
    done = subprocess.run(
        [sys.executable, str(script)], input="p x\nc\n", capture_output=True, text=True,
        timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(Pdb) 21" in done.stdout
    assert done.stdout.rstrip().endswith("[42]")
