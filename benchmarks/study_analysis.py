"""Does a study support the paper's finding? Cyclic vs decaying policies, accuracy vs iterations.

Reads a finished benchmark from the LR database and prints, as Markdown:

1. the best top-1 each policy reached by several points of training (mean ± std over seeds;
   a diverged seed counts as the ranking counts it, and the number of diverged seeds is shown);
2. the first evaluation at which the policy's mean top-1 reaches the baseline's final best
   (the "iterations to the default's accuracy": fewer is cheaper);
3. cyclic vs decaying: the mean over the policies of each kind.

    python benchmarks/study_analysis.py --db sqlite:///fmnist.sqlite --task fashion-mnist-lenet \
        --iters 2000 --eval-every 100 --baseline "NSTEP(k0=0.01, gamma=0.9, l=[1000, 1400, 1600, 1800, 1900])"
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

import numpy as np

from lrbench import parse
from lrbench.results import RunResult
from lrbench.store import open_store
from lrbench.tasks import get_task


def best_by(run: RunResult, iteration: int) -> float:
    """The best top-1 measured up to ``iteration`` (0 for a run that diverged before any)."""
    seen = [p.top1 for p in run.curve if p.iteration <= iteration and math.isfinite(p.top1)]
    return max(seen, default=0.0)


def mean_curve(runs: list[RunResult], points: list[int]) -> np.ndarray:
    return np.array([[best_by(r, it) for it in points] for r in runs]).mean(axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--iters", type=int, required=True)
    ap.add_argument("--eval-every", type=int, required=True)
    ap.add_argument("--baseline", required=True, help="the policy to measure against")
    ap.add_argument("--points", default="0.25,0.5,0.75,1", help="fractions of training")
    args = ap.parse_args()
    task = get_task(args.task, max_iters=args.iters, eval_every=args.eval_every)
    store = open_store(args.db)
    try:
        runs = [r for r in store.runs(task=task) if r.status != "failed"]
    finally:
        store.close()
    by_policy: dict[str, list[RunResult]] = defaultdict(list)
    for r in runs:
        by_policy[str(parse(r.policy))].append(r)
    baseline = str(parse(args.baseline))
    if baseline not in by_policy:
        raise SystemExit(f"no runs of the baseline {baseline} for this task")
    points = [int(round(float(f) * args.iters)) for f in args.points.split(",")]
    evals = list(range(args.eval_every, args.iters + 1, args.eval_every))
    target = float(mean_curve(by_policy[baseline], [args.iters])[0])

    print(f"Best top-1 (%) reached by iteration, mean ± std over seeds; baseline {baseline} "
          f"ends at {100 * target:.2f}%.\n")
    print("| policy | kind | seeds (diverged) | " + " | ".join(f"by {p}" for p in points)
          + f" | first iteration at {100 * target:.2f}% | by {args.iters}, seeds that trained |")
    print("|---|---|---|" + "---:|" * len(points) + "---:|---:|")
    kinds: dict[str, list[tuple[np.ndarray, float]]] = defaultdict(list)
    order = sorted(by_policy, key=lambda p: -mean_curve(by_policy[p], [args.iters])[0])
    for policy in order:
        rs = by_policy[policy]
        table = np.array([[best_by(r, it) for it in points] for r in rs])
        mean, std = table.mean(axis=0), table.std(axis=0)
        curve = mean_curve(rs, evals)
        reach = next((it for it, v in zip(evals, curve) if v >= target - 1e-12), None)
        kind = parse(policy).kind
        kinds[kind].append((mean, math.inf if reach is None else reach))
        n_div = sum(r.status == "diverged" for r in rs)
        cells = " | ".join(f"{100 * m:.2f} ± {100 * s:.2f}" for m, s in zip(mean, std))
        trained = [best_by(r, args.iters) for r in rs if r.status != "diverged"]
        alive = (f"{100 * np.mean(trained):.2f} ± {100 * np.std(trained):.2f}" if trained
                 else "-")
        print(f"| `{policy}` | {kind} | {len(rs)} ({n_div}) | {cells} | "
              f"{'not reached' if reach is None else reach} | {alive} |")
    print("\nBy kind (mean over the policies of each kind):\n")
    print("| kind | policies | " + " | ".join(f"by {p}" for p in points)
          + " | reach the baseline (policies) |")
    print("|---|---:|" + "---:|" * len(points) + "---|")
    for kind, rows in sorted(kinds.items()):
        means = np.mean([m for m, _ in rows], axis=0)
        reached = [r for _, r in rows if math.isfinite(r)]
        cells = " | ".join(f"{100 * m:.2f}" for m in means)
        print(f"| {kind} | {len(rows)} | {cells} | {len(reached)} of {len(rows)}"
              + (f", median iteration {int(np.median(reached))}" if reached else "") + " |")


if __name__ == "__main__":
    main()
