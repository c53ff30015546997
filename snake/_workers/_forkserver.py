"""The fork server that starts worker processes: what it loads before forking them."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import sys

import trio

from ._worker import serve

_WORKER_MODULE = serve.__module__
_FORKSERVER_MAIN = __name__.rpartition(".")[0] + "._forkserver_main"
#: Where ``_forkserver_main`` finds the script to load.
_MAIN_VARIABLE = "SNAKE_FORKSERVER_MAIN"


async def start_forkserver() -> None:
    """Start the fork server, having it load snake's worker side and the running script once.

    Each worker forked from it then starts with them loaded, in milliseconds
    instead of fresh imports, and does not run the script again (see
    ``_forkserver_main``). Whatever the program asked to preload stays; a
    server already running stays as it is. The server reads the script's
    path from this process's environment as it starts; once it runs, that
    variable is removed, so no other child process inherits it.
    """
    server = multiprocessing.forkserver._forkserver
    if getattr(server, "_forkserver_pid", None) is not None:
        return
    wanted = [_WORKER_MODULE]
    script = _script_path()
    if script is not None:
        # With the import path the script runs with; the pid keeps any
        # other process from acting on it.
        os.environ[_MAIN_VARIABLE] = json.dumps([os.getpid(), script, sys.path])
        wanted.append(_FORKSERVER_MAIN)
    current = list(getattr(server, "_preload_modules", None) or [])
    if any(m not in current for m in wanted):
        preload = current + [m for m in wanted if m not in current]
        multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    try:
        await trio.to_thread.run_sync(multiprocessing.forkserver.ensure_running)
    finally:
        os.environ.pop(_MAIN_VARIABLE, None)


def _script_path() -> str | None:
    """The path workers load ``__main__`` from, as ``multiprocessing`` gives it.

    ``None`` unless the program is a script run by path (``python train.py``).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is not None or not isinstance(path, str):
        return None
    return os.path.normpath(path) if path.endswith(".py") else None
