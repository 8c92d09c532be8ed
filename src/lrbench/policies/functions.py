r"""The 13 LR functions of the LRBench paper (SPEC section 2), plus LIN.

General form: ``eta(t) = |k0 - k1| * g(t) + min(k0, k1)`` with ``g(t)`` in [0, 1] and ``t`` the
iteration counted from 0. Decaying functions have no floor by default (k1 = 0, so
``eta(t) = k0 * g(t)``); given a floor ``0 < k1 < k0`` they decay from k0 towards k1.
The cyclic functions' ``l`` is the half period: TRI and SIN rise from min(k0, k1) at t = 0 to
max(k0, k1) at t = l and are back at the minimum at t = 2l; COS falls from the maximum to the
minimum at t = l and is back at the maximum at t = 2l.

Each class documents its ``g(t)``. All validate their parameters when made and raise a
ValueError that names the parameter and the bad value.

>>> SIN2(k0=0.01, k1=0.06, l=2000)(2000)
0.06
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

from lrbench.policies.base import (
    Kind,
    Policy,
    check_gamma,
    check_length,
    check_non_negative,
    check_positive,
)
from lrbench.policies.ops import Ops


class LRFunction(Policy):
    """A policy made of one LR function: a dict of canonical parameters and a ``g(t)``."""

    __slots__ = ("_p",)
    #: parameter names in notation order (an optional floor k1 of decaying functions included)
    param_names: ClassVar[tuple[str, ...]]
    #: parameters that may be left out
    optional: ClassVar[tuple[str, ...]] = ()

    def _set(self, **params: Any) -> None:
        object.__setattr__(self, "_p", {k: v for k, v in params.items() if v is not None})

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._p)

    @property
    def n_params(self) -> int:
        return len(self._p)

    def _key(self) -> tuple:
        return (self.name, tuple(self._p.items()))

    def to_dict(self) -> dict[str, Any]:
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self._p.items()}
        return {"name": self.name, "params": params}

    @property
    def bounds(self) -> tuple[float, float]:
        lo = min(self._p["k0"], self._p.get("k1", 0.0))
        hi = max(self._p["k0"], self._p.get("k1", 0.0))
        return (lo, hi)

    def g(self, t: Any, ops: Ops) -> Any:
        """The normalized shape g(t) in [0, 1]."""
        raise NotImplementedError

    def evaluate(self, t: Any, ops: Ops) -> Any:
        lo, hi = self.bounds
        g = self.g(t, ops)
        # Clipping only removes the last-ulp rounding of lo + (hi - lo) * g; that rounding can
        # also land an ulp below hi at g = 1 (e.g. policy(0) of a decaying function with a
        # floor), so g = 1 gives hi exactly.
        return ops.where(g >= 1.0, hi, ops.clip(lo + (hi - lo) * g, lo, hi))


class _Decaying(LRFunction):
    """A decaying function: ``k0 * g(t)``, or ``(k0 - k1) * g(t) + k1`` with a floor k1."""

    __slots__ = ()
    kind: ClassVar[Kind] = "decaying"
    optional = ("k1",)

    def _floor(self, k0: float, k1: Any) -> float | None:
        if k1 is None:
            return None
        k1 = check_non_negative(self.name, "k1", k1)
        if k1 >= k0:
            raise ValueError(f"{self.name}: k1 (the floor) must be below k0={k0!r}, got {k1!r}")
        return k1 or None  # a floor of 0 is no floor: the same policy, #Param unchanged


class _Cyclic(LRFunction):
    """A cyclic function between min(k0, k1) and max(k0, k1); l is the half period."""

    __slots__ = ()
    _int_iterations = True
    kind: ClassVar[Kind] = "cyclic"

    def _set_bounds(self, k0: float, k1: float, l: int, **more: Any) -> None:
        self._set(
            k0=check_positive(self.name, "k0", k0),
            k1=check_non_negative(self.name, "k1", k1),
            **more,
            l=check_length(self.name, "l", l),
        )

    def tri(self, t: Any) -> Any:
        """Triangle wave (2/pi)|arcsin(sin(pi t / 2l))|, computed exactly as 1 - |(t mod 2l)/l - 1|."""
        l = self._p["l"]
        return 1.0 - abs((t % (2 * l)) / l - 1.0)

    def sin(self, t: Any, ops: Ops) -> Any:
        """|sin(pi t / 2l)|, with t reduced modulo the period 2l first for accuracy at large t."""
        l = self._p["l"]
        return abs(ops.sin(math.pi * (t % (2 * l)) / (2 * l)))

    def halvings(self, t: Any) -> Any:
        """1 / 2^floor(t / 2l): the amplitude halves every full cycle."""
        return 0.5 ** (t // (2 * self._p["l"]))


# -- fixed --------------------------------------------------------------------------------
class FIX(LRFunction):
    """Fixed LR: ``eta(t) = k0``. #Param 1.

    >>> FIX(k0=0.01)(123)
    0.01
    """

    __slots__ = ()
    name = "FIX"
    kind: ClassVar[Kind] = "fixed"
    param_names = ("k0",)

    def __init__(self, k0: float) -> None:
        self._set(k0=check_positive(self.name, "k0", k0))

    @property
    def bounds(self) -> tuple[float, float]:
        return (self._p["k0"], self._p["k0"])  # FIX has no k1: its LR is k0, never lower

    def g(self, t: Any, ops: Ops) -> Any:
        return t * 0.0 + 1.0


# -- decaying -----------------------------------------------------------------------------
class STEP(_Decaying):
    """Step decay: ``g(t) = gamma^floor(t / l)``. #Param 3 (4 with a floor k1).

    >>> STEP(k0=0.1, gamma=0.1, l=100)(100)
    0.010000000000000002
    """

    __slots__ = ()
    _int_iterations = True
    name = "STEP"
    param_names = ("k0", "k1", "gamma", "l")

    def __init__(self, k0: float, gamma: float, l: int, k1: float | None = None) -> None:
        k0 = check_positive(self.name, "k0", k0)
        self._set(
            k0=k0,
            k1=self._floor(k0, k1),
            gamma=check_gamma(self.name, "gamma", gamma),
            l=check_length(self.name, "l", l),
        )

    def g(self, t: Any, ops: Ops) -> Any:
        return self._p["gamma"] ** (t // self._p["l"])


class NSTEP(_Decaying):
    """Multi-step decay: ``g(t) = gamma^i``, i = how many milestones l_j are <= t. #Param n + 2.

    >>> NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]).values([4999, 5000, 7000]).round(12).tolist()
    [0.01, 0.001, 0.0001]
    """

    __slots__ = ()
    name = "NSTEP"
    param_names = ("k0", "k1", "gamma", "l")

    def __init__(
        self, k0: float, gamma: float, l: Sequence[int], k1: float | None = None
    ) -> None:
        k0 = check_positive(self.name, "k0", k0)
        if isinstance(l, (str, bytes)) or not isinstance(l, Sequence) or len(l) == 0:
            raise ValueError(
                f"{self.name}: l must be a non-empty, strictly increasing list of iterations,"
                f" got {l!r}"
            )
        milestones = tuple(check_length(self.name, f"l[{j}]", lj) for j, lj in enumerate(l))
        for j in range(1, len(milestones)):
            if milestones[j] <= milestones[j - 1]:
                raise ValueError(
                    f"{self.name}: l must be strictly increasing, got {list(milestones)!r}"
                    f" (l[{j}]={milestones[j]} <= l[{j - 1}]={milestones[j - 1]})"
                )
        self._set(
            k0=k0,
            k1=self._floor(k0, k1),
            gamma=check_gamma(self.name, "gamma", gamma),
            l=milestones,
        )

    @property
    def n_params(self) -> int:
        return len(self._p) - 1 + len(self._p["l"])

    def g(self, t: Any, ops: Ops) -> Any:
        return self._p["gamma"] ** ops.count_le(self._p["l"], t)


class EXP(_Decaying):
    """Exponential decay: ``g(t) = gamma^t``. #Param 2.

    >>> EXP(k0=0.1, gamma=0.5)(2)
    0.025
    """

    __slots__ = ()
    name = "EXP"
    param_names = ("k0", "k1", "gamma")

    def __init__(self, k0: float, gamma: float, k1: float | None = None) -> None:
        k0 = check_positive(self.name, "k0", k0)
        self._set(k0=k0, k1=self._floor(k0, k1), gamma=check_gamma(self.name, "gamma", gamma))

    def g(self, t: Any, ops: Ops) -> Any:
        return self._p["gamma"] ** t


class INV(_Decaying):
    """Inverse-time decay: ``g(t) = (1 + gamma * t)^(-p)``. #Param 3.

    >>> INV(k0=0.01, gamma=0.0001, p=0.75)(0)
    0.01
    """

    __slots__ = ()
    name = "INV"
    param_names = ("k0", "k1", "gamma", "p")

    def __init__(self, k0: float, gamma: float, p: float, k1: float | None = None) -> None:
        k0 = check_positive(self.name, "k0", k0)
        self._set(
            k0=k0,
            k1=self._floor(k0, k1),
            gamma=check_non_negative(self.name, "gamma", gamma),
            p=check_non_negative(self.name, "p", p),
        )

    def g(self, t: Any, ops: Ops) -> Any:
        return (1.0 + self._p["gamma"] * t) ** (-self._p["p"])


class POLY(_Decaying):
    """Polynomial decay to 0 at the total iterations l: ``g(t) = (1 - t/l)^p`` for t < l, else 0.

    >>> POLY(k0=0.1, p=1.0, l=100).values([0, 50, 100, 1000]).tolist()
    [0.1, 0.05, 0.0, 0.0]
    """

    __slots__ = ()
    name = "POLY"
    param_names = ("k0", "k1", "p", "l")

    def __init__(self, k0: float, p: float, l: int, k1: float | None = None) -> None:
        k0 = check_positive(self.name, "k0", k0)
        self._set(
            k0=k0,
            k1=self._floor(k0, k1),
            p=check_positive(self.name, "p", p),
            l=check_length(self.name, "l", l),
        )

    def g(self, t: Any, ops: Ops) -> Any:
        return ops.clip(1.0 - t / self._p["l"], 0.0, 1.0) ** self._p["p"]


# -- cyclic -------------------------------------------------------------------------------
class TRI(_Cyclic):
    """Triangular cycle (Smith's CLR "triangular"): ``g(t) = (2/pi)|arcsin(sin(pi t / 2l))|``.

    >>> TRI(k0=0.01, k1=0.06, l=2000).values([0, 1000, 2000, 4000]).round(12).tolist()
    [0.01, 0.035, 0.06, 0.01]
    """

    __slots__ = ()
    name = "TRI"
    param_names = ("k0", "k1", "l")

    def __init__(self, k0: float, k1: float, l: int) -> None:
        self._set_bounds(k0, k1, l)

    def g(self, t: Any, ops: Ops) -> Any:
        return self.tri(t)


class TRI2(_Cyclic):
    """TRI whose amplitude halves every full cycle ("triangular2"): ``TRI(t) / 2^floor(t / 2l)``."""

    __slots__ = ()
    name = "TRI2"
    param_names = ("k0", "k1", "l")

    def __init__(self, k0: float, k1: float, l: int) -> None:
        self._set_bounds(k0, k1, l)

    def g(self, t: Any, ops: Ops) -> Any:
        return self.tri(t) * self.halvings(t)


class TRIEXP(_Cyclic):
    """TRI with an exponentially decaying amplitude ("exp_range"): ``gamma^t * TRI(t)``."""

    __slots__ = ()
    name = "TRIEXP"
    param_names = ("k0", "k1", "gamma", "l")

    def __init__(self, k0: float, k1: float, gamma: float, l: int) -> None:
        self._set_bounds(k0, k1, l, gamma=check_gamma(self.name, "gamma", gamma))

    def g(self, t: Any, ops: Ops) -> Any:
        return self._p["gamma"] ** t * self.tri(t)


class SIN(_Cyclic):
    """Sine cycle: ``g(t) = |sin(pi t / 2l)|``."""

    __slots__ = ()
    name = "SIN"
    param_names = ("k0", "k1", "l")

    def __init__(self, k0: float, k1: float, l: int) -> None:
        self._set_bounds(k0, k1, l)

    def g(self, t: Any, ops: Ops) -> Any:
        return self.sin(t, ops)


class SIN2(_Cyclic):
    """SIN whose amplitude halves every full cycle: ``SIN(t) / 2^floor(t / 2l)``."""

    __slots__ = ()
    name = "SIN2"
    param_names = ("k0", "k1", "l")

    def __init__(self, k0: float, k1: float, l: int) -> None:
        self._set_bounds(k0, k1, l)

    def g(self, t: Any, ops: Ops) -> Any:
        return self.sin(t, ops) * self.halvings(t)


class SINEXP(_Cyclic):
    """SIN with an exponentially decaying amplitude: ``gamma^t * SIN(t)``."""

    __slots__ = ()
    name = "SINEXP"
    param_names = ("k0", "k1", "gamma", "l")

    def __init__(self, k0: float, k1: float, gamma: float, l: int) -> None:
        self._set_bounds(k0, k1, l, gamma=check_gamma(self.name, "gamma", gamma))

    def g(self, t: Any, ops: Ops) -> Any:
        return self._p["gamma"] ** t * self.sin(t, ops)


class COS(_Cyclic):
    """Cosine cycle: ``g(t) = (1 + cos(pi t / l)) / 2``: max at t = 0, min at t = l, max at 2l.

    >>> COS(k0=0.1, k1=0.0, l=100).values([0, 50, 100, 200]).round(12).tolist()
    [0.1, 0.05, 0.0, 0.1]
    """

    __slots__ = ()
    name = "COS"
    param_names = ("k0", "k1", "l")

    def __init__(self, k0: float, k1: float, l: int) -> None:
        self._set_bounds(k0, k1, l)

    def g(self, t: Any, ops: Ops) -> Any:
        l = self._p["l"]
        return (1.0 + ops.cos(math.pi * (t % (2 * l)) / l)) / 2.0


# -- ramp (an addition to the paper's 13, for warm-up and one-cycle composites) -----------
class LIN(LRFunction):
    """Linear ramp from k0 to k1 over l iterations, then k1: ``k0 + (k1 - k0) * min(t / l, 1)``.

    k0 and k1 may be 0 (a warm-up from 0, an annealing to 0). #Param 3.

    >>> LIN(k0=0.0, k1=0.1, l=10).values([0, 5, 10, 20]).tolist()
    [0.0, 0.05, 0.1, 0.1]
    """

    __slots__ = ()
    name = "LIN"
    kind: ClassVar[Kind] = "ramp"
    param_names = ("k0", "k1", "l")

    def __init__(self, k0: float, k1: float, l: int) -> None:
        self._set(
            k0=check_non_negative(self.name, "k0", k0),
            k1=check_non_negative(self.name, "k1", k1),
            l=check_length(self.name, "l", l),
        )

    def g(self, t: Any, ops: Ops) -> Any:
        ramp = ops.clip(t / self._p["l"], 0.0, 1.0)
        return ramp if self._p["k1"] >= self._p["k0"] else 1.0 - ramp


#: The paper's 13 LR functions, by name, in the order of its Table I.
PAPER_FUNCTIONS: dict[str, type[LRFunction]] = {
    cls.name: cls
    for cls in (FIX, STEP, NSTEP, EXP, INV, POLY, TRI, TRI2, TRIEXP, SIN, SIN2, SINEXP, COS)
}
#: Every LR function LRBench knows, by name.
FUNCTIONS: dict[str, type[LRFunction]] = {**PAPER_FUNCTIONS, "LIN": LIN}


def make(name: str, /, **params: Any) -> LRFunction:
    """Make a policy from a function name (any case) and its parameters.

    >>> make("sin2", k0=0.01, k1=0.06, l=2000)
    <Policy SIN2(k0=0.01, k1=0.06, l=2000)>
    """
    cls = FUNCTIONS.get(str(name).upper())
    if cls is None:
        raise ValueError(
            f"unknown LR function {name!r}; valid functions: {', '.join(FUNCTIONS)}"
        )
    unknown = [k for k in params if k not in cls.param_names]
    if unknown:
        raise ValueError(
            f"{cls.name}: unknown parameter {unknown[0]!r}; valid parameters:"
            f" {', '.join(cls.param_names)}"
        )
    missing = [k for k in cls.param_names if k not in params and k not in cls.optional]
    if missing:
        raise ValueError(
            f"{cls.name}: missing parameter {missing[0]!r}; {cls.name} takes"
            f" {', '.join(cls.param_names)}" + (f" ({', '.join(cls.optional)} optional)" if cls.optional else "")
        )
    return cls(**params)

