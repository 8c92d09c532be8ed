"""Array back-ends for evaluating a policy's formula.

Every policy writes its formula once, against a small namespace of operations (``ops``).
The same formula then runs on a Python float (``SCALAR``, for ``policy(t)``), on a numpy array
(``NUMPY``, for ``policy.values(ts)``), and, in the framework integrations, on jax or Keras
tensors. Arithmetic operators (``+ - * / // % **``, ``abs``) are used directly on ``t``;
only what differs between back-ends goes through ``ops``.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Protocol, Sequence

import numpy as np


class Ops(Protocol):
    """The operations a policy formula may call besides arithmetic operators."""

    def sin(self, x: Any) -> Any: ...
    def cos(self, x: Any) -> Any: ...
    def floor(self, x: Any) -> Any: ...
    def maximum(self, x: Any, y: float) -> Any: ...
    def clip(self, x: Any, lo: float, hi: float) -> Any: ...
    def where(self, cond: Any, x: Any, y: Any) -> Any: ...
    def count_le(self, milestones: Sequence[int], t: Any) -> Any:
        """How many milestones are <= t."""
        ...


class ScalarOps:
    """Python floats and the math module: the fast path of ``policy(t)``."""

    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    floor = staticmethod(math.floor)

    @staticmethod
    def maximum(x: float, y: float) -> float:
        return x if x > y else y

    @staticmethod
    def clip(x: float, lo: float, hi: float) -> float:
        return lo if x < lo else hi if x > hi else x

    @staticmethod
    def where(cond: bool, x: float, y: float) -> float:
        return x if cond else y

    @staticmethod
    def count_le(milestones: Sequence[int], t: float) -> int:
        return bisect.bisect_right(milestones, t)


class NumpyOps:
    """numpy float64 arrays: the vectorized path of ``policy.values(ts)``."""

    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    floor = staticmethod(np.floor)
    maximum = staticmethod(np.maximum)
    clip = staticmethod(np.clip)
    where = staticmethod(np.where)

    @staticmethod
    def count_le(milestones: Sequence[int], t: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(milestones, dtype=np.float64), t, side="right")


SCALAR = ScalarOps()
NUMPY = NumpyOps()
