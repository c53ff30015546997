"""Faults tried on snake pipelines: how long each took to surface, and what was left.

Each row injects one fault and reports what arrived (the exception type),
the seconds from the fault to the moment the program had it (from the
worker's own clock reading just before it failed, or from the consumer's
break, the deadline or the SIGINT), and what was left once ``open()``
returned: worker processes, threads, and shared-memory segments of this
process. The goal is nothing, every time.

``--peers`` then runs the same faults, measured the same way, through
``DataLoader(dataset, batch_size=None, num_workers=2)`` over a map-style
dataset (read with ``list(loader)``) and through asyncio with
``ProcessPoolExecutor(2)`` (``asyncio.gather`` of ``loop.run_in_executor``
calls inside ``with ProcessPoolExecutor(2) as pool:``), and prints the three
side by side. Both can wait forever (a pool cannot cancel a job that has
started; ``DataLoader`` waits for a result it could not receive), so each
of their rows runs in a fresh process group, is given ``CAP`` seconds, and
is killed whole afterwards. Without torch, the ``DataLoader`` column says so.

Usage::

    python benchmarks/faults.py
    python benchmarks/faults.py --peers   # and in DataLoader and a process pool: minutes

Linux only (signals, ``/dev/shm``, ``CLOCK_MONOTONIC`` shared by processes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
from _harness import print_columns

import snake

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence, Sized

ITEMS = 200
#: The item that fails, far enough in for every worker to be busy.
AT = 40
#: How long a slow item takes: a fault must not wait for it.
SLOW = 30.0
#: How long a peer's row, or a Ctrl-C'd script, may run before it is killed.
CAP = 60.0
IN_WORKER = (
    "sigkill", "sigbus", "segfault", "exit", "error", "unpicklable error",
    "keyboard interrupt", "sys.exit", "unpicklable result", "hang (timeout=0.5)",
)  # fmt: skip
IN_MAIN = ("break with items in flight", "outer deadline")
PEERS = {
    "dataloader": "DataLoader(num_workers=2)",
    "asyncio": "asyncio + ProcessPoolExecutor(2)",
}


@dataclass
class Row:
    fault: str
    arrived: str
    seconds: float | None  # None: it never arrived
    left: str

    def when(self) -> str:
        return "–" if self.seconds is None else f"{self.seconds:.3f} s"

    def cell(self) -> str:
        """What arrived, when, and what was left if anything: a side-by-side cell."""
        when = "" if self.seconds is None else f", {self.when()}"
        left = "" if self.left.startswith("nothing") else f"; {self.left}"
        return f"{self.arrived}{when}{left}"


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
        count(workers, "worker") if workers else "",
        count(threads, "thread") if threads else "",
        count(segments, "segment") if segments else "",
    ]
    return ", ".join(p for p in parts if p) or "nothing"


def count(things: Sized, name: str) -> str:
    return f"{len(things)} {name}{'s' if len(things) != 1 else ''}"


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
import signal, sys, time, trio, snake

signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored if run with & by a script

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
        row = interrupt([script, mode], family=3)  # the fork server and two busy workers
    row.fault = f"Ctrl-C during {'for x in pipeline' if mode == 'sync' else 'trio.run'}"
    return row


def interrupt(args: list[str], family: int) -> Row:
    """Ctrl-C a script, as a terminal does, once ``family`` processes under it are busy.

    What arrived is the script's last line of output, timed until it exited.
    A script still running after ``CAP`` seconds is killed with its process group.
    """
    child = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert child.stdout is not None
    child.stdout.readline()
    deadline = time.monotonic() + 30
    while len(descendants(child.pid)) < family and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    workers = [pid for pid in descendants(child.pid) if not _helper(pid)]
    began = time.perf_counter()
    os.killpg(child.pid, signal.SIGINT)
    try:
        child.wait(timeout=CAP)
    except subprocess.TimeoutExpired:
        return capped("Ctrl-C", child)
    caught = time.perf_counter()
    left = gone(workers)
    out = end(child).strip()
    arrived = out.splitlines()[-1] if out else f"exit code {child.returncode}"
    return Row("Ctrl-C", arrived, caught - began, left)


def gone(workers: list[int]) -> str:
    """Left behind by a script that exited: its workers still running 5 s later."""
    settle = time.perf_counter()
    alive = [pid for pid in workers if _running(pid)]
    while alive and time.perf_counter() - settle < 5:
        time.sleep(0.01)
        alive = [pid for pid in alive if _running(pid)]
    if alive:
        return count(alive, "worker")
    took = time.perf_counter() - settle
    if took > 0.01:
        return f"nothing ({count(workers, 'worker')} gone {took:.2f} s later)"
    return "nothing"


def capped(fault: str, child: subprocess.Popen[str]) -> Row:
    """A script that did not return within ``CAP`` seconds: its live workers, then killed."""
    workers = [pid for pid in descendants(child.pid) if _running(pid) and not _helper(pid)]
    end(child)
    return Row(fault, f"not returned after {CAP:.0f} s", None, count(workers, "worker"))


def end(child: subprocess.Popen[str]) -> str:
    """Kill whatever is left of a script's process group; return what it printed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    out, _ = child.communicate()
    return out


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


