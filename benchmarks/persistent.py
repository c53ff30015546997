"""Worker processes across epochs: snake with and without ``snake.persistent_workers()``
against torch's DataLoader with ``persistent_workers=False`` and ``True``, side by
side in one run.

The workload: 3 epochs over 2,000 items (``--quick``: 500), ``load(i) = 2 * i``,
in batches of 32, on 2 worker processes, each of whose ``init`` imports torch
(a second or more per worker start on 2 cores). For each start method,
``spawn`` and ``forkserver`` (DataLoader's ``multiprocessing_context``), four
contenders:

- snake ``from_iterable(range(n)).par_map(load, concurrency=2,
  workers=snake.WorkerOptions(start_method=..., init=init)).batch(32)``, one
  ``for`` loop per epoch: each run starts its workers and stops them at its end;
- the same loops inside ``with snake.persistent_workers():``, which keeps the
  workers from one run to the next;
- ``DataLoader(dataset, batch_size=32, num_workers=2, worker_init_fn=init,
  multiprocessing_context=..., persistent_workers=False)``, and ``True``.

Each contender runs in a fresh interpreter, ``_persistent_epochs.py`` (see its
docstring), as a user's script starts from nothing: no fork server, import or
worker of another contender is left to it. Its top imports the standard library
and snake alone, so every worker that starts imports torch, from a fork server
as from a spawn. Per epoch, it times ``iter()`` to the first batch and to the
end of the ``for`` loop; the total runs from the first ``iter()`` to the workers stopped after the
last epoch. Each epoch's items are checked, in order; a script that fails, runs
past 60 s or leaves a process running is reported as failed.

The goal: with ``spawn``, the second epoch's first batch inside
``persistent_workers()`` within 20 ms. The line under the table gives it, and
its ratio to DataLoader's with ``persistent_workers=True``.

How it is measured: the machine is shared and noisy, so by default each
contender runs once (about a minute in all; read the ratios, not the
milliseconds); with ``--repeat N``, N rounds interleaved round-robin, medians
reported. A fresh interpreter importing torch runs first, untimed, so that the
scripts read it from the operating system's file cache.

Usage::

    python benchmarks/persistent.py                 # both start methods, one round
    python benchmarks/persistent.py --quick         # 500 items
    python benchmarks/persistent.py --only spawn --repeat 3

torch comes with ``pip install -e ".[bench]"``; the workload needs it.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import multiprocessing
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from _harness import Count, print_columns, print_platform, round_robin
from _persistent_epochs import BATCH, WORKERS
from parallel_workloads._common import Contender
from parallel_workloads.cold import COLD_SETTLE, Script

if TYPE_CHECKING:
    from collections.abc import Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "_persistent_epochs.py")
ITEMS = Count(full=2_000, quick=500)
EPOCHS = 3
START_METHODS = ("spawn", "forkserver")
#: The second epoch's first batch inside ``persistent_workers()``, with spawn, at most.
GOAL_SECOND_FIRST = 0.020

#: The contenders of one start method: the script's name for each, and the row's.
KINDS = {
    "snake": "snake, each run its own workers",
    "snake-persistent": "snake, in persistent_workers()",
    "dataloader": "DataLoader(persistent_workers=False)",
    "dataloader-persistent": "DataLoader(persistent_workers=True)",
}


@dataclass
class Entry:
    """One contender: its script, run once per round, and its row's labels."""

    kind: str  # a key of KINDS
    method: str
    script: Script
    contender: Contender

    def median(self, key: str, at: int | None = None) -> float:
        """The median over the rounds of the script's ``key`` (its epoch ``at``)."""
        return statistics.median(r[key] if at is None else r[key][at] for r in self.script.results)


def entries(methods: Sequence[str], n: int) -> list[Entry]:
    found = []
    for method in methods:
        for kind, label in KINDS.items():
            script = Script(f"{label}, {method}", SCRIPT, (kind, method, str(n), str(EPOCHS)))
            run = functools.partial(total, script)
            found.append(Entry(kind, method, script, Contender(script.name, run)))
    return found


def total(script: Script) -> float:
    """One run of ``script``: its total, from the first ``iter()`` to its workers stopped."""
    return float(script.run()["total"])


# --- the table ---------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def row(entry: Entry) -> list[str]:
    head = [KINDS[entry.kind], entry.method]
    if not entry.contender.ok:
        return [*head, "failed", *[""] * (EPOCHS + 1)]
    firsts = [ms(entry.median("first", k)) for k in range(EPOCHS)]
    epochs = " / ".join(f"{entry.median('epochs', k):.3f}" for k in range(EPOCHS))
    return [*head, *firsts, f"{epochs} s", f"{entry.median('total'):.2f} s"]


