"""Training-harness overhead: ``lrbench.train`` vs a minimal hand-written torch loop (issue #3).

Side by side in one process, on the same model (LeNet, Xavier init, same seed), data
(Fashion-MNIST, scaled as the task says), batch size (100) and optimizer (SGD,
momentum 0.9, weight decay 0.0005, the ``fashion-mnist-lenet`` preset), the iterations per
second of training (wall-clock and CPU time of the process), evaluation excluded:
``lrbench.train`` reports its training time without evaluations (``RunResult.train_time``)
and evaluates once, at the end, outside it; the hand-written loop does not evaluate at all.
The two alternate, ``--repeats`` rounds (the order flipped every round, so drift and other
processes on the machine hit both alike); the median of each is reported, with the median of
the per-round ratios. Target: ratio >= 0.97. On a machine shared with other work the
wall-clock figures swing with the load; the CPU-time figures (``time.process_time``, one torch
thread) count the work each loop does and are the stable comparison there.

Also measured: one evaluation pass (LeNet over the 10,000 test images, ``Evaluator``), the
metrics alone (``evaluate_outputs`` on 10,000 x 10 logits), and the monitor's own per-step cost
with the two ways of reading the loss (at once, or deferred and read in one transfer every 50
steps).

Usage::

    apt-get install -y dataset-fashion-mnist      # or let lrbench.data download it
    python benchmarks/bench_trainer.py [--iters 300] [--repeats 5] [--threads 1] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import lrbench
from lrbench.data import load_dataset
from lrbench.metrics import evaluate_outputs
from lrbench.models import build_model
from lrbench.monitor import Evaluator, ScheduleMonitor
from lrbench.tasks import get_task

POLICY = "FIX(k0=0.01)"


def handwritten(task: Any, ds: Any, iters: int, seed: int) -> tuple[float, float]:
    """A minimal torch loop: shuffle each epoch, slice, forward, loss, backward, step.
    Returns iterations per (wall-clock second, CPU second)."""
    torch.manual_seed(seed)
    model = build_model(task.model, ds.info.input_shape, ds.info.n_classes, init=task.init,
                        seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=task.momentum,
                          weight_decay=task.weight_decay)
    x = torch.from_numpy(np.array(ds.scaled(task.inputs)[0]))  # the task's input scaling
    y = torch.from_numpy(np.array(ds.train_y))
    n, bs = x.shape[0], task.batch_size
    per_epoch = n // bs
    model.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    perm = torch.randperm(n)
    for i in range(iters):
        j = i % per_epoch
        if j == 0 and i:
            perm = torch.randperm(n)
        idx = perm[j * bs:(j + 1) * bs]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return iters / wall, iters / cpu


def harness(task: Any, iters: int, seed: int) -> tuple[float, float]:
    """``lrbench.train``'s iterations per (wall-clock second, CPU second), evaluation excluded."""
    t = task.replace(max_iters=iters, eval_every=iters)
    result = lrbench.train(t, POLICY, seed)
    assert result.status == "done", result.error
    return result.iters_per_sec, iters / result.extra["train_cpu_time"]


