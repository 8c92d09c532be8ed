"""LRBench policies in JAX: a ``jax.numpy`` back-end and optax schedules.

``to_optax(policy)`` turns a policy (or its notation) into an optax schedule ``count -> lr``.
optax calls a schedule with the number of updates made so far, so the first update uses
``count = 0``, i.e. ``policy(0)``: the same convention as LRBench's iteration ``t``; no shift is
needed. The schedule is a pure function of ``count``: it works eagerly, under ``jax.jit``, inside
``optax.sgd(learning_rate=...)``/``optax.inject_hyperparams``, and on arrays of counts.

>>> import jax, jax.numpy as jnp, optax
>>> from lrbench.integrations.jax import to_optax
>>> schedule = to_optax("LIN(k0=0.0, k1=0.1, l=100)[100] >> COS(k0=0.1, k1=0.0, l=900)")
>>> [round(float(schedule(t)), 6) for t in (0, 50, 100, 550, 1000)]
[0.0, 0.05, 0.1, 0.05, 0.0]
>>> opt = optax.sgd(learning_rate=schedule, momentum=0.9)
>>> params = {"w": jnp.ones(3)}
>>> state = opt.init(params)
>>> @jax.jit
... def step(params, state):
...     grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
...     updates, state = opt.update(grads, state, params)
...     return optax.apply_updates(params, updates), state
>>> params, state = step(params, state)

Accuracy. Without ``jax_enable_x64`` the schedule computes in float32 (the default float dtype;
with x64 enabled, float64). Done naively, float32 errs visibly: gamma rounded to float32 makes
``gamma ** t`` wrong by up to ~1e-4 of the maximum LR (0.99994 is 0.99993998), ``1 - t / l``
cancels near t = l (POLY with p < 1 then ends at ~1e-4 instead of 0; XLA also divides by
multiplying with the reciprocal), and past 2**24 float32 cannot hold every count, so cycles
drift. So the formula sees the count through a thin wrapper (at trace time only; the compiled
code is plain jnp arithmetic):

- The count stays an integer as long as the formula allows: ``t % (2l)``, ``t // l``, phase
  offsets of composites and NSTEP's milestone count are exact integer arithmetic on optax's int32
  count; ``t / l`` keeps an exact integer numerator until it must become a float, so
  ``1 - t / l``, ``t / l - 1``, ``abs`` and clipping to [0, 1] are exact before one division.
- ``gamma ** t`` (EXP, STEP, NSTEP, TRIEXP, SINEXP, and the halvings of TRI2/SIN2) is
  ``exp(t * log(gamma))`` with ``log(gamma)`` taken in float64 first.
- The rest (``gamma * t`` of INV, ``pi * r / (2l)`` of SIN/COS, sin, cos, ``** p``) rounds a few
  times in float32.

Measured against ``policy.values``: the absolute error stays below ~5e-7 of the policy's maximum
LR for every count from 0 to 2**31 - 1 (where optax's int32 count saturates). Limits: counts must
be >= 0; float counts are accepted (whole numbers up to 2**24 are exact in float32, beyond that
the count itself is rounded); a cycle length ``l`` of SIN/SIN2/SINEXP/COS of 2**30 or more
raises jax's OverflowError without x64 (their formula divides by the Python int ``2l``, and jax
rejects Python ints beyond int32); the other parameters may exceed int32.

``JaxOps`` on its own evaluates a formula on plain ``jax.numpy`` arrays (then ``gamma ** t`` uses
float32 gamma); ``evaluate(policy, t)`` adds the accuracy measures above and is what
``to_optax`` uses.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Callable, Sequence

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised by a test that hides jax
    raise ImportError(
        "lrbench.integrations.jax needs JAX and optax: pip install lrbench[jax]"
    ) from exc

from lrbench.integrations._numbers import is_py_int as _is_py_int
from lrbench.integrations._numbers import whole as _whole
from lrbench.policies import Policy, parse

__all__ = ["JAX", "JaxOps", "evaluate", "to_optax"]


def _default_float() -> Any:
    """float32, or float64 when ``jax_enable_x64`` is on."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _is_int_dtype(x: Any) -> bool:
    return jnp.issubdtype(jnp.asarray(x).dtype, jnp.integer)


