"""The LR schedule monitor (SPEC section 4, component 1): drop it into any training loop.

>>> import torch
>>> from lrbench.monitor import ScheduleMonitor
>>> w = torch.nn.Parameter(torch.ones(3))
>>> opt = torch.optim.SGD([w], lr=123.0)
>>> monitor = ScheduleMonitor(opt, "STEP(k0=0.1, gamma=0.5, l=2)", max_iters=6, eval_every=3)
>>> opt.param_groups[0]["lr"]                  # policy(0), set on creation
0.1
>>> while not monitor.should_stop:
...     loss = (w ** 2).sum()
...     opt.zero_grad(); loss.backward(); opt.step()
...     _ = monitor.step(loss)                 # counts, applies policy(t), evaluates every R
>>> [(p.iteration, p.lr) for p in monitor.curve], monitor.stop_reason
([(3, 0.05), (6, 0.025)], 'max_iters')

How it counts: t is the iteration, from 0; the first ``optimizer.step()`` uses ``policy(0)``.
``monitor.step(loss)`` is called once after each ``optimizer.step()`` with that step's training
loss; it then sets every parameter group's LR to ``policy(t)`` for the next step (a group whose
``lr`` is a tensor is filled in place, so a captured graph or compiled step sees it). After
``k`` calls, ``monitor.iteration == k``; every ``eval_every`` (R) iterations, and at
``max_iters``, it runs the evaluator and appends a :class:`~lrbench.results.CurvePoint` whose
``iteration`` is k, ``lr`` the LR of step k (``policy(k - 1)``) and ``train_loss`` the mean
training loss of the steps since the previous point.

The LRs are computed ``LR_BLOCK`` iterations ahead with the same ``policy(t)`` calls (not the
vectorized ``policy.values``, which may differ in the last bit): the LR applied is exactly
``policy(t)``.

Stopping: ``monitor.should_stop`` becomes True, with ``monitor.stop_reason``:

- ``'max_iters'``: ``max_iters`` steps were taken (the last point is at ``max_iters``);
- ``'target'``: an evaluation reached ``target_accuracy`` (top-1 >= target);
- ``'diverged'``: a training loss was NaN, +-inf or above ``divergence_loss``, or the model's
  test outputs were not finite. ``monitor.diverged_at`` is the iteration (the k of the bad
  step); no point is recorded at or after it and nothing raises. The result's status is
  ``'diverged'``.

Calling ``step`` after the monitor stopped raises RuntimeError (the loop should have ended).

Loss syncing: reading a loss tensor's value on an accelerator waits for the device to finish
the step (a sync per iteration, which stalls the host's queueing of the next step). Losses that
are Python numbers or CPU tensors are read at once (on the CPU the value is already there:
``float(loss)`` costs ~0.3 us, less than adding it to an on-device accumulator, ~2 us). Losses on
another device are kept (detached, no copy) and read together, one transfer every
``check_every`` steps (default ``min(R, 100)``) and always before an evaluation: the curve and
the divergence iteration are exactly the same as with a read per step, but a divergence is
noticed up to ``check_every - 1`` steps late (those extra steps are wasted, not recorded).
``defer=True`` defers tensor losses on any device (CPU too), ``defer=False`` reads every loss at
once; the default (None) is the automatic choice above.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lrbench.policies import Policy, parse
from lrbench.results import CurvePoint, RunResult

if TYPE_CHECKING:
    from lrbench.metrics import EvalMetrics
    from lrbench.tasks import Task

__all__ = ["Evaluator", "NonFiniteOutputs", "ScheduleMonitor", "as_policy"]

_NAN = math.nan
_MAX = sys.float_info.max
_NEG_INF = -math.inf

#: how many LRs the monitor computes ahead, at once
LR_BLOCK = 256
_FLOAT, _ITEM, _DEFER = 0, 1, 2


class NonFiniteOutputs(ArithmeticError):
    """The model's outputs on the evaluation set hold NaN or inf: the model has diverged."""


