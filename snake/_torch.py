"""torch, imported where a feature needs it: it is an optional dependency."""

from __future__ import annotations

from typing import Any


def import_torch(what: str, otherwise: str) -> Any:
    """The ``torch`` module, or an ``ImportError`` saying that ``what`` needs it.

    ``otherwise`` ends the message: another way out than installing torch.
    """
    try:
        import torch  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ImportError(
            f"{what}, and torch is not installed: pip install torch==2.13.0 (a CPU build)"
            f"{otherwise}"
        ) from None
    return torch
