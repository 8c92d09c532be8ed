"""The benchmark runner (issue #5): ``Benchmark.make``, ``run_benchmark`` and the executors.

Most tests drive ``run_benchmark`` with an in-process executor (threads running the real
``execute_job``, so real training and real recording) on SQLite and on the PostgreSQL server
named by LRBENCH_TEST_POSTGRES_URL; one uses the real process pool, and one SIGKILLs a real
``lrbench run`` and resumes it.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from procgroups import group_alive

from lrbench.executors import RunJob, execute_job, make_executor
from lrbench.executors import base as executors_base
from lrbench.executors.local import available_cores, default_layout
from lrbench.runner import Benchmark, _orphaned, run_benchmark
from lrbench.store import Store
from lrbench.tasks import get_task

from backends import db_url  # noqa: E402, F401  (a fixture)

ITERS, EVAL = 30, 10
GOOD = "FIX(k0=0.05)"
GOOD2 = "COS(k0=0.1, k1=0.001, l=30)"
HUGE = "FIX(k0=1000.0)"  # diverges within a few steps


@pytest.fixture
def store(db_url):
    s = Store.open(db_url)
    yield s
    s.close()
    # execute_job keeps one Store per URL in its process: close those of this test too.
    for url in list(executors_base._stores):
        executors_base._stores.pop(url).close()


class InlineExecutor:
    """The Executor protocol on threads of this process: the real ``execute_job`` per run."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.events: queue.Queue = queue.Queue()
        self.jobs: list[RunJob] = []
        self._pool = ThreadPoolExecutor(workers)

    def submit(self, job: RunJob) -> Future:
        job = dataclasses.replace(job, threads=1)  # what LocalExecutor does; 1 is fastest here
        self.jobs.append(job)
        return self._pool.submit(execute_job, job, self.events)

    def shutdown(self, *, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    @property
    def trained(self) -> list[tuple[str, int]]:
        return sorted((j.claim.policy, j.claim.seed) for j in self.jobs)


@pytest.fixture
def inline():
    ex = InlineExecutor()
    yield ex
    ex.shutdown()


def _bench(policies=(GOOD,), **kw) -> Benchmark:
    kw.setdefault("iters", ITERS)
    kw.setdefault("eval_every", EVAL)
    return Benchmark.make("digits-mlp", list(policies), **kw)


def _runs(store: Store, task) -> dict[tuple[str, int], object]:
    rows = store.find_runs(task=task)
    out = {(r.policy, r.seed): r for r in rows}
    assert len(out) == len(rows), "a (policy, seed) is stored twice"
    return out


# -- Benchmark.make ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, field", [
    (dict(policies=[]), "no policies"),
    (dict(policies=[GOOD, "FOO(k0=1)"]), r"policies\[1\].*unknown LR function 'FOO'"),
    (dict(policies=["SIN2(k0=0.01, k1="]), r"policies\[0\].*cannot parse"),
    (dict(policies=["FIX(k0=-1)"]), r"policies\[0\].*k0"),
    (dict(repeats=0), "repeats"),
    (dict(repeats=-2), "repeats"),
    (dict(repeats=2.5), "repeats"),
    (dict(repeats=True), "repeats"),
    (dict(repeats="2"), "repeats"),
    (dict(seeds=[0, -1]), "seeds"),
    (dict(seeds=[]), "seeds"),
    (dict(seeds=["x"]), "seeds"),
    (dict(seeds=[1.5]), "seeds"),
    (dict(target_accuracy=0), "target_accuracy"),
    (dict(target_accuracy=1.5), "target_accuracy"),
    (dict(target_accuracy=float("nan")), "target_accuracy"),
    (dict(iters=0), "max_iters"),
    (dict(iters=-10), "max_iters"),
    (dict(eval_every=0), "eval_every"),
    (dict(task="imagenet-vgg"), "unknown task preset 'imagenet-vgg'"),
    (dict(task={"preset": "digits-mlp", "dataset": "imagenet"}), "dataset.*'imagenet'"),
    (dict(task={"preset": "digits-mlp", "batch": 3}), "batch"),
    (dict(task={"dataset": "digits", "model": "mlp"}), "batch_size"),
    (dict(task=5), "task must be"),
])
def test_make_rejects_bad_input_naming_the_field(kwargs, field):
    args = dict(task="digits-mlp", policies=[GOOD])
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        Benchmark.make(args.pop("task"), args.pop("policies"), **args)