def time_eval(task: Any, ds: Any, repeats: int) -> tuple[float, float]:
    """(seconds per evaluation pass of LeNet over the test set, seconds per evaluate_outputs
    on 10,000 x 10 logits)."""
    model = build_model(task.model, ds.info.input_shape, ds.info.n_classes, init=task.init,
                        seed=0)
    ev = Evaluator(model, ds.scaled(task.inputs)[1], ds.test_y, batch_size=1000)
    ev()  # warm-up
    passes = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ev()
        passes.append(time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((10_000, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 10_000)
    metrics = []
    for _ in range(max(repeats, 20)):
        t0 = time.perf_counter()
        evaluate_outputs(logits, labels)
        metrics.append(time.perf_counter() - t0)
    return statistics.median(passes), statistics.median(metrics)


def time_monitor_step(defer: bool, steps: int = 20_000) -> float:
    """Microseconds per ``monitor.step(loss)`` with a 0-dim CPU loss tensor, no evaluation."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    monitor = ScheduleMonitor(opt, "SIN2(k0=0.01, k1=0.06, l=2000)", max_iters=steps + 1,
                              eval_every=10**9, defer=defer, check_every=50)
    w = torch.ones((), requires_grad=True)
    losses = [(w * float(i % 7)).sum() for i in range(steps)]
    t0 = time.perf_counter()
    for loss in losses:
        monitor.step(loss)
    return (time.perf_counter() - t0) / steps * 1e6


def compare(task: Any, ds: Any, iters: int, repeats: int) -> dict[str, Any]:
    """Alternate the two loops ``repeats`` times; it/s per (wall, CPU) clock for each run."""
    harness(task, 10, 0)  # warm-up both (allocator, kernels, lazy imports)
    handwritten(task, ds, 10, 0)
    hand: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    for r in range(repeats):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for which in order:
            if which == 0:
                hand.append(handwritten(task, ds, iters, r))
            else:
                ours.append(harness(task, iters, r))
    return {"hand": hand, "ours": ours}


def rows_for(label: str, runs: dict[str, Any], clock: int) -> list[tuple[str, str, str]]:
    name = "CPU" if clock == 1 else "wall"
    hand = [v[clock] for v in runs["hand"]]
    ours = [v[clock] for v in runs["ours"]]
    paired = [o / h for o, h in zip(ours, hand)]
    h_med, o_med = statistics.median(hand), statistics.median(ours)
    overhead_us = (1 / o_med - 1 / h_med) * 1e6
    return [
        (f"{label}: hand-written loop (it/{name}-s, median)", f"{h_med:.1f}",
         f"best {max(hand):.1f}; runs {', '.join(f'{v:.1f}' for v in hand)}"),
        (f"{label}: lrbench.train (it/{name}-s, median, evaluation excluded)", f"{o_med:.1f}",
         f"best {max(ours):.1f}; runs {', '.join(f'{v:.1f}' for v in ours)}"),
        (f"{label}: ratio lrbench / hand-written, {name} time", f"{statistics.median(paired):.3f}",
         f"median of the {len(paired)} paired rounds (min {min(paired):.3f}, max "
         f"{max(paired):.3f}); best/best {max(ours) / max(hand):.3f}; median/median "
         f"{o_med / h_med:.3f}; overhead {overhead_us:+.0f} us/step"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=60, help="LeNet training steps per run")
    parser.add_argument("--repeats", type=int, default=15, help="rounds (one run of each loop)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both loops)")
    parser.add_argument("--no-digits", action="store_true",
                        help="skip the small-step comparison on digits / MLP")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = get_task("fashion-mnist-lenet")
    t0 = time.perf_counter()
    ds = load_dataset(task.dataset)
    load_s = time.perf_counter() - t0

    lenet = compare(task, ds, args.iters, args.repeats)
    rows = rows_for("LeNet / Fashion-MNIST", lenet, 1) + rows_for("LeNet / Fashion-MNIST",
                                                                  lenet, 0)
    if not args.no_digits:
        digits_task = get_task("digits-mlp")
        digits = compare(digits_task, load_dataset("digits"), 1000, max(5, args.repeats // 2))
        rows += rows_for("MLP / digits (batch 32)", digits, 1)
    eval_s, metrics_s = time_eval(task, ds, repeats=5)
    step_now = time_monitor_step(defer=False)
    step_deferred = time_monitor_step(defer=True)
    rows += [
        ("one evaluation pass, LeNet on 10,000 test images (s)", f"{eval_s:.3f}",
         "Evaluator: eval mode, no_grad, batches of 1,000, then the metrics; median of 5"),
        ("metrics on 10,000 x 10 logits (ms)", f"{metrics_s * 1e3:.2f}",
         "evaluate_outputs: top-1, top-5, AC, CD, CDAC, loss; median of 20"),
        ("monitor.step, loss read at once (us/step)", f"{step_now:.2f}",
         "0-dim CPU loss: loss.item(), divergence check, policy(t), set LR"),
        ("monitor.step, loss deferred (us/step)", f"{step_deferred:.2f}",
         "detach + keep, one stacked read every 50 steps (the accelerator path)"),
    ]
    title = (f"Training harness: LeNet {args.iters} iterations x {args.repeats} rounds, "
             f"{args.threads} thread(s), torch {torch.__version__}, "
             f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
             f"{os.getloadavg()[0]:.1f}, Fashion-MNIST load {load_s:.1f} s")
    if args.markdown:
        print(f"{title}\n")
        print("| measure | value | notes |")
        print("|---|---:|---|")
        for name, value, note in rows:
            print(f"| {name} | {value} | {note} |")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("notes")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
