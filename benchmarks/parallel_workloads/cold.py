"""(cold) what a script started from nothing waits for, in two tables: every
measurement is a fresh Python process running a script of this folder, which
times itself and prints its timing as one JSON line.

(cold first item) ``_cold_first.py``, whose top imports torch and snake, builds a
loader and takes its first item: snake (``next(iter(...))``, and ``open()``), against
DataLoader (the reference) and torchdata.nodes.
(cold seed) ``_cold_seed.py`` runs the seed workload once: snake against asyncio +
``ProcessPoolExecutor``, relative to the ideal, estimated in a fresh process too.
"""

from __future__ import annotations

import compileall
import contextlib
import dataclasses
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import _harness
from _harness import Table, check, check_items, times_row, versus
from _snake_runs import Ideal, demo, seed_expected

from ._common import WORKERS, Contender, PeersWorkload, snake_start_method
from .seed import GOAL_SEED_IDEAL, SEED_ITEMS, SEED_UNIT, WARM_ITEMS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
FIRST_SCRIPT = os.path.join(HERE, "_cold_first.py")
SEED_SCRIPT = os.path.join(HERE, "_cold_seed.py")
#: Seconds a script may take, start to exit, before it is killed and fails.
COLD_TIMEOUT = 60.0
#: Seconds a script's worker processes may outlive it before they are killed
#: and it fails.
COLD_LINGER = 5.0
#: Seconds of quiet before each script starts.
COLD_SETTLE = 0.3
#: The first item of ``_cold_first.py``: ``double(0)``.
FIRST_ITEM = 0
GOAL_COLD_FIRST = 2.0  # snake first item / DataLoader first item, at most
COMPILED_NOTE = (
    "snake's modules are compiled to bytecode before the rounds, as installing it from "
    "a wheel does (its dependencies' are, by pip)"
)


class ScriptFailed(RuntimeError):
    """A script of a cold measurement failed, hung, or left processes running."""


