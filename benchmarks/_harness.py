"""Run a workload's contenders interleaved, round-robin, and print a table of them.

What the benchmark scripts of this folder share: the command line (``--quick``,
``--repeat``, ``--only``), the header naming the versions and the machine, the
contenders and their rounds, the medians and ratios against a reference, the
table, and the checks that a contender's output is right. A workload says what
differs (``Workload``: its contenders, reference, goals and notes);
``run_workload`` does the rest, the same way for every table.

Worker processes of a benchmark may import its script again, and this module
with it: its imports stay with the standard library, trio and snake, which
the scripts import anyway.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from _snake_runs import cpu_count

import snake

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

# --- checking outputs -----------------------------------------------------------


class OutputMismatch(RuntimeError):
    """A contender produced the wrong items: its timing would mean nothing."""


def check(name: str, what: str, got: object, expected: object) -> None:
    if got != expected:
        raise OutputMismatch(f"{name}: {what} is {got!r}, expected {expected!r}")


def check_items(name: str, got: list[Any], expected: list[Any]) -> None:
    """Check every item, in order; the first wrong one is named."""
    if got == expected:
        return
    if len(got) != len(expected):
        raise OutputMismatch(f"{name}: {len(got)} items, expected {len(expected)}")
    at = next(i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
    check(name, f"item {at}", got[at], expected[at])


# --- running contenders round-robin -------------------------------------------


@dataclass
class Contender:
    """One way of doing a workload's work; ``run`` returns the timed seconds.

    ``attempt`` lets a failure propagate. A subclass may record it in ``error``
    instead: the contender then counts as failed. Without ``warm``, the contender
    skips the warm-up round (a reference that does no work of its own).
    """

    name: str
    run: Callable[[], float]
    seconds: list[float] = field(default_factory=list)
    error: str | None = None
    warm: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def attempt(self) -> None:
        self.seconds.append(self.run())


def round_robin(contenders: Sequence[Contender], rounds: int, settle: float = 0.0) -> None:
    """Run the contenders interleaved, A B C A B C ..., ``rounds`` times.

    With ``settle``, each run starts once the worker processes of the one
    before have exited, and ``settle`` seconds later, so that no contender
    is timed while another's workers are still shutting down.
    """
    for _ in range(rounds):
        for contender in contenders:
            if settle:
                quiet(settle)
            contender.attempt()


def quiet(seconds: float, patience: float = 5.0) -> None:
    """Wait (up to ``patience``) for this process's worker processes to exit, then ``seconds``."""
    import multiprocessing
    import time

    deadline = time.monotonic() + patience
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(seconds)


def warm_up(contenders: Sequence[Contender]) -> None:
    """One untimed run each; a failure here is handled as in a timed round."""
    for contender in contenders:
        contender.attempt()
        contender.seconds.clear()


# --- medians and ratios -----------------------------------------------------------


@dataclass
class Metric:
    """Seconds (lower is better) or items/s (higher is better) for ``n`` items."""

    n: int | None = None  # None: report seconds

    def values(self, c: Contender) -> list[float]:
        return c.seconds if self.n is None else [self.n / s for s in c.seconds]

    def median(self, c: Contender) -> float:
        return statistics.median(self.values(c))

    def text(self, value: float) -> str:
        return f"{value:.3f} s" if self.n is None else f"{value:,.0f} items/s"

    @property
    def unit(self) -> str:
        """What a chart's axis counts."""
        return "seconds (lower is better)" if self.n is None else "items/s (higher is better)"

    def ratio(self, c: Contender, ref: Contender) -> float:
        """The ratio of the medians."""
        return self.median(c) / self.median(ref)

    def ratios(self, c: Contender, ref: Contender) -> list[float]:
        """The ratio within each round."""
        pairs = zip(self.values(c), self.values(ref), strict=True)
        return [a / b for a, b in pairs]


def ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}x"


