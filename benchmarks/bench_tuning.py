"""Tuning benchmark (issue #6, "The benchmark"): best top-1 found vs iterations spent.

Default target task: ``digits-mlp`` (1000 iterations), prior task ``digits-cnn``; ``--target``,
``--other``, ``--iters`` and ``--eval-every`` choose others (e.g. Fashion-MNIST / LeNet).
Methods, each repeated for reps r = 0 .. ``--reps`` - 1 (rep r trains with seed r; the tuner's /
sampler's seed is r; with ``--seeds-per-run K`` > 1 every evaluation trains the K seeds
``rep_seeds(r, K)`` and scores their mean, and the budgets given should be K times as large):

(i)   **grid**: every candidate policy of ``tune`` (from ``generate_candidates`` on the good
      FIX range its range test found in rep 0; 28 on digits) at full length, seed r. Its cost is the
      sum of the iterations trained (the range test that made the candidates is not counted).
(ii)  **tune cold**: ``tune("digits-mlp", BUDGET, seeds=[r])`` (range test included in the
      budget), tune's defaults (eta=5, the range test's grid 'auto', low_rungs='rescaled',
      fill=True, shrink=True; ``--eta`` and ``--grid`` choose others, ``--low-rungs
      prefix``, ``--no-fill`` and ``--no-shrink`` for the ablation in docs/results/tuning.md;
      ``--above-range auto|on|off`` for above_range, default auto as tune's: the grid's
      candidates follow tune's at the budget given, so with auto they include those above the
      range when tune's do).
(iii) **tune warm**: ``tune(..., warm_start=recommend(store, "digits-mlp").policies)`` with
      half the cold budget, where the store holds only the full-length grid of ``digits-cnn``
      (the same dataset, another model; seed 0), trained before. The digits-cnn runs are the
      "another task" prior and are **not** counted in the warm start's iterations.
(iv)  **optuna tpe+hb**: ``run_optuna`` with TPE (seed r) and the Hyperband pruner over the
      bridge's policy space (13 functions, LR bounds 1e-4..1, the range the tuner's range test
      covers), trials added one at a time until the iterations actually trained (summed from
      the runs recorded in a per-study store, pruned runs counted as the short runs they are)
      reach the iterations tune cold spent in the same rep (the last trial can overshoot by
      less than one full run).
(v)   **random**: the same with Optuna's RandomSampler (seed r) and no pruner.

"found top-1" is the best top-1 as the method measured it (grid: best candidate's best top-1;
tune: ``recommendations[0].top1`` at its deepest rung; Optuna: ``study.best_value``). Then each
method's chosen policy is re-trained at full length with seeds 0, 1, 2 ("re-trained top-1",
mean +- std over those seeds and over the reps' choices), a common yardstick that removes the
luck of one seed. NB: digits has only a train and a test split, so both figures are measured on
the same test set; the re-trained figure is not a held-out estimate, only a seed-averaged one.

Usage::

    python benchmarks/bench_tuning.py [--reps 3] [--budget 13750] [--warm-budget 6875] \\
        [--workers 2] [--plot docs/results/tuning-digits.png] [--json out.json]
    python benchmarks/bench_tuning.py --target fashion-mnist-lenet --iters 1000 \\
        --eval-every 100 --budget 3500 --min-iters 50 \\
        --plot docs/results/tuning-fashion-mnist.png

Results and their reading: docs/results/tuning.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import optuna

from lrbench.data import load_dataset
from lrbench.store import Store
from lrbench.tasks import Task, get_task
from lrbench.trainer import train
from lrbench.tuning.optuna_bridge import run_optuna
from lrbench.tuning.rangetest import (
    DEFAULT_MANTISSAS,
    check_mantissas,
    fix_range_test,
    parse_mantissas,
    probe_fix,
)
from lrbench.tuning.recommend import recommend
from lrbench.tuning.tune import (
    DEFAULT_ETA,
    choose_mantissas,
    default_min_iters,
    range_candidates,
    range_test_iters,
    tune,
)

METHODS = ("grid", "tune cold", "tune warm", "optuna tpe+hb", "random")
#: --above-range's choices as tune's above_range
ABOVE_RANGE: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
RETRAIN_SEEDS = (0, 1, 2)
#: the eta of --json files written before the file recorded it (tune's default until then)
OLD_ETA = 3


def best_top1(result: Any) -> float:
    tops = [p.top1 for p in result.curve if math.isfinite(p.top1)]
    return max(tops) if tops else 0.0


def rep_seeds(rep: int, per_run: int) -> list[int]:
    """The seeds every evaluation of rep ``rep`` trains: ``[rep]`` for one seed per run, else
    ``per_run`` seeds from 100 + per_run * rep on (never the re-training seeds 0, 1, 2)."""
    if per_run == 1:
        return [rep]
    return [100 + per_run * rep + j for j in range(per_run)]


def _job(args: tuple[str, str, int]) -> Any:
    task, policy, seed = args
    return train(task, policy, seed, threads=1)


def _tune_row(rep: int, result: Any) -> dict[str, Any]:
    """A tune result as a table row: its best policy, found top-1, spend and rungs."""
    return {"rep": rep, "policy": result.best.policy, "found": result.best.top1,
            "iters": result.iterations_spent, "rung_iters": result.best.rung_iters,
            "rungs": [g.to_dict() for g in result.rungs]}


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    """A tune row for the log: without its rungs."""
    return {k: v for k, v in row.items() if k != "rungs"}


def run_jobs(jobs: list[tuple[str, str, int]], workers: int) -> list[Any]:
    if workers <= 1:
        return [_job(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_job, jobs))


def retrain(target: Task, policies: list[str], workers: int) -> dict[str, list[float]]:
    """Each policy's best top-1 at full length with the seeds ``RETRAIN_SEEDS``."""
    jobs = [(target, p, s) for p in policies for s in RETRAIN_SEEDS]
    out: dict[str, list[float]] = {p: [] for p in policies}
    for (_, p, _), r in zip(jobs, run_jobs(jobs, workers)):
        out[p].append(best_top1(r))
    return out


