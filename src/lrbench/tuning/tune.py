"""``tune(task, budget)``: the paper's tuning procedure with successive halving, within a hard
budget of training iterations (SPEC section 5; the ``lrbench tune`` command).

The algorithm:

1. **Database lookup** (when a ``store`` is given, ``lookup`` is on, and neither ``warm_start``
   nor ``bounds``): :func:`~lrbench.tuning.recommend.recommend` finds the stored tasks most
   similar to the task and their best policies, rescaled to its length. Only stored tasks at
   least :data:`LOOKUP_MIN_SIMILARITY` (0.5) similar count, and of the stored versions of one
   task that differ only in length, only the longest (:func:`lookup_skips`): the shorter ones
   are the range tests and lower rungs that earlier tunes recorded and pruned Optuna trials:
   truncated runs of policies sized for the full length, which ``recommend`` would stretch as
   if they had been designed for their short length. Of the task's own stored
   versions, the one of its length and the longest if longer are used, never a shorter one,
   so a second tune of a task starts from the first one's full-length runs, never from its
   rungs. When the lookup finds policies they are the warm start (candidates with source
   'database') and no range test is run; ``TuneResult.prior`` records them with the tasks and
   run ids they rest on, and ``notes`` says what the lookup did either way.
2. **Range test** (skipped when ``bounds`` or ``warm_start`` is given or the lookup found
   policies): the paper's FIX grid (:func:`~lrbench.tuning.rangetest.fix_range_test`,
   1e-4 .. 1 at 1x and 3x per decade, or the ``mantissas`` given, grown by up to 2 decades),
   each LR run ``rt`` iterations with every seed, where ``rt`` is 5 epochs shortened so that
   even the largest grid (13 LRs; 19 with mantissas 1, 2, 5: :func:`range_max_lrs`) costs at
   most ``range_fraction`` (0.2) of the budget (a budget that leaves ``rt`` below
   ``min_iters`` is a ValueError). Its iterations count against the budget. By default
   (``mantissas='auto'``, :func:`choose_mantissas`) the grid is the finer 1x, 2x and 5x per
   decade when its runs are still at least ``min_iters`` long, else the paper's: the finer
   grid brackets the good range more tightly, and its candidates were the better ones on
   digits (``docs/results/tuning.md``).
3. **Candidates** (:func:`~lrbench.tuning.candidates.generate_candidates`) from the good FIX
   range: FIX at the best LR, a warm-up + cosine composite, 7 cyclic functions with half periods
   of 2, 4 and 8 epochs, 5 decaying functions (28 in all); warm-start policies come first.
   **Above the range**: the composite, cyclic and decaying ones again with their peak LR one
   step above the range (55 in all): the range test's next LR if it trained, else the
   geometric middle between the range's top and that LR if one more FIX run there, as the
   range test ran its LRs, trains (:func:`find_above_lr`; its iterations count).
   ``above_range='auto'`` (default) adds them only when the budget left (less such a probe)
   still trains every candidate, those above the range included, up to the full length
   (:func:`above_fits`); ``True`` adds them whatever the budget, ``False`` never.
4. **Successive halving** (:func:`~lrbench.tuning.halving.plan_rungs`): rung 0 trains every
   candidate ``r_0`` iterations with every seed; the best ``1/eta`` continue (ranked by mean
   top-1 over seeds, ties by iterations spent, then by #Iter, then by candidate order; with
   ``goal='cost'``, first the candidates whose every seed reached ``target_accuracy``, cheapest
   first), and the next rung is ``eta`` times longer, up to the task's ``max_iters``. The plan
   is made after the range test from the iterations left, so that it cannot overshoot; what
   the geometric rungs leave unused trains more finalists at the top rung (``fill``, the next
   best of the rung below), and the lower rungs shrink, never under ``min_iters``, to pay for
   as many finalists as they can (``shrink``): a finalist more is a full-length score more,
   which the lower rungs' short runs are not. A longer rung trains **from scratch** (no
   checkpoints).
   What a rung shorter than the full length trains (``low_rungs``):

   - ``'rescaled'`` (default): each policy squeezed into the rung's length
     (:func:`~lrbench.tuning.recommend.rescale_policy` by ``r_k / L``: its warm-up, cycles and
     decay all happen, ``r_k / L`` times as long). A policy is judged by its whole shape, as
     it will run at full length. Short runs of the unscaled policies are biased towards those
     that keep a high LR early (FIX, STEP): an annealing policy is cut off before it anneals,
     and a warm-up is all a short run sees of a warm-up + cosine composite (measured in
     ``docs/results/tuning.md``).
   - ``'prefix'``: the policy's first ``r_k`` iterations, unchanged (its length-dependent
     parameters stay relative to the full length, so a short run is exactly the beginning of
     the long one). A run that stopped early (target reached or diverged) would stop at the same
     step again, so it is reused, not retrained (exact on the CPU, where training is
     bit-for-bit reproducible).
5. **Target accuracy**: passed to each run, which stops at the first evaluation reaching it (only
   the iterations actually trained count). After each rung but the last, a candidate that has
   not reached it is dropped when even a straight line through its last two evaluations misses
   it by the top rung's length (:func:`~lrbench.tuning.halving.should_drop`).
6. **Recommendations**: every evaluated candidate, deepest rung first, then by the rung's
   ranking; the first ``top``, each with its metrics and the runs it rests on (their ids in the
   store when one is given; every run is recorded there).

**The budget is a hard cap**: before each run its full length is reserved, and no run starts
unless the reservation fits in what is left; ``iterations_spent`` (range test included) is the
sum of the iterations the runs actually trained, and never exceeds ``budget``. Iterations saved
by early stops are not spent again.

**Where runs train** (``executor``): by default in this process, a rung's runs ``workers`` at a
time in a local process pool; with ``executor='ray'`` (or any Executor) every run, range test
included, is a :class:`~lrbench.executors.TrainJob` on the executor (a Ray task with
``cpus_per_run`` / ``gpus_per_run``). Either way the driver reserves, settles and records each
run: the budget and the store see the same runs in the same order, and on the CPU the same
results bit for bit.

>>> r = tune("digits-mlp", 7000, seeds=1, threads=1)                # doctest: +SKIP
>>> r.iterations_spent, r.recommendations[0].policy                 # doctest: +SKIP
(6949, 'STEP(k0=0.2, gamma=0.5, l=200)')
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from lrbench.policies import parse
from lrbench.tasks import Task, as_task
from lrbench.tuning.candidates import Candidate, check_bounds, generate_candidates
from lrbench.tuning.halving import RungPlan, _flag, plan_cost, plan_rungs, should_drop
from lrbench.tuning.rangetest import (
    DEFAULT_EXTEND,
    DEFAULT_MANTISSAS,
    FIX_EPOCHS,
    FixPoint,
    FixRangeResult,
    _seeds,
    _whole,
    check_mantissas,
    fix_range_test,
    lr_grid,
    probe_fix,
)

if TYPE_CHECKING:
    from lrbench.executors import Executor
    from lrbench.ranking import PolicyStats
    from lrbench.results import RunResult
    from lrbench.tuning.recommend import Recommended, SimilarTask

__all__ = [
    "FINE_MANTISSAS",
    "GOALS",
    "LOOKUP_MIN_SIMILARITY",
    "Prior",
    "RangeCandidates",
    "Recommendation",
    "RunRef",
    "Rung",
    "TuneEvent",
    "TuneResult",
    "above_fits",
    "above_lr",
    "choose_mantissas",
    "default_min_iters",
    "find_above_lr",
    "lookup_skips",
    "midpoint_lr",
    "range_candidates",
    "range_test_iters",
    "tune",
]

Goal = Literal["accuracy", "cost"]
GOALS: tuple[str, ...] = ("accuracy", "cost")
LowRungs = Literal["rescaled", "prefix"]
LOW_RUNGS: tuple[str, ...] = ("rescaled", "prefix")
AboveRange = bool | Literal["auto"]
DEFAULT_ETA = 5
DEFAULT_TOP = 5
#: the range test may spend at most this share of the budget
RANGE_FRACTION = 0.2
#: the finer range-test grid that ``mantissas='auto'`` runs when the budget pays for it
FINE_MANTISSAS: tuple[float, ...] = (1.0, 2.0, 5.0)


def range_max_lrs(mantissas: Sequence[float] = DEFAULT_MANTISSAS) -> int:
    """The most LRs tune's range test can try with ``mantissas``: the grid ``lr_grid(1e-4, 1,
    mantissas)`` and its extensions (``DEFAULT_EXTEND`` decades of ``len(mantissas)`` LRs).
    ValueError naming ``mantissas`` for a bad one.

    >>> range_max_lrs(), range_max_lrs((1, 2, 5))
    (13, 19)
    """
    ms = check_mantissas(mantissas)
    return len(lr_grid(mantissas=ms)) + DEFAULT_EXTEND * len(ms)


#: the most LRs the range test can try with the paper's grid (1x and 3x per decade)
RANGE_MAX_LRS = range_max_lrs()
#: the database lookup warm-starts only from stored tasks at least this similar to the target
#: (:func:`lrbench.tuning.recommend.similarity`: the same dataset, or the same model family
#: with a similar dataset); a less similar task's policies are no reason to skip the range test
LOOKUP_MIN_SIMILARITY = 0.5

#: ``evaluate(task, policy, seed, target_accuracy) -> RunResult``; ``task.max_iters`` is the
#: run's length.
Evaluate = Callable[[Task, str, int, "float | None"], "RunResult"]


class TuneEvent(NamedTuple):
    """What ``progress`` receives before (``result`` None) and after each run."""

    phase: str  #: 'range' (the range test) or 'rung'
    rung: int | None  #: the rung's index (None in the range test)
    iters: int  #: the run's length
    policy: str
    seed: int
    result: RunResult | None
    iterations_spent: int
    budget: int


# -- results ------------------------------------------------------------------------------------
def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class RunRef:
    """One run behind a result: ``rung`` (-1 for the range test), its length ``iters``, the
    ``iterations`` it trained, its best ``top1`` and ``best_iter``, ``status``, ``stop_reason``,
    ``run_id`` in the store (None without one) and ``reused`` (a run that stopped early on a
    shorter rung, counted again without training)."""

    policy: str
    seed: int
    rung: int
    iters: int
    iterations: int
    top1: float | None
    best_iter: int | None
    status: str
    stop_reason: str
    run_id: int | None
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Rung:
    """One rung as it ran: ``iters`` per run, the ``candidates`` trained, the ``survivors``
    that continue, those ``dropped`` by the target rule, the ``iterations_spent`` and the
    ``planned_iterations`` (the most it could spend)."""

    index: int
    iters: int
    candidates: tuple[str, ...]
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    iterations_spent: int
    planned_iterations: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "iters": self.iters, "candidates": list(self.candidates),
            "survivors": list(self.survivors), "dropped": list(self.dropped),
            "iterations_spent": self.iterations_spent,
            "planned_iterations": self.planned_iterations,
        }


@dataclass(frozen=True)
class Recommendation:
    """A recommended policy with its evidence, measured at its deepest rung (``rung``, runs of
    ``rung_iters`` iterations): means over seeds of ``top1`` (best top-1 on the curve), its
    ``top1_std``, ``top5``, ``ac``, ``cd``, ``cdac``, ``ld`` (at the best evaluation),
    ``best_iter`` (#Iter) and ``iterations`` (trained per run: the cost). ``reached_target``:
    every seed reached the target (None without one). ``runs``: every run of the policy, all
    rungs. ``history``: per rung, its length, mean top-1 and iterations."""

    rank: int
    policy: str
    kind: str
    source: str
    top1: float
    top1_std: float
    top5: float
    ac: float
    cd: float
    cdac: float
    ld: float
    best_iter: float
    iterations: float
    rung: int
    rung_iters: int
    n_params: int
    n_runs: int
    n_diverged: int
    reached_target: bool | None
    dropped: bool
    runs: tuple[RunRef, ...]
    history: tuple[dict[str, Any], ...]

    @property
    def run_ids(self) -> tuple[int, ...]:
        """Store ids of the runs at its deepest rung."""
        return tuple(r.run_id for r in self.runs if r.rung == self.rung and r.run_id is not None)

    def to_dict(self) -> dict[str, Any]:
        out = {k: _num(getattr(self, k)) for k in (
            "rank", "policy", "kind", "source", "top1", "top1_std", "top5", "ac", "cd", "cdac",
            "ld", "best_iter", "iterations", "rung", "rung_iters", "n_params", "n_runs",
            "n_diverged", "reached_target", "dropped")}
        out["run_ids"] = list(self.run_ids)
        out["history"] = [dict(h) for h in self.history]
        out["runs"] = [r.to_dict() for r in self.runs]
        return out


@dataclass(frozen=True)
class Prior:
    """What the database lookup (step 1) warm-started from: the ``policies`` (in notation, best
    first, rescaled to the target), the ``recommended`` entries of
    :func:`~lrbench.tuning.recommend.recommend` they come from (source task, similarity, the
    stored runs' metrics and ids), the ``similar_tasks`` looked at and the stored tasks
    ``skipped`` (shorter versions, see :func:`lookup_skips`)."""

    policies: tuple[str, ...]
    recommended: tuple[Recommended, ...]
    similar_tasks: tuple[SimilarTask, ...]
    skipped: tuple[Task, ...] = ()

    @property
    def run_ids(self) -> tuple[int, ...]:
        """Store ids of the runs the policies rest on."""
        return tuple(sorted({i for r in self.recommended for i in r.run_ids}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": "database",
            "policies": list(self.policies),
            "run_ids": list(self.run_ids),
            "recommendations": [r.to_dict() for r in self.recommended],
            "similar_tasks": [{"task": s.task.model_dump(mode="json"),
                               "similarity": s.similarity, "why": s.why, "scale": s.scale}
                              for s in self.similar_tasks],
            "skipped_tasks": [t.model_dump(mode="json") for t in self.skipped],
        }


@dataclass(frozen=True)
class TuneResult:
    """The outcome of :func:`tune`: ``recommendations`` best first, ``iterations_spent`` (range
    test included, <= ``budget``), the ``range_test`` (None when skipped), the ``bounds`` the
    candidates came from, the ``candidates``, the ``plan`` and the ``rungs`` as they ran.
    ``low_rungs``, ``fill`` and ``shrink``: how the rungs ran; ``mantissas``: the range
    test's LRs per decade; ``above_range``: True, False or 'auto' (:func:`tune`'s arguments),
    ``above_lr`` the peak LR of the candidates above the good range (None when none were added),
    ``above_probe`` the FIX point probed for it (:func:`find_above_lr`; None when no probe
    ran).
    ``lookup``: whether the database was asked (step 1); ``warm_start_source``: 'warm_start'
    (the caller's), 'database' (the lookup's, described by ``prior``) or None; ``notes``: what
    was done, in words (``warnings``: what went wrong or was cut short).
    ``runs``: every RunResult (not in ``to_dict``)."""

    task: Task
    budget: int
    goal: str
    target_accuracy: float | None
    seeds: tuple[int, ...]
    eta: int
    min_iters: int
    epoch_iters: int
    iterations_spent: int
    range_iterations: int
    bounds: tuple[float, float] | None
    range_test: FixRangeResult | None
    candidates: tuple[Candidate, ...]
    plan: tuple[RungPlan, ...]
    rungs: tuple[Rung, ...]
    recommendations: tuple[Recommendation, ...]
    wall_time: float
    warnings: tuple[str, ...] = ()
    lookup: bool = False
    warm_start_source: str | None = None
    prior: Prior | None = None
    notes: tuple[str, ...] = ()
    low_rungs: str = "rescaled"
    fill: bool = True
    shrink: bool = True
    above_range: AboveRange = "auto"
    above_lr: float | None = None
    above_probe: FixPoint | None = None
    mantissas: tuple[float, ...] = DEFAULT_MANTISSAS
    runs: tuple[RunResult, ...] = field(default=(), repr=False, compare=False)

    @property
    def best(self) -> Recommendation | None:
        """The first recommendation (None when there is none)."""
        return self.recommendations[0] if self.recommendations else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None)."""
        return {
            "task": self.task.model_dump(),
            "budget": self.budget,
            "iterations_spent": self.iterations_spent,
            "range_iterations": self.range_iterations,
            "goal": self.goal,
            "target_accuracy": self.target_accuracy,
            "seeds": list(self.seeds),
            "eta": self.eta,
            "low_rungs": self.low_rungs,
            "fill": self.fill,
            "shrink": self.shrink,
            "above_range": self.above_range,
            "above_lr": self.above_lr,
            "above_probe": self.above_probe.to_dict() if self.above_probe is not None else None,
            "mantissas": list(self.mantissas),
            "min_iters": self.min_iters,
            "epoch_iters": self.epoch_iters,
            "bounds": list(self.bounds) if self.bounds else None,
            "recommendations": [r.to_dict() for r in self.recommendations],
            "rungs": [r.to_dict() for r in self.rungs],
            "plan": [p.to_dict() for p in self.plan],
            "candidates": [c.to_dict() for c in self.candidates],
            "range_test": self.range_test.to_dict() if self.range_test is not None else None,
            "lookup": self.lookup,
            "warm_start_source": self.warm_start_source,
            "prior": self.prior.to_dict() if self.prior is not None else None,
            "wall_time": self.wall_time,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


# -- validation ---------------------------------------------------------------------------------
def _target(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 < float(value) <= 1:
        raise ValueError(f"target_accuracy must be a number in (0, 1], got {value!r}")
    return float(value)


def _warm(warm_start: Any) -> list[str]:
    if warm_start is None:
        return []
    if isinstance(warm_start, str) or not isinstance(warm_start, Iterable):
        raise ValueError(f"warm_start must be a list of policies in notation, got {warm_start!r}")
    out: list[str] = []
    for i, text in enumerate(warm_start):
        try:
            notation = str(parse(text) if isinstance(text, str) else text)
            parse(notation)
        except (ValueError, TypeError) as e:
            raise ValueError(f"warm_start[{i}]: {e}") from None
        if notation not in out:
            out.append(notation)
    return out


def range_test_iters(budget: int, *, epoch: int, full: int, seeds: int = 1,
                     fraction: float = RANGE_FRACTION,
                     mantissas: Sequence[float] = DEFAULT_MANTISSAS) -> int:
    """Iterations per range-test run: ``min(5 epochs, full, fraction * budget / (m * seeds))``
    (m = ``range_max_lrs(mantissas)``, the most LRs the test can try: 13 with the paper's
    grid), so that the test spends at most ``fraction`` of the budget. 0 when not even 1
    iteration fits.

    >>> range_test_iters(6000, epoch=42, full=1000), range_test_iters(10**6, epoch=42, full=1000)
    (92, 210)
    >>> range_test_iters(6000, epoch=42, full=1000, mantissas=(1, 2, 5))
    63
    """
    share = int(fraction * budget) // (range_max_lrs(mantissas) * seeds)
    return max(0, min(FIX_EPOCHS * epoch, full, share))


def choose_mantissas(budget: int, *, epoch: int, full: int, min_iters: int, seeds: int = 1,
                     fraction: float = RANGE_FRACTION) -> tuple[float, ...]:
    """The range test's grid for ``mantissas='auto'``: the finer :data:`FINE_MANTISSAS` (1, 2,
    5 per decade; up to 19 LRs) when each of its runs still gets at least ``min(min_iters,
    full)`` iterations (:func:`range_test_iters`: the shortest run tune trains), else the
    paper's ``(1, 3)`` (13 LRs, each run 19/13 as long).

    >>> choose_mantissas(13750, epoch=42, full=1000, min_iters=21)   # 144-iteration runs
    (1.0, 2.0, 5.0)
    >>> choose_mantissas(3500, epoch=600, full=1000, min_iters=50)   # 36 < 50: the paper's
    (1.0, 3.0)
    """
    fine = range_test_iters(budget, epoch=epoch, full=full, seeds=seeds, fraction=fraction,
                            mantissas=FINE_MANTISSAS)
    return FINE_MANTISSAS if fine >= min(min_iters, full) else DEFAULT_MANTISSAS


def default_min_iters(epoch: int) -> int:
    """tune's shortest rung when ``min_iters`` is not given: half an epoch (at least 1).

    >>> default_min_iters(42), default_min_iters(600), default_min_iters(1)
    (21, 300, 1)
    """
    return max(1, round(epoch / 2))


def _next_point(hi: float, range_test: FixRangeResult) -> FixPoint | None:
    return next((p for p in range_test.points if p.lr > hi * (1 + 1e-9)), None)


def above_lr(hi: float, range_test: FixRangeResult | None = None,
             mantissas: Sequence[float] = DEFAULT_MANTISSAS) -> float | None:
    """The LR one step above a good FIX range's top ``hi``: the smallest LR ``range_test``
    tried above ``hi``, if every seed trained there (status 'ok'); without a range test, the
    next LR of the grid ``lr_grid(1e-4, 1, mantissas)`` (default the paper's: 1x and 3x per
    decade). None when there is none.

    >>> above_lr(0.1), above_lr(0.05), above_lr(1.0), above_lr(0.1, mantissas=(1, 2, 5))
    (0.3, 0.1, None, 0.2)
    """
    if range_test is None:
        return next((lr for lr in lr_grid(mantissas=mantissas) if lr > hi * (1 + 1e-9)), None)
    up = _next_point(hi, range_test)
    return up.lr if up is not None and up.status == "ok" else None


def midpoint_lr(lo: float, hi: float) -> float:
    """The geometric middle of two LRs, to 2 significant digits: ``sqrt(lo * hi)``.

    >>> midpoint_lr(0.03, 0.1), midpoint_lr(0.1, 0.3)
    (0.055, 0.17)
    """
    return float(f"{math.sqrt(lo * hi):.2g}")


def find_above_lr(
    hi: float,
    range_test: FixRangeResult | None = None,
    probe: Callable[[float], FixPoint | None] | None = None,
    mantissas: Sequence[float] = DEFAULT_MANTISSAS,
) -> tuple[float | None, FixPoint | None, str]:
    """The peak LR of the candidates above a good FIX range with top ``hi``, the probe's
    point, and why there is no such LR ('' when there is one).

    :func:`above_lr` (with ``mantissas``) when it has one. When the range test's next LR
    above ``hi`` did not train (diverged, unstable or failed), ``probe(midpoint_lr(hi, next))``
    trains FIX at the geometric middle (:func:`~lrbench.tuning.rangetest.probe_fix`, as the range test ran its
    LRs); that LR is the answer if its point is 'ok'. ``probe`` may return None (no budget
    left for it) or be None (no probe).

    >>> find_above_lr(0.1)
    (0.3, None, '')
    """
    up = above_lr(hi, range_test, mantissas)
    if up is not None:
        return up, None, ""
    if range_test is None:
        return None, None, "no LR of the grid above it"
    nxt = _next_point(hi, range_test)
    if nxt is None:
        return None, None, "the range test trained no LR above it"
    why = f"FIX({nxt.lr:g}) was {nxt.status} in the range test"
    mid = midpoint_lr(hi, nxt.lr)
    if not hi * (1 + 1e-9) < mid < nxt.lr * (1 - 1e-9):
        return None, None, why + ", with no LR of 2 digits between"
    point = probe(mid) if probe is not None else None
    if point is None:
        return None, None, why + f" and FIX({mid:g}) was not probed"
    if point.status != "ok":
        return None, point, why + f" and FIX({mid:g}) {point.status} when probed"
    return mid, point, ""


def above_fits(n: int, n_above: int, full: int, left: int, *, eta: int = DEFAULT_ETA,
               min_iters: int = 1, seeds: int = 1, fill: bool = True) -> tuple[bool, str]:
    """``above_range='auto'``'s rule: whether ``n_above`` candidates above the good FIX range
    may join the ``n`` others, and why not ('' when they may). They may when the rung plan
    (:func:`~lrbench.tuning.halving.plan_rungs`) for all ``n + n_above`` over the ``left``
    iterations still tries every candidate and reaches the full length ``full``: the wider
    set must not cut the finalists' runs short, so that the top-1 tune reports is a
    full-length score.

    >>> above_fits(28, 27, 1000, 6037, min_iters=21)
    (True, '')
    >>> print(above_fits(28, 27, 1000, 4000, min_iters=21)[1])  # doctest: +NORMALIZE_WHITESPACE
    left out the 27 candidates above the good FIX range: with them the longest runs would be
    625 of 1000 iterations (above_range=True adds them anyway)
    """
    plan = plan_rungs(n + n_above, full, left, eta=eta, min_iters=min_iters, seeds=seeds,
                      fill=fill) if left > 0 else ()
    if plan and plan[0].candidates == n + n_above and plan[-1].iters >= full:
        return True, ""
    head = f"left out the {n_above} candidates above the good FIX range: with them "
    if not plan:
        return False, head + ("the budget left would not pay for a rung "
                              "(above_range=True adds them anyway)")
    if plan[0].candidates < n + n_above:
        return False, head + (f"the budget would try {plan[0].candidates} of {n + n_above} "
                              f"candidates (above_range=True adds them anyway)")
    return False, head + (f"the longest runs would be {plan[-1].iters} of {full} iterations "
                          f"(above_range=True adds them anyway)")


# -- running and bookkeeping --------------------------------------------------------------------
class BudgetError(RuntimeError):
    """A run would have overshot the budget (a bug: the plan prevents it)."""


class _Session:
    """Runs jobs through ``evaluate`` or an executor, keeps the budget, records in the store,
    reports.

    Where runs train: with ``executor`` (Ray, or an Executor given by the caller) every run,
    range test included, goes to ``executor.submit_train``, ``executor.workers`` at a time;
    otherwise runs train in this process, and a rung's runs ``workers`` at a time in a
    :class:`~lrbench.executors.local.LocalExecutor` (threads for a custom ``evaluate``).
    """

    def __init__(self, *, budget: int, evaluate: Evaluate | None, store: Any, info: Any,
                 workers: int, threads: int | None, data_root: str | None, device: Any,
                 report: Callable[[TuneEvent], Any] | None, executor: Any = None,
                 owned: bool = False) -> None:
        self.budget = budget
        self.spent = 0
        self.reserved = 0
        self.custom = evaluate
        self.store = store
        self.info = info
        self.workers = workers
        self.threads = threads
        self.data_root = data_root
        self.device = device
        self.report = report
        self.executor = executor
        self._owned = owned
        self.results: list[RunResult] = []
        self.run_ids: dict[int, int | None] = {}  # id(result) -> run id in the store
        self._pool: Any = None

    # budget
    @property
    def left(self) -> int:
        return self.budget - self.spent - self.reserved

    def _reserve(self, n: int) -> None:
        if n > self.left:
            raise BudgetError(f"a run of {n} iterations would overshoot the budget "
                              f"({self.spent} spent, {self.reserved} reserved of {self.budget})")
        self.reserved += n

    def _settle(self, reserved: int, result: Any) -> RunResult:
        from lrbench.results import RunResult

        self.reserved -= reserved
        if not isinstance(result, RunResult):
            raise ValueError(f"evaluate must return a RunResult, got {type(result).__name__}")
        got = int(result.iterations)
        if not 0 <= got <= reserved:
            self.spent += reserved  # what it may have cost: keeps the cap honest
            raise ValueError(f"evaluate trained {got} iterations for a run of {reserved}")
        self.spent += got
        return result

    # running
    def _job(self, task: Task, policy: str, seed: int, target: float | None) -> Any:
        from lrbench.executors.base import TrainJob

        return TrainJob(task, policy, seed, target, self.threads, self.data_root, self.device)

    def _evaluate(self, task: Task, policy: str, seed: int, target: float | None) -> Any:
        if self.custom is not None:
            return self.custom(task, policy, seed, target)
        job = self._job(task, policy, seed, target)
        if self.executor is not None:
            return self.executor.submit_train(job).result()
        from lrbench.executors.base import execute_train_job

        return execute_train_job(job)

    def _submit(self, ex: Any, task: Task, policy: str, seed: int, target: float | None) -> Any:
        if self.custom is not None:  # a thread pool
            return ex.submit(self.custom, task, policy, seed, target)
        return ex.submit_train(self._job(task, policy, seed, target))

    def _event(self, phase: str, rung: int | None, task: Task, policy: str, seed: int,
               result: RunResult | None) -> None:
        if self.report is not None:
            self.report(TuneEvent(phase, rung, task.max_iters, policy, seed, result,
                                  self.spent, self.budget))

    def _finish(self, result: RunResult) -> RunResult:
        run_id = None
        if self.store is not None:
            run_id = self.store.record(result, dataset_info=self.info)
        self.results.append(result)
        self.run_ids[id(result)] = run_id
        return result

    def run(self, task: Task, policy: str, seed: int, target: float | None, *,
            phase: str = "rung", rung: int | None = None) -> RunResult:
        """One run (in this process, or on the executor), waited for."""
        self._reserve(task.max_iters)
        self._event(phase, rung, task, policy, seed, None)
        try:
            raw = self._evaluate(task, policy, seed, target)
        except BaseException:
            self.reserved -= task.max_iters
            raise
        result = self._finish(self._settle(task.max_iters, raw))
        self._event(phase, rung, task, policy, seed, result)
        return result

    def run_many(self, jobs: Sequence[tuple[Task, str, int, float | None]], *, rung: int
                 ) -> list[RunResult]:
        """Several runs (a rung), at most ``workers`` (an executor's ``workers``) in flight at
        once, the next started as soon as one finishes; settled, recorded and reported in the
        order of ``jobs``, which is the order of the results."""
        from concurrent.futures import FIRST_COMPLETED, wait

        ex = self._parallel(len(jobs))
        if ex is None:
            return [self.run(*job, rung=rung) for job in jobs]
        for task, *_ in jobs:  # every run's length is reserved before any starts
            self._reserve(task.max_iters)
        limit = max(1, int(getattr(ex, "workers", None) or self.workers))
        futures: list[Any] = []
        try:
            out = []
            for i, (task, policy, seed, _) in enumerate(jobs):
                while True:
                    running = [f for f in futures[i:] if not f.done()]
                    while len(futures) < len(jobs) and len(running) < limit:
                        t, p, s, tgt = jobs[len(futures)]
                        self._event("rung", rung, t, p, s, None)
                        futures.append(self._submit(ex, t, p, s, tgt))
                        running.append(futures[-1])
                    if futures[i].done():
                        break
                    wait(running, return_when=FIRST_COMPLETED)
                result = self._finish(self._settle(task.max_iters, futures[i].result()))
                out.append(result)
                self._event("rung", rung, task, policy, seed, result)
            return out
        finally:
            for f in futures:
                f.cancel()
            self.reserved = 0  # nothing is in flight any more (the pool is shut down on error)

    def _parallel(self, n: int) -> Any:
        """Where ``n`` runs of a rung go: the executor, a pool, or None (one by one, here)."""
        if self.executor is not None:
            return self.executor
        if self.workers == 1 or n <= 1:
            return None
        if self._pool is None:
            if self.custom is not None:  # a caller's evaluate may not pickle: threads
                import concurrent.futures as cf

                self._pool = cf.ThreadPoolExecutor(self.workers)
            else:
                from lrbench.executors import make_executor

                self._pool = make_executor("local", workers=self.workers,
                                           threads=self.threads or 1)
        return self._pool

    def close(self, *, cancel: bool = False) -> None:
        """Stop the pool and an executor this session made (``cancel``: runs in flight too)."""
        import concurrent.futures as cf

        pool, self._pool = self._pool, None
        if isinstance(pool, cf.ThreadPoolExecutor):
            pool.shutdown(wait=True, cancel_futures=True)
        elif pool is not None:
            pool.shutdown(cancel=cancel)
        if self.executor is not None and self._owned:
            self._owned = False
            self.executor.shutdown(cancel=cancel)

    def range_train(self, task: Task, policy: Any, seed: int, **_: Any) -> RunResult:
        """``fix_range_test``'s ``train_fn``: a range-test run through the budget."""
        return self.run(task, str(policy), seed, None, phase="range")


class RangeCandidates(NamedTuple):
    """Step 3's candidates from a good FIX range (:func:`range_candidates`): ``above_lr`` the
    peak LR of the ``n_above`` of them above the range (None, 0 when none), ``above_probe`` the
    FIX point probed for it (None when none), ``why_not`` why none were added ('' when they
    were or none were asked for)."""

    candidates: tuple[Candidate, ...]
    above_lr: float | None
    n_above: int
    above_probe: FixPoint | None
    why_not: str


def range_candidates(
    good: tuple[float, float],
    *,
    epoch: int,
    full: int,
    range_test: FixRangeResult | None = None,
    above_range: AboveRange = "auto",
    left: int = 0,
    probe: Callable[[float], FixPoint | None] | None = None,
    probe_cost: int = 0,
    others: Sequence[str] = (),
    eta: int = DEFAULT_ETA,
    min_iters: int = 1,
    seeds: int = 1,
    fill: bool = True,
    mantissas: Sequence[float] = DEFAULT_MANTISSAS,
) -> RangeCandidates:
    """Step 3 of the module doc: the candidates of the good FIX range ``good``
    (:func:`~lrbench.tuning.candidates.generate_candidates` for runs of ``full`` iterations,
    ``epoch`` iterations each, the best LR ``range_test``'s when given), and those above it
    as ``above_range`` says. With 'auto', :func:`above_fits` decides for ``left`` iterations
    (less ``probe_cost`` when ``range_test``'s next LR up did not train and a probe is due),
    counting the ``others`` policies (the warm start) with the candidates; then
    :func:`find_above_lr` finds their peak LR, probing with ``probe`` (without a range test,
    the next LR of the grid with ``mantissas``).

    >>> r = range_candidates((0.03, 0.1), epoch=42, full=1000, left=6037, min_iters=21)
    >>> len(r.candidates), r.above_lr, r.n_above
    (55, 0.3, 27)
    >>> range_candidates((0.03, 0.1), epoch=42, full=1000, left=4000, min_iters=21).why_not[:36]
    'left out the 27 candidates above the'
    """
    gen = functools.partial(
        generate_candidates, good, epoch=epoch, length=max(2, full),
        best_lr=range_test.best_lr if range_test is not None else None,
        source="range" if range_test is not None else "bounds")
    made = gen()
    if not above_range:
        return RangeCandidates(made, None, 0, None, "")
    if above_range == "auto":
        due = range_test is not None and above_lr(good[1], range_test) is None
        # how many join does not depend on their peak LR (only k0/k1 change): count them with
        # any LR above the range, before the real one is known (it may need a probe)
        n_above = len(gen(above=2 * good[1])) - len(made)
        ok, why = above_fits(len(set(others) | {c.policy for c in made}), n_above, full,
                             left - (probe_cost if due else 0), eta=eta, min_iters=min_iters,
                             seeds=seeds, fill=fill)
        if not ok:
            return RangeCandidates(made, None, 0, None, why)
    up, probed, why = find_above_lr(good[1], range_test, probe, mantissas)
    if up is None:
        return RangeCandidates(made, None, 0, probed,
                               f"no candidates above the good FIX range ({why})")
    wide = gen(above=up)
    return RangeCandidates(wide, up, len(wide) - len(made), probed, "")


def _prober(session: _Session, range_test: FixRangeResult,
            cost: int) -> Callable[[float], FixPoint | None]:
    """``find_above_lr``'s probe: one more range-test LR through the budget, if it fits."""
    def probe(lr: float) -> FixPoint | None:
        if session.left < cost:
            return None
        return probe_fix(range_test, lr, train_fn=session.range_train)
    return probe


def _best_top1(run: RunResult) -> float | None:
    best = run.best
    return None if best is None else best.top1


def _ref(run: RunResult, rung: int, iters: int, run_id: int | None, reused: bool) -> RunRef:
    best = run.best
    return RunRef(policy=run.policy, seed=run.seed, rung=rung, iters=iters,
                  iterations=int(run.iterations), top1=None if best is None else best.top1,
                  best_iter=None if best is None else best.iteration, status=run.status,
                  stop_reason=run.stop_reason, run_id=run_id, reused=reused)


def _f(x: float, missing: float) -> float:
    return x if math.isfinite(x) else missing


class _Entry:
    """A candidate's evidence at one rung."""

    def __init__(self, rung: int, iters: int, runs: list[RunResult], refs: list[RunRef],
                 stats: PolicyStats | None, reached: bool | None) -> None:
        self.rung, self.iters, self.runs, self.refs = rung, iters, runs, refs
        self.stats, self.reached = stats, reached

    def key(self, goal: str, order: int) -> tuple[Any, ...]:
        s = self.stats
        if s is None or s.n_runs == 0:  # every run failed: last
            return (2, math.inf, math.inf, math.inf, order)
        top1 = _f(s.top1_mean, -math.inf)
        iters = _f(s.iterations_mean, math.inf)
        best_iter = _f(s.best_iter_mean, math.inf)
        if goal == "cost":
            if self.reached:
                return (0, iters, -top1, best_iter, order)
            return (1, -top1, iters, best_iter, order)
        return (0, -top1, iters, best_iter, order)


# -- the tuner ----------------------------------------------------------------------------------
def tune(
    task: Task | str,
    budget: int,
    *,
    goal: Goal = "accuracy",
    target_accuracy: float | None = None,
    seeds: int | Sequence[int] = 1,
    store: Any = None,
    warm_start: Sequence[str] = (),
    bounds: tuple[float, float] | None = None,
    lookup: bool = True,
    eta: int = DEFAULT_ETA,
    min_iters: int | None = None,
    top: int = DEFAULT_TOP,
    workers: int | None = None,
    range_fraction: float = RANGE_FRACTION,
    epoch_iters: int | None = None,
    threads: int | None = None,
    data_root: str | None = None,
    device: Any = None,
    progress: bool | Callable[[TuneEvent], Any] = True,
    evaluate: Evaluate | None = None,
    executor: str | Executor | None = None,
    executor_options: dict[str, Any] | None = None,
    low_rungs: LowRungs = "rescaled",
    fill: bool = True,
    shrink: bool = True,
    above_range: AboveRange = "auto",
    mantissas: Sequence[float] | Literal["auto"] = "auto",
) -> TuneResult:
    """Find good LR policies for ``task`` within ``budget`` training iterations (module doc).

    ``goal``: 'accuracy' (highest top-1) or 'cost' (fewest iterations to reach
    ``target_accuracy``, which it needs). ``seeds``: a count K (seeds 0..K-1) or a list; every
    candidate runs every seed and scores their mean. ``store``: a Store or URL; every run is
    recorded. ``warm_start``: policies (notation) tried first; with them, or with ``bounds``
    (a good FIX range ``(lo, hi)`` whose candidates are added), no range test is run.
    ``lookup``: with a ``store`` and neither ``warm_start`` nor ``bounds``, first ask the store
    for the policies of similar tasks (step 1 of the module doc) and warm-start from them
    instead of a range test when it has some. ``eta``: the halving factor. ``min_iters``: the
    shortest rung (default half an epoch). ``top``: recommendations kept. ``workers``: runs of a
    rung at once (default 1; processes, threads for a custom ``evaluate``; with the Ray executor
    default as many as the cluster fits). ``range_fraction``: the range test's most share of the
    budget (at most 0.5). ``epoch_iters``: iterations per epoch (default: training samples //
    batch size). ``threads``, ``data_root``, ``device``: as :func:`lrbench.trainer.train`.
    ``low_rungs``: 'rescaled' (each policy squeezed into a short rung's length) or 'prefix'
    (its first iterations); ``fill``: spend what the rungs leave unused on more finalists;
    ``shrink`` (with ``fill``): shorten the lower rungs, never under ``min_iters``, to pay for
    more finalists (module doc, step 4). ``above_range``: also generate candidates whose peak
    LR is one step above the good FIX range (:func:`find_above_lr`; module doc, step 3):
    'auto' (default) when every candidate still reaches the full length with them
    (:func:`above_fits`), True always, False never. ``mantissas``: the range test's LRs per
    decade, ``m * 10^e`` from 1e-4 to 1 (:func:`~lrbench.tuning.rangetest.lr_grid`): ``(1,
    3)`` is the paper's, ``(1, 2, 5)`` finer (up to 19 LRs with the extensions instead of 13,
    so each range-test run is shorter, :func:`range_max_lrs`), and ``'auto'`` (default) runs the finer one when each of its runs
    is still at least ``min_iters`` long (:func:`choose_mantissas`), else the paper's (the
    paper's too without a range test); the LR above the good range is the grid's next one.
    ``progress``: True for a progress bar on stderr, or a callable taking each
    :class:`TuneEvent`. ``evaluate``: ``evaluate(task, policy, seed, target_accuracy) ->
    RunResult`` instead of training (tests, other trainers); ``task.max_iters`` is the run's
    length. ``executor``: where runs train: None or ``'local'`` (this process, a rung's runs in
    a local process pool of ``workers``), ``'ray'`` (every run a Ray task; ``executor_options``
    such as ``{'address': 'auto', 'cpus_per_run': 1, 'gpus_per_run': 0}`` go to
    :class:`~lrbench.executors.ray.RayExecutor`), or an Executor (not shut down here); runs are
    recorded and the budget kept here, in the driver, whatever the executor. ValueError naming
    the parameter for bad input, or when the budget cannot pay for the range test.

    >>> r = tune("digits-mlp", 6000, threads=1, progress=False)        # doctest: +SKIP
    >>> [(x.policy, round(x.top1, 3)) for x in r.recommendations[:2]]   # doctest: +SKIP
    >>> r = tune("digits-mlp", 6000, executor="ray",                   # doctest: +SKIP
    ...          executor_options={"address": "auto", "cpus_per_run": 1})
    """
    t_start = time.perf_counter()
    base = as_task(task)
    budget = _whole(budget, "budget", 1)
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
    target = _target(target_accuracy)
    if goal == "cost" and target is None:
        raise ValueError("goal='cost' needs target_accuracy: the accuracy to reach at the "
                         "lowest cost")
    seed_list = _seeds(seeds)
    n_seeds = len(seed_list)
    warm = _warm(warm_start)
    good = check_bounds(bounds) if bounds is not None else None
    lookup = _flag(lookup, "lookup")
    eta = _whole(eta, "eta", 2)
    if min_iters is not None:
        min_iters = _whole(min_iters, "min_iters", 1)
    top = _whole(top, "top", 1)
    if workers is not None:
        workers = _whole(workers, "workers", 1)
    if isinstance(range_fraction, bool) or not isinstance(range_fraction, numbers.Real) \
            or not 0 < range_fraction <= 0.5:
        raise ValueError(f"range_fraction must be a number in (0, 0.5], got {range_fraction!r}")
    if epoch_iters is not None:
        epoch_iters = _whole(epoch_iters, "epoch_iters", 1)
    if evaluate is not None and not callable(evaluate):
        raise ValueError("evaluate must be a callable (task, policy, seed, target_accuracy)")
    if not (isinstance(progress, bool) or callable(progress)):
        raise ValueError("progress must be True, False or a callable taking a TuneEvent")
    ex_name, ex_options = _check_executor(executor, executor_options, evaluate)
    if low_rungs not in LOW_RUNGS:
        raise ValueError(f"low_rungs must be one of {', '.join(LOW_RUNGS)}, got {low_rungs!r}")
    fill, shrink = _flag(fill, "fill"), _flag(shrink, "shrink")
    if not (isinstance(above_range, bool) or above_range == "auto"):
        raise ValueError(f"above_range must be True, False or 'auto', got {above_range!r}")
    if isinstance(mantissas, str) and mantissas != "auto":
        raise ValueError(f"mantissas must be 'auto' or a sequence of numbers in [1, 10), "
                         f"got {mantissas!r}")
    # 'auto': the paper's grid, unless the range test can take the finer one (below)
    grid = DEFAULT_MANTISSAS if isinstance(mantissas, str) else check_mantissas(mantissas)
    if budget < n_seeds:
        raise ValueError(f"budget must be at least one iteration per seed ({n_seeds}), "
                         f"got {budget}")

    info = None
    if epoch_iters is None:
        from lrbench.data import load_dataset

        info = load_dataset(base.dataset, root=data_root).info
        epoch_iters = info.iters_per_epoch(base.batch_size)
    full = base.max_iters
    if min_iters is None:
        min_iters = default_min_iters(epoch_iters)

    own_store = None
    if isinstance(store, (str, Path)):
        from lrbench.store import Store

        store = own_store = Store.open(str(store))
    bar = None
    session = None
    failed = True
    warnings: list[str] = []
    notes: list[str] = []
    try:
        # 1. the database lookup
        looked = store is not None and lookup and not warm and good is None
        prior: Prior | None = None
        warm_source = "warm_start" if warm else None
        if looked:
            prior, note = _lookup(store, base)
            notes.append(note)
            if prior is not None:
                warm, warm_source = list(prior.policies), "database"
        run_range = good is None and not warm
        if isinstance(mantissas, str) and run_range:  # 'auto'
            grid = choose_mantissas(budget, epoch=epoch_iters, full=full, min_iters=min_iters,
                                    seeds=n_seeds, fraction=float(range_fraction))
        rt_iters = 0
        if run_range:
            rt_iters = range_test_iters(budget, epoch=epoch_iters, full=full, seeds=n_seeds,
                                        fraction=float(range_fraction), mantissas=grid)
            shortest = min(min_iters, full)
            if rt_iters < shortest:
                max_lrs = range_max_lrs(grid)
                need = math.ceil(max_lrs * n_seeds * shortest / float(range_fraction))
                raise ValueError(f"budget={budget} is too small for the range test (up to "
                                 f"{max_lrs} LRs x {n_seeds} seed(s), runs of at least "
                                 f"{shortest} iterations, at most {range_fraction:g} of it): "
                                 f"give at least {need}, or bounds or warm_start")

        ex: Any = executor if ex_name == "instance" else None
        if ex_name == "ray":
            from lrbench.executors import make_executor

            ex = make_executor("ray", workers=workers, threads=threads, **ex_options)
        bar = _Bar(budget) if progress is True else None
        report = bar if bar is not None else (progress if callable(progress) else None)
        session = _Session(budget=budget, evaluate=evaluate, store=store, info=info,
                           workers=workers or 1, threads=threads, data_root=data_root,
                           device=device, report=report, executor=ex, owned=ex_name == "ray")
        if bar is not None:
            bar.start()
        # 2. the range test and 3. the candidates
        source = "database" if warm_source == "database" else "warm_start"
        candidates = [Candidate(p, parse(p).kind, source) for p in warm]  # type: ignore[arg-type]
        range_result: FixRangeResult | None = None
        up: float | None = None
        probed: FixPoint | None = None
        step: RangeCandidates | None = None
        if run_range:
            range_result = fix_range_test(base, iters=rt_iters, seeds=seed_list,
                                          mantissas=grid, train_fn=session.range_train)
            warnings += [f"range test: {w}" for w in range_result.warnings]
            good = range_result.good_range
        if good is not None:
            step = range_candidates(
                good, epoch=epoch_iters, full=full, range_test=range_result,
                above_range=above_range, left=session.left,
                probe=_prober(session, range_result, rt_iters * n_seeds)
                if range_result is not None else None,
                probe_cost=rt_iters * n_seeds, others=[c.policy for c in candidates],
                eta=eta, min_iters=min_iters, seeds=n_seeds, fill=fill, mantissas=grid)
            candidates += step.candidates
            up, probed = step.above_lr, step.above_probe
            if step.why_not and above_range is True:
                warnings.append(f"above_range: {step.why_not}")
            elif step.why_not:
                notes.append(f"above_range='auto': {step.why_not}")
        elif above_range is True:
            warnings.append("above_range: no candidates above the good FIX range (no good FIX "
                            "range: the candidates are the warm start's)")
        if probed is not None:
            notes.append(f"above_range: probed FIX({probed.lr:g}) as the range test ran its "
                         f"LRs: {probed.status}, top-1 {probed.top1:.4f}")
        seen: set[str] = set()
        candidates = [c for c in candidates if not (c.policy in seen or seen.add(c.policy))]
        range_spent = session.spent

        # 4. successive halving
        plan = plan_rungs(len(candidates), full, session.left, eta=eta, min_iters=min_iters,
                          seeds=n_seeds, fill=fill, shrink=shrink) if candidates else ()
        if plan and plan[0].candidates < len(candidates):
            warnings.append(f"the budget pays for {plan[0].candidates} of {len(candidates)} "
                            f"candidates at {plan[0].iters} iterations; the rest were not tried")
        if plan and plan[-1].iters < full:
            short = (f"the budget does not reach the full length: the longest runs are "
                     f"{plan[-1].iters} of {full} iterations")
            if step is not None and step.n_above:  # say what those above the range cost
                n_above = step.n_above
                alt = plan_rungs(len(candidates) - n_above, full, session.left, eta=eta,
                                 min_iters=min_iters, seeds=n_seeds, fill=fill)
                if alt and alt[-1].iters > plan[-1].iters:
                    short += (f"; without the {n_above} candidates above the range "
                              f"(above_range=False) they would be {alt[-1].iters}")
            warnings.append(short)
        if not candidates:
            warnings.append("no candidate policies: the range test found no LR that trains")
        rungs, entries, dropped_at = _halving(
            session, base, candidates, plan, seed_list, target, goal, warnings, low_rungs)
        failed = False
    finally:
        if bar is not None:
            bar.stop()
        if session is not None:
            session.close(cancel=failed)
        if own_store is not None:
            own_store.close()

    recs = _recommend(candidates, entries, dropped_at, goal, target, top)
    if target is not None and recs and not recs[0].reached_target:
        warnings.append(f"no candidate reached the target accuracy {target:g}")
    return TuneResult(
        task=base, budget=budget, goal=goal, target_accuracy=target, seeds=seed_list, eta=eta,
        min_iters=min_iters, epoch_iters=epoch_iters, iterations_spent=session.spent,
        range_iterations=range_spent, bounds=good, range_test=range_result,
        candidates=tuple(candidates), plan=tuple(plan), rungs=tuple(rungs),
        recommendations=tuple(recs), wall_time=time.perf_counter() - t_start,
        warnings=tuple(warnings), lookup=looked, warm_start_source=warm_source, prior=prior,
        notes=tuple(notes), low_rungs=low_rungs, fill=fill, shrink=shrink,
        above_range=above_range,
        above_lr=up, above_probe=probed, mantissas=grid, runs=tuple(session.results),
    )


def _check_executor(executor: Any, options: Any, evaluate: Any) -> tuple[str, dict[str, Any]]:
    """``tune``'s executor arguments: ('local' | 'ray' | 'instance', the executor's options)."""
    from lrbench.executors import check_executor

    if options is not None and not isinstance(options, Mapping):
        raise ValueError(f"executor_options must be a dict of options, got {options!r}")
    opts = dict(options or {})
    for key in ("workers", "threads"):
        if key in opts:
            raise ValueError(f"executor_options: give {key} as tune's own {key}= argument")
    if executor is None or isinstance(executor, str):
        name = check_executor("local" if executor is None else executor, opts)
        if name == "ray" and evaluate is not None:
            raise ValueError("executor='ray' trains runs on Ray; a custom evaluate runs in "
                             "this process: give one or the other")
        return name, opts
    if not callable(getattr(executor, "submit_train", None)):
        raise ValueError(f"executor must be 'local', 'ray' or an Executor (with submit_train), "
                         f"got {executor!r}")
    if opts:
        raise ValueError("executor_options apply to a named executor ('local', 'ray'), not to "
                         "an Executor given")
    if evaluate is not None:
        raise ValueError("an executor trains runs; a custom evaluate runs in this process: "
                         "give one or the other")
    return "instance", {}


# -- step 1: the database lookup ----------------------------------------------------------------
def _ident(task: Task) -> str:
    return json.dumps(task.identity(), sort_keys=True, default=str)


def _shape(task: Task) -> str:
    """A task's identity without its length: tasks that differ only in length share it."""
    ident = task.identity()
    ident.pop("max_iters", None)
    ident.pop("eval_every", None)
    return json.dumps(ident, sort_keys=True, default=str)


def lookup_skips(tasks: Iterable[Task], target: Task) -> list[Task]:
    """The stored ``tasks`` the database lookup does not look at (module doc, step 1).

    Of the stored versions of one task that differ only in length (``max_iters``,
    ``eval_every``), the lookup uses the longest: the shorter ones are in practice the range
    tests and lower rungs of earlier tunes and pruned Optuna trials, truncated runs of policies
    sized for the long one, which :func:`~lrbench.tuning.recommend.recommend` would stretch as
    if they had been designed for their short length. Of the target's own versions it uses the
    one of the target's length and the longest if longer; never a shorter one.

    >>> from lrbench.tasks import get_task
    >>> t = get_task("digits-mlp")   # 1000 iterations
    >>> stored = [t.replace(max_iters=n) for n in (92, 37, 333, 1000, 3000)]
    >>> [x.max_iters for x in lookup_skips(stored, t)]
    [92, 37, 333]
    """
    tasks = list(tasks)
    longest: dict[str, int] = {}
    for t in tasks:
        longest[_shape(t)] = max(longest.get(_shape(t), 0), t.max_iters)
    own = _shape(target)
    out = []
    for t in tasks:
        sh = _shape(t)
        if sh == own:
            keep = t.max_iters == target.max_iters or (
                t.max_iters == longest[sh] and t.max_iters > target.max_iters)
        else:
            keep = t.max_iters == longest[sh]
        if not keep:
            out.append(t)
    return out


def _lookup(store: Any, task: Task) -> tuple[Prior | None, str]:
    """Step 1: the policies of similar stored tasks to warm-start from (None without), and a
    note saying what was found."""
    from lrbench.tuning.recommend import recommend

    skipped = lookup_skips(store.tasks(), task)
    skip = {_ident(t) for t in skipped}
    rec = recommend(store, task, exclude=lambda t: _ident(t) in skip)
    used = tuple(r for r in rec.recommendations if r.similarity >= LOOKUP_MIN_SIMILARITY)
    why_skipped = (f" ({len(skipped)} shorter version(s) of stored tasks not looked at)"
                   if skipped else "")
    if not used:
        if rec.similar_tasks:
            best = rec.similar_tasks[0]
            return None, (f"database lookup: the most similar stored task ({_name(best.task)}, "
                          f"similarity {best.similarity:.2f}) is below "
                          f"{LOOKUP_MIN_SIMILARITY:g}{why_skipped}; range test")
        return None, f"database lookup: no stored task with usable runs{why_skipped}; range test"
    sources = list(dict.fromkeys(_name(r.source_task) for r in used))
    prior = Prior(policies=tuple(r.policy for r in used), recommended=used,
                  similar_tasks=tuple(s for s in rec.similar_tasks
                                      if s.similarity >= LOOKUP_MIN_SIMILARITY),
                  skipped=tuple(skipped))
    hi, lo = f"{used[0].similarity:.2f}", f"{min(r.similarity for r in used):.2f}"
    return prior, (f"database lookup: warm start from {len(used)} policies of "
                   f"{', '.join(sources)} (similarity {hi if hi == lo else hi + ' to ' + lo}, "
                   f"{_runs(prior.run_ids)}){why_skipped}; no range test")


def _runs(ids: Sequence[int], most: int = 8) -> str:
    """Run ids in words: 'runs 1, 2, 5', or '24 stored runs' when there are many."""
    return f"runs {', '.join(map(str, ids))}" if len(ids) <= most else f"{len(ids)} stored runs"


def _name(task: Task) -> str:
    return (f"{task.preset or task.dataset + '/' + task.model} at {task.max_iters} iterations")


def _halving(
    session: _Session, base: Task, candidates: Sequence[Candidate], plan: Sequence[RungPlan],
    seed_list: tuple[int, ...], target: float | None, goal: str, warnings: list[str],
    low_rungs: str = "rescaled",
) -> tuple[list[Rung], dict[int, list[_Entry]], dict[int, int]]:
    """Run the plan's rungs; per candidate index, its evidence per rung; where each was dropped."""
    from lrbench.ranking import summarize

    rungs: list[Rung] = []
    entries: dict[int, list[_Entry]] = {}
    dropped_at: dict[int, int] = {}
    if not plan:
        return rungs, entries, dropped_at
    alive = list(range(plan[0].candidates))
    horizon = plan[-1].iters
    final: dict[tuple[int, int], tuple[RunResult, int]] = {}  # stopped early: (run, its rung)
    prev_iters = 0
    for k, rp in enumerate(plan):
        iters = rp.iters
        todo = [(c, s) for c in alive for s in seed_list if (c, s) not in final]
        if len(todo) * iters > session.left:  # cannot happen with an honest evaluate
            iters = session.left // max(1, len(todo))
            if iters <= prev_iters:
                warnings.append(f"rung {k} skipped: the budget left ({session.left}) cannot "
                                f"pay for it")
                break
            warnings.append(f"rung {k} shortened to {iters} iterations to fit the budget")
        rung_task = base.replace(max_iters=iters, eval_every=min(base.eval_every, iters))
        spent_before = session.spent
        trained_as = {c: _rung_policy(candidates[c].policy, iters, base.max_iters, low_rungs)
                      for c in alive}  # once per candidate, whatever the seeds
        trained = session.run_many(
            [(rung_task, trained_as[c], s, target) for c, s in todo], rung=k)
        got = dict(zip(todo, trained))
        rung_runs: list[RunResult] = []
        per: dict[int, tuple[list[RunResult], list[RunRef]]] = {}
        for c in alive:
            runs, refs = per.setdefault(c, ([], []))
            for s in seed_list:
                if (c, s) in got:
                    r = got[(c, s)]
                    refs.append(_ref(r, k, iters, session.run_ids.get(id(r)), False))
                    if low_rungs == "prefix" and r.stop_reason in ("target", "diverged") \
                            and r.iterations < iters:
                        final[(c, s)] = (r, k)
                else:
                    r, _ = final[(c, s)]
                    refs.append(_ref(r, k, iters, session.run_ids.get(id(r)), True))
                # the runs of one rung are runs of one task (an early stop is the same run)
                r = dataclasses.replace(r, task=rung_task, policy=candidates[c].policy)
                runs.append(r)
                rung_runs.append(r)
        stats = {s.policy: s for s in summarize(rung_runs)}
        for c in alive:
            runs, refs = per[c]
            reached = None
            if target is not None:
                tops = [_best_top1(r) for r in runs]
                reached = all(t is not None and t >= target for t in tops)
            entries.setdefault(c, []).append(
                _Entry(k, iters, runs, refs, stats.get(candidates[c].policy), reached))
        ranked = sorted(alive, key=lambda c: entries[c][-1].key(goal, c))
        last = k == len(plan) - 1
        dropped: list[int] = []
        if target is not None and not last:
            dropped = [c for c in ranked
                       if not entries[c][-1].reached and should_drop(per[c][0], target, horizon)]
            for c in dropped:
                dropped_at[c] = k
        survivors = [] if last else [c for c in ranked if c not in dropped][
            :plan[k + 1].candidates]
        rungs.append(Rung(
            index=k, iters=iters, candidates=tuple(candidates[c].policy for c in alive),
            survivors=tuple(candidates[c].policy for c in survivors),
            dropped=tuple(candidates[c].policy for c in dropped),
            iterations_spent=session.spent - spent_before,
            planned_iterations=plan_cost([RungPlan(iters, len(alive))], len(seed_list)),
        ))
        if not last and not survivors:
            warnings.append(f"every candidate left after rung {k} was dropped: by its learning "
                            f"curve none can reach the target within {horizon} iterations")
            break
        alive = survivors
        prev_iters = iters
    return rungs, entries, dropped_at


def _rung_policy(policy: str, iters: int, full: int, low_rungs: str) -> str:
    """The policy a rung of ``iters`` iterations trains: ``policy`` itself (its first ``iters``
    iterations) with ``low_rungs='prefix'`` or at full length; with ``'rescaled'``, ``policy``
    squeezed into ``iters`` (:func:`~lrbench.tuning.recommend.rescale_policy` by
    ``iters / full``), or itself when that is not a valid policy."""
    if low_rungs == "prefix" or iters >= full:
        return policy
    from lrbench.tuning.recommend import rescale_policy

    try:
        return str(rescale_policy(policy, iters / full))
    except ValueError:
        return policy


def _recommend(candidates: Sequence[Candidate], entries: dict[int, list[_Entry]],
               dropped_at: dict[int, int], goal: str, target: float | None, top: int
               ) -> list[Recommendation]:
    """Every evaluated candidate with a usable run: deepest rung first, then not dropped, then
    the rung's ranking; the first ``top``."""
    usable = [c for c, es in entries.items()
              if es[-1].stats is not None and es[-1].stats.n_runs > 0]
    order = sorted(usable, key=lambda c: (-entries[c][-1].rung, c in dropped_at,
                                          entries[c][-1].key(goal, c)))
    out = []
    for rank, c in enumerate(order[:top], start=1):
        es = entries[c]
        e = es[-1]
        s = e.stats
        assert s is not None
        out.append(Recommendation(
            rank=rank, policy=candidates[c].policy, kind=candidates[c].kind,
            source=candidates[c].source, top1=s.top1_mean, top1_std=s.top1_std,
            top5=s.top5_mean, ac=s.ac_mean, cd=s.cd_mean, cdac=s.cdac_mean, ld=s.ld_mean,
            best_iter=s.best_iter_mean, iterations=s.iterations_mean, rung=e.rung,
            rung_iters=e.iters, n_params=s.n_params, n_runs=s.n_runs, n_diverged=s.n_diverged,
            reached_target=e.reached, dropped=c in dropped_at,
            runs=tuple(ref for x in es for ref in x.refs),
            history=tuple({"rung": x.rung, "iters": x.iters,
                           "top1": _num(x.stats.top1_mean) if x.stats else None,
                           "iterations": _num(x.stats.iterations_mean) if x.stats else None}
                          for x in es),
        ))
    return out


class _Bar:
    """A rich progress bar on stderr: iterations spent of the budget, the run in progress."""

    def __init__(self, budget: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} iterations"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("tuning", total=budget)

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def __call__(self, ev: TuneEvent) -> None:
        where = "range test" if ev.phase == "range" else f"rung {ev.rung}"
        self.progress.update(self.task, completed=ev.iterations_spent,
                             description=f"{where} ({ev.iters} it): {ev.policy} seed {ev.seed}")
