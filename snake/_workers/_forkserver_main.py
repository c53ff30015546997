"""Imported by the fork server alone: it loads the running script as ``__main__``.

Every worker runs the script's module again when it starts, unless its
``__main__`` already is that script. Python's own ``"__main__"`` preload is
meant to arrange that in the fork server, but Python 3.11 never passes the
server the script's path, nor uses the import path it is given, so the
server loads it here, from the path and import path ``_forkserver`` leaves
in the environment with the pid of the process it serves (any other process
importing this, which nothing should, is left alone). Workers forked
afterwards then find the script, and everything it imports, already loaded.
A script with no file (read from stdin) is not loaded: workers are only told
not to look for it.
"""

import json
import os
import sys

from snake import _info

try:
    _parent, _path, _sys_path = json.loads(os.environ.get("SNAKE_FORKSERVER_MAIN", ""))
except ValueError:
    _parent = _path = _sys_path = None
_mine = _parent == os.getppid()
if _mine and _path and not os.path.isfile(_path):
    # No file to run (a script read from stdin: ``<stdin>``): workers are
    # told not to look for it, their functions arrive pickled by value.
    sys.modules["__main__"].__file__ = _path
elif _mine and _path and getattr(sys.modules.get("__main__"), "__file__", None) != _path:
    from multiprocessing import process, spawn

    # The script's imports are found where they are found in the program;
    # workers get this path from ``multiprocessing`` anyway.
    sys.path[:] = _sys_path

    _server_main = sys.modules["__main__"]
    process.current_process()._inheriting = True  # type: ignore[attr-defined]
    try:
        spawn.import_main_path(_path)
    except BaseException:  # the script failed here: workers will load it themselves
        sys.modules["__main__"] = _server_main
        sys.modules.pop("__mp_main__", None)
    finally:
        del process.current_process()._inheriting  # type: ignore[attr-defined]

# What workers seed, loaded once here rather than in each of them.
_info.load_generators()
