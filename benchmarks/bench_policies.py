"""Speed of LRBench's LR policies against PyTorch's LR schedulers (GitHub issue #2).

Not a test: run it by hand and copy the table into docs/benchmarks.md.

    python benchmarks/bench_policies.py               # a rich table in the terminal
    python benchmarks/bench_policies.py --markdown    # the same as a Markdown table

(a) For each of the paper's 13 LR functions: one call of ``policy.values(np.arange(N))`` (N = 10^6
    iterations at once, numpy) against stepping the equivalent torch scheduler N times (what a
    torch user does to get the same N values). Functions without a torch twin (FIX, INV, SIN,
    SIN2, SINEXP) are compared with ``LambdaLR`` computing the same formula in plain Python
    ``math``, the closest torch offers. Stepping torch 10^6 times for each of 13 functions takes
    about a minute on a busy 2-core box, so by default torch is stepped 10^5 times, in 10 chunks,
    and the best chunk's time per step is scaled to 10^6 steps (a scheduler's cost per step is
    constant); ``--torch-steps 1000000`` runs all 10^6. values() is timed best of 7 calls.
    The last column checks that both sides compute the same LRs.
(b) The per-step cost of ``PolicyLR.step()`` against ``CyclicLR.step()`` for the same TRI policy
    (best of several interleaved repeats; both without momentum cycling).

Targets: (a) values() at least 50x faster than stepping torch; (b) PolicyLR.step() no slower than
CyclicLR.step() (ratio <= 1.0). Everything runs on one thread (torch.set_num_threads(1)).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import timeit
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.optim import lr_scheduler as tls

from lrbench.integrations.torch import PolicyLR
from lrbench.policies import (
    COS,
    EXP,
    FIX,
    INV,
    NSTEP,
    POLY,
    SIN,
    SIN2,
    SINEXP,
    STEP,
    TRI,
    TRI2,
    TRIEXP,
    Policy,
)

N = 10**6
VALUES_TARGET = 50.0
STEP_TARGET = 1.0

# The paper's typical settings (MNIST/CIFAR-10 policies), one per function.
K0, K1, L, GAMMA = 0.01, 0.06, 2000, 0.99994


@dataclass
class Case:
    policy: Policy
    torch_name: str  # what the torch side is, for the table
    make: Callable[[torch.optim.Optimizer], Any]  # optimizer -> torch scheduler
    lr0: float  # the optimizer's initial lr (torch's base_lr)


def _cases() -> list[Case]:
    tri_kw: dict[str, Any] = {"base_lr": K0, "max_lr": K1, "step_size_up": L, "cycle_momentum": False}
    half = math.pi / (2 * L)
    amp = K1 - K0
    return [
        Case(FIX(k0=0.1), "LambdaLR*", lambda o: tls.LambdaLR(o, lambda t: 1.0), 0.1),
        # 10 halvings in 10^6 steps (0.1 every 3000 steps would underflow to subnormal numbers,
        # which are slow on x86 and unrealistic)
        Case(STEP(k0=0.1, gamma=0.5, l=100000), "StepLR",
             lambda o: tls.StepLR(o, step_size=100000, gamma=0.5), 0.1),
        Case(NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500]), "MultiStepLR",
             lambda o: tls.MultiStepLR(o, milestones=[5000, 7000, 8000, 9000, 9500], gamma=0.9),
             0.01),
        Case(EXP(k0=0.1, gamma=0.99999), "ExponentialLR",
             lambda o: tls.ExponentialLR(o, gamma=0.99999), 0.1),
        Case(INV(k0=0.01, gamma=0.0001, p=0.75), "LambdaLR*",
             lambda o: tls.LambdaLR(o, lambda t: (1.0 + 0.0001 * t) ** -0.75), 0.01),
        Case(POLY(k0=0.1, p=2.0, l=N), "PolynomialLR",
             lambda o: tls.PolynomialLR(o, total_iters=N, power=2.0), 0.1),
        Case(TRI(k0=K0, k1=K1, l=L), "CyclicLR triangular",
             lambda o: tls.CyclicLR(o, mode="triangular", **tri_kw), K0),
        Case(TRI2(k0=K0, k1=K1, l=L), "CyclicLR triangular2",
             lambda o: tls.CyclicLR(o, mode="triangular2", **tri_kw), K0),
        Case(TRIEXP(k0=K0, k1=K1, gamma=GAMMA, l=L), "CyclicLR exp_range",
             lambda o: tls.CyclicLR(o, mode="exp_range", gamma=GAMMA, **tri_kw), K0),
        Case(SIN(k0=K0, k1=K1, l=L), "LambdaLR*",
             lambda o: tls.LambdaLR(o, lambda t: (K0 + amp * abs(math.sin(half * t))) / K0), K0),
        Case(SIN2(k0=K0, k1=K1, l=L), "LambdaLR*",
             lambda o: tls.LambdaLR(
                 o, lambda t: (K0 + amp * abs(math.sin(half * t)) / 2 ** (t // (2 * L))) / K0
             ), K0),
        Case(SINEXP(k0=K0, k1=K1, gamma=GAMMA, l=L), "LambdaLR*",
             lambda o: tls.LambdaLR(
                 o, lambda t: (K0 + amp * GAMMA**t * abs(math.sin(half * t))) / K0
             ), K0),
        Case(COS(k0=0.1, k1=0.0, l=L), "CosineAnnealingLR",
             lambda o: tls.CosineAnnealingLR(o, T_max=L, eta_min=0.0), 0.1),
    ]


def _optimizer(lr: float) -> torch.optim.Optimizer:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    opt._opt_called = True  # type: ignore[attr-defined]  # no "step before optimizer.step" warning
    return opt


def time_values(policy: Policy, n: int, repeat: int = 7) -> float:
    """Best seconds of ``policy.values(np.arange(n))`` over ``repeat`` calls."""
    ts = np.arange(n)
    policy.values(ts[:1000])  # warm up
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        policy.values(ts)
        best = min(best, time.perf_counter() - start)
    return best


def time_torch_steps(case: Case, n_run: int, n: int, chunks: int = 10) -> float:
    """Seconds for ``n`` steps of the torch scheduler: ``n_run`` steps are run in ``chunks``
    chunks, and the best chunk's time per step is scaled to ``n`` (best-of, like time_values)."""
    sched = case.make(_optimizer(case.lr0))
    step = sched.step
    per_chunk = max(1, n_run // chunks)
    best = math.inf
    for _ in range(chunks):
        start = time.perf_counter()
        for _ in range(per_chunk):
            step()
        best = min(best, (time.perf_counter() - start) / per_chunk)
    return best * n


def max_rel_diff(case: Case, n: int = 10**4) -> float:
    """How far the torch side is from the policy over the first n steps (they compute the same)."""
    opt = _optimizer(case.lr0)
    sched = case.make(opt)
    lrs = np.empty(n)
    for t in range(n):
        lrs[t] = opt.param_groups[0]["lr"]
        sched.step()
    want = case.policy.values(np.arange(n))
    return float(np.max(np.abs(lrs - want) / case.policy.bounds[1]))


def time_step_cost(repeat: int, number: int) -> tuple[float, float]:
    """Best seconds per step of CyclicLR.step() and PolicyLR.step() (TRI), interleaved."""
    cyclic = tls.CyclicLR(
        _optimizer(K0), base_lr=K0, max_lr=K1, step_size_up=L, cycle_momentum=False
    )
    ours = PolicyLR(_optimizer(0.1), TRI(k0=K0, k1=K1, l=L))
    best_c = best_p = math.inf
    for _ in range(repeat):
        best_c = min(best_c, timeit.timeit(cyclic.step, number=number) / number)
        best_p = min(best_p, timeit.timeit(ours.step, number=number) / number)
    return best_c, best_p


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.2f} µs"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPU cores visible (shared), Python {platform.python_version()},"
        f" numpy {np.__version__}, torch {torch.__version__}, torch threads 1"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    ap.add_argument("--n", type=int, default=N, help="iterations for values() (default 10^6)")
    ap.add_argument("--torch-steps", type=int, default=10**5,
                    help="torch steps actually run, scaled to --n (default 10^5)")
    ap.add_argument("--step-repeat", type=int, default=15, help="repeats for (b)")
    ap.add_argument("--step-number", type=int, default=20000, help="steps per repeat for (b)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", UserWarning)

    n, n_torch = args.n, min(args.torch_steps, args.n)
    scale = n / n_torch
    rows = []
    for case in _cases():
        t_values = time_values(case.policy, n)
        t_torch = time_torch_steps(case, n_torch, n)
        rows.append((case.policy.name, str(case.policy), case.torch_name, t_values, t_torch,
                     t_torch / t_values, max_rel_diff(case)))
    t_cyclic, t_ours = time_step_cost(args.step_repeat, args.step_number)

    note_a = (
        f"values(np.arange({n:,})), best of 7 calls, vs {n:,} torch scheduler steps"
        + (f" (torch: {n_torch:,} steps run in 10 chunks, best chunk's time per step x {n:,})"
           if scale != 1 else f" (best of 10 chunks, time per step x {n:,})")
        + f"; target >= {VALUES_TARGET:g}x. 'same values?': the largest difference between"
        " the torch side and policy.values over the first 10^4 steps, relative to the max LR"
    )
    note_b = (f"per-step cost, TRI(k0={K0}, k1={K1}, l={L}), best of {args.step_repeat} x"
              f" {args.step_number:,} steps; target ratio <= {STEP_TARGET:g}")
    head_a = ["function", "policy", "torch scheduler", "values()", "torch steps", "speed-up",
              "same values?"]
    body_a = [[name, pol, tname, _fmt_time(tv), _fmt_time(tt), f"{ratio:,.0f}x", f"{diff:.0e}"]
              for name, pol, tname, tv, tt, ratio, diff in rows]
    worst = min(r[5] for r in rows)
    ratio_b = t_ours / t_cyclic
    head_b = ["scheduler", "step()", "ratio to CyclicLR"]
    body_b = [["CyclicLR (torch)", _fmt_time(t_cyclic), "1.00"],
              ["PolicyLR (LRBench)", _fmt_time(t_ours), f"{ratio_b:.2f}"]]
    footnote = ("* no torch twin: LambdaLR computing the same formula with Python's math module"
                " (FIX: a constant factor)")
    verdict_a = f"slowest speed-up {worst:,.0f}x ({'meets' if worst >= VALUES_TARGET else 'MISSES'} >= {VALUES_TARGET:g}x)"
    verdict_b = f"ratio {ratio_b:.2f} ({'meets' if ratio_b <= STEP_TARGET else 'MISSES'} <= {STEP_TARGET:g})"

    if args.markdown:
        def table(head: list[str], body: list[list[str]]) -> str:
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
            return "\n".join(lines)

        print(f"Machine: {machine()}\n")
        print(f"(a) {note_a}.\n")
        print(table(head_a, body_a))
        print(f"\n{footnote}. {verdict_a}.\n")
        print(f"(b) {note_b}.\n")
        print(table(head_b, body_b))
        print(f"\n{verdict_b}.")
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        if console.width < 150:  # the policy column needs room; wrap whole rows otherwise
            console = Console(width=150)
        console.print(f"[bold]Machine:[/bold] {machine()}")
        ta = Table(title=f"(a) {note_a}")
        for i, h in enumerate(head_a):
            ta.add_column(h, justify="right" if i >= 3 else "left")
        for row in body_a:
            ta.add_row(*row)
        console.print(ta)
        console.print(footnote)
        console.print(verdict_a)
        tb = Table(title=f"(b) {note_b}")
        for i, h in enumerate(head_b):
            tb.add_column(h, justify="right" if i else "left")
        for row in body_b:
            tb.add_row(*row)
        console.print(tb)
        console.print(verdict_b)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
