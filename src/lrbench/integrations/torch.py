"""LRBench policies in PyTorch: ``PolicyLR``, a ``torch.optim.lr_scheduler.LRScheduler``.

``PolicyLR(optimizer, policy)`` drives the learning rate of every parameter group by an LRBench
policy (a ``Policy`` or its notation), or one policy per group. Step it once per iteration, after
``optimizer.step()``. It is a closed form, not a chain of multiplications: the optimizer step of
iteration ``t`` (counted from 0) uses exactly ``policy(t)``, with no drift however long the run,
and a resumed run continues bit for bit like an uninterrupted one.

>>> import torch
>>> from lrbench.integrations.torch import PolicyLR
>>> model = torch.nn.Linear(4, 1)
>>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> scheduler = PolicyLR(optimizer, "LIN(k0=0.0, k1=0.1, l=100)[100] >> COS(k0=0.1, k1=0.0, l=900)")
>>> x, y = torch.randn(8, 4), torch.randn(8, 1)
>>> for t in range(200):
...     optimizer.zero_grad()
...     torch.nn.functional.mse_loss(model(x), y).backward()
...     optimizer.step()          # iteration t uses policy(t)
...     scheduler.step()          # now the groups' lr is policy(t + 1)
>>> scheduler.last_epoch, round(scheduler.get_last_lr()[0], 6)
(200, 0.096985)

Resuming: save ``optimizer.state_dict()`` and ``scheduler.state_dict()`` (plain Python types only:
the policies in notation, the iteration, so ``torch.load(..., weights_only=True)`` reads it), then
build the optimizer and a ``PolicyLR`` (with any policy) in either order, load both, and continue:
``load_state_dict`` restores the policies and the iteration and sets every group's lr to
``policy(last_epoch)`` at once.

>>> state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
>>> optimizer2 = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
>>> optimizer2.load_state_dict(state["optimizer"])
>>> scheduler2 = PolicyLR(optimizer2, "FIX(k0=0.5)")   # policy and iteration come from the state
>>> scheduler2.load_state_dict(state["scheduler"])
>>> optimizer2.param_groups[0]["lr"] == scheduler.get_last_lr()[0]
True
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    from torch import Tensor
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "lrbench.integrations.torch needs PyTorch: pip install lrbench[torch]"
    ) from exc

from lrbench.policies import Policy, from_dict, parse
from lrbench.policies.ops import SCALAR

__all__ = ["PolicyLR"]

PolicyLike = Policy | str | Mapping[str, Any]

_STATE_FORMAT = 1
_EPOCH_DEPRECATION = (
    "The epoch parameter in `scheduler.step()` is deprecated (as in torch): call `step()` without"
    " arguments once per iteration. With an epoch, PolicyLR jumps to policy(epoch)."
)


def _as_policy(value: Any, where: str) -> Policy:
    if isinstance(value, Policy):
        return value
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, Mapping):
        return from_dict(dict(value))
    raise TypeError(
        f"{where}: expected an LRBench Policy, its notation (str) or its to_dict(), got {value!r}"
    )


def _as_policies(policy: Any, n_groups: int) -> tuple[Policy, ...]:
    """One policy per parameter group: a single policy is shared by all groups."""
    if isinstance(policy, (list, tuple)):
        if len(policy) != n_groups:
            raise ValueError(
                f"PolicyLR: got {len(policy)} policies for {n_groups} parameter groups;"
                " give one policy per parameter group, or a single policy for all of them"
            )
        return tuple(_as_policy(p, f"policy[{i}]") for i, p in enumerate(policy))
    return (_as_policy(policy, "policy"),) * n_groups


def _scalar_fn(policy: Policy) -> Callable[[int], float]:
    """A fast ``t -> policy(t)`` for whole t >= 0 that the scheduler has already checked.

    For a plain LR function it skips ``Policy.__call__``'s argument check and computes the very
    same ``float(policy.evaluate(float(t), SCALAR))``; any policy that defines its own
    ``__call__`` (a composite picks its phase with a bisection) is called as it is.
    """
    if type(policy).__call__ is Policy.__call__:
        evaluate = policy.evaluate
        return lambda t: float(evaluate(float(t), SCALAR))
    return policy.__call__


def _check_epoch(value: Any, name: str, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
        raise ValueError(f"PolicyLR: {name} must be a whole number >= {lowest}, got {value!r}")
    return int(value)


class PolicyLR(LRScheduler):
    """Sets each parameter group's learning rate to ``policy(t)`` at iteration ``t``.

    Args:
        optimizer: the wrapped optimizer.
        policy: an LRBench ``Policy``, its notation (``"SIN2(k0=0.01, k1=0.06, l=2000)"``) or its
            ``to_dict()``, used for every parameter group; or a list with one per group (a list
            of another length is a ValueError). The groups' own lr values are not used: the
            policy gives the LR.
        last_epoch: as in torch, the index of the last iteration already done. The default -1
            starts the schedule: right after construction every group's lr is ``policy(0)`` and
            ``last_epoch == 0``. Building with ``last_epoch=k`` makes the first action a step, as
            every torch scheduler does: the lr becomes ``policy(k + 1)`` and ``last_epoch ==
            k + 1``. To resume, prefer ``load_state_dict``.

    Step it once per iteration after ``optimizer.step()``. After ``n`` calls of ``step()``,
    ``last_epoch == n`` and the groups' lr is ``policy(n)``, the LR of the next optimizer step.
    A group whose lr is a ``torch.Tensor`` is filled in place (its identity and dtype are kept);
    ``get_last_lr()`` then holds a copy of it, as in torch. ``get_lr()`` gives the closed form
    ``policy(last_epoch)`` as floats and, unlike torch's recursive schedulers, is safe to call
    at any time.

    ``state_dict()`` holds only plain Python types: the policies in notation (``"policies"``),
    ``last_epoch`` and ``_step_count``. ``load_state_dict()`` replaces this scheduler's policies
    by the saved ones, restores the iteration, and immediately sets every group's lr to
    ``policy(last_epoch)``, so it does not matter whether the scheduler was built before or after
    ``optimizer.load_state_dict``, nor with which policy. If a scheduler is built on an optimizer
    whose lr looks restored from a checkpoint (it has torch's ``initial_lr`` and its lr is not
    ``policy(0)``) and then stepped without ``load_state_dict``, the first ``step()`` warns that
    the schedule restarted from ``t = 0`` instead of silently doing so; it also warns if a
    group's lr was changed behind the scheduler's back before that first step (an optimizer
    state loaded after the scheduler was built, without ``load_state_dict``).
    """

    policies: tuple[Policy, ...]

    def __init__(
        self,
        optimizer: Optimizer,
        policy: PolicyLike | Sequence[PolicyLike],
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        last_epoch = _check_epoch(last_epoch, "last_epoch", -1)
        self._set_policies(_as_policies(policy, len(optimizer.param_groups)))
        self._restart_warning: str | None = None
        if last_epoch == -1:
            self._restart_warning = self._looks_restored(optimizer)
        # torch's base class needs "initial_lr" to resume from last_epoch >= 0; a policy does not
        # need it, so give it the group's current lr as torch itself does for a fresh start.
        for group in optimizer.param_groups:
            lr = group["lr"]
            group.setdefault("initial_lr", lr.clone() if isinstance(lr, Tensor) else lr)
        super().__init__(optimizer, last_epoch)  # runs the initial step: lr = policy(last_epoch + 1)
        self.base_lrs = [p(0) for p in self.policies]

    # -- the policies ---------------------------------------------------------------------
    def _set_policies(self, policies: tuple[Policy, ...]) -> None:
        self.policies = policies
        self._fns = [_scalar_fn(p) for p in policies]

    def _looks_restored(self, optimizer: Optimizer) -> str | None:
        for i, (group, p) in enumerate(zip(optimizer.param_groups, self.policies)):
            if "initial_lr" in group and not math.isclose(float(group["lr"]), p(0), rel_tol=1e-6):
                return (
                    f"PolicyLR was built on an optimizer whose param_groups[{i}] lr"
                    f" ({float(group['lr'])!r}) looks restored from a checkpoint, and was then"
                    f" stepped without load_state_dict: the schedule restarted from t = 0 (lr"
                    f" {p(0)!r}). To resume, call scheduler.load_state_dict(saved_state) before"
                    " stepping."
                )
        return None

    # -- torch's scheduler API ------------------------------------------------------------
    def get_lr(self) -> list[float]:
        """The closed form: ``policy(last_epoch)`` for each parameter group."""
        t = self.last_epoch
        return [fn(t) for fn in self._fns]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def step(self, epoch: int | None = None) -> None:
        """Advance one iteration and set every group's lr to ``policy(last_epoch)``.

        Call it after ``optimizer.step()``. ``epoch`` is deprecated, as in torch; given, the
        scheduler jumps to iteration ``epoch``.
        """
        if self._step_count == 1:
            self._check_first_step()
        self._step_count += 1
        if epoch is None:
            t = self.last_epoch + 1
        else:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
            t = _check_epoch(epoch, "epoch", 0)
        self.last_epoch = t
        self._apply(t)

    def _apply(self, t: int) -> None:
        groups = self.optimizer.param_groups
        fns = self._fns
        if len(groups) != len(fns):
            raise ValueError(
                f"PolicyLR has {len(fns)} policies but the optimizer now has {len(groups)}"
                " parameter groups; build a new PolicyLR after add_param_group"
            )
        last: list[float | Tensor] = []
        for group, fn in zip(groups, fns):
            lr = fn(t)
            current = group["lr"]
            if isinstance(current, Tensor):
                current.fill_(lr)
                last.append(current.clone())
            else:
                group["lr"] = lr
                last.append(lr)
        self._last_lr = last

    def _check_first_step(self) -> None:
        """torch's warnings about the order of optimizer.step() and scheduler.step()."""
        if self._restart_warning is not None:
            warnings.warn(self._restart_warning, UserWarning, stacklevel=3)
            self._restart_warning = None
        else:
            self._check_lr_unchanged()
        if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
            warnings.warn(
                "Seems like `optimizer.step()` has been overridden after learning rate scheduler"
                " initialization. Please, make sure to call `optimizer.step()` before"
                " `lr_scheduler.step()`.",
                UserWarning,
                stacklevel=3,
            )
        elif not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`: call"
                " `optimizer.step()` first, or the first value of the LR policy is skipped.",
                UserWarning,
                stacklevel=3,
            )

    def _check_lr_unchanged(self) -> None:
        """Warn if a group's lr changed since this scheduler set it (a restored optimizer state
        without ``load_state_dict``): the schedule goes on from this scheduler's own iteration."""
        for i, (group, last) in enumerate(zip(self.optimizer.param_groups, self._last_lr)):
            if float(group["lr"]) != float(last):
                t = self.last_epoch + 1
                warnings.warn(
                    f"param_groups[{i}] lr was changed to {float(group['lr'])!r} after PolicyLR set"
                    f" it to {float(last)!r} (by optimizer.load_state_dict?); PolicyLR overrides"
                    f" it and goes on from t = {t} (lr {self._fns[i](t)!r}). To resume a"
                    " checkpoint, also call scheduler.load_state_dict(saved_state).",
                    UserWarning,
                    stacklevel=4,
                )
                return

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state in plain Python types (safe for ``weights_only=True``)."""
        return {
            "format": _STATE_FORMAT,
            "policies": [str(p) for p in self.policies],
            "last_epoch": int(self.last_epoch),
            "_step_count": int(self._step_count),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the policies and the iteration, and set every group's lr to ``policy(t)``.

        The saved policies replace the ones this scheduler was built with.
        """
        if not isinstance(state_dict, Mapping) or "policies" not in state_dict:
            raise ValueError(
                "PolicyLR.load_state_dict: expected a dict from PolicyLR.state_dict() with"
                f" 'policies' and 'last_epoch', got {state_dict!r}"
            )
        policies = _as_policies(list(state_dict["policies"]), len(self.optimizer.param_groups))
        last_epoch = _check_epoch(state_dict.get("last_epoch"), "last_epoch", 0)
        step_count = _check_epoch(
            state_dict.get("_step_count", last_epoch + 1), "_step_count", 0
        )
        self._set_policies(policies)
        self.last_epoch = last_epoch
        self._step_count = step_count
        self.base_lrs = [p(0) for p in policies]
        self._restart_warning = None
        self._apply(last_epoch)

    def __getstate__(self) -> dict[str, Any]:  # the fast evaluators are rebuilt, not pickled
        state = self.__dict__.copy()
        state.pop("_fns", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._set_policies(tuple(self.policies))

    def __repr__(self) -> str:
        policies = ", ".join(map(str, dict.fromkeys(self.policies)))
        return f"PolicyLR({policies}, last_epoch={self.last_epoch})"
