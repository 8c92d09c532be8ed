"""PyTorch integration: ``lrbench.integrations.torch.PolicyLR`` (GitHub issue #2, item 5).

Convention (checked throughout): torch applies a scheduler's lr to the *next* ``optimizer.step()``.
Right after construction a group's lr is the lr of iteration 0; after ``n`` calls of
``scheduler.step()`` it is the lr of iteration ``n``. LRBench counts iterations from 0 as well (the
first optimizer step uses ``policy(0)``), so torch's "lr after n steps" is ``policy(n)``: no
shift anywhere, for PolicyLR and for torch's own schedulers alike.

Tolerances: ``PolicyLR`` must give exactly ``policy(t)`` (it calls the same scalar formula).
``policy.values`` (numpy) may differ from ``policy(t)`` (math module) in the last bit of
``gamma ** t``, hence ``rtol=1e-14`` there. torch's schedulers are mostly recursive (``lr *= gamma``
and the like), so they pick up one rounding per step; against them we allow a relative error of
1e-9, except for CosineAnnealingLR (see its test).
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.optim import lr_scheduler as tls

from lrbench.integrations.torch import PolicyLR
from lrbench.policies import (
    COS,
    EXP,
    FIX,
    INV,
    LIN,
    NSTEP,
    PAPER_FUNCTIONS,
    POLY,
    SIN,
    SIN2,
    SINEXP,
    STEP,
    TRI,
    TRI2,
    TRIEXP,
    Composite,
    Policy,
    parse,
)

torch.set_num_threads(1)

RTOL_TORCH = 1e-9
RTOL_NUMPY = 1e-14


# -- helpers --------------------------------------------------------------------------------
def _optimizer(lr: float = 0.1, n_groups: int = 1, **kwargs: Any) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]} for _ in range(n_groups)]
    return torch.optim.SGD(groups, lr=lr, **kwargs)


def _mark_stepped(opt: torch.optim.Optimizer) -> None:
    """Tell torch that optimizer.step() ran, so that scheduler.step() alone does not warn."""
    opt._opt_called = True  # type: ignore[attr-defined]


def _torch_lrs(make: Callable[[torch.optim.Optimizer], Any], lr0: float, n: int) -> np.ndarray:
    """The lr a torch scheduler gives at iterations 0 .. n-1 (one group, initial lr ``lr0``)."""
    opt = _optimizer(lr=lr0)
    sched = make(opt)
    _mark_stepped(opt)
    out = np.empty(n)
    group = opt.param_groups[0]
    for t in range(n):
        out[t] = group["lr"]
        sched.step()
    return out


def _policy_lr_lrs(policy: Policy | str, n: int, **opt_kwargs: Any) -> list[float]:
    opt = _optimizer(**opt_kwargs)
    sched = PolicyLR(opt, policy)
    _mark_stepped(opt)
    out = []
    for _ in range(n):
        out.append(float(opt.param_groups[0]["lr"]))
        sched.step()
    return out


def _assert_rel(got: np.ndarray, want: np.ndarray, rtol: float, what: str) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.abs(got - want)
    bad = err > rtol * np.abs(want)
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"{what}: t={t}: got {got[t]!r}, want {want[t]!r} (rel err {err[t] / abs(want[t]):.3g},"
            f" {bad.sum()} of {bad.size} beyond rtol={rtol})"
        )


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# -- parity with torch's own schedulers -----------------------------------------------------
N_DRAWS = 24  # per function: 9 functions x 24 = 216 random policies
N_STEPS = 2000


def _draw(name: str, rng: np.random.Generator) -> tuple[Policy, Callable, float]:
    """A random policy and the torch scheduler that computes the same function.

    Returns (policy, make(optimizer) -> scheduler, the optimizer's initial lr).
    """
    k0 = _log_uniform(rng, 1e-5, 1.0)
    gamma = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.3 else float(rng.uniform(0.99, 1.0))
    if name == "STEP":
        l = int(rng.integers(1, 600))
        return STEP(k0=k0, gamma=gamma, l=l), lambda o: tls.StepLR(o, step_size=l, gamma=gamma), k0
    if name == "NSTEP":
        n = int(rng.integers(1, 8))
        ms = sorted(int(m) for m in rng.choice(np.arange(1, N_STEPS + 200), n, replace=False))
        return (
            NSTEP(k0=k0, gamma=gamma, l=ms),
            lambda o: tls.MultiStepLR(o, milestones=ms, gamma=gamma),
            k0,
        )
    if name == "EXP":
        # gamma >= 0.9: gamma^2500 stays a normal float (subnormals lose relative precision)
        g = float(rng.uniform(0.9, 1.0))
        return EXP(k0=k0, gamma=g), lambda o: tls.ExponentialLR(o, gamma=g), k0
    if name == "POLY":
        l = int(rng.integers(1, N_STEPS + 500))
        p = float(rng.uniform(0.1, 5.0))
        return (
            POLY(k0=k0, p=p, l=l),
            lambda o: tls.PolynomialLR(o, total_iters=l, power=p),
            k0,
        )
    k1 = _log_uniform(rng, 1e-5, 1.0)
    lo, hi = min(k0, k1), max(k0, k1)
    l = int(rng.integers(1, 700))
    if name in ("TRI", "TRI2", "TRIEXP"):
        mode = {"TRI": "triangular", "TRI2": "triangular2", "TRIEXP": "exp_range"}[name]
        policy = (
            TRIEXP(k0=k0, k1=k1, gamma=gamma, l=l) if name == "TRIEXP"
            else PAPER_FUNCTIONS[name](k0=k0, k1=k1, l=l)
        )
        return (
            policy,
            lambda o: tls.CyclicLR(
                o, base_lr=lo, max_lr=hi, step_size_up=l, mode=mode,
                gamma=gamma if name == "TRIEXP" else 1.0, cycle_momentum=False,
            ),
            hi,
        )
    if name == "COS":
        return (
            COS(k0=k0, k1=k1, l=l),
            lambda o: tls.CosineAnnealingLR(o, T_max=l, eta_min=lo),
            hi,
        )
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["STEP", "NSTEP", "EXP", "POLY", "TRI", "TRI2", "TRIEXP"])
def test_parity_with_torch_schedulers(name):
    """STEP=StepLR, NSTEP=MultiStepLR, EXP=ExponentialLR, POLY=PolynomialLR(total_iters=l,
    power=p), TRI/TRI2/TRIEXP=CyclicLR(base_lr=min, max_lr=max, step_size_up=l, mode=
    triangular/triangular2/exp_range, gamma).

    Conventions: StepLR and MultiStepLR switch at t == boundary, like STEP and NSTEP (LRBench's
    "number of l_j <= t"). PolynomialLR reaches 0 at t == total_iters and stays there, like POLY.
    CyclicLR's "cycle" count starts at 1 (triangular2's 1/2^(cycle-1)) and exp_range scales by
    gamma^(iterations), so TRI2's 1/2^floor(t/2l) and TRIEXP's gamma^t, with step_size_up = l =
    the half period, are the same functions. torch needs an initial lr: k0 for the decaying
    ones (CyclicLR overwrites it with base_lr).
    """
    rng = np.random.default_rng(20190 + sum(map(ord, name)))
    ts = np.arange(N_STEPS)
    for _ in range(N_DRAWS):
        policy, make, lr0 = _draw(name, rng)
        theirs = _torch_lrs(make, lr0, N_STEPS)
        _assert_rel(theirs, [policy(int(t)) for t in ts], RTOL_TORCH, f"{policy} vs torch, policy(t)")
        _assert_rel(theirs, policy.values(ts), RTOL_TORCH, f"{policy} vs torch, policy.values")


def test_parity_with_torch_cosine_annealing():
    """COS(k0, k1, l) = CosineAnnealingLR(T_max=l, eta_min=min(k0, k1)), initial lr max(k0, k1).

    Both are cos-shaped with the half period l, start at the maximum, reach eta_min at t = l
    and are back at the maximum at t = 2l (torch keeps going "without restarts" along the same
    cosine). torch computes it recursively, lr_t = eta_min + (lr_{t-1} - eta_min) * ratio, so
    rounding accumulates; near the minimum the ratio is ~0/0 and the drift is large *relative to
    the lr* there, while small relative to the schedule's range. So the comparison is an
    absolute error of 1e-9 * max LR (measured: up to ~1e-11 over 2000 steps).
    """
    rng = np.random.default_rng(2023)
    ts = np.arange(N_STEPS)
    worst = 0.0
    for _ in range(N_DRAWS * 2):
        policy, make, hi = _draw("COS", rng)
        theirs = _torch_lrs(make, hi, N_STEPS)
        for ours in ([policy(int(t)) for t in ts], policy.values(ts)):
            err = np.max(np.abs(theirs - np.asarray(ours))) / hi
            worst = max(worst, err)
            assert err < 1e-9, f"{policy}: torch's CosineAnnealingLR differs by {err:.3g} x max"
    assert worst > 0  # the recursion does drift: this test compares two different computations


# -- the three evaluation paths --------------------------------------------------------------
ALL_POLICIES = [
    FIX(k0=0.1),
    STEP(k0=0.1, gamma=0.5, l=700),
    NSTEP(k0=0.01, gamma=0.9, l=[500, 1000, 1500, 1900, 1950]),
    EXP(k0=0.1, gamma=0.999),
    INV(k0=0.01, gamma=0.0001, p=0.75),
    POLY(k0=0.1, p=2.0, l=1500),
    TRI(k0=0.01, k1=0.06, l=300),
    TRI2(k0=0.01, k1=0.06, l=300),
    TRIEXP(k0=0.01, k1=0.06, gamma=0.9994, l=300),
    SIN(k0=0.01, k1=0.06, l=300),
    SIN2(k0=0.01, k1=0.06, l=300),
    SINEXP(k0=0.00005, k1=0.006, gamma=0.9994, l=200),
    COS(k0=0.1, k1=0.0, l=400),
    STEP(k0=0.1, gamma=0.5, l=300, k1=0.01),  # a decaying function with a floor
    LIN(k0=0.0, k1=0.1, l=500),
    LIN(k0=0.0, k1=0.1, l=100)[100] >> COS(k0=0.1, k1=0.0, l=900),
    (LIN(k0=0.0, k1=0.1, l=50)[50] >> SIN2(k0=0.01, k1=0.1, l=200))[777]
    >> (FIX(k0=0.01)[300] >> EXP(k0=0.01, gamma=0.999)),
]


def test_the_policy_list_covers_every_function_and_composites():
    names = {p.name for p in ALL_POLICIES}
    assert set(PAPER_FUNCTIONS) | {"LIN", "COMPOSITE"} <= names
    assert any(
        isinstance(ph.policy, Composite) for p in ALL_POLICIES if isinstance(p, Composite)
        for ph in p.phases
    )


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=str)
def test_three_evaluation_paths_agree(policy):
    """Stepping PolicyLR == policy(t) exactly; policy.values(arange) to the last bits."""
    n = 2000
    stepped = _policy_lr_lrs(policy, n)
    called = [policy(t) for t in range(n)]
    assert stepped == called
    _assert_rel(policy.values(np.arange(n)), called, RTOL_NUMPY, f"{policy}.values")


@pytest.mark.parametrize("policy", [ALL_POLICIES[8], ALL_POLICIES[-1]], ids=str)
def test_three_paths_agree_for_a_tensor_lr(policy):
    """A group whose lr is a float64 tensor holds exactly policy(t) too."""
    opt = _optimizer(lr=torch.tensor(0.5, dtype=torch.float64), foreach=False)
    sched = PolicyLR(opt, policy)
    _mark_stepped(opt)
    for t in range(700):
        assert opt.param_groups[0]["lr"].item() == policy(t)
        sched.step()


# -- a real training loop -----------------------------------------------------------------
def test_training_loop_applies_policy_t_at_iteration_t():
    """Plain SGD: w_{t+1} = w_t - lr_t * grad_t. Reading the update back gives lr_t == policy(t)."""
    torch.manual_seed(0)
    policy = parse("LIN(k0=0.0, k1=0.1, l=20)[20] >> SIN2(k0=0.01, k1=0.1, l=30)")
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()
    opt = torch.optim.SGD(model.parameters(), lr=123.0)
    sched = PolicyLR(opt, policy)
    x, y = torch.randn(200, 16, 3, dtype=torch.float64), torch.randn(200, 16, 1, dtype=torch.float64)
    seen = []
    for t in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[t]), y[t])
        loss.backward()
        before = [p.detach().clone() for p in model.parameters()]
        grads = [p.grad.detach().clone() for p in model.parameters()]
        assert opt.param_groups[0]["lr"] == policy(t)
        opt.step()
        for b, g, p in zip(before, grads, model.parameters()):
            # what the optimizer really applied, bit for bit
            assert torch.equal(p.detach(), b.add(g, alpha=-policy(t)))
        seen.append(sched.get_last_lr()[0])
        sched.step()
    assert seen == [policy(t) for t in range(200)]
    assert seen[0] == 0.0 and max(seen) == pytest.approx(0.1)


# -- resume -------------------------------------------------------------------------------
# The uninterrupted run trains TOTAL iterations and checkpoints (torch.save) the model, optimizer
# and scheduler at the start of the iterations in CHECKPOINTS. A resumed run loads the checkpoint
# of split k (torch.load(weights_only=True)), continues to k + HORIZON (or TOTAL), and must match
# the uninterrupted run there exactly: the lr of every iteration, the weights and the momentum.
TOTAL = 3600
HORIZON = 300
SPLITS = (1, 500, 999, 1000, 2000, 3333)  # 3333: mid-cycle; it continues to TOTAL
CHECKPOINTS = sorted(set(SPLITS) | {min(k + HORIZON, TOTAL) for k in SPLITS})


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


_DATA = torch.Generator().manual_seed(7)
X = torch.randn(TOTAL, 8, 4, generator=_DATA)
Y = torch.randn(TOTAL, 8, 1, generator=_DATA)


def _checkpoint(model, opt, sched, t: int) -> bytes:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "t": t}, buf)
    return buf.getvalue()


def _train(model, opt, sched, start: int, stop: int, lrs: list[float], saved=None) -> None:
    for t in range(start, stop):
        if saved is not None and t in CHECKPOINTS:
            saved[t] = _checkpoint(model, opt, sched, t)
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X[t]), Y[t]).backward()
        opt.step()
        sched.step()
    if saved is not None and stop in CHECKPOINTS:
        saved[stop] = _checkpoint(model, opt, sched, stop)


RESUME_POLICIES = {
    "SIN2": "SIN2(k0=0.01, k1=0.06, l=2000)",
    "TRI2": "TRI2(k0=0.01, k1=0.06, l=1000)",
    "warmup-cos": "LIN(k0=0.0, k1=0.05, l=500)[500] >> COS(k0=0.05, k1=0.001, l=3500)",
}


@pytest.fixture(scope="module", params=list(RESUME_POLICIES))
def uninterrupted(request):
    policy = RESUME_POLICIES[request.param]
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = PolicyLR(opt, policy)
    lrs: list[float] = []
    saved: dict[int, bytes] = {}
    _train(model, opt, sched, 0, TOTAL, lrs, saved=saved)
    return policy, lrs, saved


def _resume(policy: str, blob: bytes, order: str):
    state = torch.load(io.BytesIO(blob), weights_only=True)
    model = _model()
    model.load_state_dict(state["model"])
    if order == "scheduler-first":  # torch's documented order
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        sched = PolicyLR(opt, policy)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    elif order == "optimizer-first":  # the order that makes torch's schedulers reset the lr
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        opt.load_state_dict(state["optimizer"])
        sched = PolicyLR(opt, policy)
        sched.load_state_dict(state["scheduler"])
    elif order == "other-hyperparameters":  # everything but the model comes from the checkpoint
        opt = torch.optim.SGD(model.parameters(), lr=0.7, momentum=0.5)
        sched = PolicyLR(opt, "FIX(k0=0.7)")
        sched.load_state_dict(state["scheduler"])
        opt.load_state_dict(state["optimizer"])
    else:
        raise AssertionError(order)
    assert sched.policies == (parse(policy),)
    return model, opt, sched, state["t"]


@pytest.mark.parametrize("order", ["scheduler-first", "optimizer-first", "other-hyperparameters"])
def test_resume_equals_an_uninterrupted_run(uninterrupted, order):
    policy, lrs, saved = uninterrupted
    # every split point for the order torch gets wrong; mid-cycle and a phase boundary for others
    splits = SPLITS if order == "optimizer-first" else (3333, 500)
    for k in splits:
        stop = min(k + HORIZON, TOTAL)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a correct resume must not warn
            model, opt, sched, t = _resume(policy, saved[k], order)
            assert t == k and sched.last_epoch == k and sched._step_count == k + 1
            assert opt.param_groups[0]["lr"] == lrs[k] == parse(policy)(k)
            resumed: list[float] = []
            _train(model, opt, sched, k, stop, resumed)
        assert resumed == lrs[k:stop], f"split {k}, {order}: lr sequence differs"
        want = torch.load(io.BytesIO(saved[stop]), weights_only=True)
        for name, value in model.state_dict().items():
            assert torch.equal(value, want["model"][name]), f"split {k}, {order}: {name} differs"
        momentum = [s["momentum_buffer"] for s in opt.state_dict()["state"].values()]
        want_momentum = [s["momentum_buffer"] for s in want["optimizer"]["state"].values()]
        assert all(map(torch.equal, momentum, want_momentum)) and len(momentum) == 4
        assert sched.state_dict() == want["scheduler"]


def test_the_resume_checkpoint_is_mid_cycle():
    # t = 3333 is inside a cycle and not on a boundary for SIN2 l=2000 and TRI2 l=1000
    for text in ("SIN2(k0=0.01, k1=0.06, l=2000)", "TRI2(k0=0.01, k1=0.06, l=1000)"):
        p = parse(text)
        assert p.bounds[0] < p(3333) < p.bounds[1] and 3333 % p.params["l"] != 0


def test_state_dict_is_plain_python_and_loads_with_weights_only():
    opt = _optimizer(n_groups=2)
    sched = PolicyLR(opt, ["SIN2(k0=0.01, k1=0.06, l=2000)", NSTEP(k0=0.1, gamma=0.1, l=[3, 9])])
    _mark_stepped(opt)
    for _ in range(10):
        sched.step()
    state = sched.state_dict()

    def plain(x: Any) -> bool:
        if isinstance(x, dict):
            return all(isinstance(k, str) and plain(v) for k, v in x.items())
        if isinstance(x, list):
            return all(plain(v) for v in x)
        return x is None or type(x) in (str, int, float, bool)

    assert plain(state), state
    assert state["policies"] == ["SIN2(k0=0.01, k1=0.06, l=2000)", "NSTEP(k0=0.1, gamma=0.1, l=[3, 9])"]
    assert state["last_epoch"] == 10
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True) == state
    # policies given as to_dict() are accepted too
    state2 = dict(state, policies=[parse(s).to_dict() for s in state["policies"]])
    sched2 = PolicyLR(_optimizer(n_groups=2), "FIX(k0=1.0)")
    sched2.load_state_dict(state2)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert state2["policies"][0] == {"name": "SIN2", "params": {"k0": 0.01, "k1": 0.06, "l": 2000}}


def test_load_state_dict_sets_the_lr_at_once_and_replaces_the_policy():
    src_opt = _optimizer()
    src = PolicyLR(src_opt, "TRI2(k0=0.01, k1=0.06, l=1000)")
    _mark_stepped(src_opt)
    for _ in range(3333):
        src.step()
    opt = _optimizer(lr=0.3)
    sched = PolicyLR(opt, FIX(k0=0.3))
    assert opt.param_groups[0]["lr"] == 0.3
    sched.load_state_dict(src.state_dict())
    want = TRI2(k0=0.01, k1=0.06, l=1000)(3333)
    assert opt.param_groups[0]["lr"] == want and sched.get_last_lr() == [want]
    assert sched.policies == (TRI2(k0=0.01, k1=0.06, l=1000),) and sched.last_epoch == 3333
    _mark_stepped(opt)
    sched.step()
    assert opt.param_groups[0]["lr"] == TRI2(k0=0.01, k1=0.06, l=1000)(3334)


def test_building_on_a_restored_optimizer_without_loading_warns_instead_of_silently_resetting():
    src_opt = _optimizer()
    src = PolicyLR(src_opt, "SIN2(k0=0.01, k1=0.06, l=2000)")
    _mark_stepped(src_opt)
    for _ in range(3333):
        src.step()
    opt = _optimizer()
    opt.load_state_dict(src_opt.state_dict())
    sched = PolicyLR(opt, "SIN2(k0=0.01, k1=0.06, l=2000)")  # forgot sched.load_state_dict
    _mark_stepped(opt)
    with pytest.warns(UserWarning, match=r"restarted from t = 0.*load_state_dict"):
        sched.step()
    # a fresh optimizer, or a restored one that is then loaded, does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = _optimizer()
        s = PolicyLR(fresh, "SIN2(k0=0.01, k1=0.06, l=2000)")
        _mark_stepped(fresh)
        s.step()
        opt2 = _optimizer()
        opt2.load_state_dict(src_opt.state_dict())
        s2 = PolicyLR(opt2, "SIN2(k0=0.01, k1=0.06, l=2000)")
        s2.load_state_dict(src.state_dict())
        _mark_stepped(opt2)
        s2.step()
        assert s2.last_epoch == 3334


def test_loading_only_the_optimizer_after_building_the_scheduler_warns():
    src_opt = _optimizer()
    src = PolicyLR(src_opt, "SIN2(k0=0.01, k1=0.06, l=2000)")
    _mark_stepped(src_opt)
    for _ in range(3333):
        src.step()
    opt = _optimizer()
    sched = PolicyLR(opt, "SIN2(k0=0.01, k1=0.06, l=2000)")
    opt.load_state_dict(src_opt.state_dict())  # forgot sched.load_state_dict
    _mark_stepped(opt)
    with pytest.warns(UserWarning, match=r"goes on from t = 1 .*load_state_dict"):
        sched.step()
    assert opt.param_groups[0]["lr"] == SIN2(k0=0.01, k1=0.06, l=2000)(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()  # only the first step checks


@pytest.mark.parametrize("k", [0, 1, 5, 3333, np.int64(7)])
def test_last_epoch_argument_follows_torchs_convention(k):
    """Built with last_epoch=k, a torch scheduler makes its first step at once: lr(k + 1).

    LambdaLR with the same closed form is the reference (it needs torch's initial_lr; PolicyLR
    does not, it sets it if missing).
    """
    policy = TRI2(k0=0.01, k1=0.06, l=1000)
    opt = _optimizer(lr=1.0)
    sched = PolicyLR(opt, policy, last_epoch=k)
    ref_opt = _optimizer(lr=1.0)
    for g in ref_opt.param_groups:
        g["initial_lr"] = 1.0
    ref = tls.LambdaLR(ref_opt, lambda t: policy(t), last_epoch=k)
    assert sched.last_epoch == ref.last_epoch == k + 1
    assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"] == policy(k + 1)


# -- parameter groups -----------------------------------------------------------------------
def test_one_policy_per_parameter_group():
    policies = [SIN2(k0=0.01, k1=0.06, l=50), "NSTEP(k0=0.1, gamma=0.5, l=[30, 60])",
                LIN(k0=0.0, k1=0.1, l=10)[10] >> COS(k0=0.1, k1=0.0, l=40)]
    opt = _optimizer(n_groups=3)
    sched = PolicyLR(opt, policies)
    _mark_stepped(opt)
    want = [parse(p) if isinstance(p, str) else p for p in policies]
    assert sched.policies == tuple(want)
    for t in range(150):
        assert [g["lr"] for g in opt.param_groups] == [p(t) for p in want]
        assert sched.get_last_lr() == [p(t) for p in want]
        assert sched.get_lr() == [p(t) for p in want]
        sched.step()


def test_a_single_policy_drives_every_group():
    opt = _optimizer(n_groups=2)
    sched = PolicyLR(opt, "EXP(k0=0.1, gamma=0.9)")
    _mark_stepped(opt)
    for _ in range(5):
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [EXP(k0=0.1, gamma=0.9)(5)] * 2


def test_a_tensor_lr_group_is_filled_in_place():
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    lr_tensor = torch.tensor(0.5)
    opt = torch.optim.SGD(
        [{"params": [params[0]], "lr": lr_tensor}, {"params": [params[1]], "lr": 0.5}],
        lr=0.5, foreach=False,
    )
    policy = SIN(k0=0.01, k1=0.06, l=7)
    sched = PolicyLR(opt, policy)
    _mark_stepped(opt)
    for t in range(30):
        g0, g1 = opt.param_groups
        assert g0["lr"] is lr_tensor and g0["lr"].dtype == torch.float32
        assert g0["lr"].item() == pytest.approx(policy(t), rel=1e-7)  # float32 holds it rounded
        assert g1["lr"] == policy(t) and type(g1["lr"]) is float
        last = sched.get_last_lr()
        assert isinstance(last[0], torch.Tensor) and last[0] is not lr_tensor  # a copy, as torch
        assert torch.equal(last[0], lr_tensor)
        params[0].grad = torch.ones(2)
        params[1].grad = torch.ones(2)
        before = params[0].detach().clone()
        opt.step()  # torch's SGD accepts the tensor lr
        assert torch.allclose(params[0].detach(), before - lr_tensor)
        sched.step()
    state = sched.state_dict()
    opt2 = torch.optim.SGD(
        [{"params": [params[0]], "lr": torch.tensor(0.9)}, {"params": [params[1]], "lr": 0.9}],
        foreach=False,
    )
    sched2 = PolicyLR(opt2, "FIX(k0=0.9)")
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"].item() == pytest.approx(policy(30), rel=1e-7)
    assert opt2.param_groups[1]["lr"] == policy(30)


def test_a_list_of_the_wrong_length_is_a_value_error_naming_the_counts():
    opt = _optimizer(n_groups=3)
    with pytest.raises(ValueError, match=r"2 policies for 3 parameter groups"):
        PolicyLR(opt, [FIX(k0=0.1), FIX(k0=0.2)])
    with pytest.raises(ValueError, match=r"4 policies for 3 parameter groups"):
        PolicyLR(opt, ["FIX(k0=0.1)"] * 4)
    sched = PolicyLR(opt, FIX(k0=0.1))
    with pytest.raises(ValueError, match=r"1 policies for 3 parameter groups"):
        sched.load_state_dict({"policies": ["FIX(k0=0.1)"], "last_epoch": 3})


def test_adding_a_parameter_group_after_construction_is_an_error():
    opt = _optimizer()
    sched = PolicyLR(opt, FIX(k0=0.1))
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
    _mark_stepped(opt)
    with pytest.raises(ValueError, match=r"1 policies but the optimizer now has 2"):
        sched.step()


# -- composites -------------------------------------------------------------------------------
def test_warmup_then_cosine_composite():
    warm, cos = LIN(k0=0.0, k1=0.1, l=100), COS(k0=0.1, k1=0.0, l=900)
    policy = warm[100] >> cos
    lrs = _policy_lr_lrs(policy, 2000)
    want = [warm(t) if t < 100 else cos(t - 100) for t in range(2000)]
    assert lrs == want
    assert lrs[0] == 0.0 and lrs[100] == 0.1 and lrs[1000] == 0.0 and lrs[1900] == 0.1
    # the same schedule from torch's own LinearLR + CosineAnnealingLR (SequentialLR); LinearLR
    # cannot start from 0, so the ramp starts at 1e-3 here
    warm2 = LIN(k0=1e-4, k1=0.1, l=100)
    ours = (warm2[100] >> cos).values(np.arange(2000))

    def make(o):
        a = tls.LinearLR(o, start_factor=1e-3, end_factor=1.0, total_iters=100)
        b = tls.CosineAnnealingLR(o, T_max=900, eta_min=0.0)
        return tls.SequentialLR(o, [a, b], milestones=[100])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SequentialLR steps with an epoch
        theirs = _torch_lrs(make, 0.1, 2000)
    assert np.max(np.abs(theirs - ours)) < 1e-9 * 0.1


def test_nested_composite_through_policy_lr():
    """Nested phases keep their own clocks (torch's nested SequentialLR does not)."""
    inner1 = LIN(k0=0.0, k1=0.1, l=50)[50] >> SIN2(k0=0.01, k1=0.1, l=200)
    inner2 = FIX(k0=0.01)[300] >> EXP(k0=0.01, gamma=0.999)
    policy = inner1[777] >> inner2
    assert parse(str(policy)) == policy
    lrs = _policy_lr_lrs(str(policy), 2000)

    def by_hand(t: int) -> float:
        if t < 50:
            return LIN(k0=0.0, k1=0.1, l=50)(t)
        if t < 777:
            return SIN2(k0=0.01, k1=0.1, l=200)(t - 50)
        if t < 777 + 300:
            return 0.01
        return EXP(k0=0.01, gamma=0.999)(t - 1077)

    assert lrs == [by_hand(t) for t in range(2000)]
    assert lrs[776] == SIN2(k0=0.01, k1=0.1, l=200)(726) and lrs[777] == 0.01
    assert lrs[1076] == 0.01 and lrs[1077] == 0.01 and lrs[1078] == 0.01 * 0.999


# -- the rest of torch's scheduler API ------------------------------------------------------
def test_construction_sets_policy_0_and_step_count_follows_torch():
    opt = _optimizer(lr=5.0)
    sched = PolicyLR(opt, "COS(k0=0.1, k1=0.0, l=10)")
    assert opt.param_groups[0]["lr"] == 0.1 and sched.last_epoch == 0
    assert sched._step_count == 1 and sched.get_last_lr() == [0.1]
    assert sched.base_lrs == [0.1] and opt.param_groups[0]["initial_lr"] == 5.0
    assert isinstance(sched, tls.LRScheduler)
    assert "COS(k0=0.1, k1=0.0, l=10)" in repr(sched)


def test_step_before_optimizer_step_warns_like_torch():
    opt = _optimizer()
    sched = PolicyLR(opt, FIX(k0=0.1))
    with pytest.warns(UserWarning, match=r"before `optimizer.step\(\)`"):
        sched.step()


def test_step_with_an_epoch_is_deprecated_and_jumps_to_the_closed_form():
    opt = _optimizer()
    sched = PolicyLR(opt, TRI(k0=0.01, k1=0.06, l=100))
    _mark_stepped(opt)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(150)
    assert sched.last_epoch == 150 and opt.param_groups[0]["lr"] == TRI(k0=0.01, k1=0.06, l=100)(150)
    with pytest.raises(ValueError, match="epoch"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step(-3)


def test_pickle_and_deepcopy_keep_the_schedule():
    opt = _optimizer()
    sched = PolicyLR(opt, "SIN(k0=0.01, k1=0.06, l=7)")
    _mark_stepped(opt)
    for _ in range(11):
        sched.step()
    for clone in (pickle.loads(pickle.dumps(sched)), copy.deepcopy(sched)):
        clone.optimizer._opt_called = True
        clone.step()
        assert clone.last_epoch == 12
        assert clone.optimizer.param_groups[0]["lr"] == SIN(k0=0.01, k1=0.06, l=7)(12)
    assert opt.param_groups[0]["lr"] == SIN(k0=0.01, k1=0.06, l=7)(11)  # the original is untouched


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (0.1, TypeError, "expected an LRBench Policy"),
        (None, TypeError, "expected an LRBench Policy"),
        ("SIN2(k0=0.01, k1=0.06)", ValueError, "missing parameter 'l'"),
        ("TRI(k0=-1, k1=0.06, l=10)", ValueError, "k0"),
        ([FIX(k0=0.1), 3], TypeError, r"policy\[1\]"),
    ],
)
def test_bad_policies_are_rejected(bad, error, match):
    with pytest.raises(error, match=match):
        PolicyLR(_optimizer(n_groups=1 if not isinstance(bad, list) else 2), bad)