def _fits(value: int, dtype: Any) -> bool:
    info = jnp.iinfo(dtype)
    return info.min <= value <= info.max


def _plain(x: Any) -> Any:
    """A count or ratio as a float array; Python ints as floats (jax rejects ints beyond int32)."""
    if isinstance(x, (_Count, _Ratio)):
        return x.float()
    return float(x) if _is_py_int(x) else x


class _Count:
    """Iteration numbers inside a formula, so that float32 rounds as little as possible.

    Wraps a jax array of counts (>= 0; an int array stays an int array). With a whole number
    (or another count), ``+ - * // %``, ``abs`` and ``-`` give a count, in exact integer
    arithmetic when the integers can hold the operand; ``count / n`` gives an exact ``_Ratio``;
    ``number ** count`` is ``exp(count * log(number))``. Anything else gives a plain float array
    in the default float dtype; comparisons give plain boolean arrays. Only ``evaluate`` makes
    these; ``JaxOps`` unwraps them.
    """

    __slots__ = ("a",)
    __array_ufunc__ = None  # numpy scalars must defer to our reflected operators
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, a: Any) -> None:
        self.a = a

    def float(self) -> Any:
        return self.a.astype(_default_float())

    def _int_operand(self, other: Any) -> Any:
        """``other`` as an operand of exact integer arithmetic with ``self``, or None."""
        if not _is_int_dtype(self.a):
            return None
        if isinstance(other, _Count):
            return other.a if _is_int_dtype(other.a) else None
        if _is_py_int(other) and _fits(other, self.a.dtype):
            return int(other)
        return None

    def _apply(self, fn: Callable, other: Any, reflected: bool = False, exact: bool = True) -> Any:
        if exact and (_is_py_int(other) or isinstance(other, _Count)):
            # count (op) whole number: still a count; in integers when they can hold it
            b = self._int_operand(other)
            a = self.a if b is not None else self.float()
            b = b if b is not None else _plain(other)
            return _Count(fn(b, a) if reflected else fn(a, b))
        a, b = self.float(), _plain(other)
        return fn(b, a) if reflected else fn(a, b)

    def __add__(self, o): return self._apply(operator.add, o)
    def __radd__(self, o): return self._apply(operator.add, o, reflected=True)
    def __sub__(self, o): return self._apply(operator.sub, o)
    def __rsub__(self, o): return self._apply(operator.sub, o, reflected=True)
    def __mul__(self, o): return self._apply(operator.mul, o)
    def __rmul__(self, o): return self._apply(operator.mul, o, reflected=True)
    def __rtruediv__(self, o): return self._apply(operator.truediv, o, reflected=True, exact=False)
    def __rfloordiv__(self, o): return self._apply(operator.floordiv, o, reflected=True)
    def __rmod__(self, o): return self._apply(operator.mod, o, reflected=True)
    def __pow__(self, o): return self._apply(operator.pow, o, exact=False)
    def __neg__(self): return _Count(-self.a)
    def __pos__(self): return self
    def __abs__(self): return _Count(jnp.abs(self.a))

    def _beyond_range(self, o: Any) -> bool:
        return _is_py_int(o) and _is_int_dtype(self.a) and o > jnp.iinfo(self.a.dtype).max

    def __floordiv__(self, o: Any) -> Any:
        if self._beyond_range(o):  # counts are >= 0 and smaller than o
            return _Count(jnp.zeros_like(self.a))
        return self._apply(operator.floordiv, o)

    def __mod__(self, o: Any) -> Any:
        if self._beyond_range(o):
            return self
        return self._apply(operator.mod, o)

    def __truediv__(self, o: Any) -> Any:
        b = self._int_operand(o) if _is_py_int(o) else None
        if b:  # an int count over a non-zero int: keep the numerator exact
            return _Ratio(self.a, b)
        return self._apply(operator.truediv, o, exact=False)

    def __rpow__(self, base: Any) -> Any:
        return _power(base, self.float())

    def _compare(self, fn: Callable, o: Any) -> Any:
        if _is_py_int(o) and _is_int_dtype(self.a) and not _fits(o, self.a.dtype):
            info = jnp.iinfo(self.a.dtype)  # every count compares the same way with o
            return jnp.full(jnp.shape(self.a), fn(info.max if o > 0 else info.min, o))
        b = self._int_operand(o)
        return fn(self.a, b) if b is not None else fn(self.float(), _plain(o))

    def __lt__(self, o): return self._compare(operator.lt, o)
    def __le__(self, o): return self._compare(operator.le, o)
    def __gt__(self, o): return self._compare(operator.gt, o)
    def __ge__(self, o): return self._compare(operator.ge, o)
    def __eq__(self, o): return self._compare(operator.eq, o)  # type: ignore[override]
    def __ne__(self, o): return self._compare(operator.ne, o)  # type: ignore[override]

    def __bool__(self) -> bool:
        return bool(self.a)

    def __repr__(self) -> str:
        return f"_Count({self.a!r})"


