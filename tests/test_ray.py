"""``par_map(executor="ray")``: the same contract as processes, on a Ray of 2 CPUs.

Every test runs on the Ray the session started (``ray_runtime``); ``ray_clean``
checks after each that no Ray worker still runs a job of snake's and that no
reference to Ray's object store is left.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import trio
from conftest import RAY_ENV, snake_ray_jobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snake

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("ray_clean")


def square(x: int) -> int:
    return x * x


def slow_square(x: int) -> int:
    time.sleep(0.001 * (x % 3))
    return x * x


# ray_clean checks once, after all the examples.
@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.integers(-1000, 1000), max_size=300), ordered=st.booleans())
def test_the_output_is_the_process_executors(items: list[int], ordered: bool) -> None:
    def run(executor: Any) -> list[int]:
        source = snake.from_iterable(items)
        return list(source.par_map(slow_square, executor=executor, ordered=ordered))

    on_ray, in_processes = run("ray"), run("process")
    if ordered:
        assert on_ray == in_processes == [x * x for x in items]
    else:
        assert sorted(on_ray) == sorted(in_processes) == sorted(x * x for x in items)


async def test_operators_after_the_map_run_in_its_tasks_and_keep_their_places() -> None:
    pipeline = (
        snake.from_iterable(range(103))
        .par_map(square, executor="ray", concurrency=2)
        .map(str)
        .batch(10)
    )
    assert "in its workers: #2 map(str), #3 batch(10)" in pipeline.describe()
    assert await pipeline.collect() == [
        [str(x * x) for x in range(start, min(start + 10, 103))] for start in range(0, 103, 10)
    ]


async def test_each_concurrency_token_keeps_two_jobs_in_flight(autojump_clock: Any) -> None:
    from snake._workers._ray import _Seats

    seats, limiter = _Seats(), trio.CapacityLimiter(3)
    running, peak = 0, 0

    async def job(seconds: float) -> None:
        nonlocal running, peak
        async with seats.seat(limiter, 2):
            running += 1
            peak = max(peak, running)
            await trio.sleep(seconds)
            running -= 1

    async with trio.open_nursery() as nursery:
        for k in range(20):
            nursery.start_soon(job, 1 + k % 3)
    assert peak == 6
    assert limiter.borrowed_tokens == 0


def fails_at_37(x: int) -> int:
    if x == 37:
        try:
            raise KeyError("the cause")
        except KeyError as cause:
            raise ValueError(f"bad item {x}") from cause
    return x


async def test_a_user_error_arrives_as_itself_with_its_cause_frames_and_stage_note() -> None:
    with pytest.raises(ValueError, match="bad item 37") as caught:
        await snake.from_iterable(range(100)).par_map(fails_at_37, executor="ray").collect()
    assert caught.value.__notes__ == [
        "snake: in stage #1 par_map(fails_at_37), at item 37 of its input"
    ]
    assert isinstance(caught.value.__cause__, KeyError)
    frames = [
        frame.name for frame in __import__("traceback").extract_tb(caught.value.__traceback__)
    ]
    assert "fails_at_37" in frames  # the remote frames came along


class NeedsTwo(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(a)
        self.b = b


def raises_needs_two(x: int) -> int:
    if x == 5:
        raise NeedsTwo(x, 1)
    return x


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = __import__("threading").Lock()


def raises_unpicklable(x: int) -> int:
    if x == 5:
        raise Unpicklable("holding a lock")
    return x


async def test_an_error_with_an_init_of_its_own_arrives_as_itself() -> None:
    # Raised in a Ray task, Ray would give an UnserializableException instead.
    with pytest.raises(NeedsTwo) as caught:
        await snake.from_iterable(range(10)).par_map(raises_needs_two, executor="ray").collect()
    assert (caught.value.args, caught.value.b) == ((5,), 1)


async def test_an_error_that_cannot_be_pickled_arrives_as_a_remote_error() -> None:
    with pytest.raises(snake.RemoteError) as caught:
        await snake.from_iterable(range(10)).par_map(raises_unpicklable, executor="ray").collect()
    assert caught.value.type_name == "Unpicklable"
    assert caught.value.message == "holding a lock"
    assert "snake: in stage #1 par_map(raises_unpicklable), at item 5 of its input" in str(
        caught.value.__notes__
    )


def exits(x: int) -> int:
    if x == 3:
        raise SystemExit(7)
    return x


async def test_system_exit_in_a_task_stops_the_pipeline_as_a_worker_error() -> None:
    with pytest.raises(snake.WorkerError, match=r"SystemExit\(7\) raised in a worker") as caught:
        await snake.from_iterable(range(10)).par_map(exits, executor="ray").collect()
    assert "snake: in stage #1 par_map(exits), at item 3 of its input" in caught.value.__notes__


def a_lock(x: int) -> Any:
    return __import__("threading").Lock()


async def test_a_result_that_cannot_be_sent_back_names_its_items() -> None:
    with pytest.raises(TypeError, match="lock") as caught:
        await snake.from_iterable(range(1)).par_map(a_lock, executor="ray").collect()
    assert caught.value.__notes__ == [
        "snake: in stage #1 par_map(a_lock), the results of item 0 of its input "
        "cannot be sent back from the Ray worker (pickled)"
    ]


def sleeps_long(x: int) -> int:
    time.sleep(60)
    return x


async def wait_for_jobs(count: int) -> None:
    """Until ``count`` Ray workers run snake's jobs: polled, as they are other processes."""
    while len(snake_ray_jobs()) < count:  # noqa: ASYNC110
        await trio.sleep(0.02)


