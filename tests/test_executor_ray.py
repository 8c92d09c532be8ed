"""The Ray executor (issue #7) on a real Ray: a local instance, and a head plus two worker nodes
simulated on this machine with Ray's own ``ray.cluster_utils.Cluster``.

- same results as the local process pool for the same seeds (bit for bit on the CPU);
- a worker node removed mid-benchmark: its run is retried, every run recorded once and complete;
- a driver killed mid-benchmark: started again, it resumes from the database;
- a run that raises is recorded as 'failed' with its error while the others finish;
- without Ray, asking for it names the extra to install; bad options are one-line errors.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs PyTorch: pip install 'lrbench[torch]'")
ray = pytest.importorskip("ray", reason="the Ray executor needs Ray: pip install 'lrbench[ray]'")

from lrbench.cli import main  # noqa: E402
from lrbench.executors import RunJob, make_executor  # noqa: E402
from lrbench.executors.ray import RayEvents, RayExecutor, _EventBuffer  # noqa: E402
from lrbench.runner import Benchmark, run_benchmark  # noqa: E402
from lrbench.store import Store  # noqa: E402
from lrbench.store.testing import postgres_server_url, temporary_postgres_database  # noqa: E402
from lrbench.tasks import make_task  # noqa: E402

POLICIES = ["FIX(k0=0.05)", "COS(k0=0.1, k1=0.001, l=250)"]
SMALL_STORE = 80 * 1024**2  # bytes of object store per Ray node: runs pass only small records
PG_URL = postgres_server_url()
QUIET = dict(include_dashboard=False, logging_level="WARNING", log_to_driver=False)


def _bench(iters: int = 80, eval_every: int = 20) -> Benchmark:
    return Benchmark.make("digits-mlp", POLICIES, seeds=[0, 1], iters=iters, eval_every=eval_every)


def _url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"


def _curve(result) -> list[tuple]:
    return [(p.iteration, p.lr, p.train_loss, p.test_loss, p.top1, p.top5) for p in result.curve]


def _curve_rows(url: str) -> dict[int, int]:
    """Curve points stored per run id, counted in the database itself."""
    from sqlalchemy import text

    with Store.open(url) as store, store.engine.connect() as conn:
        return dict(conn.execute(  # type: ignore[arg-type]
            text("SELECT run_id, COUNT(*) FROM curve_points GROUP BY run_id")).all())


@contextmanager
def _shared_database(tmp_path: Path) -> Iterator[str]:
    """The database every node writes to: a fresh PostgreSQL database when the tests have a
    server (``LRBENCH_TEST_POSTGRES_URL``, as across machines), else an SQLite file."""
    if PG_URL is None:
        yield _url(tmp_path, "shared.sqlite")
    else:
        with temporary_postgres_database(PG_URL) as url:
            yield url


def _assert_all_recorded_once(url: str, bench: Benchmark) -> None:
    """Every run of ``bench``: one row, status done, a full curve stored once."""
    with Store.open(url) as store:
        rows = store.find_runs(task=bench.task)
        results = {(r.policy, r.seed): r for r in store.runs(task=bench.task)}
    assert len(rows) == bench.n_runs
    assert {(r.policy, r.seed) for r in rows} == {(p, s) for p in bench.policies
                                                 for s in bench.seeds}
    assert {r.status for r in rows} == {"done"}
    expected = list(range(bench.task.eval_every, bench.task.max_iters + 1, bench.task.eval_every))
    stored = _curve_rows(url)
    for row in rows:
        result = results[(row.policy, row.seed)]
        assert result.iterations == bench.task.max_iters
        assert [p.iteration for p in result.curve] == expected
        assert stored[row.id] == len(expected)


def _training(parent: int | None = None) -> dict[int, int]:
    """{run id: pid} of the Ray workers training a run now (children of ``parent`` only, if
    given): Ray titles a worker ``ray::<task name>`` while it runs the task."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if title.startswith("ray::lrbench-run-") and parent in (None, ppid):
            found[int(title.removeprefix("ray::lrbench-run-").split()[0])] = int(proc.name)
    return found


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="finds Ray's workers in /proc")


