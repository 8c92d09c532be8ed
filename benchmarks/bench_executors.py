"""Local process pool vs Ray: per-run overhead and throughput on short runs (issue #7).

The same small benchmark (policies x seeds of a task, short runs) goes through the real runner
(``run_benchmark``: store, claims, workers recording their runs) on each executor, with 1 and 2
workers of one torch thread. Each executor is started once per worker count (its start-up is
timed apart), warmed up by one untimed benchmark (the workers import torch and load the data),
then timed over several rounds on a fresh SQLite database each, local and Ray alternating so
that background load hits both alike. The pure training time of one run, measured in this
process, gives the overhead: ``wall x workers / runs - training time``.

    python benchmarks/bench_executors.py                         # digits-mlp, 50 iterations, 8 runs
    python benchmarks/bench_executors.py --iters 200 --rounds 5 --workers 1 2

Ray here is a local instance started by the script (``ray.init(num_cpus=cores)``): its tasks,
object store and events actor, without a network between nodes. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lrbench.executors.local import LocalExecutor, available_cores
from lrbench.runner import Benchmark, run_benchmark
from lrbench.store import open_store

POLICIES = ["FIX(k0=0.05)", "COS(k0=0.1, k1=0.001, l=50)", "SIN2(k0=0.01, k1=0.1, l=20)",
            "EXP(k0=0.1, gamma=0.99)"]


def timed_benchmark(bench: Benchmark, ex: Any) -> float:
    """Wall time of one benchmark on ``ex``, on a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        try:
            start = time.perf_counter()
            out = run_benchmark(bench, store, executor=ex, progress=False)
            wall = time.perf_counter() - start
        finally:
            store.close()
    if out.trained != bench.n_runs or out.failed:
        raise SystemExit(f"expected {bench.n_runs} finished runs, got {out}")
    return wall


def training_time(bench: Benchmark, repeats: int = 5) -> float:
    """Median seconds of one run's ``train()`` call in this process (warm, one thread)."""
    from lrbench.trainer import train

    train(bench.task, bench.policies[0], 0, threads=1)  # warm-up: imports, data
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        train(bench.task, bench.policies[i % len(bench.policies)], 0, threads=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits-mlp", help="task preset")
    ap.add_argument("--iters", type=int, default=50, help="iterations per run")
    ap.add_argument("--repeats", type=int, default=2, help="seeds per policy (runs: 4 x this)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per executor")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    args = ap.parse_args()

    import ray

    from lrbench.executors.ray import RayExecutor

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 180))
    cores = available_cores()
    bench = Benchmark.make(args.task, POLICIES, repeats=args.repeats, iters=args.iters,
                           eval_every=max(1, args.iters // 5))
    n = bench.n_runs
    t_train = training_time(bench)
    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)
    ray_start = time.perf_counter() - start
    console.print(f"{cores} cores; {n} runs of {args.task} x {args.iters} iterations; "
                  f"training alone {1000 * t_train:.0f} ms a run; ray.init {ray_start:.1f} s")

    rows = []
    try:
        for w in args.workers:
            starts: dict[str, float] = {}
            executors: dict[str, Any] = {}
            for name, make in (("local", lambda w=w: LocalExecutor(workers=w, threads=1)),
                               ("ray", lambda w=w: RayExecutor(workers=w, threads=1))):
                t0 = time.perf_counter()
                executors[name] = make()
                starts[name] = time.perf_counter() - t0
                warm = time.perf_counter()
                timed_benchmark(bench, executors[name])  # workers import torch, load the data
                starts[name + " warm-up"] = time.perf_counter() - warm
            walls: dict[str, list[float]] = {"local": [], "ray": []}
            for r in range(args.rounds):
                for name in (("local", "ray") if r % 2 == 0 else ("ray", "local")):
                    walls[name].append(timed_benchmark(bench, executors[name]))
            for ex in executors.values():
                ex.shutdown()
            med = {k: statistics.median(v) for k, v in walls.items()}
            over = {k: 1000 * (med[k] * w / n - t_train) for k in med}
            rows.append((w, starts, med, over))
            console.print(f"  {w} worker(s): local " + " ".join(f"{x:.2f}" for x in walls["local"])
                          + "; ray " + " ".join(f"{x:.2f}" for x in walls["ray"]))
    finally:
        ray.shutdown()

    table = Table(title=f"{n} runs of {args.task} x {args.iters} iterations, median of "
                        f"{args.rounds} rounds (start-up and warm-up not included)")
    for col in ("workers", "local wall (s)", "ray wall (s)", "ray / local",
                "local runs/s", "ray runs/s", "local overhead/run (ms)",
                "ray overhead/run (ms)", "start-up local / ray (s)",
                "first (cold) benchmark local / ray (s)"):
        table.add_column(col, justify="right")
    for w, starts, med, over in rows:
        table.add_row(
            str(w), f"{med['local']:.2f}", f"{med['ray']:.2f}", f"{med['ray'] / med['local']:.2f}",
            f"{n / med['local']:.1f}", f"{n / med['ray']:.1f}", f"{over['local']:.0f}",
            f"{over['ray']:.0f}", f"{starts['local']:.1f} / {starts['ray']:.1f}",
            f"{starts['local warm-up']:.1f} / {starts['ray warm-up']:.1f}")
    console.print(table)
    if len(rows) > 1:
        base = rows[0]
        for w, _, med, _ in rows[1:]:
            console.print(f"speed-up {base[0]} -> {w} workers: local "
                          f"{base[2]['local'] / med['local']:.2f}x, ray "
                          f"{base[2]['ray'] / med['ray']:.2f}x")


if __name__ == "__main__":
    main()