async def test_leaving_open_stops_the_jobs_in_flight_before_it_returns() -> None:
    from snake._workers._ray import STOP_GRACE

    pipeline = snake.from_iterable(range(10)).par_map(sleeps_long, executor="ray")
    with trio.fail_after(60):
        async with pipeline.open():
            await wait_for_jobs(2)  # both CPUs busy, more queued
            cancelled = time.monotonic()
        # Ray confirmed each cancel before the block ended: its workers are gone.
        left = snake_ray_jobs()
        stopping = time.monotonic() - cancelled
    assert left == []
    assert stopping < STOP_GRACE  # confirmed, not given up on


async def test_an_outer_deadline_stops_the_jobs() -> None:
    pipeline = snake.from_iterable(range(10)).par_map(sleeps_long, executor="ray")
    with trio.move_on_after(30) as scope:
        async with pipeline.open() as items:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(items.receive)
                await wait_for_jobs(2)
                scope.cancel()
    assert scope.cancelled_caught
    assert snake_ray_jobs() == []


def fails_first_then_sleeps(x: int) -> int:
    if x == 0:
        time.sleep(0.5)  # the others are running by now
        raise ValueError("first")
    time.sleep(60)
    return x


async def test_an_error_stops_the_other_jobs_in_flight() -> None:
    pipeline = snake.from_iterable(range(10)).par_map(
        fails_first_then_sleeps, executor="ray", concurrency=2
    )
    with trio.fail_after(30), pytest.raises(ValueError, match="first"):
        await pipeline.collect()
    assert snake_ray_jobs() == []


def slow_after_3(x: int) -> int:
    if x >= 3:
        time.sleep(60)
    return x


async def test_take_stops_the_jobs_nobody_will_read() -> None:
    pipeline = snake.from_iterable(range(20)).par_map(slow_after_3, executor="ray").take(3)
    with trio.fail_after(30):
        assert await pipeline.collect() == [0, 1, 2]
    assert snake_ray_jobs() == []


def dies_at_5(x: int) -> int:
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


async def test_a_worker_killed_mid_job_raises_worker_died_error_naming_the_items() -> None:
    with pytest.raises(snake.WorkerDiedError) as caught:
        await snake.from_iterable(range(10)).par_map(dies_at_5, executor="ray").collect()
    message = str(caught.value)
    assert message.startswith("in stage #1 par_map(dies_at_5), a Ray worker died while running")
    assert "item" in message
    assert caught.value.__cause__ is not None  # Ray's own error, with its reason


