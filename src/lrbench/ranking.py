"""LR policy ranking (paper Section IV, component 3): top-N by utility, cost and robustness.

Numpy only. The input is a list of :class:`~lrbench.results.RunResult` of ONE task; the output
is one :class:`PolicyStats` per policy (mean and population std over seeds, SPEC section 3),
which :func:`rank` orders and :func:`pareto_front` filters.

Metrics and their direction (what "better" means):

==============  ===========  =========  =====================================================
metric          group        better     meaning
==============  ===========  =========  =====================================================
``top1``        utility      higher     Top-1 accuracy at the run's best evaluation (fraction)
``top5``        utility      higher     Top-5 accuracy at that same evaluation
``ac``          utility      higher     average confidence of the correct samples
``best_iter``   cost         lower      #Iter: the iteration where the best top-1 was measured
``n_params``    cost         lower      #Param of the LR function (cost of tuning it)
``wall_time``   cost         lower      wall-clock seconds of the run
``iterations``  cost         lower      iterations the run actually trained
``ld``          robustness   lower      test loss - train loss (signed; over-fitting indicator)
``cd``          robustness   lower      std of the correct samples' confidence
``cdac``        robustness   lower      std over classes of the per-class AC
``divergence``  robustness   lower      fraction of the policy's runs that diverged
==============  ===========  =========  =====================================================

How runs become numbers (the rules :func:`summarize` applies):

* The metrics of a run are those of its best evaluation (highest finite top-1, the first one on
  ties), as in :meth:`RunResult.summary`; ``ld`` is that evaluation's test - train loss.
* A **diverged** run counts with the best top-1 it measured before diverging (a checkpoint
  of that moment is a real, usable model), its other metrics taken at that same evaluation. A
  diverged run that never produced a finite top-1 counts with ``top1 = top5 = 0`` (no usable
  model) and leaves ``ac``, ``cd``, ``cdac``, ``ld`` and ``best_iter`` undefined. Divergence
  is also reported on its own (``n_diverged`` and the ``divergence`` metric), so a policy
  that diverges on some seeds can be ranked down explicitly.
* A **failed** run (status ``"failed"``: a crash, not a training outcome) is left out of every
  metric and only counted in ``n_failed``.
* Any other undefined value (NaN, or ``wall_time`` <= 0, i.e. not recorded) is ignored: the mean
  and std are over the runs where the metric is defined, and NaN when it is defined in none.

Ties (the rule :func:`rank` applies): candidates are sorted best first on the deciding value;
the first candidate opens a tie group, and each next candidate joins the current group when
``|value - value_leader| <= max(spread, spread_leader)``, where *leader* is the group's first
(best) member, otherwise it opens a new group. Comparing with the leader, not with the previous
candidate, keeps a long chain of small steps from tying the best with the worst. Members of a
group share the position of the leader (competition ranking: 1, 1, 3). The spread is the
population std over seeds of the deciding metric (0 with one seed: only equal means tie).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np

from lrbench.results import RunResult

Group = Literal["utility", "cost", "robustness"]


@dataclass(frozen=True)
class Metric:
    """A rankable metric: its name, its group and whether higher values are better."""

    name: str
    group: Group
    higher_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("top1", "utility", True, "Top-1 accuracy at the best evaluation"),
        Metric("top5", "utility", True, "Top-5 accuracy at the best evaluation"),
        Metric("ac", "utility", True, "average confidence of correct samples"),
        Metric("best_iter", "cost", False, "#Iter: iteration of the best top-1"),
        Metric("n_params", "cost", False, "#Param of the LR function"),
        Metric("wall_time", "cost", False, "wall-clock seconds per run"),
        Metric("iterations", "cost", False, "iterations trained per run"),
        Metric("ld", "robustness", False, "test loss - train loss"),
        Metric("cd", "robustness", False, "confidence deviation"),
        Metric("cdac", "robustness", False, "confidence deviation across classes"),
        Metric("divergence", "robustness", False, "fraction of runs that diverged"),
    )
}
#: Metrics measured per run, whose mean and std over seeds PolicyStats holds.
RUN_METRICS = ("top1", "top5", "ac", "cd", "cdac", "ld", "best_iter", "wall_time", "iterations")


def check_metric(name: str) -> Metric:
    """The Metric called ``name``; a ValueError listing the valid names otherwise."""
    metric = METRICS.get(name) if isinstance(name, str) else None
    if metric is None:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(METRICS)}")
    return metric


# -- statistics over seeds ----------------------------------------------------------------
@dataclass(frozen=True)
class PolicyStats:
    """One policy on one task: its description and each metric's mean and std over seeds.

    ``policy`` is the canonical notation; ``function`` the LR function's name (``COMPOSITE``
    for a composite); ``n_runs`` counts the runs that enter the metrics (done and diverged),
    ``n_failed`` the failed runs left out. Accuracies are fractions in [0, 1].
    """

    policy: str
    function: str
    kind: str
    n_params: int
    n_runs: int
    n_diverged: int
    n_failed: int
    seeds: tuple[int, ...]
    top1_mean: float
    top1_std: float
    top5_mean: float
    top5_std: float
    ac_mean: float
    ac_std: float
    cd_mean: float
    cd_std: float
    cdac_mean: float
    cdac_std: float
    ld_mean: float
    ld_std: float
    best_iter_mean: float
    best_iter_std: float
    wall_time_mean: float
    wall_time_std: float
    iterations_mean: float
    iterations_std: float

    def mean(self, metric: str) -> float:
        """The mean over seeds of any metric in METRICS (NaN when undefined)."""
        check_metric(metric)
        if metric == "n_params":
            return float(self.n_params)
        if metric == "divergence":
            return self.n_diverged / self.n_runs if self.n_runs else math.nan
        return getattr(self, f"{metric}_mean")

    def std(self, metric: str) -> float:
        """The population std over seeds (0 for n_params and divergence, one per policy)."""
        check_metric(metric)
        if metric in ("n_params", "divergence"):
            return 0.0
        return getattr(self, f"{metric}_std")

    def to_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


def _run_metrics(run: RunResult) -> dict[str, float]:
    nan = math.nan
    best = run.best
    out = dict.fromkeys(RUN_METRICS, nan)
    if best is not None:
        out.update(
            top1=best.top1, top5=best.top5, ac=best.ac, cd=best.cd, cdac=best.cdac,
            ld=best.test_loss - best.train_loss, best_iter=float(best.iteration),
        )
    elif run.status == "diverged":
        out.update(top1=0.0, top5=0.0)
    out["wall_time"] = run.wall_time if run.wall_time > 0 else nan
    out["iterations"] = float(run.iterations)
    return {k: float(v) if v is not None and math.isfinite(v) else nan for k, v in out.items()}


@lru_cache(maxsize=8192)  # parsing is the slow part of a leaderboard; the result is immutable
def _describe(notation: str) -> tuple[str, str, str, int | None]:
    """(canonical notation, function name, kind, #Param); unparsable notation kept as is."""
    from lrbench.policies import parse

    try:
        policy = parse(notation)
    except (ValueError, TypeError):
        head = notation.split("(", 1)[0].strip().upper() or notation
        return notation, head, "unknown", None
    return str(policy), policy.name, policy.kind, policy.n_params


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std())  # population std (ddof=0), SPEC section 3


