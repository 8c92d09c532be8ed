"""Benchmark of the LR database (issue #4).

1. Recording: 10,000 runs with 20-point curves, runs/second, SQLite and PostgreSQL side by side,
   one transaction per run (``Store.record``: what the trainer does) and batched
   (``Store.record_many``: what an import does).
2. The leaderboard: per-policy aggregates of one task over a database of 100,000 runs
   (10 tasks x 1,000 policies x 10 seeds), timed from Python (median of repeated calls) and by
   ``EXPLAIN ANALYZE`` on PostgreSQL, with and without the leaderboard index.

Usage:
    python benchmarks/bench_store.py [--pg URL] [--runs 10000] [--leaderboard-runs 100000]
                                     [--markdown FILE]

``--pg`` (or $LRBENCH_TEST_POSTGRES_URL) names a PostgreSQL server; each part creates its own
scratch database there and drops it afterwards. Without it only SQLite is measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text

from lrbench.results import RunResult
from lrbench.store import Store
from lrbench.store.testing import make_curve, small_task, temporary_postgres_database


def _results(n: int, n_points: int, *, n_tasks: int = 1, n_seeds: int = 10) -> list[RunResult]:
    """``n`` distinct runs: tasks x policies x seeds, with ``n_points``-point curves."""
    tasks = [small_task(model=f"model-{t}") for t in range(n_tasks)]
    per_task = n // n_tasks
    n_policies = max(1, per_task // n_seeds)
    curves = [make_curve(n_points, seed=s) for s in range(50)]
    out = []
    for ti, task in enumerate(tasks):
        for pi in range(n_policies):
            policy = f"SIN2(k0={(pi + 1) / 100000}, k1=0.06, l=200)"
            for seed in range(n_seeds):
                curve = curves[(ti * 7 + pi * 3 + seed) % len(curves)]
                out.append(RunResult(task=task, policy=policy, seed=seed, status="done",
                                     stop_reason="max_iters", iterations=curve[-1].iteration,
                                     curve=curve, wall_time=10.0 + seed, train_time=9.0,
                                     n_params=1000, host="bench"))
    return out[:n]


def _sqlite_url(tmpdir: str, name: str) -> str:
    return f"sqlite:///{Path(tmpdir) / name}"


def bench_recording(backends: dict[str, str], n: int, n_points: int) -> list[dict]:
    rows = []
    results = _results(n, n_points)
    for name, make_url in backends.items():
        for mode in ("record", "record_many"):
            with ExitStack() as stack:
                url = make_url(stack, f"rec-{mode}.sqlite")
                with Store.open(url) as store:
                    store.record(results[0])  # the task and dataset rows exist, as in real use
                    todo = results[1:]
                    started = time.perf_counter()
                    if mode == "record":
                        for r in todo:
                            store.record(r)
                    else:
                        store.record_many(todo, batch_size=500)
                    elapsed = time.perf_counter() - started
                    counts = store.counts()
                    assert counts["runs"] == n and counts["curve_points"] == n * n_points
            rows.append({"backend": name, "mode": mode, "runs": len(todo),
                         "seconds": elapsed, "runs_per_s": len(todo) / elapsed})
            print(f"  {name:10s} {mode:12s} {len(todo) / elapsed:8.0f} runs/s "
                  f"({elapsed:.1f} s)", flush=True)
    return rows


def _explain_ms(store: Store, sql: str) -> tuple[float, str]:
    with store.engine.connect() as conn:
        plan = [r[0] for r in conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))]
    total = next(float(line.split(":")[1].split()[0]) for line in plan
                 if line.startswith("Execution Time"))
    return total, "\n".join(plan)


def _median_ms(fn, repeat: int = 15) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_leaderboard(backends: dict[str, str], n: int) -> tuple[list[dict], str]:
    rows = []
    plan_text = ""
    n_tasks = 10
    results = _results(n, 2, n_tasks=n_tasks, n_seeds=10)
    task = results[n // 2].task
    for name, make_url in backends.items():
        with ExitStack() as stack:
            url = make_url(stack, "leaderboard.sqlite")
            with Store.open(url) as store:
                t0 = time.perf_counter()
                store.record_many(results, batch_size=1000)
                load_s = time.perf_counter() - t0
                print(f"  {name:10s} loaded {n} runs in {load_s:.0f} s", flush=True)
                with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.execute(text("VACUUM ANALYZE" if name == "postgresql" else "ANALYZE"))
                top = store.leaderboard(task, limit=10)
                assert len(top) == 10 and all(s.runs == 10 for s in top)
                variants = [("with ix_runs_leaderboard", None)]
                if name == "postgresql":
                    variants.append(("without it (unique key index only)", "DROP"))
                for label, action in variants:
                    if action == "DROP":
                        with store.engine.begin() as c:
                            c.execute(text("DROP INDEX ix_runs_leaderboard"))
                            c.execute(text("ANALYZE runs"))
                    py_ms = _median_ms(lambda: store.leaderboard(task, limit=10))
                    all_ms = _median_ms(lambda: store.aggregates(task))
                    explain = None
                    if name == "postgresql":
                        q = store._aggregate_query(store._find_task_id(task), limit=10)
                        sql = str(q.compile(store.engine, compile_kwargs={"literal_binds": True}))
                        explain, plan = _explain_ms(store, sql)
                        if action is None:
                            plan_text = plan
                    rows.append({"backend": name, "index": label, "runs": n,
                                 "top10_ms": py_ms, "all_ms": all_ms, "explain_ms": explain})
                    print(f"  {name:10s} {label:36s} top-10 {py_ms:6.1f} ms, all policies "
                          f"{all_ms:6.1f} ms, EXPLAIN ANALYZE "
                          f"{'-' if explain is None else f'{explain:.1f} ms'}", flush=True)
    return rows, plan_text


def markdown(rec: list[dict], lb: list[dict], plan: str, args: argparse.Namespace) -> str:
    import sqlalchemy

    lines = [
        "## LR database (issue #4)",
        "",
        f"`python benchmarks/bench_store.py` on {platform.machine()} "
        f"({os.cpu_count()} CPUs shared with other jobs), Python {platform.python_version()}, "
        f"SQLAlchemy {sqlalchemy.__version__}, SQLite {_sqlite_version()}"
        + (f", PostgreSQL {args.pg_version} (local server, default settings: "
           "`synchronous_commit=on`)" if args.pg_version else "") + ".",
        "",
        f"### Recording {args.runs:,} runs with {args.points}-point curves",
        "",
        "| backend | how | runs | seconds | runs/s |",
        "|---|---|---:|---:|---:|",
    ]
    how = {"record": "`record()`: one transaction per run (the trainer)",
           "record_many": "`record_many()`: 500 runs per transaction (import)"}
    for r in rec:
        lines.append(f"| {r['backend']} | {how[r['mode']]} | {r['runs']:,} | {r['seconds']:.1f} "
                     f"| {r['runs_per_s']:,.0f} |")
    lines += [
        "",
        f"### Leaderboard over {args.leaderboard_runs:,} runs",
        "",
        "10 tasks x 1,000 policies x 10 seeds; the query aggregates one task's 10,000 runs by "
        "policy (mean and population std of 9 metrics, count, diverged count) and ranks by mean "
        "top-1. Times: median of 15 calls of `Store.leaderboard(task, limit=10)` / "
        "`Store.aggregates(task)` (all 1,000 policies, rows built in Python), and the server's "
        "`EXPLAIN ANALYZE` execution time of the top-10 query.",
        "",
        "| backend | index | top-10 (ms) | all policies (ms) | EXPLAIN ANALYZE (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in lb:
        ex = "-" if r["explain_ms"] is None else f"{r['explain_ms']:.1f}"
        lines.append(f"| {r['backend']} | {r['index']} | {r['top10_ms']:.1f} | "
                     f"{r['all_ms']:.1f} | {ex} |")
    if plan:
        lines += ["", "PostgreSQL plan with the index:", "", "```", plan, "```"]
    lines.append("")
    return "\n".join(lines)


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default=os.environ.get("LRBENCH_TEST_POSTGRES_URL"))
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--leaderboard-runs", type=int, default=100_000)
    ap.add_argument("--markdown", help="append the results, as Markdown, to this file")
    args = ap.parse_args()

    tmpdir = tempfile.mkdtemp(prefix="lrbench-bench-")
    try:
        run(args, tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def run(args: argparse.Namespace, tmpdir: str) -> None:
    backends = {"sqlite": lambda stack, name: _sqlite_url(tmpdir, name)}
    args.pg_version = None
    if args.pg:
        backends["postgresql"] = lambda stack, name: stack.enter_context(
            temporary_postgres_database(args.pg, prefix="lrbench_bench"))
        with ExitStack() as stack, Store.open(backends["postgresql"](stack, "")) as s:
            args.pg_version = s.info()["server_version"].split()[0]
    else:
        print("no PostgreSQL URL (--pg or $LRBENCH_TEST_POSTGRES_URL): SQLite only",
              file=sys.stderr)

    print(f"recording {args.runs} runs with {args.points}-point curves", flush=True)
    rec = bench_recording(backends, args.runs, args.points)
    print(f"leaderboard over {args.leaderboard_runs} runs", flush=True)
    lb, plan = bench_leaderboard(backends, args.leaderboard_runs)
    md = markdown(rec, lb, plan, args)
    print()
    print(md)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as fh:
            fh.write("\n" + md)


if __name__ == "__main__":
    main()
