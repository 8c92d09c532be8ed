"""Candidate LR policies from a good FIX range (SPEC section 5, steps 3 and 4).

Given the good FIX range ``[lo, hi]`` of a task (from the paper's range test), the iterations
per epoch ``E`` (#training samples / batch size) and the full training length ``L``
(``task.max_iters``), :func:`generate_candidates` proposes one small grid per function family:

- **fixed**: ``FIX(k0=best)``, the best LR of the range test (default: the geometric middle of
  the range).
- **composite**: a warm-up then cosine annealing, ``LIN(k0=lo/10, k1=hi, l=w)[w] >>
  COS(k0=hi, k1=0, l=L-w)`` with ``w = min(E, L // 10)`` (at least 1).
- **cyclic** (TRI, TRI2, TRIEXP, SIN, SIN2, SINEXP, COS): ``k0 = lo / 10`` (a decade below the
  range), ``k1 = hi`` (its top), the half period ``l = m * E`` for each epoch multiple ``m``
  (default 2, 4, 8) with ``2 l <= L`` (at least one whole cycle; ``l = L // 2`` if none fits);
  TRIEXP/SINEXP take ``gamma = 0.01 ** (1 / L)`` (the amplitude shrinks to 1% at ``L``, as
  the paper's 0.99994 over 70,000 iterations does).
- **decaying**, all from ``k0 = hi``, their step sizes fractions of ``L``:
  ``STEP(gamma=0.5, l=L // 5)``, ``NSTEP(gamma=0.1, l=[L // 2, 3 L // 4])``,
  ``EXP(gamma=0.01 ** (1 / L))``, ``INV(gamma=1 / L, p=0.75)`` (Caffe's LeNet shape) and
  ``POLY(p=1, l=L)`` (linear decay to 0 at ``L``).

**Above the range** (``above``, an LR above ``hi``; ``tune`` passes the range test's next LR
up, or a probed one, when its ``above_range`` says so): the composite and cyclic candidates
again with ``k1 = above`` and the decaying ones with ``k0 = above`` (27 more). A cyclic or
decaying policy spends only part of its time at its peak, so its best peak can lie above the
best fixed LR (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

Length-dependent parameters are fixed relative to ``L``, the full training length: the
candidates are the policies to run for ``L`` iterations. ``tune`` squeezes them into a shorter
rung with :func:`~lrbench.tuning.recommend.rescale_policy` (or, with ``low_rungs='prefix'``,
trains their first iterations).

>>> [c.policy for c in generate_candidates((0.03, 0.1), epoch=42, length=1000)][:3]
['FIX(k0=0.0547723)', 'LIN(k0=0.003, k1=0.1, l=42)[42] >> COS(k0=0.1, k1=0.0, l=958)', \
'TRI(k0=0.003, k1=0.1, l=84)']
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lrbench.policies import parse
from lrbench.tuning.rangetest import _whole

__all__ = [
    "CYCLIC_FUNCTIONS",
    "DECAYING_FUNCTIONS",
    "EPOCH_MULTIPLES",
    "Candidate",
    "generate_candidates",
]

#: the cyclic functions tried, in the order of the paper's Table I
CYCLIC_FUNCTIONS: tuple[str, ...] = ("TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "COS")
#: the decaying functions tried
DECAYING_FUNCTIONS: tuple[str, ...] = ("STEP", "NSTEP", "EXP", "INV", "POLY")
#: half periods l of the cyclic candidates, in epochs
EPOCH_MULTIPLES: tuple[int, ...] = (2, 4, 8)
#: TRIEXP/SINEXP/EXP decay to this fraction of their amplitude at the full length
DECAY_TO = 0.01

Source = Literal["range", "bounds", "warm_start", "database"]


@dataclass(frozen=True)
class Candidate:
    """A policy to evaluate: ``policy`` (canonical notation), its ``kind`` (fixed, decaying,
    cyclic, composite, ...) and where it came from (``source``: 'range' from the range test,
    'bounds' from a given range, 'warm_start' from the caller, 'database' from tune's database
    lookup)."""

    policy: str
    kind: str
    source: Source

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "kind": self.kind, "source": self.source}


def _nice(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def _lr(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_bounds(bounds: Any) -> tuple[float, float]:
    """``bounds`` as ``(lo, hi)`` with ``0 < lo <= hi``; ValueError naming ``bounds``."""
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Iterable):
        raise ValueError(f"bounds must be a pair (lo, hi) of LRs, got {bounds!r}")
    pair = tuple(bounds)
    if len(pair) != 2:
        raise ValueError(f"bounds must be a pair (lo, hi) of LRs, got {bounds!r}")
    lo, hi = _lr(pair[0], "bounds[0]"), _lr(pair[1], "bounds[1]")
    if lo > hi:
        raise ValueError(f"bounds must be (lo, hi) with lo <= hi, got {bounds!r}")
    return lo, hi


def cyclic_lengths(epoch: int, length: int, multiples: Sequence[int] = EPOCH_MULTIPLES
                   ) -> tuple[int, ...]:
    """Half periods ``m * epoch`` with ``2 * m * epoch <= length``, ascending; ``(length // 2,)``
    (at least 1) when none fits.

    >>> cyclic_lengths(42, 1000), cyclic_lengths(600, 10_000), cyclic_lengths(100, 300)
    ((84, 168, 336), (1200, 2400, 4800), (150,))
    """
    ls = sorted({m * epoch for m in multiples if 2 * m * epoch <= length})
    return tuple(ls) if ls else (max(1, length // 2),)


def generate_candidates(
    bounds: tuple[float, float],
    *,
    epoch: int,
    length: int,
    best_lr: float | None = None,
    multiples: Sequence[int] = EPOCH_MULTIPLES,
    source: Source = "range",
    above: float | None = None,
) -> tuple[Candidate, ...]:
    """Candidate policies from the good FIX range ``bounds = (lo, hi)`` (see the module doc).

    ``epoch``: iterations per epoch; ``length``: the full training length; ``best_lr``: the
    range test's best FIX LR; ``multiples``: the cyclic half periods in epochs; ``above``: an
    LR > ``hi`` at which the composite, cyclic (``k1``) and decaying (``k0``) candidates are
    generated too. Order: FIX, the composite, the cyclic functions (each l ascending), the
    decaying functions, then those at ``above`` in the same order. ValueError naming the
    parameter for bad input.

    >>> cs = generate_candidates((0.03, 0.1), epoch=42, length=1000, best_lr=0.1)
    >>> len(cs), sorted({c.kind for c in cs})
    (28, ['composite', 'cyclic', 'decaying', 'fixed'])
    >>> wide = generate_candidates((0.03, 0.1), epoch=42, length=1000, best_lr=0.1, above=0.3)
    >>> len(wide), wide[28].policy
    (55, 'LIN(k0=0.003, k1=0.3, l=42)[42] >> COS(k0=0.3, k1=0.0, l=958)')
    """
    lo, hi = check_bounds(bounds)
    if above is not None and _lr(above, "above") <= hi:
        raise ValueError(f"above must be an LR above the range's top {hi:g}, got {above!r}")
    epoch = _whole(epoch, "epoch", 1)
    length = _whole(length, "length", 2)
    if best_lr is not None:
        best = _lr(best_lr, "best_lr")
    else:
        best = math.sqrt(lo * hi)
    if isinstance(multiples, (str, bytes)) or not isinstance(multiples, Iterable):
        raise ValueError(f"multiples must be whole numbers of epochs >= 1, got {multiples!r}")
    mults = [_whole(m, "multiples[]", 1) for m in multiples]
    if not mults:
        raise ValueError("multiples must hold at least one number of epochs")

    k0c = _nice(lo / 10)
    texts = [f"FIX(k0={_nice(best)!r})"]
    for peak in (hi,) if above is None else (hi, float(above)):
        texts += _peaked(k0c, _nice(peak), epoch=epoch, length=length, multiples=mults)
    out: list[Candidate] = []
    seen: set[str] = set()
    for text in texts:
        policy = parse(text)
        notation = str(policy)
        if notation not in seen:
            seen.add(notation)
            out.append(Candidate(notation, policy.kind, source))
    return tuple(out)


def _peaked(k0c: float, peak: float, *, epoch: int, length: int, multiples: Sequence[int]
            ) -> list[str]:
    """The composite, cyclic (``k0c`` to ``peak``) and decaying (from ``peak``) candidates."""
    gamma = _nice(DECAY_TO ** (1.0 / length), 8)
    warm = max(1, min(epoch, length // 10))
    texts = [f"LIN(k0={k0c!r}, k1={peak!r}, l={warm})[{warm}] >> "
             f"COS(k0={peak!r}, k1=0, l={length - warm})"]
    for name in CYCLIC_FUNCTIONS:
        for ell in cyclic_lengths(epoch, length, multiples):
            extra = f", gamma={gamma!r}" if name in ("TRIEXP", "SINEXP") else ""
            texts.append(f"{name}(k0={k0c!r}, k1={peak!r}{extra}, l={ell})")
    half, three_q = max(1, length // 2), max(2, 3 * length // 4)
    if three_q <= half:
        three_q = half + 1
    return texts + [
        f"STEP(k0={peak!r}, gamma=0.5, l={max(1, length // 5)})",
        f"NSTEP(k0={peak!r}, gamma=0.1, l=[{half}, {three_q}])",
        f"EXP(k0={peak!r}, gamma={gamma!r})",
        f"INV(k0={peak!r}, gamma={_nice(1.0 / length)!r}, p=0.75)",
        f"POLY(k0={peak!r}, p=1, l={length})",
    ]