def summarize(results: Iterable[RunResult]) -> list[PolicyStats]:
    """One PolicyStats per policy, in the order policies first appear in ``results``.

    Runs are grouped by canonical policy notation (``sin2(k0=1e-2, ...)`` and
    ``SIN2(k0=0.01, ...)`` are one policy). All runs must be of the same task (compared by
    :meth:`Task.identity`); a ValueError says so otherwise. See the module docstring for how
    diverged and failed runs count.
    """
    groups: dict[str, list[RunResult]] = {}
    described: dict[str, tuple[str, str, str, int | None]] = {}
    task_key = None
    for run in results:
        if not isinstance(run, RunResult):
            raise ValueError(f"summarize takes RunResult objects, got {type(run).__name__}")
        key = json.dumps(run.task.identity(), sort_keys=True, default=str)
        if task_key is None:
            task_key = key
        elif key != task_key:
            raise ValueError(
                "summarize takes the runs of one task, got runs of several tasks"
                f" ({key} and {task_key}); filter the results by task first"
            )
        if run.policy not in described:
            described[run.policy] = _describe(run.policy)
        canonical = described[run.policy][0]
        groups.setdefault(canonical, []).append(run)

    out = []
    for notation, runs in groups.items():
        _, function, kind, n_params = described[runs[0].policy]
        if n_params is None:
            n_params = max(r.n_params for r in runs)
        used = [r for r in runs if r.status != "failed"]
        per_run = [_run_metrics(r) for r in used]
        fields: dict[str, float] = {}
        for metric in RUN_METRICS:
            mean, std = _mean_std([m[metric] for m in per_run])
            fields[f"{metric}_mean"], fields[f"{metric}_std"] = mean, std
        out.append(
            PolicyStats(
                policy=notation,
                function=function,
                kind=kind,
                n_params=int(n_params),
                n_runs=len(used),
                n_diverged=sum(r.status == "diverged" for r in used),
                n_failed=len(runs) - len(used),
                seeds=tuple(sorted(r.seed for r in used)),
                **fields,
            )
        )
    return out


