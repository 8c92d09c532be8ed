"""``lrbench run / rank / report`` (issue #5): a real benchmark on the bundled digits, run by the
real command in a subprocess; reruns that train nothing; Ctrl-C in the middle; diverged runs;
and bad configs or flags -> one line on stderr, exit code 2, no traceback.

The training runs are tiny (digits-mlp, 40-1000 iterations); a subprocess pays for starting
Python, its worker pool and loading the digits, so every subprocess test counts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from procgroups import wait_group_gone

from lrbench.cli import main
from lrbench.ranking import rank, summarize
from lrbench.runner import Benchmark
from lrbench.store import Store
from lrbench.tasks import get_task

TASK = "digits-mlp"
ITERS, EVAL = 40, 10
POLICIES = ["FIX(k0=0.05)", "COS(k0=0.1, k1=0.001, l=60)", "FIX(k0=1000)"]
DIVERGING = "FIX(k0=1000.0)"  # canonical notation of "FIX(k0=1000)"
REPEATS = 2


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Never the user's database: a command that forgot --db lands in tmp_path.
    env["LRBENCH_DB"] = f"sqlite:///{tmp_path / 'env-default.sqlite'}"
    env["COLUMNS"] = "200"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONWARNINGS", None)
    return env


def lrbench(tmp_path: Path, *args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """``lrbench ARGS`` as a user runs it: a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "lrbench.cli", *map(str, args)], cwd=tmp_path,
        env=_env(tmp_path), capture_output=True, text=True, timeout=timeout,
    )


def run_in_process(capsys, *args: object) -> tuple[int, str, str]:
    """``lrbench ARGS`` in this process (for commands that train nothing)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture(autouse=True)
def _no_user_database(monkeypatch, tmp_path):
    monkeypatch.setenv("LRBENCH_DB", f"sqlite:///{tmp_path / 'env-default.sqlite'}")


def _bench(policies=POLICIES, repeats=REPEATS, iters=ITERS, eval_every=EVAL) -> Benchmark:
    return Benchmark.make(TASK, policies, repeats=repeats, iters=iters, eval_every=eval_every)


def _run_args(db: str, policies=POLICIES, repeats=REPEATS, iters=ITERS, eval_every=EVAL,
              workers: int = 1) -> list[str]:
    # One thread per worker: these runs are tiny, and two torch threads on a busy 2-core
    # machine spin against each other.
    args = ["run", "--task", TASK, "--iters", str(iters), "--eval-every", str(eval_every),
            "--repeats", str(repeats), "--workers", str(workers), "--threads", "1", "--db", db]
    for p in policies:
        args += ["--policy", p]
    return args


def _snapshot(store: Store, task) -> dict[tuple[str, int], tuple]:
    """(policy, seed) -> (id, status, iterations, finished_at) of every run of ``task``."""
    rows = store.find_runs(task=task)
    snap = {(r.policy, r.seed): (r.id, r.status, r.iterations, r.finished_at) for r in rows}
    assert len(snap) == len(rows), "a (policy, seed) is stored twice"
    return snap


def _table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table: its cells, stripped."""
    return [[c.strip() for c in line.strip().strip("│").split("│")]
            for line in text.splitlines() if line.lstrip().startswith("│")]


def _row_key(cells: list[str]) -> tuple[str, float]:
    # Columns: #, LR, k0, k1, gamma, p, l, ...: (function, k0) tells these policies apart.
    return cells[1], float(cells[2])


def _policy_key(notation: str) -> tuple[str, float]:
    m = re.match(r"(\w+)\(k0=([0-9.e+-]+)", notation)
    assert m, notation
    return m.group(1), float(m.group(2))


