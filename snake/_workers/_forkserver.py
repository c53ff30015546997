"""The fork server that starts worker processes: what it loads before forking them."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import sys

from ._worker import serve

_WORKER_MODULE = serve.__module__
_FORKSERVER_MAIN = __name__.rpartition(".")[0] + "._forkserver_main"


def preload_forkserver() -> None:
    """Have the fork server load snake's worker side and the running script once.

    Each worker forked from it then starts with them loaded, in milliseconds
    instead of fresh imports, and does not run the script again (see
    ``_forkserver_main``). Whatever the program asked to preload stays; this
    takes effect only if the server has not started yet.
    """
    wanted = [_WORKER_MODULE]
    script = _script_path()
    if script is not None:
        # For the server to read, with the import path the script runs
        # with; the pid keeps any other process from acting on it.
        os.environ["SNAKE_FORKSERVER_MAIN"] = json.dumps([os.getpid(), script, sys.path])
        wanted.append(_FORKSERVER_MAIN)
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    current = list(getattr(server, "_preload_modules", None) or [])
    if any(m not in current for m in wanted):
        preload = current + [m for m in wanted if m not in current]
        multiprocessing.get_context("forkserver").set_forkserver_preload(preload)


def _script_path() -> str | None:
    """The path workers load ``__main__`` from, as ``multiprocessing`` gives it.

    ``None`` unless the program is a script run by path (``python train.py``).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is not None or not isinstance(path, str):
        return None
    return os.path.normpath(path) if path.endswith(".py") else None
