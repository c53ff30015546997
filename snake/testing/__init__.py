"""Tools for testing code built on snake."""

from ._assertions import (
    assert_ordered_equal,
    assert_permutation,
    assert_prefix,
    assert_same_error,
    assert_same_items,
)
from ._failing import InjectedError, failing
from ._ops import Op, build, reference
from ._runs import Delays, in_process, run, sequential
from ._strategies import delays, failures, operators

__all__ = [
    "Delays",
    "InjectedError",
    "Op",
    "assert_ordered_equal",
    "assert_permutation",
    "assert_prefix",
    "assert_same_error",
    "assert_same_items",
    "build",
    "delays",
    "failing",
    "failures",
    "in_process",
    "operators",
    "reference",
    "run",
    "sequential",
]