def from_aggregates(aggregates: Iterable[object]) -> list[PolicyStats]:
    """PolicyStats from the LR database's SQL aggregates (``Store.aggregates``), in their order.

    For a task with many runs this is far cheaper than :func:`summarize` over every RunResult:
    the database computes each metric's mean and population std by the same rules (a diverged
    run without a finite top-1 counts as 0). Failed runs are not part of the aggregates
    (``n_failed`` = 0) and seeds are not listed.
    """
    out = []
    for agg in aggregates:
        mean, std = agg.mean, agg.std  # type: ignore[attr-defined]
        notation, function, kind, n_params = _describe(agg.policy)  # type: ignore[attr-defined]
        fields: dict[str, float] = {}
        for metric in RUN_METRICS:
            m, s = mean.get(metric), std.get(metric)
            fields[f"{metric}_mean"] = math.nan if m is None else float(m)
            fields[f"{metric}_std"] = math.nan if s is None else float(s)
        out.append(PolicyStats(
            policy=notation, function=function, kind=kind,
            n_params=int(n_params if n_params is not None else agg.n_params),  # type: ignore
            n_runs=int(agg.runs), n_diverged=int(agg.diverged),  # type: ignore[attr-defined]
            n_failed=0, seeds=(), **fields))
    return out


# -- ranking ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ranked:
    """One candidate's place in a ranking.

    ``score`` is the value the ranking sorted on: the metric's mean for ``by``, the first
    metric's mean for ``lexicographic``, the weighted normalized score for ``weights``.
    ``spread`` is the seed spread used for the tie test on that value (see the module
    docstring). ``tied_with_previous``: this entry shares its position with the one before.
    """

    position: int
    stats: PolicyStats
    score: float
    tied_with_previous: bool
    spread: float = 0.0


def _tie_groups(items: list[tuple[float, float, object]]) -> list[list]:
    """Split (value, spread, payload) items, already sorted best first, into tie groups.

    NaN values (undefined) come last and form one group of their own.
    """
    groups: list[list] = []
    leader: tuple[float, float] | None = None
    for value, spread, payload in items:
        spread = spread if math.isfinite(spread) else 0.0
        if groups and leader is not None and math.isnan(value) == math.isnan(leader[0]) and (
            math.isnan(value) or abs(value - leader[0]) <= max(spread, leader[1])
        ):
            groups[-1].append(payload)
        else:
            groups.append([payload])
            leader = (value, spread)
    return groups


def _sort_key(value: float, higher_is_better: bool) -> tuple[int, float]:
    if math.isnan(value):
        return (1, 0.0)
    return (0, -value if higher_is_better else value)


def _by_metric(
    stats: list[PolicyStats], metric: str, higher_is_better: bool | None = None
) -> list[list[PolicyStats]]:
    better_high = METRICS[metric].higher_is_better if higher_is_better is None else higher_is_better
    ordered = sorted(stats, key=lambda s: _sort_key(s.mean(metric), better_high))
    return _tie_groups([(s.mean(metric), s.std(metric), s) for s in ordered])


