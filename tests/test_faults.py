"""Faults in worker processes: each arrives bare, named, soon, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import trio
from conftest import running_span

import snake
from snake._workers import _shm

#: A death must surface within this, measured from its moment (about a
#: second; more is allowed for a loaded CI machine).
SURFACES_WITHIN = 3.0


def killed_by(sig: int, at: int = 10) -> object:
    def fn(x: int) -> int:
        if x == at:
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the signal ends it first
        time.sleep(0.001)
        return x

    return fn


def segfaults(x: int) -> int:
    if x == 10:
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return x


@pytest.mark.parametrize(
    ("fn", "exitcode", "says"),
    [
        (killed_by(signal.SIGKILL), -signal.SIGKILL, "killed by SIGKILL .* out-of-memory killer"),
        (
            killed_by(signal.SIGBUS),
            -signal.SIGBUS,
            r"killed by SIGBUS .* shared memory \(/dev/shm\)",
        ),
        (segfaults, -signal.SIGSEGV, "killed by SIGSEGV .* native code"),
        (lambda x: os._exit(3) if x == 10 else x, 3, "exited with code 3 .* os._exit"),
    ],
    ids=["sigkill", "sigbus", "segfault", "os_exit"],
)
async def test_a_dead_worker_gives_a_bare_worker_died_error_naming_everything(
    fn: object, exitcode: int, says: str
) -> None:
    began = time.perf_counter()
    with trio.fail_after(20):
        with pytest.raises(snake.WorkerDiedError, match=says) as info:
            await snake.from_iterable(range(200)).par_map(fn).collect()  # type: ignore[arg-type]
    assert time.perf_counter() - began < SURFACES_WITHIN
    error = info.value
    assert error.exitcode == exitcode
    assert error.pid is not None
    assert f"worker process {error.pid} " in str(error)
    assert str(error).startswith("in stage #1 par_map(")
    first, last = running_span(str(error))
    assert first <= 10 <= last  # the item it was running
    # The next run works.
    assert await snake.from_iterable(range(5)).par_map(abs).collect() == [0, 1, 2, 3, 4]


def interrupts(x: int) -> int:
    if x == 4:
        raise KeyboardInterrupt
    return x


def exits(x: int) -> int:
    if x == 4:
        sys.exit("bye")
    return x


@pytest.mark.parametrize(("fn", "kind"), [(interrupts, KeyboardInterrupt), (exits, SystemExit)])
async def test_keyboard_interrupt_or_sys_exit_in_a_worker_becomes_a_worker_error(
    fn: object, kind: type[BaseException]
) -> None:
    with trio.fail_after(20):
        with pytest.raises(
            snake.WorkerError, match=f"{kind.__name__}.* raised in a worker"
        ) as info:
            await snake.from_iterable(range(10)).par_map(fn).collect()  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, kind)
    assert info.value.__notes__[0].endswith("at item 4 of its input")


async def test_keyboard_interrupt_in_a_worker_thread_stays_itself() -> None:
    with pytest.raises(KeyboardInterrupt):
        await snake.from_iterable(range(10)).par_map(interrupts, executor="thread").collect()


def unpicklable_at_3(x: int) -> object:
    return threading.Lock() if x == 3 else x


async def test_an_unpicklable_result_is_a_type_error_naming_the_item_and_stage() -> None:
    with trio.fail_after(20):
        with pytest.raises(TypeError, match="pickle") as info:
            await snake.from_iterable(range(10)).par_map(unpicklable_at_3).collect()
    assert (
        "snake: in stage #1 par_map(unpicklable_at_3), the result of item 3 of its input "
        "cannot be sent back (pickled)"
    ) in info.value.__notes__


def identity(x: object) -> object:
    return x


@pytest.mark.parametrize("shared_memory", [True, False], ids=["shm", "no-shm"])
async def test_an_unpicklable_item_is_a_type_error_naming_the_item_and_stage(
    monkeypatch: pytest.MonkeyPatch, shared_memory: bool
) -> None:
    # Without shared memory (not Linux) items are pickled as their job is
    # sent; either way the job's stage fails, with the item named.
    monkeypatch.setattr(_shm, "AVAILABLE", shared_memory and _shm.AVAILABLE)
    items = [0, 1, 2, (3, threading.Lock()), 4]
    with trio.fail_after(20):
        with pytest.raises(TypeError, match="cannot pickle '_thread\\.lock' object") as info:
            await snake.from_iterable(items).par_map(identity, concurrency=1).collect()
    assert info.value.__notes__ == [
        "snake: in stage #1 par_map(identity), item 3 of its input cannot be sent to a "
        "worker process (pickled): pass something picklable (a path rather than an open "
        'file, say), or use executor="thread"'
    ]


NO_GUARD = """
import threading, time, trio, snake

# Another thread runs: the fork server cannot be a fork of this process.
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()

def double(x):
    return 2 * x

options = snake.WorkerOptions(start_method={method!r})
print(trio.run(snake.from_iterable(range(5)).par_map(double, workers=options).collect))
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_script_without_a_main_guard_is_told_so(method: str, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(NO_GUARD.format(method=method))
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()
    assert any(line.startswith("snake.WorkerDiedError: ") for line in last)
    assert 'has no `if __name__ == "__main__":` guard, that is probably the cause' in done.stderr


SEGFAULT = """
import trio, snake
from test_faults import segfaults

if __name__ == "__main__":
    try:
        trio.run(snake.from_iterable(range(20)).par_map(segfaults).collect)
    except snake.WorkerDiedError as exc:
        print("died:", exc.signal)
"""


def test_a_segfault_leaves_a_c_level_trace_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "crash.py").write_text(textwrap.dedent(SEGFAULT))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, "crash.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.stdout.strip() == "died: SIGSEGV"
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "segfaults" in done.stderr  # the Python frames, from faulthandler
