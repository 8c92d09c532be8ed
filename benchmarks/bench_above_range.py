"""tune with and without ``above_range`` at the same budget, side by side (issue #6,
docs/results/tuning.md "Candidates above the good FIX range").

The tuning benchmark gives each setting 25% of *its own* grid, so with ``--above-range`` tune
gets about twice the iterations. This script holds the budget fixed: per rep r (the seeds
``bench_tuning.rep_seeds(r, K)``), ``tune(target, BUDGET, seeds, above_range=False)`` and the
same with ``above_range=True``; then each chosen policy is re-trained at full length with seeds
0, 1, 2 (as ``bench_tuning.py`` does). It prints both settings per rep, the mean of each and the
difference (with - without) in points, and the ratio of the iterations spent.

Usage::

    python benchmarks/bench_above_range.py [--reps 3] [--budget 7000] [--seeds-per-run 1] \\
        [--json out.json]
    python benchmarks/bench_above_range.py --target fashion-mnist-lenet --iters 1000 \\
        --eval-every 100 --budget 3500 --min-iters 50
    python benchmarks/bench_above_range.py --replot a.json b.json --plot out.png  # one panel each
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

from bench_tuning import rep_seeds, retrain

from lrbench.tasks import get_task
from lrbench.tuning import tune

#: tune's defaults when the runs in docs/results were recorded (before its seventh version)
RECORDED: dict[str, Any] = {"eta": 3, "mantissas": (1, 3), "shrink": False}

SETTINGS = {"without": False, "with": True}


def plot(runs: list[dict[str, Any]], path: str) -> None:
    """One panel per run (a ``--json`` file): found and re-trained top-1 of each rep, without
    and with the candidates above the range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs) + 1, 3.6), squeeze=False)
    for ax, run in zip(axes[0], runs):
        for x, name in enumerate(SETTINGS):
            rows = [r for r in run["rows"] if r["setting"] == name]
            for key, marker, shift, label in (("found", "o", -0.15, "found"),
                                              ("retrained", "x", 0.15, "re-trained (seeds 0-2)")):
                ax.scatter([x + shift + 0.04 * (r["rep"] - 1) for r in rows],
                           [100 * r[key] for r in rows], marker=marker, color=f"C{x}",
                           label=label if x == 0 else None)
        ax.set_xticks(range(len(SETTINGS)), list(SETTINGS))
        ax.set_xlim(-0.5, len(SETTINGS) - 0.5)
        ax.set_title(f"{run['target']}, budget {run['budget']:,}\n"
                     f"{run['seeds_per_run']} seed(s) per run", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best top-1 (%)")
    for ax in axes[0]:
        ax.set_xlabel("above_range")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("tune at the same budget, without and with the candidates above the range",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="digits-mlp")
    ap.add_argument("--iters", type=int, default=None, help="the target's length (max_iters)")
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--min-iters", type=int, default=None)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seeds-per-run", type=int, default=1)
    ap.add_argument("--budget", type=int, default=7000, help="both settings' budget")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="a PNG of this run (or of the --replot runs)")
    ap.add_argument("--replot", nargs="+", default=None, metavar="JSON",
                    help="only plot these --json files of earlier runs (with --plot)")
    args = ap.parse_args(argv)
    if args.replot:
        if not args.plot:
            ap.error("--replot needs --plot PATH")
        runs = []
        for name in args.replot:
            with open(name) as fh:
                runs.append(json.load(fh))
        plot(runs, args.plot)
        return 0
    for flag in ("reps", "seeds_per_run", "budget", "workers"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    over = {k: v for k, v in (("max_iters", args.iters), ("eval_every", args.eval_every))
            if v is not None}
    target = get_task(args.target, **over)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for rep in range(args.reps):
        seeds = rep_seeds(rep, args.seeds_per_run)
        for name, above in SETTINGS.items():
            r = tune(target, args.budget, seeds=seeds, threads=1, workers=args.workers,
                     min_iters=args.min_iters, progress=False, above_range=above,
                     **RECORDED)
            rows.append({"rep": rep, "setting": name, "policy": r.best.policy,
                         "found": r.best.top1, "iters": r.iterations_spent,
                         "candidates": len(r.candidates), "above_lr": r.above_lr,
                         "warnings": list(r.warnings)})
            print(json.dumps(rows[-1]), flush=True)
    tops = retrain(target, sorted({row["policy"] for row in rows}), args.workers)
    for row in rows:
        row["retrained"] = statistics.mean(tops[row["policy"]])
    wall = time.perf_counter() - t0

    def mean(setting: str, key: str) -> float:
        return statistics.mean(row[key] for row in rows if row["setting"] == setting)

    print(f"\n{args.target} ({target.max_iters} iterations), {args.reps} reps x "
          f"{args.seeds_per_run} seed(s) per run, budget {args.budget} for both; machine: "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"wall {wall:.0f} s\n")
    print("| rep | above_range | candidates | iterations | found top-1 | re-trained "
          "(seeds 0,1,2) | policy |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['rep']} | {row['setting']} | {row['candidates']} | {row['iters']:,} | "
              f"{100 * row['found']:.2f} | {100 * row['retrained']:.2f} | `{row['policy']}` |")
    print()
    for key, label in (("found", "found top-1"), ("retrained", "re-trained top-1")):
        a, b = mean("without", key), mean("with", key)
        print(f"{label}: without {100 * a:.2f}, with {100 * b:.2f}, "
              f"difference {100 * (b - a):+.2f} points")
    print(f"iterations spent, with / without: {mean('with', 'iters') / mean('without', 'iters'):.3f}")
    run = {"rows": rows, "budget": args.budget, "target": args.target,
           "max_iters": target.max_iters, "seeds_per_run": args.seeds_per_run, "wall_s": wall}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(run, f, indent=1)
    if args.plot:
        plot([run], args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
