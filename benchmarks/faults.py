"""Faults tried on snake pipelines: how long each took to surface, and what was left.

Each row injects one fault and reports what arrived (the exception type),
the seconds from the fault to the moment the program had it (from the
worker's own clock reading just before it failed, or from the consumer's
break, the deadline or the SIGINT), and what was left once ``open()``
returned: worker processes, threads, and shared-memory segments of this
process. The goal is nothing, every time.

Usage::

    python benchmarks/faults.py

Linux only (signals, ``/dev/shm``, ``CLOCK_MONOTONIC`` shared by processes).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

import snake

if TYPE_CHECKING:
    from collections.abc import Callable

ITEMS = 200
#: The item that fails, far enough in for every worker to be busy.
AT = 40
#: How long a slow item takes: a fault must not wait for it.
SLOW = 30.0


@dataclass
class Row:
    fault: str
    arrived: str
    seconds: float
    left: str


def mark(path: str) -> None:
    """Write the moment of the fault, on the clock every process shares."""
    with open(path, "w") as f:
        f.write(repr(time.perf_counter()))


def faulty(kind: str, path: str) -> Callable[[int], Any]:
    def fn(x: int) -> Any:
        time.sleep(0.002)
        if x != AT:
            return x
        mark(path)
        if kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "sigbus":
            os.kill(os.getpid(), signal.SIGBUS)
        if kind == "segfault":
            ctypes.string_at(0)
        if kind == "exit":
            os._exit(3)
        if kind == "error":
            raise ValueError(f"bad item {x}")
        if kind == "unpicklable error":
            error = ValueError(f"bad item {x}")
            error.lock = threading.Lock()  # type: ignore[attr-defined]
            raise error
        if kind == "keyboard interrupt":
            raise KeyboardInterrupt
        if kind == "sys.exit":
            sys.exit(2)
        if kind == "unpicklable result":
            return threading.Lock()
        if kind == "hang (timeout=0.5)":
            time.sleep(SLOW)
        raise AssertionError(kind)

    return fn


def leftovers(threads_before: set[int]) -> str:
    """Worker processes, threads and shared memory of this process, right now."""
    mine = f"snake-{os.getpid()}-"
    segments = [n for n in os.listdir("/dev/shm") if n.startswith(mine)]
    threads = [t for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    workers = [pid for pid in descendants(os.getpid()) if not _helper(pid)]
    parts = [
        f"{len(workers)} workers" if workers else "",
        f"{len(threads)} threads" if threads else "",
        f"{len(segments)} segments" if segments else "",
    ]
    return ", ".join(p for p in parts if p) or "nothing"


def descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found.append(child)
        found += descendants(child)
    return found


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _helper(pid: int) -> bool:
    """multiprocessing's fork server and resource tracker live for the interpreter.

    The fork server is also known by its pid: snake's may be a fork of this
    process, with its command line.
    """
    import multiprocessing.forkserver

    if pid == getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None):
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True
    return "forkserver" in cmdline or "resource_tracker" in cmdline


def in_worker(kind: str) -> Row:
    threads = {t.ident for t in threading.enumerate() if t.ident is not None}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fault")
        timeout = 0.5 if kind.startswith("hang") else None
        pipeline = snake.from_iterable(range(ITEMS)).par_map(faulty(kind, path), timeout=timeout)
        arrived = "nothing"
        try:
            trio.run(pipeline.collect)
        except BaseException as exc:  # what arrives is the result
            arrived = type(exc).__name__
        caught = time.perf_counter()
        with open(path) as f:
            began = float(f.read())
    if timeout is not None:
        began += timeout  # from the moment the item was due
    return Row(kind, arrived, caught - began, leftovers(threads))


def slow(x: int) -> int:
    """Item 0 at once, every other item after ``SLOW`` seconds."""
    if x:
        time.sleep(SLOW)
    return x


def in_main(kind: str) -> Row:
    """Stops from the main side: an early break, an outer deadline."""
    threads = {t.ident for t in threading.enumerate() if t.ident is not None}
    began = 0.0
    arrived = "nothing"

    async def main() -> None:
        nonlocal began, arrived
        if kind == "break with items in flight":
            async with snake.from_iterable(range(ITEMS)).par_map(slow).open() as items:
                async for _ in items:
                    began = time.perf_counter()  # the first, fast item; the rest run
                    break
        elif kind == "outer deadline":
            with trio.move_on_after(0.5) as scope:
                began = time.perf_counter() + 0.5
                await snake.from_iterable(range(ITEMS)).par_map(slow).collect()
            arrived = "Cancelled" if scope.cancelled_caught else "nothing"

    trio.run(main)
    caught = time.perf_counter()
    return Row(kind, arrived, caught - began, leftovers(threads))


CTRL_C = """
import sys, time, trio, snake

