"""Fixtures shared by the whole suite; the leak check runs around every test."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from collections.abc import Iterator

# snake's own leak check, as a project built on snake would use it: around
# every test (``snake_no_leaks``), failing one that leaves worker processes,
# busy threads or shared memory behind.
pytest_plugins = ["snake.testing.pytest_plugin"]

settings.register_profile("ci", deadline=None, max_examples=60, print_blob=True)
settings.register_profile("slow", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def running_span(message: str) -> tuple[int, int]:
    """The first and last item a ``snake.WorkerDiedError`` says its worker was running."""
    span = message.split("while running ")[1].split(" of its input")[0]
    first, _, last = span.removeprefix("items ").removeprefix("item ").partition(" to ")
    return int(first), int(last or first)


# --- Ray ------------------------------------------------------------------------------

#: Seconds Ray's processes and references get to end after a test, as the
#: leak check gives a test's own. Not imported from snake.testing: some tests'
#: scripts and Ray workers import this module with whatever snake they find.
LEAK_PATIENCE = 5.0

#: Seconds Ray may take to start its head, which starts several processes.
RAY_START_TIMEOUT = 120.0
#: The environment of the tests' Rays: no usage reports, and no token
#: (Ray's would depend on whether ``~/.ray/auth_token`` exists; these Rays
#: listen on this machine only).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The processes that name the session's Ray's folder (its raylet among them),
#: once ``ray_runtime`` has started it: its workers are theirs.
_RAY_ROOTS: list[psutil.Process] = []


def _naming(folder: str) -> list[psutil.Process]:
    """The processes whose command line names ``folder``."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if any(folder in part for part in proc.cmdline()):
                found.append(proc)
    return found


def ray_processes(folder: str) -> list[psutil.Process]:
    """The processes of the Ray started in ``folder``: those naming it, and theirs."""
    found: dict[int, psutil.Process] = {}
    for proc in _naming(folder):
        with contextlib.suppress(psutil.Error):
            found[proc.pid] = proc
            found.update((c.pid, c) for c in proc.children(recursive=True))
    return list(found.values())


def snake_ray_jobs() -> list[psutil.Process]:
    """Workers of the session's Ray running a job of snake's now (Ray titles a
    busy worker with its task); another Ray's on the machine do not count."""
    busy: dict[int, psutil.Process] = {}
    for root in _RAY_ROOTS:
        with contextlib.suppress(psutil.Error):
            for proc in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    # Read once: a worker that is exiting changes its command line.
                    title = proc.cmdline()[:1]
                    if title and title[0].startswith("ray::run_job"):
                        busy[proc.pid] = proc
    return list(busy.values())


def _warm(x: int) -> int:
    return x


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[str]:
    """A Ray head of 2 CPUs started for the session (``ray start``, so that its
    processes are not this process's children), and this process connected to
    it. Stopped at the end: its own processes only, not another Ray's."""
    import ray

    folder = tempfile.mkdtemp(prefix="snake-ray-", dir="/tmp")  # short: it holds sockets
    port = _free_port()
    env = {**os.environ, **RAY_ENV}
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)  # for this process's connection
    command = [os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--head"]
    command += [f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    # Free ports of its own where Ray has fixed defaults, so that another Ray
    # on the machine (a benchmark's, a test script's) cannot take them first.
    command += [
        f"--{name}-port={_free_port()}"
        for name in ("dashboard", "dashboard-agent-listen", "dashboard-agent-grpc",
                     "runtime-env-agent", "metrics-export")
    ]  # fmt: skip
    command += ["--disable-usage-stats", f"--temp-dir={folder}"]
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=RAY_START_TIMEOUT)
        address = f"127.0.0.1:{port}"
        # Ray's workers import the tests' functions by module, as they would a
        # program's: from the tests' folder.
        tests = {"env_vars": {"PYTHONPATH": os.path.dirname(os.path.abspath(__file__))}}
        ray.init(address=address, logging_level="WARNING", log_to_driver=False, runtime_env=tests)
        # Workers started once, for all the tests: a test's first task does
        # not wait for a worker process to start.
        ray.get([ray.remote(_warm).remote(k) for k in range(4)])
        _RAY_ROOTS[:] = _naming(folder)
        yield address
    finally:
        _RAY_ROOTS.clear()
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        processes = ray_processes(folder)
        for proc in processes:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(processes, timeout=LEAK_PATIENCE)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ray_clean(ray_runtime: str) -> Iterator[str]:
    """Ray connected; after the test, no Ray worker runs snake's jobs and this
    process holds no reference to an object in Ray's store."""
    import gc

    import ray

    core = ray._private.worker.global_worker.core_worker
    yield ray_runtime
    deadline = time.monotonic() + LEAK_PATIENCE
    while (busy := snake_ray_jobs()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not busy, f"Ray workers still running snake jobs: {busy}"
    # Ray counts references in threads of its own: give it the same patience.
    # Entries whose counts are all zero are on their way out of its table.
    while True:
        gc.collect()
        held = {ref: n for ref, n in core.get_all_reference_counts().items() if any(n.values())}
        if not held or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert held == {}
