"""A fresh program's first process map: where the fork server comes from, and its safety.

Each test runs a script in a fresh interpreter, as a user runs a training
script: the fork server is a fork of it where no other Python thread runs,
a fresh interpreter otherwise, and workers never run its top level again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import types
from typing import TYPE_CHECKING

import pytest

from snake._workers import _forkserver

if TYPE_CHECKING:
    from pathlib import Path

HEAVY = """
import os
with open(os.environ["SNAKE_TEST_LOG"], "a") as log:
    log.write(f"{os.getpid()}\\n")
"""

SCRIPT = """
import os, sys, threading, time, trio, snake
import heavy  # what a training script imports at its top, say torch

with open(os.environ["SNAKE_TEST_LOG"] + ".script", "a") as log:
    log.write(f"{os.getpid()}\\n")

if os.environ["SNAKE_TEST_THREAD"] == "1":
    # Another Python thread runs: forking the program is not safe.
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()

def double(x):
    return 2 * x

async def main():
    return await snake.from_iterable(range(20)).par_map(double).collect()

if __name__ == "__main__":
    for _ in range(2):
        assert trio.run(main) == [2 * x for x in range(20)]
    assert list(snake.from_iterable(range(20)).par_map(double)) == [2 * x for x in range(20)]
    # What told a fresh fork server which script to load is not left behind.
    assert "SNAKE_FORKSERVER_MAIN" not in os.environ
    import multiprocessing.forkserver, psutil
    server = psutil.Process(multiprocessing.forkserver._forkserver._forkserver_pid)
    print("forked" if server.cmdline() == psutil.Process().cmdline() else "fresh")
"""


def run(script: str, cwd: Path, timeout: float = 120, stdin: str | None = None, **env: str) -> str:
    """What ``python script`` run in ``cwd`` prints (``script`` as typed, or ``-``)."""
    done = subprocess.run(
        [sys.executable, script],
        cwd=cwd,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "threaded"])
@pytest.mark.parametrize("folder", [".", "scripts"])
def test_workers_never_run_the_script_or_its_imports_again(
    tmp_path: Path, folder: str, thread: bool
) -> None:
    # Run from its own folder, or from another (its imports are found
    # through the script's folder, not the working directory).
    (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / folder / "heavy.py").write_text(HEAVY)
    (tmp_path / folder / "train.py").write_text(SCRIPT)
    log = tmp_path / "imports.log"
    how = run(
        os.path.join(folder, "train.py"),  # as typed: ./train.py, scripts/train.py
        tmp_path,
        SNAKE_TEST_LOG=str(log),
        SNAKE_TEST_THREAD=str(int(thread)),
    )
    # Alone, the fork server is a fork of the script: it ran and imported
    # everything once, and so none of the workers of its three runs does.
    # With another thread running, the server is a fresh interpreter that
    # loads the script as a module once (not as ``__main__``).
    assert how == ("fresh" if thread else "forked")
    runs = 2 if thread else 1
    assert len(set(log.read_text().split())) == runs
    assert len(set((tmp_path / "imports.log.script").read_text().split())) == runs


LET_GO = """
import gc, os, trio, snake

def job(x):
    # The program's objects are frozen out of the worker's collections.
    assert gc.get_freeze_count() > 1000
    # A worker can run trio itself, though its server was forked inside a run.
    return trio.run(trio.sleep, 0) or x + 1

async def main(write):
    assert await snake.from_iterable(range(8)).par_map(job).collect() == list(range(1, 9))
    os.close(write)

read, write = os.pipe()
trio.run(main, write)
# The fork server holds no copy of the program's pipe: its reader sees the end.
assert os.read(read, 1) == b""
print("ok")
"""


def test_the_forked_server_holds_none_of_the_programs_pipes(tmp_path: Path) -> None:
    script = tmp_path / "let_go.py"
    script.write_text(textwrap.dedent(LET_GO))
    # The read would wait forever (the timeout ends it) were the pipe held open.
    assert run(str(script), tmp_path, timeout=30) == "ok"


GENERATORS = """
import multiprocessing.forkserver, os, sys, threading, time, numpy, snake

