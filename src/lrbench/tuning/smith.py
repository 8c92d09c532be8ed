"""Smith's LR range test on a PyTorch model (the math is in :mod:`lrbench.tuning.rangetest`).

One sweep of ``iters`` optimizer steps whose LR grows exponentially,
``lr_i = start_lr * (end_lr / start_lr) ** (i / (iters - 1))``, recording the training loss;
the bias-corrected smoothed loss ``s_i`` against the LR gives the bounds
(``k1 = lr_min_loss / 10``, ``k0 = k1 / ratio``).

Your model and optimizer are left exactly as they were: the model's ``state_dict`` (parameters
and buffers, e.g. BatchNorm statistics), the optimizer's ``state_dict`` (momentum buffers, Adam's
``exp_avg``/``exp_avg_sq`` and step counts, every parameter group's ``lr`` and other settings), the
parameters' ``.grad``, each module's train/eval mode and torch's CPU (and the model's CUDA) random
state are saved (deep copies) before the sweep and loaded back afterwards, also when the loss
diverges or the loop raises (the exception then propagates). The copies double the memory of
the model and optimizer state for the duration of the sweep.

>>> import torch
>>> from lrbench.tuning import smith_range_test
>>> torch.manual_seed(0)                                          # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = torch.nn.Linear(4, 3)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> data = [(torch.randn(16, 4), torch.randint(0, 3, (16,))) for _ in range(10)]
>>> r = smith_range_test(model, opt, torch.nn.functional.cross_entropy, data,
...                      start_lr=1e-4, end_lr=10.0, iters=50)
>>> r.iterations <= 50 and r.lrs[0] == 1e-4, opt.param_groups[0]["lr"]
(True, 0.1)
>>> r.k0 < r.k1 < r.lr_min_loss
True
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("lrbench.tuning.smith needs PyTorch: pip install lrbench[torch]") from exc

from lrbench.tasks import Task, as_task
from lrbench.tuning.rangetest import (
    BOUND_RATIO,
    DEFAULT_BETA,
    DIVERGE_FACTOR,
    SMITH_END_LR,
    SMITH_ITERS,
    SMITH_START_LR,
    SmithRangeResult,
    SmithStop,
    _check_beta,
    _ratio,
    _Smoother,
    exponential_lrs,
)

__all__ = ["smith_range_test", "smith_range_test_task"]


def _check_factor(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value > 1
    ):
        raise ValueError(f"diverge_factor must be a number > 1 or None, got {value!r}")
    return float(value)


def _set_lr(groups: list[dict[str, Any]], lr: float) -> None:
    for g in groups:
        cur = g["lr"]
        if isinstance(cur, torch.Tensor):
            cur.fill_(lr)  # a tensor LR (capturable / compiled optimizers): keep the tensor
        else:
            g["lr"] = lr


def _unpack(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    size = f" of length {len(batch)}" if hasattr(batch, "__len__") else ""
    raise ValueError(
        f"each batch must be a pair (inputs, targets); got {type(batch).__name__}{size}")


def _to(x: Any, device: Any) -> Any:
    return x.to(device, non_blocking=True) if device is not None and hasattr(x, "to") else x


class _Saved:
    """Deep copies of everything the sweep changes, and how to put it back."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model_state = copy.deepcopy(model.state_dict())
        self.optim_state = copy.deepcopy(optimizer.state_dict())
        # the original objects, to be refilled and put back after load_state_dict
        self.state_objects = {p: dict(st) for p, st in optimizer.state.items()}
        self.group_objects = [
            {k: v for k, v in g.items() if isinstance(v, torch.Tensor)}
            for g in optimizer.param_groups
        ]
        self.modes = [(m, m.training) for m in model.modules()]
        self.grads = [
            (p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()
        ]

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        with torch.no_grad():
            model.load_state_dict(self.model_state)  # copies into the same tensors
        optimizer.load_state_dict(self.optim_state)  # the standard way (custom optimizers too)
        # load_state_dict installs the copies; put the original tensor objects back, refilled
        # with the saved values, as a captured graph or compiled step may hold them
        with torch.no_grad():
            for p, old in self.state_objects.items():
                _refill(old, optimizer.state.get(p))
            for old, g in zip(self.group_objects, optimizer.param_groups):
                _refill(old, g)
        for m, training in self.modes:
            m.training = training
        for p, grad in self.grads:
            p.grad = grad


def _refill(old: dict[str, Any], current: dict[str, Any] | None) -> None:
    if current is None:
        return
    for key, obj in old.items():
        value = current.get(key)
        if (
            isinstance(obj, torch.Tensor) and isinstance(value, torch.Tensor)
            and obj is not value and obj.shape == value.shape and obj.dtype == value.dtype
            and obj.device == value.device
        ):
            obj.copy_(value)
            current[key] = obj


def _cuda_devices(model: nn.Module) -> list[int]:
    found = {p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"}
    return sorted(found)


def smith_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    batches: Iterable[Any],
    *,
    start_lr: float = SMITH_START_LR,
    end_lr: float = SMITH_END_LR,
    iters: int = SMITH_ITERS,
    beta: float = DEFAULT_BETA,
    diverge_factor: float | None = DIVERGE_FACTOR,
    ratio: float = BOUND_RATIO,
    device: str | torch.device | None = None,
    task: Task | None = None,
) -> SmithRangeResult:
    """Smith's LR range test on your model, optimizer, loss and data; both left as they were.

    Step ``i`` (0 .. ``iters`` - 1) sets every parameter group's LR to
    ``lr_i = start_lr * (end_lr / start_lr) ** (i / (iters - 1))``, takes the next batch
    ``(inputs, targets)`` from ``batches`` (moved to ``device`` if given), computes
    ``loss = loss_fn(model(inputs), targets)``, then ``zero_grad``, ``backward``, ``step``.
    ``batches`` is iterated again when it runs out if it can be (a list, a DataLoader); a
    one-shot iterator that runs out ends the sweep ('data'). The sweep stops at a non-finite
    loss or when the smoothed loss (``beta``) exceeds ``diverge_factor`` times its minimum so
    far (None: only non-finite losses stop it; the factor test assumes positive losses).
    ``ratio``: ``k0 = k1 / ratio``. Returns a
    :class:`~lrbench.tuning.rangetest.SmithRangeResult`. ValueError for a bad argument (naming
    it) before anything is changed. See the module doc for what is restored.
    """
    lrs = exponential_lrs(start_lr, end_lr, iters)
    b = _check_beta(beta)
    factor = _check_factor(diverge_factor)
    r = _ratio(ratio)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not groups or not hasattr(optimizer, "state_dict"):
        raise ValueError("optimizer must be a torch.optim.Optimizer with param_groups")
    if not callable(loss_fn):
        raise ValueError("loss_fn must be a callable (outputs, targets) -> loss tensor")
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Iterable):
        raise ValueError("batches must be an iterable of (inputs, targets) pairs")
    try:
        dev = torch.device(device) if device is not None else None
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}") from None

    t0 = time.perf_counter()
    saved = _Saved(model, optimizer)
    tried: list[float] = []
    losses: list[float] = []
    stop: SmithStop = "end"
    try:
        with torch.random.fork_rng(devices=_cuda_devices(model)):
            model.train()
            smooth = _Smoother(b)
            best = math.inf
            it = iter(batches)
            one_shot = it is batches  # an iterator, not a re-iterable (list, DataLoader)
            for i in range(len(lrs)):
                try:
                    batch = next(it)
                except StopIteration:
                    if one_shot or i == 0:
                        stop = "data"
                        break
                    it = iter(batches)
                    try:
                        batch = next(it)
                    except StopIteration:
                        stop = "data"
                        break
                lr = float(lrs[i])
                _set_lr(groups, lr)
                x, y = _unpack(batch)
                loss = loss_fn(model(_to(x, dev)), _to(y, dev))
                value = float(loss.detach())
                tried.append(lr)
                losses.append(value)
                s = smooth(value)
                if not (math.isfinite(value) and math.isfinite(s)):
                    stop = "diverged"
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if factor is not None and i > 0 and best > 0 and s > factor * best:
                    stop = "diverged"
                    break
                best = min(best, s)
    finally:
        saved.restore(model, optimizer)
    return SmithRangeResult.from_sweep(
        tried, losses, start_lr=float(lrs[0]), end_lr=float(end_lr), iters=len(lrs), beta=b,
        diverge_factor=factor, ratio=r, stop_reason=stop, wall_time=time.perf_counter() - t0,
        task=task,
    )


