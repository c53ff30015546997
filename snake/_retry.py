"""When a failing call is tried again, and the note on the error of its last try.

With ``retries=n`` a failing call is tried again up to ``n`` times, after
``RETRY_DELAY`` seconds, doubling each time (at most ``RETRY_DELAY_MAX``):
for idempotent functions that fail now and then, as network reads do. The
loop for synchronous calls (in a ``par_map``'s workers) is here; the one for
async calls, which needs trio, is ``_policy.retrying_async``. Imports only
the standard library: worker processes use it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

#: Seconds before the first retry; each later one waits twice as long.
RETRY_DELAY = 0.1
#: Longest wait between two tries.
RETRY_DELAY_MAX = 5.0


def retry_delay(attempt: int) -> float:
    """Seconds to wait before try ``attempt + 2`` (after ``attempt + 1`` failed)."""
    return float(min(RETRY_DELAY * 2**attempt, RETRY_DELAY_MAX))


def tried(exc: BaseException, retries: int) -> None:
    """Note on the error of the last of ``retries + 1`` tries."""
    if retries:
        exc.add_note(f"snake: the call failed {retries + 1} times (retries={retries})")


def retrying(fn: Callable[[Any], Any], retries: int) -> Callable[[Any], Any]:
    """``fn``, tried up to ``retries`` more times while it raises."""

    def call(x: Any) -> Any:
        for attempt in range(retries):
            try:
                return fn(x)
            except Exception:  # tried again
                time.sleep(retry_delay(attempt))
        try:
            return fn(x)
        except Exception as exc:
            tried(exc, retries)
            raise

    return call
