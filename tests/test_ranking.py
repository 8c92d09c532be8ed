"""Ranking: summarize runs over seeds, rank by one metric / weights / lexicographic, ties,
Pareto front. Every RunResult here is built by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lrbench.ranking import METRICS, PolicyStats, Ranked, pareto_front, rank, summarize
from lrbench.results import CurvePoint, RunResult
from lrbench.tasks import get_task

TASK = get_task("digits-mlp")


def point(it, top1, *, top5=None, ac=0.9, cd=0.1, cdac=0.02, train_loss=0.3, test_loss=0.4, lr=0.1):
    return CurvePoint(
        iteration=it, lr=lr, train_loss=train_loss, test_loss=test_loss, top1=top1,
        top5=min(1.0, top1 + 0.05) if top5 is None else top5, ac=ac, cd=cd, cdac=cdac,
    )


def run(policy, seed, curve, *, status="done", wall_time=2.0, task=TASK, iterations=None):
    curve = tuple(curve)
    return RunResult(
        task=task, policy=policy, seed=seed, status=status,
        stop_reason="diverged" if status == "diverged" else "max_iters",
        iterations=iterations if iterations is not None else (curve[-1].iteration if curve else 0),
        curve=curve, wall_time=wall_time,
    )


def simple(policy, top1s, best_iter=100, **kw):
    """One run per seed, each reaching top1s[seed] at best_iter (and less before and after)."""
    return [
        run(policy, seed, [point(best_iter // 2, a - 0.1), point(best_iter, a), point(best_iter * 2, a - 0.05)], **kw)
        for seed, a in enumerate(top1s)
    ]


def stats_of(runs):
    return {s.policy: s for s in summarize(runs)}


def order(ranked):
    return [r.stats.policy for r in ranked]


A, B, C, D = "FIX(k0=0.1)", "FIX(k0=0.01)", "SIN2(k0=0.01, k1=0.06, l=20)", "STEP(k0=0.1, gamma=0.5, l=50)"


# -- summarize ----------------------------------------------------------------------------
def test_summarize_mean_and_population_std_over_seeds():
    runs = [
        run(A, 0, [point(50, 0.5, ac=0.80, test_loss=0.5), point(100, 0.90, ac=0.95, test_loss=0.45)], wall_time=3.0),
        run(A, 1, [point(50, 0.7, ac=0.85, test_loss=0.5), point(100, 0.80, ac=0.91, test_loss=0.40)], wall_time=5.0),
        run(A, 2, [point(50, 0.96, ac=0.97, test_loss=0.6), point(100, 0.70, ac=0.90, test_loss=0.40)], wall_time=4.0),
    ]
    (s,) = summarize(runs)
    assert isinstance(s, PolicyStats)
    assert (s.policy, s.function, s.kind, s.n_params, s.n_runs, s.seeds) == (A, "FIX", "fixed", 1, 3, (0, 1, 2))
    assert s.top1_mean == pytest.approx(np.mean([0.9, 0.8, 0.96]))
    assert s.top1_std == pytest.approx(np.std([0.9, 0.8, 0.96]))  # ddof=0
    assert s.top1_std != pytest.approx(np.std([0.9, 0.8, 0.96], ddof=1))
    # the other metrics are taken at each run's best evaluation
    assert s.ac_mean == pytest.approx(np.mean([0.95, 0.91, 0.97]))
    assert s.best_iter_mean == pytest.approx(np.mean([100, 100, 50]))
    assert s.best_iter_std == pytest.approx(np.std([100, 100, 50]))
    assert s.ld_mean == pytest.approx(np.mean([0.45 - 0.3, 0.40 - 0.3, 0.6 - 0.3]))
    assert s.wall_time_mean == pytest.approx(4.0)
    assert s.mean("top1") == s.top1_mean and s.std("best_iter") == s.best_iter_std
    assert s.mean("n_params") == 1.0 and s.std("n_params") == 0.0


def test_summarize_groups_by_canonical_notation_in_first_seen_order():
    runs = simple("sin2(k0=1e-2, K1=0.06, l=20)", [0.9]) + simple(A, [0.8]) + simple(C, [0.7])
    out = summarize(runs)
    assert [s.policy for s in out] == [C, A]
    assert out[0].n_runs == 2 and out[0].top1_mean == pytest.approx(0.8)
    assert out[0].function == "SIN2" and out[0].kind == "cyclic" and out[0].n_params == 3


def test_summarize_composite_and_nstep_descriptions():
    nstep = "NSTEP(k0=0.01, gamma=0.1, l=[50, 70])"
    comp = "FIX(k0=0.1)[100] >> COS(k0=0.1, k1=0.0, l=900)"
    st = stats_of(simple(nstep, [0.9]) + simple(comp, [0.9]))
    assert (st[nstep].function, st[nstep].kind, st[nstep].n_params) == ("NSTEP", "decaying", 4)
    assert (st[comp].function, st[comp].kind, st[comp].n_params) == ("COMPOSITE", "composite", 5)


def test_summarize_keeps_unparsable_notation_and_empty_input():
    runs = [run("MYSCHED(a=1)", 0, [point(100, 0.9)])]
    runs = [RunResult(**{**r.__dict__, "n_params": 2}) for r in runs]
    (s,) = summarize(runs)
    assert (s.policy, s.function, s.kind, s.n_params) == ("MYSCHED(a=1)", "MYSCHED", "unknown", 2)
    assert summarize([]) == [] and rank([]) == [] and pareto_front([]) == []


def test_summarize_rejects_several_tasks():
    other = get_task("digits-mlp", max_iters=300)
    with pytest.raises(ValueError, match="one task"):
        summarize(simple(A, [0.9]) + simple(B, [0.9], task=other))


def test_summarize_metric_undefined_in_some_runs_is_ignored():
    runs = [
        run(A, 0, [point(100, 0.9, ac=math.nan, cd=math.nan)], wall_time=0.0),
        run(A, 1, [point(100, 0.8, ac=0.5, cd=0.2)], wall_time=4.0),
    ]
    (s,) = summarize(runs)
    assert s.ac_mean == 0.5 and s.ac_std == 0.0
    assert s.wall_time_mean == 4.0  # 0.0 = not recorded
    assert s.top1_mean == pytest.approx(0.85)
    (s2,) = summarize([run(A, 0, [point(100, 0.9, cdac=math.nan)])])
    assert math.isnan(s2.cdac_mean) and math.isnan(s2.cdac_std)


def test_diverged_runs_count_with_best_before_divergence_or_zero():
    runs = [
        run(A, 0, [point(50, 0.6), point(100, 0.9)]),
        # diverged after reaching 0.7 at iteration 50: counts with 0.7 (and its metrics there)
        run(A, 1, [point(50, 0.7, ac=0.5), point(100, math.nan, ac=math.nan)], status="diverged"),
        # diverged before any finite evaluation: top1 = top5 = 0, the rest undefined
        run(A, 2, [point(50, math.nan, top5=math.nan, ac=math.nan)], status="diverged"),
    ]
    (s,) = summarize(runs)
    assert s.n_runs == 3 and s.n_diverged == 2 and s.n_failed == 0
    assert s.top1_mean == pytest.approx((0.9 + 0.7 + 0.0) / 3)
    assert s.top5_mean == pytest.approx((0.95 + 0.75 + 0.0) / 3)
    assert s.ac_mean == pytest.approx((0.9 + 0.5) / 2)
    assert s.best_iter_mean == pytest.approx(75.0)
    assert s.mean("divergence") == pytest.approx(2 / 3)


def test_failed_runs_are_left_out_and_counted():
    runs = simple(A, [0.9, 0.8]) + [
        run(A, 7, [point(50, 0.1)], status="failed"),
        run(A, 8, [], status="failed"),
    ]
    (s,) = summarize(runs)
    assert (s.n_runs, s.n_failed, s.seeds) == (2, 2, (0, 1))
    assert s.top1_mean == pytest.approx(0.85)


def test_summarize_to_dict_is_json_ready():
    import json

    (s,) = summarize([run(A, 0, [point(100, 0.9, cdac=math.nan)])])
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert d["policy"] == A and d["cdac_mean"] is None and d["seeds"] == [0]


# -- rank by one metric -------------------------------------------------------------------
def test_rank_by_top1_default_best_first():
    st = summarize(simple(A, [0.80]) + simple(B, [0.90]) + simple(C, [0.85]))
    ranked = rank(st)
    assert order(ranked) == [B, C, A]
    assert [r.position for r in ranked] == [1, 2, 3]
    assert [r.score for r in ranked] == pytest.approx([0.90, 0.85, 0.80])
    assert all(isinstance(r, Ranked) and not r.tied_with_previous for r in ranked)
    assert order(rank(st, by="top1")) == order(ranked)
    assert order(rank(st, top=2)) == [B, C]


@pytest.mark.parametrize("metric", ["best_iter", "ld", "cd", "cdac", "n_params", "wall_time"])
def test_cost_and_robustness_metrics_rank_lower_first(metric):
    assert not METRICS[metric].higher_is_better
    lo, hi = {
        "best_iter": (dict(best_iter=100), dict(best_iter=400)),
        "ld": (dict(), dict()),
        "cd": (dict(), dict()),
        "cdac": (dict(), dict()),
        "n_params": (dict(), dict()),
        "wall_time": (dict(wall_time=1.0), dict(wall_time=9.0)),
    }[metric]
    good, bad = "FIX(k0=0.1)", "STEP(k0=0.1, gamma=0.5, l=50)"  # FIX has fewer parameters
    runs_good, runs_bad = simple(good, [0.8, 0.8], **lo), simple(bad, [0.9, 0.9], **hi)
    if metric in ("ld", "cd", "cdac"):
        field = {"ld": "test_loss", "cd": "cd", "cdac": "cdac"}[metric]
        runs_good = [run(good, s, [point(100, 0.8, **{field: 0.31 if field == "test_loss" else 0.01})]) for s in (0, 1)]
        runs_bad = [run(bad, s, [point(100, 0.9, **{field: 0.9})]) for s in (0, 1)]
    st = summarize(runs_bad + runs_good)
    assert order(rank(st, by=metric)) == [good, bad]
    assert order(rank(st, by="top1")) == [bad, good]  # and the utility goes the other way


def test_utility_metrics_rank_higher_first():
    for metric in ("top1", "top5", "ac"):
        assert METRICS[metric].higher_is_better
    st = summarize(
        [run(A, 0, [point(100, 0.8, top5=0.99, ac=0.7)])] + [run(B, 0, [point(100, 0.9, top5=0.95, ac=0.9)])]
    )
    assert order(rank(st, by="top5")) == [A, B]
    assert order(rank(st, by="ac")) == [B, A]


# -- ties ---------------------------------------------------------------------------------
def test_difference_within_seed_spread_is_a_tie():
    # A: 0.90 +- 0.02, B: 0.89 +- 0.01 -> |diff| 0.01 <= max(0.02, 0.01): tied
    # C: 0.80 +- 0.01 -> clear of both
    st = summarize(simple(A, [0.88, 0.92]) + simple(B, [0.88, 0.90]) + simple(C, [0.79, 0.81]))
    ranked = rank(st)
    assert order(ranked) == [A, B, C]
    assert [r.position for r in ranked] == [1, 1, 3]
    assert [r.tied_with_previous for r in ranked] == [False, True, False]
    assert ranked[0].spread == pytest.approx(0.02)
    # top=1 keeps everyone at position 1
    assert order(rank(st, top=1)) == [A, B]


def test_difference_just_outside_the_spread_is_not_a_tie():
    st = summarize(simple(A, [0.88, 0.92]) + simple(B, [0.8699, 0.8701]))
    ranked = rank(st)
    assert [r.position for r in ranked] == [1, 2]
    assert not ranked[1].tied_with_previous


def test_single_seed_ties_only_on_equal_means():
    st = summarize(simple(A, [0.9]) + simple(B, [0.9]) + simple(C, [0.8999]))
    ranked = rank(st)
    assert [r.position for r in ranked] == [1, 1, 3]
    assert order(ranked)[:2] == [A, B]  # equal: input order kept


def test_ties_compare_with_the_group_leader_not_a_chain():
    # means 0.90, 0.89, 0.88, 0.87 each with std 0.01: neighbours are all within the spread,
    # but the third is 0.02 below the leader, so a new group starts there.
    runs = []
    for pol, m in ((A, 0.90), (B, 0.89), (C, 0.88), (D, 0.87)):
        runs += simple(pol, [m - 0.01, m + 0.01])
    ranked = rank(summarize(runs))
    assert order(ranked) == [A, B, C, D]
    assert [r.position for r in ranked] == [1, 1, 3, 3]


def test_undefined_metric_ranks_last():
    runs = [run(A, 0, [point(100, 0.8, cdac=math.nan)]), run(B, 0, [point(100, 0.8, cdac=0.5)])]
    ranked = rank(summarize(runs), by="cdac")
    assert order(ranked) == [B, A] and ranked[1].position == 2


# -- weights ------------------------------------------------------------------------------
def test_weighted_score_min_max_normalized():
    # top1: A .90, B .85, C .80 -> norm 1, .5, 0 ; best_iter: A 400, B 100, C 100 -> norm 1, 0, 0
    st = summarize(simple(A, [0.90], best_iter=400) + simple(B, [0.85], best_iter=100) + simple(C, [0.80], best_iter=100))
    ranked = rank(st, weights={"top1": 1.0, "best_iter": -0.2})
    assert order(ranked) == [A, B, C]
    assert [r.score for r in ranked] == pytest.approx([0.8, 0.5, 0.0])
    heavy = rank(st, weights={"top1": 1.0, "best_iter": -0.8})
    assert order(heavy) == [B, A, C]
    assert [r.score for r in heavy] == pytest.approx([0.5, 0.2, 0.0])
    # units do not matter: iterations x1000 give the same scores
    assert [r.position for r in rank(st, weights={"top1": 2.0})] == [1, 2, 3]


def test_weighted_ties_use_the_score_spread():
    # top1 A .90 +- .05, B .85 +- 0: normalized range .05 -> A's score spread = 1.0 >= the gap
    st = summarize(simple(A, [0.85, 0.95]) + simple(B, [0.85, 0.85]))
    ranked = rank(st, weights={"top1": 1.0})
    assert [r.position for r in ranked] == [1, 1] and ranked[1].tied_with_previous
    assert ranked[0].spread == pytest.approx(1.0)


def test_weight_sign_against_direction_warns():
    st = summarize(simple(A, [0.9]) + simple(B, [0.8], best_iter=400))
    with pytest.warns(UserWarning, match="best_iter"):
        rank(st, weights={"top1": 1.0, "best_iter": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rank(st, weights={"top1": 1.0, "best_iter": -0.5, "ld": -0.1})


# -- lexicographic ------------------------------------------------------------------------
def test_lexicographic_breaks_ties_with_the_next_metric():
    # A and B tie on top1 (within spread); B is faster -> B first. C is clearly worse on top1.
    st = summarize(
        simple(A, [0.88, 0.92], best_iter=400) + simple(B, [0.89, 0.91], best_iter=100)
        + simple(C, [0.70, 0.70], best_iter=50)
    )
    assert order(rank(st)) == [A, B, C]
    ranked = rank(st, lexicographic=["top1", "best_iter"])
    assert order(ranked) == [B, A, C]
    assert [r.position for r in ranked] == [1, 2, 3]
    assert [r.score for r in ranked] == pytest.approx([0.90, 0.90, 0.70])
    # still tied after every metric -> shared position
    st2 = summarize(simple(A, [0.88, 0.92], best_iter=100) + simple(B, [0.89, 0.91], best_iter=100))
    assert [r.position for r in rank(st2, lexicographic=["top1", "best_iter"])] == [1, 1]


# -- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(by="accuracy"),
        dict(weights={"top1": 1.0, "speed": -1.0}),
        dict(lexicographic=["top1", "Top-5"]),
    ],
)
def test_unknown_metric_lists_valid_ones(kwargs):
    st = summarize(simple(A, [0.9]))
    with pytest.raises(ValueError, match="unknown metric") as e:
        rank(st, **kwargs)
    for name in ("top1", "top5", "ac", "cd", "cdac", "ld", "best_iter", "wall_time"):
        assert name in str(e.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(by="top1", weights={"top1": 1.0}), "only one"),
        (dict(weights={}), "at least one"),
        (dict(weights={"top1": math.nan}), "finite"),
        (dict(lexicographic=[]), "at least one"),
        (dict(lexicographic=["top1", "top1"]), "twice"),
        (dict(top=0), "top"),
    ],
)
def test_bad_rank_arguments(kwargs, match):
    st = summarize(simple(A, [0.9]))
    with pytest.raises(ValueError, match=match):
        rank(st, **kwargs)


def test_unknown_metric_in_pareto_and_stats():
    st = summarize(simple(A, [0.9]))
    with pytest.raises(ValueError, match="valid metrics"):
        pareto_front(st, accuracy="acc")
    with pytest.raises(ValueError, match="valid metrics"):
        st[0].mean("loss")


# -- diverged runs in a ranking -----------------------------------------------------------
def test_policy_that_diverges_on_some_seeds_ranks_down():
    runs = simple(A, [0.90, 0.90]) + [
        run(B, 0, [point(100, 0.95)]),
        run(B, 1, [point(50, math.nan)], status="diverged"),  # counts as 0
    ]
    st = summarize(runs)
    assert order(rank(st)) == [A, B]  # B: 0.475 +- 0.475, A: 0.9
    assert order(rank(st, by="divergence")) == [A, B]
    assert order(rank(st, lexicographic=["divergence", "top1"])) == [A, B]


# -- Pareto front -------------------------------------------------------------------------
def test_pareto_front_non_dominated_sorted_by_cost():
    runs = (
        simple(A, [0.90], best_iter=400)    # most accurate, slow: on the front
        + simple(B, [0.85], best_iter=100)  # fastest: on the front
        + simple(C, [0.85], best_iter=200)  # same acc as B, slower: dominated
        + simple(D, [0.80], best_iter=300)  # dominated by B
        + simple("FIX(k0=0.05)", [0.88], best_iter=200)  # between: on the front
    )
    front = pareto_front(summarize(runs))
    assert [s.policy for s in front] == [B, "FIX(k0=0.05)", A]


def test_pareto_front_with_other_metrics_and_equal_points():
    runs = simple(A, [0.9], best_iter=100) + simple(B, [0.9], best_iter=100) + simple(C, [0.95], best_iter=100)
    st = summarize(runs)
    assert [s.policy for s in pareto_front(st)] == [C]
    # equal points are both kept; n_params as cost: FIX (1) vs SIN2 (3)
    st2 = summarize(simple(A, [0.9]) + simple(B, [0.9]) + simple(C, [0.95]))
    assert {s.policy for s in pareto_front(st2, cost="n_params")} == {A, B, C}
    with pytest.raises(ValueError, match="different"):
        pareto_front(st2, accuracy="top1", cost="top1")


def test_ranking_is_reachable_from_the_package_without_a_framework():
    import subprocess
    import sys

    import lrbench
    from lrbench import ranking

    assert (lrbench.rank, lrbench.summarize, lrbench.pareto_front) == (
        ranking.rank, ranking.summarize, ranking.pareto_front)
    code = ("import sys, lrbench; lrbench.rank;"
            " print(sorted({'torch', 'keras', 'jax'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