class _Ratio:
    """``num / den`` with an exact integer numerator and a Python int ``den``, divided only
    when needed: ``1 - t/l``, ``t/l - 1``, ``abs``, and clipping to whole bounds stay exact
    (in float32, ``1.0 - t / l`` cancels badly near t = l, and XLA divides by multiplying with
    the reciprocal, so that ``1 - l/l`` need not be 0)."""

    __slots__ = ("num", "den")
    __array_ufunc__ = None
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, num: Any, den: int) -> None:
        self.num, self.den = num, den

    def float(self) -> Any:
        return self.num.astype(_default_float()) / self.den

    def _shifted(self, k: Any, sign: int) -> _Ratio | None:
        """``sign * self + k`` as a ratio, or None when k is no whole number or overflows."""
        k = _whole(k)
        if k is None or not _fits(k * self.den, self.num.dtype):
            return None
        return _Ratio(k * self.den + sign * self.num, self.den)

    def __sub__(self, o: Any) -> Any:
        r = self._shifted(-o, 1) if _whole(o) is not None else None
        return r if r is not None else self.float() - _plain(o)

    def __rsub__(self, o: Any) -> Any:
        r = self._shifted(o, -1)
        return r if r is not None else _plain(o) - self.float()

    def __add__(self, o): return self.float() + _plain(o)
    def __radd__(self, o): return _plain(o) + self.float()
    def __mul__(self, o): return self.float() * _plain(o)
    def __rmul__(self, o): return _plain(o) * self.float()
    def __truediv__(self, o): return self.float() / _plain(o)
    def __rtruediv__(self, o): return _plain(o) / self.float()
    def __pow__(self, o): return self.float() ** _plain(o)
    def __rpow__(self, base): return _power(base, self.float())
    def __neg__(self): return _Ratio(-self.num, self.den)
    def __abs__(self): return _Ratio(jnp.abs(self.num), self.den)
    def __lt__(self, o): return self.float() < _plain(o)
    def __le__(self, o): return self.float() <= _plain(o)
    def __gt__(self, o): return self.float() > _plain(o)
    def __ge__(self, o): return self.float() >= _plain(o)

    def clip(self, lo: Any, hi: Any) -> Any:
        lo_, hi_ = _whole(lo), _whole(hi)
        if (
            lo_ is not None and hi_ is not None
            and _fits(lo_ * self.den, self.num.dtype) and _fits(hi_ * self.den, self.num.dtype)
        ):
            return _Ratio(jnp.clip(self.num, lo_ * self.den, hi_ * self.den), self.den)
        return jnp.clip(self.float(), lo, hi)

    def __repr__(self) -> str:
        return f"_Ratio({self.num!r}, {self.den})"


