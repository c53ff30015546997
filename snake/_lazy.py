"""Public names imported on first use: a package's ``__getattr__`` and
``__dir__`` (PEP 562) from a map of each name to the module it lives in.

``snake`` and ``snake.testing`` use it, so that importing either imports
none of the modules its names live in until a name is used. Imports
nothing itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``homes`` map each
    public name to its module, relative to it; ``namespace`` is its
    ``globals()``, where a name found is kept, to be found directly after."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
