"""The policy value object that every LR function and composite shares."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from lrbench.policies.ops import NUMPY, SCALAR, Ops

if TYPE_CHECKING:
    from lrbench.policies.composite import Phase

Kind = Literal["fixed", "decaying", "cyclic", "ramp", "composite"]
ParamValue = float | int | tuple[int, ...]


class Policy(ABC):
    """An LR policy: an LR function with every parameter fixed.

    Immutable, compared and hashed by value. ``policy(t)`` gives the LR of iteration ``t``
    (counted from 0: the first optimizer step uses ``policy(0)``); ``policy.values(ts)`` gives
    the LRs of an array of iterations at once.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    #: ``values`` evaluates the formula on int64 iterations (it uses ``t % n`` or ``t // n``)
    _int_iterations: ClassVar[bool] = False
    __slots__ = ()

    # -- evaluation ---------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, t: Any, ops: Ops) -> Any:
        """The LR at iteration(s) ``t`` (floats, already validated) on the back-end ``ops``."""

    def __call__(self, t: int) -> float:
        return float(self.evaluate(float(check_iteration(t)), SCALAR))

    def values(self, ts: Any) -> np.ndarray:
        """LRs at the iterations ``ts`` (any array-like of whole numbers >= 0), as float64.

        >>> from lrbench.policies import STEP
        >>> STEP(k0=0.1, gamma=0.5, l=10).values([0, 9, 10, 25]).tolist()
        [0.1, 0.1, 0.05, 0.025]
        """
        t = check_iterations(ts)
        if self._int_iterations and t.size and t.max() < _INT64_SAFE:
            # Formulas built on ``t % n`` and ``t // n`` (cycles, steps) run on int64: exact,
            # and much faster than on floats; every other operation gives the same float64.
            return np.asarray(self.evaluate(t.astype(np.int64), NUMPY),
                              dtype=np.float64).reshape(t.shape)
        return np.asarray(self.evaluate(t, NUMPY), dtype=np.float64).reshape(t.shape)

    @property
    @abstractmethod
    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) LR the policy can take."""

    # -- description ----------------------------------------------------------------------
    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters, canonical (floats; whole numbers of iterations as ints)."""

    @property
    @abstractmethod
    def n_params(self) -> int:
        """#Param: how many numbers must be chosen to fix this policy (the cost of tuning it)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; ``from_dict(p.to_dict()) == p``."""

    def __str__(self) -> str:
        from lrbench.policies.notation import format_policy

        return format_policy(self)

    def __repr__(self) -> str:
        return f"<Policy {self}>"

    @abstractmethod
    def _key(self) -> tuple:
        """What equality and hashing compare."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):  # pickling goes through the canonical dict
        from lrbench.policies.notation import from_dict

        return (from_dict, (self.to_dict(),))

    # -- composition ----------------------------------------------------------------------
    def __getitem__(self, length: int) -> Phase:
        """``policy[n]``: this policy for ``n`` iterations, a phase of a composite.

        >>> from lrbench.policies import FIX, COS
        >>> print(FIX(k0=0.1)[100] >> COS(k0=0.1, k1=0.0, l=900))
        FIX(k0=0.1)[100] >> COS(k0=0.1, k1=0.0, l=900)
        """
        from lrbench.policies.composite import Phase

        return Phase(self, length)

    def __rshift__(self, other: Any) -> Any:
        raise ValueError(
            f"{self} is open-ended and cannot be followed; give it a length first:"
            " policy[n] >> next"
        )


# -- validation helpers -------------------------------------------------------------------
def _fail(owner: str, param: str, value: Any, rule: str) -> ValueError:
    return ValueError(f"{owner}: {param} must be {rule}, got {value!r}")


def check_number(owner: str, param: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(owner, param, value, "a real number")
    value = float(value)
    if not math.isfinite(value):
        raise _fail(owner, param, value, "finite")
    return value


def check_positive(owner: str, param: str, value: Any) -> float:
    value = check_number(owner, param, value)
    if value <= 0:
        raise _fail(owner, param, value, "> 0")
    return value


def check_non_negative(owner: str, param: str, value: Any) -> float:
    value = check_number(owner, param, value)
    if value < 0:
        raise _fail(owner, param, value, ">= 0")
    return value + 0.0  # -0.0 -> 0.0: equal policies must print (and be stored) the same


def check_gamma(owner: str, param: str, value: Any) -> float:
    value = check_number(owner, param, value)
    if not 0 < value <= 1:
        raise _fail(owner, param, value, "in (0, 1]")
    return value


def check_length(owner: str, param: str, value: Any) -> int:
    """A positive whole number of iterations (an int, or a float such as 2000.0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(owner, param, value, "a positive whole number of iterations")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        raise _fail(owner, param, value, "a positive whole number of iterations")
    if value <= 0:
        raise _fail(owner, param, value, "a positive whole number of iterations")
    return value


def check_iteration(t: Any) -> int:
    """One iteration number: a whole number >= 0."""
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise ValueError(f"iteration t must be a whole number >= 0, got {t!r}")
    if not isinstance(t, numbers.Integral):
        if not (math.isfinite(t) and float(t).is_integer()):
            raise ValueError(f"iteration t must be a whole number >= 0, got {t!r}")
    if t < 0:
        raise ValueError(f"iteration t must be a whole number >= 0, got {t!r}")
    return int(t)


#: iterations below this are evaluated as int64 by ``values`` (exact: float64 holds them exactly)
_INT64_SAFE = 2.0**62


def check_iterations(ts: Any) -> np.ndarray:
    """An array of iteration numbers (whole, >= 0) as float64."""
    arr = np.asarray(ts)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"iterations must be whole numbers >= 0, got an array of {arr.dtype}")
    if arr.size and np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            raise ValueError(f"iterations must be whole numbers >= 0, got {arr[bad].flat[0]!r}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"iterations must be whole numbers >= 0, got {arr.min()!r}")
    return arr.astype(np.float64, copy=False)
