"""Tools for testing code built on snake."""

from ._assertions import (
    assert_ordered_equal,
    assert_permutation,
    assert_prefix,
    assert_same_error,
    assert_same_items,
)
from ._failing import InjectedError, failing
from ._runs import Delays, in_process, run, sequential
from ._strategies import delays, failures

__all__ = [
    "Delays",
    "InjectedError",
    "assert_ordered_equal",
    "assert_permutation",
    "assert_prefix",
    "assert_same_error",
    "assert_same_items",
    "delays",
    "failing",
    "failures",
    "in_process",
    "run",
    "sequential",
]
