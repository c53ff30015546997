"""``snake.testing.no_leaks`` and its pytest plugin: each leftover fails the check, by name."""

from __future__ import annotations

import itertools
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.shared_memory import SharedMemory
from typing import TYPE_CHECKING

import pytest
import trio

import snake
import snake.testing
from snake.testing import LeakError, _processes, no_leaks

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest_plugins = ["pytester"]

#: The name of the threads these tests leave behind on purpose.
LEAKY = "leaky"
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc")
needs_shm = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")


def leak_a_thread() -> None:
    thread = threading.Timer(60, print)
    thread.name = LEAKY
    thread.start()


@pytest.fixture
def release() -> Iterator[None]:
    """After the test, ends the threads it left on purpose, before the suite's own check."""
    yield
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer) and thread.name == LEAKY:
            thread.cancel()
            thread.join()


def test_a_thread_started_in_the_block_and_still_running_fails_it(release: None) -> None:
    with pytest.raises(LeakError, match=r"(?m)^  thread 'leaky'$") as caught:
        with no_leaks(patience=0.05):
            leak_a_thread()
    assert caught.value.leftovers == ("thread 'leaky'",)
    assert str(caught.value) == (
        "left behind, still there 0.05 s after the block ended:\n"
        "  thread 'leaky'\n"
        "what to do:\n"
        "  - a thread started in the block still runs: have it end, and join it, in the block"
    )
    assert isinstance(caught.value, AssertionError)  # a failure, for pytest


def test_threads_that_end_within_the_patience_or_began_before_pass(release: None) -> None:
    leak_a_thread()
    with no_leaks():
        threading.Timer(0.1, print).start()


def test_a_child_process_still_running_fails_it() -> None:
    with pytest.raises(LeakError) as caught:
        with no_leaks(patience=0.05):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    child.wait()
    [line] = caught.value.leftovers
    assert line.startswith(f"process {child.pid} (")
    assert line.endswith("-c import time; time.sleep(60)")
    assert "wait for processes the code starts itself" in str(caught.value)


def test_each_process_is_listed_on_one_line() -> None:
    process = _processes.Process(7, 1, "sleeping", ("python", "-c", "import time\ntime.sleep(9)"))
    assert str(process) == r"process 7 (sleeping): python -c import time\ntime.sleep(9)"


@needs_proc
def test_a_child_process_that_ended_unwaited_fails_it_as_a_zombie() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped
    with pytest.raises(LeakError) as caught:
        with no_leaks(patience=0.05):
            pass
    child.wait()
    assert caught.value.leftovers == (f"process {child.pid} (zombie): ?",)


def test_worker_processes_kept_past_the_block_fail_it_but_not_the_fork_server() -> None:
    pipeline = snake.from_iterable(range(10)).par_map(abs, concurrency=2)
    with snake.persistent_workers():
        with pytest.raises(LeakError) as caught:
            with no_leaks(patience=0.05):
                assert list(pipeline) == list(range(10))
        workers = _processes.worker_processes()
    # Workers are the fork server's children: this process's grandchildren.
    assert workers
    assert {w.ppid for w in workers}.isdisjoint({os.getpid()})
    # Listed as they were then: by pid, since a state may have changed.
    assert [line.split()[:2] for line in caught.value.leftovers] == [
        ["process", str(w.pid)] for w in workers
    ]
    assert "leave `snake.persistent_workers()`'s block" in str(caught.value)


def test_a_for_loop_left_early_fails_it_naming_its_iterator() -> None:
    pipeline = snake.from_iterable(itertools.count()).par_map(abs, concurrency=2)
    items: snake.PipelineIterator[int] | None = None
    try:
        with pytest.raises(LeakError) as caught:
            with no_leaks(patience=0.05):
                items = iter(pipeline)
                assert next(items) == 0
    finally:
        if items is not None:
            items.close()
    assert "thread 'snake pipeline'" in caught.value.leftovers
    assert sum(line.startswith("process ") for line in caught.value.leftovers) == 2
    assert "close its iterator (`items.close()`" in str(caught.value)


@needs_shm
def test_shared_memory_of_this_process_fails_it() -> None:
    name = f"snake-{os.getpid()}-leak-test"
    segment = None
    try:
        with pytest.raises(LeakError) as caught:
            with no_leaks(patience=0.05):
                segment = SharedMemory(name=name, create=True, size=16)
    finally:
        if segment is not None:
            segment.close()
            segment.unlink()
    # The resource tracker that SharedMemory starts is no leftover.
    assert caught.value.leftovers == (f"shared memory /dev/shm/{name}",)
    assert "held by a run that has not ended" in str(caught.value)


@needs_shm
def test_shared_memory_of_another_process_is_not_this_ones() -> None:
    segment = SharedMemory(name=f"snake-{os.getpid()}0-leak-test", create=True, size=16)
    try:
        with no_leaks(patience=0):
            pass
    finally:
        segment.close()
        segment.unlink()


def test_a_clean_run_with_worker_processes_passes() -> None:
    with no_leaks():
        assert list(snake.from_iterable(range(10)).par_map(abs)) == list(range(10))


def test_an_error_in_the_block_leaves_as_itself_with_the_leftovers_noted(release: None) -> None:
    with pytest.raises(ValueError, match="boom") as caught:
        with no_leaks(patience=0.05):
            leak_a_thread()
            raise ValueError("boom")
    assert str(caught.value) == "boom"
    [note] = caught.value.__notes__
    assert note.startswith("snake.testing.no_leaks: left behind")
    assert "  thread 'leaky'\n" in note