# -- one benchmark, end to end, then everything that reads it --------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small benchmark run once by ``lrbench run CONFIG`` in a subprocess:
    (tmp dir, db URL, process)."""
    tmp = tmp_path_factory.mktemp("bench")
    db = f"sqlite:///{tmp / 'x.sqlite'}"
    policies = "".join(f"  - {p}\n" for p in POLICIES)
    (tmp / "bench.yaml").write_text(
        f"# a small benchmark\ntask: {TASK}\npolicies:\n{policies}repeats: {REPEATS}\n"
        f"iters: {ITERS}\neval_every: {EVAL}\nworkers: 1\nthreads: 1\n")
    proc = lrbench(tmp, "run", "bench.yaml", "--db", db)
    return tmp, db, proc


def test_run_stores_every_run_once_and_prints_the_ranking(finished):
    tmp, db, proc = finished
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    bench = _bench()
    n = len(POLICIES) * REPEATS
    assert f"{n} runs trained, 0 already in {db}" in proc.stderr
    with Store.open(db) as store:
        snap = _snapshot(store, bench.task)
        assert set(snap) == {(p, s) for p in bench.policies for s in bench.seeds}
        for (policy, seed), (_, status, iterations, _) in snap.items():
            if policy == DIVERGING:
                # k0=1000 blows up in a couple of steps: stored as diverged, nothing else broke.
                assert status == "diverged" and iterations < ITERS, (policy, seed)
            else:
                assert status == "done" and iterations == ITERS, (policy, seed)
                run = store.get_run(bench.task, policy, seed)
                assert [p.iteration for p in run.curve] == list(range(EVAL, ITERS + 1, EVAL))
        expected = [r.stats.policy for r in rank(summarize(store.runs(task=bench.task)))]
    assert sorted(expected) == sorted(bench.policies) and expected[-1] == DIVERGING
    # The printed table lists the policies in rank order; the diverged one says so.
    rows = _table_rows(proc.stdout)
    assert [_row_key(r) for r in rows] == [_policy_key(p) for p in expected]
    # progress goes to stderr, so `lrbench run > table.txt` holds only the results
    assert "all runs" in proc.stderr and "all runs" not in proc.stdout
    assert "2/2 diverged" in rows[-1][-5]
    assert "digits / mlp" in proc.stdout and f"{ITERS} iterations" in proc.stdout


def test_a_benchmark_whose_every_run_fails_exits_1(tmp_path):
    # MNIST is nowhere here and its download is refused: each run fails in its worker.
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    args = ["run", "--task", "mnist-lenet", "--policy", "FIX(k0=0.01)", "--iters", "10",
            "--eval-every", "10", "--workers", "1", "--threads", "1", "--db", db]
    env = {**_env(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "LRBENCH_DATA_URL": f"file://{tmp_path}/no-mirror/{{name}}"}
    env.pop("LRBENCH_DATA", None)
    proc = subprocess.run([sys.executable, "-m", "lrbench.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # the reason, in one line
    assert last.startswith("lrbench: every run failed; the first: DatasetNotFoundError"), last
    with Store.open(db) as store:
        (row,) = store.find_runs(task=get_task("mnist-lenet", max_iters=10, eval_every=10))
        assert row.status == "failed"


def test_rerun_trains_nothing_and_prints_json(finished, capsys):
    tmp, db, first = finished
    assert first.returncode == 0, first.stderr
    bench = _bench()
    with Store.open(db) as store:
        before = _snapshot(store, bench.task)
    proc = lrbench(tmp, *_run_args(db), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # nothing but the JSON on stdout
    n = len(POLICIES) * REPEATS
    assert data["db"] == db
    assert (data["planned"], data["already_done"], data["trained"]) == (n, n, 0)
    assert (data["failed"], data["diverged"]) == (0, 0)  # of this call: it trained nothing
    ranking = data["ranking"]
    assert [r["position"] for r in ranking] == sorted(r["position"] for r in ranking)
    assert ranking[0]["position"] == 1
    assert {r["policy"] for r in ranking} == set(bench.policies)
    by_policy = {r["policy"]: r for r in ranking}
    assert by_policy[DIVERGING]["n_runs"] == by_policy[DIVERGING]["n_diverged"] == REPEATS
    assert ranking[-1]["policy"] == DIVERGING
    for r in ranking:
        assert r["n_runs"] == REPEATS and r["n_failed"] == 0
        assert {"lr", "k0", "iter", "top1_pct", "top1_pct_std", "ac", "cd", "cdac"} <= set(r)
        if r["policy"] != DIVERGING:
            assert 50 < r["top1_pct"] <= 100 and r["iter"] <= ITERS
    # And in the database: the very same runs, none trained again, none added.
    with Store.open(db) as store:
        assert _snapshot(store, bench.task) == before
        assert store.counts()["runs"] == n

    # The same benchmark from the config file this time (same task, same runs): nothing to do.
    code, out, err = run_in_process(capsys, "run", tmp / "bench.yaml", "--db", db)
    assert code == 0, err
    assert f"0 runs trained, {n} already in {db}" in err
    assert [_row_key(r) for r in _table_rows(out)] == [_policy_key(r["policy"]) for r in ranking]
    with Store.open(db) as store:
        assert _snapshot(store, bench.task) == before


def test_rank_and_report_read_the_benchmark(finished, capsys):
    tmp, db, first = finished
    assert first.returncode == 0, first.stderr
    with Store.open(db) as store:
        expected = [r.stats.policy for r in rank(summarize(store.runs(task=_bench().task)))]

    # The preset alone finds the only stored digits-mlp task (its iterations differ from 1000).
    code, out, err = run_in_process(capsys, "rank", "--task", TASK, "--db", db, "--format", "json")
    assert code == 0, err
    assert [r["policy"] for r in json.loads(out)] == expected
    code, out, err = run_in_process(capsys, "rank", "--task", TASK, "--iters", ITERS,
                                    "--eval-every", EVAL, "--db", db, "--top", "1",
                                    "--format", "json")
    assert code == 0, err
    top = json.loads(out)  # position 1, with any policy tied with it
    assert [r["policy"] for r in top] == expected[:len(top)]
    assert {r["position"] for r in top} == {1} and DIVERGING not in {r["policy"] for r in top}
    code, out, err = run_in_process(capsys, "rank", "--task", TASK, "--db", db)
    assert code == 0, err
    assert [_row_key(r) for r in _table_rows(out)] == [_policy_key(p) for p in expected]
    code, out, err = run_in_process(capsys, "rank", "--task", TASK, "--db", db,
                                    "--format", "markdown")
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + len(expected)  # header, rule, one row per policy

    report = tmp / "report.html"
    code, out, err = run_in_process(capsys, "report", "--task", TASK, "-o", report, "--db", db)
    assert code == 0, err
    assert out.strip() == f"wrote {report}"
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert html.count("<table") >= 2
    for policy in expected:
        assert policy in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 2
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script src=" not in html and "<link " not in html  # self-contained


# -- Ctrl-C ---------------------------------------------------------------------------------
def _statuses(store: Store, task) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in store.find_runs(task=task):
        out[r.status] = out.get(r.status, 0) + 1
    return out


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _poll(store: Store, task, until, proc: subprocess.Popen, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        counts = _statuses(store, task)
        if until(counts):
            return counts
        if proc.poll() is not None:
            raise AssertionError(f"lrbench run ended early ({proc.returncode}) at {counts}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; runs: {counts}")
        time.sleep(0.02)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_keeps_finished_runs_and_a_rerun_finishes_the_rest(tmp_path):
    db = f"sqlite:///{tmp_path / 'int.sqlite'}"
    # 4 runs of ~1 s each (a run must last far longer than the 0.15 s sleep below).
    policies, repeats, iters, every = ["FIX(k0=0.05)", "EXP(k0=0.1, gamma=0.999)"], 2, 1000, 100
    bench = _bench(policies, repeats, iters, every)
    n = bench.n_runs
    Store.open(db).close()  # create the schema, so that this process can watch the runs
    args = _run_args(db, policies, repeats, iters, every, workers=1)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as fo, open(err, "w") as fe, Store.open(db) as store:
        # As a terminal's foreground job, whatever this process inherited: a job started in
        # the background by a non-interactive shell (nohup, `&`) ignores SIGINT, and a child
        # inherits that, so without this the test would only pass when pytest runs in front.
        proc = subprocess.Popen([sys.executable, "-m", "lrbench.cli", *args], cwd=tmp_path,
                                env=_env(tmp_path), stdout=fo, stderr=fe,
                                start_new_session=True, preexec_fn=_default_sigint)
        try:
            # One run finished and the next one just claimed: Ctrl-C lands mid-run, not in
            # the middle of a claim (one worker; a run takes far longer than the sleep).
            _poll(store, bench.task, lambda c: c.get("done", 0) >= 1 and c.get("running"), proc)
            time.sleep(0.15)
            # A terminal sends Ctrl-C to the whole foreground group: driver, workers, manager.
            os.killpg(proc.pid, signal.SIGINT)
            rc = proc.wait(timeout=60)
            wait_group_gone(proc.pid)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        stderr = err.read_text()
        assert rc == 130, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == (
            "lrbench: interrupted; finished runs are stored, run again to resume")
        after_int = _snapshot(store, bench.task)
        counts = _statuses(store, bench.task)
        # Finished runs kept; the one in progress given back (pending), none left running.
        assert 1 <= counts.get("done", 0) < n, counts
        assert counts.get("running", 0) == 0, counts
        assert counts.get("done", 0) + counts.get("pending", 0) == n, counts
        kept = {k: v for k, v in after_int.items() if v[1] == "done"}

        again = lrbench(tmp_path, *args)
        assert again.returncode == 0, again.stderr
        assert f"{n - len(kept)} runs trained, {len(kept)} already in {db}" in again.stderr
        final = _snapshot(store, bench.task)
        assert set(final) == {(p, s) for p in bench.policies for s in bench.seeds}
        assert all(v[1] == "done" and v[2] == iters for v in final.values()), final
        for key, row in kept.items():
            assert final[key] == row  # not trained again: same id, same finish time
        for policy, seed in final:
            assert len(store.get_run(bench.task, policy, seed).curve) == iters // every


# -- bad input -> one line, exit code 2 ------------------------------------------------------
GOOD = 'task: digits-mlp\npolicies: ["FIX(k0=0.05)"]\niters: 30\n'

CONFIG_ERRORS = {
    # name: (config text, (what the message must contain, besides the file name))
    "unknown function": ('task: digits-mlp\npolicies: ["FIX(k0=0.1)", "FOO(k0=0.1)"]\n',
                         ("policies[1]", "unknown LR function 'FOO'")),
    "malformed notation": ('task: digits-mlp\npolicies: ["SIN2(k0=0.01, k1="]\n',
                           ("policies[0]", "cannot parse policy", "expected number")),
    "bad parameter": ('task: digits-mlp\npolicies: ["FIX(k0=-1)"]\n',
                      ("policies[0]", "k0 must be > 0")),
    "policies not a list": ('task: digits-mlp\npolicies: "FIX(k0=0.1)"\n',
                            ("policies:", "must be a list")),
    "no policies": ("task: digits-mlp\npolicies: []\n", ("policies:", "missing")),
    "unknown task": ('task: imagenet-vgg\npolicies: ["FIX(k0=0.1)"]\n',
                     ("task:", "unknown task preset 'imagenet-vgg'")),
    "unknown dataset": ('task: {preset: digits-mlp, dataset: imagenet}\n'
                        'policies: ["FIX(k0=0.1)"]\n',
                        ("task: dataset:", "unknown dataset 'imagenet'")),
    "unknown task field": ('task: {preset: digits-mlp, batch: 3}\npolicies: ["FIX(k0=0.1)"]\n',
                           ("task:", "batch", "Extra inputs")),
    "no task": ('policies: ["FIX(k0=0.1)"]\n', ("task:", "missing")),
    "zero iters": (GOOD.replace("iters: 30", "iters: 0"), ("iters:", ">= 1", "got 0")),
    "negative iters": (GOOD.replace("iters: 30", "iters: -5"), ("iters:", ">= 1", "got -5")),
    "zero eval_every": (GOOD + "eval_every: 0\n", ("eval_every:", ">= 1")),
    "repeats a word": (GOOD + "repeats: three\n", ("repeats:", "whole number", "'three'")),
    "repeats a fraction": (GOOD + "repeats: 2.5\n", ("repeats:", "whole number", "2.5")),
    "negative seed": (GOOD + "seeds: [0, -1]\n", ("seeds:", ">= 0")),
    "no seeds": (GOOD + "seeds: []\n", ("seeds", "at least one seed")),
    "target accuracy": (GOOD + "target_accuracy: 1.5\n", ("target_accuracy:", "(0, 1]")),
    "zero workers": (GOOD + "workers: 0\n", ("workers:", ">= 1")),
    "unknown key": (GOOD + "polices: []\n", ("unknown key 'polices'", "valid keys")),
    "yaml syntax": ('task: digits-mlp\npolicies: ["FIX(k0=0.1)"\niters: 30\n',
                    ("not valid YAML", "(line ")),
    "not a mapping": ("- digits-mlp\n- FIX(k0=0.1)\n", ("a config file is a mapping",)),
}


def _assert_one_line_error(code: int, out: str, err: str, *parts: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lrbench: error: "), err
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.mark.parametrize("name", list(CONFIG_ERRORS))
def test_bad_config_is_one_line_naming_file_key_and_reason(capsys, tmp_path, name):
    text, parts = CONFIG_ERRORS[name]
    config = tmp_path / "bench.yaml"
    config.write_text(text)
    db = tmp_path / "never.sqlite"
    code, out, err = run_in_process(capsys, "run", config, "--db", f"sqlite:///{db}")
    _assert_one_line_error(code, out, err, f"{config}: ", *parts)
    assert not db.exists()  # refused before touching the database


def test_missing_config_file(capsys, tmp_path):
    config = tmp_path / "nowhere" / "bench.yaml"
    code, out, err = run_in_process(capsys, "run", config)
    _assert_one_line_error(code, out, err, f"{config}: cannot read the config file",
                           "No such file")


def test_a_valid_config_passes_validation(tmp_path):
    # The same checks accept a good config (so the cases above fail for their one reason).
    from lrbench.cli.bench import _benchmark, load_config

    config = tmp_path / "ok.yaml"
    config.write_text(GOOD + "repeats: 2\neval_every: 10\nworkers: 1\ntarget_accuracy: 0.9\n")
    bench = _benchmark(load_config(config), str(config))
    assert (bench.task.max_iters, bench.task.eval_every) == (30, 10)
    assert bench.policies == ("FIX(k0=0.05)",) and bench.seeds == (0, 1)
    assert bench.target_accuracy == 0.9


FLAG_ERRORS = {
    "zero workers": (["--workers", "0"], ("workers:", ">= 1, got 0")),
    "negative workers": (["--workers", "-2"], ("workers:", ">= 1, got -2")),
    "zero threads": (["--threads", "0"], ("threads:", ">= 1")),
    "zero iters": (["--iters", "0"], ("iters:", ">= 1")),
    "zero repeats": (["--repeats", "0"], ("repeats:", ">= 1")),
    "iters not a number": (["--iters", "ten"], ("--iters", "integer")),
    "unknown flag": (["--bogus"], ("--bogus",)),
    "bad policy": (["--policy", "COS(k0=0.1"], ("command line: policies[1]", "cannot parse")),
    "unknown task": (["--task", "nope"], ("command line: task:", "unknown task preset 'nope'")),
    "target accuracy": (["--target-accuracy", "0"], ("target_accuracy", "(0, 1]")),
    "negative stale-after": (["--stale-after", "-5"], ("--stale-after", ">= 0 seconds")),
}


@pytest.mark.parametrize("name", list(FLAG_ERRORS))
def test_bad_flags_are_one_line_errors(capsys, tmp_path, name):
    flags, parts = FLAG_ERRORS[name]
    db = tmp_path / "never.sqlite"
    args = ["run", "--task", TASK, "--policy", "FIX(k0=0.05)", "--iters", "30",
            "--db", f"sqlite:///{db}", *flags]
    code, out, err = run_in_process(capsys, *args)
    _assert_one_line_error(code, out, err, *parts)
    assert not db.exists()


@pytest.mark.parametrize("args, parts", [
    (["rank"], ("--task is required",)),
    (["rank", "--task", TASK, "--format", "xml"], ("--format", "'xml'")),
    (["rank", "--task", TASK, "--top", "0"], ("--top must be >= 1",)),
    (["rank", "--task", TASK, "--by", "top1", "--lexicographic", "top1"], ("only one of",)),
    (["rank", "--task", TASK, "--weights", "top1"], ("--weights", "METRIC=NUMBER")),
    (["rank", "--task", "nope"], ("unknown task preset 'nope'",)),
    (["rank", "--task", TASK], ("no runs stored for task 'digits-mlp'",)),
    (["report", "--task", TASK, "-o", "report.pdf"], ("--output must end in .html",)),
    (["report"], ("--task is required",)),
    (["demo", "--repeats", "0"], ("--repeats must be >= 1",)),
])
def test_bad_rank_report_demo_input(capsys, tmp_path, args, parts):
    code, out, err = run_in_process(capsys, *args)
    _assert_one_line_error(code, out, err, *parts)


def test_errors_from_the_real_command(tmp_path):
    """The same contract through the real entry point: exit status 2, one line, no trace."""
    proc = lrbench(tmp_path, "run", "--task", TASK, "--policy", "FIX(k0=0.1)", "--workers", "0",
                   timeout=60)
    _assert_one_line_error(proc.returncode, proc.stdout, proc.stderr,
                           "command line: workers: must be >= 1, got 0")
    assert proc.stdout == ""
    assert not (tmp_path / "env-default.sqlite").exists()
