"""The Optuna bridge (lrbench.tuning.optuna_bridge) and ``lrbench optuna``."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

from lrbench.policies import PAPER_FUNCTIONS, parse  # noqa: E402
from lrbench.tasks import get_task  # noqa: E402
from lrbench.tuning.candidates import CYCLIC_FUNCTIONS  # noqa: E402
from lrbench.tuning.optuna_bridge import (  # noqa: E402
    ALL_FAMILIES,
    best_policy,
    objective,
    resolve_families,
    run_optuna,
    suggest_policy,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

L, E = 1000, 42
LO, HI = 1e-4, 1.0


def _sample(n: int, seed: int = 0, **kwargs):
    policies = []

    def f(trial):
        policies.append(suggest_policy(trial, **kwargs))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(f, n_trials=n)
    return policies, study


def _check(p, lo=LO, hi=HI, length=L):
    assert parse(str(p)) == p, str(p)
    params = p.params
    if p.kind == "cyclic":
        assert lo <= params["k0"] < params["k1"] <= hi
        assert 1 <= params["l"] and 2 * params["l"] <= length
    else:
        assert lo <= params["k0"] <= hi
        assert "k1" not in params
    if "gamma" in params:
        if p.name == "INV":
            assert 0 < params["gamma"]
        else:
            assert 0 < params["gamma"] <= 1
    if p.name in ("STEP", "POLY"):
        assert 1 <= params["l"] <= length
    if p.name == "NSTEP":
        ms = params["l"]
        assert all(b > a for a, b in zip(ms, ms[1:])) and 1 <= ms[0] and ms[-1] < length
    if p.name in ("STEP", "NSTEP"):
        assert 0.05 <= params["gamma"] <= 0.9
    if p.name == "INV":
        assert 0.25 <= params["p"] <= 1.5


def test_space_gives_valid_policies_of_every_family():
    policies, study = _sample(400, max_iters=L, epoch_iters=E)
    assert {p.name for p in policies} == set(PAPER_FUNCTIONS)
    for p in policies:
        _check(p)
    # the parameters are namespaced per function (so TPE sees a conditional space)
    for t in study.trials:
        fn = t.params["function"]
        assert all(k == "function" or k.startswith(fn + ".") for k in t.params)


def test_space_replays_with_fixed_trial_and_respects_bounds():
    policies, study = _sample(60, seed=3, max_iters=300, epoch_iters=E, lr_bounds=(0.001, 0.1))
    for p, t in zip(policies, study.trials):
        again = suggest_policy(optuna.trial.FixedTrial(t.params), max_iters=300, epoch_iters=E,
                               lr_bounds=(0.001, 0.1))
        assert again == p
        _check(p, lo=0.001, hi=0.1, length=300)


def test_fixed_trial_examples():
    p = suggest_policy(optuna.trial.FixedTrial(
        {"function": "SIN2", "SIN2.k1": 0.1, "SIN2.k0_frac": 0.5, "SIN2.l": 84}),
        max_iters=L, epoch_iters=E)
    assert str(p) == "SIN2(k0=0.00316228, k1=0.1, l=84)"
    p = suggest_policy(optuna.trial.FixedTrial(
        {"function": "EXP", "EXP.k0": 0.1, "EXP.half_life": 100.0}), max_iters=L, epoch_iters=E)
    assert p.params["gamma"] == pytest.approx(0.5 ** (1 / 100), abs=1e-8)
    # milestones: fractions of max_iters, sorted, repeats dropped
    p = suggest_policy(optuna.trial.FixedTrial(
        {"function": "NSTEP", "NSTEP.k0": 0.1, "NSTEP.gamma": 0.1, "NSTEP.n": 3,
         "NSTEP.f0": 0.75, "NSTEP.f1": 0.5, "NSTEP.f2": 0.5}), max_iters=L, epoch_iters=E)
    assert p.params["l"] == (500, 750)


def test_tiny_max_iters_still_valid():
    policies, _ = _sample(80, seed=1, max_iters=10, epoch_iters=42)
    for p in policies:
        _check(p, length=10)


def test_families_filter():
    policies, _ = _sample(40, max_iters=L, epoch_iters=E, families=["sin2", "COS"])
    assert {p.name for p in policies} == {"SIN2", "COS"}
    policies, _ = _sample(40, max_iters=L, epoch_iters=E, families="cyclic")
    assert {p.name for p in policies} <= set(CYCLIC_FUNCTIONS)
    assert resolve_families(["decaying", "FIX", "fix"]) == (
        "FIX", "STEP", "NSTEP", "EXP", "INV", "POLY")
    assert resolve_families(ALL_FAMILIES) == ALL_FAMILIES
    with pytest.raises(ValueError, match="families"):
        resolve_families(["LIN"])
    with pytest.raises(ValueError, match="families"):
        resolve_families([])
    with pytest.raises(ValueError, match="lr_bounds"):
        suggest_policy(optuna.trial.FixedTrial({}), max_iters=L, lr_bounds=(0.1, 0.1))
    with pytest.raises(ValueError, match="max_iters"):
        suggest_policy(optuna.trial.FixedTrial({}), max_iters=0)


def test_study_on_digits_records_every_run(tmp_path):
    from lrbench.store import open_store

    url = f"sqlite:///{tmp_path / 'lr.db'}"
    task = get_task("digits-mlp", max_iters=100)
    study = run_optuna(task, 6, sampler="random", pruner="none", seed=0, store=url, threads=1)
    assert len(study.trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    with open_store(url) as store:
        for t in study.trials:
            run = store.get_run(task, t.user_attrs["policy"], 0)
            assert run is not None and run.status == "done" and run.iterations == 100
            assert str(parse(run.policy)) == t.user_attrs["policy"]
            assert len(t.user_attrs["run_ids"]) == 1 and t.user_attrs["run_ids"][0] is not None
            assert run.extra["optuna"]["trial"] == t.number
            assert run.extra["optuna"]["pruned"] is False
            assert math.isclose(t.value, max(p.top1 for p in run.curve))
        assert len(store.find_runs()) == 6
    assert study.best_value > 0.5
    assert best_policy(study) == study.best_trial.user_attrs["policy"]
    # In memory, the study's name is fixed by the task and seed: the same call, the same trials
    # (Hyperband's brackets hash the name).
    assert study.study_name == "lrbench-digits-mlp-seed0"
    again = run_optuna(task, 6, sampler="random", pruner="none", seed=0, store=url, threads=1)
    assert [t.user_attrs["policy"] for t in again.trials] == [
        t.user_attrs["policy"] for t in study.trials]


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_pruning_stops_training_and_records_the_short_run(tmp_path):
    from lrbench.store import open_store

    url = f"sqlite:///{tmp_path / 'lr.db'}"
    task = get_task("digits-mlp", max_iters=150)  # evaluations at 50, 100, 150
    study = run_optuna(task, 2, sampler="random", pruner=_AlwaysPrune(), seed=0, store=url,
                       threads=1, seeds=(0, 1))
    with open_store(url) as store:
        for t in study.trials:
            assert t.state == optuna.trial.TrialState.PRUNED
            assert t.user_attrs["pruned_at"] == 50
            assert t.intermediate_values.keys() == {50}
            assert store.get_run(task, t.user_attrs["policy"], 0) is None  # not a full run
            short = task.replace(max_iters=50, eval_every=50)
            run = store.get_run(short, t.user_attrs["policy"], 0)
            assert run.iterations == 50 < task.max_iters and run.status == "done"
            assert run.extra["optuna"]["pruned"] is True
            assert run.extra["optuna"]["full_max_iters"] == 150
        # later seeds of a pruned trial are not trained
        assert len(store.find_runs()) == 2 and {r.seed for r in store.find_runs()} == {0}
    with pytest.raises(ValueError, match="no completed trial"):
        best_policy(study)


def test_objective_with_own_study_and_no_pruning():
    task = get_task("digits-mlp", max_iters=100)
    fn = objective(task, families=["FIX"], lr_bounds=(0.01, 0.1), prune=False, threads=1)
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune(),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(fn, n_trials=1)
    (t,) = study.trials
    assert t.state == optuna.trial.TrialState.COMPLETE  # prune=False ignores the pruner
    assert t.user_attrs["policy"].startswith("FIX(") and t.user_attrs["run_ids"] == [None]
    assert sorted(t.intermediate_values) == [50, 100]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrbench.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_json_end_to_end(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    r = _cli("optuna", "--task", "digits-mlp", "--trials", "3", "--iters", "100",
             "--sampler", "random", "--pruner", "none", "--seed", "1", "--threads", "1",
             "--families", "cyclic,FIX", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["trials"]) == 3 and out["sampler"] == "random" and out["pruner"] == "none"
    assert out["best"]["top1"] == max(t["top1"] for t in out["trials"])
    assert out["best"]["policy"] in [t["policy"] for t in out["trials"]]
    for t in out["trials"]:
        assert parse(t["policy"]).name in set(CYCLIC_FUNCTIONS) | {"FIX"}
        assert t["state"] == "complete" and len(t["run_ids"]) == 1


@pytest.mark.parametrize("args, words", [
    ([], "--task"),
    (["--task", "digits-mlp"], "--trials"),
    (["--task", "digits-mlp", "--trials", "0"], "--trials"),
    (["--task", "nope", "--trials", "2"], "preset"),
    (["--task", "digits-mlp", "--trials", "2", "--sampler", "grid"], "--sampler"),
    (["--task", "digits-mlp", "--trials", "2", "--pruner", "sha"], "--pruner"),
    (["--task", "digits-mlp", "--trials", "2", "--families", "LIN"], "--families"),
    (["--task", "digits-mlp", "--trials", "2", "--bounds", "1,0.1"], "--bounds"),
    (["--task", "digits-mlp", "--trials", "2", "--iters", "1"], "--iters"),
])
def test_cli_bad_input_exit_2(args, words):
    r = _cli("optuna", *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


def test_import_lrbench_tuning_does_not_import_optuna_or_torch():
    code = ("import sys, lrbench, lrbench.tuning, lrbench.tuning.optuna_bridge; "
            "print(sorted(m for m in ('optuna', 'torch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
