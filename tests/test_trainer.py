"""lrbench.train on real data (scikit-learn's 8x8 digits), and ``lrbench train`` on the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import lrbench  # noqa: E402
from lrbench.cli import main  # noqa: E402
from lrbench.data import DEBIAN_FASHION_MNIST_DIR  # noqa: E402
from lrbench.results import RunResult  # noqa: E402
from lrbench.tasks import get_task  # noqa: E402
from lrbench.trainer import divergence_bound, make_optimizer  # noqa: E402

torch.set_num_threads(1)

DIGITS = get_task("digits-mlp")  # batch 32, momentum 0.9, 1,000 iterations, R = 50
SHORT = get_task("digits-mlp", max_iters=60, eval_every=20)


def train(task=SHORT, policy="FIX(k0=0.05)", seed=0, **kwargs):
    return lrbench.train(task, policy, seed, threads=1, **kwargs)


def test_digits_mlp_reaches_90_percent_within_1000_iterations():
    result = train(DIGITS)
    s = result.summary()
    assert result.status == "done" and result.stop_reason == "max_iters"
    assert result.iterations == 1000
    assert s["top1"] >= 0.90 and s["best_iter"] <= 1000
    assert [p.iteration for p in result.curve] == list(range(50, 1001, 50))
    assert all(p.lr == 0.05 for p in result.curve)
    assert result.curve[-1].train_loss < result.curve[0].train_loss
    assert 0 < result.train_time < result.wall_time
    assert result.n_params == 1 and result.host
    assert result.extra["model_params"] == 64 * 128 + 128 + 128 * 10 + 10
    for key in ("top1", "top5", "ac", "cd", "cdac", "ld"):
        assert s[key] is not None and math.isfinite(s[key]), key


def test_digits_cnn_under_a_cyclic_policy():
    task = get_task("digits-cnn", max_iters=300, eval_every=100)
    result = train(task, "TRI(k0=0.005, k1=0.05, l=100)")
    assert result.status == "done" and result.summary()["top1"] >= 0.85
    policy = lrbench.parse("TRI(k0=0.005, k1=0.05, l=100)")
    assert [p.lr for p in result.curve] == [policy(99), policy(199), policy(299)]


def test_huge_lr_diverges_without_crashing():
    result = train(DIGITS, "FIX(k0=1000)")
    assert result.status == "diverged" and result.stop_reason == "diverged"
    assert 1 <= result.iterations < 50 and result.extra["diverged_at"] == result.iterations
    assert result.curve == ()
    s = result.summary()
    assert s["status"] == "diverged" and s["top1"] is None
    assert f"above {divergence_bound(10):g}" in result.extra["divergence"]


def test_nan_divergence_when_no_bound():
    result = train(DIGITS, "FIX(k0=10000)", divergence_loss=None)
    assert result.status == "diverged"
    assert "nan" in result.extra["divergence"] or "inf" in result.extra["divergence"]


def test_target_accuracy_stops_early():
    result = train(DIGITS, target_accuracy=0.9)
    assert result.stop_reason == "target" and result.status == "done"
    assert result.iterations < 1000 and result.iterations % 50 == 0
    assert result.curve[-1].top1 >= 0.9
    assert all(p.top1 < 0.9 for p in result.curve[:-1])


def test_same_seed_same_curve_other_seed_other_curve():
    a, b, c = train(seed=1), train(seed=1), train(seed=2)
    assert a.curve == b.curve  # bit for bit: every number of every point
    assert a.summary() | {"wall_time": 0, "iters_per_sec": 0} == \
        b.summary() | {"wall_time": 0, "iters_per_sec": 0}
    assert a.curve != c.curve
    assert [p.train_loss for p in a.curve] != [p.train_loss for p in c.curve]


def test_torch_global_rng_is_seeded_during_training():
    # for models with randomness in the forward pass (dropout): the run's seed, not the caller's
    seen = []
    train(seed=7, progress=lambda m: seen.append(torch.initial_seed()))
    assert seen and set(seen) == {7}


def test_global_rng_and_threads_are_left_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    before = torch.get_num_threads()
    lrbench.train(SHORT, "FIX(k0=0.05)", 0, threads=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == before


def test_run_result_round_trip():
    result = train()
    again = RunResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert RunResult.from_json(result.to_json()).summary() == result.summary()
    diverged = train(DIGITS, "FIX(k0=1000)")
    assert RunResult.from_dict(diverged.to_dict()) == diverged


def test_exception_during_training_is_a_failed_result():
    def progress(monitor):
        if monitor.iteration >= 40:
            raise RuntimeError("disk full")

    result = train(progress=progress)
    assert result.status == "failed" and result.stop_reason == "error"
    assert result.error.startswith("RuntimeError: disk full")
    assert result.iterations == 40
    assert [p.iteration for p in result.curve] == [20, 40]
    assert RunResult.from_dict(result.to_dict()) == result


@pytest.mark.parametrize("kwargs,match", [
    (dict(policy="FIX(k0=-1)"), "k0"),
    (dict(policy="NOPE(k0=1)"), "NOPE"),
    (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"),
    (dict(task=get_task("digits-mlp", model="lenet")), "13x13"),
    (dict(task=get_task("digits-mlp", model="vgg")), "unknown model"),
    (dict(task=get_task("digits-mlp", dataset="nope")), "nope"),
    (dict(task="no-such-preset"), "preset"),
    (dict(target_accuracy=2.0), "target_accuracy"),
    (dict(divergence_loss="big"), "divergence_loss"),
    (dict(threads=0), "threads"),
])
def test_bad_arguments_raise_before_training(kwargs, match):
    calls = []
    args = dict(task=SHORT, policy="FIX(k0=0.05)", seed=0, progress=calls.append) | kwargs
    task, policy, seed = args.pop("task"), args.pop("policy"), args.pop("seed")
    with pytest.raises(ValueError, match=match):
        lrbench.train(task, policy, seed, **args)
    assert calls == []


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_every_optimizer_trains(name):
    task = SHORT.replace(optimizer=name, momentum=0.9 if name != "sgd" else 0.5)
    policy = "FIX(k0=0.002)" if name in ("adam", "adamw", "rmsprop") else "FIX(k0=0.05)"
    result = train(task, policy)
    assert result.status == "done" and result.summary()["top1"] > 0.5
    opt = make_optimizer(task, [torch.nn.Parameter(torch.zeros(1))])
    group = opt.param_groups[0]
    assert group["weight_decay"] == task.weight_decay
    if name in ("momentum", "nesterov", "rmsprop"):
        assert group["momentum"] == 0.9
    if name == "nesterov":
        assert group["nesterov"]
    if name in ("adam", "adamw"):
        assert group["betas"] == (0.9, 0.999)
    if name == "sgd":
        assert group["momentum"] == 0


def test_store_records_the_run():
    pytest.importorskip("sqlalchemy")
    from lrbench.store import Store

    with Store.open("sqlite://") as store:
        result = train(store=store)
        assert store.get_run(result.task, result.policy, 0).summary() == result.summary()


def test_import_lrbench_does_not_import_torch():
    code = ("import sys, lrbench; assert 'torch' not in sys.modules; "
            "lrbench.train; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_lenet_smoke():
    task = get_task("fashion-mnist-lenet", max_iters=20, eval_every=20)
    result = train(task, "FIX(k0=0.01)")
    assert result.status == "done" and result.extra["model_params"] == 431_080
    assert result.extra["dataset"]["n_test"] == 10_000
    assert result.summary()["top1"] > 0.3


# -- the CLI ---------------------------------------------------------------------------------------
def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_cli_train_json(capsys):
    code, out, err = run_cli(
        capsys, "train", "--task", "digits-mlp", "--policy", "FIX(k0=0.05)", "--iters", "40",
        "--eval-every", "20", "--seed", "3", "--threads", "1", "--json")
    assert code == 0
    summary = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert out.count("\n") == 1
    for key in ("top1", "top5", "ac", "cd", "cdac", "ld", "best_iter", "status", "iterations"):
        assert key in summary, key
    assert summary["status"] == "done" and summary["iterations"] == 40 and summary["seed"] == 3
    assert summary["policy"] == "FIX(k0=0.05)"
    assert err == ""


def test_cli_train_custom_task_table(capsys):
    code, out, err = run_cli(
        capsys, "train", "--dataset", "digits", "--model", "digits-cnn", "--policy",
        "FIX(k0=0.05)", "--iters", "30", "--eval-every", "15", "--batch-size", "16",
        "--optimizer", "nesterov", "--target-accuracy", "0.99", "--threads", "1")
    assert code == 0
    assert "top-1 (best)" in out and "digits / digits-cnn" in out and "nesterov" in out
    assert "Traceback" not in err


def test_cli_diverged_run_is_reported_not_an_error(capsys):
    code, out, _ = run_cli(capsys, "train", "--task", "digits-mlp", "--policy", "FIX(k0=1000)",
                           "--threads", "1", "--json")
    assert code == 0 and json.loads(out)["status"] == "diverged"


@pytest.mark.parametrize("args,match", [
    (["--task", "digits-mlp", "--policy", "FIX(k0=-1)"], "k0"),
    (["--task", "digits-mlp"], "--policy"),
    (["--task", "nope", "--policy", "FIX(k0=0.1)"], "preset"),
    (["--model", "mlp", "--policy", "FIX(k0=0.1)"], "--dataset"),
    (["--dataset", "digits", "--model", "lenet", "--policy", "FIX(k0=0.1)"], "13x13"),
    (["--dataset", "digits", "--model", "nope", "--policy", "FIX(k0=0.1)"], "unknown model"),
    (["--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--iters", "abc"], "iters"),
    (["--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--iters", "0"], "max_iters"),
    (["--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--optimizer", "lbfgs"], "optimizer"),
    (["--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--target-accuracy", "95"], "target"),
    (["--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--seed", "-2"], "seed"),
    (["--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--threads", "0"], "threads"),
    (["--dataset", "mnist", "--model", "lenet", "--policy", "FIX(k0=0.1)", "--data-root",
      "/nonexistent", "--json"], "mnist"),
])
def test_cli_bad_input_one_line_exit_2(capsys, monkeypatch, tmp_path, args, match):
    # no network, no cached copy: a missing dataset must fail fast and in one line
    monkeypatch.setenv("LRBENCH_DATA_URL", "file:///nonexistent/{name}/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, out, err = run_cli(capsys, "train", *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("lrbench: error:")
    assert match in err
