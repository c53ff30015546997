"""A pytest plugin: snake's leak check around every test of a project built on snake.

Opt in from the project's top ``conftest.py``::

    pytest_plugins = ["snake.testing.pytest_plugin"]

Every test then runs inside :class:`snake.testing.no_leaks`; a test marked
``@pytest.mark.snake_leaks_allowed`` does not. The ini option
``snake_leak_patience`` sets how many seconds leftovers get to end (default 5).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from ._leaks import PATIENCE, no_leaks

if TYPE_CHECKING:
    from collections.abc import Iterator

MARKER = "snake_leaks_allowed"
PATIENCE_OPTION = "snake_leak_patience"
_patience = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        PATIENCE_OPTION,
        f"seconds a test's leftovers get to end before snake's leak check fails it "
        f"(default {PATIENCE:g})",
        default=str(PATIENCE),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test may leave worker processes, threads or shared memory "
        "behind: snake's leak check skips it",
    )
    value = config.getini(PATIENCE_OPTION)
    try:
        patience = float(value)
    except ValueError:
        patience = math.nan
    if not 0 <= patience < math.inf:
        raise pytest.UsageError(
            f"`{PATIENCE_OPTION}` must be a number of seconds >= 0, got {value!r}"
        )
    config.stash[_patience] = patience


@pytest.fixture(autouse=True)
def snake_no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves worker processes, busy threads or shared memory
    behind (see :class:`snake.testing.no_leaks`), unless it is marked
    ``snake_leaks_allowed``."""
    __tracebackhide__ = True
    if request.node.get_closest_marker(MARKER) is not None:
        yield
        return
    with no_leaks(request.config.stash[_patience]):
        yield