def as_policy(policy: Policy | str) -> Policy:
    """A Policy from a Policy or its notation; ValueError for anything else."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        return parse(policy)
    raise ValueError(f"policy must be a Policy or policy notation, got {type(policy).__name__}")


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _metrics(m: Any) -> tuple[float, float, float, float, float, float]:
    """(top1, top5, ac, cd, cdac, loss) from an EvalMetrics-like object or a mapping; missing
    values are NaN (a user's evaluator may give top-1 only)."""
    if m is None:
        return (_NAN,) * 6  # type: ignore[return-value]
    if isinstance(m, Mapping):
        def get(k: str) -> Any:
            return m.get(k, m.get("test_loss", _NAN) if k == "loss" else _NAN)
    elif isinstance(m, (int, float)) and not isinstance(m, bool):
        return (float(m),) + (_NAN,) * 5  # type: ignore[return-value]
    else:
        def get(k: str) -> Any:
            return getattr(m, k, getattr(m, "test_loss", _NAN) if k == "loss" else _NAN)
    out = []
    for k in ("top1", "top5", "ac", "cd", "cdac", "loss"):
        v = get(k)
        out.append(_NAN if v is None else float(v))
    return tuple(out)  # type: ignore[return-value]


class ScheduleMonitor:
    """Applies an LR policy to an optimizer, step by step, and records the learning curve.

    ``optimizer``: anything with ``param_groups`` (a list of dicts with an ``'lr'``), e.g. any
    ``torch.optim.Optimizer``. ``policy``: a Policy or its notation. ``max_iters``: the training
    budget L. ``eval_every``: R. ``evaluate``: a callable taking no argument and returning the
    test metrics, as an ``EvalMetrics`` (see :class:`Evaluator`), a mapping with keys among
    ``top1, top5, ac, cd, cdac, loss``, or a number (top-1); None records the LR and training
    loss only. ``target_accuracy``: stop when top-1 reaches it (needs ``evaluate``).
    ``divergence_loss``: a training loss above it counts as divergence (NaN and inf always do).
    ``check_every``, ``defer``: see "Loss syncing" in the module docstring.
    ``callback(monitor)``: called after each evaluation and every ``callback_every`` steps
    (e.g. to draw a progress bar).
    """

    def __init__(
        self,
        optimizer: Any,
        policy: Policy | str,
        *,
        max_iters: int,
        eval_every: int,
        evaluate: Callable[[], Any] | None = None,
        target_accuracy: float | None = None,
        divergence_loss: float | None = None,
        check_every: int | None = None,
        defer: bool | None = None,
        callback: Callable[[ScheduleMonitor], Any] | None = None,
        callback_every: int | None = None,
    ) -> None:
        self.policy = as_policy(policy)
        self.max_iters = _whole(max_iters, "max_iters", 1)
        self.eval_every = _whole(eval_every, "eval_every", 1)
        if evaluate is not None and not callable(evaluate):
            raise ValueError("evaluate must be a callable returning the test metrics")
        self.evaluate = evaluate
        if target_accuracy is not None:
            t = float(target_accuracy)
            if not 0.0 < t <= 1.0:
                raise ValueError(f"target_accuracy must be in (0, 1], got {target_accuracy!r}")
            if evaluate is None:
                raise ValueError("target_accuracy needs an evaluator (evaluate=...)")
            target_accuracy = t
        self.target_accuracy = target_accuracy
        if divergence_loss is not None:
            d = float(divergence_loss)
            if not (d > 0 and math.isfinite(d)):
                raise ValueError(f"divergence_loss must be finite and > 0, got {divergence_loss!r}")
            divergence_loss = d
        self.divergence_loss = divergence_loss
        self._bound = _MAX if divergence_loss is None else divergence_loss
        self.check_every = (
            min(self.eval_every, 100) if check_every is None
            else _whole(check_every, "check_every", 1)
        )
        if defer is not None and not isinstance(defer, bool):
            raise ValueError(f"defer must be True, False or None, got {defer!r}")
        self.defer = defer
        self.callback = callback
        self.callback_every = (
            _whole(callback_every, "callback_every", 1) if callback_every is not None
            else max(1, self.max_iters // 200)
        )
        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, list) or not groups:
            raise ValueError("optimizer must have param_groups (e.g. a torch.optim.Optimizer)")
        self.optimizer = optimizer
        self._groups = groups

        self.iteration = 0
        self.curve: list[CurvePoint] = []
        self.stop_reason: str | None = None
        self.diverged_at: int | None = None
        self.divergence: str | None = None
        self.eval_time = 0.0
        self.eval_cpu_time = 0.0
        self.n_evals = 0
        self._loss_sum = 0.0
        self._loss_n = 0
        self._pending: list[Any] = []
        self._pending_from = 1
        self._stopped = False
        self.last_lr = _NAN
        self._lr_table: list[float] = []
        self._lr_base = 0
        self._loss_mode: int | None = None
        self._plain_lr = not any(hasattr(g["lr"], "fill_") for g in groups)
        self.lr = self._lr_at(0)
        self._apply(self.lr)
        self._next_event = 0
        self._schedule(0)
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        self.stopped_at: float | None = None
        self.cpu_stopped_at: float | None = None

    # -- the per-step path ---------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        return self._stopped

    @property
    def last_point(self) -> CurvePoint | None:
        return self.curve[-1] if self.curve else None

    def _lr_at(self, t: int) -> float:
        """policy(t), from a table filled LR_BLOCK iterations at a time: the same numbers as
        calling the policy each step, computed in a tight loop (~2 us each with warm caches,
        against ~10 us when interleaved with torch's work)."""
        end = min(t + LR_BLOCK, self.max_iters + 1)
        policy = self.policy
        self._lr_table = [policy(i) for i in range(t, max(end, t + 1))]
        self._lr_base = t
        return self._lr_table[0]

    def _apply(self, lr: float) -> None:
        for g in self._groups:
            cur = g["lr"]
            if type(cur) is float or not hasattr(cur, "fill_"):
                g["lr"] = lr
            else:  # a tensor LR (capturable / compiled optimizers): keep the tensor
                cur.fill_(lr)

    def step(self, loss: Any = None) -> bool:
        """Count one optimizer step whose training loss was ``loss`` (a number or a 0-dim
        tensor; None if unknown); apply the LR of the next step; evaluate every R steps.
        Returns ``should_stop``."""
        # The hot path: a few attribute reads, one table lookup, one dict store per group.
        # Everything periodic (evaluation, reading deferred losses, the callback) waits for
        # ``_next_event``.
        if self._stopped:
            raise RuntimeError(
                f"the monitor has stopped ({self.stop_reason} at iteration {self.iteration});"
                " end the training loop when monitor.should_stop is True"
            )
        k = self.iteration = self.iteration + 1
        self.last_lr = self.lr
        if loss is not None:
            if type(loss) is float:
                v = loss
            else:
                mode = self._loss_mode
                if mode is None:
                    mode = self._loss_mode = self._mode_of(loss)
                if mode == _DEFER:
                    pending = self._pending
                    if not pending:
                        self._pending_from = k
                        due = k + self.check_every - 1
                        if due < self._next_event:
                            self._next_event = due
                    pending.append(loss.detach())
                    v = None
                elif mode == _ITEM:
                    v = loss.item()
                else:
                    v = float(loss)
            if v is not None:
                if _NEG_INF < v <= self._bound:
                    self._loss_sum += v
                    self._loss_n += 1
                else:
                    self._diverge(k, v)
                    if self.callback is not None:
                        self.callback(self)
                    return True
        if k >= self._next_event:
            return self._event(k)
        i = k - self._lr_base
        table = self._lr_table
        lr = self.lr = table[i] if i < len(table) else self._lr_at(k)
        if self._plain_lr:
            for g in self._groups:
                g["lr"] = lr
        else:
            self._apply(lr)
        return False

    def _mode_of(self, loss: Any) -> int:
        """How to read losses like this one (decided on the first tensor loss of the run)."""
        if self.defer is not False and hasattr(loss, "detach") and (
            self.defer or getattr(getattr(loss, "device", None), "type", "cpu") != "cpu"
        ):
            return _DEFER
        return _ITEM if hasattr(loss, "item") else _FLOAT

    def _event(self, k: int) -> bool:
        """The periodic part of ``step``: evaluate, read deferred losses, call back."""
        evaluated = False
        if k >= self.max_iters or k % self.eval_every == 0:
            self._point(k)
            evaluated = True
        elif len(self._pending) >= self.check_every:
            self._flush()
        if not self._stopped:
            self._plain_lr = not any(hasattr(g["lr"], "fill_") for g in self._groups)
            self.lr = lr = self._lr_at(k) if k - self._lr_base >= len(self._lr_table) \
                else self._lr_table[k - self._lr_base]
            self._apply(lr)
            self._schedule(k)
        if self.callback is not None and (
            evaluated or self._stopped or k % self.callback_every == 0
        ):
            self.callback(self)
        return self._stopped

    def _schedule(self, k: int) -> None:
        """Set ``_next_event``: the next iteration that needs more than the hot path."""
        r = self.eval_every
        nxt = min((k // r + 1) * r, self.max_iters)
        if self.callback is not None:
            c = self.callback_every
            nxt = min(nxt, (k // c + 1) * c)
        if self._pending:
            nxt = min(nxt, self._pending_from + self.check_every - 1)
        self._next_event = nxt

    # -- losses, divergence, evaluation --------------------------------------------------------
    def _flush(self) -> bool:
        """Read the pending device losses (one transfer); True if one of them diverged."""
        if not self._pending:
            return False
        import torch

        items, self._pending = self._pending, []
        values = torch.stack([t.reshape(()) for t in items]).double().tolist()
        for i, v in enumerate(values):
            if _NEG_INF < v <= self._bound:
                self._loss_sum += v
                self._loss_n += 1
            else:
                self._diverge(self._pending_from + i, v)
                return True
        return False

    def _diverge(self, k: int, value: float, what: str = "training loss") -> None:
        self._pending = []
        self.diverged_at = k
        if math.isnan(value) or math.isinf(value) or self.divergence_loss is None:
            why = f"{what} {value} at iteration {k}"
        else:
            why = f"{what} {value:.6g} above {self.divergence_loss:g} at iteration {k}"
        self.divergence = why
        self._stop("diverged")

    def stop(self) -> None:
        """Stop training where it is, keeping the curve so far (stop reason 'interrupted').
        Called from the monitor's callback (e.g. when a pruner says so), the ``step`` that ran
        the callback returns True and the loop ends. A no-op once the monitor has stopped."""
        if not self._stopped:
            self._stop("interrupted")

    def _stop(self, reason: str) -> None:
        self._stopped = True
        self.stop_reason = reason
        self.stopped_at = time.perf_counter()
        self.cpu_stopped_at = time.process_time()

    def _point(self, k: int) -> None:
        if self._flush():
            return
        train_loss = self._loss_sum / self._loss_n if self._loss_n else _NAN
        self._loss_sum, self._loss_n = 0.0, 0
        if self.evaluate is not None:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                m = self.evaluate()
            except NonFiniteOutputs:
                self.eval_time += time.perf_counter() - t0
                self.eval_cpu_time += time.process_time() - c0
                self._diverge(k, _NAN, "test outputs non-finite;")
                return
            self.eval_time += time.perf_counter() - t0
            self.eval_cpu_time += time.process_time() - c0
            self.n_evals += 1
            top1, top5, ac, cd, cdac, test_loss = _metrics(m)
        else:
            top1 = top5 = ac = cd = cdac = test_loss = _NAN
        point = CurvePoint(
            iteration=k, lr=float(self.last_lr), train_loss=train_loss, test_loss=test_loss,
            top1=top1, top5=top5, ac=ac, cd=cd, cdac=cdac,
        )
        self.curve.append(point)
        if self.target_accuracy is not None and top1 >= self.target_accuracy:
            self._stop("target")
        elif k >= self.max_iters:
            self._stop("max_iters")

    # -- the end ------------------------------------------------------------------------------
    def finish(self) -> None:
        """End the run where it is (idempotent): read pending losses and, if the loop ended
        early without a stop reason, take a last evaluation at the current iteration
        (stop reason 'interrupted')."""
        if self._stopped:
            return
        if self._flush():
            return
        last = self.curve[-1].iteration if self.curve else 0
        if self.iteration > last:
            self._point(self.iteration)
        if not self._stopped:
            self._stop("interrupted")

    @property
    def train_time(self) -> float:
        """Seconds from creation to the stop (or now), less the time spent evaluating."""
        end = self.stopped_at if self.stopped_at is not None else time.perf_counter()
        return max(0.0, end - self.started - self.eval_time)

    @property
    def train_cpu_time(self) -> float:
        """Like ``train_time`` but in CPU seconds of this process (``time.process_time``): on a
        busy machine it counts the work done, not the time spent waiting for a core."""
        end = self.cpu_stopped_at if self.cpu_stopped_at is not None else time.process_time()
        return max(0.0, end - self.cpu_started - self.eval_cpu_time)

    def result(
        self,
        task: Task,
        seed: int = 0,
        *,
        wall_time: float | None = None,
        train_time: float | None = None,
        host: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """The run as a RunResult (finishing it first, see ``finish``)."""
        self.finish()
        diverged = self.stop_reason == "diverged"
        info: dict[str, Any] = {
            "eval_time": self.eval_time, "n_evals": self.n_evals,
            "train_cpu_time": self.train_cpu_time,
        }
        if diverged:
            info["diverged_at"] = self.diverged_at
            info["divergence"] = self.divergence
        info.update(extra or {})
        if host is None:
            import socket

            host = socket.gethostname()
        t_train = self.train_time if train_time is None else train_time
        return RunResult(
            task=task,
            policy=str(self.policy),
            seed=int(seed),
            status="diverged" if diverged else "done",
            stop_reason=self.stop_reason,  # type: ignore[arg-type]
            iterations=self.diverged_at if diverged else self.iteration,  # type: ignore[arg-type]
            curve=tuple(self.curve),
            wall_time=float(wall_time if wall_time is not None else
                            time.perf_counter() - self.started),
            train_time=float(t_train),
            n_params=self.policy.n_params,
            host=host,
            extra=info,
        )

    def __repr__(self) -> str:
        return (
            f"ScheduleMonitor(policy={str(self.policy)!r}, iteration={self.iteration}/"
            f"{self.max_iters}, eval_every={self.eval_every}, lr={self.lr:g},"
            f" stop_reason={self.stop_reason!r})"
        )


class Evaluator:
    """Test metrics of a torch model: top-1, top-5, AC, CD, CDAC and the mean cross-entropy.

    ``x``, ``y``: the evaluation set (numpy arrays or tensors), moved once to the model's device
    (or ``device``). Calling it runs the model in eval mode under ``torch.no_grad`` over the set,
    ``batch_size`` samples at a time, restores the model's train/eval mode, and returns
    ``lrbench.metrics.evaluate_outputs`` of the stacked logits. Non-finite logits raise
    :class:`NonFiniteOutputs` (the monitor records a divergence).
    """

    def __init__(self, model: Any, x: Any, y: Any, batch_size: int = 1000, *,
                 device: Any = None) -> None:
        from lrbench.data.batches import iter_eval

        if device is None:
            try:
                device = next(model.parameters()).device
            except (StopIteration, AttributeError):
                device = "cpu"
        self.model = model
        self.batch_size = _whole(batch_size, "batch_size", 1)
        self._batches = list(iter_eval(x, y, self.batch_size, device=device))
        import torch

        self._labels = torch.cat([yb for _, yb in self._batches]).cpu()
        self.n_samples = int(self._labels.shape[0])

    def outputs(self) -> Any:
        """The model's logits on the whole set, (N, classes), on the CPU."""
        import torch

        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = torch.cat([model(xb) for xb, _ in self._batches])
        finally:
            model.train(was_training)
        return out.cpu()

    def __call__(self) -> EvalMetrics:
        import torch

        from lrbench.metrics import evaluate_outputs

        out = self.outputs()
        if not bool(torch.isfinite(out).all()):
            raise NonFiniteOutputs("the model's test outputs hold NaN or inf")
        return evaluate_outputs(out, self._labels, from_logits=True)
