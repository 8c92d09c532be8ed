"""``train(task, policy, seed)``: one run, task + policy + seed -> RunResult (torch).

Example (digits trains in seconds on a CPU)::

    from lrbench import train
    result = train("digits-mlp", "FIX(k0=0.05)", seed=0)
    result.status, result.summary()["top1"]          # ('done', 0.97...)

What happens, in order:

1. Arguments are checked: the task (a Task or a preset name), the policy (a Policy or its
   notation), the seed, threads, target accuracy. Then the dataset is loaded
   (``lrbench.data.load_dataset``), the model built (``lrbench.models.build_model`` with the
   task's init, seeded by ``seed``) and the optimizer made. Any problem here (bad notation,
   unknown model, missing data files, a model that does not fit the input) raises ValueError
   (or the data module's DatasetError / DatasetNotFoundError, both ValueErrors): nothing has been
   trained, so there is no run to report.
2. Training: ``task.max_iters`` steps of mini-batch training with cross-entropy, the LR set each
   step by a :class:`~lrbench.monitor.ScheduleMonitor`, the test set evaluated every
   ``task.eval_every`` steps. Batches come from ``TensorBatches(seed=seed)``, so a run is a pure
   function of (task, policy, seed) on a given machine and torch build (on the CPU, bit for bit).
   Torch's global random state is forked and restored: the caller's is left as it was.
3. The result: a :class:`~lrbench.results.RunResult` with the curve and its summary, status
   'done', 'diverged' (a NaN/inf training loss or one above ``divergence_loss``; the iteration is
   ``result.iterations`` and ``result.extra['diverged_at']``) or 'failed' (an exception during
   training: ``result.error`` holds its type and text, the curve so far is kept). ``wall_time`` is
   the whole call; ``train_time`` the training loop without evaluations, so
   ``result.iters_per_sec`` measures training alone. ``extra`` holds ``train_cpu_time`` (the
   same in CPU seconds of the process), ``eval_time``, ``n_evals``, ``model_params``,
   ``threads``, ``device``, ``torch`` and ``dataset`` (and ``diverged_at`` / ``divergence``).

Optimizers (``task.optimizer``), with ``m = task.momentum`` and ``wd = task.weight_decay``
(L2 weight decay on every parameter, as Caffe applies it):

- ``sgd``: plain SGD (momentum 0, ``m`` is ignored); ``momentum``: SGD with momentum ``m``;
  ``nesterov``: SGD with Nesterov momentum ``m``;
- ``adam`` / ``adamw``: betas ``(m, 0.999)`` (``m`` is beta1, as Caffe's ``momentum`` is for
  Adam); AdamW's ``wd`` is decoupled weight decay;
- ``rmsprop``: torch's RMSprop with ``alpha=0.99`` and momentum ``m``.
"""

from __future__ import annotations

import math
import numbers
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lrbench.models import build_model, count_parameters
from lrbench.monitor import Evaluator, ScheduleMonitor, as_policy
from lrbench.policies import Policy
from lrbench.results import RunResult
from lrbench.tasks import Task, as_task

__all__ = [
    "AUTO", "DIVERGENCE_FACTOR", "RunSetup", "divergence_bound", "make_optimizer", "prepare",
    "resolve_device", "train",
]

#: ``divergence_loss="auto"``: a training loss above DIVERGENCE_FACTOR * ln(n_classes) (25 times
#: the loss of a uniform guess; 57.6 for 10 classes) counts as divergence. A healthy run starts
#: near ln(n_classes) and goes down; a loss this high means the network puts, on average, a
#: probability below e^-57 on the true class: its weights have blown up.
DIVERGENCE_FACTOR = 25.0
AUTO = "auto"

#: samples per forward pass when evaluating
EVAL_BATCH_SIZE = 1000


def divergence_bound(n_classes: int, factor: float = DIVERGENCE_FACTOR) -> float:
    """The automatic divergence bound: ``factor * ln(max(n_classes, 2))``."""
    return factor * math.log(max(int(n_classes), 2))