# --- peers: the same faults in DataLoader and in asyncio + ProcessPoolExecutor --------

PEER = """
import signal, sys

signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored if run with & by a script
sys.path.insert(0, {here!r})
import faults

if __name__ == "__main__":
    faults.peer_row(sys.argv[1], sys.argv[2])
"""


class Items:
    """A map-style dataset for ``DataLoader``: item ``i`` is ``fn(i)``."""

    def __init__(self, fn: Callable[[int], Any]) -> None:
        self.fn = fn

    def __len__(self) -> int:
        return ITEMS

    def __getitem__(self, i: int) -> Any:
        return self.fn(i)


def fail(kind: str, path: str, x: int) -> Any:
    """``faulty(kind, path)(x)`` under a name a process pool can pickle."""
    return faulty(kind, path)(x)


def peer_fn(kind: str, path: str) -> Callable[[int], Any]:
    return functools.partial(fail, kind, path) if kind in IN_WORKER else slow


def loader(fn: Callable[[int], Any], timeout: float = 0) -> Any:
    """``DataLoader`` over a map-style dataset whose item ``i`` is ``fn(i)``."""
    from torch.utils.data import DataLoader

    dataset: Any = Items(fn)  # a Dataset by its methods
    return DataLoader(dataset, batch_size=None, num_workers=2, timeout=timeout)


def in_dataloader(kind: str, path: str) -> tuple[str, float | None, float]:
    """One row through ``DataLoader``: what arrived, the break, the statement after."""
    began = None
    arrived = "nothing"
    if kind == "break with items in flight":
        for _ in loader(slow):
            began = time.perf_counter()  # the first, fast item; the rest run
            break
    else:
        items = loader(peer_fn(kind, path), timeout=0.5 if kind.startswith("hang") else 0)
        try:
            list(items)
        except BaseException as exc:  # what arrives is the result
            arrived = type(exc).__name__
    return arrived, began, time.perf_counter()


def in_asyncio(kind: str, path: str) -> tuple[str, float | None, float]:
    """One row through asyncio and ``ProcessPoolExecutor(2)``, as ``in_dataloader``."""
    began = None

    async def main() -> None:
        nonlocal began
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(2) as pool:
            calls = [loop.run_in_executor(pool, peer_fn(kind, path), x) for x in range(ITEMS)]
            if kind == "break with items in flight":
                for first in asyncio.as_completed(calls):
                    await first
                    began = time.perf_counter()  # the first, fast item; the rest run
                    break
            elif kind == "outer deadline":
                async with asyncio.timeout(0.5):
                    began = time.perf_counter() + 0.5
                    await asyncio.gather(*calls)
            elif kind.startswith("hang"):
                await asyncio.gather(*(asyncio.wait_for(call, 0.5) for call in calls))
            else:
                await asyncio.gather(*calls)

    arrived = "nothing"
    try:
        asyncio.run(main())
    except BaseException as exc:  # what arrives is the result
        arrived = type(exc).__name__
    return arrived, began, time.perf_counter()