def test_make_takes_one_policy_as_a_string():
    b = Benchmark.make("digits-mlp", "FIX(k0=0.05)", iters=10)
    assert b.policies == ("FIX(k0=0.05)",)


def test_make_builds_the_benchmark():
    b = Benchmark.make("digits-mlp", ["FIX(k0=0.05)", "FIX( k0 = 5e-2 )", GOOD2], repeats=3,
                       iters=200)
    assert b.policies == ("FIX(k0=0.05)", GOOD2)  # canonical notation, duplicates dropped
    assert b.seeds == (0, 1, 2) and b.n_runs == 6
    assert (b.task.max_iters, b.task.eval_every, b.task.preset) == (200, 50, "digits-mlp")
    # eval_every never exceeds the run unless asked for; explicit seeds win over repeats.
    b = Benchmark.make("digits-mlp", [GOOD], repeats=5, seeds=[3, 1, 3], iters=20)
    assert b.seeds == (3, 1) and b.n_runs == 2 and b.task.eval_every == 20
    # A mapping of task fields, with a preset; the arguments override its own fields.
    b = Benchmark.make({"preset": "digits-mlp", "max_iters": 50, "batch_size": 16}, [GOOD],
                       iters=30, eval_every=10)
    assert (b.task.max_iters, b.task.eval_every, b.task.batch_size) == (30, 10, 16)
    b = Benchmark.make(get_task("digits-mlp"), [GOOD], iters=40, target_accuracy=0.9,
                       data_root="/data")
    assert b.task.max_iters == 40 and b.target_accuracy == 0.9 and b.data_root == "/data"
    assert b.task == get_task("digits-mlp", max_iters=40, eval_every=40)


# -- planning, claiming only the benchmark's own runs -----------------------------------------
def test_plans_policies_times_seeds_and_trains_each_once(store, inline):
    bench = _bench([GOOD, GOOD2, HUGE], repeats=2)
    out = run_benchmark(bench, store, executor=inline, progress=False)
    assert (out.planned, out.already_done, out.trained) == (6, 0, 6)
    assert (out.failed, out.diverged, out.interrupted) == (0, 2, False)
    assert inline.trained == sorted((p, s) for p in bench.policies for s in (0, 1))
    runs = _runs(store, bench.task)
    assert set(runs) == {(p, s) for p in bench.policies for s in (0, 1)}
    for (policy, seed), row in runs.items():
        if policy == HUGE:
            assert row.status == "diverged" and row.iterations < ITERS
        else:
            assert row.status == "done" and row.iterations == ITERS and row.n_points == 3
    assert sorted((s["policy"], s["seed"]) for s in out.summaries) == inline.trained
    assert {s["run_id"] for s in out.summaries} == {r.id for r in runs.values()}

    # The same benchmark again: everything is there, nothing is submitted.
    again = InlineExecutor()
    out = run_benchmark(bench, store, executor=again, progress=False)
    again.shutdown()
    assert (out.planned, out.already_done, out.trained) == (6, 6, 0) and again.jobs == []
    assert {k: (r.id, r.finished_at) for k, r in _runs(store, bench.task).items()} == {
        k: (r.id, r.finished_at) for k, r in runs.items()}

    # A wider benchmark on the same task plans and trains only what is new.
    wider = _bench([GOOD, GOOD2, HUGE, "EXP(k0=0.1, gamma=0.99)"], repeats=3)
    more = InlineExecutor()
    out = run_benchmark(wider, store, executor=more, progress=False)
    more.shutdown()
    assert (out.planned, out.already_done, out.trained) == (12, 6, 6)
    assert len(more.jobs) == 6 and len(_runs(store, bench.task)) == 12