def _start_local_ray() -> None:
    if not ray.is_initialized():
        ray.init(num_cpus=2, object_store_memory=SMALL_STORE, **QUIET)


@pytest.fixture(scope="module")
def _module_ray():
    """One local Ray for the module (2 CPUs), shut down at its end."""
    if ray.is_initialized():
        ray.shutdown()
    _start_local_ray()
    yield
    ray.shutdown()


@pytest.fixture
def ray_local(_module_ray):
    """The module's local Ray (started again if the cluster test replaced it)."""
    _start_local_ray()
    return ray


# -- no cluster needed --------------------------------------------------------------------------
def test_importing_lrbench_imports_neither_ray_nor_torch():
    code = ("import sys, lrbench, lrbench.executors, lrbench.executors.ray, lrbench.runner, "
            "lrbench.cli.bench; print('ray' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_without_ray_the_error_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from lrbench.executors import make_executor\n"
        "try:\n    make_executor('ray')\n"
        "except ValueError as e:\n    print(isinstance(e, ImportError), e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == (
        "True the 'ray' executor needs Ray: pip install 'lrbench[ray]'"), out.stderr
    # and `lrbench run --executor ray` says so in one line, exit code 2
    cli = ("import sys; sys.modules['ray'] = None\nfrom lrbench.cli import main\n"
           f"main(['run', '--task', 'digits-mlp', '-p', 'FIX(k0=0.05)', '--iters', '20', "
           f"'--executor', 'ray', '--db', {_url(tmp_path, 'x.sqlite')!r}])")
    out = subprocess.run([sys.executable, "-c", cli], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "lrbench: error: the 'ray' executor needs Ray: pip install 'lrbench[ray]'"]


@pytest.mark.parametrize("options, message", [
    ({"cpus_per_run": 0}, "cpus_per_run must be a number > 0, got 0"),
    ({"cpus_per_run": float("nan")}, "cpus_per_run must be a number > 0"),
    ({"cpus_per_run": True}, "cpus_per_run must be a number > 0"),
    ({"gpus_per_run": -1}, "gpus_per_run must be a number >= 0, got -1"),
    ({"max_retries": -1}, "max_retries must be a whole number >= 0, got -1"),
    ({"max_retries": 1.5}, "max_retries must be a whole number >= 0"),
    ({"workers": 0}, "workers must be a whole number >= 1, got 0"),
    ({"threads": 0}, "threads must be a whole number >= 1, got 0"),
    ({"address": "nowhere"}, "address must be 'auto', 'ray://HOST:PORT' or HOST:PORT"),
    ({"address": "127.0.0.1:1"}, "cannot reach the Ray cluster at 127.0.0.1:1"),
    ({"bogus": 1}, "executor 'ray' takes no option 'bogus'"),
])
def test_bad_options_are_value_errors(options, message):
    was_connected = ray.is_initialized()
    if was_connected and "address" in options:
        pytest.skip("a process connected to Ray uses that connection, whatever the address")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        make_executor("ray", **options)
    assert ray.is_initialized() == was_connected  # nothing was started


def test_local_executor_rejects_ray_options():
    with pytest.raises(ValueError, match="executor 'local' takes no option 'address'"):
        make_executor("local", address="auto")


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    _, err = capsys.readouterr()
    return exc.value.code, err


