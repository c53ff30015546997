"""The operator table the test suites draw from: ``snake.testing``'s, and the rows
only snake's own suite can run.

Each row of ``OPERATORS`` names an operator and gives a small ``Example`` of
it (see ``snake.testing._table``). A new operator is one more row in
``snake.testing._table`` (or here, if it needs the suite's stand-ins);
``test_pipeline`` fails until it has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fake_torch
from fake_torch import FakeTensor

from snake.testing import Op
from snake.testing._examples import (
    Boom,
    Fn,
    afails_at_3,
    delayed,
    fails_at,
    filtered,
)
from snake.testing._references import Endless, Naturals, chunked, interleaved
from snake.testing._table import OPERATORS as PUBLIC
from snake.testing._table import Draws, Operator, examples

if TYPE_CHECKING:
    from collections.abc import Callable

    import snake

Example = Op

__all__ = [
    "IN_PROCESS",
    "OPERATORS",
    "Boom",
    "Draws",
    "Endless",
    "Example",
    "Fn",
    "Naturals",
    "Operator",
    "afails_at_3",
    "chunked",
    "delayed",
    "examples",
    "fails_at",
    "filtered",
    "interleaved",
]


def arrived(tensor: FakeTensor) -> int:
    """The value of a tensor that ``to_device("cuda:1")`` pinned and moved in a thread."""
    if tensor.thread == "MainThread":
        raise AssertionError(f"moved in {tensor.thread}")
    return arrived_here(tensor)


def arrived_here(tensor: FakeTensor) -> int:
    """The value of a tensor that ``to_device("cuda:1")`` pinned and moved, in any thread."""
    if tensor.device != "cuda:1" or not tensor.pinned:
        raise AssertionError(f"not moved: {tensor.device}, {tensor.pinned}, {tensor.thread}")
    return tensor.value


def to_device(
    p: snake.Pipeline[int], check: Callable[[FakeTensor], int] = arrived
) -> snake.Pipeline[int]:
    # torch is looked up when the pipeline is built, so the stand-in needs to
    # be there only then; moving calls the tensors' own methods.
    with fake_torch.installed():
        moved = p.map(FakeTensor).to_device("cuda:1")
    return moved.map(check)


#: The rows that need the suite's stand-ins (``fake_torch``).
SUITE_ONLY = [
    Operator(
        "to_device",
        Example("to_device('cuda:1') of FakeTensors, stand-in torch", to_device, lambda it: it),
        threads=True,
    ),
]

OPERATORS: list[Operator] = [*PUBLIC, *SUITE_ONLY]

#: ``SUITE_ONLY`` as ``snake.testing.run`` runs it: every call in this
#: thread, the move too.
IN_PROCESS = [
    Operator(
        "to_device",
        Example(
            "to_device('cuda:1') of FakeTensors, stand-in torch, in this thread",
            lambda p: to_device(p, arrived_here),
            lambda it: it,
        ),
    ),
]