def make_optimizer(task: Task, params: Iterable[Any], lr: float = 0.0) -> torch.optim.Optimizer:
    """The task's optimizer over ``params`` (the LR is set by the monitor; see module doc)."""
    m, wd = task.momentum, task.weight_decay
    name = task.optimizer
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=m, weight_decay=wd)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=m, nesterov=True, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(m, 0.999), weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(m, 0.999), weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, momentum=m, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}")  # pragma: no cover (Task validates it)


class RunSetup(NamedTuple):
    """What :func:`prepare` builds for one run of a task with one seed."""

    dataset: Any  #: the loaded ``lrbench.data.Dataset``
    model: nn.Module  #: the task's model, initialised with the seed, on the device
    optimizer: torch.optim.Optimizer  #: the task's optimizer over the model's parameters
    batches: Any  #: ``TensorBatches`` of the task's (scaled) training set for the seed
    train_x: Any  #: the training inputs in the task's input scaling
    test_x: Any  #: the test inputs in the task's input scaling


def prepare(
    task: Task | str,
    seed: int = 0,
    *,
    data_root: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    lr: float = 0.0,
) -> RunSetup:
    """Load the task's data, build its model (seeded by ``seed``) and optimizer (at ``lr``) and
    the training batches of ``seed``: exactly what :func:`train` trains (the range tests in
    ``lrbench.tuning`` use it too). ValueError (or a DatasetError) for a set-up problem."""
    from lrbench.data import load_dataset
    from lrbench.data.batches import TensorBatches

    task = as_task(task)
    seed = _check_seed(seed)
    dev = resolve_device(device)
    ds = load_dataset(task.dataset, root=data_root)
    info = ds.info
    model = build_model(task.model, info.input_shape, info.n_classes, init=task.init, seed=seed)
    model.to(dev)
    optimizer = make_optimizer(task, model.parameters(), lr=lr)
    train_x, test_x = ds.scaled(task.inputs)  # the task's input scaling (Caffe's, for LeNet)
    batches = TensorBatches(train_x, ds.train_y, task.batch_size, seed, device=dev)
    return RunSetup(ds, model, optimizer, batches, train_x, test_x)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to train on (default: the CPU); ValueError when it is unknown or absent.

    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("cuda")  # on a machine without CUDA     # doctest: +SKIP
    ValueError: device 'cuda' requested but CUDA is not available (torch 2.13.0, CPU build)
    """
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu', 'cuda' or 'cuda:1', "
                         f"got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "CPU build" if torch.version.cuda is None else "no GPU visible"
            raise ValueError(f"device {str(device)!r} requested but CUDA is not available "
                             f"(torch {torch.__version__}, {build})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} requested but only "
                             f"{torch.cuda.device_count()} CUDA device(s) are visible")
    return dev


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def _check_threads(threads: Any) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    return int(threads)


def _check_target(target: Any) -> float | None:
    if target is None:
        return None
    try:
        t = float(target)
    except (TypeError, ValueError):
        raise ValueError(f"target_accuracy must be a number in (0, 1], got {target!r}") from None
    if not 0.0 < t <= 1.0:
        raise ValueError(f"target_accuracy must be in (0, 1], got {target!r}")
    return t


def _divergence(value: Any, n_classes: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() != AUTO:
            raise ValueError(f"divergence_loss must be a number, None or 'auto', got {value!r}")
        return divergence_bound(n_classes)
    try:
        d = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"divergence_loss must be a number, None or 'auto', got {value!r}"
        ) from None
    if not (d > 0 and math.isfinite(d)):
        raise ValueError(f"divergence_loss must be finite and > 0, got {value!r}")
    return d


def run_loop(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    monitor: ScheduleMonitor,
) -> None:
    """The training loop: forward, cross-entropy, backward, step, ``monitor.step(loss)``,
    until the monitor says stop. Kept as lean as a hand-written loop."""
    model.train()
    zero_grad = optimizer.zero_grad
    opt_step = optimizer.step
    count = monitor.step
    cross_entropy = F.cross_entropy
    for xb, yb in batches:
        loss = cross_entropy(model(xb), yb)
        zero_grad(set_to_none=True)
        loss.backward()
        opt_step()
        if count(loss):
            break


def train(
    task: Task | str,
    policy: Policy | str,
    seed: int = 0,
    *,
    threads: int | None = None,
    data_root: str | os.PathLike[str] | None = None,
    target_accuracy: float | None = None,
    divergence_loss: float | str | None = AUTO,
    progress: Callable[[ScheduleMonitor], Any] | None = None,
    store: Any = None,
    device: str | torch.device | None = None,
    eval_batch_size: int = EVAL_BATCH_SIZE,
) -> RunResult:
    """Train ``task`` under ``policy`` with ``seed``; return the RunResult (see module doc).

    ``threads``: torch's intra-op threads for this run (restored afterwards; None leaves the
    setting alone). ``data_root``: searched first for the dataset's files. ``target_accuracy``:
    stop at the first evaluation with top-1 >= it. ``divergence_loss``: a training loss above it
    is a divergence; ``'auto'`` is :func:`divergence_bound` of the dataset's classes, None checks
    only for NaN/inf. ``progress(monitor)``: called after each evaluation and every ~0.5% of the
    iterations (read ``monitor.iteration``, ``monitor.lr``, ``monitor.last_point``).
    ``store``: a ``lrbench.store.Store`` (or its URL) to record the result in. ``device``:
    where to train (default CPU; ``'cuda'`` without CUDA is a ValueError, see
    :func:`resolve_device`).
    """
    t_start = time.perf_counter()
    task = as_task(task)
    pol = as_policy(policy)
    seed = _check_seed(seed)
    threads = _check_threads(threads)
    target = _check_target(target_accuracy)
    if progress is not None and not callable(progress):
        raise ValueError("progress must be a callable taking the monitor")
    dev = resolve_device(device)

    setup = prepare(task, seed, data_root=data_root, device=dev, lr=pol(0))
    ds, info, model, optimizer, batches = (
        setup.dataset, setup.dataset.info, setup.model, setup.optimizer, setup.batches)
    bound = _divergence(divergence_loss, info.n_classes)
    evaluator = Evaluator(model, setup.test_x, ds.test_y, eval_batch_size, device=dev)

    prev_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    extra: dict[str, Any] = {
        "model_params": count_parameters(model),
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "torch": torch.__version__,
        "dataset": info.to_dict(),
    }
    host = socket.gethostname()
    monitor: ScheduleMonitor | None = None
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            monitor = ScheduleMonitor(
                optimizer, pol, max_iters=task.max_iters, eval_every=task.eval_every,
                evaluate=evaluator, target_accuracy=target, divergence_loss=bound,
                callback=progress,
            )
            try:
                run_loop(model, optimizer, batches, monitor)
                result = monitor.result(
                    task, seed, wall_time=time.perf_counter() - t_start, host=host, extra=extra,
                )
            except Exception as e:  # a failure of the run, not of the arguments
                result = _failed(task, pol, seed, monitor, e, t_start, host, extra)
    finally:
        if threads is not None:
            torch.set_num_threads(prev_threads)
    if store is not None:
        _record(store, result, info)
    return result


def _failed(
    task: Task, policy: Policy, seed: int, monitor: ScheduleMonitor, error: BaseException,
    t_start: float, host: str, extra: dict[str, Any],
) -> RunResult:
    tb = traceback.extract_tb(error.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return RunResult(
        task=task,
        policy=str(policy),
        seed=seed,
        status="failed",
        stop_reason="error",
        iterations=monitor.iteration,
        curve=tuple(monitor.curve),
        wall_time=time.perf_counter() - t_start,
        train_time=monitor.train_time,
        n_params=policy.n_params,
        host=host,
        error=f"{type(error).__name__}: {error}{where}",
        extra={**extra, "eval_time": monitor.eval_time, "n_evals": monitor.n_evals,
               "train_cpu_time": monitor.train_cpu_time},
    )


def _record(store: Any, result: RunResult, info: Any) -> None:
    if isinstance(store, (str, os.PathLike)):
        from lrbench.store import open_store

        with open_store(str(store)) as s:
            s.record(result, dataset_info=info)
    else:
        store.record(result, dataset_info=info)
