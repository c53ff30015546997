"""Worker processes fed through lanes: limits, deaths, errors and early exits."""

from __future__ import annotations

import itertools
import os
import threading
import time

import pytest
import trio
from conftest import running_span

import snake


def interval(x: int) -> tuple[int, float, float]:
    began = time.perf_counter()
    time.sleep(0.003)
    return os.getpid(), began, time.perf_counter()


async def test_concurrency_one_keeps_one_worker_busy_with_the_stage_at_a_time() -> None:
    # The budget has a worker per CPU, and jobs wait in lanes, but a stage
    # with concurrency=1 still runs on one worker at a time.
    got = await snake.from_iterable(range(120)).par_map(interval, concurrency=1).collect()
    spans = sorted((began, end) for _, began, end in got)
    assert all(end <= next_began for (_, end), (next_began, _) in itertools.pairwise(spans))


async def test_two_stages_share_the_workers_and_both_finish() -> None:
    got = await (
        snake.from_iterable(range(300))
        .par_map(interval)
        .map(lambda r: r[0])
        .par_map(lambda pid: (pid, os.getpid()))
        .collect()
    )
    assert len(got) == 300
    # Both stages ran on the same few workers: one per CPU in all.
    assert len({pid for pair in got for pid in pair}) <= len(os.sched_getaffinity(0))


def dies_at_50(x: int) -> int:
    if x == 50:
        os._exit(7)
    time.sleep(0.001)
    return x


async def test_a_worker_dying_among_others_names_the_items_it_was_running() -> None:
    with trio.fail_after(20):
        with pytest.raises(snake.WorkerDiedError) as info:
            await snake.from_iterable(range(400)).par_map(dies_at_50).collect()
    message = str(info.value)
    assert message.startswith("in stage #1 par_map(dies_at_50), worker process ")
    assert info.value.exitcode == 7
    first, last = running_span(message)
    assert first <= 50 <= last


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raises_unpicklable(x: int) -> int:
    raise Unpicklable(f"item {x} is bad")


async def test_an_error_that_cannot_be_pickled_arrives_as_a_remote_error() -> None:
    with pytest.raises(snake.RemoteError) as info:
        await snake.from_iterable(range(3)).par_map(raises_unpicklable).collect()
    # Every item fails; item 0's error comes first in the output, whichever
    # worker reports first.
    assert str(info.value).startswith(
        "Unpicklable: item 0 is bad (raised in a worker process; "
        "the exception could not be pickled, so it arrives as this RemoteError)"
    )
    assert info.value.type_name == "Unpicklable"
    assert info.value.message == "item 0 is bad"
    assert "raises_unpicklable" in info.value.traceback  # the worker's frames
    # (Items 1 and 2, failing in the other worker at the same time, may add a note.)
    assert info.value.__notes__[0] == (
        "snake: in stage #1 par_map(raises_unpicklable), at item 0 of its input"
    )


def slow_second(x: int) -> int:
    if x == 1:
        time.sleep(30)
    return x


async def test_take_does_not_wait_for_a_job_nobody_will_read() -> None:
    began = time.perf_counter()
    with trio.fail_after(10):
        got = await snake.from_iterable(range(2)).par_map(slow_second).take(1).collect()
    assert got == [0]
    assert time.perf_counter() - began < 5  # its worker was killed, not waited for


def listening_sockets() -> list[bytes]:
    """Abstract-namespace sockets of this process's running process maps."""
    mine = f"@snake-{os.getpid()}-"
    with open("/proc/net/unix") as table:
        paths = {line.split()[-1] for line in table if mine in line}
    return sorted(("\0" + path[1:]).encode() for path in paths if path.startswith(mine))


def slowly(x: int) -> int:
    time.sleep(0.002)
    return x


@pytest.mark.skipif(not os.path.exists("/proc/net/unix"), reason="Linux's abstract sockets")
async def test_a_connection_that_is_not_one_of_its_workers_is_refused() -> None:
    import socket

    async with snake.from_iterable(range(300)).par_map(slowly).open() as items:
        first = await items.receive()
        [address] = listening_sockets()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stranger:
            stranger.connect(address)
            stranger.sendall(bytes(16) + bytes(16))  # a wrong token, lane 0, pid 0
            stranger.settimeout(5)
            assert await trio.to_thread.run_sync(stranger.recv, 1) == b""  # closed on it
        rest = [x async for x in items]
    assert [first, *rest] == list(range(300))


@pytest.mark.skipif(not os.path.exists("/proc/net/unix"), reason="Linux's abstract sockets")
async def test_workers_greet_on_a_virtual_clock_that_jumps_ahead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Workers start in real time while the autojump clock jumps: no greeting
    # may time out on it. A connection that says nothing waits until the run ends.
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        async with snake.from_iterable(range(50)).par_map(slowly, concurrency=2).open() as items:
            first = await items.receive()
            [address] = listening_sockets()
            silent.connect(address)
            await trio.sleep(3600)  # an hour of the virtual clock, at once
            silent.setblocking(False)
            with pytest.raises(BlockingIOError):  # still open, nothing sent
                silent.recv(1)
            rest = [x async for x in items]
        assert [first, *rest] == list(range(50))
        silent.setblocking(True)
        silent.settimeout(5)
        assert silent.recv(1) == b""  # closed as the run ended


class CountsPickling:
    """The identity, counting how often this process pickles it."""

    pickled = 0

    def __call__(self, x: int) -> int:
        return x

    def __reduce__(self) -> tuple[type, tuple[()]]:
        CountsPickling.pickled += 1
        return (CountsPickling, ())


async def test_an_operator_that_moves_into_worker_processes_is_pickled_once_a_run() -> None:
    # Checking that it can go, and shipping it, use one pickle: a function
    # holding a large object pays for it once.
    pipeline = snake.from_iterable(range(10)).par_map(abs).map(CountsPickling())
    assert "in its workers: #2 map(CountsPickling)" in pipeline.describe()
    for _ in range(2):
        CountsPickling.pickled = 0
        assert await pipeline.collect() == list(range(10))
        assert CountsPickling.pickled == 1