def candidates_for(task: Task, budget: int, seeds: list[int] | None = None,
                   above_range: bool | str = False, min_iters: int | None = None,
                   fill: bool = True, mantissas: tuple[float, ...] = DEFAULT_MANTISSAS,
                   eta: int = DEFAULT_ETA) -> list[str]:
    """tune's candidate set for ``task`` at ``budget``: its range test (as tune runs it with
    ``seeds``, default ``[0]``, and ``mantissas``), then ``range_candidates`` as tune calls it
    (with ``above_range``, ``min_iters``, ``fill`` and ``eta`` as tune's; the probe as tune
    runs it)."""
    seeds = seeds or [0]
    epoch = load_dataset(task.dataset).info.iters_per_epoch(task.batch_size)
    rt = range_test_iters(budget, epoch=epoch, full=task.max_iters, seeds=len(seeds),
                          mantissas=mantissas)
    rr = fix_range_test(task, iters=rt, seeds=seeds, mantissas=mantissas, threads=1)
    if rr.good_range is None:
        raise SystemExit(f"the range test of {task.dataset}/{task.model} found no good range")
    step = range_candidates(
        rr.good_range, epoch=epoch, full=task.max_iters, range_test=rr,
        above_range=above_range, left=budget - rr.iterations_spent,
        probe=lambda lr: probe_fix(rr, lr, threads=1), probe_cost=rt * len(seeds),
        min_iters=min_iters or default_min_iters(epoch), seeds=len(seeds), fill=fill,
        mantissas=mantissas, eta=eta)
    return [c.policy for c in step.candidates]


class BudgetStop:
    """Optuna callback: stop the study once the runs in ``store`` trained ``budget`` iterations."""

    def __init__(self, store: Store, budget: int) -> None:
        self.store, self.budget, self.spent = store, budget, 0

    def __call__(self, study: Any, trial: Any) -> None:
        self.spent = sum(r.iterations for r in self.store.runs())
        if self.spent >= self.budget:
            study.stop()