if os.environ["SNAKE_TEST_THREAD"] == "1":
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()

def seeded(x):
    return int(numpy.random.randint(1_000_000))

if __name__ == "__main__":
    assert "numpy.random" not in sys.modules  # numpy loads it on first use
    pipeline = snake.from_iterable(range(2)).par_map(seeded, concurrency=1)
    assert list(pipeline.iterate(epoch=0)) == list(pipeline.iterate(epoch=0))  # seeded
    server = multiprocessing.forkserver._forkserver._forkserver_pid
    with open(f"/proc/{server}/maps") as maps:
        print("numpy.random" in sys.modules, "numpy/random" in maps.read())
"""


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "threaded"])
def test_the_fork_server_loads_the_generators_workers_seed(tmp_path: Path, thread: bool) -> None:
    # Each worker seeds numpy's generator; loaded by the server, it is not
    # imported again by every worker of every run. The program's stays unloaded.
    script = tmp_path / "generators.py"
    script.write_text(GENERATORS)
    assert run(str(script), tmp_path, SNAKE_TEST_THREAD=str(int(thread))) == "False True"


STDIN = """
import os, threading, time, snake
if os.environ["SNAKE_TEST_THREAD"] == "1":
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(list(snake.from_iterable(range(5)).par_map(lambda x: x + 1)))
"""


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "threaded"])
def test_a_script_read_from_stdin_runs_its_process_map(tmp_path: Path, thread: bool) -> None:
    # Workers compare the script's path with their own __main__'s: for
    # ``python -`` that is ``<stdin>``, which they must not try to run,
    # whether the server is a fork of the program or a fresh interpreter.
    out = run("-", tmp_path, stdin=STDIN, SNAKE_TEST_THREAD=str(int(thread)))
    assert out == "[1, 2, 3, 4, 5]"


SPAWNED = """
import snake

def square(x):
    return x * x

spawn = snake.WorkerOptions(start_method={method!r})
print(list(snake.from_iterable(range(4)).par_map(square, concurrency=1, workers=spawn)))
"""


def test_a_script_read_from_stdin_with_spawned_workers_is_refused_before_any_starts(
    tmp_path: Path,
) -> None:
    # Spawned workers run the script's file again, and ``<stdin>`` is none:
    # each would print a FileNotFoundError as it died.
    done = subprocess.run(
        [sys.executable, "-"], cwd=tmp_path, input=SPAWNED.format(method="spawn"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert "FileNotFoundError" not in done.stderr  # no worker started
    assert done.stderr.splitlines()[-1] == (
        'RuntimeError: worker processes started with start_method="spawn" run the script '
        "again, and this script was read from standard input, so they cannot start: save it "
        "to a file and run that, leave WorkerOptions(start_method=...) at its default, "
        '"forkserver", or use par_map(fn, executor="thread")'
    )


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_program_given_with_dash_c_runs_its_process_map(tmp_path: Path, method: str) -> None:
    # ``python -c`` leaves ``__main__`` without a file, so workers load none.
    done = subprocess.run(
        [sys.executable, "-c", SPAWNED.format(method=method)], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[0, 1, 4, 9]\n"


class _Cuda:
    def __init__(self, initialized: bool) -> None:
        self.initialized = initialized

    def is_initialized(self) -> bool:
        return self.initialized


def test_a_program_that_started_cuda_is_not_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fork cannot use the CUDA context of its parent: the server must then
    # be a fresh interpreter, whose workers can start CUDA of their own.
    torch = types.ModuleType("torch")
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # pytest's threads aside
    for initialized in (False, True):
        torch.cuda = _Cuda(initialized)  # type: ignore[attr-defined]
        assert _forkserver._may_fork() is (sys.platform == "linux" and not initialized)
