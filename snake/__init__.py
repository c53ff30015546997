"""snake: data-loading pipelines for deep learning on Trio structured concurrency.

Package map (the engine, from the builder down to the workers):
  _pipeline    Pipeline, the immutable builder, and from_iterable
  _combinators concat, zip, merge and mix: pipelines of pipelines
  _stages/     the operators, one family per module: each spec describes
               itself (see _stages/_base, the operator protocol)
  _runner      runs a pipeline: specs to stages, channels and tasks in one
               nursery; nested pipelines
  _chunking    stage boundaries: chunks, and when to send them
  _flushing    hands a stage's output over the moment its task blocks
  _receiver    the channel open() yields
  _sync        synchronous iteration through a background trio thread
  _workers/    the worker side: threads, worker processes and Ray tasks (its own map)
  _ordering    the reorder buffer of ordered parallel stages
  _policy      errors="skip", max_failures, and async retries
  _retry       when a failing call is tried again
  _stats       per-stage statistics and the bottleneck verdict
  _report      reporting statistics while a pipeline runs, and progress
  _errors      stage notes on a user's exceptions
  _nursery     how errors leave snake's nurseries
  _tracebacks  a user's traceback, snake's frames cut, as the error leaves snake
  _exceptions  the errors snake raises itself
  _position    where each running operator stands, for exact resume
  _checkpoint  a run's saved state (JSON) and loading it into a resumed run
  _plan        a pipeline's operators grouped into stages
  _running     open(), collect() and iteration: a run, fresh or resumed
  _loader      StatefulLoader: checkpointing as PyTorch does it
  _validate    argument checks, with messages that name the fix
  _auto        what "auto" stages are given: memory_budget shares, and the
               values their last run reached
  _lazy        public names imported on first use (here and in testing)
  _collate     batch(collate="default" | "torch")
  _device      to_device: moving batches to a torch device
  _torch       torch, imported where a feature needs it
Applications built on it:
  _apps/       the snake command, its demo and its images pipeline
For code built on it, imported by name only (``import snake.testing``):
  testing/     the leak check, and a pytest plugin running it around every test
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _lazy

__version__ = "0.1.0"

#: Where each public name lives. A name's module is imported when the name
#: is first used, not with ``import snake``: a worker process imports only
#: the worker side it runs (``_workers``), never trio or the engine.
_HOMES = {
    "ItemTimeoutError": "._exceptions",
    "Pipeline": "._pipeline",
    "PipelineIterator": "._sync",
    "PipelineReceiver": "._receiver",
    "RayOptions": "._workers._options",
    "RemoteError": "._exceptions",
    "Resumable": "._stages._source",
    "StageStatistics": "._stats",
    "TuningStatistics": "._stages._tuner",
    "StateMismatchError": "._exceptions",
    "StatefulLoader": "._loader",
    "Statistics": "._stats",
    "WorkerDiedError": "._workers._deaths",
    "WorkerError": "._exceptions",
    "WorkerInfo": "._info",
    "WorkerOptions": "._workers._options",
    "WorkerStatistics": "._stats",
    "concat": "._combinators",
    "current_epoch": "._info",
    "from_iterable": "._pipeline",
    "merge": "._combinators",
    "mix": "._combinators",
    "persistent_workers": "._workers._persistent",
    "worker_info": "._info",
    "zip": "._combinators",
}

__all__ = list(_HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from ._combinators import concat as concat
    from ._combinators import merge as merge
    from ._combinators import mix as mix
    from ._combinators import zip as zip  # noqa: A004 - snake.zip, as Python's
    from ._exceptions import ItemTimeoutError as ItemTimeoutError
    from ._exceptions import RemoteError as RemoteError
    from ._exceptions import StateMismatchError as StateMismatchError
    from ._exceptions import WorkerError as WorkerError
    from ._info import WorkerInfo as WorkerInfo
    from ._info import current_epoch as current_epoch
    from ._info import worker_info as worker_info
    from ._loader import StatefulLoader as StatefulLoader
    from ._pipeline import Pipeline as Pipeline
    from ._pipeline import from_iterable as from_iterable
    from ._receiver import PipelineReceiver as PipelineReceiver
    from ._stages._source import Resumable as Resumable
    from ._stages._tuner import TuningStatistics as TuningStatistics
    from ._stats import StageStatistics as StageStatistics
    from ._stats import Statistics as Statistics
    from ._stats import WorkerStatistics as WorkerStatistics
    from ._sync import PipelineIterator as PipelineIterator
    from ._workers._deaths import WorkerDiedError as WorkerDiedError
    from ._workers._options import RayOptions as RayOptions
    from ._workers._options import WorkerOptions as WorkerOptions
    from ._workers._persistent import persistent_workers as persistent_workers


__getattr__, __dir__ = _lazy.lazy(__name__, _HOMES, globals())
