"""LRBench policies in Keras 3: a ``keras.ops`` back-end and a ``LearningRateSchedule``.

``PolicySchedule(policy)`` (a policy or its notation) is a
``keras.optimizers.schedules.LearningRateSchedule``: give it to any optimizer as its
``learning_rate``. It works on every Keras back-end (this module never picks one: set
``KERAS_BACKEND`` before importing keras as usual), is registered as Keras-serializable
(``"lrbench>PolicySchedule"``, config ``{"policy": "<notation>"}``), so a model saved to
``.keras`` and loaded again keeps its schedule.

Step counting. A Keras optimizer calls its schedule with ``optimizer.iterations``, the number
of updates already applied (it is incremented after each update), so the first update uses
``policy(0)`` and update k (from 0) uses ``policy(k)``: LRBench's convention, no shift. Hence
``optimizer.learning_rate`` read in ``on_train_batch_begin`` is the LR the coming batch uses;
read in ``on_train_batch_end`` it is already the next batch's. ``iterations`` keeps counting
across epochs and is saved with the optimizer, so a reloaded model resumes the policy where it
stopped. With ``gradient_accumulation_steps=n`` Keras calls the schedule with its internal count
of micro-batches (``optimizer.iterations`` shows that count // n): the k-th real update then uses
``policy((k + 1) * n - 1)``; scale the policy's lengths by n if they are meant as updates.

>>> import keras
>>> from lrbench.integrations.keras import PolicySchedule
>>> schedule = PolicySchedule("LIN(k0=0.0, k1=0.1, l=100)[100] >> COS(k0=0.1, k1=0.0, l=900)")
>>> [round(float(schedule(t)), 6) for t in (0, 50, 100, 550, 1000)]
[0.0, 0.05, 0.1, 0.05, 0.0]
>>> optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
>>> schedule.get_config()
{'policy': 'LIN(k0=0.0, k1=0.1, l=100)[100] >> COS(k0=0.1, k1=0.0, l=900)'}
>>> PolicySchedule.from_config(schedule.get_config()) == schedule
True

Accuracy. The schedule computes in float32 (float64 when ``keras.config.floatx()`` is float64),
the dtype Keras optimizers keep the LR in. As in ``lrbench.integrations.jax``, the formula sees
the step through a thin wrapper so that float32 rounds as little as possible: the step stays an
integer where the formula allows (``t % 2l``, ``t // l``, composite phase offsets, NSTEP's
milestone count, the numerator of ``t / l`` in ``1 - t / l``), and ``gamma ** t`` is
``exp(t * log(gamma))`` with ``log(gamma)`` taken in float64 (rounding gamma = 0.99994 to float32
would err by ~1e-4 of the maximum LR). The LR then stays within ~5e-7 of the policy's maximum
LR of the float64 ``policy(t)``, also at large steps (2**31 and beyond on the torch back-end,
whose iterations are int64). Steps must be >= 0. Some ``keras.ops`` functions cast int64 to
int32 and float64 to float32 on the torch back-end (``maximum``, ``floor_divide``) or round a
Python float to float32 (``clip``, ``where``); this module works around them.

``KerasOps`` alone evaluates a formula on plain tensors of any dtype (float64 tensors give
float64 values); ``evaluate(policy, step)`` adds the float32 accuracy measures and is what
``PolicySchedule`` uses.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Callable, Sequence

import numpy as np

try:
    import keras
    from keras import ops
except ImportError as exc:  # pragma: no cover - exercised by a test that hides keras
    raise ImportError(
        "lrbench.integrations.keras needs Keras 3: pip install lrbench[keras]"
    ) from exc

from lrbench.integrations._numbers import is_py_int as _is_py_int
from lrbench.integrations._numbers import whole as _whole
from lrbench.policies import Policy, parse

__all__ = ["KERAS", "KerasOps", "PolicySchedule", "evaluate"]


def _float_dtype() -> str:
    floatx = keras.config.floatx()
    return "float64" if floatx == "float64" else "float32"


def _dtype(x: Any) -> str:
    return keras.backend.standardize_dtype(x.dtype)


def _is_int_dtype(x: Any) -> bool:
    return "int" in _dtype(x)


def _fits(value: int, dtype: str) -> bool:
    info = np.iinfo(dtype)
    return int(info.min) <= value <= int(info.max)


def _plain(x: Any) -> Any:
    """A count or ratio as a float tensor; Python ints as floats."""
    if isinstance(x, (_Count, _Ratio)):
        return x.float()
    return float(x) if _is_py_int(x) else x


def _is_py_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _match(a: Any, b: Any) -> tuple[Any, Any]:
    """A Python number next to a tensor becomes a tensor of the tensor's dtype (when both are
    ints or both floats): keras.ops.clip/where would round a Python float to float32."""
    if _is_py_number(a) and not _is_py_number(b):
        b2, a2 = _match(b, a)
        return a2, b2
    if _is_py_number(b) and not _is_py_number(a) and hasattr(a, "dtype"):
        dtype = _dtype(a)
        if ("int" in dtype and _is_py_int(b) and _fits(int(b), dtype)) or "float" in dtype:
            return a, ops.convert_to_tensor(b, dtype=dtype)
    return a, b


def _where(cond: Any, x: Any, y: Any) -> Any:
    x, y = _match(x, y)
    return ops.where(cond, x, y)


def _maximum(x: Any, y: Any) -> Any:
    # not keras.ops.maximum: on the torch back-end it casts int64 to int32, float64 to float32
    return _where(x >= y, x, y)


def _clip(x: Any, lo: Any, hi: Any) -> Any:
    return ops.clip(x, _match(x, lo)[1], _match(x, hi)[1])


class _Count:
    """Iteration numbers inside a formula, so that float32 rounds as little as possible.

    Wraps a tensor of counts (>= 0; an int tensor stays an int tensor). With a whole number (or
    another count), ``+ - * // %``, ``abs`` and ``-`` give a count, in exact integer arithmetic
    when the integers can hold the operand; ``count / n`` gives an exact ``_Ratio``;
    ``number ** count`` is ``exp(count * log(number))``. Anything else gives a plain float
    tensor; comparisons give plain boolean tensors. Only ``evaluate`` makes these; ``KerasOps``
    unwraps them.
    """

    __slots__ = ("a",)
    __array_ufunc__ = None  # numpy scalars must defer to our reflected operators
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, a: Any) -> None:
        self.a = a

    def float(self) -> Any:
        return ops.cast(self.a, _float_dtype())

    def _int_operand(self, other: Any) -> Any:
        """``other`` as an operand of exact integer arithmetic with ``self``, or None."""
        if not _is_int_dtype(self.a):
            return None
        if isinstance(other, _Count):
            return other.a if _is_int_dtype(other.a) else None
        if _is_py_int(other) and _fits(other, _dtype(self.a)):
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
    def __abs__(self): return _Count(abs(self.a))

    def _beyond_range(self, o: Any) -> bool:
        return _is_py_int(o) and _is_int_dtype(self.a) and o > int(np.iinfo(_dtype(self.a)).max)

    def __floordiv__(self, o: Any) -> Any:
        if self._beyond_range(o):  # counts are >= 0 and smaller than o
            return _Count(ops.zeros_like(self.a))
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
        if _is_py_int(o) and _is_int_dtype(self.a) and not _fits(o, _dtype(self.a)):
            info = np.iinfo(_dtype(self.a))  # every count compares the same way with o
            same = fn(int(info.max) if o > 0 else int(info.min), o)
            return ops.full(ops.shape(self.a), same, dtype="bool")
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
    (in float32, ``1.0 - t / l`` cancels badly near t = l)."""

    __slots__ = ("num", "den")
    __array_ufunc__ = None
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, num: Any, den: int) -> None:
        self.num, self.den = num, den

    def float(self) -> Any:
        return ops.cast(self.num, _float_dtype()) / float(self.den)

    def _shifted(self, k: Any, sign: int) -> _Ratio | None:
        """``sign * self + k`` as a ratio, or None when k is no whole number or overflows."""
        k = _whole(k)
        if k is None or not _fits(k * self.den, _dtype(self.num)):
            return None
        return _Ratio(k * self.den + (self.num if sign > 0 else -self.num), self.den)

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
    def __abs__(self): return _Ratio(abs(self.num), self.den)
    def __lt__(self, o): return self.float() < _plain(o)
    def __le__(self, o): return self.float() <= _plain(o)
    def __gt__(self, o): return self.float() > _plain(o)
    def __ge__(self, o): return self.float() >= _plain(o)

    def clip(self, lo: Any, hi: Any) -> Any:
        lo_, hi_ = _whole(lo), _whole(hi)
        dtype = _dtype(self.num)
        if lo_ is not None and hi_ is not None and _fits(lo_ * self.den, dtype) and _fits(
            hi_ * self.den, dtype
        ):
            return _Ratio(_clip(self.num, lo_ * self.den, hi_ * self.den), self.den)
        return _clip(self.float(), lo, hi)

    def __repr__(self) -> str:
        return f"_Ratio({self.num!r}, {self.den})"


