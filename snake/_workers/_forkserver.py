"""The fork server that starts worker processes: what it loads before forking them.

Where it is safe, the fork server is a fork of the program itself, made as its
first process map starts: workers forked from it find everything the program
has imported and defined, as DataLoader's forked workers do, and start in
milliseconds. Where it is not (another Python thread runs, which could hold a
lock the fork would inherit held, or torch has started CUDA, which a fork
cannot use), it is a fresh interpreter that loads
snake's worker side and the running script once (``_forkserver_main``).
Either way workers never run the script's top level again.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

import trio

from .. import _info
from ._worker import serve

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

_WORKER_MODULE = serve.__module__
_FORKSERVER_MAIN = __name__.rpartition(".")[0] + "._forkserver_main"
#: Where ``_forkserver_main`` finds the script to load.
_MAIN_VARIABLE = "SNAKE_FORKSERVER_MAIN"
#: What ``multiprocessing`` runs in the interpreter it starts as the fork server.
_SERVER_COMMAND = "from multiprocessing.forkserver import main"


def running() -> bool:
    """Whether this process has a fork server already."""
    server = multiprocessing.forkserver._forkserver
    return getattr(server, "_forkserver_pid", None) is not None


def fork_server_here() -> bool:
    """Start the fork server as a fork of this process as it is now, if that is safe.

    Safe where no other Python thread runs (see ``_may_fork``): one could
    hold a lock (logging's, a file's buffer's, the program's own) that the
    fork would inherit held and wait on forever. Native threads of libraries, such as the thread
    pools of torch and OpenBLAS, prepare for a fork themselves, as
    DataLoader's forked workers rely on. Called from the thread that runs
    the pipeline, before it starts threads of its own (``Pipeline.iterate``
    calls it before starting the pipeline's thread). Returns whether a fork
    server runs now.
    """
    if running():
        return True
    if not _may_fork():
        return False
    _set_preload([_WORKER_MODULE])
    with _forking_spawn():
        multiprocessing.forkserver.ensure_running()
    return running()


async def start_forkserver() -> None:
    """Start the fork server, unless one runs: a fork of this process where
    that is safe (``fork_server_here``), else a fresh interpreter having it
    load snake's worker side and the running script once.

    Each worker forked from it then starts with them loaded, in milliseconds
    instead of fresh imports, and does not run the script again (see
    ``_forkserver_main``). Whatever the program asked to preload stays. The
    fresh server reads the script's path from this process's environment as
    it starts; once it runs, that variable is removed, so no other child
    process inherits it.
    """
    if fork_server_here():
        return
    wanted = [_WORKER_MODULE]
    script = _script_path()
    if script is not None:
        # With the import path the script runs with; the pid keeps any
        # other process from acting on it.
        os.environ[_MAIN_VARIABLE] = json.dumps([os.getpid(), script, sys.path])
        wanted.append(_FORKSERVER_MAIN)
    _set_preload(wanted)
    try:
        await trio.to_thread.run_sync(multiprocessing.forkserver.ensure_running)
    finally:
        os.environ.pop(_MAIN_VARIABLE, None)


def _set_preload(wanted: list[str]) -> None:
    """Have the server import ``wanted`` as it starts, after what the program asked for."""
    server = multiprocessing.forkserver._forkserver
    current = list(getattr(server, "_preload_modules", None) or [])
    if any(m not in current for m in wanted):
        preload = current + [m for m in wanted if m not in current]
        multiprocessing.get_context("forkserver").set_forkserver_preload(preload)


def _may_fork() -> bool:
    """Whether forking this process now is safe: Linux, no other Python thread,
    and no CUDA context, which a fork cannot use (a worker touching CUDA would
    fail with "Cannot re-initialize CUDA in forked subprocess")."""
    return (
        sys.platform == "linux"
        and threading.current_thread() is threading.main_thread()
        and threading.active_count() == 1
        and not _cuda_initialized()
    )


def _cuda_initialized() -> bool:
    """Whether torch, if the program imported it, has started CUDA."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        return bool(cuda is not None and cuda.is_initialized())
    except Exception:  # a torch too broken to say: do not fork
        return True


@contextlib.contextmanager
def _forking_spawn() -> Iterator[None]:
    """While ``ensure_running`` starts the server, fork it instead of spawning it.

    ``multiprocessing`` starts its fork server by running a command in a new
    interpreter; this runs the same command in a fork of this process, with
    the same descriptors passed, so the server (and with it every detail of
    its protocol) stays the standard library's own. Everything else
    ``ensure_running`` spawns (the resource tracker) is spawned as usual.
    """
    util = multiprocessing.util
    spawn = util.spawnv_passfds

    def spawnv_passfds(path: str, args: Sequence[str], passfds: Sequence[int]) -> int:
        if len(args) < 2 or args[-2] != "-c" or _SERVER_COMMAND not in args[-1]:
            return spawn(path, args, passfds)  # type: ignore[arg-type]
        util._flush_std_streams()  # type: ignore[attr-defined]  # else forks write it again
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the fork server
            code = 1
            try:
                _become_server(args[-1], passfds)
                code = 0
            except SystemExit as stop:
                code = 0 if stop.code is None else 1
            finally:
                os._exit(code)  # never the program's exit: its handlers are not ours
        return pid

    util.spawnv_passfds = spawnv_passfds  # type: ignore[assignment]
    try:
        yield
    finally:
        util.spawnv_passfds = spawn


def _become_server(command: str, passfds: Sequence[int]) -> None:  # pragma: no cover
    """In the fork: leave what belongs to the program, then serve as the fork server.

    trio's run, if the fork was made in one, and its signal handlers are
    forgotten, so workers start as in a new interpreter; the program's pipes,
    sockets and event descriptors are let go (``_let_go``).
    """
    # Held in the program while it asked for this fork.
    multiprocessing.forkserver._forkserver._lock = threading.Lock()  # type: ignore[attr-defined]
    run = sys.modules.get("trio._core._run")
    if run is not None:
        vars(run.GLOBAL_RUN_CONTEXT).clear()
    # The program's objects (torch's are millions) are never collected by
    # the server or its workers: left out of their collections, they are not
    # walked (a pause each time, 0.1 s with torch's) nor copied page by page
    # into each worker. Not collected first either, for that pause.
    gc.freeze()
    _info.load_generators()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _let_go(passfds)
    path = _script_path()
    if path is not None:
        # Workers compare it with the path ``multiprocessing`` sends them
        # (``python ./train.py`` keeps the ``./`` in ``__file__``, ``python
        # -`` has ``<stdin>``): unequal, they would run the script again.
        sys.modules["__main__"].__file__ = path
    exec(command, {"__name__": "__snake_fork_server__"})


def _let_go(passfds: Sequence[int]) -> None:  # pragma: no cover - in the fork
    """Point the program's pipes, sockets and event descriptors at ``/dev/null``.

    Held open here, they would outlive the program's own close: a process
    reading the other end of a pipe or socket would never see it end, a port
    would stay bound, and an ``epoll`` of the program would keep reporting
    them. ``/dev/null`` keeps their numbers taken, so nothing new gets one
    that an object of the program still names; a worker that uses such an
    object gets an error instead of sharing the program's connection.
    Files stay open, as they do in DataLoader's forked workers.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd <= 2 or fd == null or fd in passfds:
                continue
            try:
                target = os.readlink(f"/proc/self/fd/{name}")
            except OSError:  # the listing's own descriptor, closed by now
                continue
            if target.startswith(("pipe:", "socket:", "anon_inode:")):
                os.dup2(null, fd, inheritable=os.get_inheritable(fd))
    finally:
        os.close(null)


def check_spawn_loads_main() -> None:
    """Raise, before any worker starts, if spawned workers could not load the script.

    ``multiprocessing`` has a spawned worker run the script's file again
    as its ``__main__`` (fork server workers find it loaded, see
    ``_forkserver_main``); a script read from standard input (``python -``,
    whose ``__file__`` is ``<stdin>``) has no file, and every worker would
    die on a ``FileNotFoundError`` as it starts. ``python -c`` has no
    ``__file__``, and its workers load nothing.

    Raises:
      RuntimeError: the script has no file, saying what works instead.
    """
    path = _script_path()
    if path is None or os.path.isfile(path):
        return
    name = sys.modules["__main__"].__file__
    what = "was read from standard input" if name == "<stdin>" else f"has no file {path!r}"
    default = ""
    if "forkserver" in multiprocessing.get_all_start_methods():
        default = ', leave WorkerOptions(start_method=...) at its default, "forkserver",'
    raise RuntimeError(
        'worker processes started with start_method="spawn" run the script again, '
        f"and this script {what}, so they cannot start: save it to a file and run "
        f'that{default} or use par_map(fn, executor="thread")'
    )


def _script_path() -> str | None:
    """The path ``multiprocessing`` sends workers to load ``__main__`` from.

    Absolute and normalized, as ``multiprocessing.spawn`` makes it; ``None``
    where it sends none (a module run with ``-m``, an interactive session).
    A worker whose ``__main__`` has this ``__file__`` does not load it.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is not None or not isinstance(path, str):
        return None
    start = getattr(multiprocessing.process, "ORIGINAL_DIR", None)
    if not os.path.isabs(path) and start is not None:
        path = os.path.join(start, path)
    return os.path.normpath(path)
