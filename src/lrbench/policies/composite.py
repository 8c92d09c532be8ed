"""Composite policies: different policies in consecutive phases of training (SPEC section 2).

A composite is a list of phases ``(policy_i, n_i)``; the last phase is open-ended. Phase i
starts at ``s_i = n_0 + ... + n_{i-1}`` and, inside it, the policy sees its own iteration count:

    eta(t) = policy_i(t - s_i)   for s_i <= t < s_i + n_i

Notation: ``POLICY[n] >> POLICY[n] >> ... >> POLICY``; a composite used as a phase of another
is written in parentheses, ``(A[100] >> B)[500] >> C``. In Python, ``policy[n]`` makes a phase
and ``>>`` chains phases:

>>> from lrbench.policies import FIX, SINEXP
>>> p = FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)
>>> p(14999), p(15000)
(0.1, 0.0001)

#Param of a composite: the phases' #Param plus one length per switch point.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, ClassVar, Iterable, Sequence

from lrbench.policies.base import Kind, Policy, check_iteration, check_length
from lrbench.policies.ops import SCALAR, Ops


@dataclass(frozen=True)
class Phase:
    """A policy run for ``length`` iterations (``None``: open-ended, only as the last phase)."""

    policy: Policy
    length: int | None

    def __post_init__(self) -> None:
        if not isinstance(self.policy, Policy):
            raise ValueError(f"a phase needs a Policy, got {self.policy!r}")
        if self.length is not None:
            object.__setattr__(self, "length", check_length("phase", "length", self.length))

    def __rshift__(self, other: Policy | Phase | Phases) -> Policy | Phases:
        return Phases((self,)) >> other


@dataclass(frozen=True)
class Phases:
    """Phases that all have a length, waiting for an open-ended last policy (``>> policy``)."""

    phases: tuple[Phase, ...]

    def __rshift__(self, other: Policy | Phase | Phases) -> Policy | Phases:
        if isinstance(other, Phase):
            return Phases(self.phases + (other,))
        if isinstance(other, Phases):
            return Phases(self.phases + other.phases)
        if isinstance(other, Policy):
            return Composite([*self.phases, Phase(other, None)])
        raise ValueError(f"cannot chain a phase with {other!r}; expected a policy or a phase")


class Composite(Policy):
    """Consecutive phases of policies; see the module docstring.

    ``Composite([(p, None)])`` with one phase is simply ``p``.
    """

    __slots__ = ("_phases", "_starts")
    name: ClassVar[str] = "COMPOSITE"
    kind: ClassVar[Kind] = "composite"

    def __new__(cls, phases: Iterable[Phase | tuple[Policy, int | None]]) -> Any:
        phases = _as_phases(phases)
        if len(phases) == 1:
            return phases[0].policy
        self = super().__new__(cls)
        object.__setattr__(self, "_phases", phases)
        starts = tuple(accumulate((ph.length for ph in phases[:-1]), initial=0))
        object.__setattr__(self, "_starts", starts)
        return self

    @property
    def phases(self) -> tuple[Phase, ...]:
        return self._phases

    @property
    def starts(self) -> tuple[int, ...]:
        """The iteration at which each phase starts."""
        return self._starts

    @property
    def params(self) -> dict[str, Any]:
        return {"phases": [(ph.policy, ph.length) for ph in self._phases]}

    @property
    def n_params(self) -> int:
        return sum(ph.policy.n_params for ph in self._phases) + len(self._phases) - 1

    @property
    def bounds(self) -> tuple[float, float]:
        lows, highs = zip(*(ph.policy.bounds for ph in self._phases))
        return (min(lows), max(highs))

    def _key(self) -> tuple:
        return (self.name, self._phases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phases": [{"policy": ph.policy.to_dict(), "length": ph.length} for ph in self._phases],
        }

    def __call__(self, t: int) -> float:
        t = check_iteration(t)
        i = bisect.bisect_right(self._starts, t) - 1
        return float(self._phases[i].policy.evaluate(float(t - self._starts[i]), SCALAR))

    def evaluate(self, t: Any, ops: Ops) -> Any:
        last = len(self._phases) - 1
        result = self._phases[last].policy.evaluate(ops.maximum(t - self._starts[last], 0.0), ops)
        for i in range(last - 1, -1, -1):
            local = ops.maximum(t - self._starts[i], 0.0)
            result = ops.where(t < self._starts[i + 1], self._phases[i].policy.evaluate(local, ops), result)
        return result


def _as_phases(phases: Iterable[Phase | tuple[Policy, int | None]]) -> tuple[Phase, ...]:
    try:
        items: Sequence = list(phases)
    except TypeError:
        raise ValueError(f"a composite needs a list of phases, got {phases!r}") from None
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Phase):
            out.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(Phase(*item))
        else:
            raise ValueError(f"phase {i}: expected (policy, length) or Phase, got {item!r}")
    if not out:
        raise ValueError("a composite needs at least one phase")
    for i, ph in enumerate(out[:-1]):
        if ph.length is None:
            raise ValueError(f"phase {i}: only the last phase may be open-ended; give it a length")
    if out[-1].length is not None:
        raise ValueError(
            f"the last phase is open-ended: drop its length [{out[-1].length}]"
        )
    return tuple(out)

