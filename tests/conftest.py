"""Fixtures shared by the whole suite; the leak check runs around every test."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from collections.abc import Iterator

settings.register_profile("ci", deadline=None, max_examples=60, print_blob=True)
settings.register_profile("slow", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: How long stray threads and processes get to finish after a test.
LEAK_PATIENCE = 5.0


def _idle_trio_thread(thread: threading.Thread) -> bool:
    # trio keeps finished worker threads cached for a while, named
    # "Trio thread N" while idle; any other name means it runs something.
    return thread.name.startswith("Trio thread ")


def _helper_process(proc: psutil.Process, root: psutil.Process) -> bool:
    # multiprocessing's resource tracker and fork server live as long as the
    # interpreter; they are not workers. Workers forked by the server share
    # its command line but are its children, not the root's.
    try:
        cmdline = " ".join(proc.cmdline())
        # A fork server forked from the root has its command line; the
        # workers it forks are the root's grandchildren.
        server = proc.ppid() == root.pid and (
            "multiprocessing.forkserver" in cmdline or cmdline == " ".join(root.cmdline())
        )
        return "resource_tracker" in cmdline or server
    except psutil.Error:
        return True


def worker_processes(root: psutil.Process | None = None) -> list[psutil.Process]:
    """Worker processes of ``root`` (this process), spawned or forked by its fork server."""
    root = root or psutil.Process()
    return [p for p in root.children(recursive=True) if not _helper_process(p, root)]


def running_span(message: str) -> tuple[int, int]:
    """The first and last item a ``snake.WorkerDiedError`` says its worker was running."""
    span = message.split("while running ")[1].split(" of its input")[0]
    first, _, last = span.removeprefix("items ").removeprefix("item ").partition(" to ")
    return int(first), int(last or first)


def leftovers(before: set[int]) -> list[str]:
    """Threads, child processes and shared memory a test should have ended."""
    found = [
        f"thread {t.name!r}"
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not _idle_trio_thread(t)
    ]
    if os.path.isdir("/dev/shm"):
        mine = f"snake-{os.getpid()}-"
        found += [f"shared memory {n}" for n in os.listdir("/dev/shm") if n.startswith(mine)]
    for proc in worker_processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            found.append(f"process {proc.pid} ({proc.status()}): {proc.cmdline()}")
    return found


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves worker processes or busy threads behind."""
    before = {t.ident for t in threading.enumerate() if t.ident is not None}
    yield
    deadline = time.monotonic() + LEAK_PATIENCE
    while (found := leftovers(before)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not found, f"left behind after the test: {found}"