def test_claims_only_the_benchmarks_own_policies_and_seeds(store, inline):
    bench = _bench([GOOD, GOOD2], seeds=[0, 1])
    # Pending runs of the same task that another benchmark planned, and of another task.
    store.plan(bench.task, [GOOD, "EXP(k0=0.1, gamma=0.99)"], [5])
    other = get_task("digits-mlp", max_iters=20, eval_every=10)
    store.plan(other, [GOOD], [0])
    out = run_benchmark(bench, store, executor=inline, progress=False)
    assert (out.planned, out.trained) == (4, 4)
    assert inline.trained == sorted([(GOOD, 0), (GOOD, 1), (GOOD2, 0), (GOOD2, 1)])
    status = {k: r.status for k, r in _runs(store, bench.task).items()}
    assert status == {(GOOD, 0): "done", (GOOD, 1): "done", (GOOD2, 0): "done",
                      (GOOD2, 1): "done", (GOOD, 5): "pending",
                      ("EXP(k0=0.1, gamma=0.99)", 5): "pending"}
    assert [r.status for r in store.find_runs(task=other)] == ["pending"]

    # A sub-benchmark of finished runs trains nothing; one of a pending run trains just it.
    sub = InlineExecutor()
    out = run_benchmark(_bench([GOOD2], seeds=[1]), store, executor=sub, progress=False)
    assert (out.planned, out.already_done, out.trained, sub.jobs) == (1, 1, 0, [])
    out = run_benchmark(_bench([GOOD], seeds=[5]), store, executor=sub, progress=False)
    sub.shutdown()
    assert (out.planned, out.already_done, out.trained) == (1, 0, 1)
    assert sub.trained == [(GOOD, 5)]
    assert store.status_of(bench.task, "EXP(k0=0.1, gamma=0.99)", 5) == "pending"


# -- failures -------------------------------------------------------------------------------
def test_failed_runs_are_stored_then_retried_diverged_ones_are_not(store, inline, monkeypatch):
    import lrbench.trainer

    real_train = lrbench.trainer.train

    def flaky(task, policy, seed, **kw):
        if str(policy) == GOOD2 and seed == 1:
            raise OSError("disk on fire")
        return real_train(task, policy, seed, **kw)

    monkeypatch.setattr(lrbench.trainer, "train", flaky)
    bench = _bench([GOOD, GOOD2, HUGE], repeats=2)
    out = run_benchmark(bench, store, executor=inline, progress=False)
    assert (out.trained, out.failed, out.diverged) == (6, 1, 2)
    runs = _runs(store, bench.task)
    assert runs[(GOOD2, 1)].status == "failed"
    assert runs[(GOOD2, 1)].error == "OSError: disk on fire"
    assert runs[(GOOD2, 1)].iterations == 0
    assert [runs[(HUGE, s)].status for s in (0, 1)] == ["diverged", "diverged"]
    assert sum(r.status == "done" for r in runs.values()) == 3

    # Next time the failed run (only it) is trained again; the diverged ones stay diverged.
    monkeypatch.setattr(lrbench.trainer, "train", real_train)
    retry = InlineExecutor()
    out = run_benchmark(bench, store, executor=retry, progress=False)
    retry.shutdown()
    assert (out.planned, out.already_done, out.trained, out.failed) == (6, 5, 1, 0)
    assert retry.trained == [(GOOD2, 1)]
    after = _runs(store, bench.task)
    assert after[(GOOD2, 1)].status == "done" and after[(GOOD2, 1)].id == runs[(GOOD2, 1)].id
    assert after[(GOOD2, 1)].error is None
    for key in runs:
        if key != (GOOD2, 1):
            assert (after[key].status, after[key].finished_at) == (
                runs[key].status, runs[key].finished_at)


class _BrokenExecutor(InlineExecutor):
    """A worker process that dies: the future raises instead of returning a summary."""

    def submit(self, job: RunJob) -> Future:
        self.jobs.append(job)
        fut: Future = Future()
        fut.set_exception(EOFError("worker process vanished"))
        return fut


def test_a_broken_worker_gives_its_run_back(store):
    bench = _bench([GOOD], repeats=2)
    ex = _BrokenExecutor()
    with pytest.raises(RuntimeError, match=r"worker failed on run \d+: worker process vanished"):
        run_benchmark(bench, store, executor=ex, progress=False)
    ex.shutdown()
    assert len(ex.jobs) == 1  # one worker: one claim when it broke
    # The claimed run is pending again (not stuck 'running'), nothing is recorded.
    assert sorted(r.status for r in store.find_runs(task=bench.task)) == ["pending", "pending"]
    out = run_benchmark(bench, store, executor=(ok := InlineExecutor()), progress=False)
    ok.shutdown()
    assert out.trained == 2


# -- runs left behind by a dead driver ---------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_orphaned_recognizes_dead_owners_of_this_host():
    host = socket.gethostname()
    dead = _dead_pid()
    assert _orphaned(f"{host}:{dead}") is True
    assert _orphaned(f"{host}:{os.getpid()}") is False  # alive
    assert _orphaned(f"another-host-{host}:{dead}") is False  # can't tell: leave it
    for owner in (None, "", "worker-7", f"{host}:", f"{host}:abc"):
        assert _orphaned(owner) is False, owner


