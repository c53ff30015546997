"""A script's own functions in worker processes: by reference where the workers have them.

Each test runs a script file in a fresh interpreter, as a user runs a
training script, with each way its workers can start: forked from a fork
server that is a fork of the script, or a fresh interpreter (another thread
runs), or spawned.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

SCRIPT = """
import os, sys, threading, time, traceback
import snake

SCALE = 2
UNREFERENCED = 1

def by_reference(x):
    # A copy by value has only the globals it reads.
    return os.getpid(), "UNREFERENCED" in globals()

def scaled(x):
    return x * SCALE

def fails(x):
    if x == 3:
        raise ValueError("bad item")
    return x

def init_fails(index):
    raise RuntimeError("bad init")

def show(pipeline):
    try:
        list(pipeline)
    except Exception as exc:
        print("".join(traceback.format_exception(exc)))

if __name__ == "__main__":
    method, how = sys.argv[1:]
    if how == "threaded":  # the fork server cannot be a fork of the script
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    options = snake.WorkerOptions(start_method=method)
    source = snake.from_iterable(range(6))
    for pid, found in source.par_map(abs, workers=options).map(by_reference):
        assert pid != os.getpid() and found, "by reference, in a worker"
    SCALE = 10  # the workers' SCALE is 2: this goes by value
    assert list(source.par_map(scaled, workers=options)) == [10 * x for x in range(6)]
    def under_the_guard(x):  # workers never ran this: by value
        return -x
    assert list(source.par_map(under_the_guard, workers=options)) == [-x for x in range(6)]
    show(source.par_map(fails, workers=options))
    show(source.par_map(lambda x: 1 // (x - 3), workers=options))
    show(source.par_map(abs, workers=snake.WorkerOptions(start_method=method, init=init_fails)))
"""


def line_of(text: str) -> int:
    """The line of ``SCRIPT`` that holds ``text``."""
    return next(n for n, line in enumerate(SCRIPT.splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("method", "how"),
    [("forkserver", "alone"), ("forkserver", "threaded"), ("spawn", "alone")],
)
def test_a_scripts_functions_keep_their_file_lines_and_source_in_worker_tracebacks(
    tmp_path: Path, method: str, how: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "train.py", method, how],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path = os.path.realpath(script)
    lines = done.stdout.replace(str(tmp_path), os.path.realpath(tmp_path)).splitlines()
    for text, where in [
        ('raise ValueError("bad item")', "fails"),
        ("lambda x: 1 // (x - 3)", "<lambda>"),  # by value, its file name kept
        ('raise RuntimeError("bad init")', "init_fails"),
    ]:
        frame = lines.index(f'  File "{path}", line {line_of(text)}, in {where}')
        assert text in lines[frame + 1]  # its source line
    assert "<dynamic-code>" not in done.stdout
