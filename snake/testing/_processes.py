"""Child processes: listed from /proc, or through psutil on systems without it."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import attrs

#: Where Linux shows its processes. Elsewhere psutil reads them.
_PROC = "/proc"

#: The states of ``/proc/<pid>/stat``, in psutil's words.
_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "Z": "zombie",
    "T": "stopped",
    "t": "tracing-stop",
    "X": "dead",
    "I": "idle",
    "P": "parked",
}


@attrs.frozen
class Process:
    """One process as it was when listed: its id, its parent's, its state in
    psutil's words (``"sleeping"``, ``"zombie"``...) and its command line
    (empty for a zombie)."""

    pid: int
    ppid: int
    status: str
    cmdline: tuple[str, ...]

    def __str__(self) -> str:
        command = " ".join(self.cmdline).replace("\n", "\\n")  # one line: `python -c` code
        return f"process {self.pid} ({self.status}): {command or '?'}"


def descendants(root: int) -> list[Process]:
    """The processes below ``root``: its children, then theirs, and so on.

    A process that ends while it is listed is left out.
    """
    table = _table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in sorted(table.items()):
        children.setdefault(ppid, []).append(pid)
    found: list[Process] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        ppid, status = table[pid]
        found.append(Process(pid, ppid, status, command(pid)))
        todo += children.get(pid, [])
    return found


def worker_processes(root: int | None = None) -> list[Process]:
    """The descendants of ``root`` (this process by default) but
    ``multiprocessing``'s resource tracker and fork server, which live as long
    as the interpreter and are not workers. The workers the fork server
    forks are the root's grandchildren."""
    pid = os.getpid() if root is None else root
    return [p for p in descendants(pid) if not _helper(p, pid)]


def _helper(proc: Process, root: int) -> bool:
    if "resource_tracker" in " ".join(proc.cmdline):
        return True
    if proc.ppid != root:
        return False
    if root == os.getpid():  # this process knows its server
        return proc.pid == _fork_server_pid()
    # Another's server runs multiprocessing's command, or, forked from the
    # root (as snake forks its own where it can), has the root's command line.
    return "multiprocessing.forkserver" in " ".join(proc.cmdline) or proc.cmdline == command(root)


def _fork_server_pid() -> int | None:
    # Imported by whoever started it: a program that has not has no server.
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    return pid if isinstance(pid, int) else None


def check_readable() -> None:
    """Raise :class:`ImportError` now if listing processes needs psutil, which is missing."""
    if not _has_proc():
        _psutil()


def _has_proc() -> bool:
    return os.path.exists(os.path.join(_PROC, "self", "stat"))


def _table() -> dict[int, tuple[int, str]]:
    """Every process of the system: its parent's id and its state."""
    if not _has_proc():
        return _psutil_table()
    table = {}
    for name in os.listdir(_PROC):
        if name.isdigit():
            try:
                with open(os.path.join(_PROC, name, "stat")) as file:
                    stat = file.read()
            except OSError:  # ended since listed
                continue
            # After the command's name, in parentheses, which may hold anything.
            state, ppid = stat.rpartition(")")[2].split()[:2]
            table[int(name)] = (int(ppid), _STATES.get(state, state))
    return table


def command(pid: int) -> tuple[str, ...]:
    """The command line of process ``pid``: empty if it ended or is a zombie."""
    if not _has_proc():
        return _psutil_command(pid)
    try:
        with open(os.path.join(_PROC, str(pid), "cmdline"), "rb") as file:
            raw = file.read()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1])


def _psutil_table() -> dict[int, tuple[int, str]]:
    psutil = _psutil()
    table = {}
    for proc in psutil.process_iter(["ppid", "status"]):
        if proc.info["ppid"] is not None:  # None: unreadable, or ended since listed
            table[proc.pid] = (proc.info["ppid"], proc.info["status"])
    return table


def _psutil_command(pid: int) -> tuple[str, ...]:
    psutil = _psutil()
    try:
        return tuple(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ()


def _psutil() -> Any:
    try:
        return importlib.import_module("psutil")
    except ImportError as error:
        raise ImportError(
            f"snake.testing lists child processes through {_PROC}, which this system "
            "does not have; here it needs psutil: pip install psutil"
        ) from error
