"""ScheduleMonitor in user-written PyTorch loops, and the built-in Evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lrbench import parse  # noqa: E402
from lrbench.metrics import evaluate_outputs  # noqa: E402
from lrbench.monitor import Evaluator, NonFiniteOutputs, ScheduleMonitor  # noqa: E402
from lrbench.results import RunResult  # noqa: E402
from lrbench.tasks import make_task  # noqa: E402

torch.set_num_threads(1)

TASK = make_task(dataset="synthetic", model="mlp", batch_size=8, max_iters=30, eval_every=5)


def blobs(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) * 0.3 + nn.functional.one_hot(y, 4).float() * 2
    return x, y


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


class Scripted:
    """An evaluator returning the top-1 values it is given, one per call."""

    def __init__(self, top1s):
        self.top1s = list(top1s)
        self.calls = 0

    def __call__(self):
        v = self.top1s[min(self.calls, len(self.top1s) - 1)]
        self.calls += 1
        return {"top1": v, "top5": 1.0, "ac": 0.5, "cd": 0.1, "cdac": 0.05, "loss": 1.0 - v}


# -- the LR applied --------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "TRI(k0=0.01, k1=0.1, l=4)",
    "NSTEP(k0=0.1, gamma=0.5, l=[3, 7, 8])",
    "FIX(k0=0.02)[5] >> COS(k0=0.1, k1=0.0, l=10)",
])
def test_lr_applied_is_policy_t_at_every_step(text):
    policy = parse(text)
    model = small_model()
    opt = torch.optim.SGD(
        [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 7.0}],
        lr=5.0, momentum=0.9,
    )
    monitor = ScheduleMonitor(opt, text, max_iters=25, eval_every=4)
    x, y = blobs()
    seen = []
    t = 0
    while not monitor.should_stop:
        loss = nn.functional.cross_entropy(model(x[:8]), y[:8])
        opt.zero_grad()
        loss.backward()
        seen.append([g["lr"] for g in opt.param_groups])  # what this step will use
        opt.step()
        monitor.step(loss)
        t += 1
    assert t == 25 and monitor.iteration == 25
    assert seen == [[policy(i), policy(i)] for i in range(25)]
    assert [p.lr for p in monitor.curve] == [policy(k - 1) for k in (4, 8, 12, 16, 20, 24, 25)]


def test_lr_set_on_creation_and_tensor_lrs_filled_in_place():
    class FakeOptimizer:  # any object with param_groups works
        def __init__(self):
            self.lr_tensor = torch.tensor(9.0, dtype=torch.float64)
            self.param_groups = [{"lr": 3.0}, {"lr": self.lr_tensor}]

    opt = FakeOptimizer()
    monitor = ScheduleMonitor(opt, "EXP(k0=0.5, gamma=0.5)", max_iters=3, eval_every=3)
    assert opt.param_groups[0]["lr"] == 0.5
    assert opt.param_groups[1]["lr"] is opt.lr_tensor and opt.lr_tensor.item() == 0.5
    monitor.step(1.0)
    assert opt.param_groups[0]["lr"] == 0.25 and opt.lr_tensor.item() == 0.25
    assert monitor.lr == 0.25 and monitor.last_lr == 0.5


def test_lr_is_exact_across_lr_table_blocks_and_events():
    # The monitor computes LRs LR_BLOCK at a time and handles evaluations / callbacks / deferred
    # reads off the per-step path; none of that may shift the LR of any step.
    from lrbench.monitor import LR_BLOCK

    policy = parse("SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=37)")
    n = 2 * LR_BLOCK + 77
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    monitor = ScheduleMonitor(opt, policy, max_iters=n, eval_every=50, evaluate=Scripted([0.1]),
                              callback=lambda m: None, callback_every=7, defer=True,
                              check_every=13)
    for t in range(n):
        assert opt.param_groups[0]["lr"] == policy(t), t
        monitor.step(torch.tensor(1.0))
    assert monitor.stop_reason == "max_iters"
    assert [p.lr for p in monitor.curve] == [policy(k - 1) for k in [*range(50, n, 50), n]]


# -- the curve -------------------------------------------------------------------------------------
def test_points_every_r_and_at_the_end_with_mean_train_loss():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ev = Scripted([0.1 * i for i in range(1, 10)])
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=23, eval_every=5, evaluate=ev)
    losses = [float(i) for i in range(1, 24)]
    for loss in losses:
        assert monitor.step(loss) is (loss == 23.0)
    its = [p.iteration for p in monitor.curve]
    assert its == [5, 10, 15, 20, 23]
    assert ev.calls == 5
    bounds = [0, 5, 10, 15, 20, 23]
    expected = [np.mean(losses[a:b]) for a, b in zip(bounds, bounds[1:])]
    assert [p.train_loss for p in monitor.curve] == pytest.approx(expected, rel=0, abs=1e-12)
    p = monitor.curve[1]
    assert (p.top1, p.top5, p.ac, p.cd, p.cdac) == (0.2, 1.0, 0.5, 0.1, 0.05)
    assert p.test_loss == pytest.approx(0.8)
    assert monitor.stop_reason == "max_iters" and monitor.should_stop
    with pytest.raises(RuntimeError, match="stopped"):
        monitor.step(1.0)


def test_without_evaluator_records_lr_and_train_loss():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=4, eval_every=2)
    for _ in range(4):
        monitor.step(torch.tensor(2.0))
    assert [p.train_loss for p in monitor.curve] == [2.0, 2.0]
    assert all(math.isnan(p.top1) for p in monitor.curve)


def test_target_accuracy_stops_early():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ev = Scripted([0.3, 0.6, 0.85, 0.95])
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=100, eval_every=10, evaluate=ev,
                              target_accuracy=0.8)
    n = 0
    while not monitor.step(0.5):
        n += 1
    assert monitor.iteration == 30 and monitor.stop_reason == "target"
    assert [p.top1 for p in monitor.curve] == [0.3, 0.6, 0.85]
    result = monitor.result(TASK, seed=1)
    assert result.status == "done" and result.stop_reason == "target" and result.iterations == 30
    assert result.summary()["best_iter"] == 30


# -- divergence ------------------------------------------------------------------------------------
def real_loop(monitor, opt, model, bad_at=None, bad_value=math.nan, max_steps=100):
    """A user-written loop; at 1-based step ``bad_at`` the loss becomes ``bad_value``."""
    x, y = blobs()
    steps = 0
    while not monitor.should_stop and steps < max_steps:
        loss = nn.functional.cross_entropy(model(x[:8]), y[:8])
        steps += 1
        if steps == bad_at:
            loss = loss * bad_value
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.step(loss)
    return steps


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_inf_loss_diverges_at_that_iteration(bad):
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = blobs()
    ev = Evaluator(model, x, y, batch_size=16)
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=50, eval_every=3, evaluate=ev)
    steps = real_loop(monitor, opt, model, bad_at=7, bad_value=bad)
    assert steps == 7  # stopped right there, no exception
    assert monitor.should_stop and monitor.stop_reason == "diverged" and monitor.diverged_at == 7
    assert [p.iteration for p in monitor.curve] == [3, 6]
    result = monitor.result(TASK, seed=0)
    assert result.status == "diverged" and result.stop_reason == "diverged"
    assert result.iterations == 7 and result.extra["diverged_at"] == 7
    assert "iteration 7" in result.extra["divergence"]
    assert RunResult.from_json(result.to_json()) == result


def test_loss_above_bound_diverges():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=50, eval_every=5,
                              evaluate=Scripted([0.5]), divergence_loss=10.0)
    for loss in [3.0, 4.0, 10.0, 9.0]:  # the bound itself is allowed
        assert not monitor.step(loss)
    assert monitor.step(10.5)
    assert monitor.diverged_at == 5 and monitor.curve == []
    assert "above 10" in monitor.divergence
    assert monitor.result(TASK).status == "diverged"


def test_no_bound_means_only_nan_and_inf():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=3, eval_every=3)
    for loss in [1e300, 1e300, 1e300]:
        monitor.step(loss)
    assert monitor.stop_reason == "max_iters"


def test_real_divergence_from_a_huge_lr():
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x, y = blobs()
    monitor = ScheduleMonitor(opt, "FIX(k0=1e6)", max_iters=200, eval_every=10,
                              evaluate=Evaluator(model, x, y), divergence_loss=None)
    steps = real_loop(monitor, opt, model, max_steps=200)
    assert monitor.stop_reason == "diverged" and steps == monitor.diverged_at < 200


@pytest.mark.parametrize("check_every", [1, 4, 100])
def test_deferred_loss_reads_give_the_same_curve_and_iteration(check_every):
    losses = [torch.tensor(v) for v in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, float("nan"), 1.0, 1.0]]

    def run(defer):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
        m = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=20, eval_every=3,
                            evaluate=Scripted([0.5]), defer=defer, check_every=check_every)
        for loss in losses:
            if m.step(loss):
                break
        m.finish()
        return m

    eager, deferred = run(False), run(True)
    assert eager.diverged_at == deferred.diverged_at == 7
    assert eager.curve == deferred.curve
    assert [p.train_loss for p in eager.curve] == [2.0, 5.0]
    # the deferred monitor notices at the next read: at most check_every - 1 steps later
    assert 7 <= deferred.iteration <= 7 + max(0, min(check_every, 3) - 1)


def test_deferred_reads_hold_no_graph_and_stop_on_divergence_at_the_read():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    m = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=100, eval_every=50, defer=True,
                        check_every=4)
    w = torch.ones(1, requires_grad=True)
    for v in [1.0, float("inf"), 1.0]:
        assert not m.step((w * v).sum())
        assert all(not t.requires_grad for t in m._pending)
    assert m.step((w * 1.0).sum())  # the 4th step reads the four losses
    assert m.diverged_at == 2 and m.iteration == 4


# -- the Evaluator ---------------------------------------------------------------------------------
def test_evaluator_matches_evaluate_outputs_and_restores_mode():
    model = small_model()
    x, y = blobs(50)
    ev = Evaluator(model, x.numpy(), y.numpy(), batch_size=16)  # numpy in, last batch of 2
    model.train()
    got = ev()
    assert model.training
    with torch.no_grad():
        expected = evaluate_outputs(model(x), y)
    assert got.top1 == expected.top1 and got.top5 == expected.top5
    assert got.ac == pytest.approx(expected.ac) and got.loss == pytest.approx(expected.loss)
    assert got.cdac == pytest.approx(expected.cdac) and got.cd == pytest.approx(expected.cd)
    model.eval()
    ev()
    assert not model.training


def test_evaluator_runs_in_eval_mode_without_grad():
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            seen.append((self.training, torch.is_grad_enabled()))
            return self.fc(x)

    x, y = blobs(20)
    Evaluator(Probe(), x, y, batch_size=8)()
    assert seen == [(False, False)] * 3


def test_non_finite_test_outputs_are_a_divergence():
    model = small_model()
    x, y = blobs()
    ev = Evaluator(model, x, y)
    with torch.no_grad():
        model[2].weight.fill_(math.nan)
    with pytest.raises(NonFiniteOutputs):
        ev()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=10, eval_every=2, evaluate=ev)
    monitor.step(0.5)
    assert monitor.step(0.5)
    assert monitor.stop_reason == "diverged" and monitor.diverged_at == 2
    assert monitor.curve == []


# -- the end ---------------------------------------------------------------------------------------
def test_result_of_a_loop_that_ends_early():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ev = Scripted([0.4, 0.7])
    monitor = ScheduleMonitor(opt, "SIN2(k0=0.01, k1=0.06, l=2000)", max_iters=100,
                              eval_every=10, evaluate=ev)
    for _ in range(13):
        monitor.step(1.0)
    result = monitor.result(TASK, seed=5)
    assert monitor.stop_reason == "interrupted"
    assert [p.iteration for p in result.curve] == [10, 13]
    assert result.policy == "SIN2(k0=0.01, k1=0.06, l=2000)" and result.n_params == 3
    assert result.iterations == 13 and result.seed == 5 and result.status == "done"
    assert result.train_time >= 0 and result.extra["n_evals"] == 2
    assert RunResult.from_dict(result.to_dict()) == result


def test_callback_after_evaluations_and_periodically():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    calls = []
    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=12, eval_every=5,
                              callback=lambda m: calls.append(m.iteration), callback_every=4)
    for _ in range(12):
        monitor.step(1.0)
    assert calls == [4, 5, 8, 10, 12]


def test_stop_from_the_callback_ends_the_loop_and_keeps_the_curve():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ev = Scripted([0.4, 0.7, 0.9])

    def prune(m):
        if m.last_point is not None and m.last_point.iteration >= 10:
            m.stop()
            m.stop()  # idempotent

    monitor = ScheduleMonitor(opt, "FIX(k0=0.1)", max_iters=100, eval_every=5, evaluate=ev,
                              callback=prune)
    steps = 0
    while not monitor.step(1.0):
        steps += 1
    assert steps + 1 == 10 and monitor.should_stop
    assert monitor.stop_reason == "interrupted"
    assert [p.iteration for p in monitor.curve] == [5, 10]
    result = monitor.result(TASK, seed=0)
    assert result.status == "done" and result.iterations == 10
    with pytest.raises(RuntimeError, match="stopped"):
        monitor.step(1.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(max_iters=0), "max_iters"),
    (dict(eval_every=0), "eval_every"),
    (dict(eval_every=2.5), "eval_every"),
    (dict(target_accuracy=0.9), "needs an evaluator"),
    (dict(target_accuracy=1.5, evaluate=lambda: 0.5), "target_accuracy"),
    (dict(divergence_loss=-1.0), "divergence_loss"),
    (dict(divergence_loss=math.nan), "divergence_loss"),
    (dict(policy="FIX(k0=-1)"), "k0"),
    (dict(policy=0.1), "policy"),
    (dict(evaluate=3), "evaluate"),
])
def test_bad_arguments(kwargs, match):
    args = dict(policy="FIX(k0=0.1)", max_iters=10, eval_every=2) | kwargs
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=match):
        ScheduleMonitor(opt, **args)


def test_optimizer_without_param_groups():
    with pytest.raises(ValueError, match="param_groups"):
        ScheduleMonitor(object(), "FIX(k0=0.1)", max_iters=10, eval_every=2)
