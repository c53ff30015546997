"""The seed workload run once by a script started from nothing, for the (cold)
workload of ``parallel.py``.

Run as ``python _cold_seed.py CONTENDER ITEMS UNIT``, in a fresh interpreter per
measurement. Its top imports the standard library alone; each contender imports
what it needs as it starts, before its timing, as a script using it would at its
top (worker processes that load the script again as ``__main__``, as snake's fork
server does, pay for neither). Timed from just before the pipeline or pool
starts, after the imports, to the end of the run, its workers stopped. Prints
one JSON line on stdout: ``{"elapsed": seconds, "items": [...]}``, and for the
ideal ``{"elapsed": seconds, "estimate": {...}}``.

CONTENDER is one of ``CONTENDERS``:

* ``ideal``: ``snake._apps._demo.estimate``, the workload's ideal time, measured
  here too (it times fib, as fast or slow as a fresh interpreter runs it);
* ``snake``: ``await snake._apps._demo.pipeline(ITEMS, UNIT).collect()``;
* ``asyncio``: ``gather`` of the reads, then ``run_in_executor`` on a
  ``ProcessPoolExecutor(2)`` per item (``parallel_workloads.seed.asyncio_pool``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def run_ideal(n: int, unit: float) -> dict[str, Any]:
    from _snake_runs import demo

    estimate = demo.estimate(n, unit)
    parts = {k: getattr(estimate, k) for k in ("sleep", "longest_sleep", "cpu")}
    return {"elapsed": estimate.ideal, "estimate": parts}


def run_snake(n: int, unit: float) -> dict[str, Any]:
    from _snake_runs import seed_collect

    elapsed, out = seed_collect(n, unit)
    return {"elapsed": elapsed, "items": out}


def run_asyncio(n: int, unit: float) -> dict[str, Any]:
    from parallel_workloads.seed import asyncio_pool

    elapsed, out = asyncio_pool(n, unit)
    return {"elapsed": elapsed, "items": out}


CONTENDERS = {"ideal": run_ideal, "snake": run_snake, "asyncio": run_asyncio}


def main(contender: str, n: int, unit: float) -> None:
    # The benchmarks' folder: the seed workload's code, shared with the warm runs.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print(json.dumps(CONTENDERS[contender](n, unit)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
