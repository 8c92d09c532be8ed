"""The LR database under concurrency and faults (issue #4), on SQLite and PostgreSQL.

- 4 processes (spawn) open one fresh database at once (the migration races) and write 200 runs
  each, some of them the same runs: every run is there exactly once, with its whole curve, and
  no process sees an error.
- 4 processes claim planned runs: no run is handed to two workers.
- A writer killed with SIGKILL in the middle of recording leaves no run marked done with
  missing curve points, and the database usable.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
import traceback

from lrbench.store import Store
from lrbench.store.testing import (
    make_result,
    small_task,
)

from backends import db_url  # noqa: E402, F401  (a fixture)

N_WORKERS = 4
RUNS_PER_WORKER = 200
SHARED_RUNS = 40  # written by every worker: upserts racing on the same keys
N_POINTS = 20
CTX = mp.get_context("spawn")


def _policy(i):
    return f"FIX(k0={(i + 1) / 10000})"


def _expected_keys(worker):
    shared = [(_policy(i), 0) for i in range(SHARED_RUNS)]
    own = [(_policy(1000 + i), worker) for i in range(RUNS_PER_WORKER - SHARED_RUNS)]
    return shared + own


# -- workers (module level, so that spawn can import them) ---------------------------------
def _writer(url, worker, barrier, out):
    try:
        barrier.wait(timeout=60)
        store = Store.open(url)  # every worker migrates the fresh database at once
        task = small_task()
        keys = _expected_keys(worker)
        random.Random(worker).shuffle(keys)
        for policy, seed in keys:
            store.record(make_result(task, policy, seed, n_points=N_POINTS,
                                     host=f"worker-{worker}"))
        store.close()
        out.put((worker, "ok", len(keys)))
    except BaseException:
        out.put((worker, "error", traceback.format_exc()))


def _claimer(url, worker, barrier, out):
    try:
        store = Store.open(url)
        barrier.wait(timeout=60)
        claimed = []
        while (claim := store.claim(f"worker-{worker}")) is not None:
            claimed.append(claim.run_id)
            store.record(make_result(claim.task, claim.policy, claim.seed, n_points=3,
                                     host=f"worker-{worker}"), claim=claim)
        store.close()
        out.put((worker, "ok", claimed))
    except BaseException:
        out.put((worker, "error", traceback.format_exc()))


def _doomed_writer(url, n_before, n_points, stall, ready):
    """Record ``n_before`` runs; then, if ``stall``, freeze inside the next transaction (after
    the run row says done and its curve is being written) until killed; else keep recording."""
    from sqlalchemy import event

    store = Store.open(url)
    task = small_task()
    for i in range(n_before):
        store.record(make_result(task, _policy(i), 0, n_points=n_points))
    if stall:
        @event.listens_for(store.engine, "after_cursor_execute")
        def _freeze(conn, cursor, statement, params, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO CURVE_POINTS"):
                ready.set()
                time.sleep(600)
    else:
        ready.set()
    i = n_before
    while True:
        store.record(make_result(task, _policy(i), 0, n_points=n_points))
        i += 1


def _wait(event, proc, timeout=60):
    """Wait for ``event`` while ``proc`` lives (a crashed child fails the test at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if event.wait(0.1):
            return True
        if not proc.is_alive():
            return False
    return False


def _collect(procs, out, timeout):
    results = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(procs) and time.monotonic() < deadline:
        try:
            worker, status, payload = out.get(timeout=1)
        except Exception:
            if all(not p.is_alive() for p in procs) and out.empty():
                break
            continue
        results[worker] = (status, payload)
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    errors = [payload for status, payload in results.values() if status != "ok"]
    assert not errors, "a worker failed:\n" + "\n".join(errors)
    assert len(results) == len(procs), f"only {len(results)} of {len(procs)} workers reported"
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return {w: payload for w, (_, payload) in results.items()}


def _complete(store, n_points):
    """Every finished run has all its curve points, by the row and by counting them."""
    from sqlalchemy import func, select

    from lrbench.store.schema import curve_points

    with store.engine.connect() as conn:
        per_run = dict(conn.execute(
            select(curve_points.c.run_id, func.count()).group_by(curve_points.c.run_id)).all())
    rows = store.find_runs()
    for row in rows:
        if row.status == "done":
            assert row.n_points == n_points and per_run.get(row.id, 0) == n_points, row
        else:
            assert per_run.get(row.id, 0) == 0, row
    return rows


# -- tests ----------------------------------------------------------------------------------
def test_parallel_writers_store_every_run_exactly_once(db_url):
    barrier, out = CTX.Barrier(N_WORKERS), CTX.Queue()
    procs = [CTX.Process(target=_writer, args=(db_url, w, barrier, out))
             for w in range(N_WORKERS)]
    for p in procs:
        p.start()
    done = _collect(procs, out, timeout=240)
    assert all(n == RUNS_PER_WORKER for n in done.values())

    expected = {k for w in range(N_WORKERS) for k in _expected_keys(w)}
    with Store.open(db_url) as store:
        rows = _complete(store, N_POINTS)
        keys = [(r.policy, r.seed) for r in rows]
        assert len(keys) == len(set(keys)) == len(expected)
        assert set(keys) == expected
        counts = store.counts()
        assert counts["tasks"] == 1 and counts["datasets"] == 1
        assert counts["policies"] == SHARED_RUNS + RUNS_PER_WORKER - SHARED_RUNS
        assert counts["curve_points"] == len(expected) * N_POINTS
        assert {r.status for r in rows} == {"done"}
        assert store.revision() == store.head_revision()


def test_claims_never_hand_one_run_to_two_workers(db_url):
    n_runs = 100
    with Store.open(db_url) as store:
        store.plan(small_task(), [_policy(i) for i in range(n_runs // 4)], range(4))
        planned = {r.id for r in store.find_runs(status="pending")}
    assert len(planned) == n_runs
    barrier, out = CTX.Barrier(N_WORKERS), CTX.Queue()
    procs = [CTX.Process(target=_claimer, args=(db_url, w, barrier, out))
             for w in range(N_WORKERS)]
    for p in procs:
        p.start()
    claimed = _collect(procs, out, timeout=240)
    all_claims = [run_id for ids in claimed.values() for run_id in ids]
    assert len(all_claims) == len(set(all_claims)), "a run was handed out twice"
    assert set(all_claims) == planned
    with Store.open(db_url) as store:
        rows = _complete(store, 3)
        assert {r.status for r in rows} == {"done"}
        by_id = {r.id: r.host for r in rows}
        for worker, ids in claimed.items():
            assert all(by_id[i] == f"worker-{worker}" for i in ids)


def test_writer_killed_inside_a_transaction_leaves_no_partial_run(db_url):
    n_before, n_points = 5, 50
    ready = CTX.Event()
    proc = CTX.Process(target=_doomed_writer, args=(db_url, n_before, n_points, True, ready))
    proc.start()
    try:
        assert _wait(ready, proc), "the writer never reached the curve insert"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    with Store.open(db_url) as store:
        rows = _complete(store, n_points)
        assert sorted(r.policy for r in rows) == sorted(_policy(i) for i in range(n_before))
        task = small_task()
        assert store.get_run(task, _policy(n_before), 0) is None
        # The database is not left locked: the interrupted run can be recorded now.
        started = time.monotonic()
        store.record(make_result(task, _policy(n_before), 0, n_points=n_points))
        assert time.monotonic() - started < 10
        assert len(_complete(store, n_points)) == n_before + 1


def test_writer_killed_at_a_random_moment_leaves_no_partial_run(db_url):
    n_points = 300
    ready = CTX.Event()
    proc = CTX.Process(target=_doomed_writer, args=(db_url, 0, n_points, False, ready))
    proc.start()
    try:
        assert _wait(ready, proc), "the writer died before it started"
        with Store.open(db_url) as store:
            deadline = time.monotonic() + 60
            while len(store.find_runs()) < 8 and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.05))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
    with Store.open(db_url) as store:
        rows = _complete(store, n_points)
        assert len(rows) >= 8
        store.record(make_result(small_task(), "FIX(k0=0.5)", 0, n_points=n_points))
        assert len(_complete(store, n_points)) == len(rows) + 1
