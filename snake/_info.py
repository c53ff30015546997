"""What a run tells the code it calls: its epoch, and, in a worker, which worker.

Each run of a pipeline is an epoch (``open(epoch=k)``, or the next of its
``Pipeline`` object, as DataLoader reshuffles each time it is iterated);
seeded shuffles and mixes draw from ``(seed, epoch)``, and each worker gets
a seed of its own from the run's seed, the epoch and its place. Inline
functions, ``then`` and ``par_then`` read the epoch from a context variable
their stage's task inherits; worker threads inherit it too
(``trio.to_thread`` runs a copy of the context); worker processes are told
with each work they receive (``_work.Work.run``). Light on purpose: a
worker process imports it without trio or the engine.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import random
import sys
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ._auto import Kept


@attrs.frozen
class Epoch:
    """The epoch code runs in: the number ``current_epoch()`` gives, and where
    seeds come from.

    ``path`` is the epoch of the run, then one entry per endless ``repeat``
    inside it (a finite ``repeat(n)`` numbers its passes on instead:
    ``epoch * n + i``); ``seed`` is the run's, from which worker seeds derive.
    """

    path: tuple[int, ...]
    seed: int

    @property
    def number(self) -> int:
        return self.path[-1]

    @property
    def key(self) -> str:
        """What seeded random generators mix in: ``"3"``, or ``"1/4"``."""
        return "/".join(map(str, self.path))

    def repeated(self, i: int, times: int | None) -> Epoch:
        """The epoch of pass ``i`` of a ``repeat(times)`` run in this one."""
        if times is None:
            return Epoch((*self.path, i), self.seed)
        return Epoch((*self.path[:-1], self.number * times + i), self.seed)

    def worker_seed(self, index: int, generation: int = 0) -> int:
        """A 63-bit seed for worker ``index`` (its ``generation``-th replacement), this epoch."""
        key = f"snake-worker/{self.seed}/{self.key}/{index}/{generation}"
        return random.Random(key).getrandbits(63)


class Runs:
    """The runs of one ``Pipeline`` object: their epochs, and the seed of its workers' seeds.

    A run not given an epoch takes the one after the last (0 first), as
    iterating a DataLoader again reshuffles. The seed is drawn from Python's
    ``random`` at the first run, so ``random.seed(s)`` at the top of a
    program makes a whole run of it reproducible, as ``torch.manual_seed``
    does a DataLoader's.
    """

    def __init__(self) -> None:
        self._next = 0
        self._seed: int | None = None
        #: Where each ``"auto"`` stage's tuning ended, by stage (see ``_auto``).
        self.kept: dict[int, Kept] = {}

    def resumed(self, epoch: int, seed: int) -> Epoch:
        """The epoch of a run resumed from a state saved in ``epoch`` of a
        pipeline whose seed was ``seed``: its runs go on from there."""
        self._next, self._seed = epoch + 1, seed
        return Epoch((epoch,), seed)

    def shared(self) -> Runs:
        """The runs of a copy of the pipeline (``snake.testing``'s): the same seed,
        drawn now if no run drew it, and the same next epoch."""
        if self._seed is None:
            self._seed = random.getrandbits(63)
        runs = Runs()
        runs._next, runs._seed = self._next, self._seed
        return runs

    def next(self, epoch: int | None) -> Epoch:
        if epoch is None:
            epoch = self._next
        self._next = epoch + 1
        if self._seed is None:
            self._seed = random.getrandbits(63)
        return Epoch((epoch,), self._seed)


#: The epoch of the run this code belongs to.
_epoch: contextvars.ContextVar[Epoch | None] = contextvars.ContextVar("snake_epoch", default=None)


def current() -> Epoch | None:
    return _epoch.get()


def enter(epoch: Epoch) -> None:
    """Set the epoch for good, where nothing else runs after it: a worker's job."""
    _epoch.set(epoch)


@contextlib.contextmanager
def entered(epoch: Epoch | None) -> Iterator[None]:
    """In ``epoch`` inside the block (``None``: in the current one)."""
    if epoch is None:
        yield
        return
    token = _epoch.set(epoch)
    try:
        yield
    finally:
        _epoch.reset(token)


#: Draws from one generator before the next one is seeded: a resumed run
#: replays fewer than this many draws to be where it left off.
BLOCK = 4096


#: The operators without a seed of the run's pipeline, nested ones included:
#: ``id(spec)`` to its place among them (see ``Draws``).
_unseeded: contextvars.ContextVar[dict[int, int] | None] = contextvars.ContextVar(
    "snake_unseeded", default=None
)


@contextlib.contextmanager
def numbered(unseeded: Sequence[object]) -> Iterator[None]:
    """Inside the block, the operators ``unseeded`` draw from the run's seed."""
    token = _unseeded.set({id(spec): k for k, spec in enumerate(unseeded)})
    try:
        yield
    finally:
        _unseeded.reset(token)


class Draws:
    """The random draws of a ``shuffle`` or a ``mix`` in one run: block ``b``
    of ``BLOCK`` draws comes from a generator seeded by ``(seed, epoch, b)``,
    so each epoch draws differently and the same again, and a resume starts
    at the block of its position. With no ``seed``, the operator ``spec``
    draws from the run's seed (from Python's ``random`` at a pipeline's first
    run, so ``random.seed`` at the top of a program makes its runs
    repeatable) and its place in the pipeline; one the run cannot number (in
    a pipeline an ``interleave`` makes) draws a seed of its own, saved with
    its position (``unseeded``).
    """

    __slots__ = ("_key", "drawn", "left", "random", "unseeded")

    def __init__(self, seed: int | None, spec: object, unseeded: int | None = None) -> None:
        self.unseeded = None
        epoch = _epoch.get()
        key = "0" if epoch is None else epoch.key
        place = (_unseeded.get() or {}).get(id(spec))
        if seed is not None:
            self._key = f"{seed}/{key}"
        elif place is not None and epoch is not None:
            self._key = f"unseeded/{epoch.seed}/{place}/{key}"
        else:
            self.unseeded = random.getrandbits(63) if unseeded is None else unseeded
            self._key = f"unseeded/{self.unseeded}"
        #: Draws made, and left in this block.
        self.drawn = 0
        self.left = BLOCK
        self.random = random.Random(f"{self._key}/0")

    @property
    def key(self) -> str:
        """What its generators are seeded from."""
        return self._key

    def next_block(self) -> random.Random:
        """The generator of the next block, once ``left`` is 0."""
        self.left = BLOCK
        self.random = random.Random(f"{self._key}/{self.drawn // BLOCK}")
        return self.random

    def skip_to(self, drawn: int, draw: Any) -> None:
        """Be where ``drawn`` draws leave it: ``draw(generator)`` makes one."""
        within = drawn % BLOCK
        self.drawn = drawn - within
        self.next_block()
        for _ in range(within):
            draw(self.random)
        self.drawn, self.left = drawn, BLOCK - within

    def last(self) -> random.Random:
        """The generator for what it does once its input ends."""
        return random.Random(f"{self._key}/end")


def current_epoch() -> int:
    """The epoch of the run this code is part of.

    Each ``open()``, ``iterate()`` or ``collect()`` of a pipeline is an epoch:
    the ``epoch=`` given, or else the next of its ``Pipeline`` object (0,
    1, 2, ...); a ``repeat(n)`` numbers its passes on (``epoch * n + i``).
    Every function a pipeline calls sees it: inline, ``then``, ``par_then``
    and ``par_map`` in threads and worker processes.

    Raises:
      RuntimeError: called outside any function a pipeline runs (such as
        the loop consuming it, where the epoch is yours to know).

    Example:
        >>> tagged = snake.from_iterable("ab").map(lambda x: (snake.current_epoch(), x))
        >>> list(tagged.repeat(2))
        [(0, 'a'), (0, 'b'), (1, 'a'), (1, 'b')]
        >>> list(tagged.iterate(epoch=5))
        [(5, 'a'), (5, 'b')]
    """
    epoch = _epoch.get()
    if epoch is None:
        raise RuntimeError(
            "snake.current_epoch() was called outside a pipeline: it tells the "
            "functions a pipeline runs which epoch they are in; your own loop knows "
            "its epoch (pass it with open(epoch=...) or iterate(epoch=...))"
        )
    return epoch.number


@attrs.frozen
class WorkerInfo:
    """Which worker runs this code, as PyTorch's ``get_worker_info()`` says it.

    Attributes:
      id: the worker's place among the workers of its map, 0 to
        ``num_workers - 1``.
      num_workers: how many workers the map has (for processes, the workers
        of every map with the same ``WorkerOptions``).
      seed: a seed for this worker in this epoch: different per worker and
        per epoch, the same again for the same run seed. In a worker
        process, Python's ``random`` (and numpy's and torch's global
        generators, where the worker has imported them) are seeded with it
        before the first item of each epoch.
      epoch: the epoch, as ``snake.current_epoch()`` gives it.
    """

    id: int
    num_workers: int
    seed: int
    epoch: int


_worker: contextvars.ContextVar[WorkerInfo | None] = contextvars.ContextVar(
    "snake_worker", default=None
)


def worker_info() -> WorkerInfo | None:
    """This worker's :class:`snake.WorkerInfo` inside a ``par_map`` worker (a
    thread or a process, and ``WorkerOptions.init``); ``None`` elsewhere, as
    with ``executor="inline"`` (as PyTorch's ``get_worker_info()`` gives
    ``None`` with ``num_workers=0``).

    Example:
        >>> def where(x):
        ...     info = snake.worker_info()
        ...     return x, info.num_workers, info.epoch
        >>> list(snake.from_iterable([7]).par_map(where, executor="thread", concurrency=2))
        [(7, 2, 0)]
        >>> snake.worker_info() is None
        True
    """
    return _worker.get()


def enter_worker(info: WorkerInfo | None) -> None:
    """Set this worker's info for good: in a worker process, or the copy of a
    context a worker thread's call runs in."""
    _worker.set(info)


def load_generators() -> None:
    """Import numpy's global generator where numpy is loaded, in the fork server.

    numpy loads ``numpy.random`` on first use, about 7 ms, which each new
    worker would otherwise spend on its first ``seed_globals``.
    """
    if "numpy" in sys.modules:
        with contextlib.suppress(Exception):  # a numpy that cannot: its workers will say
            importlib.import_module("numpy.random")


def seed_globals(seed: int, skip: set[str] | frozenset[str] = frozenset()) -> None:
    """Seed the global random generators a worker process uses: Python's, and
    numpy's and torch's where already imported (as DataLoader seeds its
    workers', numpy's included, so that forked workers do not share one),
    except those of the modules in ``skip``."""
    if "random" not in skip:
        random.seed(seed)
    numpy: Any = None if "numpy" in skip else sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    torch: Any = None if "torch" in skip else sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)