def test_runs_of_a_dead_driver_are_requeued(store, inline):
    bench = _bench([GOOD, GOOD2], seeds=[0])
    store.plan(bench.task, bench.policies, bench.seeds)
    host = socket.gethostname()
    dead = store.claim(f"{host}:{_dead_pid()}", task=bench.task, policies=[GOOD])
    alive = store.claim(f"{host}:{os.getpid()}", task=bench.task, policies=[GOOD2])
    assert (dead.policy, alive.policy) == (GOOD, GOOD2)
    out = run_benchmark(bench, store, executor=inline, progress=False)
    # The dead driver's run is trained again; the live one's is left to it.
    assert (out.planned, out.already_done, out.trained) == (2, 0, 1)
    assert inline.trained == [(GOOD, 0)]
    runs = _runs(store, bench.task)
    assert runs[(GOOD, 0)].status == "done" and runs[(GOOD, 0)].id == dead.run_id
    assert runs[(GOOD2, 0)].status == "running"
    assert runs[(GOOD2, 0)].owner == f"{host}:{os.getpid()}"
    # A claim on another host is not ours to judge either.
    store.release(alive)
    remote = store.claim("elsewhere:1", task=bench.task)
    assert remote.policy == GOOD2
    out = run_benchmark(bench, store, executor=(ex := InlineExecutor()), progress=False)
    ex.shutdown()
    assert out.trained == 0 and store.status_of(bench.task, GOOD2, 0) == "running"


