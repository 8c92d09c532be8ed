"""How should the local executor split the cores? Runs x threads layouts side by side.

On a machine with C cores the runner can train C runs at once with one torch thread each, or
fewer runs with more threads each. This script times the same small benchmark (policies x seeds
on a task) under each layout, alternating the layouts round by round so that background load
hits them alike, on a fresh SQLite database each time, through the real runner
(``run_benchmark``: process pool, store, claims), and prints the wall time of each layout and
its ratio to the default layout (one single-threaded worker per core).

    python benchmarks/bench_runner.py                       # digits-cnn and fashion-mnist-lenet
    python benchmarks/bench_runner.py --task digits-mlp --iters 1000 --rounds 5

A ratio above 1 means the layout is slower than the default. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lrbench.executors.local import available_cores
from lrbench.runner import Benchmark, run_benchmark
from lrbench.store import open_store

POLICIES = ["FIX(k0=0.01)", "SIN2(k0=0.01, k1=0.06, l=100)", "COS(k0=0.05, k1=0.001, l=200)",
            "INV(k0=0.01, gamma=0.0005, p=0.75)"]


def layouts(cores: int) -> list[tuple[int, int]]:
    """(workers, threads): the default first, then every other split of the cores, then 1 x 1."""
    out = [(cores, 1)]
    out += [(cores // t, t) for t in range(2, cores + 1) if cores % t == 0]
    if (1, 1) not in out:
        out.append((1, 1))
    return out


def time_layout(bench: Benchmark, workers: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        try:
            start = time.perf_counter()
            out = run_benchmark(bench, store, workers=workers, threads=threads, progress=False)
            wall = time.perf_counter() - start
        finally:
            store.close()
    if out.trained != bench.n_runs:
        raise SystemExit(f"expected {bench.n_runs} runs, trained {out.trained}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", help="task preset (repeatable)")
    ap.add_argument("--iters", type=int, default=None, help="iterations per run")
    ap.add_argument("--repeats", type=int, default=2, help="seeds per policy")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per layout")
    args = ap.parse_args()
    tasks = args.task or ["digits-cnn", "fashion-mnist-lenet"]
    default_iters = {"digits-cnn": 1000, "digits-mlp": 1000, "fashion-mnist-lenet": 300}
    cores = available_cores()
    console = Console()
    console.print(f"{cores} cores; layouts (workers x threads): "
                  + ", ".join(f"{w}x{t}" for w, t in layouts(cores)))
    for task in tasks:
        iters = args.iters or default_iters.get(task, 500)
        bench = Benchmark.make(task, POLICIES, repeats=args.repeats, iters=iters,
                               eval_every=max(1, iters // 5))
        times: dict[tuple[int, int], list[float]] = {lay: [] for lay in layouts(cores)}
        for r in range(args.rounds):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for lay in order:
                times[lay].append(time_layout(bench, *lay))
                console.print(f"  {task} round {r + 1}: {lay[0]}x{lay[1]} "
                              f"{times[lay][-1]:.1f} s", highlight=False)
        base = statistics.median(times[(cores, 1)])
        table = Table(title=f"{task}: {bench.n_runs} runs x {iters} iterations, "
                            f"median of {args.rounds} rounds")
        for col in ("workers x threads", "wall (s)", "runs / min", "ratio to default",
                    "rounds (s)"):
            table.add_column(col, justify="right")
        for lay, ts in times.items():
            med = statistics.median(ts)
            table.add_row(f"{lay[0]} x {lay[1]}" + (" (default)" if lay == (cores, 1) else ""),
                          f"{med:.1f}", f"{60 * bench.n_runs / med:.1f}", f"{med / base:.2f}",
                          ", ".join(f"{t:.1f}" for t in ts))
        console.print(table)


if __name__ == "__main__":
    main()
