"""LR range tests (SPEC section 5, step 2): the paper's FIX grid and Smith's exponential sweep.

Two ways to find the LR values a task trains well with, before tuning a policy:

**The paper's range test** (:func:`fix_range_test`): short runs of FIX(k0) for k0 on a grid scaled
by 10 with finer steps in between, ``k0 = m * 10^e`` for each mantissa ``m`` (default 1 and 3, so
1e-4, 3e-4, 1e-3, ..., 1). Each run is a few epochs of the real task (trends over a few epochs
predict the full training: the paper's Fig. 3); an LR's score is its top-1 (the best on the run's
curve), the mean over seeds. The *good FIX range* ``[lo, hi]`` is the run of consecutive grid LRs
around the best one whose top-1 is within ``tolerance`` of the best and none of whose seeds
diverged or failed::

    best = argmax_k top1(k)          good: top1(k) >= top1(best) - tolerance, walked outwards

When the best LR is the lowest (or the highest) one tried, the grid is extended by a decade in
that direction, up to ``extend`` times ("keep lowering while accuracy keeps rising"). Suggested
bounds, following the paper's Section V (CIFAR-10/CNN3: good range [0.0005, 0.006] gives
SINEXP(k0=0.00005, k1=0.006, ...)):

- cyclic policies: ``k1 = hi`` (the top of the good range), ``k0 = lo / 10`` (a decade below it);
- decaying policies: ``k0 = hi`` (start at the top of the good range and decay through it).

**Smith's range test** (``lrbench.tuning.smith``, torch): one run whose LR grows exponentially,

    lr_i = start_lr * (end_lr / start_lr) ** (i / (N - 1)),   i = 0 .. N - 1,

recording the training loss x_i of each step, smoothed by an exponential moving average with
bias correction (as in Adam; beta = 0.98 by default):

    a_i = beta * a_{i-1} + (1 - beta) * x_i,  a_{-1} = 0,   s_i = a_i / (1 - beta ** (i + 1))

i.e. ``s_i = sum_j (1 - beta) beta^(i-j) x_j / (1 - beta^(i+1))``, a weighted mean of x_0..x_i.
The sweep stops early when ``s_i > diverge_factor * min_{j<i} s_j`` (default 4) or a loss is
not finite. Suggested bounds (the rule of Smith 2017 and fastai's ``lr_find``):

- ``k1 = upper = lr_min_loss / 10``, where lr_min_loss is the LR of the smallest smoothed loss
  (the loss bottoms out just before it blows up; a tenth of it is still safely falling);
- ``k0 = lower = upper / ratio`` (``ratio`` = 10 by default); decaying ``k0 = upper``;
- ``lr_steepest``, the LR of the steepest fall of s against log(lr) before the minimum, is
  reported as the best single (FIX) LR guess.

This module is framework-free (numpy); :func:`fix_range_test` trains through
``lrbench.trainer`` (torch), imported when called.

>>> lr_grid(1e-3, 1.0, mantissas=(1, 3))
(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
>>> exponential_lrs(1e-3, 1e-1, 3).tolist()
[0.001, 0.01, 0.1]
>>> smooth_losses([2.0, 1.0], beta=0.5).tolist()   # [2, (0.25*2 + 0.5*1) / 0.75]
[2.0, 1.3333333333333333]
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lrbench.tasks import Task, as_task

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lrbench.results import RunResult

__all__ = [
    "FixPoint",
    "FixRangeResult",
    "SmithRangeResult",
    "check_mantissas",
    "exponential_lrs",
    "fix_range_test",
    "good_fix_range",
    "lr_grid",
    "parse_mantissas",
    "probe_fix",
    "smith_suggestions",
    "smooth_losses",
]

#: the paper's grid: each decade at 1x and 3x (``(1, 2, 5)`` is a finer choice)
DEFAULT_MANTISSAS: tuple[float, ...] = (1.0, 3.0)
FIX_MIN_LR = 1e-4
FIX_MAX_LR = 1.0
#: FIX runs last this many epochs unless ``iters`` is given (capped at the task's max_iters)
FIX_EPOCHS = 5
#: an LR is in the good range if its top-1 is within this of the best (absolute, 0.02 = 2 points)
DEFAULT_TOLERANCE = 0.02
#: decades the FIX grid may grow when the best LR sits on its edge
DEFAULT_EXTEND = 2
SMITH_START_LR = 1e-6
SMITH_END_LR = 10.0
SMITH_ITERS = 100
#: beta of the smoothed loss
DEFAULT_BETA = 0.98
#: Smith's sweep stops when the smoothed loss exceeds this times its minimum so far
DIVERGE_FACTOR = 4.0
#: Smith's lower bound is the upper bound divided by this
BOUND_RATIO = 10.0
#: Smith's suggestions are rounded to this many significant digits (more would be noise)
SMITH_DIGITS = 2

_EPS = 1e-9
PointStatus = Literal["ok", "unstable", "diverged", "failed"]
SmithStop = Literal["end", "diverged", "data"]


# -- validation ----------------------------------------------------------------------------------
def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _lr_pair(lo: Any, hi: Any, lo_name: str, hi_name: str) -> tuple[float, float]:
    a, b = _positive(lo, lo_name), _positive(hi, hi_name)
    if a >= b:
        raise ValueError(f"{lo_name} must be < {hi_name}, got {lo_name}={lo!r}, {hi_name}={hi!r}")
    return a, b


def _clean(x: float) -> float:
    """``x`` rounded to 12 significant digits: 3 * 10**-4 is 0.0003, not 0.00030000000000000003."""
    return float(f"{x:.12g}")


def _nice(x: float | None, digits: int = 6) -> float | None:
    """A suggested value, to ``digits`` significant digits (it goes into policy notation)."""
    return None if x is None else float(f"{x:.{digits}g}")


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# -- the grids and the math ---------------------------------------------------------------------
def check_mantissas(mantissas: Iterable[float]) -> tuple[float, ...]:
    """The distinct ``mantissas`` of an LR grid, each a number in ``[1, 10)``, as sorted floats;
    ValueError naming ``mantissas`` otherwise.

    >>> check_mantissas((5, 1, 2, 2.0))
    (1.0, 2.0, 5.0)
    """
    if isinstance(mantissas, (str, bytes)) or not isinstance(mantissas, Iterable):
        raise ValueError(f"mantissas must be a list of numbers in [1, 10), got {mantissas!r}")
    ms: set[float] = set()
    for m in mantissas:
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not 1 <= float(m) < 10:
            raise ValueError(f"mantissas must be numbers in [1, 10), got {m!r}")
        ms.add(float(m))
    if not ms:
        raise ValueError("mantissas must hold at least one number in [1, 10)")
    return tuple(sorted(ms))


def parse_mantissas(text: str) -> tuple[float, ...]:
    """Mantissas written as on the command line, ``"1,2,5"``, as floats (unchecked: the range
    is :func:`check_mantissas`'s); ValueError saying what was expected otherwise.

    >>> parse_mantissas("1, 2,5")
    (1.0, 2.0, 5.0)
    """
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"expected mantissas in [1, 10) separated by commas, e.g. 1,3 or "
                         f"1,2,5; got {text!r}") from None


def lr_grid(
    min_lr: float = FIX_MIN_LR,
    max_lr: float = FIX_MAX_LR,
    mantissas: Sequence[float] = DEFAULT_MANTISSAS,
) -> tuple[float, ...]:
    """The LRs ``m * 10^e`` in ``[min_lr, max_lr]`` for each mantissa ``m`` in ``[1, 10)``.

    ``(1,)`` gives the paper's powers of 10; ``(1, 3)`` (default) two steps per decade;
    ``(1, 2, 5)`` three. ValueError naming the parameter for a bad bound or mantissa, or for a
    grid with fewer than two LRs.

    >>> lr_grid(0.01, 1.0, (1, 2, 5))
    (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    """
    lo, hi = _lr_pair(min_lr, max_lr, "min_lr", "max_lr")
    ms = check_mantissas(mantissas)
    out = set()
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in ms:
            v = _clean(m * 10.0**e)
            if lo * (1 - _EPS) <= v <= hi * (1 + _EPS):
                out.add(v)
    grid = tuple(sorted(out))
    if len(grid) < 2:
        raise ValueError(
            f"the grid from min_lr={min_lr!r} to max_lr={max_lr!r} with mantissas "
            f"{tuple(ms)} holds {len(grid)} LR(s); widen it or add mantissas"
        )
    return grid


def exponential_lrs(start_lr: float, end_lr: float, iters: int) -> np.ndarray:
    """Smith's sweep: ``lr_i = start_lr * (end_lr / start_lr) ** (i / (iters - 1))``.

    ``lr_0 = start_lr``; ``lr_{iters-1}`` is ``end_lr`` up to rounding. ValueError naming the
    parameter when ``start_lr >= end_lr``, a bound is not a positive number, or ``iters < 2``.

    >>> exponential_lrs(1e-4, 1.0, 5).tolist()
    [0.0001, 0.001, 0.01, 0.1, 1.0]
    """
    start, end = _lr_pair(start_lr, end_lr, "start_lr", "end_lr")
    n = _whole(iters, "iters", 2)
    ratio = end / start
    return np.array([start * ratio ** (i / (n - 1)) for i in range(n)], dtype=np.float64)


def _check_beta(beta: Any) -> float:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
        raise ValueError(f"beta must be a number in [0, 1), got {beta!r}")
    return float(beta)


class _Smoother:
    """The bias-corrected exponential moving average, one value at a time."""

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.avg = 0.0
        self.weight = 1.0  # beta ** (i + 1) after i + 1 values

    def __call__(self, x: float) -> float:
        b = self.beta
        self.avg = b * self.avg + (1.0 - b) * x
        self.weight *= b
        return self.avg / (1.0 - self.weight)


def smooth_losses(losses: Iterable[float], beta: float = DEFAULT_BETA) -> np.ndarray:
    """The bias-corrected exponential moving average of ``losses``.

    ``a_i = beta * a_{i-1} + (1 - beta) * x_i`` from ``a_{-1} = 0``, and
    ``s_i = a_i / (1 - beta^(i + 1))``: a weighted mean of ``x_0 .. x_i`` with weights
    proportional to ``beta^(i - j)``; ``beta = 0`` returns the losses. A constant stays constant.

    >>> smooth_losses([1.0, 1.0, 1.0], beta=0.9).tolist()
    [1.0, 1.0, 1.0]
    """
    b = _check_beta(beta)
    s = _Smoother(b)
    return np.array([s(float(x)) for x in losses], dtype=np.float64)


# -- the FIX range --------------------------------------------------------------------------------
def good_fix_range(
    lrs: Sequence[float],
    top1: Sequence[float],
    usable: Sequence[bool],
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[int, int, int] | None:
    """Indices ``(best, lo, hi)`` of the good FIX range over ``lrs`` (ascending).

    ``best`` is the usable LR with the highest top-1 (the lowest LR on ties); ``lo .. hi`` the
    consecutive usable LRs around it with ``top1 >= top1[best] - tolerance``. A non-usable LR
    (diverged, failed) ends the range. None when no LR is usable.

    >>> good_fix_range([0.01, 0.1, 1, 10], [0.90, 0.95, 0.94, 0.1], [True, True, True, False])
    (1, 1, 2)
    """
    tol = _tolerance(tolerance)
    n = len(lrs)
    if not (len(top1) == len(usable) == n):
        raise ValueError("lrs, top1 and usable must have the same length")
    if any(b <= a for a, b in zip(lrs, lrs[1:])):
        raise ValueError("lrs must be strictly increasing")
    ok = [bool(u) and math.isfinite(float(a)) for u, a in zip(usable, top1)]
    candidates = [i for i in range(n) if ok[i]]
    if not candidates:
        return None
    best = max(candidates, key=lambda i: (float(top1[i]), -i))
    floor = float(top1[best]) - tol
    lo = best
    while lo - 1 >= 0 and ok[lo - 1] and float(top1[lo - 1]) >= floor:
        lo -= 1
    hi = best
    while hi + 1 < n and ok[hi + 1] and float(top1[hi + 1]) >= floor:
        hi += 1
    return best, lo, hi


def _tolerance(tolerance: Any) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) \
            or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be a top-1 difference in [0, 1), got {tolerance!r}")
    return float(tolerance)


@dataclass(frozen=True)
class FixPoint:
    """One LR of the paper's range test: FIX(k0=lr) over the seeds.

    ``top1``: mean over the seeds that measured one (NaN if none); ``top1_std``: their
    population std. ``top1s``/``statuses``: per seed. ``status``: 'ok' (every seed finished),
    'diverged' (every seed diverged), 'unstable' (some did), 'failed' (a run raised).
    ``good``: inside the good FIX range. ``iterations``: steps trained over the seeds.
    """

    lr: float
    top1: float
    top1_std: float
    top1s: tuple[float, ...]
    statuses: tuple[str, ...]
    status: PointStatus
    good: bool
    iterations: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "top1": _finite_or_none(self.top1),
            "top1_std": _finite_or_none(self.top1_std),
            "top1s": [_finite_or_none(v) for v in self.top1s],
            "statuses": list(self.statuses),
            "status": self.status,
            "good": self.good,
            "iterations": self.iterations,
        }


@dataclass(frozen=True)
class FixRangeResult:
    """The outcome of :func:`fix_range_test`.

    ``points``: one :class:`FixPoint` per LR tried, ascending. ``good_range``: ``(lo, hi)``, the
    good FIX range (None if no LR trained). ``best_lr``/``best_top1``: its best LR. Suggestions
    (6 significant digits): cyclic ``k0 = lo / 10`` and ``k1 = hi``; decaying ``decaying_k0 = hi``.
    ``task``: the task of the runs (``max_iters = iters``). ``iterations_spent``: training
    steps over every run. ``runs``: the RunResults (not in ``to_dict``).
    """

    task: Task
    iters: int
    seeds: tuple[int, ...]
    tolerance: float
    points: tuple[FixPoint, ...]
    best_lr: float | None
    best_top1: float | None
    good_range: tuple[float, float] | None
    k0: float | None
    k1: float | None
    decaying_k0: float | None
    iterations_spent: int
    wall_time: float
    warnings: tuple[str, ...] = ()
    runs: tuple[RunResult, ...] = field(default=(), repr=False, compare=False)

    method = "fix"

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The good FIX range ``(lo, hi)``."""
        return self.good_range

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None)."""
        return {
            "method": self.method,
            "task": self.task.model_dump(),
            "iters": self.iters,
            "seeds": list(self.seeds),
            "tolerance": self.tolerance,
            "points": [p.to_dict() for p in self.points],
            "best_lr": self.best_lr,
            "best_top1": _finite_or_none(self.best_top1),
            "good_range": list(self.good_range) if self.good_range else None,
            "k0": self.k0,
            "k1": self.k1,
            "decaying_k0": self.decaying_k0,
            "iterations_spent": self.iterations_spent,
            "wall_time": self.wall_time,
            "warnings": list(self.warnings),
        }

    def plot(self, path: str | Path | None = None) -> Figure:
        """Top-1 vs LR (log axis), the good range shaded, k0/k1 marked; saved to ``path``
        (.png or .svg) if given. See :func:`lrbench.tuning.plots.plot_fix_range`."""
        from lrbench.tuning.plots import plot_fix_range

        return plot_fix_range(self, path)


def _seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return tuple(range(_whole(seeds, "seeds", 1)))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be a count >= 1 or a list of seeds, got {seeds!r}")
    out = tuple(_whole(s, "seeds[]", 0) for s in seeds)
    if not out:
        raise ValueError("seeds must hold at least one seed")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must not repeat, got {list(out)}")
    return out


def _explicit_lrs(lrs: Any) -> tuple[float, ...]:
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Iterable):
        raise ValueError(f"lrs must be a list of positive numbers, got {lrs!r}")
    out = sorted({_clean(_positive(v, "lrs[]")) for v in lrs})
    if len(out) < 2:
        raise ValueError(f"lrs must hold at least two different LRs, got {lrs!r}")
    return tuple(out)


def _point(lr: float, runs: Sequence[RunResult]) -> FixPoint:
    vals, statuses = [], []
    for r in runs:
        best = r.best
        vals.append(best.top1 if best is not None else math.nan)
        statuses.append(r.status)
    got = [v for v in vals if math.isfinite(v)]
    n_div = statuses.count("diverged")
    status: PointStatus
    if "failed" in statuses:
        status = "failed"
    elif n_div == len(statuses):
        status = "diverged"
    elif n_div:
        status = "unstable"
    else:
        status = "ok"
    return FixPoint(
        lr=lr,
        top1=float(np.mean(got)) if got else math.nan,
        top1_std=float(np.std(got)) if got else math.nan,
        top1s=tuple(vals),
        statuses=tuple(statuses),
        status=status,
        good=False,
        iterations=sum(int(r.iterations) for r in runs),
    )


@contextmanager
def _opened(store: Any) -> Iterator[Any]:
    """``store`` as a Store: a URL or path is opened here and closed on exit."""
    if not isinstance(store, (str, Path)):
        yield store
        return
    from lrbench.store import Store

    opened = Store.open(str(store))
    try:
        yield opened
    finally:
        opened.close()


def _check_train_fn(train_fn: Any) -> None:
    if train_fn is not None and not callable(train_fn):
        raise ValueError("train_fn must be a callable with the arguments of lrbench.train")


def _train_fix(task: Task, lr: float, seeds: Sequence[int],
               train_fn: Callable[..., RunResult] | None, *,
               progress: Callable[[float, int, RunResult], Any] | None = None,
               **options: Any) -> list[RunResult]:
    """FIX(k0=lr) on ``task`` once per seed, through ``train_fn`` (default lrbench.train)."""
    from lrbench.policies import FIX

    if train_fn is None:
        from lrbench.trainer import train as train_fn
    out = []
    for seed in seeds:
        r = train_fn(task, FIX(k0=lr), seed, **options)
        out.append(r)
        if progress is not None:
            progress(lr, seed, r)
    return out


def probe_fix(
    range_test: FixRangeResult,
    lr: float,
    *,
    threads: int | None = None,
    data_root: str | None = None,
    device: Any = None,
    store: Any = None,
    train_fn: Callable[..., RunResult] | None = None,
) -> FixPoint:
    """One more LR for a finished range test: FIX(k0=lr) run as ``range_test`` ran its LRs
    (its task, length and seeds), scored as one of its points (``good`` is False: the good
    range is not recomputed). The other arguments are :func:`fix_range_test`'s.

    >>> r = fix_range_test("fashion-mnist-lenet", iters=107)   # doctest: +SKIP
    >>> r.good_range, probe_fix(r, 0.055).status                 # doctest: +SKIP
    ((0.03, 0.03), 'ok')
    """
    lr = _clean(_positive(lr, "lr"))
    _check_train_fn(train_fn)
    with _opened(store) as store:
        runs = _train_fix(range_test.task, lr, range_test.seeds, train_fn, threads=threads,
                          data_root=data_root, device=device, store=store)
    return _point(lr, runs)


def _analyse(points: list[FixPoint], tol: float) -> tuple[FixPoint, ...] | None:
    found = good_fix_range(
        [p.lr for p in points], [p.top1 for p in points], [p.status == "ok" for p in points], tol
    )
    if found is None:
        return None
    _, lo, hi = found
    return tuple(replace(p, good=lo <= i <= hi) for i, p in enumerate(points))


def fix_range_test(
    task: Task | str,
    *,
    min_lr: float = FIX_MIN_LR,
    max_lr: float = FIX_MAX_LR,
    mantissas: Sequence[float] = DEFAULT_MANTISSAS,
    lrs: Sequence[float] | None = None,
    iters: int | None = None,
    epochs: int = FIX_EPOCHS,
    eval_every: int | None = None,
    seeds: int | Sequence[int] = 1,
    tolerance: float = DEFAULT_TOLERANCE,
    extend: int = DEFAULT_EXTEND,
    threads: int | None = None,
    data_root: str | None = None,
    device: Any = None,
    store: Any = None,
    progress: Callable[[float, int, RunResult], Any] | None = None,
    train_fn: Callable[..., RunResult] | None = None,
) -> FixRangeResult:
    """The paper's LR range test: short FIX runs over an LR grid; the good FIX range and bounds.

    ``task``: a Task or preset name. The LRs: ``lrs`` if given, else
    ``lr_grid(min_lr, max_lr, mantissas)``; while the best LR is the lowest (highest, and it
    trained) one tried, a decade more is tried below (above), at most ``extend`` times. Each LR
    runs ``iters`` iterations (default ``epochs`` epochs, at most the task's ``max_iters``) with
    each seed of ``seeds`` (a count K for seeds 0..K-1, or a list), evaluated every
    ``eval_every`` (default ``min(task.eval_every, iters)``). ``tolerance``: see the module doc.
    ``store``: a Store or URL to record every run in. ``progress(lr, seed, result)``: called
    after each run. ``threads``, ``data_root``, ``device``: as :func:`lrbench.trainer.train`.
    ``train_fn``: called instead of :func:`lrbench.trainer.train` for each run, with the same
    arguments (``lrbench.tuning.tune`` passes one that keeps its iteration budget).

    >>> r = fix_range_test("digits-mlp", min_lr=0.01, max_lr=1.0, iters=100)  # doctest: +SKIP
    >>> r.good_range, r.k0, r.k1, r.decaying_k0                              # doctest: +SKIP
    ((0.03, 0.1), 0.003, 0.1, 0.1)
    """
    t_start = time.perf_counter()
    base = as_task(task)
    grid = _explicit_lrs(lrs) if lrs is not None else lr_grid(min_lr, max_lr, mantissas)
    seed_list = _seeds(seeds)
    tol = _tolerance(tolerance)
    extend = _whole(extend, "extend", 0)
    if iters is not None:
        iters = _whole(iters, "iters", 1)
    epochs = _whole(epochs, "epochs", 1)
    if eval_every is not None:
        eval_every = _whole(eval_every, "eval_every", 1)
    if progress is not None and not callable(progress):
        raise ValueError("progress must be a callable (lr, seed, result)")
    _check_train_fn(train_fn)

    if iters is None:
        from lrbench.data import load_dataset

        per_epoch = load_dataset(base.dataset, root=data_root).info.iters_per_epoch(
            base.batch_size)
        iters = min(base.max_iters, epochs * per_epoch)
    run_task = base.replace(max_iters=iters, eval_every=min(eval_every or base.eval_every, iters))

    runs: dict[float, list[RunResult]] = {}
    order: list[RunResult] = []

    def run_lrs(values: Iterable[float]) -> None:
        for lr in values:
            done = _train_fix(run_task, lr, seed_list, train_fn, threads=threads,
                              data_root=data_root, device=device, store=db, progress=progress)
            runs.setdefault(lr, []).extend(done)
            order.extend(done)

    with _opened(store) as db:
        run_lrs(grid)
        for _ in range(extend):
            tried = sorted(runs)
            points = [_point(lr, runs[lr]) for lr in tried]
            found = good_fix_range(tried, [p.top1 for p in points],
                                   [p.status == "ok" for p in points], tol)
            if found is None or found[0] == 0:  # nothing trained, or the best is the lowest
                lo = tried[0]
                more = [_clean(v / 10) for v in tried if v < lo * 10 * (1 - _EPS)]
            elif found[0] == len(tried) - 1:  # the best is the highest, and it trained
                hi = tried[-1]
                more = [_clean(v * 10) for v in tried if v > hi / 10 * (1 + _EPS)]
            else:
                break
            more = [v for v in more if v > 0 and math.isfinite(v) and v not in runs]
            if not more:
                break
            run_lrs(sorted(more))

    tried = sorted(runs)
    points = [_point(lr, runs[lr]) for lr in tried]
    analysed = _analyse(points, tol)
    warnings: list[str] = []
    best_lr = best_top1 = k0 = k1 = dk0 = None
    good: tuple[float, float] | None = None
    if analysed is None:
        final = tuple(points)
        warnings.append(
            f"no LR from {tried[0]:g} to {tried[-1]:g} trained without diverging; "
            "try lower LRs (min_lr)"
        )
    else:
        final = analysed
        best_i, lo_i, hi_i = good_fix_range(
            tried, [p.top1 for p in final], [p.status == "ok" for p in final], tol
        )  # type: ignore[misc]
        best_lr, best_top1 = tried[best_i], final[best_i].top1
        good = (tried[lo_i], tried[hi_i])
        k1 = _nice(good[1])
        k0 = _nice(good[0] / 10)
        dk0 = _nice(good[1])
        if best_i == 0:
            warnings.append(
                f"the best LR {best_lr:g} is the lowest tried: the good range may reach lower "
                "(lower min_lr or raise extend)"
            )
        elif best_i == len(tried) - 1:
            warnings.append(
                f"the best LR {best_lr:g} is the highest tried: the good range may reach higher "
                "(raise max_lr or extend)"
            )
        if lo_i == hi_i:
            warnings.append("only one LR is within tolerance of the best: try a finer grid "
                            "(mantissas 1, 2, 5) or a larger tolerance")
    unstable = [p.lr for p in final if p.status in ("unstable", "failed")]
    if unstable:
        warnings.append(
            "some seeds diverged or failed at LR " + ", ".join(f"{v:g}" for v in unstable))
    return FixRangeResult(
        task=run_task,
        iters=iters,
        seeds=seed_list,
        tolerance=tol,
        points=final,
        best_lr=best_lr,
        best_top1=best_top1,
        good_range=good,
        k0=k0,
        k1=k1,
        decaying_k0=dk0,
        iterations_spent=sum(p.iterations for p in final),
        wall_time=time.perf_counter() - t_start,
        warnings=tuple(warnings),
        runs=tuple(order),
    )


# -- Smith's range test: the result and the suggestion rule ---------------------------------------
def smith_suggestions(
    lrs: Sequence[float], smoothed: Sequence[float], ratio: float = BOUND_RATIO
) -> dict[str, Any]:
    """Suggested bounds from Smith's sweep (see the module doc), from the finite prefix of
    ``smoothed``: ``lr_min_loss``, ``min_loss``, ``lr_steepest`` (None when the loss never
    falls), ``upper = lr_min_loss / 10``, ``lower = upper / ratio`` and ``warnings``.

    >>> s = smith_suggestions([0.001, 0.01, 0.1, 1.0], [2.0, 1.5, 0.5, 3.0])
    >>> s["lr_min_loss"], s["upper"], s["lower"], s["lr_steepest"]
    (0.1, 0.01, 0.001, 0.1)
    """
    r = _ratio(ratio)
    x = np.asarray(lrs, dtype=np.float64)
    s = np.asarray(smoothed, dtype=np.float64)
    if x.shape != s.shape or x.ndim != 1:
        raise ValueError("lrs and smoothed must be 1-D and of the same length")
    bad = np.flatnonzero(~np.isfinite(s))
    n = int(bad[0]) if bad.size else s.size
    warnings: list[str] = []
    if n == 0:
        why = "no finite loss: lower start_lr" if s.size else "no loss recorded (no batches?)"
        return {"lr_min_loss": None, "min_loss": None, "lr_steepest": None, "upper": None,
                "lower": None, "warnings": [why]}
    x, s = x[:n], s[:n]
    i_min = int(np.argmin(s))
    lr_min = float(x[i_min])
    steep = None
    if i_min >= 1:
        g = np.gradient(s[: i_min + 1], np.log(x[: i_min + 1]))
        j = int(np.argmin(g))
        if g[j] < 0:
            steep = float(x[j])
    if i_min == 0:
        warnings.append("the smoothed loss never fell below its first value: lower start_lr")
    elif i_min == n - 1:
        warnings.append("the smoothed loss was still falling at the last LR: raise end_lr")
    if n < 10:
        warnings.append(f"only {n} finite points: the suggestion is rough (raise iters)")
    upper = lr_min / 10
    return {
        "lr_min_loss": lr_min,
        "min_loss": float(s[i_min]),
        "lr_steepest": steep,
        "upper": upper,
        "lower": upper / r,
        "warnings": warnings,
    }


def _ratio(ratio: Any) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not (
        math.isfinite(ratio) and ratio >= 1
    ):
        raise ValueError(f"ratio must be a number >= 1, got {ratio!r}")
    return float(ratio)


@dataclass(frozen=True)
class SmithRangeResult:
    """The outcome of Smith's range test (``lrbench.tuning.smith``).

    ``lrs``, ``losses``, ``smoothed``: one value per step taken (the last may be the one that
    diverged). ``stop_reason``: 'end' (all ``iters`` steps), 'diverged' (a non-finite loss, or the
    smoothed loss above ``diverge_factor`` times its minimum) or 'data' (the batches ran out).
    Suggestions (2 significant digits): ``k1 = upper = lr_min_loss / 10``,
    ``k0 = lower = upper / ratio``, ``decaying_k0 = upper``; ``lr_steepest`` (a FIX guess).
    ``task``: the task, when run by ``smith_range_test_task``.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    start_lr: float
    end_lr: float
    iters: int
    beta: float
    diverge_factor: float | None
    ratio: float
    stop_reason: SmithStop
    lr_min_loss: float | None
    min_loss: float | None
    lr_steepest: float | None
    k0: float | None
    k1: float | None
    decaying_k0: float | None
    wall_time: float
    warnings: tuple[str, ...] = ()
    task: Task | None = None

    method = "smith"

    @property
    def iterations(self) -> int:
        """Steps taken."""
        return len(self.losses)

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The suggested ``(lower, upper)``, i.e. ``(k0, k1)``."""
        if self.k0 is None or self.k1 is None:
            return None
        return (self.k0, self.k1)

    @classmethod
    def from_sweep(
        cls,
        lrs: Sequence[float],
        losses: Sequence[float],
        *,
        start_lr: float,
        end_lr: float,
        iters: int,
        beta: float,
        diverge_factor: float | None,
        ratio: float,
        stop_reason: SmithStop,
        wall_time: float = 0.0,
        task: Task | None = None,
    ) -> SmithRangeResult:
        """The result of a finished sweep: smooths ``losses`` and applies the suggestion rule."""
        smoothed = smooth_losses(losses, beta)
        sug = smith_suggestions(list(lrs), smoothed, ratio)
        return cls(
            lrs=tuple(float(v) for v in lrs),
            losses=tuple(float(v) for v in losses),
            smoothed=tuple(float(v) for v in smoothed),
            start_lr=float(start_lr),
            end_lr=float(end_lr),
            iters=int(iters),
            beta=float(beta),
            diverge_factor=diverge_factor,
            ratio=float(ratio),
            stop_reason=stop_reason,
            lr_min_loss=sug["lr_min_loss"],
            min_loss=sug["min_loss"],
            lr_steepest=_nice(sug["lr_steepest"], SMITH_DIGITS),
            k0=_nice(sug["lower"], SMITH_DIGITS),
            k1=_nice(sug["upper"], SMITH_DIGITS),
            decaying_k0=_nice(sug["upper"], SMITH_DIGITS),
            wall_time=float(wall_time),
            warnings=tuple(sug["warnings"]),
            task=task,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and inf as None)."""
        return {
            "method": self.method,
            "task": self.task.model_dump() if self.task is not None else None,
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "iters": self.iters,
            "iterations": self.iterations,
            "beta": self.beta,
            "diverge_factor": self.diverge_factor,
            "ratio": self.ratio,
            "stop_reason": self.stop_reason,
            "lr_min_loss": self.lr_min_loss,
            "min_loss": self.min_loss,
            "lr_steepest": self.lr_steepest,
            "bounds": list(self.bounds) if self.bounds else None,
            "k0": self.k0,
            "k1": self.k1,
            "decaying_k0": self.decaying_k0,
            "lrs": list(self.lrs),
            "losses": [_finite_or_none(v) for v in self.losses],
            "smoothed": [_finite_or_none(v) for v in self.smoothed],
            "wall_time": self.wall_time,
            "warnings": list(self.warnings),
        }

    def plot(self, path: str | Path | None = None) -> Figure:
        """Loss and smoothed loss vs LR (log axis), the bounds and the steepest point marked;
        saved to ``path`` (.png or .svg) if given. See
        :func:`lrbench.tuning.plots.plot_smith_range`."""
        from lrbench.tuning.plots import plot_smith_range

        return plot_smith_range(self, path)