def test_a_silent_claim_from_another_host_is_taken_over_after_stale_after(store, inline):
    """A driver that died on another machine: its run has no live heartbeat. A driver started
    anywhere takes it over once the heartbeat is older than stale_after, not before."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from lrbench.store import schema as S

    bench = _bench([GOOD], seeds=[0])
    store.plan(bench.task, bench.policies, bench.seeds)
    gone = store.claim("elsewhere:1", task=bench.task)
    out = run_benchmark(bench, store, executor=inline, progress=False)
    assert out.trained == 0  # a heartbeat just now: alive as far as anyone can tell
    with store.engine.begin() as conn:
        conn.execute(update(S.runs).where(S.runs.c.id == gone.run_id).values(
            heartbeat_at=datetime.now(timezone.utc) - timedelta(seconds=700)))
    out = run_benchmark(bench, store, executor=inline, progress=False, stale_after=None)
    assert out.trained == 0  # without stale_after only this host's dead processes count
    out = run_benchmark(bench, store, executor=inline, progress=False)  # default: 600 s
    assert out.trained == 1 and inline.trained == [(GOOD, 0)]
    runs = _runs(store, bench.task)
    assert runs[(GOOD, 0)].status == "done" and runs[(GOOD, 0)].id == gone.run_id
    for bad in (0, -1, float("nan"), "10", True):
        with pytest.raises(ValueError, match="stale_after"):
            run_benchmark(bench, store, executor=inline, progress=False, stale_after=bad)


def test_progress_display_and_callback(store, inline, capsys):
    bench = _bench([GOOD, HUGE], seeds=[0])
    seen = []
    out = run_benchmark(bench, store, executor=inline, progress=True, on_result=seen.append)
    assert seen == out.summaries and len(seen) == 2
    assert {s["status"] for s in seen} == {"done", "diverged"}
    text = capsys.readouterr()
    printed = text.out + text.err
    assert "all runs" in printed and "diverged" in printed


# -- the real process pool -------------------------------------------------------------------
def test_executor_layout_and_names():
    cores = available_cores()
    assert default_layout() == (cores, 1)
    assert default_layout(1) == (1, cores)
    assert default_layout(None, 1) == (cores, 1)
    assert default_layout(3, 2) == (3, 2)
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="workers"):
            default_layout(bad)
        with pytest.raises(ValueError, match="threads"):
            default_layout(None, bad)
    with pytest.raises(ValueError, match="unknown executor 'slurm'; valid executors: local"):
        make_executor("slurm")
    with pytest.raises(ValueError, match="workers"):
        make_executor("local", workers=0)


def test_local_process_pool(tmp_path, monkeypatch):
    # One benchmark set up to fail for real in its worker: MNIST nowhere, its download refused.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LRBENCH_DATA_URL", f"file://{tmp_path}/no-mirror/{{name}}")
    monkeypatch.delenv("LRBENCH_DATA", raising=False)
    url = f"sqlite:///{tmp_path / 'pool.sqlite'}"
    bench = _bench([GOOD, HUGE], seeds=[0])
    mnist = Benchmark.make("mnist-lenet", [GOOD], iters=10, eval_every=10)
    ex = make_executor("local", workers=1, threads=1)  # started once, used twice
    assert (ex.workers, ex.threads) == (1, 1)
    try:
        with Store.open(url) as store:
            seen = []
            out = run_benchmark(bench, store, executor=ex, progress=False, on_result=seen.append)
            assert (out.planned, out.trained, out.failed, out.diverged) == (2, 2, 0, 1)
            assert seen == out.summaries
            runs = _runs(store, bench.task)
            assert {k: r.status for k, r in runs.items()} == {(GOOD, 0): "done",
                                                              (HUGE, 0): "diverged"}
            assert runs[(GOOD, 0)].iterations == ITERS
            assert {r.host for r in runs.values()} == {socket.gethostname()}
            assert all(r.owner is None for r in runs.values())
            # The caller's executor is still usable: run_benchmark shuts down only its own.
            # A run whose set-up fails in its worker is stored as failed, with the error.
            out = run_benchmark(mnist, store, executor=ex, progress=False)
            assert (out.trained, out.failed) == (1, 1)
            (row,) = store.find_runs(task=mnist.task)
            assert row.status == "failed" and "DatasetNotFoundError" in row.error
    finally:
        ex.shutdown()


# -- SIGKILL mid-benchmark, then resume ------------------------------------------------------
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_resume_after_sigkill(tmp_path):
    db = f"sqlite:///{tmp_path / 'kill.sqlite'}"
    # Runs of ~1 s: when the first is recorded, the next one is claimed at once.
    policies, seeds, iters, every = [GOOD, "EXP(k0=0.1, gamma=0.999)"], [0, 1], 600, 100
    bench = Benchmark.make("digits-mlp", policies, seeds=seeds, iters=iters, eval_every=every)
    wanted = {(p, s) for p in bench.policies for s in seeds}
    args = [sys.executable, "-m", "lrbench.cli", "run", "--task", "digits-mlp",
            "--iters", str(iters), "--eval-every", str(every), "--repeats", str(len(seeds)),
            "--workers", "1", "--threads", "1", "--db", db]
    for p in policies:
        args += ["--policy", p]
    env = {**os.environ, "LRBENCH_DB": f"sqlite:///{tmp_path / 'default.sqlite'}"}
    Store.open(db).close()  # the schema exists before this process starts watching
    with Store.open(db) as store, open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=log,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while True:  # wait for a finished run while others are still in progress
                status = [r.status for r in store.find_runs(task=bench.task)]
                if status.count("done") >= 1 and status.count("running") >= 1:
                    break
                assert proc.poll() is None, (tmp_path / "log.txt").read_text()
                assert time.monotonic() < deadline, status
                time.sleep(0.02)
        finally:
            # The driver, its pool workers and its manager process all die at once.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            deadline = time.monotonic() + 30
            while group_alive(proc.pid):
                assert time.monotonic() < deadline, "the killed group did not die"
                time.sleep(0.05)
        before = _runs(store, bench.task)
        states = [r.status for r in before.values()]
        assert set(before) == wanted
        assert 1 <= states.count("done") < len(wanted), states
        # What the killed driver held is still marked running, under its (dead) pid.
        stuck = [r for r in before.values() if r.status == "running"]
        assert stuck and all(r.owner == f"{socket.gethostname()}:{proc.pid}" for r in stuck)
        done_before = {k: (r.id, r.finished_at) for k, r in before.items() if r.status == "done"}

        again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0, again.stderr
        n_done = len(done_before)
        assert f"{len(wanted) - n_done} runs trained, {n_done} already in {db}" in again.stderr
        after = _runs(store, bench.task)
        assert set(after) == wanted and store.counts()["runs"] == len(wanted)
        for key, row in after.items():
            assert (row.status, row.iterations, row.owner) == ("done", iters, None), key
            if key in done_before:
                assert (row.id, row.finished_at) == done_before[key]  # kept, not retrained
            curve = store.get_run(bench.task, *key).curve
            assert [p.iteration for p in curve] == list(range(every, iters + 1, every))