@pytest.mark.parametrize("last_epoch", [-2, 1.5, True, "3"])
def test_bad_last_epoch_is_rejected(last_epoch):
    with pytest.raises(ValueError, match="last_epoch"):
        PolicyLR(_optimizer(), FIX(k0=0.1), last_epoch=last_epoch)


@pytest.mark.parametrize(
    "state, match",
    [
        ({"last_epoch": 3}, "policies"),
        ({"policies": ["FIX(k0=0.1)"], "last_epoch": -1}, "last_epoch"),
        ({"policies": ["FIX(k0=0.1)"]}, "last_epoch"),
        ({"policies": ["NOPE(k0=0.1)"], "last_epoch": 2}, "unknown LR function"),
    ],
)
def test_bad_state_dicts_are_rejected_and_leave_the_scheduler_unchanged(state, match):
    opt = _optimizer()
    sched = PolicyLR(opt, FIX(k0=0.1))
    with pytest.raises(ValueError, match=match):
        sched.load_state_dict(state)
    assert sched.policies == (FIX(k0=0.1),) and sched.last_epoch == 0


def test_importing_the_integrations_package_loads_no_framework():
    import subprocess
    import sys

    code = (
        "import sys, lrbench.integrations, lrbench.policies; "
        "print(sorted(m for m in ('torch', 'jax', 'keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_example_runs():
    import doctest

    import lrbench.integrations.torch as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