def print_table(found: Sequence[Entry], n: int, rounds: int) -> None:
    print()
    print(
        f"{EPOCHS} epochs of {n:,} items in batches of {BATCH}, {WORKERS} workers whose init "
        f"imports torch; each contender a fresh script; "
        + ("one run each" if rounds == 1 else f"median of {rounds} rounds")
    )
    firsts = [f"epoch {k} first" for k in range(EPOCHS)]
    header = ["contender", "start", *firsts, "epochs " + "/".join(map(str, range(EPOCHS))), "total"]
    lines = [header, *(row(e) for e in found)]
    print_columns(lines, right=(False, False, *[True] * (EPOCHS + 2)))


def find(found: Sequence[Entry], kind: str, method: str) -> Entry | None:
    entry = next((e for e in found if e.kind == kind and e.method == method), None)
    return entry if entry is not None and entry.contender.ok else None


def goal_line(found: Sequence[Entry]) -> str | None:
    """The goal: snake's second epoch's first batch, with spawn, in persistent_workers()."""
    ours = find(found, "snake-persistent", "spawn")
    if ours is None:
        return None
    second = ours.median("first", 1)
    verdict = "meets" if second <= GOAL_SECOND_FIRST else "misses"
    line = (
        f"second run's first item with spawn + torch init: {ms(second)} "
        f"(goal <= {GOAL_SECOND_FIRST * 1e3:.0f} ms): {verdict}"
    )
    peer = find(found, "dataloader-persistent", "spawn")
    if peer is not None:
        theirs = peer.median("first", 1)
        line += f"; {second / theirs:.2f}x DataLoader(persistent_workers=True)'s ({ms(theirs)})"
    return line


def totals_line(found: Sequence[Entry], method: str) -> str | None:
    """snake's totals against DataLoader's, kept workers or not."""
    parts = []
    for ours, peer, what in (
        ("snake", "dataloader", "without"),
        ("snake-persistent", "dataloader-persistent", "with"),
    ):
        a, b = find(found, ours, method), find(found, peer, method)
        if a is not None and b is not None:
            parts.append(f"{a.median('total') / b.median('total'):.2f}x {what} persistent workers")
    return f"total, snake / DataLoader, {method}: " + ", ".join(parts) if parts else None


def notes(found: Sequence[Entry]) -> list[str]:
    lines = [goal_line(found), *(totals_line(found, m) for m in START_METHODS)]
    lines += [f"{e.script.name} failed: {e.contender.error}" for e in found if e.contender.error]
    walls = "; ".join(
        f"{KINDS[e.kind]}, {e.method} {statistics.median(e.script.walls):.1f} s"
        for e in found
        if e.script.walls
    )
    lines += [
        "first: from iter() to the epoch's first batch; epochs: from iter() to the end of "
        "its for loop (a run's own workers stop there); total: from the first iter() to the "
        "workers stopped after the last epoch",
        f"whole script, start to exit: {walls}" if walls else None,
    ]
    return [line for line in lines if line]


# --- command line ------------------------------------------------------------------


def _repeat(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _methods(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not chosen or any(m not in START_METHODS for m in chosen):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(START_METHODS)}, got {text!r}"
        )
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="snake's workers across epochs, with and without persistent_workers(), "
        "against DataLoader's (see the module docstring)."
    )
    parser.add_argument(
        "--repeat", type=_repeat, default=1, help="rounds, interleaved (default: 1)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{ITEMS.quick:,} items instead of {ITEMS.full:,}"
    )
    parser.add_argument(
        "--only",
        type=_methods,
        default=START_METHODS,
        metavar=",".join(START_METHODS),
        help="start methods to run (default: both)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if importlib.util.find_spec("torch") is None:
        raise SystemExit(
            "benchmarks/persistent.py needs torch, which its workers import: "
            'pip install -e ".[bench]"'
        )
    missing = [m for m in args.only if m not in multiprocessing.get_all_start_methods()]
    if missing:
        raise SystemExit(f"start method {missing[0]!r} is not available on this platform")
    n = ITEMS.pick(args.quick)
    print_platform("torch")
    # Untimed: torch's files into the file cache, for every script alike.
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    found = entries(args.only, n)
    round_robin([e.contender for e in found], args.repeat, settle=COLD_SETTLE)
    print_table(found, n, args.repeat)
    for line in notes(found):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