@pytest.mark.parametrize("flags, message", [
    (["--executor", "dask"], "--executor must be one of local, ray, got 'dask'"),
    (["--address", "auto"], "--address only applies to --executor ray"),
    (["--gpus-per-run", "1"], "--gpus-per-run only applies to --executor ray"),
    (["--executor", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be > 0, got 0"),
    (["--executor", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be >= 0, got -1"),
    (["--executor", "ray", "--device", "cuda"], "--device cuda with --executor ray needs "
                                                "--gpus-per-run > 0"),
    (["--device", "gpu"], "device must be a torch device such as 'cpu', 'cuda' or 'cuda:1', "
                          "got 'gpu'"),
])
def test_cli_bad_executor_flags_exit_2_with_one_line(capsys, tmp_path, flags, message):
    code, err = _cli(capsys, "run", "--task", "digits-mlp", "-p", "FIX(k0=0.05)", "--iters", 20,
                     "--db", _url(tmp_path, "cli.sqlite"), *flags)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err


# -- device placement ---------------------------------------------------------------------------
no_cuda = pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="tests the message for a machine without CUDA")


@no_cuda
def test_cuda_asked_but_absent_is_a_clear_error(capsys, tmp_path):
    import torch

    from lrbench.trainer import train

    build = "CPU build" if torch.version.cuda is None else "no GPU visible"
    message = (f"device 'cuda' requested but CUDA is not available "
               f"(torch {torch.__version__}, {build})")
    with pytest.raises(ValueError) as exc:
        train("digits-mlp", "FIX(k0=0.05)", 0, device="cuda")
    assert str(exc.value) == message
    code, err = _cli(capsys, "train", "--task", "digits-mlp", "-p", "FIX(k0=0.05)", "--iters", 20,
                     "--device", "cuda")
    assert (code, err.strip()) == (2, f"lrbench: error: {message}")
    code, err = _cli(capsys, "run", "--task", "digits-mlp", "-p", "FIX(k0=0.05)", "--iters", 20,
                     "--device", "cuda", "--db", _url(tmp_path, "dev.sqlite"))
    assert (code, err.strip()) == (2, f"lrbench: error: --device: {message}")


# -- a local Ray ---------------------------------------------------------------------------------
def test_gpus_per_run_on_a_cluster_without_gpus_is_an_error(ray_local):
    if ray.cluster_resources().get("GPU", 0) >= 1:
        pytest.skip("this Ray cluster has GPUs")
    with pytest.raises(ValueError, match="gpus_per_run=1 but the Ray cluster has 0 GPUs in all"):
        RayExecutor(gpus_per_run=1)
    assert ray.is_initialized()  # not ours to disconnect


@pytest.mark.slow
def test_same_results_as_the_local_executor(ray_local, tmp_path):
    bench = _bench()
    results = {}
    for name in ("local", "ray"):
        url = _url(tmp_path, f"{name}.sqlite")
        with Store.open(url) as store:  # 2 runs at a time, 1 torch thread each, in both
            outcome = run_benchmark(bench, store, executor=name, workers=2, threads=1,
                                    progress=False)
            assert (outcome.trained, outcome.failed) == (4, 0)
            results[name] = {(r.policy, r.seed): r for r in store.runs(task=bench.task)}
        _assert_all_recorded_once(url, bench)
    assert ray.is_initialized()  # the executor used the Ray it found, and left it connected
    local, remote = results["local"], results["ray"]
    assert local.keys() == remote.keys() and len(local) == 4
    for key in local:
        assert remote[key].extra["threads"] == local[key].extra["threads"] == 1
        assert remote[key].summary()["top1"] == local[key].summary()["top1"]
        assert _curve(remote[key]) == _curve(local[key])  # bit for bit
    # different seeds and policies really are different runs
    assert _curve(local[(bench.policies[0], 0)]) != _curve(local[(bench.policies[0], 1)])


@pytest.mark.slow
def test_a_late_drain_of_the_events_actor_loses_no_event(ray_local):
    class SlowDrain(_EventBuffer):  # defined here: Ray's workers cannot import test modules
        """The events actor with a drain that answers late, as on a loaded machine."""

        def drain(self) -> list:
            time.sleep(1.0)
            return super().drain()

    actor = ray.remote(SlowDrain).remote()
    ray.get([actor.put.remote(f"event {i}") for i in range(3)])
    events = RayEvents(actor, ray, every=0.0, wait=0.05)
    with pytest.raises(queue.Empty):  # the drain is not back within 0.05 s
        events.get_nowait()
    ray.get(actor.put.remote("event 3"))  # queued behind the pending drain
    got = []

    def collected() -> bool:
        try:
            while True:
                got.append(events.get_nowait())
        except queue.Empty:
            return len(got) == 4
    _wait_for(collected, 30, "the events of the late drain")
    assert got == [f"event {i}" for i in range(4)]
    ray.kill(actor)


def test_a_run_that_raises_is_recorded_failed_and_the_others_finish(ray_local, tmp_path):
    url = _url(tmp_path, "fail.sqlite")
    good = _bench(iters=60)
    # LeNet does not fit 8x8 digits: the run fails at set-up, on the worker
    bad = make_task(dataset="digits", model="lenet", batch_size=32, max_iters=60, eval_every=20)
    with Store.open(url) as store:
        store.plan(good.task, good.policies, good.seeds)
        store.plan(bad, ["FIX(k0=0.05)"], [0])
        claims = [store.claim("test:1", task=good.task) for _ in range(3)]
        claims.append(store.claim("test:1", task=bad))
        jobs = [RunJob(c, url) for c in claims]
        jobs[2] = RunJob(claims[2], url, device="cuda")  # asks for CUDA: absent on a CPU cluster
        ex = RayExecutor(cpus_per_run=1)
        try:
            summaries = [f.result(timeout=300) for f in [ex.submit(j) for j in jobs]]
            events = []

            def progress_of_both_good_runs() -> bool:
                try:
                    while True:
                        events.append(ex.events.get_nowait())
                except queue.Empty:
                    pass
                return {claims[0].run_id, claims[1].run_id} <= {e.run_id for e in events}

            _wait_for(progress_of_both_good_runs, 30, "progress events from the workers")
        finally:
            ex.shutdown()
        by_id = {r.id: r for r in store.find_runs()}
    assert [s["status"] for s in summaries] == ["done", "done", "failed", "failed"]
    assert [by_id[c.run_id].status for c in claims] == ["done", "done", "failed", "failed"]
    assert "needs inputs of at least 13x13, got 8x8" in by_id[claims[3].run_id].error
    if not __import__("torch").cuda.is_available():
        assert "device 'cuda' requested but CUDA is not available" in by_id[claims[2].run_id].error
    assert all(e.max_iters == 60 and 0 <= e.iteration <= 60 for e in events)
    # the whole benchmark of a task whose runs all raise finishes too
    bench = Benchmark.make(bad.model_dump(exclude={"preset"}), ["FIX(k0=0.05)", "FIX(k0=0.1)"])
    with Store.open(url) as store:
        outcome = run_benchmark(bench, store, executor="ray", progress=False)
        rows = store.find_runs(task=bad)
    assert (outcome.trained, outcome.failed) == (2, 2)
    assert [r.status for r in rows] == ["failed", "failed"]
    assert all("13x13" in r.error for r in rows)


@pytest.mark.slow
@needs_proc
def test_a_worker_killed_with_no_retries_left_is_recorded_failed(ray_local, tmp_path):
    url = _url(tmp_path, "killed.sqlite")
    bench = _bench(iters=3000, eval_every=100)
    with Store.open(url) as store:
        store.plan(bench.task, bench.policies[:1], [0])
        claim = store.claim("test:1", task=bench.task)
        ex = RayExecutor(max_retries=0)
        try:
            future = ex.submit(RunJob(claim, url))
            pid = _wait_for(lambda: _training().get(claim.run_id), 120, "the run to start")
            os.kill(pid, 9)
            summary = future.result(timeout=120)
        finally:
            ex.shutdown()
        row = store.find_runs(task=bench.task)[0]
    assert summary["status"] == row.status == "failed"
    assert row.error.startswith("worker lost 1 times (")
    assert ray.is_initialized()


DRIVER = """
import sys
from lrbench.runner import Benchmark, run_benchmark
from lrbench.store import Store
bench = Benchmark.make("digits-mlp", {policies!r}, seeds=[0, 1], iters={iters},
                       eval_every={eval_every})
with Store.open(sys.argv[2]) as store:
    run_benchmark(bench, store, executor="ray", workers=1, threads=1, progress=False,
                  executor_options={{"address": sys.argv[1]}})
"""


@pytest.mark.slow
@needs_proc
def test_a_killed_driver_resumes_from_the_database(ray_local, tmp_path):
    url = _url(tmp_path, "driver.sqlite")
    iters, eval_every = 2000, 100
    bench = Benchmark.make("digits-mlp", POLICIES, seeds=[0, 1], iters=iters,
                           eval_every=eval_every)
    address = ray.get_runtime_context().gcs_address
    script = DRIVER.format(policies=POLICIES, iters=iters, eval_every=eval_every)
    driver = subprocess.Popen([sys.executable, "-c", script, address, url],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        status: dict[str, int] = {}
        while time.monotonic() < deadline and driver.poll() is None:
            if os.path.exists(url.removeprefix("sqlite:///")):
                with Store.open(url) as store:
                    rows = store.find_runs(task=bench.task)
                status = {s: sum(r.status == s for r in rows) for s in ("done", "running")}
                if status["done"] >= 1 and status["running"] >= 1:
                    break
            time.sleep(0.05)
        assert driver.poll() is None, driver.stdout.read().decode()[-3000:]
        assert status.get("done", 0) >= 1 and status.get("running", 0) >= 1, status
    finally:
        driver.kill()
        driver.wait()
    _wait_for(lambda: not _training(), 60, "Ray to end the dead driver's tasks")
    with Store.open(url) as store:
        before = {r.id: r for r in store.find_runs(task=bench.task)}
        running = [r for r in before.values() if r.status == "running"]
        assert running and all(r.owner == f"{socket.gethostname()}:{driver.pid}" for r in running)
        outcome = run_benchmark(bench, store, executor="ray", threads=1, progress=False)
        after = {r.id: r for r in store.find_runs(task=bench.task)}
    done_before = {i for i, r in before.items() if r.status == "done"}
    assert outcome.already_done == len(done_before)
    assert outcome.trained == bench.n_runs - len(done_before) and outcome.failed == 0
    for i in done_before:  # finished runs were not trained again
        assert after[i].finished_at == before[i].finished_at
    _assert_all_recorded_once(url, bench)


# -- lrbench tune on Ray -------------------------------------------------------------------------
class CountingRayExecutor(RayExecutor):
    """A real RayExecutor that counts the TrainJobs it was given."""

    def __init__(self, **options):
        super().__init__(**options)
        self.trained = []

    def submit_train(self, job):
        self.trained.append((job.task.max_iters, job.policy, job.seed))
        return super().submit_train(job)


def _tune_summary(r) -> dict:
    return {"spent": r.iterations_spent, "range": r.range_iterations, "bounds": r.bounds,
            "rungs": [g.to_dict() for g in r.rungs],
            "recs": [(x.policy, x.top1, x.iterations, x.best_iter, x.rung_iters)
                     for x in r.recommendations]}


@pytest.mark.slow
def test_tune_on_ray_gives_the_same_result_as_the_local_executor(ray_local, tmp_path):
    from lrbench.tasks import get_task
    from lrbench.tuning.tune import tune

    task = get_task("digits-mlp", max_iters=300, eval_every=30)
    kw = dict(seeds=[0, 1], threads=1, progress=False)
    budget = 3000  # the range test needs 13 LRs x 2 seeds x 21 iterations <= 0.2 of it
    local = tune(task, budget, workers=2, store=_url(tmp_path, "local.sqlite"), **kw)
    ex = CountingRayExecutor(cpus_per_run=1)
    try:
        remote = tune(task, budget, executor=ex, store=_url(tmp_path, "ray.sqlite"), **kw)
        named = tune(task, budget, executor="ray", executor_options={"cpus_per_run": 1}, **kw)
    finally:
        ex.shutdown()
    assert ray.is_initialized()  # tune used the Ray it found, and left it connected
    # every run, range test included, went through the executor, none trained here
    assert len(ex.trained) == len(remote.runs) > 0
    assert {it for it, _, _ in ex.trained} >= {g.iters for g in remote.rungs}
    assert remote.range_test is not None and remote.range_iterations > 0
    assert _tune_summary(remote) == _tune_summary(local) == _tune_summary(named)
    assert 0 < remote.iterations_spent <= budget
    for a, b in zip(local.runs, remote.runs):  # bit for bit, in the same order
        assert (a.policy, a.seed, a.task) == (b.policy, b.seed, b.task)
        assert _curve(a) == _curve(b) and a.extra["threads"] == b.extra["threads"] == 1
    # the driver recorded every run in its store, as with the local executor
    with Store.open(_url(tmp_path, "ray.sqlite")) as store:
        assert store.counts()["runs"] == len({(r.task.max_iters, r.policy, r.seed)
                                              for r in remote.runs})
        for run_id in remote.best.run_ids:
            assert store.load(run_id).policy == remote.best.policy


@pytest.mark.slow
def test_cli_tune_executor_ray_end_to_end(ray_local, capsys, tmp_path):
    import json

    from lrbench.tuning.tune import tune

    db = _url(tmp_path, "cli-tune.sqlite")
    args = ["tune", "--task", "digits-mlp", "--budget", 700, "--bounds", "0.03,0.1",
            "--warm-start", "FIX(k0=0.05)", "--top", 3, "--threads", 1]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args + ["--executor", "ray", "--cpus-per-run", 1, "--db", db,
                                      "--json"]])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    d = json.loads(out)
    here = tune("digits-mlp", 700, bounds=(0.03, 0.1), warm_start=["FIX(k0=0.05)"], top=3,
                threads=1, progress=False)  # the same tune, trained in this process
    assert d["iterations_spent"] == here.iterations_spent and 0 < d["iterations_spent"] <= 700
    assert [(x["policy"], x["top1"], x["iterations"]) for x in d["recommendations"]] == [
        (x.policy, x.top1, x.iterations) for x in here.recommendations]
    with Store.open(db) as store:
        assert store.counts()["runs"] == len(here.runs)
    # resources the cluster lacks: the executor says so, in the command's terms
    if ray.cluster_resources().get("GPU", 0) < 1:
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args + ["--executor", "ray", "--gpus-per-run", 1]])
        _, err = capsys.readouterr()
        assert exc.value.code == 2
        assert err.strip().splitlines() == [
            "lrbench: error: --gpus-per-run=1 but the Ray cluster has 0 GPUs in all"]


