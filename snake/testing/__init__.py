"""snake.testing: helpers for libraries and programs built on snake to test their own code.

Module map:
  _runs           sequential(), run() and in_process(): a pipeline's calls in
                  this process, one at a time or after chosen Delays, on
                  trio's autojump clock (each operator says how:
                  ``_stages/_rehearsal``)
  _assertions     assert_ordered_equal and the other assertions, with diffs
  _failing        failing() and InjectedError: functions that fail on chosen items
  _strategies     hypothesis strategies: delays(), failures(), operators()
  _ops            Op, build() and reference(): chains of operators and what
                  Python's itertools says they give
  _table          snake's operator table, which operators() draws from
  _examples       the table's examples and the functions they call
  _references     itertools references, and sources that restart each run
  _leaks          no_leaks and LeakError: what a block left behind
  _processes      child processes, from /proc or psutil
  pytest_plugin   the leak check around every test, for a conftest.py's
                  ``pytest_plugins``; imported only by those that opt in

``import snake`` does not import this package, and importing it starts
nothing and imports neither hypothesis nor pytest: a name's module loads
when the name is first used, so the leak check needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _lazy

#: Where each public name lives, imported on first use.
_HOMES = {
    "Delays": "._runs",
    "InjectedError": "._failing",
    "LeakError": "._leaks",
    "Op": "._ops",
    "assert_ordered_equal": "._assertions",
    "assert_permutation": "._assertions",
    "assert_prefix": "._assertions",
    "assert_same_error": "._assertions",
    "assert_same_items": "._assertions",
    "build": "._ops",
    "delays": "._strategies",
    "failing": "._failing",
    "failures": "._strategies",
    "in_process": "._runs",
    "no_leaks": "._leaks",
    "operators": "._strategies",
    "reference": "._ops",
    "run": "._runs",
    "sequential": "._runs",
}

__all__ = list(_HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from ._assertions import assert_ordered_equal as assert_ordered_equal
    from ._assertions import assert_permutation as assert_permutation
    from ._assertions import assert_prefix as assert_prefix
    from ._assertions import assert_same_error as assert_same_error
    from ._assertions import assert_same_items as assert_same_items
    from ._failing import InjectedError as InjectedError
    from ._failing import failing as failing
    from ._leaks import LeakError as LeakError
    from ._leaks import no_leaks as no_leaks
    from ._ops import Op as Op
    from ._ops import build as build
    from ._ops import reference as reference
    from ._runs import Delays as Delays
    from ._runs import in_process as in_process
    from ._runs import run as run
    from ._runs import sequential as sequential
    from ._strategies import delays as delays
    from ._strategies import failures as failures
    from ._strategies import operators as operators


__getattr__, __dir__ = _lazy.lazy(__name__, _HOMES, globals())
