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
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from . import _validate as check
from ._exceptions import timed_out
from ._retry import retry_delay, tried

logger = logging.getLogger("snake")

ERRORS = ("raise", "skip")


@attrs.frozen
class ErrorPolicy:
    """A stage's ``errors=`` and ``max_failures=``, checked when the pipeline is built."""

    errors: str = "raise"
    max_failures: int | float | None = None
    #: Seconds an item's call may take (``par_then``, ``par_map``).
    timeout: float | None = None
    retries: int = 0

    def __attrs_post_init__(self) -> None:
        if self.errors not in ERRORS:
            raise ValueError(f"`errors` must be 'raise' or 'skip', got {self.errors!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(
                f"`retries` must be an int, got {type(self.retries).__name__} {self.retries!r}"
            )
        if self.retries < 0:
            raise ValueError(f"`retries` must be >= 0, got {self.retries}")
        timeout = self.timeout
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(
                    f"`timeout` must be a number of seconds, got {type(timeout).__name__} "
                    f"{timeout!r}"
                )
            if not timeout > 0:
                raise ValueError(f"`timeout` must be > 0 seconds, got {timeout}")
        limit = self.max_failures
        if limit is None:
            return
        if self.errors != "skip":
            raise ValueError(
                '`max_failures` applies with errors="skip" only; add errors="skip" or drop it'
            )
        if isinstance(limit, bool) or not isinstance(limit, (int, float)):
            raise TypeError(
                "`max_failures` must be a count (int >= 0) or a fraction of the items seen "
                f"(float between 0 and 1), got {type(limit).__name__} {limit!r}"
            )
        if isinstance(limit, int) and limit < 0:
            raise ValueError(f"`max_failures` as a count must be >= 0, got {limit}")
        if isinstance(limit, float) and not 0.0 < limit < 1.0:
            raise ValueError(
                f"`max_failures` as a fraction must be between 0 and 1 (exclusive), got {limit}"
            )

    @property
    def skips(self) -> bool:
        return self.errors == "skip"


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


class Failures:
    """The items one run of a stage skipped, and whether it may skip more."""

    __slots__ = ("_label", "_limit", "_logged", "seen", "skipped")

    def __init__(self, policy: ErrorPolicy, label: str) -> None:
        self._label = label
        self._limit = policy.max_failures
        self._logged: set[type[BaseException]] = set()
        self.seen = 0  # items of the stage's input whose call has ended, at least
        self.skipped = 0

    def skip(self, exc: Exception, position: int) -> None:
        """Skip the item at ``position``, or raise ``exc`` if that is one too many.

        ``exc`` already carries its stage note.
        """
        self.skipped += 1
        self.seen = max(self.seen, position + 1)
        limit = self._limit
        if limit is not None:
            allowed = limit if isinstance(limit, int) else max(1, int(limit * self.seen))
            if self.skipped > allowed:
                exc.add_note(
                    f"snake: stage {self._label} skipped {self.skipped} failing items of the "
                    f"{self.seen} it has seen, more than max_failures={limit!r} allows"
                )
                raise exc
        kind = type(exc)
        if kind not in self._logged:
            self._logged.add(kind)
            logger.warning(
                "stage %s skipped item %d: %s: %s (later %s errors of this stage are "
                "counted, not logged)",
                self._label, position, kind.__name__, exc, kind.__name__,
            )  # fmt: skip
