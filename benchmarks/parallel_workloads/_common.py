"""What the workloads of ``parallel.py`` share: the workers, the optional peers, the
contenders that survive their failures, and torchdata's and DataLoader's set-up.

Only what a snake user's script would import is imported at the top:
spawned workers, and a fork server, import ``parallel.py`` again when they
start, and this module with it, and must not pay for torch, asyncio and the like.
"""

from __future__ import annotations

import functools
import gc
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import _harness

import snake

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

#: Worker processes (or slots) every parallel contender gets.
WORKERS = 2


class Contender(_harness.Contender):
    """A contender that survives its failures.

    One that raises (a wrong output included) is marked failed and leaves the
    rounds.
    """

    def attempt(self) -> None:
        if self.error is not None:
            return
        try:
            super().attempt()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"  ! {self.name} failed: {self.error}", file=sys.stderr, flush=True)


# --- optional peers -------------------------------------------------------------


@dataclass
class Peers:
    """torch's DataLoader and torchdata.nodes, where importable."""

    torch: ModuleType | None = None
    nodes: ModuleType | None = None
    missing: dict[str, str] = field(default_factory=dict)

    def skipped(self, what: str, needs: str) -> str | None:
        """Why the contender ``what`` cannot run, or ``None`` if it can."""
        reason = self.missing.get(needs)
        return None if reason is None else f"skipped {what}: {needs} is not importable ({reason})"

    def offer(self, what: str, needs: str, skipped: list[str]) -> bool:
        """Whether the contender ``what`` can run; if not, why joins ``skipped`` (once)."""
        why = self.skipped(what, needs)
        if why is not None and why not in skipped:
            skipped.append(why)
        return why is None


def load_peers() -> Peers:
    peers = Peers()
    try:
        import torch
        import torch.utils.data

        peers.torch = torch
    except Exception as exc:  # ImportError, or a broken install
        peers.missing["torch"] = f"{type(exc).__name__}: {exc}"
    try:
        import torchdata.nodes

        peers.nodes = torchdata.nodes
    except Exception as exc:
        peers.missing["torchdata"] = f"{type(exc).__name__}: {exc}"
    return peers


@dataclass
class PeersWorkload(_harness.Workload):
    """A workload whose torch and torchdata contenders join where importable."""

    peers: Peers
    skips: list[str] = field(default_factory=list, init=False)

    def offer(self, what: str, needs: str) -> bool:
        """Whether the contender ``what`` can run; if not, a note says why."""
        return self.peers.offer(what, needs, self.skips)

    def skipped(self) -> list[str]:
        return self.skips


# --- torch's DataLoader and torchdata.nodes --------------------------------------


class Dataset:
    """Map-style dataset (``__getitem__`` + ``__len__``): item ``i`` is ``item(i)``."""

    def __init__(self, n: int, item: Callable[[int], Any]) -> None:
        self.n = n
        self.item = item

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.item(i)


def data_loader(torch: ModuleType, n: int, item: Callable[[int], Any], **options: Any) -> Any:
    """torch's DataLoader over ``Dataset(n, item)``, one item at a time, from the workers;
    ``options`` go to the DataLoader too."""
    return torch.utils.data.DataLoader(
        Dataset(n, item), batch_size=None, num_workers=WORKERS, **options
    )


def stop_nodes(root: Any) -> None:
    """Join torchdata's worker threads and processes now, not at garbage collection.

    A ``ParallelMapper`` signals its workers at the end of its input but joins
    them only in its iterator's ``__del__``; this does that join.
    """
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        shutdown = getattr(node, "_shutdown", None)
        if callable(shutdown):
            shutdown()
        todo += [getattr(node, a, None) for a in ("_it", "source", "root")]


def frees_nodes(run: Callable[..., float]) -> Callable[..., float]:
    """Free a torchdata run's nodes once it returns, outside its timing.

    They sit in reference cycles; left to a later collection, a process forked
    meanwhile inherits them, and their ``__del__`` then fails in the child.
    """

    @functools.wraps(run)
    def wrapper(*args: Any) -> float:
        try:
            return run(*args)
        finally:
            gc.collect()

    return wrapper


# --- snake's start method ------------------------------------------------------------


def snake_start_method() -> str:
    """How snake starts worker processes by default."""
    options = getattr(snake, "WorkerOptions", None)
    return "spawn (trio_parallel's default)" if options is None else options().start_method


def server_note() -> str:
    """Said wherever snake's fresh workers come from a fork server started earlier."""
    if "forkserver" not in snake_start_method():
        return ""
    return " (snake's are forked from its fork server, started once before the rounds)"
