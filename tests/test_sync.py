"""Synchronous iteration: a trio thread runs the pipeline; stopping leaves nothing."""

from __future__ import annotations

import gc
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest
import trio

import snake
from snake.testing._processes import worker_processes

if TYPE_CHECKING:
    from pathlib import Path


def pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "snake pipeline"]


async def echo(x: int) -> int:
    await trio.sleep(0.001)
    return x


def test_list_gives_what_collect_gives() -> None:
    p = (
        snake.from_iterable(range(3000))
        .par_then(echo, concurrency=50)
        .map(lambda x: x * 2)
        .batch(7)
    )
    assert list(p) == trio.run(p.collect)


@pytest.mark.parametrize(
    "stop",
    [
        "break",
        "close",
        "garbage collection",
    ],
)
def test_stopping_iteration_early_stops_the_thread_and_every_stage(stop: str) -> None:
    pipeline = snake.from_iterable(itertools.count()).then(echo).par_map(abs, executor="thread")
    if stop == "break":
        for x in pipeline:
            if x == 5:
                break
    else:
        it = iter(pipeline)
        assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
        if stop == "close":
            it.close()  # type: ignore[attr-defined]
        else:
            del it
            gc.collect()
    assert pipeline_threads() == []


def test_an_error_arrives_bare_in_the_consumer_after_the_items_before_it() -> None:
    def fail_at_3(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    got = []
    with pytest.raises(ValueError, match="three") as info:
        for x in snake.from_iterable(range(10)).then(echo).map(fail_at_3):
            got.append(x)
    assert info.value.__notes__ == ["snake: in stage #2 map(fail_at_3), at item 3 of its input"]
    # A prefix of the output: items still in a chunk not yet handed over when
    # the error stops the pipeline are dropped (docs/contract.md), as a busy
    # machine's slow consumer thread may leave the last one.
    assert got == [0, 1, 2][: len(got)]
    assert pipeline_threads() == []


def test_an_error_in_the_loop_body_stops_the_pipeline() -> None:
    with pytest.raises(KeyError):
        for x in snake.from_iterable(itertools.count()).then(echo):
            if x == 3:
                raise KeyError(x)
    gc.collect()
    assert pipeline_threads() == []


async def test_sync_iteration_inside_trio_is_refused_with_the_fix() -> None:
    with pytest.raises(RuntimeError, match=r"await pipeline.collect\(\)"):
        iter(snake.from_iterable(range(3)))


async def test_async_for_on_a_pipeline_names_open() -> None:
    with pytest.raises(TypeError, match=r"async with pipeline.open\(\) as items"):
        async for _ in snake.from_iterable(range(3)):  # type: ignore[attr-defined]
            pass


CTRL_C_SCRIPT = """
import signal, sys, time, trio, snake

# Ctrl-C as in a program started from a terminal, even where this one was
# started with SIGINT ignored (a background job of a non-interactive shell).
signal.signal(signal.SIGINT, signal.default_int_handler)

def slow(x):
    time.sleep(60)
    return x

async def tick(x):
    await trio.sleep(0.001)
    return x

pipeline = snake.from_iterable(range(1000)).then(tick).par_map(slow, concurrency=2)

async def main():
    async with pipeline.open() as items:
        print("ready", flush=True)
        async for x in items:
            pass

if __name__ == "__main__":
    if sys.argv[1] == "sync":
        print("ready", flush=True)
        for x in pipeline:
            pass
    else:
        trio.run(main)
"""


@pytest.mark.parametrize("mode", ["sync", "trio"])
def test_ctrl_c_stops_everything_and_arrives_bare(mode: str, tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(textwrap.dedent(CTRL_C_SCRIPT))
    child = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        # Wait until both worker processes are busy with an item.
        deadline = time.monotonic() + 30
        while len(found := worker_processes(child.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(found) == 2
        workers = [psutil.Process(w.pid) for w in found]
        time.sleep(0.2)
        began = time.monotonic()
        os.killpg(child.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        _, stderr = child.communicate(timeout=10)
        took = time.monotonic() - began
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode != 0
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    assert "ExceptionGroup" not in stderr, stderr
    assert took < 2.0
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
