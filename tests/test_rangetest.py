"""LR range tests (lrbench.tuning): the paper's FIX grid, Smith's sweep, plots and the CLI.

The known good range of digits-mlp (batch 32, SGD momentum 0.9), measured with short FIX runs
(top-1 after 100 / 210 iterations, seeds 0-2): 1e-3 ~0.74 / 0.85, 0.01 ~0.91 / 0.94,
0.03 ~0.94 / 0.955, 0.1 ~0.95 / 0.965, 0.3 ~0.91 / 0.92, 1 ~0.22-0.34, >= 3 diverges within
a few iterations. So the good FIX range holds 0.03-0.1 and never 1 or above.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lrbench.tuning import (
    FixRangeResult,
    SmithRangeResult,
    exponential_lrs,
    good_fix_range,
    lr_grid,
    probe_fix,
    range_test,
    smith_suggestions,
    smooth_losses,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- the grid, the sweep and the smoothing (no torch) ---------------------------------------------
def test_lr_grid_decades_and_finer_steps():
    assert lr_grid() == (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
    assert lr_grid(1e-3, 1.0, (1,)) == (0.001, 0.01, 0.1, 1.0)
    assert lr_grid(0.01, 1.0, (1, 2, 5)) == (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    # bounds off the grid: only grid points inside [min_lr, max_lr]
    assert lr_grid(2e-4, 0.5, (1, 3)) == (3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3)
    assert lr_grid(1, 100) == (1.0, 3.0, 10.0, 30.0, 100.0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(min_lr=1.0, max_lr=1.0), "min_lr"),
    (dict(min_lr=1.0, max_lr=0.1), "min_lr"),
    (dict(min_lr=0.0, max_lr=1.0), "min_lr"),
    (dict(min_lr=-1e-3, max_lr=1.0), "min_lr"),
    (dict(min_lr=1e-3, max_lr=math.inf), "max_lr"),
    (dict(min_lr=1e-3, max_lr=math.nan), "max_lr"),
    (dict(mantissas=(1, 10)), "mantissas"),
    (dict(mantissas=(0.5,)), "mantissas"),
    (dict(mantissas=()), "mantissas"),
    (dict(mantissas="13"), "mantissas"),
    (dict(min_lr=0.2, max_lr=0.25), "grid"),  # no grid point at all
])
def test_lr_grid_bad_input_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lr_grid(**kwargs)


@pytest.mark.parametrize("start, end, n", [(1e-7, 10.0, 100), (1e-4, 1.0, 2), (0.003, 7.5, 37)])
def test_exponential_lrs_are_exactly_the_formula(start, end, n):
    lrs = exponential_lrs(start, end, n)
    assert lrs.dtype == np.float64 and lrs.shape == (n,)
    for i in range(n):
        assert lrs[i] == start * (end / start) ** (i / (n - 1))  # exact, not approx
    assert lrs[0] == start
    assert lrs[-1] == pytest.approx(end, rel=1e-12)
    assert np.all(np.diff(lrs) > 0)
    ratios = lrs[1:] / lrs[:-1]  # geometric: a constant factor per step
    assert np.allclose(ratios, (end / start) ** (1 / (n - 1)), rtol=1e-10)


@pytest.mark.parametrize("args, name", [
    ((1.0, 1.0, 10), "start_lr"),
    ((2.0, 1.0, 10), "start_lr"),
    ((0.0, 1.0, 10), "start_lr"),
    ((-1e-3, 1.0, 10), "start_lr"),
    ((math.nan, 1.0, 10), "start_lr"),
    ((1e-3, math.inf, 10), "end_lr"),
    ((1e-3, -1.0, 10), "end_lr"),
    ((1e-3, "1", 10), "end_lr"),
    ((1e-3, 1.0, 1), "iters"),
    ((1e-3, 1.0, 0), "iters"),
    ((1e-3, 1.0, 2.5), "iters"),
    ((1e-3, 1.0, True), "iters"),
])
def test_exponential_lrs_bad_input_names_the_parameter(args, name):
    with pytest.raises(ValueError, match=name):
        exponential_lrs(*args)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.98])
def test_smoothing_matches_the_closed_form(beta):
    x = np.random.default_rng(1).uniform(0.1, 5.0, size=60)
    s = smooth_losses(x, beta)
    for i in range(len(x)):
        w = (1 - beta) * beta ** (i - np.arange(i + 1))      # (1 - b) b^(i - j), j = 0..i
        expected = float(np.sum(w * x[: i + 1]) / (1 - beta ** (i + 1)))
        assert s[i] == pytest.approx(expected, rel=1e-12)
        assert s[i] == pytest.approx(float(np.sum(w * x[: i + 1]) / np.sum(w)), rel=1e-12)
    assert smooth_losses([3.0] * 20, beta).tolist() == pytest.approx([3.0] * 20, rel=1e-14)


def test_smoothing_first_values_and_bias_correction():
    s = smooth_losses([4.0, 2.0, 0.0], beta=0.5)
    # a = [2, 2, 1]; 1 - b^(i+1) = [0.5, 0.75, 0.875]
    assert s.tolist() == [4.0, 2.0 / 0.75, 1.0 / 0.875]
    assert smooth_losses([], 0.9).size == 0
    for bad in (1.0, -0.1, 1.5, math.nan, True):
        with pytest.raises(ValueError, match="beta"):
            smooth_losses([1.0], bad)


# -- the good FIX range rule ----------------------------------------------------------------------
def test_good_fix_range_is_contiguous_around_the_best():
    lrs = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    assert good_fix_range(lrs, [0.80, 0.94, 0.95, 0.94, 0.1], [True] * 5, 0.02) == (2, 1, 3)
    assert good_fix_range(lrs, [0.80, 0.94, 0.95, 0.94, 0.1], [True] * 5, 0.0) == (2, 2, 2)
    assert good_fix_range(lrs, [0.80, 0.94, 0.95, 0.94, 0.1], [True] * 5, 0.2) == (2, 0, 3)
    # a diverged LR ends the range even if an LR beyond it scores well
    assert good_fix_range(lrs, [0.94, math.nan, 0.95, 0.94, 0.95],
                          [True, False, True, True, False], 0.02) == (2, 2, 3)
    # so does an unstable LR (some seeds diverged) whatever its mean top-1
    assert good_fix_range(lrs, [0.95, 0.95, 0.96, 0.95, 0.95],
                          [True, False, True, False, True], 0.02) == (2, 2, 2)
    # a dip below tolerance ends it too (contiguity, not a filter)
    assert good_fix_range(lrs, [0.95, 0.5, 0.96, 0.5, 0.1], [True] * 5, 0.02) == (2, 2, 2)
    # ties: the lowest LR is the best
    assert good_fix_range(lrs, [0.1, 0.9, 0.9, 0.1, 0.1], [True] * 5, 0.0) == (1, 1, 2)
    assert good_fix_range(lrs, [math.nan] * 5, [False] * 5) is None
    with pytest.raises(ValueError, match="increasing"):
        good_fix_range([0.1, 0.01], [0.9, 0.9], [True, True])
    with pytest.raises(ValueError, match="tolerance"):
        good_fix_range(lrs, [0.9] * 5, [True] * 5, tolerance=-0.1)


def test_smith_suggestion_rule():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    s = smith_suggestions(lrs, [2.3, 2.2, 1.5, 0.6, 0.4, 9.0], ratio=4.0)
    assert s["lr_min_loss"] == 1.0 and s["min_loss"] == 0.4
    assert s["upper"] == 0.1 and s["lower"] == 0.025
    assert s["lr_steepest"] == 1e-2  # np.gradient vs log(lr): the biggest fall is around 1e-2
    # non-finite values end the usable part
    s = smith_suggestions(lrs, [2.3, 2.2, 1.5, math.nan, 0.1, 0.05])
    assert s["lr_min_loss"] == 1e-2 and s["upper"] == pytest.approx(1e-3)
    assert any("still falling" in w for w in s["warnings"])
    s = smith_suggestions(lrs, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert s["lr_min_loss"] == 1e-4 and s["lr_steepest"] is None
    assert any("never fell" in w for w in s["warnings"])
    with pytest.raises(ValueError, match="ratio"):
        smith_suggestions(lrs, [1.0] * 6, ratio=0.5)


def test_import_lrbench_and_tuning_does_not_import_torch():
    code = ("import sys, lrbench, lrbench.tuning, lrbench.tuning.rangetest, lrbench.tuning.plots, "
            "lrbench.cli.tuning; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- Smith's range test on a user's own torch model -----------------------------------------------
torch = pytest.importorskip("torch")
from lrbench.tuning import smith_range_test, smith_range_test_task  # noqa: E402

torch.set_num_threads(1)


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Dropout(0.1),
        torch.nn.Linear(8, 3),
    )


def tiny_data(n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g))
            for _ in range(n)]


def make_optimizer(kind, model):
    body, head = list(model[0].parameters()) + list(model[1].parameters()), model[4].parameters()
    groups = [{"params": body, "lr": 0.05}, {"params": head, "lr": 0.007}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=0.01, momentum=0.9, weight_decay=1e-4)
    if kind == "nesterov":
        return torch.optim.SGD(groups, lr=0.01, momentum=0.9, nesterov=True)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.01, betas=(0.8, 0.99))
    if kind == "adamw-tensor-lr":
        return torch.optim.AdamW([{"params": body, "lr": torch.tensor(0.05)},
                                  {"params": head, "lr": torch.tensor(0.007)}],
                                 lr=torch.tensor(0.01), foreach=False)
    raise AssertionError(kind)


def warm_up(model, opt, data, steps=3):
    """Some real training first, so that there are momentum buffers / Adam statistics."""
    for x, y in data[:steps]:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    # leave a gradient behind, and the model in eval mode, to check both come back
    torch.nn.functional.cross_entropy(model(data[0][0]), data[0][1]).backward()
    model.eval()


def snapshot(model, opt):
    return {
        "model": copy.deepcopy(model.state_dict()),
        "opt": copy.deepcopy(opt.state_dict()),
        "lr_objects": [g["lr"] for g in opt.param_groups],
        "state_objects": {p: dict(st) for p, st in opt.state.items()},
        "lrs": [float(g["lr"]) for g in opt.param_groups],
        "params": [p for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "rng": torch.get_rng_state(),
    }


def assert_same_tensors(a, b, where):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_restored(before, model, opt):
    assert_same_tensors(before["model"], model.state_dict(), "model")
    after = opt.state_dict()
    assert_same_tensors(before["opt"]["param_groups"], after["param_groups"], "param_groups")
    assert_same_tensors(before["opt"]["state"], after["state"], "state")
    assert [float(g["lr"]) for g in opt.param_groups] == before["lrs"]
    for old, g in zip(before["lr_objects"], opt.param_groups):
        if isinstance(old, torch.Tensor):  # the very same tensor object (compiled steps hold it)
            assert g["lr"] is old
    assert [p for p in model.parameters()] == before["params"]  # same Parameter objects
    for p, g in zip(model.parameters(), before["grads"]):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    assert [m.training for m in model.modules()] == before["modes"]
    assert torch.equal(torch.get_rng_state(), before["rng"])
    # the optimizer's state is keyed by the model's own parameters again, and holds the very
    # same tensor objects (momentum buffers, exp_avg, ...) as before
    assert len(opt.state) == len(before["opt"]["state"])
    assert set(opt.state) == set(before["state_objects"])
    for p, old in before["state_objects"].items():
        assert opt.state[p].keys() == old.keys()
        for k, v in old.items():
            if isinstance(v, torch.Tensor):
                assert opt.state[p][k] is v, k


@pytest.mark.parametrize("kind", ["sgd", "nesterov", "adam", "adamw-tensor-lr"])
def test_smith_restores_model_and_optimizer_state_exactly(kind):
    data = tiny_data()
    model = tiny_model()
    opt = make_optimizer(kind, model)
    warm_up(model, opt, data)
    twin_model = copy.deepcopy(model)
    twin_opt = make_optimizer(kind, twin_model)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # (it would alias the buffers)
    before = snapshot(model, opt)
    if kind in ("sgd", "nesterov"):
        assert all("momentum_buffer" in s for s in before["opt"]["state"].values())
    else:
        assert all("exp_avg" in s and "exp_avg_sq" in s for s in before["opt"]["state"].values())

    r = smith_range_test(model, opt, torch.nn.functional.cross_entropy, data,
                         start_lr=1e-5, end_lr=1.0, iters=30)
    assert r.iterations >= 2
    assert_restored(before, model, opt)
    # and training continues exactly as if the range test had never happened
    for m, o in ((model, opt), (twin_model, twin_opt)):
        m.train()
        o.zero_grad()
        torch.manual_seed(5)
        torch.nn.functional.cross_entropy(m(data[1][0]), data[1][1]).backward()
        o.step()
    assert_same_tensors(twin_model.state_dict(), model.state_dict(), "after one more step")
    assert_same_tensors(twin_opt.state_dict()["state"], opt.state_dict()["state"], "opt after")


def test_smith_restores_when_the_loss_diverges():
    data = tiny_data()
    model = tiny_model()
    opt = make_optimizer("sgd", model)
    warm_up(model, opt, data)
    before = snapshot(model, opt)
    r = smith_range_test(model, opt, torch.nn.functional.cross_entropy, data,
                         start_lr=1e-3, end_lr=1e6, iters=200)
    assert r.stop_reason == "diverged" and r.iterations < 200
    last = r.smoothed[-1]
    assert not math.isfinite(r.losses[-1]) or last > r.diverge_factor * min(r.smoothed[:-1])
    assert_restored(before, model, opt)


def test_smith_restores_when_the_loop_raises_and_the_error_propagates():
    data = tiny_data()
    model = tiny_model()
    opt = make_optimizer("adam", model)
    warm_up(model, opt, data)
    before = snapshot(model, opt)
    calls = []

    def flaky_loss(out, y):
        calls.append(1)
        if len(calls) == 7:
            raise RuntimeError("CUDA out of memory (simulated)")
        return torch.nn.functional.cross_entropy(out, y)

    with pytest.raises(RuntimeError, match="simulated"):
        smith_range_test(model, opt, flaky_loss, data, start_lr=1e-4, end_lr=1.0, iters=20)
    assert len(calls) == 7
    assert_restored(before, model, opt)

    def nan_loss(out, y):  # a NaN loss: stops, no step taken with it, state restored
        calls.append(1)
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss * float("nan") if len(calls) > 10 else loss

    r = smith_range_test(model, opt, nan_loss, data, start_lr=1e-4, end_lr=1.0, iters=20)
    assert r.stop_reason == "diverged" and math.isnan(r.losses[-1]) and r.iterations == 4
    assert r.to_dict()["losses"][-1] is None
    assert_restored(before, model, opt)


def test_smith_applies_the_exponential_lrs_to_every_group():
    data = tiny_data()
    model = tiny_model()
    opt = make_optimizer("sgd", model)
    seen = []

    def recording_loss(out, y):
        seen.append([float(g["lr"]) for g in opt.param_groups])
        return torch.nn.functional.cross_entropy(out, y)

    r = smith_range_test(model, opt, recording_loss, data, start_lr=1e-5, end_lr=1e-2, iters=25,
                         diverge_factor=None)
    expected = exponential_lrs(1e-5, 1e-2, 25).tolist()
    assert r.stop_reason == "end" and r.iterations == 25
    assert list(r.lrs) == expected
    assert seen == [[lr, lr] for lr in expected]  # all groups, exactly lr_i at step i
    assert list(r.smoothed) == smooth_losses(r.losses, r.beta).tolist()
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.007]


def test_smith_batches_reused_or_running_out():
    model = tiny_model()
    opt = make_optimizer("sgd", model)
    data = tiny_data(n=5)
    # a list is iterated again: the sweep takes all its steps
    r = smith_range_test(model, opt, torch.nn.functional.cross_entropy, data,
                         start_lr=1e-5, end_lr=1e-3, iters=12)
    assert r.stop_reason == "end" and r.iterations == 12
    # a one-shot iterator that runs out ends the sweep
    r = smith_range_test(model, opt, torch.nn.functional.cross_entropy, iter(data),
                         start_lr=1e-5, end_lr=1e-3, iters=12)
    assert r.stop_reason == "data" and r.iterations == 5
    r = smith_range_test(model, opt, torch.nn.functional.cross_entropy, [],
                         start_lr=1e-5, end_lr=1e-3, iters=12)
    assert r.stop_reason == "data" and r.iterations == 0 and r.bounds is None
    assert r.warnings == ("no loss recorded (no batches?)",)


@pytest.mark.parametrize("kwargs, name", [
    (dict(start_lr=1.0, end_lr=1.0), "start_lr"),
    (dict(start_lr=1.0, end_lr=0.1), "start_lr"),
    (dict(start_lr=0.0), "start_lr"),
    (dict(start_lr=-1.0), "start_lr"),
    (dict(end_lr=math.inf), "end_lr"),
    (dict(iters=1), "iters"),
    (dict(beta=1.0), "beta"),
    (dict(diverge_factor=1.0), "diverge_factor"),
    (dict(ratio=0.5), "ratio"),
])
def test_smith_bad_input_names_the_parameter_and_changes_nothing(kwargs, name):
    model = tiny_model()
    opt = make_optimizer("sgd", model)
    before = snapshot(model, opt)
    with pytest.raises(ValueError, match=name):
        smith_range_test(model, opt, torch.nn.functional.cross_entropy, tiny_data(),
                         **{"start_lr": 1e-5, "end_lr": 1.0, "iters": 10, **kwargs})
    assert_restored(before, model, opt)


def test_smith_bad_batches_and_objects():
    model = tiny_model()
    opt = make_optimizer("sgd", model)
    not_pairs = [torch.randn(4, 6)]
    before = snapshot(model, opt)
    with pytest.raises(ValueError, match="pair"):
        smith_range_test(model, opt, torch.nn.functional.cross_entropy, not_pairs, iters=5)
    assert_restored(before, model, opt)
    with pytest.raises(ValueError, match="model"):
        smith_range_test(object(), opt, torch.nn.functional.cross_entropy, tiny_data())
    with pytest.raises(ValueError, match="optimizer"):
        smith_range_test(model, object(), torch.nn.functional.cross_entropy, tiny_data())
    with pytest.raises(ValueError, match="loss_fn"):
        smith_range_test(model, opt, None, tiny_data())
    with pytest.raises(ValueError, match="device"):
        smith_range_test(model, opt, torch.nn.functional.cross_entropy, tiny_data(),
                         device="nowhere")
    assert_restored(before, model, opt)


def test_smith_on_the_digits_task():
    r = smith_range_test_task("digits-mlp", iters=120, threads=1)
    assert isinstance(r, SmithRangeResult) and r.task.preset == "digits-mlp"
    assert r.stop_reason == "diverged"  # 10 is far too high for digits
    assert r.lrs[0] == 1e-6
    lo, hi = r.bounds
    # FIX 0.03-0.1 trains best (module doc); Smith's bounds should land near it
    assert 0.005 <= hi <= 0.3 and lo == pytest.approx(hi / 10, rel=0.1)
    assert r.decaying_k0 == r.k1 and r.lr_min_loss > hi
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["method"] == "smith" and d["bounds"] == [lo, hi] and len(d["lrs"]) == r.iterations


# -- the paper's FIX range test on digits ---------------------------------------------------------
@pytest.fixture(scope="module")
def digits_fix():
    return range_test("digits-mlp", method="fix", min_lr=1e-3, max_lr=100.0, iters=100,
                      threads=1)


def test_fix_range_on_digits_contains_good_lrs_and_excludes_divergent(digits_fix):
    r = digits_fix
    assert isinstance(r, FixRangeResult)
    assert [p.lr for p in r.points] == list(lr_grid(1e-3, 100.0))
    by_lr = {p.lr: p for p in r.points}
    assert by_lr[100.0].status == "diverged" and by_lr[3.0].status == "diverged"
    assert math.isnan(by_lr[100.0].top1) and not by_lr[100.0].good
    lo, hi = r.good_range
    assert lo <= 0.03 and 0.1 <= hi < 1.0  # the known good LRs in, 1 and above out
    assert r.best_lr in (0.03, 0.1) and r.best_top1 >= 0.9
    assert all(p.good == (lo <= p.lr <= hi) for p in r.points)
    assert r.k1 == hi and r.k0 == pytest.approx(lo / 10) and r.decaying_k0 == hi
    assert r.task.max_iters == 100 and r.iters == 100 and r.seeds == (0,)
    assert len(r.runs) == len(r.points)
    assert r.iterations_spent == sum(res.iterations for res in r.runs)
    assert r.iterations_spent < 100 * len(r.points)  # diverged runs stop early
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["good_range"] == [lo, hi] and d["points"][-1]["top1"] is None


def test_fix_range_plot_is_a_png(digits_fix, tmp_path):
    path = tmp_path / "sub" / "fix.png"
    fig = digits_fix.plot(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    from matplotlib.image import imread

    assert imread(str(path)).shape[2] in (3, 4)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert any("good FIX range" in t for t in ax.get_legend_handles_labels()[1])
    with pytest.raises(ValueError, match=".png or .svg"):
        digits_fix.plot(tmp_path / "fix.jpg")


def test_smith_plot_is_a_png(tmp_path):
    model = tiny_model()
    opt = make_optimizer("sgd", model)
    r = smith_range_test(model, opt, torch.nn.functional.cross_entropy, tiny_data(),
                         start_lr=1e-4, end_lr=100.0, iters=60)
    path = tmp_path / "smith.png"
    fig = r.plot(path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("upper k1") for label in labels)
    assert fig.axes[0].get_xscale() == "log"


def test_fix_range_extends_downwards_while_the_best_is_the_lowest():
    # 1 trains (badly), 3 and 10 diverge: the best is the lowest, so a decade more is tried,
    # twice: 0.1, 0.3, then 0.01, 0.03
    r = range_test("digits-mlp", lrs=[1.0, 3.0, 10.0], iters=100, threads=1, extend=2)
    assert [p.lr for p in r.points] == [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
    assert r.good_range[0] <= 0.1 <= r.good_range[1] < 1.0
    r = range_test("digits-mlp", lrs=[1.0, 3.0, 10.0], iters=50, threads=1, extend=0)
    assert [p.lr for p in r.points] == [1.0, 3.0, 10.0]
    assert r.good_range == (1.0, 1.0) and any("lowest tried" in w for w in r.warnings)


def test_fix_range_extends_upwards_while_the_best_is_the_highest():
    # at 50 iterations, top-1 rises with the LR up to 0.3: 0.001 < 0.003 < 0.01 < 0.03 < ...
    r = range_test("digits-mlp", lrs=[0.001, 0.003], iters=50, threads=1, extend=1)
    assert [p.lr for p in r.points] == [0.001, 0.003, 0.01, 0.03]
    assert r.best_lr == 0.03 and any("highest tried" in w for w in r.warnings)


def test_fix_range_all_divergent_gives_no_suggestion():
    r = range_test("digits-mlp", lrs=[30.0, 100.0], iters=30, threads=1, extend=0)
    assert r.good_range is None and r.k0 is None and r.k1 is None and r.best_lr is None
    assert all(p.status == "diverged" for p in r.points)
    assert any("no LR" in w for w in r.warnings)


def test_fix_range_seeds_mean_and_store(tmp_path):
    from lrbench.store import Store

    url = f"sqlite:///{tmp_path / 'lr.db'}"
    seen = []
    r = range_test("digits-mlp", lrs=[0.03, 0.1], iters=40, seeds=2, threads=1, extend=0,
                   store=url, progress=lambda lr, seed, res: seen.append((lr, seed)))
    assert seen == [(0.03, 0), (0.03, 1), (0.1, 0), (0.1, 1)]
    for p in r.points:
        assert len(p.top1s) == 2 and p.statuses == ("done", "done")
        assert p.top1 == pytest.approx(np.mean(p.top1s)) and p.top1_std == pytest.approx(
            np.std(p.top1s))
    with Store.open(url) as store:
        stored = store.runs(task=r.task)
    assert sorted((res.policy, res.seed) for res in stored) == [
        ("FIX(k0=0.03)", 0), ("FIX(k0=0.03)", 1), ("FIX(k0=0.1)", 0), ("FIX(k0=0.1)", 1)]


def test_probe_fix_scores_one_more_lr_as_the_range_test_would(tmp_path):
    from lrbench.store import Store

    # the probe of 0.03 after a test of (0.01, 0.1) is the point a test of all three gives
    # (training on the CPU is bit-for-bit reproducible)
    kw = dict(iters=40, seeds=2, threads=1, extend=0)
    r = range_test("digits-mlp", lrs=[0.01, 0.1], **kw)
    full = range_test("digits-mlp", lrs=[0.01, 0.03, 0.1], **kw)
    url = f"sqlite:///{tmp_path / 'lr.db'}"
    calls = []

    def train_fn(task, policy, seed, **options):
        from lrbench.trainer import train

        calls.append((task.max_iters, task.eval_every, str(policy), seed))
        return train(task, policy, seed, **options)

    p = probe_fix(r, 0.03, threads=1, store=url, train_fn=train_fn)
    want = next(q for q in full.points if q.lr == 0.03)
    assert (p.lr, p.status, p.good) == (0.03, "ok", False)
    assert (p.top1s, p.statuses, p.iterations) == (want.top1s, want.statuses, 80)
    assert p.top1 == pytest.approx(want.top1)
    assert calls == [(40, r.task.eval_every, "FIX(k0=0.03)", 0), (40, r.task.eval_every,
                                                               "FIX(k0=0.03)", 1)]
    with Store.open(url) as store:
        assert sorted((x.policy, x.seed) for x in store.runs()) == [
            ("FIX(k0=0.03)", 0), ("FIX(k0=0.03)", 1)]
    assert [q.lr for q in r.points] == [0.01, 0.1]  # the range test itself is unchanged
    # an LR that diverges is scored like the range test's diverged points
    bad = probe_fix(r, 30.0, threads=1)
    assert bad.status == "diverged" and math.isnan(bad.top1) and bad.iterations < 80
    for lr in (0.0, -0.1, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="lr"):
            probe_fix(r, lr)
    with pytest.raises(ValueError, match="train_fn"):
        probe_fix(r, 0.03, train_fn="train")


@pytest.mark.parametrize("kwargs, name", [
    (dict(min_lr=1.0, max_lr=0.1), "min_lr"),
    (dict(min_lr=0.0), "min_lr"),
    (dict(lrs=[0.1]), "lrs"),
    (dict(lrs=[0.1, -1.0]), "lrs"),
    (dict(iters=0), "iters"),
    (dict(seeds=0), "seeds"),
    (dict(seeds=[1, 1]), "seeds"),
    (dict(tolerance=1.5), "tolerance"),
    (dict(extend=-1), "extend"),
    (dict(mantissas=(0,)), "mantissas"),
    (dict(method="grid"), "method"),
])
def test_fix_range_bad_input_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        range_test("digits-mlp", **kwargs)


# -- the CLI --------------------------------------------------------------------------------------
from lrbench.cli import main  # noqa: E402


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_cli_fix_json_end_to_end_in_a_subprocess(tmp_path):
    plot = tmp_path / "fix.png"
    db = f"sqlite:///{tmp_path / 'lr.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "lrbench.cli", "rangetest", "--task", "digits-mlp",
         "--min-lr", "0.01", "--max-lr", "1", "--iters", "60", "--threads", "1", "--db", db,
         "--plot", str(plot), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)  # one JSON object, nothing else on stdout
    assert d["method"] == "fix" and d["iters"] == 60 and d["plot"] == str(plot)
    assert [p["lr"] for p in d["points"]] == [0.01, 0.03, 0.1, 0.3, 1.0]
    lo, hi = d["good_range"]
    assert lo <= 0.1 <= hi < 1.0 and d["k1"] == hi
    assert plot.read_bytes()[:8] == PNG_MAGIC
    assert "Traceback" not in proc.stderr


def test_cli_smith_json_and_table(capsys, tmp_path):
    code, out, err = run_cli(capsys, "rangetest", "--task", "digits-mlp", "--method", "smith",
                             "--iters", "80", "--threads", "1", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["method"] == "smith" and d["iterations"] <= 80 and d["k0"] < d["k1"]
    code, out, err = run_cli(capsys, "rangetest", "--task", "digits-mlp", "-m", "SMITH",
                             "--iters", "80", "--threads", "1", "--plot",
                             str(tmp_path / "s.svg"))
    assert code == 0 and "Smith range test" in out and "cyclic policies: k0=" in out
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")


def test_cli_fix_table(capsys):
    code, out, err = run_cli(capsys, "rangetest", "--task", "digits-mlp", "--grid", "1",
                             "--min-lr", "0.001", "--max-lr", "10", "--iters", "60",
                             "--threads", "1")
    assert code == 0, err
    assert "FIX range test" in out and "good FIX range: [" in out and "decaying policies" in out
    assert "FIX(k0=10) seed 0: diverged" in err  # progress on stderr


def test_cli_no_good_range_exit_1(capsys):
    code, out, err = run_cli(capsys, "rangetest", "--task", "digits-mlp", "--min-lr", "30",
                             "--max-lr", "100", "--extend", "0", "--iters", "20")
    assert code == 1 and "no LR" in out + err


@pytest.mark.parametrize("args, match", [
    (["--task", "digits-mlp", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr"),
    (["--task", "digits-mlp", "--min-lr", "-1"], "--min-lr"),
    (["--task", "digits-mlp", "--method", "smith", "--min-lr", "10", "--max-lr", "1"],
     "--min-lr"),
    (["--task", "digits-mlp", "--method", "smith", "--min-lr", "100"], "--min-lr"),
    (["--task", "digits-mlp", "--method", "grid"], "--method"),
    (["--task", "digits-mlp", "--method", "smith", "--iters", "1"], "--iters"),
    (["--task", "digits-mlp", "--iters", "0"], "--iters"),
    (["--task", "digits-mlp", "--seeds", "0"], "--seeds"),
    (["--task", "digits-mlp", "--method", "smith", "--seeds", "3"], "--seeds"),
    (["--task", "digits-mlp", "--grid", "1,x"], "--grid"),
    (["--task", "digits-mlp", "--grid", "1,10"], "--grid"),
    (["--task", "digits-mlp", "--tolerance", "2"], "--tolerance"),
    (["--task", "digits-mlp", "--plot", "out.jpg"], "--plot"),
    (["--task", "nope"], "unknown task preset"),
    ([], "--task"),
])
def test_cli_bad_input_one_line_exit_2(capsys, args, match):
    code, out, err = run_cli(capsys, "rangetest", *args)
    assert code == 2
    assert err.startswith("lrbench: error:") and match in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_input_in_a_subprocess_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "lrbench.cli", "rangetest", "--task", "digits-mlp", "--method",
         "smith", "--min-lr", "0", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("lrbench: error: --min-lr") and "Traceback" not in proc.stderr