@dataclass
class Script:
    """A script run in a fresh interpreter for each measurement: its command line, what
    each run printed last (one JSON object), and how long each ran, start to exit, as
    this process saw it."""

    name: str  # the contender's
    path: str
    args: tuple[str, ...] = ()
    results: list[dict[str, Any]] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)

    def run(self, timeout: float = COLD_TIMEOUT) -> dict[str, Any]:
        """Run ``python path args`` in a process group of its own; a script still running
        after ``timeout`` is killed with every process it started, and so are processes
        left ``COLD_LINGER`` seconds after it exits."""
        began = time.perf_counter()
        with subprocess.Popen(
            [sys.executable, self.path, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.communicate()
                raise ScriptFailed(f"no result within {timeout:g} s: killed") from None
        wall = time.perf_counter() - began
        if _lingers(process.pid, COLD_LINGER):
            _kill_group(process.pid)
            raise ScriptFailed(f"processes still ran {COLD_LINGER:g} s after the script exited")
        if process.returncode != 0:
            last = err.strip().splitlines()[-1:] or ["nothing on stderr"]
            raise ScriptFailed(f"exit status {process.returncode}: {last[0]}")
        try:
            result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise ScriptFailed(f"no JSON line in its output: {out[-200:]!r}") from None
        self.results.append(result)
        self.walls.append(wall)
        return result


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _lingers(group: int, patience: float) -> bool:
    """Whether processes of ``group`` still run after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while _runs(group):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.01)
    return False


def _runs(group: int) -> bool:
    """Whether a process of ``group`` runs. Where ``/proc`` tells, zombies do not count:
    workers that outlive their parent wait there until init reaps them, which some
    systems' init does a second or two late."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                # After the command's closing parenthesis: state, ppid, process group.
                state, _, pgrp = f.read().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == group and state != "Z":
            return True
    return False


def compile_snake() -> None:
    """Compile snake's modules to bytecode, as installing it from a wheel does. An
    editable install run under ``PYTHONDONTWRITEBYTECODE`` (as on the test machine)
    has none, and each fresh script would compile them from source: about 0.04 s
    that the packages installed beside it, torch and trio among them, do not pay."""
    import snake

    compileall.compile_dir(os.path.dirname(snake.__file__), quiet=1)


@dataclass
class ColdWorkload(_harness.Workload):
    """A workload whose contenders are scripts: ``scripts`` holds each one's, by name.
    snake's bytecode is compiled before they run (``compile_snake``)."""

    scripts: dict[str, Script] = field(default_factory=dict, init=False)

    settle = COLD_SETTLE

    def add(
        self,
        name: str,
        measure: Callable[[Script], float],
        path: str,
        *args: str,
        warm: bool = True,
    ) -> Contender:
        """A contender named ``name``, timed by ``measure`` running ``python path args``."""
        self.scripts[name] = script = Script(name, path, args)
        return Contender(name, functools.partial(measure, script), warm=warm)

    def walls_note(self) -> str:
        walls = "; ".join(
            f"{name} {statistics.median(s.walls):.2f} s"
            for name, s in self.scripts.items()
            if s.walls
        )
        return f"whole script, start to exit, median: {walls}"


# --- (cold first item) ---------------------------------------------------------------

#: The contender that is a trio program: its script imports trio at its top.
OPEN_NAME = "snake par_map, open() + receive()"


@dataclass
class ColdFirst(ColdWorkload, PeersWorkload):
    """The first item in a script that imports torch; the reference is DataLoader's."""

    ours: list[Contender] = field(default_factory=list, init=False)
    loader: Contender | None = field(default=None, init=False)  # the reference

    def title(self, rounds: int) -> str:
        return (
            "(cold first item) a fresh script importing torch, to the first item of a "
            f"{WORKERS}-worker process map; median of {rounds} rounds; "
            "ratio = time / DataLoader's (lower is better)"
        )

    def chart(self) -> str:
        return "cold script: time to first item"

    def warm(self) -> ColdFirst:
        return dataclasses.replace(self)  # records of its own

    def contenders(self) -> list[Contender]:
        self.scripts, self.ours, self.loader = {}, [], None
        compile_snake()
        # The script imports torch at its top, whatever it then runs.
        if not self.offer("the cold first item", "torch"):
            return []
        first, path = self.first, FIRST_SCRIPT
        self.loader = self.add(
            f"DataLoader(num_workers={WORKERS}), next(iter())", first, path, "dataloader"
        )
        self.ours = [
            self.add("snake par_map, next(iter())", first, path, "snake-iter"),
            self.add(OPEN_NAME, first, path, "snake-open"),
        ]
        timed = [self.loader, *self.ours]
        if self.offer("torchdata.nodes", "torchdata"):
            timed.append(self.add("torchdata ParallelMapper(process)", first, path, "torchdata"))
        return timed

    def reference(self, timed: Sequence[_harness.Contender]) -> Contender | None:
        return self.loader

    def judge(self, table: Table) -> None:
        metric, reference = table.metric, table.reference
        for ours in self.ours:
            if ours.ok and reference is not None and reference.ok:
                meets = metric.ratio(ours, reference) <= GOAL_COLD_FIRST
                table.judge(ours, f"<= {GOAL_COLD_FIRST:g}x", meets)
        results = [r for s in self.scripts.values() for r in s.results]
        for module, label in (("torch", "import torch"), ("snake", "then import snake")):
            if results:
                seconds = [r["imports"][module] for r in results]
                table.rows.append(times_row(f"{label} (info, every script)", seconds))
        trio_program = self.scripts.get(OPEN_NAME)
        if trio_program is not None and trio_program.results:
            seconds = [r["imports"]["trio"] for r in trio_program.results]
            table.rows.append(times_row(f"then import trio (info, {OPEN_NAME} only)", seconds))
        for name, script in self.scripts.items():
            built = [r["built"] for r in script.results if r.get("built") is not None]
            if built:
                label = f"{name}: building the pipeline (info, within its time)"
                table.rows.append(times_row(label, built))
        for name, script in self.scripts.items():
            if script.results:
                seconds = [r["collected"] for r in script.results]
                label = f"{name}: the garbage collector's passes (info, within its time)"
                table.rows.append(times_row(label, seconds))
        for name, script in self.scripts.items():
            if script.results:
                seconds = [r["script"] for r in script.results]
                table.rows.append(times_row(f"{name}: from the script's first line", seconds))
        if not self.scripts:
            return
        table.notes += [
            "each run a fresh `python _cold_first.py`, whose top imports torch, then snake "
            "(and trio, for the trio program); timed inside it from just before the loader "
            "is built (snake's engine loads there, on first use: its modules, and trio "
            "unless the script imported it) to its first item of 100 "
            "(double(i), a function of the script); 'from the script's first line' adds "
            "its imports; the loader is shut down after the timing and the script exits; "
            "the first full pass of the garbage collector after `import torch` (over its "
            "objects) falls on whoever first allocates a few hundred objects",
            f"start methods: snake {snake_start_method()} (started inside the timing, a "
            "fork of the script where no other thread runs); the others fork from the "
            "script",
            COMPILED_NOTE,
            self.walls_note(),
        ]

    # --- the contenders ---------------------------------------------------------

    @staticmethod
    def first(script: Script) -> float:
        result = script.run()
        check(script.name, "the first item", result["item"], FIRST_ITEM)
        return float(result["elapsed"])


# --- (cold seed) ----------------------------------------------------------------------


@dataclass
class ColdSeed(ColdWorkload):
    """The seed workload run once by a fresh script; the reference is its ideal time."""

    n: int = SEED_ITEMS
    ours: Contender = field(init=False)
    peer: Contender = field(init=False)

    def title(self, rounds: int) -> str:
        return (
            f"(cold seed) the seed workload ({self.n} items, fib in {WORKERS} processes) "
            f"once, by a fresh script; median of {rounds} rounds; "
            "ratio = elapsed / ideal (lower is better)"
        )

    def chart(self) -> str:
        return f"cold script: seed workload ({self.n} items)"

    def warm(self) -> ColdSeed:
        return dataclasses.replace(self, n=WARM_ITEMS)

    def contenders(self) -> list[Contender]:
        self.scripts = {}
        compile_snake()
        seed = (str(self.n), str(SEED_UNIT))
        path = SEED_SCRIPT
        ideal = self.add("ideal (estimate)", self.ideal, path, "ideal", *seed, warm=False)
        self.ours = self.add("snake, await collect()", self.seed, path, "snake", *seed)
        self.peer = self.add(
            f"asyncio + ProcessPoolExecutor({WORKERS})", self.seed, path, "asyncio", *seed
        )
        return [ideal, self.ours, self.peer]

    def judge(self, table: Table) -> None:
        metric, reference, ours, peer = table.metric, table.reference, self.ours, self.peer
        assert reference is not None
        if ours.ok and reference.ok:
            meets = metric.ratio(ours, reference) <= GOAL_SEED_IDEAL
            table.judge(ours, f"<= {GOAL_SEED_IDEAL:g}x", meets)
        if ours.ok and peer.ok:
            table.notes.append(
                f"snake / {peer.name}: {versus(metric, ours, peer)}; below 1 is faster"
            )
        ideal = Ideal(self.n, SEED_UNIT)
        ideal.estimates = [
            demo.Estimate(**r["estimate"]) for r in self.scripts[reference.name].results
        ]
        if ideal.estimates:
            table.notes.append(f"{ideal.note()}; each estimated in a fresh script")
        table.notes += [
            "each run a fresh `python _cold_seed.py`, whose top imports the standard library "
            "alone; timed inside it from just before the pipeline or pool starts, after the "
            "imports, to the end of the run, its workers stopped",
            f"start methods: snake {snake_start_method()} (started inside the timing); "
            "ProcessPoolExecutor forks from the script",
            COMPILED_NOTE,
            self.walls_note(),
        ]

    # --- the contenders ---------------------------------------------------------

    @staticmethod
    def ideal(script: Script) -> float:
        return float(script.run()["elapsed"])

    def seed(self, script: Script) -> float:
        result = script.run()
        check_items(script.name, result["items"], seed_expected(self.n))
        return float(result["elapsed"])