class DiesOnce:
    """Kills its worker at item 5 the first time only (a marker file remembers)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __call__(self, x: int) -> int:
        if x == 5 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return x


async def test_retries_recover_from_a_dead_worker(tmp_path: Path) -> None:
    pipeline = snake.from_iterable(range(10)).par_map(
        DiesOnce(tmp_path / "died"), executor="ray", retries=1
    )
    assert await pipeline.collect() == list(range(10))
    assert (tmp_path / "died").exists()


def hangs_at_2(x: int) -> int:
    if x == 2:
        time.sleep(60)
    return x


#: Seconds a job may run: its clock starts as its task is sent, so well above
#: what a task takes to start on a warm worker of a busy machine.
TIMEOUT = 3.0


def meets(folder: str) -> int:
    """Wait, up to a minute, until two workers have run this at once."""
    marker = os.path.join(folder, str(os.getpid()))
    open(marker, "w").close()
    deadline = time.monotonic() + 60
    while len(os.listdir(folder)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


async def two_warm_workers(tmp_path: Path) -> None:
    """Both Ray CPUs' workers started and idle: an earlier test's cancel had
    Ray kill some, and a new one takes seconds to start on a busy machine."""
    folder = tmp_path / "warm"
    folder.mkdir()
    met = snake.from_iterable([str(folder)] * 2).par_map(meets, executor="ray", concurrency=2)
    assert len(set(await met.collect())) == 2


async def test_a_job_past_its_timeout_is_cancelled_and_raises(tmp_path: Path) -> None:
    await two_warm_workers(tmp_path)
    pipeline = snake.from_iterable(range(5)).par_map(hangs_at_2, executor="ray", timeout=TIMEOUT)
    with pytest.raises(snake.ItemTimeoutError) as caught:
        await pipeline.collect()
    assert (
        "snake: in stage #1 par_map(hangs_at_2), at item 2 of its input" in caught.value.__notes__
    )
    assert snake_ray_jobs() == []


async def test_a_job_past_its_timeout_is_skipped_with_errors_skip(tmp_path: Path) -> None:
    await two_warm_workers(tmp_path)
    pipeline = snake.from_iterable(range(5)).par_map(
        hangs_at_2, executor="ray", timeout=TIMEOUT, errors="skip"
    )
    assert await pipeline.collect() == [0, 1, 3, 4]


def array_of(x: int) -> np.ndarray[Any, Any]:
    return np.full(4 << 20, x % 251, dtype=np.uint8)


async def test_large_arrays_come_back_through_the_object_store_read_only() -> None:
    got = await snake.from_iterable(range(12)).par_map(array_of, executor="ray").collect()
    assert [int(a[0]) for a in got] == [x % 251 for x in range(12)]
    assert all(a.nbytes == 4 << 20 and not a.flags.writeable for a in got)
    assert np.array_equal(got[3].copy(), array_of(3))  # copy() gives a writable one


def tensor_of(x: int) -> Any:
    import torch

    return {"image": torch.full((1 << 20,), float(x)), "label": x}


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is optional (the bench extra): pip install torch==2.13.0",
)
async def test_large_tensors_come_back_as_arrays_not_pickled_by_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from snake._workers import _ray_task

    arrived: list[Any] = []
    tensor_in = _ray_task._tensor_in

    def counted(sent: Any) -> Any:
        arrived.append(type(sent))
        return tensor_in(sent)

    # Ray's worker pickles the deserializer by name: this process looks it up here.
    monkeypatch.setattr(_ray_task, "_tensor_in", counted)
    got = await snake.from_iterable(range(4)).par_map(tensor_of, executor="ray").collect()
    assert [int(g["image"][0]) for g in got] == [0, 1, 2, 3]
    assert all(type(g["image"]) is torch.Tensor for g in got)
    assert arrived == [np.ndarray] * 4  # each as an array from the object store


async def test_ray_options_reach_each_task() -> None:
    # A resource no node has: the task can never be placed. Ray keeps it
    # waiting (and says so); the run is stopped from outside.
    needs = snake.RayOptions(resources={"no-such-node": 1})
    pipeline = snake.from_iterable(range(3)).par_map(square, executor="ray", workers=needs)
    with trio.move_on_after(3) as scope:
        await pipeline.collect()
    assert scope.cancelled_caught
    two_cpus = snake.RayOptions(num_cpus=2)  # the whole cluster: one task at a time
    pipeline = snake.from_iterable(range(5)).par_map(square, executor="ray", workers=two_cpus)
    assert await pipeline.collect() == [0, 1, 4, 9, 16]


CLUSTER_SCRIPT = r"""
import json, os, sys, time
import ray
from ray.cluster_utils import Cluster
import snake

def where(x):
    time.sleep(0.05)
    return ray.get_runtime_context().get_node_id()

def slow(x):
    time.sleep(0.2)
    return x

if __name__ == "__main__":
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        cluster.wait_for_nodes()
        nodes = set(snake.from_iterable(range(40)).par_map(where, executor="ray"))
        outcome = {"nodes": len(nodes)}
        items = iter(snake.from_iterable(range(200)).par_map(
            slow, executor="ray", workers=snake.RayOptions(scheduling_strategy="SPREAD")
        ))
        next(items)
        cluster.remove_node(worker)
        try:
            for _ in items:
                pass
            outcome["error"] = None
        except snake.WorkerDiedError as exc:
            outcome["error"] = str(exc)
        print(json.dumps(outcome), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
"""


def run_script(path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """``text`` run as a script of its own, with a Ray of its own: it must succeed."""
    path.write_text(text)
    env = {**os.environ, **RAY_ENV}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=240, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_a_two_node_cluster_runs_work_on_both_and_a_lost_node_is_a_dead_worker(
    tmp_path: Path,
) -> None:
    done = run_script(tmp_path / "cluster.py", CLUSTER_SCRIPT)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["nodes"] == 2
    assert outcome["error"] is not None
    assert outcome["error"].startswith("in stage #1 par_map(slow), a Ray worker died")


LOCAL_SCRIPT = r"""
import logging, sys
import snake

def double(x):
    return 2 * x

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    print(list(snake.from_iterable(range(5)).par_map(double, executor="ray")), flush=True)
"""


def test_without_a_connected_ray_a_local_one_is_started_and_said_so(tmp_path: Path) -> None:
    done = run_script(tmp_path / "local.py", LOCAL_SCRIPT)
    assert done.stdout.strip().splitlines()[-1] == "[0, 2, 4, 6, 8]"
    assert "snake: no Ray runtime connected (ray.init); starting a local one" in done.stderr
