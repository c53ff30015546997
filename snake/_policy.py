"""What a stage does when its function raises: retry, raise (the default), or skip the item.

With ``retries=n`` a failing call is tried again (see ``_retry`` for when).

With ``errors="skip"`` a failing item is dropped and counted; the first
error of each type is logged (``logging.getLogger("snake")``), the others
are only counted, so a million bad records do not flood the log. Past
``max_failures`` the stage raises the error that went over the limit, with
a note saying so: a count, or a fraction of the items the stage has seen
(which always allows at least one).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from . import _validate as check
from ._errors import carried
from ._exceptions import timed_out
from ._position import Saved
from ._retry import retry_delay, tried

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

logger = logging.getLogger("snake")

ERRORS: tuple[str, ...] = ("raise", "skip")


@attrs.frozen(kw_only=True)
class ErrorPolicy:
    """A stage's ``errors=``, ``retries=``, ``timeout=`` and ``max_failures=``, checked
    when the pipeline is built."""

    errors: Literal["raise", "skip"] = attrs.field(
        default="raise", validator=check.validator(check.check_choice, ERRORS)
    )
    #: Tries of a failing call after the first.
    retries: int = attrs.field(default=0, validator=check.validator(check.check_int, minimum=0))
    #: Seconds an item's call may take (``par_then``, ``par_map``).
    timeout: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(check.validator(check.check_seconds))
    )
    #: Most items skipped (``errors="skip"``): a count or a fraction of those seen.
    max_failures: int | float | None = attrs.field(default=None)

    @max_failures.validator
    def _limit(self, attribute: attrs.Attribute[Any], value: float | None) -> None:
        check.check_max_failures(value, self.errors)

    @property
    def skips(self) -> bool:
        return self.errors == "skip"

    def failures(self, label: str, saved: Saved | None = None) -> Failures | None:
        """What one run of stage ``label`` skips, if it skips failing items;
        resumed from ``saved``, with the items it had skipped before."""
        if not self.skips:
            return None
        skipped = 0 if saved is None or saved.own is None else saved.own.get("skipped", 0)
        at = 0 if saved is None else saved.at
        return Failures(label, self.max_failures, seen=at, skipped=skipped, before=skipped)


def retrying_async(
    fn: Callable[[Any], Awaitable[Any]], retries: int, timeout: float | None = None
) -> Callable[[Any], Awaitable[Any]]:
    """``fn``, tried up to ``retries`` more times while it raises.

    Each try that takes longer than ``timeout`` seconds is cancelled and
    counts as failing with ``ItemTimeoutError``. A result that cannot be
    awaited is a bug: ``NotAwaitable`` at once, never tried again.
    """
    limit = math.inf if timeout is None else timeout

    async def call(x: Any) -> Any:
        for attempt in range(retries + 1):
            try:
                awaitable = fn(x)
            except Exception as exc:
                error: Exception = exc
            else:
                check.awaitable(awaitable)
                try:
                    with trio.move_on_after(limit):
                        return await awaitable
                    error = timed_out(limit)  # the scope above ran out
                except Exception as exc:
                    error = exc
            if attempt < retries:
                await trio.sleep(retry_delay(attempt))
        tried(error, retries)
        raise error

    return call


@attrs.define(eq=False)
class Failures:
    """The items one run of a stage skipped, and whether it may skip more."""

    _label: str
    _limit: int | float | None
    _logged: set[type[BaseException]] = attrs.Factory(set)
    #: Items of the stage's input whose call has ended, at least.
    seen: int = 0
    skipped: int = 0
    #: The positions skipped, in the order they were, from the
    #: ``before``-th on (see ``resumed_at``).
    positions: list[int] = attrs.Factory(list)
    before: int = 0

    def skip(self, exc: Exception, position: int) -> None:
        """Skip the item at ``position``, or raise ``exc`` if that is one too many.

        ``exc`` already carries its stage note.
        """
        self.skipped += 1
        self.seen = max(self.seen, position + 1)
        self.positions.append(position)
        limit = self._limit
        if limit is not None:
            allowed = limit if isinstance(limit, int) else max(1, int(limit * self.seen))
            if self.skipped > allowed:
                exc.add_note(
                    f"snake: stage {self._label} skipped {self.skipped} failing items of the "
                    f"{self.seen} it has seen, more than max_failures={limit!r} allows"
                )
                raise carried(exc)
        kind = type(exc)
        if kind not in self._logged:
            self._logged.add(kind)
            logger.warning(
                "stage %s skipped item %d: %s: %s (later %s errors of this stage are "
                "counted, not logged)",
                self._label, position, kind.__name__, exc, kind.__name__,
            )  # fmt: skip

    def resumed_at(self, out: int) -> Saved:
        """Where an ordered stage's input stood once it had yielded ``out``
        results: past ``out`` items and those it skipped among them, with the
        number skipped, which its budget counts on from."""
        at, before, positions = out + self.before, self.before, self.positions
        for position in positions:
            if position >= at:
                break
            at += 1
        del positions[: at - out - before]
        self.before = at - out
        return Saved(at, own={"skipped": self.before} if self.before else None)

    def sources(self, positions: frozenset[int]) -> set[int]:
        """The input positions of an ordered stage's results at ``positions``:
        past the items it skipped (those kept since ``resumed_at``)."""
        found = set()
        for q in positions:
            at = q + self.before
            for position in self.positions:
                if position > at:
                    break
                at += 1
            found.add(at)
        return found
