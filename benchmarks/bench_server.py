"""Benchmark of the shared server (issue #8): leaderboard requests per second, 100,000 runs stored.

The database holds 100,000 runs with 5-point curves: 10 tasks x 1,000 policies x 10 seeds
(the layout of ``bench_store.py``), so one task's leaderboard aggregates 10,000 runs into 1,000
policies and ranks them. ``lrbench serve`` (one uvicorn process) serves it on loopback and
``wrk`` (Debian: ``apt-get install wrk``, a load generator in C, so that it takes little of the
CPU the server needs) loads each URL for ``--seconds`` with ``--connections`` connections:

* ``/api/health``: the floor, FastAPI + uvicorn doing nothing (the baseline of the ratios);
* ``/api/tasks/{key}/leaderboard?top=20``: the JSON leaderboard;
* ``/tasks/{key}``: the leaderboard page (HTML, top 50);
* ``/api/tasks``: the task list with counts over all 100,000 runs.

It also times the leaderboard in-process (``Store.aggregates`` + rank + rows, no HTTP), which
shows what HTTP adds. SQLite by default; ``--pg URL`` (or $LRBENCH_TEST_POSTGRES_URL) measures
PostgreSQL too, in a scratch database dropped afterwards.

Usage:
    python benchmarks/bench_server.py [--runs 100000] [--seconds 10] [--connections 8]
                                      [--pg URL] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from bench_store import _results

from lrbench.reports.tables import table_rows
from lrbench.server import queries
from lrbench.store import Store, task_key
from lrbench.store.testing import temporary_postgres_database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(url: str, n: int) -> tuple[Store, str]:
    store = Store.open(url)
    t0 = time.perf_counter()
    results = _results(n, 5, n_tasks=10, n_seeds=10)
    for i in range(0, len(results), 5000):
        store.record_many(results[i:i + 5000])
    print(f"  stored {store.counts()['runs']:,} runs in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return store, task_key(results[0].task)


def serve(url: str, port: int) -> subprocess.Popen:
    lrbench = shutil.which("lrbench") or sys.exit("lrbench is not installed (pip install -e .)")
    proc = subprocess.Popen([lrbench, "serve", "--db", url, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"lrbench serve exited: {proc.stderr.read()[-500:]}")
            time.sleep(0.2)
    proc.kill()
    sys.exit("lrbench serve did not start in 60 s")


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        lat[pct] = value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if bad or errors:
        sys.exit(f"wrk saw failed requests on {url}:\n{out}")
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"]}


def in_process(store: Store, key: str, repeat: int = 30) -> float:
    """Leaderboard calls per second without HTTP (median of ``repeat`` timed calls)."""
    task = store.task_by_key(key)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ranked, _, _ = queries.leaderboard(store, task, top=20)
        table_rows(ranked)
        times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def measure(name: str, url: str, n: int, seconds: int, connections: int) -> list[str]:
    print(f"{name}: filling {n:,} runs ...", file=sys.stderr)
    store, key = fill(url, n)
    try:
        direct = in_process(store, key)
        port = free_port()
        proc = serve(url, port)
        try:
            base = f"http://127.0.0.1:{port}"
            urls = [("/api/health (baseline)", "/api/health"),
                    ("JSON leaderboard, top 20", f"/api/tasks/{key}/leaderboard?top=20"),
                    ("leaderboard page (HTML, top 50)", f"/tasks/{key}"),
                    ("task list (counts over all runs)", "/api/tasks")]
            for _, path in urls:  # warm up: caches, connections, the first query plans
                urllib.request.urlopen(base + path, timeout=60).read()
            results = [(label, wrk(base + path, seconds, connections)) for label, path in urls]
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        store.close()
    floor = results[0][1]["rps"]
    rows = [f"| {name} | {label} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
            f"{r['rps'] / floor:.3f} |" for label, r in results]
    rows.append(f"| {name} | leaderboard in-process (no HTTP), calls/s | {direct:,.0f} | "
                f"{1000 / direct:.1f} | – | {direct / floor:.3f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--pg", default=os.environ.get("LRBENCH_TEST_POSTGRES_URL"))
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk: apt-get install wrk")
    lines = [
        f"{args.runs:,} runs stored (10 tasks x 1,000 policies x 10 seeds); wrk 1 thread, "
        f"{args.connections} connections, {args.seconds} s per URL; one uvicorn worker; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "",
        "| database | request | requests/s | p50 (ms) | p99 (ms) | ratio to /api/health |",
        "|---|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lines += measure("SQLite", f"sqlite:///{Path(tmp) / 'server.sqlite'}", args.runs,
                         args.seconds, args.connections)
    if args.pg:
        with ExitStack() as stack:
            url = stack.enter_context(temporary_postgres_database(args.pg, "lrbench_bench"))
            lines += measure("PostgreSQL", url, args.runs, args.seconds, args.connections)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