def run_study(target: Task, sampler: str, pruner: str, seed: int, budget: int,
              seeds: list[int]) -> tuple[str, float, int, int]:
    store = Store.open("sqlite://")
    stop = BudgetStop(store, budget)
    try:
        # a fixed study name: Hyperband assigns trials to brackets by a hash of the study
        # name and trial number, and the default name is random (the run would not repeat)
        study = run_optuna(target, 10_000, sampler=sampler, pruner=pruner, seed=seed,
                           store=store, seeds=tuple(seeds), threads=1, callbacks=[stop],
                           study_name=f"bench-{sampler}-{pruner}-seed{seed}")
        spent = sum(r.iterations for r in store.runs())
    finally:
        store.close()
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and t.value is not None and math.isfinite(t.value)]
    if done:
        best = max(done, key=lambda t: t.value)
        return best.user_attrs["policy"], float(best.value), spent, len(study.trials)
    # nothing completed (all pruned): the best top-1 seen in any trial
    best = max(study.trials, key=lambda t: max(t.user_attrs.get("top1s", [0.0])))
    return best.user_attrs["policy"], max(best.user_attrs.get("top1s", [0.0])), spent, \
        len(study.trials)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="digits-mlp", help="the task to tune (a preset)")
    ap.add_argument("--other", default="digits-cnn",
                    help="the prior task whose grid the warm start recommends from")
    ap.add_argument("--iters", type=int, default=None, help="the target's length (max_iters)")
    ap.add_argument("--eval-every", type=int, default=None, help="the target's eval_every")
    ap.add_argument("--min-iters", type=int, default=None,
                    help="tune's shortest rung (default: half an epoch)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--first-rep", type=int, default=0,
                    help="run reps FIRST .. FIRST + REPS - 1 (to add reps to an earlier run)")
    ap.add_argument("--seeds-per-run", type=int, default=1,
                    help="seeds every evaluation trains (scores are means over them); pass "
                         "budgets scaled to match")
    ap.add_argument("--budget", type=int, default=13750,
                    help="tune cold's budget (default 13750 = 25%% of the 55-candidate grid "
                         "on digits-mlp; with --above-range off, 7000 is 25%% of the 28)")
    ap.add_argument("--warm-budget", type=int, default=None,
                    help="tune warm's budget (default half of --budget)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--low-rungs", default="rescaled", choices=("rescaled", "prefix"),
                    help="tune's low_rungs (what a rung shorter than the task trains)")
    ap.add_argument("--no-fill", action="store_true",
                    help="tune with fill=False (no extra finalists from the leftover budget)")
    ap.add_argument("--no-shrink", action="store_true",
                    help="tune with shrink=False (lower rungs not shortened to pay for more "
                         "finalists; the default before the eighth version)")
    ap.add_argument("--above-range", nargs="?", const="on", default="auto",
                    choices=ABOVE_RANGE,
                    help="tune's above_range (the grid's candidates follow tune's): auto "
                         "(default: the candidates one step above the good FIX range when "
                         "they reach the full length at --budget), on (bare flag: always) or "
                         "off")
    ap.add_argument("--eta", type=int, default=DEFAULT_ETA,
                    help="tune's halving factor (lrbench tune --eta)")
    ap.add_argument("--grid", default="auto",
                    help="tune's range-test LRs per decade (mantissas; lrbench tune --grid): "
                         "auto (default, as tune's: 1,2,5 when the budget gives its runs at "
                         "least --min-iters, else 1,3), or e.g. 1,3 or 1,2,5; the grid's "
                         "candidates follow")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="the methods to run (comma-separated); the others come from --reuse")
    ap.add_argument("--reuse", default=None,
                    help="the --json file of an earlier run of the same set-up: its candidates, "
                         "warm-start policies, the rows of the methods not run, and re-trained "
                         "scores are taken from it")
    ap.add_argument("--plot", default="docs/results/tuning-digits.png")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.seeds_per_run < 1:
        ap.error(f"--seeds-per-run must be >= 1, got {args.seeds_per_run}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warm_budget = args.warm_budget or args.budget // 2
    above_range = ABOVE_RANGE[args.above_range]
    if args.eta < 2:
        ap.error(f"--eta must be >= 2, got {args.eta}")
    over = {k: v for k, v in (("max_iters", args.iters), ("eval_every", args.eval_every))
            if v is not None}
    target, other = get_task(args.target, **over), get_task(args.other)
    if args.grid.strip().lower() == "auto":  # what tune cold's 'auto' picks at --budget
        epoch = load_dataset(target.dataset).info.iters_per_epoch(target.batch_size)
        mantissas = choose_mantissas(args.budget, epoch=epoch, full=target.max_iters,
                                     min_iters=args.min_iters or default_min_iters(epoch),
                                     seeds=args.seeds_per_run)
    else:
        try:
            mantissas = check_mantissas(parse_mantissas(args.grid))
        except ValueError as e:
            ap.error(f"--grid: auto, or {e}")
    tune_options = {"low_rungs": args.low_rungs, "fill": not args.no_fill,
                    "shrink": not args.no_shrink, "above_range": above_range,
                    "mantissas": mantissas, "eta": args.eta}
    name = args.target + (f" ({target.max_iters} iterations)" if over else "")
    if args.first_rep < 0:
        ap.error(f"--first-rep must be >= 0, got {args.first_rep}")
    reps = list(range(args.first_rep, args.first_rep + args.reps))
    t0 = time.perf_counter()
    log = lambda *a: print(f"[{time.perf_counter() - t0:6.0f}s]", *a, file=sys.stderr,  # noqa
                           flush=True)
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    run = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := [m for m in run if m not in METHODS]:
        ap.error(f"unknown method {unknown[0]!r}; valid: {', '.join(METHODS)}")
    old: dict[str, Any] = {}
    if args.reuse:
        with open(args.reuse) as fh:
            old = json.load(fh)
        if old.get("seeds_per_run", 1) != args.seeds_per_run:
            ap.error(f"--reuse {args.reuse} ran {old.get('seeds_per_run', 1)} seed(s) per run, "
                     f"not {args.seeds_per_run}")
        if old.get("above_range", False) != above_range:
            ap.error(f"--reuse {args.reuse} ran with above_range={old.get('above_range', False)!r}"
                     f", not {above_range!r}: its candidates are not this run's")
        if tuple(old.get("mantissas", DEFAULT_MANTISSAS)) != mantissas:
            ap.error(f"--reuse {args.reuse} ran with --grid "
                     f"{','.join(f'{m:g}' for m in old.get('mantissas', DEFAULT_MANTISSAS))}, "
                     f"not {','.join(f'{m:g}' for m in mantissas)}: its candidates are not "
                     f"this run's")
    elif len(run) < len(METHODS):
        ap.error("running only some methods needs --reuse FILE for the others")
    old_rows = {m: {r["rep"]: r for r in old.get("rows", {}).get(m, [])} for m in METHODS}

    # the candidate sets (range tests, not counted anywhere)
    def our_candidates() -> list[str]:
        return candidates_for(target, args.budget, rep_seeds(0, args.seeds_per_run),
                              above_range=above_range, min_iters=args.min_iters,
                              fill=not args.no_fill, mantissas=mantissas, eta=args.eta)

    if old:
        cands, warm_policies = old["candidates"], old["warm_start"]
        log(f"{len(cands)} candidates and the warm-start policies from {args.reuse}")
        if old.get("eta", OLD_ETA) != args.eta and our_candidates() != cands:
            ap.error(f"--reuse {args.reuse} ran with --eta {old.get('eta', OLD_ETA)}, and "
                     f"with --eta {args.eta} tune's candidates differ from its")
    else:
        cands = our_candidates()
        # the prior: 25% of the other task's usual 28-candidate grid
        other_cands = candidates_for(other, 7 * other.max_iters, above_range=False)
        log(f"{len(cands)} candidates for {name}, {len(other_cands)} for {args.other}")
        # the prior: the other task's grid in a store (seed 0)
        prior = Store.open("sqlite://")
        info = load_dataset(other.dataset).info
        for r in run_jobs([(other, p, 0) for p in other_cands], args.workers):
            prior.record(r, dataset_info=info)
        warm_policies = recommend(prior, target).policies
        log(f"prior stored; recommend -> {warm_policies}")

    for rep in reps:
        seeds = rep_seeds(rep, args.seeds_per_run)
        for m in METHODS:
            if m not in run:
                rows[m].append(old_rows[m][rep])
        # (i) the grid
        if "grid" in run:
            res = run_jobs([(target, p, s) for p in cands for s in seeds], args.workers)
            k = len(seeds)
            scores = [statistics.mean(best_top1(r) for r in res[i * k:(i + 1) * k])
                      for i in range(len(cands))]
            i_best = max(range(len(cands)), key=scores.__getitem__)
            rows["grid"].append({"rep": rep, "policy": str(res[i_best * k].policy),
                                 "found": scores[i_best],
                                 "iters": sum(r.iterations for r in res)})
            log(f"rep {rep} grid: {rows['grid'][-1]}")
        # (ii) tune cold
        if "tune cold" in run:
            tc = tune(target, args.budget, seeds=seeds, threads=1, workers=args.workers,
                      min_iters=args.min_iters, progress=False, **tune_options)
            rows["tune cold"].append(_tune_row(rep, tc))
            log(f"rep {rep} tune cold: {_brief(rows['tune cold'][-1])}",
                f"warnings={list(tc.warnings)}")
        # (iii) tune warm
        if "tune warm" in run:
            tw = tune(target, warm_budget, seeds=seeds, warm_start=warm_policies, threads=1,
                      workers=args.workers, min_iters=args.min_iters, progress=False,
                      **tune_options)
            rows["tune warm"].append(_tune_row(rep, tw))
            log(f"rep {rep} tune warm: {_brief(rows['tune warm'][-1])}",
                f"warnings={list(tw.warnings)}")
        # (iv) Optuna TPE + Hyperband, (v) random search, at tune cold's spend
        cold_spent = next(r["iters"] for r in rows["tune cold"] if r["rep"] == rep)
        for method, sampler, pruner in (("optuna tpe+hb", "tpe", "hyperband"),
                                        ("random", "random", "none")):
            if method not in run:
                continue
            pol, found, spent, n = run_study(target, sampler, pruner, rep, cold_spent, seeds)
            rows[method].append({"rep": rep, "policy": pol, "found": found, "iters": spent,
                                 "trials": n})
            log(f"rep {rep} {method}: {rows[method][-1]}")
    for m in METHODS:
        rows[m].sort(key=lambda r: r["rep"])

    # re-train every chosen policy at full length, seeds 0..2 (each distinct policy once; the
    # scores of policies an earlier run re-trained are reused)
    known = {r["policy"]: r["retrained"] for m in METHODS for r in old_rows[m].values()
             if "retrained" in r}
    chosen = sorted({row["policy"] for m in METHODS for row in rows[m]} - set(known))
    retrained = retrain(target, chosen, args.workers)
    retrained.update(known)
    log(f"re-trained {len(chosen)} policies x {len(RETRAIN_SEEDS)} seeds "
        f"({len(known)} known from {args.reuse})")

    grid_iters = statistics.mean(r["iters"] for r in rows["grid"])
    table = []
    for m in METHODS:
        its = [r["iters"] for r in rows[m]]
        found = [r["found"] for r in rows[m]]
        test = [x for r in rows[m] for x in retrained[r["policy"]]]
        for r in rows[m]:
            r["retrained"] = retrained[r["policy"]]
        table.append({
            "method": m, "iters": statistics.mean(its),
            "found_mean": statistics.mean(found),
            "found_std": statistics.stdev(found) if len(found) > 1 else 0.0,
            "test_mean": statistics.mean(test),
            "test_std": statistics.stdev(test) if len(test) > 1 else 0.0,
            "ratio": statistics.mean(its) / grid_iters,
        })
    wall = time.perf_counter() - t0

    print(f"{name}, {len(reps)} reps x {args.seeds_per_run} seed(s) per run, "
          f"tune budget {args.budget} (warm {warm_budget}), "
          f"{len(cands)} candidates; machine: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; wall {wall:.0f} s")
    print()
    print("| method | iterations spent (mean) | found top-1 (mean ± std over reps) "
          "| re-trained top-1 (mean ± std) | iterations / grid |")
    print("|---|---:|---:|---:|---:|")
    for t in table:
        print(f"| {t['method']} | {t['iters']:,.0f} | {100 * t['found_mean']:.2f} ± "
              f"{100 * t['found_std']:.2f} | {100 * t['test_mean']:.2f} ± "
              f"{100 * t['test_std']:.2f} | {t['ratio']:.3f} |")
    print()
    print("| method | rep | iterations | found top-1 | re-trained (seeds 0,1,2) | policy |")
    print("|---|---:|---:|---:|---:|---|")
    for m in METHODS:
        for r in rows[m]:
            rt = r["retrained"]
            print(f"| {m} | {r['rep']} | {r['iters']:,} | {100 * r['found']:.2f} | "
                  f"{100 * statistics.mean(rt):.2f} | `{r['policy']}` |")
    print()
    print(f"warm-start policies (recommend from the {args.other} grid): {warm_policies}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9.5, 4.5))
        markers = dict(zip(METHODS, ("s", "o", "^", "D", "v")))
        for i, m in enumerate(METHODS):
            xs = [r["iters"] for r in rows[m]]
            ax.scatter(xs, [100 * r["found"] for r in rows[m]], marker=markers[m],
                       color=f"C{i}", label=f"{m} (found)")
            ax.scatter(xs, [100 * statistics.mean(r["retrained"]) for r in rows[m]],
                       marker=markers[m], facecolors="none", edgecolors=f"C{i}",
                       label=f"{m} (re-trained, seeds 0-2)")
        ax.set_xscale("log")
        ax.set_xlabel("training iterations spent")
        ax.set_ylabel("best top-1 (%)")
        per_run = f", {args.seeds_per_run} seeds per run" if args.seeds_per_run > 1 else ""
        ax.set_title(f"{name}: best top-1 vs iterations spent ({len(reps)} reps{per_run})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        os.makedirs(os.path.dirname(args.plot) or ".", exist_ok=True)
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"table": table, "rows": rows, "warm_start": warm_policies,
                       "candidates": cands, "seeds_per_run": args.seeds_per_run,
                       "above_range": above_range, "mantissas": list(mantissas),
                       "eta": args.eta, "shrink": not args.no_shrink, "budget": args.budget,
                       "warm_budget": warm_budget, "wall_s": wall}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
