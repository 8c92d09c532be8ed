r"""The Optuna bridge: LRBench's policy space as an Optuna search space (``pip install
'lrbench[optuna]'``).

Run Optuna's samplers (TPE, random, ...) and pruners (Hyperband, median, ...) over the 13 LR
functions, each trial trained by :func:`lrbench.trainer.train` and recorded in an LRBench store:

>>> from lrbench.tuning.optuna_bridge import run_optuna, best_policy     # doctest: +SKIP
>>> study = run_optuna("digits-mlp", 30, sampler="tpe", pruner="hyperband",
...                    store="sqlite:///lr.db")                          # doctest: +SKIP
>>> best_policy(study), study.best_value                                 # doctest: +SKIP
('SIN2(k0=0.0123, k1=0.31, l=336)', 0.975)

Or with your own study: ``study.optimize(objective("digits-mlp", store=...), n_trials=30)``;
:func:`suggest_policy` alone turns any trial into a policy (for your own objective).

The search space (:func:`suggest_policy`), with ``[lo, hi]`` the LR bounds, ``L`` the training
length (``max_iters``) and ``E`` the iterations per epoch; every parameter is named after its
function (``"SIN2.k1"``), so each function's parameters form their own subspace and TPE models
the conditional space correctly:

=====================  ===================  ===================================================
function               parameter            distribution
=====================  ===================  ===================================================
(all)                  ``function``         categorical over the families (default all 13)
FIX, decaying          ``F.k0``             log-uniform in ``[lo, hi]``
cyclic                 ``F.k1``             log-uniform in ``[lo, hi]`` (the top of the cycle)
cyclic                 ``F.k0_frac``        uniform in ``[0, 0.9]``: ``k0 = lo * (k1/lo)^frac``,
                                            log-interpolated between lo and k1 (so k0 < k1)
cyclic                 ``F.l``              categorical: half periods ``m * E`` for m in 1, 2,
                                            4, 8, 16 with ``2 l <= L`` (``L // 2`` if none)
TRIEXP, SINEXP, EXP    ``F.half_life``      log-uniform in ``[L/20, 2 L]`` iterations (at least
                                            1); ``gamma = 0.5^(1/half_life)`` per iteration
STEP                   ``STEP.gamma``       uniform in ``[0.05, 0.9]``
STEP                   ``STEP.l``           categorical: ``m * E`` for m in 1, 2, 4, 8, 16 with
                                            ``m E < L`` (``L // 5`` if none)
NSTEP                  ``NSTEP.gamma``      uniform in ``[0.05, 0.9]``
NSTEP                  ``NSTEP.n``          int in ``[1, 3]``: the number of milestones
NSTEP                  ``NSTEP.f0`` ...     uniform in ``[0.1, 0.95]``: milestones
                                            ``round(f * L)``, sorted, repeats dropped
INV                    ``INV.gamma_L``      log-uniform in ``[0.1, 100]``: ``gamma = gamma_L / L``
INV                    ``INV.p``            uniform in ``[0.25, 1.5]``
POLY                   ``POLY.p``           log-uniform in ``[0.25, 4]``; ``l = L`` (0 at L)
=====================  ===================  ===================================================

Decaying functions have no floor (k1). LRs are rounded to 6 significant digits, gammas to 8,
so a policy's notation is short and ``parse(str(policy)) == policy``. Length parameters scale
with ``L`` and ``E``, so one space fits any task.

**Pruning and the store.** :func:`objective` reports each evaluation's top-1 of the first seed
to Optuna (``trial.report(top1, step=iteration)``); when ``prune`` and ``trial.should_prune()``,
it stops the training loop cleanly from the trainer's progress callback (the monitor stops with
reason ``'interrupted'``; nothing raises inside the trainer), records the run and raises
``optuna.TrialPruned``, so Optuna marks the trial PRUNED. A pruned run is recorded **as the
short run it is**: under the task with ``max_iters`` (and ``eval_every`` if larger) cut to the
iterations trained, stop reason ``'max_iters'``, exactly as ``lrbench tune`` records its
successive-halving rungs (a policy's LR at step t does not depend on the run's length, so the
first k iterations of a long run are a run of k iterations, bit for bit on the CPU). The
full-length task's rankings thus never see a truncated run; ``extra['optuna']`` of every
recorded run holds ``study``, ``trial``, ``pruned`` and, for pruned runs, ``full_max_iters``.
Later seeds of a pruned trial are not trained. A run that fails (an exception during training)
is recorded with status 'failed' and the trial returns NaN, which Optuna marks FAIL without
stopping the study; a diverged run scores its best top-1 before the divergence (0 if none).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from lrbench.policies import PAPER_FUNCTIONS, Policy, make
from lrbench.tuning.candidates import (
    CYCLIC_FUNCTIONS,
    DECAYING_FUNCTIONS,
    _nice,
    check_bounds,
    cyclic_lengths,
)
from lrbench.tuning.rangetest import _whole

if TYPE_CHECKING:  # pragma: no cover
    import optuna

__all__ = [
    "ALL_FAMILIES", "DEFAULT_LR_BOUNDS", "PRUNERS", "SAMPLERS", "best_policy", "objective",
    "resolve_families", "run_optuna", "suggest_policy",
]

#: the 13 LR functions of the paper, in the order of its Table I
ALL_FAMILIES: tuple[str, ...] = tuple(PAPER_FUNCTIONS)
#: the default LR bounds [lo, hi] of the search space
DEFAULT_LR_BOUNDS: tuple[float, float] = (1e-4, 1.0)
#: kind names accepted in ``families`` as shorthands for their functions
KINDS: dict[str, tuple[str, ...]] = {
    "fixed": ("FIX",), "decaying": DECAYING_FUNCTIONS, "cyclic": CYCLIC_FUNCTIONS,
}
#: step sizes and half periods, in epochs
EPOCH_MULTIPLES: tuple[int, ...] = (1, 2, 4, 8, 16)
SAMPLERS: tuple[str, ...] = ("tpe", "random")
PRUNERS: tuple[str, ...] = ("hyperband", "median", "none")

GAMMA_RANGE = (0.05, 0.9)
HALF_LIFE_RANGE = (0.05, 2.0)  # fractions of L
K0_FRAC_MAX = 0.9
INV_GAMMA_L = (0.1, 100.0)
INV_P = (0.25, 1.5)
POLY_P = (0.25, 4.0)
NSTEP_MAX = 3
NSTEP_FRACTIONS = (0.1, 0.95)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:  # pragma: no cover - exercised only without optuna
        raise ImportError(
            "the Optuna bridge needs optuna: pip install 'lrbench[optuna]'"
        ) from None
    return optuna


def resolve_families(families: Any) -> tuple[str, ...]:
    """Function names (any case) or kinds ('fixed', 'decaying', 'cyclic') -> function names in
    Table I order, without repeats; ValueError naming ``families`` for anything else.

    >>> resolve_families(["cyclic", "fix"])
    ('FIX', 'TRI', 'TRI2', 'TRIEXP', 'SIN', 'SIN2', 'SINEXP', 'COS')
    """
    if isinstance(families, str):
        families = [families]
    if not isinstance(families, Iterable):
        raise ValueError(f"families must be LR function names or kinds, got {families!r}")
    chosen: set[str] = set()
    for f in families:
        key = str(f).strip()
        if key.lower() in KINDS:
            chosen.update(KINDS[key.lower()])
        elif key.upper() in PAPER_FUNCTIONS:
            chosen.add(key.upper())
        else:
            raise ValueError(
                f"families: unknown LR function or kind {f!r}; valid: {', '.join(ALL_FAMILIES)}"
                f" or {', '.join(KINDS)}")
    if not chosen:
        raise ValueError("families must name at least one LR function")
    return tuple(name for name in ALL_FAMILIES if name in chosen)


def _step_lengths(epoch: int, length: int) -> tuple[int, ...]:
    ls = sorted({m * epoch for m in EPOCH_MULTIPLES if m * epoch < length})
    return tuple(ls) if ls else (max(1, length // 5),)


def _gamma_from_half_life(trial: Any, name: str, length: int) -> float:
    lo = max(1.0, HALF_LIFE_RANGE[0] * length)
    hi = max(lo, HALF_LIFE_RANGE[1] * length)
    h = trial.suggest_float(f"{name}.half_life", lo, hi, log=True)
    return min(1.0, _nice(0.5 ** (1.0 / h), 8))


def suggest_policy(
    trial: Any,
    *,
    families: Any = ALL_FAMILIES,
    lr_bounds: tuple[float, float] = DEFAULT_LR_BOUNDS,
    max_iters: int,
    epoch_iters: int | None = None,
) -> Policy:
    """Suggest an LR policy from ``trial`` (an ``optuna.Trial``, ``FixedTrial``, ...) over the
    space of the module docstring: the function among ``families`` (names or kinds), LRs within
    ``lr_bounds``, lengths from ``max_iters`` (L) and ``epoch_iters`` (E; default ``L // 10``).
    ValueError naming the parameter for bad input."""
    names = resolve_families(families)
    lo, hi = check_bounds(lr_bounds)
    if not lo < hi:
        raise ValueError(f"lr_bounds must be (lo, hi) with lo < hi, got {lr_bounds!r}")
    length = _whole(max_iters, "max_iters", 2)
    epoch = _whole(epoch_iters, "epoch_iters", 1) if epoch_iters is not None \
        else max(1, length // 10)

    name = trial.suggest_categorical("function", list(names))
    if name == "FIX":
        return make(name, k0=_nice(trial.suggest_float("FIX.k0", lo, hi, log=True)))
    if name in CYCLIC_FUNCTIONS:
        k1 = trial.suggest_float(f"{name}.k1", lo, hi, log=True)
        frac = trial.suggest_float(f"{name}.k0_frac", 0.0, K0_FRAC_MAX)
        k0 = lo * (k1 / lo) ** frac
        k0, k1 = _nice(k0), _nice(k1)
        if not k0 < k1:  # only when k1 is within rounding of lo
            k0, k1 = _nice(lo), max(k1, _nice(lo * (hi / lo) ** 0.05))
            if not k0 < k1:
                k0, k1 = lo, hi
        ls = cyclic_lengths(epoch, length, EPOCH_MULTIPLES)
        params: dict[str, Any] = {"k0": k0, "k1": k1}
        if name in ("TRIEXP", "SINEXP"):
            params["gamma"] = _gamma_from_half_life(trial, name, length)
        params["l"] = int(trial.suggest_categorical(f"{name}.l", list(ls)))
        return make(name, **params)
    k0 = _nice(trial.suggest_float(f"{name}.k0", lo, hi, log=True))
    if name == "STEP":
        gamma = _nice(trial.suggest_float("STEP.gamma", *GAMMA_RANGE))
        ell = int(trial.suggest_categorical("STEP.l", list(_step_lengths(epoch, length))))
        return make(name, k0=k0, gamma=gamma, l=ell)
    if name == "NSTEP":
        gamma = _nice(trial.suggest_float("NSTEP.gamma", *GAMMA_RANGE))
        n = trial.suggest_int("NSTEP.n", 1, NSTEP_MAX)
        fracs = [trial.suggest_float(f"NSTEP.f{j}", *NSTEP_FRACTIONS) for j in range(n)]
        milestones = sorted({min(length - 1, max(1, round(f * length))) for f in fracs})
        return make(name, k0=k0, gamma=gamma, l=milestones)
    if name == "EXP":
        return make(name, k0=k0, gamma=_gamma_from_half_life(trial, name, length))
    if name == "INV":
        gamma_l = trial.suggest_float("INV.gamma_L", *INV_GAMMA_L, log=True)
        p = _nice(trial.suggest_float("INV.p", *INV_P))
        return make(name, k0=k0, gamma=_nice(gamma_l / length), p=p)
    if name == "POLY":
        p = _nice(trial.suggest_float("POLY.p", *POLY_P, log=True))
        return make(name, k0=k0, p=p, l=length)
    raise AssertionError(name)  # pragma: no cover


def _seed_list(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = (seeds,)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be seeds (whole numbers >= 0), got {seeds!r}")
    out = tuple(_whole(s, "seeds[]", 0) for s in seeds)
    if not out:
        raise ValueError("seeds must hold at least one seed")
    return out


class _Reporter:
    """The trainer's progress callback: reports each evaluation to the trial, stops when
    Optuna says prune."""

    def __init__(self, trial: Any, prune: bool) -> None:
        self.trial = trial
        self.prune = prune
        self.last_step = 0
        self.pruned_at: int | None = None

    def __call__(self, monitor: Any) -> None:
        point = monitor.last_point
        if point is None or point.iteration <= self.last_step:
            return  # a progress tick between evaluations
        self.last_step = point.iteration
        if not math.isfinite(point.top1):
            return
        self.trial.report(float(point.top1), step=int(point.iteration))
        if self.prune and not monitor.should_stop and self.trial.should_prune():
            self.pruned_at = int(point.iteration)
            monitor.stop()  # a clean stop: the loop ends, the result is kept


def _score(result: Any) -> float:
    if result.status == "failed":
        return math.nan
    tops = [p.top1 for p in result.curve if math.isfinite(p.top1)]
    return max(tops) if tops else 0.0


def objective(
    task: Any,
    *,
    seeds: Any = (0,),
    store: Any = None,
    lr_bounds: tuple[float, float] = DEFAULT_LR_BOUNDS,
    families: Any = ALL_FAMILIES,
    prune: bool = True,
    epoch_iters: int | None = None,
    threads: int | None = None,
    data_root: str | os.PathLike[str] | None = None,
    device: Any = None,
) -> Callable[[Any], float]:
    """An Optuna objective (maximize) over the policy space for ``task`` (a Task or preset).

    Each trial: :func:`suggest_policy` (``epoch_iters`` defaults to the dataset's #train //
    batch size), then :func:`lrbench.trainer.train` with each of ``seeds``; returns the mean
    over seeds of each run's best top-1. Each run is recorded in ``store`` (a Store or URL)
    when given; ``trial.user_attrs`` get ``policy`` (notation), ``run_ids`` and ``top1s``
    (and ``pruned_at`` when pruned). Pruning: see the module docstring."""
    from lrbench.data import load_dataset
    from lrbench.tasks import as_task

    t = as_task(task)
    seed_list = _seed_list(seeds)
    names = resolve_families(families)
    bounds = check_bounds(lr_bounds)
    if not bounds[0] < bounds[1]:
        raise ValueError(f"lr_bounds must be (lo, hi) with lo < hi, got {lr_bounds!r}")
    info = load_dataset(t.dataset, root=data_root).info
    epoch = _whole(epoch_iters, "epoch_iters", 1) if epoch_iters is not None \
        else info.iters_per_epoch(t.batch_size)
    optuna = _optuna()

    def record(result: Any) -> int | None:
        if store is None:
            return None
        if isinstance(store, (str, os.PathLike)):
            from lrbench.store import open_store

            with open_store(str(store)) as s:
                return s.record(result, dataset_info=info)
        return store.record(result, dataset_info=info)

    def run_trial(trial: Any) -> float:
        from lrbench.trainer import train

        policy = suggest_policy(trial, families=names, lr_bounds=bounds, max_iters=t.max_iters,
                                epoch_iters=epoch)
        trial.set_user_attr("policy", str(policy))
        study_name = getattr(getattr(trial, "study", None), "study_name", None)
        run_ids: list[int | None] = []
        scores: list[float] = []
        for i, seed in enumerate(seed_list):
            reporter = _Reporter(trial, prune) if i == 0 else None
            result = train(t, policy, seed, progress=reporter, threads=threads,
                           data_root=data_root, device=device)
            pruned = reporter is not None and reporter.pruned_at is not None
            meta: dict[str, Any] = {"study": study_name, "trial": trial.number,
                                    "pruned": pruned}
            if pruned and result.status == "done":
                k = int(result.iterations)
                meta["full_max_iters"] = t.max_iters
                short = t.replace(max_iters=k, eval_every=min(t.eval_every, k))
                result = dataclasses.replace(result, task=short, stop_reason="max_iters")
            result = dataclasses.replace(result, extra={**result.extra, "optuna": meta})
            run_ids.append(record(result))
            scores.append(_score(result))
            trial.set_user_attr("run_ids", list(run_ids))
            trial.set_user_attr("top1s", list(scores))
            if pruned:
                trial.set_user_attr("pruned_at", reporter.pruned_at)
                raise optuna.TrialPruned(
                    f"pruned at iteration {reporter.pruned_at} (top-1 {scores[-1]:.4f})")
        return float(sum(scores) / len(scores))

    return run_trial


def _sampler(sampler: Any, seed: int | None) -> Any:
    optuna = _optuna()
    if not isinstance(sampler, str):
        return sampler
    s = sampler.strip().lower()
    if s == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if s == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")


def _pruner(pruner: Any, task: Any) -> Any:
    optuna = _optuna()
    if pruner is None:
        return optuna.pruners.NopPruner()
    if not isinstance(pruner, str):
        return pruner
    p = pruner.strip().lower()
    if p == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=task.eval_every,
                                              max_resource=task.max_iters)
    if p == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=task.eval_every)
    if p == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")


def run_optuna(
    task: Any,
    n_trials: int,
    *,
    sampler: Any = "tpe",
    pruner: Any = "hyperband",
    seed: int | None = 0,
    store: Any = None,
    seeds: Any = (0,),
    lr_bounds: tuple[float, float] = DEFAULT_LR_BOUNDS,
    families: Any = ALL_FAMILIES,
    epoch_iters: int | None = None,
    study_name: str | None = None,
    storage: Any = None,
    threads: int | None = None,
    data_root: str | os.PathLike[str] | None = None,
    device: Any = None,
    callbacks: Sequence[Callable[[Any, Any], None]] | None = None,
) -> optuna.Study:
    """Run ``n_trials`` Optuna trials over the policy space for ``task`` and return the study.

    ``sampler``: 'tpe', 'random' or an Optuna sampler (seeded by ``seed``); ``pruner``:
    'hyperband' (rungs from ``eval_every`` to ``max_iters``), 'median', 'none' or an Optuna
    pruner; ``store``: an LRBench Store or URL recording every run; ``storage``/``study_name``:
    Optuna's own (default in memory). In memory the default name is fixed by the task and
    ``seed`` (``lrbench-<dataset>-<model>-seed<seed>``), so the same call gives the same trials:
    Hyperband assigns trials to brackets by a hash of the study name. The rest as
    :func:`objective`."""
    optuna = _optuna()
    from lrbench.tasks import as_task

    n = _whole(n_trials, "n_trials", 1)
    t = as_task(task)
    fn = objective(t, seeds=seeds, store=store, lr_bounds=lr_bounds, families=families,
                   prune=not (isinstance(pruner, str) and pruner.strip().lower() == "none")
                   and pruner is not None,
                   epoch_iters=epoch_iters, threads=threads, data_root=data_root, device=device)
    if study_name is None and storage is None:
        study_name = f"lrbench-{t.dataset}-{t.model}-seed{seed}"
    study = optuna.create_study(direction="maximize", sampler=_sampler(sampler, seed),
                                pruner=_pruner(pruner, t), study_name=study_name,
                                storage=storage, load_if_exists=storage is not None)
    study.optimize(fn, n_trials=n, callbacks=list(callbacks or ()))
    return study


def best_policy(study: Any) -> str:
    """The notation of the study's best completed trial's policy; ValueError if none."""
    optuna = _optuna()
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and t.value is not None and math.isfinite(t.value)]
    if not done:
        raise ValueError("the study has no completed trial")
    return str(study.best_trial.user_attrs["policy"])
