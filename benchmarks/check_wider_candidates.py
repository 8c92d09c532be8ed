"""A quick check (issue #6, docs/results/tuning.md "What is left"): candidates above the good
FIX range on digits-mlp.

The 28 candidates ``tune`` generates from the good FIX range (0.03, 0.1) are joined by the 27
``generate_candidates(..., above=0.3)`` adds: ``k1`` of the cyclic policies and ``k0`` of the
decaying ones at 0.3 (55 in all, what ``tune(above_range=True)`` generates there). Per rep r (seed r) it prints the best top-1 of the grid of the 28 and of
the 55, and what ``tune`` finds with the 55 as ``warm_start`` and a budget of 25% of their grid
minus the range test's 963 iterations per seed that a cold tune spends on digits at budget 7,000
per seed. With ``--seeds-per-run K`` every evaluation trains K seeds (those of rep r in
``bench_tuning.rep_seeds``) and scores their mean, as ``bench_tuning.py --seeds-per-run K``.

Usage::

    python benchmarks/check_wider_candidates.py [--reps 3] [--workers 2] [--seeds-per-run 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor

from bench_tuning import rep_seeds

from lrbench.tasks import get_task
from lrbench.trainer import train
from lrbench.tuning import tune
from lrbench.tuning.candidates import generate_candidates

TASK = get_task("digits-mlp")
EPOCH = 42  # digits: 1347 training samples // batch 32
RANGE_TEST = 963  # tune cold's range test on digits at budget 7,000 (docs/results/tuning.md)


def best_top1(job: tuple[str, int]) -> float:
    policy, seed = job
    return max(p.top1 for p in train(TASK, policy, seed, threads=1).curve)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds-per-run", type=int, default=1)
    args = ap.parse_args(argv)
    k = args.seeds_per_run
    present = [c.policy for c in generate_candidates((0.03, 0.1), epoch=EPOCH, length=1000,
                                                     best_lr=0.1)]
    union = [c.policy for c in generate_candidates((0.03, 0.1), epoch=EPOCH, length=1000,
                                                   best_lr=0.1, above=0.3)]
    budget = k * (TASK.max_iters * len(union) // 4 - RANGE_TEST)
    print(f"{len(present)} candidates, {len(union)} with the wider ones; {k} seed(s) per run; "
          f"tune budget {budget}")
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for rep in range(args.reps):
            seeds = rep_seeds(rep, k)
            tops = list(pool.map(best_top1, [(p, s) for p in union for s in seeds]))
            scores = {p: statistics.mean(tops[i * k:(i + 1) * k]) for i, p in enumerate(union)}
            # tune's defaults when these runs were recorded (the third version)
            r = tune(TASK, budget, warm_start=union, seeds=seeds, threads=1,
                     workers=args.workers, progress=False, eta=3, shrink=False)
            rows.append({
                "rep": rep, "grid_present": max(scores[p] for p in present),
                "grid_wider": max(scores.values()), "tune_wider": r.best.top1,
                "tune_policy": r.best.policy, "spent": r.iterations_spent,
                "plan": [(p.iters, p.candidates) for p in r.plan],
            })
            print(json.dumps(rows[-1]), flush=True)
    for key in ("grid_present", "grid_wider", "tune_wider"):
        print(f"{key}: mean {100 * statistics.mean(r[key] for r in rows):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