def smith_range_test_task(
    task: Task | str,
    *,
    seed: int = 0,
    start_lr: float = SMITH_START_LR,
    end_lr: float = SMITH_END_LR,
    iters: int = SMITH_ITERS,
    beta: float = DEFAULT_BETA,
    diverge_factor: float | None = DIVERGE_FACTOR,
    ratio: float = BOUND_RATIO,
    threads: int | None = None,
    data_root: str | None = None,
    device: str | torch.device | None = None,
) -> SmithRangeResult:
    """Smith's range test on an LRBench task: the model, optimizer and training batches that
    :func:`lrbench.trainer.train` would use with ``seed`` (``lrbench.trainer.prepare``), the
    loss cross-entropy. Other arguments as :func:`smith_range_test`; ``threads``: torch's
    intra-op threads for the sweep (restored afterwards).

    >>> r = smith_range_test_task("digits-mlp", iters=100)   # doctest: +SKIP
    >>> r.bounds                                              # doctest: +SKIP
    (0.0316..., 0.316...)
    """
    from lrbench.trainer import _check_threads, prepare

    t = as_task(task)
    exponential_lrs(start_lr, end_lr, iters)  # bad bounds fail before the data is loaded
    threads = _check_threads(threads)
    setup = prepare(t, seed, data_root=data_root, device=device, lr=float(start_lr))
    prev = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return smith_range_test(
                setup.model, setup.optimizer, F.cross_entropy, setup.batches,
                start_lr=start_lr, end_lr=end_lr, iters=iters, beta=beta,
                diverge_factor=diverge_factor, ratio=ratio, task=t,
            )
    finally:
        if threads is not None:
            torch.set_num_threads(prev)
