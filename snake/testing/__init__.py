"""snake.testing: helpers for libraries and programs built on snake to test their own code.

Module map:
  _leaks          no_leaks and LeakError: what a block left behind
  _processes      child processes, from /proc or psutil
  pytest_plugin   the leak check around every test, for a conftest.py's
                  ``pytest_plugins``; imported only by those that opt in

``import snake`` does not import this package, and importing it starts nothing.
"""

from __future__ import annotations

from ._leaks import LeakError as LeakError
from ._leaks import no_leaks as no_leaks

__all__ = ["LeakError", "no_leaks"]