def test_a_keyboard_interrupt_leaves_at_once_unchecked(release: None) -> None:
    with pytest.raises(KeyboardInterrupt) as caught:
        with no_leaks(patience=60):
            leak_a_thread()
            raise KeyboardInterrupt
    assert not hasattr(caught.value, "__notes__")


def test_as_a_decorator_it_checks_each_call(release: None) -> None:
    @no_leaks()
    def clean(x: int) -> int:
        return x

    @no_leaks(patience=0.05)
    def leaky() -> None:
        leak_a_thread()

    assert clean(3) == 3
    assert clean.__name__ == "clean"
    with pytest.raises(LeakError, match="thread 'leaky'"):
        leaky()


def test_it_refuses_async_functions_and_trio_runs_since_it_blocks() -> None:
    async def fetch() -> None:
        pass

    with pytest.raises(
        TypeError,
        match=r"^no_leaks\(\) checks synchronous functions, got async function fetch: put `with no_leaks\(\):` around its trio.run\(...\), or use the pytest plugin$",
    ):
        no_leaks()(fetch)

    async def main() -> None:
        with no_leaks():
            pass

    with pytest.raises(
        RuntimeError,
        match=r"^no_leaks\(\) waits by blocking, which would stop this trio run: put it around trio.run\(...\), or use snake.testing.pytest_plugin for async tests$",
    ):
        trio.run(main)


@pytest.mark.parametrize(
    ("patience", "error", "message"),
    [
        (-1, ValueError, "`patience` must be >= 0 seconds and finite, got -1"),
        (math.inf, ValueError, "`patience` must be >= 0 seconds and finite, got inf"),
        ("5", TypeError, "`patience` must be a number of seconds, got str '5'"),
        (True, TypeError, "`patience` must be a number of seconds, got bool True"),
    ],
)
def test_patience_is_checked_when_made(
    patience: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        no_leaks(patience)  # type: ignore[arg-type]


@needs_proc
def test_child_processes_read_from_proc_and_through_psutil_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A child with a child of its own.
    child = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    try:
        # Until both wait: the child in `wait`, the grandchild in sleep(1).
        deadline = time.monotonic() + 10
        while not settled(found := mine(child.pid)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [p.ppid for p in found] == [os.getpid(), child.pid]
        monkeypatch.setattr(_processes, "_PROC", "/no/proc")
        assert mine(child.pid) == found
    finally:
        for process in mine(child.pid):
            os.kill(process.pid, signal.SIGKILL)
        child.wait()


def settled(found: list[_processes.Process]) -> bool:
    commands = [("sh", "-c", "sleep 60 & wait"), ("sleep", "60")]
    return [p.cmdline for p in found] == commands and {p.status for p in found} == {"sleeping"}


def mine(child: int) -> list[_processes.Process]:
    """``child`` and the processes below it: not the resource tracker, say."""
    return [p for p in _processes.descendants(os.getpid()) if child in (p.pid, p.ppid)]


def test_without_proc_it_needs_psutil_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_processes, "_PROC", "/no/proc")
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(
        ImportError, match=r"through /no/proc, .* needs psutil: pip install psutil$"
    ):
        with no_leaks():
            pass


# --- the pytest plugin ----------------------------------------------------------------

DOWNSTREAM = """
import threading

import pytest

import snake


def leak():
    thread = threading.Timer(60, print)
    thread.name = "leaky"
    thread.start()


def test_leaks():
    leak()


@pytest.mark.snake_leaks_allowed
def test_leaks_allowed():
    leak()


def test_clean():
    assert list(snake.from_iterable(range(10)).par_map(abs)) == list(range(10))
"""


def downstream(pytester: pytest.Pytester, *args: str, opt_in: bool = True) -> pytest.RunResult:
    """Runs the tests of a project built on snake, which opts in to the plugin."""
    if opt_in:
        pytester.makeconftest('pytest_plugins = ["snake.testing.pytest_plugin"]\n')
    pytester.makeini("[pytest]\nsnake_leak_patience = 0.05\n")
    pytester.makepyfile(test_downstream=DOWNSTREAM)
    return pytester.runpytest("--strict-markers", "-p", "no:cacheprovider", *args)


def test_the_plugin_fails_a_test_that_leaks_listing_the_leftover(
    pytester: pytest.Pytester, release: None
) -> None:
    result = downstream(pytester, "-k", "test_leaks and not allowed")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "E   snake.testing.LeakError: left behind, still there 0.05 s after the block ended:",
            "      thread 'leaky'",
            "    what to do:",
            "      - a thread started in the block still runs*",
        ]
    )


def test_the_plugin_lets_a_test_marked_snake_leaks_allowed_leak(
    pytester: pytest.Pytester, release: None
) -> None:
    # With --strict-markers: the plugin registers its marker.
    downstream(pytester, "-k", "allowed").assert_outcomes(passed=1)


def test_the_plugin_passes_a_clean_test_with_worker_processes(pytester: pytest.Pytester) -> None:
    downstream(pytester, "-k", "clean").assert_outcomes(passed=1)


def test_the_plugin_checks_nothing_unless_a_project_opts_in(
    pytester: pytest.Pytester, release: None
) -> None:
    # No entry point loads it: without the conftest, the marker is unknown too.
    result = downstream(pytester, "-k", "test_leaks and not allowed", opt_in=False)
    result.assert_outcomes(passed=1)


def test_the_plugin_refuses_a_patience_that_is_not_seconds(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["snake.testing.pytest_plugin"]\n')
    pytester.makeini("[pytest]\nsnake_leak_patience = soon\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(
        ["*`snake_leak_patience` must be a number of seconds >= 0, got 'soon'"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
