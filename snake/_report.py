"""Watching a run: a callback with the statistics every few seconds, and a progress line.

Both run as one more task of the pipeline's nursery, reading the figures the
stages keep anyway, so they cost the stages nothing. The callback (say, to
send the figures to a logger or TensorBoard) gets a ``Statistics`` every
``report_every`` seconds and once more at the end. The progress display
shows items (of how many, when the pipeline's ``len()`` is known), items/s,
elapsed time and the bottleneck: with ``tqdm`` if it is installed, else a
plain line on stderr, redrawn in place on a terminal and printed once per
report otherwise.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import attrs
import trio

from . import _validate as check
from ._errors import carried

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._stats import Statistics


@attrs.frozen
class Reporting:
    """What ``open()``, ``collect()`` and ``iterate()`` were asked to report, checked."""

    report: Callable[[Statistics], object] | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            check.validator(check.check_taking, "snake.Statistics")
        ),
    )
    report_every: float = attrs.field(
        default=1.0, validator=check.validator(check.check_seconds, finite=True)
    )
    progress: bool = attrs.field(default=False, validator=check.validator(check.check_bool))
    #: The number of items the run yields, if known: the progress's total,
    #: which the run sets (see ``Pipeline.__len__``).
    total: int | None = None

    @property
    def wanted(self) -> bool:
        return self.report is not None or self.progress


async def watch(reporting: Reporting, statistics: Callable[[], Statistics]) -> None:
    """Report every ``report_every`` seconds until cancelled, then once more."""
    display = _display(reporting.total) if reporting.progress else None
    try:
        while True:
            await trio.sleep(reporting.report_every)
            _report(reporting, statistics(), display)
    finally:
        _report(reporting, statistics(), display)
        if display is not None:
            display.close()


def _report(reporting: Reporting, stats: Statistics, display: _Display | None) -> None:
    if reporting.report is not None:
        try:
            reporting.report(stats)
        except ExceptionGroup as group:  # the user's own, kept as raised
            raise carried(group) from group
    if display is not None:
        display.show(stats)


class _Display:
    """A plain progress line on stderr."""

    def __init__(self, total: int | None) -> None:
        self._terminal = sys.stderr.isatty()
        self._shown = False
        self._of = "" if total is None else f"/{total:,}"

    def show(self, stats: Statistics) -> None:
        done = stats.stages[-1].items_out if stats.stages else 0
        rate = done / stats.elapsed if stats.elapsed > 0 else 0.0
        line = (
            f"snake: {done:,}{self._of} items, {rate:,.0f} items/s, {stats.elapsed:.1f} s; "
            f"bottleneck {stats.verdict()}"
        )
        if self._terminal:
            sys.stderr.write("\r\x1b[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._terminal and self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _Tqdm(_Display):
    """The progress as a ``tqdm`` bar."""

    def __init__(self, tqdm: Any, total: int | None) -> None:
        self._bar = tqdm(total=total, unit=" items", desc="snake", dynamic_ncols=True)
        self._done = 0

    def show(self, stats: Statistics) -> None:
        done = stats.stages[-1].items_out if stats.stages else 0
        self._bar.update(done - self._done)
        self._done = done
        bottleneck = stats.bottleneck()
        if bottleneck is not None:
            self._bar.set_postfix_str(f"bottleneck {bottleneck.label}", refresh=False)

    def close(self) -> None:
        self._bar.close()


def _display(total: int | None) -> _Display:
    try:
        from tqdm import tqdm  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return _Display(total)
    return _Tqdm(tqdm, total)