# -- a cluster of three nodes on this machine (keep last: it replaces the module's local Ray) --
@pytest.mark.slow
@needs_proc
def test_a_node_removed_mid_benchmark_loses_no_run(tmp_path):
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    with _shared_database(tmp_path) as url:
        _remove_a_node_mid_benchmark(Cluster, url)


def _remove_a_node_mid_benchmark(Cluster, url: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": SMALL_STORE, "include_dashboard": False})
    ex = None
    try:
        nodes = [cluster.add_node(num_cpus=1, object_store_memory=SMALL_STORE) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        bench = _bench(iters=3000, eval_every=100)  # a few seconds a run
        ex = RayExecutor(threads=1)
        assert ex.workers == 2  # the head has no CPU: runs go to the two worker nodes
        outcome = []
        errors = []

        def drive() -> None:
            try:
                with Store.open(url) as store:
                    outcome.append(run_benchmark(bench, store, executor=ex, progress=False))
            except BaseException as e:  # pragma: no cover (reported below)
                errors.append(e)

        thread = threading.Thread(target=drive, daemon=True)
        thread.start()
        def busy_node():
            for node in nodes:
                runs = _training(parent=node.all_processes["raylet"][0].process.pid)
                if runs:
                    return node, set(runs)
            return None

        victim, lost = _wait_for(busy_node, 120, "a run training on a worker node")
        cluster.remove_node(victim)
        thread.join(timeout=300)
        assert not thread.is_alive() and not errors, errors
        assert (outcome[0].trained, outcome[0].failed) == (4, 0)
        _assert_all_recorded_once(url, bench)
        with Store.open(url) as store:
            status = {r.id: r.status for r in store.find_runs(task=bench.task)}
        assert lost <= set(status) and {status[i] for i in lost} == {"done"}
    finally:
        if ex is not None:
            ex.shutdown(cancel=True)
        ray.shutdown()
        cluster.shutdown()
