"""``Pipeline``: the immutable, typed builder. It describes; ``_runner`` runs."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar, overload

import attrs

from . import _validate as check
from ._info import Runs
from ._plan import describe
from ._policy import ErrorPolicy
from ._report import Reporting
from ._running import Run, collected, iterated, opened, sent
from ._stages._inline import Filter, FlatMap, Map
from ._stages._parallel import ParMap, ParThen
from ._stages._source import IterableSource
from ._tracebacks import trimmed
from ._workers._options import RayOptions, WorkerOptions, check_workers

# The operators' modules not every pipeline uses are imported by the methods
# that add them: a fresh program loads only what its pipeline runs.

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
    from contextlib import AbstractAsyncContextManager

    import trio

    from ._receiver import PipelineReceiver
    from ._stages._base import Spec
    from ._stages._source import MapStyle
    from ._stats import Statistics
    from ._sync import PipelineIterator

# Covariant: a pipeline only yields its items, so a Pipeline[list[int]] is a
# Pipeline[Iterable[int]], which is what unbatch() asks of its self.
T = TypeVar("T", covariant=True)
U = TypeVar("U")


def from_iterable(obj: Iterable[T] | AsyncIterable[T] | MapStyle[T], /) -> Pipeline[T]:
    """A pipeline whose items come from ``obj``.

    Args:
      obj: a sync iterable (list, range, generator, ...), an async iterable
        (async generator, ``trio`` receive channel) or a map-style dataset:
        an object with ``__len__`` and ``__getitem__`` but no ``__iter__``,
        such as a torch ``Dataset``, read as ``obj[0]``, ...,
        ``obj[len(obj) - 1]`` with ``len(obj)`` taken afresh each run (with
        ``__iter__``, as a list has, ``obj`` is iterated). A sync iterable
        is pulled in the event loop's thread, so its items must be quick to
        produce; a generator or async generator is closed when the pipeline
        stops early. A re-iterable ``obj`` lets the pipeline run many times.

    Raises:
      TypeError: ``obj`` is not iterable, or is a pipeline already.

    Example:
        >>> list(snake.from_iterable(range(3)).map(str))
        ['0', '1', '2']
    """
    check.check_iterable(obj, Pipeline)
    return Pipeline((IterableSource(obj),))


@attrs.frozen(repr=False)
class Pipeline(Generic[T]):
    """A chain of operators from a source to the items it yields.

    Every method returns a new pipeline and leaves this one as it was, so a
    pipeline can be extended in several ways and run many times. Nothing
    runs until ``open()``, ``collect()`` or iteration. Start one with
    :func:`snake.from_iterable`. ``len(pipeline)`` is the number of items a
    run gives, where its operators say it (see ``__len__``).
    """

    _specs: tuple[Spec, ...]
    #: Its runs so far: the epoch of the next.
    _runs: Runs = attrs.field(factory=Runs, eq=False, repr=False)

    def __repr__(self) -> str:
        return "snake." + ".".join(spec.describe() for spec in self._specs)

    def describe(self) -> str:
        """The stages a run has, one per line, each with the operators fused into it.

        Inline operators join the stage before them; those right after a
        process ``par_map`` may run in its workers. Labels are the ones
        error notes and statistics use (``#2 par_map(decode)``).
        """
        return describe(self._specs)

    def __len__(self) -> int:
        """The number of items a run yields, known before it runs: for LR
        schedulers and progress bars.

        Known when the source has a ``len()`` (a list, a range, a dataset
        with ``__len__``; not a generator) and every operator after it says
        how many items it makes of its input: all but ``filter``,
        ``flat_map``, ``unbatch``, ``interleave``, a stage with
        ``errors="skip"`` and ``mix`` with ``stop="first_exhausted"``. After
        an endless ``repeat()``, ``take(n)`` makes it ``n``.

        Raises:
          TypeError: it is unknown, naming the operator that makes it so.
          OverflowError: it is more than ``sys.maxsize``.

        Example:
            >>> len(snake.from_iterable(range(10)).shard(0, 4).batch(2))
            2
            >>> len(snake.from_iterable(range(10)).filter(bool))
            Traceback (most recent call last):
              ...
            TypeError: len() is unknown: #1 filter(bool) may drop items
        """
        from ._stages._length import known

        return known(self._specs)

    def __bool__(self) -> bool:
        # Always true: `if pipeline:` asks whether there is one, not its len().
        return True

    def _add(self, spec: Spec) -> Pipeline[Any]:
        return Pipeline((*self._specs, spec))

    # --- inline operators: fused into the stage before them -----------------

    def map(self, fn: Callable[[T], U], /) -> Pipeline[U]:
        """``fn(x)`` for each item, inline: for cheap functions.

        Runs in the event loop's thread, fused with the stage before it (no
        task or channel of its own). For slow work use ``par_map``.

        Example:
            >>> list(snake.from_iterable(range(4)).map(lambda x: x * x))
            [0, 1, 4, 9]
        """
        check.check_sync_fn(fn, "map")
        return self._add(Map(fn))

    def filter(self, pred: Callable[[T], object], /) -> Pipeline[T]:
        """Keep the items for which ``pred(x)`` is true, inline.

        Example:
            >>> list(snake.from_iterable(range(6)).filter(lambda x: x % 3 == 0))
            [0, 3]
        """
        check.check_sync_fn(pred, "filter", "pred")
        return self._add(Filter(pred))

    def flat_map(self, fn: Callable[[T], Iterable[U]], /) -> Pipeline[U]:
        """Each item of ``fn(x)`` for each item, inline.

        Example:
            >>> list(snake.from_iterable(["ab", "c"]).flat_map(list))
            ['a', 'b', 'c']
        """
        check.check_sync_fn(fn, "flat_map")
        return self._add(FlatMap(fn))

    def enumerate(self, start: int = 0) -> Pipeline[tuple[int, T]]:
        """``(i, x)`` pairs counting from ``start``, as ``enumerate`` does.

        Example:
            >>> list(snake.from_iterable("ab").enumerate(start=1))
            [(1, 'a'), (2, 'b')]
        """
        check.check_int(start, "start", minimum=-(2**63))
        from ._stages._positional import Enumerate

        return self._add(Enumerate(start))

    def take(self, n: int) -> Pipeline[T]:
        """The first ``n`` items; once it has them, the stages upstream stop.

        Works on infinite sources. Items in flight upstream are cancelled.

        Example:
            >>> import itertools
            >>> list(snake.from_iterable(itertools.count()).take(3))
            [0, 1, 2]
        """
        from ._stages._positional import Take

        return self._add(Take(check.check_int(n, "n", minimum=0)))

    def skip(self, n: int) -> Pipeline[T]:
        """All but the first ``n`` items.

        Example:
            >>> list(snake.from_iterable(range(5)).skip(3))
            [3, 4]
        """
        from ._stages._positional import Skip

        return self._add(Skip(check.check_int(n, "n", minimum=0)))

    @overload
    def batch(
        self, size: int, *, drop_last: bool = ..., collate: None = ...
    ) -> Pipeline[list[T]]: ...

    @overload
    def batch(
        self, size: int, *, drop_last: bool = ..., collate: Callable[[list[T]], U]
    ) -> Pipeline[U]: ...

    @overload
    def batch(
        self, size: int, *, drop_last: bool = ..., collate: Literal["default", "torch"]
    ) -> Pipeline[Any]: ...

    def batch(
        self,
        size: int,
        *,
        drop_last: bool = False,
        collate: Callable[[list[T]], Any] | Literal["default", "torch"] | None = None,
    ) -> Pipeline[Any]:
        """Lists of ``size`` consecutive items; the last may be shorter.

        Args:
          size: items per batch.
          drop_last: drop a last batch shorter than ``size``.
          collate: turns each list into one object (say, a stacked tensor).
            ``"default"`` stacks numpy arrays and numbers, field by field
            through dicts, tuples and lists, as PyTorch's
            ``default_collate`` does; ``"torch"`` makes torch tensors.

        Holds at most one partial batch.

        Example:
            >>> list(snake.from_iterable(range(5)).batch(2))
            [[0, 1], [2, 3], [4]]
            >>> list(snake.from_iterable(range(5)).batch(2, drop_last=True, collate=sum))
            [1, 5]
        """
        check.check_int(size, "size", minimum=1)
        check.check_bool(drop_last, "drop_last")
        if isinstance(collate, str):
            from ._collate import COLLATES

            check.check_choice(collate, "collate", tuple(COLLATES))
            collate = COLLATES[collate]
        elif collate is not None:
            check.check_sync_fn(collate, "batch", "collate")
        from ._stages._batch import Batch

        return self._add(Batch(size, drop_last, collate))

    def unbatch(self: Pipeline[Iterable[U]]) -> Pipeline[U]:
        """The items of each item, in order: the inverse of ``batch()``.

        Example:
            >>> list(snake.from_iterable([[0, 1], [2]]).unbatch())
            [0, 1, 2]
        """
        from ._stages._batch import Unbatch

        return self._add(Unbatch())

    # --- stages ------------------------------------------------------------

    def then(
        self,
        fn: Callable[[T], Awaitable[U]],
        /,
        *,
        errors: Literal["raise", "skip"] = "raise",
        max_failures: float | None = None,
        retries: int = 0,
    ) -> Pipeline[U]:
        """``await fn(x)`` for each item, one at a time, in order.

        A stage of its own. On cancel, the call in flight is cancelled.

        Args:
          errors: ``"raise"`` stops the pipeline with the first exception
            from ``fn``; ``"skip"`` drops the item, counts it and logs the
            first error of each type (logger ``"snake"``).
          max_failures: with ``errors="skip"``, the most items skipped
            before the stage raises: a count, or a fraction of the items
            seen (at least one is always allowed). ``None``: no limit.
          retries: tries of a failing call after the first, 0.1 s apart and
            twice as long each time, for idempotent functions (a flaky
            read); the error of the last try carries a note saying so.

        Example:
            >>> async def double(x):
            ...     await trio.sleep(0.01)
            ...     return 2 * x
            >>> trio.run(snake.from_iterable(range(3)).then(double).collect)
            [0, 2, 4]
        """
        check.check_async_fn(fn, "then")
        from ._stages._then import Then

        return self._add(
            Then(fn, ErrorPolicy(errors=errors, max_failures=max_failures, retries=retries))
        )

    def par_then(
        self,
        fn: Callable[[T], Awaitable[U]],
        /,
        *,
        concurrency: int | Literal["auto"] = 16,
        ordered: bool = True,
        errors: Literal["raise", "skip"] = "raise",
        max_failures: float | None = None,
        timeout: float | None = None,
        retries: int = 0,
    ) -> Pipeline[U]:
        """``await fn(x)`` with up to ``concurrency`` calls in flight: async I/O.

        Args:
          concurrency: most calls in flight at once; ``"auto"``: tuned while
            it runs, from 16 up to 1,024: it grows while the stage is what
            holds the pipeline back and comes down when the calls queue or
            another stage holds it back; the next epoch starts where the
            last ended (the statistics say what it chose, and why).
          ordered: keep input order; with ``False``, results leave as they
            complete.
          errors: ``"raise"`` or ``"skip"``, as for :meth:`then`.
          max_failures: the most items skipped, as for :meth:`then`.
          retries: tries of a failing call after the first, as for
            :meth:`then`.
          timeout: seconds a call may take; a slower one is cancelled and
            raises ``snake.ItemTimeoutError`` (with ``errors="skip"``, its
            item is skipped). ``None``: no limit.

        Ordering and memory: with ``ordered=True``, at most ``concurrency``
        items are in flight or waiting for an earlier one (a slow item holds
        back new calls, never memory). On cancel or error, calls in flight
        are cancelled.
        """
        check.check_async_fn(fn, "par_then")
        check.check_concurrency(concurrency)
        check.check_bool(ordered, "ordered")
        policy = ErrorPolicy(
            errors=errors, max_failures=max_failures, timeout=timeout, retries=retries
        )
        return self._add(ParThen(fn, concurrency, ordered, policy))

    def par_map(
        self,
        fn: Callable[[T], U],
        /,
        *,
        concurrency: int | Literal["auto"] | None = None,
        ordered: bool = True,
        executor: Literal["process", "thread", "ray", "inline"] = "process",
        workers: WorkerOptions | RayOptions | None = None,
        errors: Literal["raise", "skip"] = "raise",
        max_failures: float | None = None,
        timeout: float | None = None,
        retries: int = 0,
    ) -> Pipeline[U]:
        """``fn(x)`` in worker processes (or threads, or on a Ray cluster): CPU work.

        Args:
          concurrency: most chunks of items running at once; ``None`` for
            one per CPU (on Ray, per CPU of the cluster). All process maps
            of a pipeline share one CPU budget (one per CPU, or the largest
            ``concurrency`` asked for). ``"auto"``: tuned while it runs, as
            for ``par_then``, from one per CPU; up to 32 with threads, and
            never past the CPUs with processes or Ray.
          ordered: keep input order, as for ``par_then``.
          executor: ``"process"`` (``trio_parallel`` workers, started for
            each run and stopped when it ends), ``"thread"`` (for functions
            that release the GIL, such as image decoding) or ``"ray"``
            (tasks on the Ray cluster the program connected to, or a local
            Ray; needs ``pip install "snake[ray]"``; see the "Scaling out" page),
            or ``"inline"``, for debugging: in the pipeline's own thread, one
            call at a time, in order, with no workers, as DataLoader's
            ``num_workers=0``, so that a breakpoint in ``fn`` stops there
            (``concurrency`` and ``workers`` are then ignored; ``timeout``
            cannot be kept, since nothing can stop the call).
          workers: how worker processes start and live (start method,
            per-worker init, retirement), a :class:`snake.WorkerOptions`; for
            ``executor="ray"``, what each task asks of the cluster (CPUs,
            GPUs, memory, resources, placement), a :class:`snake.RayOptions`.
          errors: ``"raise"`` or ``"skip"``, as for :meth:`then`. With
            ``"skip"``, the operators after it run in the main process, not
            in the workers.
          max_failures: the most items skipped, as for :meth:`then`.
          retries: tries of a failing call after the first, as for
            :meth:`then`. They run in the worker, and a job whose worker
            died or ran past ``timeout`` is retried on another.
          timeout: seconds an item may run; past it the worker process is
            killed (and replaced), the Ray task cancelled, or the thread
            abandoned, and ``snake.ItemTimeoutError`` raised (with
            ``errors="skip"``, the item is skipped). Jobs then hold one item
            each.

        Example:
            >>> import math
            >>> list(snake.from_iterable(range(6)).par_map(math.factorial))
            [1, 1, 2, 6, 24, 120]

        Items travel to workers in chunks sized from their measured cost. On
        cancel or error, worker processes and Ray tasks in flight are
        killed; a thread cannot be killed, so it finishes the call it is in,
        and makes no more.

        Raises:
          TypeError: ``fn`` is async (use ``par_then``), or cannot be pickled
            for a process or Ray; ``workers`` is not the options of
            ``executor``.
          ImportError: ``executor="ray"`` without Ray installed.
        """
        check.check_sync_fn(fn, "par_map")
        if concurrency is not None:
            check.check_concurrency(concurrency)
        check.check_bool(ordered, "ordered")
        check.check_executor(fn, executor, timeout)
        options = check_workers(workers, executor)
        policy = ErrorPolicy(
            errors=errors, max_failures=max_failures, timeout=timeout, retries=retries
        )
        if executor == "inline":
            from ._stages._then import InlineMap

            return self._add(InlineMap(fn, policy))
        return self._add(ParMap(fn, concurrency, ordered, executor, options, policy=policy))

    # --- epochs -------------------------------------------------------------

    def shuffle(self, buffer_size: int | None = None, /, *, seed: int | None = None) -> Pipeline[T]:
        """Items in a random order: of a sequence's indices, or through a buffer.

        Without ``buffer_size``, right after ``from_iterable(sequence)`` (a
        list, a ``range``, an array, a map-style dataset): the items in a
        random permutation of their indices, as Grain does, each equally
        likely anywhere, holding no items, resumed at once from a saved
        state. With ``buffer_size``, on any items, tf.data's shuffle:
        inline, each item leaves at a random place of a full buffer of
        ``buffer_size`` items, so an item moves at most ``buffer_size``
        places earlier. A ``seed`` gives an order per epoch, from ``(seed,
        epoch)``: each run is an epoch (see ``open``), each pass of a
        ``repeat`` too.

        Example:
            >>> list(snake.from_iterable(range(6)).shuffle(6, seed=0))
            [3, 0, 5, 1, 4, 2]
            >>> sorted(snake.from_iterable(range(6)).shuffle(seed=0)) == list(range(6))
            True
        """
        if seed is not None:
            check.check_int(seed, "seed", minimum=-(2**63))
        if buffer_size is None:
            return Pipeline((check.index_shuffled(self._specs, seed),))
        check.check_int(buffer_size, "buffer_size", minimum=1)
        from ._stages._epochs import Shuffle

        return self._add(
            Shuffle(buffer_size, seed, self._specs[0] if len(self._specs) == 1 else None)
        )

    def shard(
        self,
        index: int | None = None,
        count: int | None = None,
        /,
        *,
        equal: Literal["drop", "pad"] | None = None,
    ) -> Pipeline[T]:
        """This rank's share of the items: positions ``index``, ``index + count``, ...

        Inline. With no arguments, the rank and world size come from the
        ``RANK`` and ``WORLD_SIZE`` environment variables (as torchrun,
        accelerate and Lightning set them), else from ``torch.distributed``
        if it is initialized, else this is the only rank. Shard the list of
        files before any I/O; the source runs once per rank, so no split per
        worker is needed. ``equal="drop"`` drops the last, incomplete round,
        ``"pad"`` completes it with items from the start (as PyTorch's
        ``DistributedSampler``), so every rank gets as many items.

        Example:
            >>> list(snake.from_iterable(range(10)).shard(1, 3))
            [1, 4, 7]
        """
        index, count = check.check_shard(index, count)
        if equal is not None:
            check.check_choice(equal, "equal", ("drop", "pad"))
        from ._stages._epochs import Shard

        return self._add(Shard(index, count, equal))

    def interleave(
        self,
        fn: Callable[[T], Pipeline[U] | Iterable[U]],
        /,
        *,
        cycle_length: int,
        block_length: int = 1,
        ordered: bool = True,
    ) -> Pipeline[U]:
        """Items of ``fn(x)`` for each item, ``cycle_length`` of them read at once.

        tf.data's parallel interleave: ``fn`` turns an item (a file name, a
        shard) into a pipeline (or an iterable) of its records. Up to
        ``cycle_length`` run at once, each in a task of its own. In order
        (``ordered=True``), the open ones take turns, ``block_length`` items
        each; one that ends gives its place to the next item's pipeline,
        which takes its first turn in the next round. With ``ordered=False``
        items pass on as they come. A stage of its own.

        Example:
            >>> files = snake.from_iterable(["ab", "cde"])
            >>> list(files.interleave(snake.from_iterable, cycle_length=2))
            ['a', 'c', 'b', 'd', 'e']
        """
        check.check_callable(fn, "interleave")
        check.check_int(cycle_length, "cycle_length", minimum=1)
        check.check_int(block_length, "block_length", minimum=1)
        check.check_bool(ordered, "ordered")
        from ._stages._interleave import Interleave

        return self._add(Interleave(fn, cycle_length, block_length, ordered))

    def repeat(self, times: int | None = None) -> Pipeline[T]:
        """The pipeline so far, run ``times`` times (``None``: for ever), one epoch after another.

        Each epoch runs the stages before it again, from the source, with
        ``snake.current_epoch()`` set, so a ``shuffle`` before it reshuffles:
        in a run of epoch ``e``, pass ``i`` is epoch ``e * times + i``.
        The source must be iterable again (a list, a range, a dataset), not
        a generator or iterator, which one pass uses up.

        Example:
            >>> list(snake.from_iterable("ab").repeat(2))
            ['a', 'b', 'a', 'b']
        """
        if times is not None:
            check.check_int(times, "times", minimum=0)
        check.check_reiterable(self._specs[0], "repeat")
        from ._stages._epochs import Repeat

        return Pipeline((Repeat(self._specs, times),))

    def to_device(self, device: str = "cuda", /, *, pin_memory: bool = True) -> Pipeline[T]:
        """Every torch tensor in each item moved to ``device``, in a thread.

        A last stage before a training loop: each batch (through dicts,
        tuples and lists) is copied to pinned memory and on to the device
        without blocking, in a worker thread, so the copy of the next batch
        overlaps the step on this one. Pinning helps copies to a CUDA device
        only, so ``pin_memory`` applies to those: to ``"cpu"``, tensors are
        moved without pinning, and the same code runs with or without a
        GPU. torch and, for ``"cuda"``, a CUDA device must be present:
        otherwise this raises when the pipeline is built, saying so.
        """
        check.check_bool(pin_memory, "pin_memory")
        from ._device import check_device, mover

        name = check_device(device)
        move = mover(name, pin_memory)
        move.__name__ = move.__qualname__ = f"to_device_{name.replace(':', '_')}"
        return self._add(ParMap(move, 1, True, "thread", WorkerOptions()))

    def prefetch(self, n: int | Literal["auto"]) -> Pipeline[T]:
        """A buffer of ``n`` items: the stages before run ahead of those after.

        ``"auto"``: a buffer that sizes itself, as tf.data's autotuned
        prefetch does. It starts at 2 items and doubles each time the
        stages after it find it empty after it had been full while they
        were busy (they take items in bursts), up to 1,024 items and 256 MiB
        of the arrays, tensors and ``bytes`` it holds, or its share of
        ``memory_budget``. Run again (the next epoch), it starts at the size
        it reached.

        Example:
            >>> list(snake.from_iterable(range(3)).prefetch(2))
            [0, 1, 2]
        """
        from ._stages._prefetch import Prefetch

        return self._add(Prefetch(check.check_concurrency(n, "n")))

    def through(self, fn: Callable[[AsyncIterator[T]], AsyncIterator[U]], /) -> Pipeline[U]:
        """What the async generator ``fn(items)`` yields, reading all the items in turn.

        For a step that looks across items (packing, windows, deduplication):
        ``fn`` gets an async iterator of the items and yields outputs, as
        many as it likes. A stage of its own; it reads the items as ``fn``
        asks for them, so a ``fn`` that stops asking holds the stages before
        it back. On cancel or error, the generator is closed (its
        ``finally`` runs). A run with it cannot save its position
        (``state_dict()`` says so).

        Raises:
          TypeError: ``fn`` is not an async generator function (a plain or
            ``async`` function, a sync generator function), naming the fix.

        Example:
            >>> async def pairs(items):
            ...     async for x in items:
            ...         yield (x, x * x)
            >>> list(snake.from_iterable(range(3)).through(pairs))
            [(0, 0), (1, 1), (2, 4)]
        """
        from ._stages._through import through

        return self._add(through(fn))

    def apply(self, fn: Callable[[Pipeline[T]], Pipeline[U]], /) -> Pipeline[U]:
        """``fn(self)``: a reusable fragment of a pipeline, as tf.data's ``apply``.

        Raises:
          TypeError: ``fn`` does not return a pipeline.

        Example:
            >>> def evens_squared(pipeline):
            ...     return pipeline.filter(lambda x: x % 2 == 0).map(lambda x: x * x)
            >>> list(snake.from_iterable(range(6)).apply(evens_squared))
            [0, 4, 16]
        """
        check.check_callable(fn, "apply")
        return check.check_applied(fn(self), fn, Pipeline)

    # --- running -----------------------------------------------------------

    def open(
        self,
        *,
        epoch: int | None = None,
        state: Mapping[str, Any] | None = None,
        progress: bool = False,
        report: Callable[[Statistics], object] | None = None,
        report_every: float = 1.0,
        memory_budget: int | None = None,
    ) -> AbstractAsyncContextManager[PipelineReceiver[T]]:
        """Run the pipeline for the duration of an ``async with`` block.

        Yields a :class:`snake.PipelineReceiver`, a ``trio.abc.ReceiveChannel``
        of the items with ``statistics()``. Every stage is a task in a
        nursery this block owns: leaving it (early or not), or an error in
        any stage, cancels and joins them all, kills worker processes in
        flight and shuts the workers down.

        Args:
          epoch: the epoch this run is (0, 1, ...): seeded ``shuffle`` and
            ``mix`` draw from ``(seed, epoch)``, worker seeds derive from it,
            and ``snake.current_epoch()`` gives it. ``None``: the one after
            this pipeline's last run (0 at first), so that iterating a
            pipeline again reshuffles it, as a DataLoader does, and a whole
            program's runs are reproducible.
          progress: show items, items/s, elapsed time and the bottleneck
            while it runs (``tqdm`` if installed, else a line on stderr).
          report: called with the :class:`snake.Statistics` every
            ``report_every`` seconds and once at the end: for your logger
            or TensorBoard.
          memory_budget: bytes that the stages with an ``"auto"`` setting
            (``concurrency="auto"``, ``prefetch("auto")``) may hold in all,
            shared equally, of the items snake weighs (arrays, tensors,
            ``bytes``). ``None``: their own bounds only.

        Raises:
          Exception: a stage's error as itself, with a note naming the stage
            and the item; an ``ExceptionGroup`` only if several happened.

        Example:
            >>> async def main():
            ...     async with snake.from_iterable("ab").open() as items:
            ...         async for x in items:
            ...             print(x)
            >>> trio.run(main)
            a
            b
        """
        run = self._run(epoch, state, progress, report, report_every, memory_budget)
        return opened(run)

    def _run(
        self,
        epoch: int | None,
        state: Mapping[str, Any] | None,
        progress: bool,
        report: Callable[[Statistics], object] | None,
        report_every: float,
        memory_budget: int | None,
    ) -> Run:
        if epoch is not None:
            check.check_int(epoch, "epoch", minimum=0)
        reporting = Reporting(report, report_every, progress)
        return Run.start(self._specs, self._runs, epoch, state, reporting, memory_budget)

    async def collect(
        self,
        *,
        epoch: int | None = None,
        state: Mapping[str, Any] | None = None,
        progress: bool = False,
        report: Callable[[Statistics], object] | None = None,
        report_every: float = 1.0,
        memory_budget: int | None = None,
    ) -> list[T]:
        """Run the pipeline to the end and return its items as a list.

        ``epoch``, ``progress``, ``report``, ``report_every`` and
        ``memory_budget`` as for ``open``.

        Example:
            >>> trio.run(snake.from_iterable(range(3)).collect)
            [0, 1, 2]
        """
        run = self._run(epoch, state, progress, report, report_every, memory_budget)
        try:
            return await collected(run)
        except BaseException as exc:
            trimmed(exc)
            raise  # as it is: from the caller straight to the user's frames

    async def send_to(
        self,
        channel: trio.abc.SendChannel[T],
        /,
        *,
        epoch: int | None = None,
        state: Mapping[str, Any] | None = None,
        progress: bool = False,
        report: Callable[[Statistics], object] | None = None,
        report_every: float = 1.0,
        memory_budget: int | None = None,
    ) -> None:
        """Run the pipeline, sending each item into ``channel``, then close it.

        For feeding other tasks of a nursery: ``nursery.start_soon(pipeline.send_to,
        send_channel)``. ``channel`` is closed when the run ends, by an error
        or a cancel too, so its readers see the end. A reader that closed its
        side stops the run with ``trio.BrokenResourceError``. ``epoch``,
        ``progress``, ``report``, ``report_every`` and ``memory_budget`` as
        for ``open``.

        Example:
            >>> async def main():
            ...     send, receive = trio.open_memory_channel(10)
            ...     await snake.from_iterable("ab").send_to(send)
            ...     print([x async for x in receive])  # to the end: it was closed
            >>> trio.run(main)
            ['a', 'b']
        """
        try:
            start = functools.partial(
                self._run, epoch, state, progress, report, report_every, memory_budget
            )
            await sent(start, channel)
        except BaseException as exc:
            trimmed(exc)
            raise  # as it is: from the caller straight to the user's frames

    def __iter__(self) -> PipelineIterator[T]:
        """Iterate synchronously, with trio running the pipeline in a thread.

        Breaking out, closing the iterator, garbage collection or an
        exception in the loop (Ctrl-C) stops every stage and joins the
        thread. Not for use inside ``trio.run``: use ``collect``/``open``.

        Example:
            >>> it = iter(snake.from_iterable("abc"))
            >>> next(it), next(it)
            ('a', 'b')
            >>> it.close()
        """
        return self.iterate()

    def iterate(
        self,
        *,
        epoch: int | None = None,
        state: Mapping[str, Any] | None = None,
        progress: bool = False,
        report: Callable[[Statistics], object] | None = None,
        report_every: float = 1.0,
        memory_budget: int | None = None,
    ) -> PipelineIterator[T]:
        """``iter(pipeline)``, with ``epoch``, ``progress``, ``report``,
        ``report_every`` and ``memory_budget`` as for ``open``; ``report`` is
        called in the pipeline's thread.

        Example:
            >>> shuffled = snake.from_iterable(range(4)).shuffle(4, seed=0)
            >>> list(shuffled.iterate(epoch=0)), list(shuffled.iterate(epoch=1))
            ([1, 0, 3, 2], [1, 2, 3, 0])
        """
        return iterated(self._run(epoch, state, progress, report, report_every, memory_budget))

    def __aiter__(self) -> NoReturn:
        raise TypeError(
            "a Pipeline cannot be iterated with `async for` directly, since its "
            "stages need a nursery: use `async with pipeline.open() as items: "
            "async for x in items: ...` or `await pipeline.collect()`"
        )