def _power(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` for a float array exponent; a positive Python base is never rounded
    to float32 first: ``exp(exponent * log(base))`` with the log taken in float64."""
    if isinstance(base, numbers.Real) and not isinstance(base, bool) and base > 0:
        return jnp.exp(exponent * math.log(base))
    return jnp.power(_plain(base), exponent)


class JaxOps:
    """``jax.numpy`` operations for ``policy.evaluate(t, ops)``; traceable under ``jax.jit``.

    >>> import jax.numpy as jnp
    >>> from lrbench.policies import TRI
    >>> TRI(k0=1.0, k1=0.0, l=2).evaluate(jnp.arange(5.0), JAX).tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    @staticmethod
    def sin(x: Any) -> Any:
        return jnp.sin(_plain(x))

    @staticmethod
    def cos(x: Any) -> Any:
        return jnp.cos(_plain(x))

    @staticmethod
    def floor(x: Any) -> Any:
        return jnp.floor(_plain(x))

    @staticmethod
    def maximum(x: Any, y: Any) -> Any:
        if isinstance(x, _Count) and isinstance(y, numbers.Real) and float(y).is_integer():
            b = x._int_operand(int(y))
            if b is not None:
                return _Count(jnp.maximum(x.a, b))
            return _Count(jnp.maximum(x.float(), float(y)))
        return jnp.maximum(_plain(x), _plain(y))

    @staticmethod
    def clip(x: Any, lo: float, hi: float) -> Any:
        if isinstance(x, _Ratio):
            return x.clip(lo, hi)
        return jnp.clip(_plain(x), lo, hi)

    @staticmethod
    def where(cond: Any, x: Any, y: Any) -> Any:
        return jnp.where(_plain(cond), _plain(x), _plain(y))

    @staticmethod
    def count_le(milestones: Sequence[int], t: Any) -> Any:
        """How many milestones are <= t (an exact int32 count for ``evaluate``)."""
        counting = isinstance(t, _Count)
        if not counting:
            t = _Count(jnp.asarray(t))
        n = jnp.zeros(jnp.shape(t.a), jnp.int32)
        for m in milestones:
            n = n + (t >= m).astype(jnp.int32)
        if not counting:  # a plain array in, a plain array of its dtype out
            return n.astype(t.a.dtype)
        return _Count(n)


JAX = JaxOps()


def _as_policy(policy: Policy | str) -> Policy:
    if isinstance(policy, str):
        return parse(policy)
    if not isinstance(policy, Policy):
        raise TypeError(f"expected a Policy or policy notation, got {policy!r}")
    return policy


def evaluate(policy: Policy | str, t: Any) -> Any:
    """The LRs of ``policy`` at iteration(s) ``t`` (a jax/numpy array or number of whole
    numbers >= 0, int or float), as a jax array of the default float dtype and ``t``'s shape.

    Traceable (``jax.jit``, ``jax.vmap``); integer counts keep integer arithmetic exact.

    >>> from lrbench.policies import EXP
    >>> evaluate(EXP(k0=1.0, gamma=0.5), [0, 1, 2, 3]).tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    policy = _as_policy(policy)
    t = jnp.asarray(t)
    if not (jnp.issubdtype(t.dtype, jnp.integer) or jnp.issubdtype(t.dtype, jnp.floating)):
        raise TypeError(f"iterations must be integers or floats, got an array of {t.dtype}")
    count = _Count(t if jnp.issubdtype(t.dtype, jnp.integer) else t.astype(_default_float()))
    lr = _plain(policy.evaluate(count, JAX))
    return jnp.broadcast_to(jnp.asarray(lr, _default_float()), t.shape)


def to_optax(policy: Policy | str) -> Callable[[Any], Any]:
    """An optax schedule ``count -> lr`` for a policy or its notation.

    ``count`` is optax's update count (0 for the first update, so the first update uses
    ``policy(0)``). The schedule has a ``policy`` attribute.

    >>> import optax
    >>> schedule = to_optax("STEP(k0=0.1, gamma=0.5, l=10)")
    >>> float(schedule(9)), float(schedule(10))
    (0.10000000149011612, 0.05000000074505806)
    >>> schedule.policy
    <Policy STEP(k0=0.1, gamma=0.5, l=10)>
    >>> opt = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule)
    """
    policy = _as_policy(policy)

    def schedule(count: Any) -> Any:
        return evaluate(policy, count)

    schedule.policy = policy  # type: ignore[attr-defined]
    schedule.__qualname__ = schedule.__name__ = "lrbench_schedule"
    schedule.__doc__ = f"optax schedule of {policy}: the LR of update ``count`` (0 = first)."
    return schedule