def peer_row(name: str, kind: str) -> None:
    """Run one row of one peer in this fresh process (``PEER``'s) and print it.

    A fault row prints JSON and leaves at once, its leftovers being the
    parent's to kill; the Ctrl-C row prints what arrived and exits as a script does.
    """
    if name == "dataloader":
        import torch.utils.data  # noqa: F401  (its threads are not the row's)
    run = in_dataloader if name == "dataloader" else in_asyncio
    threads = {t.ident for t in threading.enumerate() if t.ident is not None}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fault")
        print("ready", flush=True)
        arrived, began, caught = run(kind, path)
        if kind == "Ctrl-C":
            print(arrived, flush=True)
            return
        left = leftovers(threads)
        if began is None:
            with open(path) as f:
                began = float(f.read()) + (0.5 if kind.startswith("hang") else 0.0)
    print(json.dumps([arrived, caught - began, left]), flush=True)
    os._exit(0)


def peer(name: str, kind: str, script: str) -> Row:
    """One row of one peer, in a fresh process group that is killed whole afterwards."""
    if kind == "Ctrl-C":
        return interrupt([script, name, kind], family=2)  # two busy workers
    child = subprocess.Popen(
        [sys.executable, script, name, kind],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert child.stdout is not None
    child.stdout.readline()  # about to start: the cap counts from here
    try:
        child.wait(timeout=CAP)
    except subprocess.TimeoutExpired:
        return capped(kind, child)
    out = end(child).strip()
    if not out:
        return Row(kind, f"exit code {child.returncode}", None, "nothing")
    arrived, seconds, left = json.loads(out.splitlines()[-1])
    return Row(kind, arrived, seconds, left)


def peer_cell(name: str, kind: str, script: str) -> str:
    if name == "dataloader" and importlib.util.find_spec("torch") is None:
        return "torch not installed"
    if name == "dataloader" and kind == "outer deadline":
        return "–"  # a for loop has none
    return peer(name, kind, script).cell()


def peers(rows: list[Row]) -> None:
    """The same faults in the two peers, printed beside snake's ``rows``."""
    torch = "not installed"
    if importlib.util.find_spec("torch") is not None:
        torch = importlib.metadata.version("torch")
    print(
        f"\nthe same faults in {' and '.join(PEERS.values())} (torch {torch}), each row in "
        f"a fresh process group given {CAP:.0f} s ...",
        flush=True,
    )
    mine = {row.fault: row for row in rows}
    mine["Ctrl-C"] = mine["Ctrl-C during for x in pipeline"]
    table = []
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "peer.py")
        with open(script, "w") as f:
            f.write(PEER.format(here=os.path.dirname(os.path.abspath(__file__))))
        for kind in (*IN_WORKER, *IN_MAIN, "Ctrl-C"):
            cells = [peer_cell(name, kind, script) for name in PEERS]
            table.append([kind, mine[kind].cell(), *cells])
    print()
    print_columns([["fault", "snake", *PEERS.values()], *table], right=[False] * (2 + len(PEERS)))
    print()
    print(
        "each cell: what arrived, the seconds until the statement after the try block ran "
        "(snake's Ctrl-C: the for x in pipeline row; a peer's Ctrl-C: until the script "
        "exited), and what was left then if anything"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Faults tried on snake pipelines: how long each took to surface, and "
        "what was left (see the module docstring)."
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="then the same faults in DataLoader(num_workers=2) and in asyncio + "
        f"ProcessPoolExecutor(2), side by side (minutes: a row may take {CAP:.0f} s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if sys.platform != "linux":
        print("benchmarks/faults.py needs Linux")
        return 1
    print(f"snake {snake.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    trio.run(snake.from_iterable(range(2)).par_map(abs).collect)  # the fork server, once
    rows = [in_worker(kind) for kind in IN_WORKER]
    rows += [in_main(kind) for kind in IN_MAIN]
    rows += [ctrl_c("sync"), ctrl_c("trio"), missing_guard()]
    print()
    print_columns(
        [
            ["fault", "arrived as", "surfaced in", "left behind"],
            *([r.fault, r.arrived, r.when(), r.left] for r in rows),
        ],
        right=(False, False, True, False),
    )
    print()
    print(
        "surfaced in: from the fault (the worker's clock reading just before it; the item's "
        "timeout; the break; the deadline; the SIGINT) to the program having the error; the "
        "missing-guard row times the whole script"
    )
    if args.peers:
        peers(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
