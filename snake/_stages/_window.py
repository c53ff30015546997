"""The window of a ``par_then`` or ``par_map``: how many jobs it has under way."""

from __future__ import annotations

import trio


class Window:
    """Jobs in flight or waiting to leave: at most ``limit``, which may change.

    As ``trio.Semaphore``: ``acquire`` is a checkpoint, and waiters are let
    in first come, first served.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._room = trio.lowlevel.ParkingLot()
        #: Seconds jobs have waited for room, and since when one waits now.
        self._parked = 0.0
        self._since: float | None = None

    async def acquire(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.used < self.limit and not self._room:
            self.used += 1
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self._since = trio.current_time()
        try:
            await self._room.park()  # release() lets us in, counted
        finally:
            self._parked, self._since = self.parked(trio.current_time()), None

    def parked(self, now: float) -> float:
        """The seconds a job has waited for room until ``now``: how long the
        window held the stage back (one job waits at a time: the stage's feeder)."""
        return self._parked + (0.0 if self._since is None else now - self._since)

    def release(self) -> None:
        self.used -= 1
        self._admit()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._admit()

    def _admit(self) -> None:
        while self._room and self.used < self.limit:
            self.used += 1
            self._room.unpark()