def _power(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` for a float tensor exponent; a positive Python base is never rounded
    to float32 first: ``exp(exponent * log(base))`` with the log taken in float64."""
    if isinstance(base, numbers.Real) and not isinstance(base, bool) and base > 0:
        return ops.exp(exponent * math.log(base))
    return _plain(base) ** exponent


class KerasOps:
    """``keras.ops`` operations for ``policy.evaluate(t, ops)``, on any Keras back-end.

    >>> from keras import ops
    >>> from lrbench.policies import TRI
    >>> t = ops.convert_to_tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype="float64")
    >>> ops.convert_to_numpy(TRI(k0=1.0, k1=0.0, l=2).evaluate(t, KERAS)).tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    @staticmethod
    def sin(x: Any) -> Any:
        return ops.sin(_plain(x))

    @staticmethod
    def cos(x: Any) -> Any:
        return ops.cos(_plain(x))

    @staticmethod
    def floor(x: Any) -> Any:
        return ops.floor(_plain(x))

    @staticmethod
    def maximum(x: Any, y: Any) -> Any:
        if isinstance(x, _Count) and _whole(y) is not None:
            b = x._int_operand(_whole(y))
            return _Count(_maximum(x.a, b) if b is not None else _maximum(x.float(), float(y)))
        return _maximum(_plain(x), _plain(y))

    @staticmethod
    def clip(x: Any, lo: float, hi: float) -> Any:
        if isinstance(x, _Ratio):
            return x.clip(lo, hi)
        return _clip(_plain(x), lo, hi)

    @staticmethod
    def where(cond: Any, x: Any, y: Any) -> Any:
        x, y = _match(_plain(x), _plain(y))
        return ops.where(_plain(cond), x, y)

    @staticmethod
    def count_le(milestones: Sequence[int], t: Any) -> Any:
        """How many milestones are <= t (an int32 count for ``evaluate``)."""
        counting = isinstance(t, _Count)
        if not counting:
            t = _Count(ops.convert_to_tensor(t))
        n = ops.zeros(ops.shape(t.a), dtype="int32")
        for m in milestones:
            n = n + ops.cast(t >= m, "int32")
        if not counting:  # a plain tensor in, a plain tensor of its dtype out
            return ops.cast(n, _dtype(t.a))
        return _Count(n)


KERAS = KerasOps()


def _as_policy(policy: Policy | str) -> Policy:
    if isinstance(policy, str):
        return parse(policy)
    if not isinstance(policy, Policy):
        raise TypeError(f"expected a Policy or policy notation, got {policy!r}")
    return policy


def evaluate(policy: Policy | str, step: Any) -> Any:
    """The LRs of ``policy`` at step(s) ``step`` (a tensor, variable, array or number of whole
    numbers >= 0, int or float), as a float32 tensor (see the module docstring) of its shape.

    >>> from keras import ops
    >>> from lrbench.policies import EXP
    >>> ops.convert_to_numpy(evaluate(EXP(k0=1.0, gamma=0.5), [0, 1, 2, 3])).tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    policy = _as_policy(policy)
    t = ops.convert_to_tensor(step)
    dtype = _dtype(t)
    if "int" not in dtype and "float" not in dtype:
        raise TypeError(f"steps must be integers or floats, got a tensor of {dtype}")
    count = _Count(t if "int" in dtype else ops.cast(t, _float_dtype()))
    lr = _plain(policy.evaluate(count, KERAS))
    return ops.broadcast_to(ops.cast(lr, _float_dtype()), ops.shape(t))


@keras.saving.register_keras_serializable(package="lrbench")
class PolicySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A Keras learning-rate schedule that follows an LRBench policy.

    ``PolicySchedule(policy)(step)`` is ``policy(step)`` as a float32 tensor; Keras optimizers
    call it with ``optimizer.iterations`` (0 for the first update). ``policy`` may be a
    ``Policy`` or its notation; ``get_config()`` is ``{"policy": <notation>}``.

    >>> import keras
    >>> schedule = PolicySchedule("STEP(k0=0.1, gamma=0.5, l=10)")
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    >>> schedule.policy
    <Policy STEP(k0=0.1, gamma=0.5, l=10)>
    """

    def __init__(self, policy: Policy | str) -> None:
        self.policy = _as_policy(policy)

    def __call__(self, step: Any) -> Any:
        return evaluate(self.policy, step)

    def get_config(self) -> dict[str, Any]:
        return {"policy": str(self.policy)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PolicySchedule:
        return cls(policy=config["policy"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicySchedule):
            return NotImplemented
        return type(self) is type(other) and self.policy == other.policy

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.policy))

    def __repr__(self) -> str:
        return f"PolicySchedule({str(self.policy)!r})"
