"""Successive halving under a hard budget: the rung plan and the target drop rule (no torch).

**The plan** (:func:`plan_rungs`). ``n`` candidates, each run with ``seeds`` seeds; rung k
trains ``c_k`` candidates for ``r_k`` iterations (from scratch), keeps the best
``c_{k+1} = max(1, c_k // eta)`` and the next rung is ``eta`` times longer::

    c_0 = n,   r_k = round(T / eta^(K - k)),   cost = seeds * sum_k c_k * r_k  <=  budget

``T`` is the top rung's length, at most ``full`` (the task's ``max_iters``); ``K`` the number of
halvings, at most the number that brings ``c_k`` down to 1. Among the plans whose lengths
strictly increase and whose first rung is at least ``min_iters`` long (capped at ``full``), the
one with the longest top rung ``T`` wins (ties: more halvings, i.e. cheaper). With a budget that
covers it, that is plain successive halving from ``r_0 >= min_iters`` up to ``T = full``.

With a smaller budget, the finalist still trains at **full length** when that fits: the last
rung is ``full`` and the lower rungs shrink (``r_k = r_0 * eta^k``, ``r_0 >= min_iters``; of
such plans, the one with the longest next-to-last rung). A policy's schedule is laid out for the
full length (its decay ends there, and that is where its accuracy peaks), so a finalist measured
at 80% of it is under-rated and not comparable with full-length runs. Only when no such plan
fits does every rung shrink together (``T < full``). When even ``n`` runs of ``min_iters`` do
not fit, only the first ``budget // (seeds * min_iters)`` candidates are planned (candidate
order is the priority order); when not one fits, one candidate gets what is left.

With ``fill``, what the plan leaves of the budget trains more finalists at the top rung, the
next best of the rung below (at most all of them). With ``shrink`` as well, when the top rung is
``full`` long, the lower rungs shrink to pay for more finalists: the plan with the most
finalists ``m`` (at most ``c_{K-1}``) whose lower rungs ``r_k = min(r_0 * eta^k, the plan's
r_k)`` still start at ``r_0 >= min_iters``, with the largest such ``r_0``::

    r_0 = (budget / seeds - m * full) // sum_{k<K} c_k * eta^k

The lower rungs only rank the candidates, the top rung scores them: a finalist more is a
full-length score more (on digits with one seed per run it closed most of tune's gap to the
full grid, ``docs/results/tuning.md``), while ``min_iters`` keeps the ranking runs long enough
to mean something.

**The drop rule** (:func:`predicted_top1`), used with a target accuracy: from a run's curve,
the top-1 it could reach by iteration ``horizon`` (the plan's top length) if it kept improving
at the slope of its last two evaluations::

    predicted = best_top1 + max(0, slope) * max(0, horizon - last_iteration)

A diverged run predicts its best top-1 (run again, it diverges at the same step). Accuracy
curves flatten, so the straight line is optimistic: a candidate is dropped only when the mean
prediction over its seeds is below the target, i.e. when even the optimistic extrapolation
misses it. Fewer than two evaluations: no prediction, never dropped.

>>> [(r.iters, r.candidates) for r in plan_rungs(28, 1000, 10**6, eta=3, min_iters=42)]
[(111, 28), (333, 9), (1000, 3)]
>>> [(r.iters, r.candidates) for r in plan_rungs(28, 1000, 2400, eta=3, min_iters=42)]
[(43, 28), (130, 9)]
>>> [(r.iters, r.candidates) for r in plan_rungs(55, 1000, 11878, eta=5, min_iters=21,
...                                               fill=True)]
[(40, 55), (200, 11), (1000, 7)]
>>> [(r.iters, r.candidates) for r in plan_rungs(55, 1000, 11878, eta=5, min_iters=21,
...                                               fill=True, shrink=True)]
[(26, 55), (130, 11), (1000, 9)]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrbench.results import RunResult

__all__ = ["RungPlan", "plan_cost", "plan_rungs", "predicted_top1", "should_drop"]


@dataclass(frozen=True)
class RungPlan:
    """One planned rung: ``candidates`` policies trained ``iters`` iterations each (per seed)."""

    iters: int
    candidates: int

    def to_dict(self) -> dict[str, int]:
        return {"iters": self.iters, "candidates": self.candidates}


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _counts(n: int, halvings: int, eta: int) -> list[int]:
    out = [n]
    for _ in range(halvings):
        out.append(max(1, out[-1] // eta))
    return out


def _lengths(top: int, halvings: int, eta: int) -> list[int]:
    out = []
    for k in range(halvings + 1):
        d = eta ** (halvings - k)
        out.append(max(1, (top + d // 2) // d))  # round(top / d), halves up
    return out


def plan_cost(plan: Sequence[RungPlan], seeds: int = 1) -> int:
    """Training iterations the plan spends at most: ``seeds * sum(iters * candidates)``."""
    return seeds * sum(r.iters * r.candidates for r in plan)


def plan_rungs(
    n: int, full: int, budget: int, *, eta: int = 3, min_iters: int = 1, seeds: int = 1,
    fill: bool = False, shrink: bool = False,
) -> tuple[RungPlan, ...]:
    """The rungs of successive halving for ``n`` candidates within ``budget`` iterations
    (see the module doc). Never costs more than ``budget``; empty when ``budget < seeds``.
    ``fill``: the iterations the plan leaves unused train more finalists at the top rung (the
    next best of the rung below, up to all of them), ``(budget - cost) // (seeds * r_K)``.
    ``shrink`` (with ``fill``; no effect without it): when the top rung is ``full`` long, the
    lower rungs shrink, never under ``min_iters``, to pay for as many finalists as they can.

    >>> plan_rungs(9, 900, 10**6, eta=3, min_iters=100)
    (RungPlan(iters=100, candidates=9), RungPlan(iters=300, candidates=3), \
RungPlan(iters=900, candidates=1))
    >>> plan_rungs(9, 900, 3000, eta=3, min_iters=100, fill=True)[-1]   # 2,700 + 1 x 900 > 3,000
    RungPlan(iters=900, candidates=1)
    >>> plan_rungs(9, 900, 3600, eta=3, min_iters=100, fill=True)[-1]   # 2,700 + 1 x 900
    RungPlan(iters=900, candidates=2)
    """
    n = _whole(n, "n", 1)
    full = _whole(full, "full", 1)
    budget = _whole(budget, "budget", 0)
    eta = _whole(eta, "eta", 2)
    min_iters = _whole(min_iters, "min_iters", 1)
    seeds = _whole(seeds, "seeds", 1)
    fill, shrink = _flag(fill, "fill"), _flag(shrink, "shrink")
    plan = _plan(n, full, budget, eta=eta, min_iters=min_iters, seeds=seeds)
    if not fill or not plan:
        return plan
    top = plan[-1]
    room = (plan[-2].candidates if len(plan) > 1 else n) - top.candidates
    extra = min(room, (budget - plan_cost(plan, seeds)) // (seeds * top.iters))
    if extra > 0:
        plan = (*plan[:-1], RungPlan(top.iters, top.candidates + extra))
    if shrink and len(plan) > 1 and plan[-1].iters == full:
        return _shrunk(plan, budget, eta=eta, floor=min(min_iters, full), seeds=seeds)
    return plan


def _plan(n: int, full: int, budget: int, *, eta: int, min_iters: int, seeds: int
          ) -> tuple[RungPlan, ...]:
    """:func:`plan_rungs` without ``fill`` (arguments checked)."""
    floor = min(min_iters, full)

    max_halvings, c = 0, n
    while c > 1:
        c = max(1, c // eta)
        max_halvings += 1

    best: tuple[int, int] | None = None  # (top length, halvings)
    for halvings in range(max_halvings + 1):
        counts = _counts(n, halvings, eta)

        def cost(top: int, h: int = halvings, cs: list[int] = counts) -> int:
            return seeds * sum(a * b for a, b in zip(cs, _lengths(top, h, eta)))

        if cost(1) > budget:
            continue
        lo, hi = 1, full  # the largest top length that fits: cost grows with it
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if cost(mid) <= budget:
                lo = mid
            else:
                hi = mid - 1
        lengths = _lengths(lo, halvings, eta)
        if lengths[0] < floor or any(b <= a for a, b in zip(lengths, lengths[1:])):
            continue
        if best is None or (lo, halvings) > best:
            best = (lo, halvings)
    if best is not None and best[0] < full:
        anchored = _anchored(n, full, budget, eta=eta, floor=floor, seeds=seeds,
                             max_halvings=max_halvings)
        if anchored is not None:
            return anchored
    if best is not None:
        top, halvings = best
        return tuple(RungPlan(r, c) for r, c in zip(_lengths(top, halvings, eta),
                                                   _counts(n, halvings, eta)))
    fit = budget // (seeds * floor)
    if fit >= 1:  # not every candidate gets min_iters: plan for the first ones only
        return _plan(fit, full, budget, eta=eta, min_iters=min_iters, seeds=seeds)
    top = min(full, budget // seeds)
    return (RungPlan(top, 1),) if top >= 1 else ()


def _anchored(n: int, full: int, budget: int, *, eta: int, floor: int, seeds: int,
              max_halvings: int) -> tuple[RungPlan, ...] | None:
    """The plan whose last rung is ``full`` long, lower rungs ``r_0 * eta^k`` (None if none
    fits): of those within the budget, with ``r_0 >= floor`` and lengths strictly increasing,
    the one whose next-to-last rung is longest (the most evidence for picking the finalists)."""
    best: tuple[int, tuple[RungPlan, ...]] | None = None
    for halvings in range(1, max_halvings + 1):
        counts = _counts(n, halvings, eta)
        below = sum(c * eta ** k for k, c in enumerate(counts[:-1]))  # cost per unit of r_0
        r0 = (budget // seeds - counts[-1] * full) // below
        if r0 < floor:
            continue
        lengths = [r0 * eta ** k for k in range(halvings)] + [full]
        if any(b <= a for a, b in zip(lengths, lengths[1:])):
            continue
        plan = tuple(RungPlan(r, c) for r, c in zip(lengths, counts))
        if best is None or lengths[-2] > best[0]:
            best = (lengths[-2], plan)
    return None if best is None else best[1]


def _shrunk(plan: tuple[RungPlan, ...], budget: int, *, eta: int, floor: int, seeds: int
            ) -> tuple[RungPlan, ...]:
    """``plan`` (filled, its top rung full length) with its lower rungs ``r_0 * eta^k``
    shrunk to pay for the most finalists they can (module doc); ``plan`` when none more fits."""
    *lows, top = plan
    below = sum(r.candidates * eta ** k for k, r in enumerate(lows))  # cost per unit of r_0
    for m in range(lows[-1].candidates, top.candidates, -1):
        r0 = (budget // seeds - m * top.iters) // below
        if r0 >= floor:  # never longer than the plan's rungs: shrink, not grow
            return (*(RungPlan(min(r0 * eta ** k, r.iters), r.candidates)
                      for k, r in enumerate(lows)), RungPlan(top.iters, m))
    return plan


def predicted_top1(run: RunResult, horizon: int) -> float | None:
    """The top-1 ``run`` could reach by iteration ``horizon`` on a straight line through its
    last two evaluations (never below its best so far); None with fewer than two evaluations.
    A diverged run predicts its best top-1 (0 without one).
    """
    points = [p for p in run.curve if math.isfinite(p.top1)]
    best = max((p.top1 for p in points), default=None)
    if run.status == "diverged":
        return best if best is not None else 0.0
    if len(points) < 2 or best is None:
        return None
    a, b = points[-2], points[-1]
    if b.iteration <= a.iteration:
        return best
    slope = max(0.0, (b.top1 - a.top1) / (b.iteration - a.iteration))
    return best + slope * max(0, horizon - b.iteration)


def should_drop(runs: Sequence[RunResult], target: float, horizon: int) -> bool:
    """True when the mean over ``runs`` (one per seed) of :func:`predicted_top1` is below
    ``target``; False when any run has no prediction (or failed)."""
    preds = []
    for r in runs:
        if r.status == "failed":
            return False
        p = predicted_top1(r, horizon)
        if p is None:
            return False
        preds.append(p)
    return bool(preds) and sum(preds) / len(preds) < target
