"""Python-number checks shared by the framework adapters (no framework imported here)."""

from __future__ import annotations

import numbers
from typing import Any


def is_py_int(x: Any) -> bool:
    """A Python (or numpy) integer, not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def whole(x: Any) -> int | None:
    """A Python int or whole float as an int; None for anything else."""
    if is_py_int(x):
        return int(x)
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return None