def span_text(values: Sequence[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}x"


def versus(metric: Metric, c: Contender, other: Contender) -> str:
    """The ratio of ``c`` to ``other``, of the medians and within each round."""
    return f"{ratio_text(metric.ratio(c, other))} (per round {span_text(metric.ratios(c, other))})"


# --- tables ---------------------------------------------------------------------


@dataclass
class Row:
    contender: str
    median: str
    ratio: str = "-"
    per_round: str = "-"
    goal: str = "-"
    verdict: str = "-"

    def judge(self, goal: str, meets: bool) -> None:
        self.goal = goal
        self.verdict = "meets" if meets else "misses"


HEADERS = Row("contender", "median", "vs ref", "per round", "goal", "verdict")
#: Columns holding numbers are right-aligned.
RIGHT = (False, True, True, True, False, False)


def rows_for(
    metric: Metric, ref: Contender | None, contenders: Sequence[Contender], ref_label: str | None
) -> list[Row]:
    """A row per contender, with ratios against ``ref`` where it ran; ``ref_label``
    follows the reference's name, if any."""
    rows = []
    for c in contenders:
        if not c.ok:
            rows.append(Row(c.name, "failed", verdict="see note" if c.error else "-"))
            continue
        row = Row(c.name, metric.text(metric.median(c)))
        if c is ref:
            row.contender = c.name if ref_label is None else f"{c.name} ({ref_label})"
            row.ratio = "1.00x"
        elif ref is not None and ref.ok:
            row.ratio = ratio_text(metric.ratio(c, ref))
            row.per_round = span_text(metric.ratios(c, ref))
        rows.append(row)
    return rows


def times_row(name: str, seconds: Sequence[float]) -> Row:
    """A row of times without a reference: the median, then the fastest and slowest."""
    spread = f"{min(seconds):.3f}-{max(seconds):.3f} s"
    return Row(name, f"{statistics.median(seconds):.3f} s", per_round=spread)


def failure_notes(contenders: Iterable[Contender]) -> list[str]:
    return [f"{c.name} failed: {c.error}" for c in contenders if c.error]


def print_columns(lines: Sequence[Sequence[str]], right: Sequence[bool]) -> None:
    """Lines of cells in aligned columns, the first a header with a rule under it;
    the columns ``right`` marks are right-aligned."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(right))]

    def fmt(line: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(line, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    print(fmt(lines[0]))
    print("  ".join("-" * w for w in widths))
    for line in lines[1:]:
        print(fmt(line))


def print_table(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> None:
    print()
    print(title)
    print_columns([list(vars(row).values()) for row in (HEADERS, *rows)], RIGHT)
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()


# --- workloads --------------------------------------------------------------------


@dataclass
class Table:
    """A workload's table once its rounds have run: what its ``judge`` fills in."""

    metric: Metric
    reference: Contender | None
    shown: list[Contender]  # a row each, in order
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    chart: str | None = None  # the bar chart's title, if the workload has one

    def row(self, c: Contender) -> Row:
        return self.rows[self.shown.index(c)]

    def judge(self, c: Contender, goal: str, meets: bool) -> None:
        """Give ``c``'s row its goal and verdict."""
        self.row(c).judge(goal, meets)


class Workload:
    """One table of a benchmark: what differs from one table to the next.

    ``run_workload`` runs ``contenders()`` of ``warm()`` once, untimed, then
    ``contenders()`` round-robin, and prints a row for each of ``shown()``, with
    ratios against ``reference()``; ``judge`` then adds goals, rows and notes, and
    the lines of ``skipped()`` and the failures close the notes.
    """

    #: Seconds of quiet before each timed run (see ``round_robin``).
    settle: float = 0.0
    #: Said after the reference's name in its row (None: nothing).
    ref_label: str | None = "reference"

    def title(self, rounds: int) -> str:
        raise NotImplementedError

    def metric(self) -> Metric:
        return Metric()

    def contenders(self) -> Sequence[Contender]:
        """Every contender to time, the table's in the table's order."""
        raise NotImplementedError

    def warm(self) -> Workload | None:
        """The workload to run once, untimed, first (None: no warm-up round): by
        default this one, often the same at a smaller size. Its contenders are built
        anew; one that fails there keeps its error in the timed rounds."""
        return self

    def reference(self, timed: Sequence[Contender]) -> Contender | None:
        return timed[0]

    def shown(self, timed: Sequence[Contender], reference: Contender | None) -> list[Contender]:
        """The contenders that get a row, in order."""
        return list(timed)

    def judge(self, table: Table) -> None:
        """Goals and verdicts, rows below the contenders', notes."""

    def skipped(self) -> list[str]:
        """A note for each contender left out, saying why."""
        return []

    def chart(self) -> str | None:
        """The title of the workload's bar chart, if it has one."""
        return None


def run_workload(workload: Workload, rounds: int) -> Table:
    """Warm up, run ``rounds`` rounds, judge and print the workload's table."""
    warm = workload.warm()
    warmed = [c for c in warm.contenders() if c.warm] if warm is not None else []
    warm_up(warmed)
    timed = list(workload.contenders())
    if warm is not None:
        for c, w in zip([c for c in timed if c.warm], warmed, strict=True):
            c.error = w.error
    round_robin(timed, rounds, workload.settle)

    metric = workload.metric()
    reference = workload.reference(timed)
    shown = workload.shown(timed, reference)
    rows = rows_for(metric, reference, shown, workload.ref_label)
    table = Table(metric, reference, shown, rows, chart=workload.chart())
    workload.judge(table)
    table.notes += [*workload.skipped(), *failure_notes(timed)]
    print_table(workload.title(rounds), table.rows, table.notes)
    return table


def run_chosen(
    workloads: Mapping[str, Workload | Sequence[Workload]], args: argparse.Namespace
) -> list[Table]:
    """The workloads that ``--only`` names, in the order of ``workloads``, run and printed;
    a name may stand for several, one table each."""
    rounds = timed_rounds(args)
    chosen = [w for name, w in workloads.items() if name in args.only]
    return [
        run_workload(w, rounds)
        for ws in chosen
        for w in ((ws,) if isinstance(ws, Workload) else ws)
    ]


# --- command line and header ------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """A number for a full run, and a smaller one for ``--quick``."""

    full: int
    quick: int

    def pick(self, quick: bool) -> int:
        return self.quick if quick else self.full


ROUNDS = Count(full=5, quick=3)
MIN_ROUNDS = 3


def _rounds(text: str) -> int:
    value = int(text)
    if value < MIN_ROUNDS:
        raise argparse.ArgumentTypeError(f"must be >= {MIN_ROUNDS}, got {value}")
    return value


def argument_parser(
    description: str, workloads: Sequence[str], quick_sizes: str
) -> argparse.ArgumentParser:
    """``--repeat``, ``--quick`` (``quick_sizes`` names its sizes) and ``--only``."""

    def chosen_workloads(text: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
        unknown = [w for w in chosen if w not in workloads]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(workloads)}, got {text!r}"
            )
        return chosen

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--repeat",
        type=_rounds,
        default=None,
        help=f"timed rounds per workload, >= {MIN_ROUNDS} "
        f"(default: {ROUNDS.full}, or {ROUNDS.quick} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smaller sizes ({quick_sizes}) and {ROUNDS.quick} rounds, for a smoke run",
    )
    parser.add_argument(
        "--only",
        type=chosen_workloads,
        default=tuple(workloads),
        metavar=",".join(workloads),
        help="workloads to run (default: all)",
    )
    return parser


def timed_rounds(args: argparse.Namespace) -> int:
    """The timed rounds per workload that the command line asks for."""
    return args.repeat or ROUNDS.pick(args.quick)


def version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def print_platform(*dists: str) -> None:
    """The versions of Python, trio, trio-parallel, snake and ``dists``; the CPUs."""
    versions = "".join(f", {dist} {version(dist)}" for dist in dists)
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"trio {trio.__version__}, trio-parallel {version('trio-parallel')}, "
        f"snake {snake.__version__}{versions}"
    )
    print(f"CPUs: {os.cpu_count()} ({cpu_count()} usable); {platform.platform()}")


def print_plan(quick: bool, rounds: int) -> None:
    mode = "quick" if quick else "full"
    print(f"{mode} run, {rounds} rounds, contenders interleaved round-robin, medians reported")
    sys.stdout.flush()