def slow(x):
    time.sleep(60)
    return x

pipeline = snake.from_iterable(range(1000)).par_map(slow)

async def main():
    async with pipeline.open() as items:
        async for x in items:
            pass

if __name__ == "__main__":
    print("ready", flush=True)
    try:
        if sys.argv[1] == "sync":
            for x in pipeline:
                pass
        else:
            trio.run(main)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
"""


def ctrl_c(mode: str) -> Row:
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "ctrl_c.py")
        with open(script, "w") as f:
            f.write(textwrap.dedent(CTRL_C))
        child = subprocess.Popen(
            [sys.executable, script, mode],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert child.stdout is not None
        child.stdout.readline()
        deadline = time.monotonic() + 30
        while len(descendants(child.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the fork server and two busy workers
        time.sleep(0.3)
        family = [child.pid, *descendants(child.pid)]
        began = time.perf_counter()
        os.killpg(child.pid, signal.SIGINT)
        out, _ = child.communicate(timeout=30)
        caught = time.perf_counter()
        workers = [pid for pid in family[1:] if not _helper(pid)]
        alive = [pid for pid in workers if _running(pid)]
        settle = time.perf_counter()
        while alive and time.perf_counter() - settle < 5:
            time.sleep(0.01)
            alive = [pid for pid in alive if _running(pid)]
    arrived = out.strip().splitlines()[-1] if out.strip() else f"exit code {child.returncode}"
    if alive:
        left = f"{len(alive)} workers"
    elif time.perf_counter() - settle > 0.01:
        left = f"nothing ({len(workers)} workers gone {time.perf_counter() - settle:.2f} s later)"
    else:
        left = "nothing"
    return Row(f"Ctrl-C during {'for x in pipeline' if mode == 'sync' else 'trio.run'}",
               arrived, caught - began, left)  # fmt: skip


NO_GUARD = """
import trio, snake

print(trio.run(snake.from_iterable(range(5)).par_map(abs).collect))
"""


def missing_guard() -> Row:
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "train.py"), "w") as f:
            f.write(NO_GUARD)
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "train.py"], cwd=folder, capture_output=True, text=True, timeout=120
        )
        caught = time.perf_counter()
    last = [line for line in done.stderr.splitlines() if line.startswith("snake.")]
    arrived = last[-1].split(":")[0] if last else f"exit code {done.returncode}"
    told = "guard" in done.stderr
    return Row(
        "script without __main__ guard", f"{arrived}{' (says: guard)' if told else ''}",
        caught - began, "nothing (its own process)",
    )  # fmt: skip


def main() -> int:
    if sys.platform != "linux":
        print("benchmarks/faults.py needs Linux")
        return 1
    print(f"snake {snake.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    trio.run(snake.from_iterable(range(2)).par_map(abs).collect)  # the fork server, once
    rows = [
        in_worker(kind)
        for kind in (
            "sigkill", "sigbus", "segfault", "exit", "error", "unpicklable error",
            "keyboard interrupt", "sys.exit", "unpicklable result", "hang (timeout=0.5)",
        )
    ]  # fmt: skip
    rows += [in_main(kind) for kind in (
        "break with items in flight", "outer deadline",
    )]  # fmt: skip
    rows += [ctrl_c("sync"), ctrl_c("trio"), missing_guard()]
    widths = [max(len(r.fault) for r in rows), max(len(r.arrived) for r in rows)]
    print()
    print(f"{'fault':<{widths[0]}}  {'arrived as':<{widths[1]}}  {'surfaced in':>11}  left behind")
    print(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * 11}  {'-' * 11}")
    for r in rows:
        print(f"{r.fault:<{widths[0]}}  {r.arrived:<{widths[1]}}  {r.seconds:>9.3f} s  {r.left}")
    print()
    print(
        "surfaced in: from the fault (the worker's clock reading just before it; the item's "
        "timeout; the break; the deadline; the SIGINT) to the program having the error; the "
        "missing-guard row times the whole script"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
