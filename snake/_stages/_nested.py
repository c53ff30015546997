"""Positions of the pipelines a stage runs nested (``concat``, ``repeat``, ``zip``, ...).

Each nested pipeline is an :class:`Inner`: where it stood at a position of
its own output is its run's walk (see ``_position``), saved as ``{"q":
position, "inner": [entries]}``; a stage made of pipelines saves where each
stood at the point of its own output asked for, and resumes each from that.
:class:`Sequential` is the positions of ``concat`` and ``repeat``, whose
pipelines run one after another.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from .._checkpoint import Resume, nested
from .._position import Saved, tracking

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._receiver import PipelineReceiver
    from ._base import Spec


class Inner:
    """One nested pipeline: its receiver once it runs, and where it resumes."""

    __slots__ = ("items", "resume", "specs")

    def __init__(self, specs: Sequence[Spec], data: Any = None) -> None:
        self.specs = specs
        self.items: PipelineReceiver[Any] | None = None
        self.resume: Resume | None = None
        if data is not None and "inner" in data:
            self.resume = nested(specs, data["inner"], int(data["q"]))

    @property
    def start(self) -> int:
        return 0 if self.resume is None else self.resume.position

    def opened(self, items: PipelineReceiver[Any]) -> None:
        self.items = items

    def saved(self, q: int) -> dict[str, Any]:
        """Where it stood once it had given ``q`` items, as plain data: ``{"q":
        0}`` for where it starts afresh."""
        if self.items is not None:
            entries = self.items._saved(q)
        elif self.resume is not None:  # not running yet: where it resumes
            entries = [e for e in self.resume.entries if e is not None]
        else:
            return {"q": 0}
        if not q and all(e == Saved(0) for e in entries):
            return {"q": 0}
        return {"q": q, "inner": [e.to_json() for e in entries]}


class Sequential:
    """Pipelines run one after another: each starts where the last one ended.

    ``runs`` holds, from the one the consumer is in, each pipeline's number
    and the output position it started at.
    """

    def __init__(self, saved: Sequence[Saved]) -> None:
        own = saved[0].own if saved else None
        #: The pipeline to start with, and where it resumes.
        self.first = 0 if own is None else int(own["k"])
        self.data = own
        #: Items it has yielded.
        self.out = saved[0].first if saved else 0
        self._starts: list[int] = []
        self._runs: list[tuple[int, Inner]] = []
        self._track = tracking()

    def begin(self, k: int, specs: Sequence[Spec]) -> Inner:
        """Pipeline ``k`` starts: its ``Inner``, resumed if it is the first one of a resumed run."""
        inner = Inner(specs, self.data if k == self.first else None)
        if self._track:
            self._starts.append(self.out - inner.start)
            self._runs.append((k, inner))
        return inner

    def saved(self, out: int) -> list[Saved]:
        i = bisect.bisect_right(self._starts, out) - 1
        if i < 0:  # none has started: the first, from where it resumes
            return [Saved(out, own=self.data or {"k": self.first, "q": 0})]
        del self._starts[:i], self._runs[:i]
        k, inner = self._runs[0]
        return [Saved(out, own={"k": k, **inner.saved(out - self._starts[0])})]