def _weighted(
    stats: list[PolicyStats], weights: Mapping[str, float]
) -> tuple[dict[int, float], dict[int, float]]:
    """Score = sum of w * (mean - min) / (max - min) over the candidates; higher is better.

    A metric equal for all candidates adds 0. An undefined (NaN) mean counts as the worst
    normalized value for its weight's sign (0 for w > 0, 1 for w < 0). The spread of a score
    is sum |w| * std / (max - min): the largest the score's std over seeds can be, whatever
    the correlation between the metrics (the std of a sum is at most the sum of the stds).
    """
    score = {id(s): 0.0 for s in stats}
    spread = {id(s): 0.0 for s in stats}
    for metric, w in weights.items():
        means = np.array([s.mean(metric) for s in stats], dtype=np.float64)
        finite = means[np.isfinite(means)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        span = hi - lo
        for s, m in zip(stats, means):
            if not math.isfinite(m):
                score[id(s)] += w * (0.0 if w > 0 else 1.0)
                continue
            if span > 0:
                score[id(s)] += w * (m - lo) / span
                sd = s.std(metric)
                spread[id(s)] += abs(w) * (sd if math.isfinite(sd) else 0.0) / span
    return score, spread


def rank(
    stats: Sequence[PolicyStats],
    by: str | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    lexicographic: Sequence[str] | None = None,
    top: int | None = None,
) -> list[Ranked]:
    """Rank policies, best first; give one of ``by``, ``weights`` or ``lexicographic``.

    * ``by="top1"`` (the default): sort on one metric's mean in its direction (see METRICS:
      utility higher is better, cost and robustness lower is better).
    * ``weights={"top1": 1.0, "best_iter": -0.2}``: each metric's mean is min-max normalized
      across the candidates to [0, 1] (so weights are comparable whatever the units), then
      score = sum of weight * normalized value, and higher scores rank first. Weights are
      SIGNED, applied to the raw orientation: give a positive weight to a metric where higher
      is better and a negative one where lower is better (a UserWarning flags a sign that
      rewards the worse direction).
    * ``lexicographic=["top1", "best_iter"]``: sort on the first metric; candidates tied on
      it (within the seed spread) are ordered by the second, and so on.

    Ties: see the module docstring; for weights the spread is that of the score (see
    :func:`_weighted`); for lexicographic, entries are tied when they are tied on every
    metric of the list. ``top=N`` keeps the entries at positions <= N, so candidates tied
    with the N-th are kept too (the list may be longer than N).

    Unknown metric names raise a ValueError that lists the valid ones.
    """
    stats = list(stats)
    for s in stats:
        if not isinstance(s, PolicyStats):
            raise ValueError(f"rank takes PolicyStats (see summarize), got {type(s).__name__}")
    modes = sum(x is not None for x in (by, weights, lexicographic))
    if modes > 1:
        raise ValueError("give only one of by=, weights= or lexicographic=")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a whole number >= 1, got {top!r}")

    score_of: dict[int, float]
    spread_of: dict[int, float]
    if weights is not None:
        weights = dict(weights)
        if not weights:
            raise ValueError("weights must name at least one metric")
        for metric, w in weights.items():
            meta = check_metric(metric)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"weight of {metric!r} must be a finite number, got {w!r}")
            if w != 0 and (w > 0) != meta.higher_is_better:
                better = "higher" if meta.higher_is_better else "lower"
                warnings.warn(
                    f"weight {w!r} on {metric!r} rewards {'higher' if w > 0 else 'lower'}"
                    f" values, but {better} is better for {metric}",
                    UserWarning,
                    stacklevel=2,
                )
        score_of, spread_of = _weighted(stats, weights)
        ordered = sorted(stats, key=lambda s: -score_of[id(s)])
        groups = _tie_groups([(score_of[id(s)], spread_of[id(s)], s) for s in ordered])
    else:
        if lexicographic is not None:
            if isinstance(lexicographic, str):
                lexicographic = [lexicographic]
            keys = list(lexicographic)
            if not keys:
                raise ValueError("lexicographic must name at least one metric")
            if len(set(keys)) != len(keys):
                raise ValueError(f"lexicographic names a metric twice: {keys!r}")
        else:
            keys = [by if by is not None else "top1"]
        for metric in keys:
            check_metric(metric)
        groups = [stats]
        for metric in keys:
            groups = [sub for group in groups for sub in _by_metric(group, metric)]
        score_of = {id(s): s.mean(keys[0]) for s in stats}
        spread_of = {id(s): s.std(keys[0]) for s in stats}

    out: list[Ranked] = []
    for group in groups:
        position = len(out) + 1
        for i, s in enumerate(group):
            out.append(Ranked(position, s, score_of[id(s)], i > 0, spread_of[id(s)]))
    if top is not None:
        out = [r for r in out if r.position <= top]
    return out


# -- Pareto front -------------------------------------------------------------------------
def pareto_front(
    stats: Sequence[PolicyStats], accuracy: str = "top1", cost: str = "best_iter"
) -> list[PolicyStats]:
    """The non-dominated policies: no other policy is at least as good on both metrics and
    strictly better on one. "Good" follows each metric's direction in METRICS (with the
    defaults: higher top-1, lower #Iter). Means are compared as they are (no seed-spread
    ties); policies with an undefined mean on either metric are left out; two policies at
    the same point are both kept. Sorted by cost, best (cheapest) first.
    """
    acc_m, cost_m = check_metric(accuracy), check_metric(cost)
    if accuracy == cost:
        raise ValueError(f"accuracy and cost must be different metrics, both are {accuracy!r}")

    def oriented(s: PolicyStats) -> tuple[float, float]:
        a, c = s.mean(accuracy), s.mean(cost)
        return (a if acc_m.higher_is_better else -a, -c if cost_m.higher_is_better else c)

    points = [(s, *oriented(s)) for s in stats]
    points = [p for p in points if math.isfinite(p[1]) and math.isfinite(p[2])]
    front = []
    for s, a, c in points:
        dominated = any(
            a2 >= a and c2 <= c and (a2 > a or c2 < c) for _, a2, c2 in points
        )
        if not dominated:
            front.append((c, -a, s))
    front.sort(key=lambda x: (x[0], x[1]))
    return [s for _, _, s in front]
