"""Recommendations from past runs (SPEC section 5, step 1): start from the LR database.

:func:`recommend` finds the stored tasks most similar to a new task, ranks each one's policies
by their stored runs (:func:`lrbench.ranking.summarize` / :func:`~lrbench.ranking.rank`), and
recommends their best policies, rescaled to the new task's length, with the runs they rest on.

**Similarity** of a stored task S to the target task T, in [0, 1]::

    similarity = 0.45 * D + 0.35 * M + 0.20 * R

    k(x, y) = min(x, y) / max(x, y)      (1 when equal; both 0 -> 1; one 0 -> 0)

    D (dataset)  = 1 for the same dataset, else 0.5 * mean of the meta-features known for both:
                   k(#classes), [same #channels], k(H * W), k(#training samples)
                   (0 when none is known)
    M (model)    = 1 for the same model, 0.4 for the same family (MODEL_FAMILIES), else 0
    R (settings) = (3 * opt + batch + iters + 0.5 * (mom + wd + init + inputs)) / 7, with
                   opt = 1 same optimizer, 0.75 momentum vs nesterov, 0.5 two adaptive ones, else 0;
                   batch = k(batch sizes); iters = k(max_iters); mom = k(1 - momentum);
                   wd = k(weight decays); init, inputs = 1 when equal, else 0

The weights put every stored task of the same dataset and model (similarity >= 0.80) above
every other one (<= 0.79), and the same task itself (1.0) first. Ties: the task identical to the
target first, then by dataset, model, max_iters, batch size and task key (deterministic).

**Rescaling** (``scale_by="iters"``, the default): scale = T.max_iters / S.max_iters, so the LR
at the same fraction of training is the same: every iteration count is multiplied by it
(``l`` of STEP, POLY, LIN and the cyclic functions, NSTEP's milestones, composite phase lengths,
rounded to whole iterations), per-iteration decay rates become ``gamma ** (1 / scale)`` (EXP,
TRIEXP, SINEXP; with the fewest digits of 1 - gamma that keep ln(gamma) within 0.02%) and
INV's ``gamma / scale``.
``scale_by="epochs"`` uses the ratio of the epoch lengths (#training samples / batch size).
LRs (k0, k1) are kept. See :func:`rescale_policy`.

**Order of the recommendations**: by the source task's similarity, then by that task's ranking
(top-1 mean, ties as in :func:`lrbench.ranking.rank`); duplicates (the same notation after
rescaling) are kept once, at their best place. Policies with a diverged run come after all those
without; policies whose runs all diverged or failed are not recommended.

>>> from lrbench.store import Store
>>> from lrbench.store.testing import make_result
>>> from lrbench.tasks import get_task
>>> with Store.open("sqlite://") as store:
...     _ = store.record(make_result(get_task("mnist-lenet"), "SIN2(k0=0.01, k1=0.06, l=2000)"))
...     rec = recommend(store, get_task("mnist-lenet", max_iters=2000))
>>> rec.recommendations[0].policy, rec.recommendations[0].rescaled_from
('SIN2(k0=0.01, k1=0.06, l=400)', 'SIN2(k0=0.01, k1=0.06, l=2000)')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lrbench.policies import Policy, from_dict, parse
from lrbench.tasks import Task, as_task

__all__ = [
    "MODEL_FAMILIES",
    "DatasetMeta",
    "PolicyEvidence",
    "Recommendation",
    "Recommended",
    "SimilarTask",
    "dataset_meta",
    "model_family",
    "recommend",
    "rescale_policy",
    "similarity",
]

#: Model -> family, for the similarity of different models (unknown models are their own family).
MODEL_FAMILIES: dict[str, str] = {
    "lenet": "small-cnn",
    "cnn3": "small-cnn",
    "digits-cnn": "small-cnn",
    "resnet20": "resnet",
    "resnet32": "resnet",
    "resnet56": "resnet",
    "mlp": "mlp",
}

#: Weights of the similarity's parts (module docstring).
W_DATASET, W_MODEL, W_SETTINGS = 0.45, 0.35, 0.20
OTHER_DATASET = 0.5  # the most a different dataset's meta-features can give D
SAME_FAMILY = 0.4
#: Rescaled decay rates keep ln(gamma) within this relative error: the LR at any iteration is
#: then within a factor exp(DECAY_RTOL * D) of exact, D = ln(LR(0) / LR(t)) the decay so far.
DECAY_RTOL = 2e-4
_SGD_MOMENTUM = frozenset({"momentum", "nesterov"})
_ADAPTIVE = frozenset({"adam", "adamw", "rmsprop"})

ScaleBy = Literal["iters", "epochs"]


def model_family(model: str) -> str:
    """The family of a model name (MODEL_FAMILIES; ``resnet*`` is a resnet; else the name).

    >>> model_family("cnn3"), model_family("resnet110"), model_family("vgg16")
    ('small-cnn', 'resnet', 'vgg16')
    """
    key = model.strip().lower()
    if key in MODEL_FAMILIES:
        return MODEL_FAMILIES[key]
    return "resnet" if key.startswith("resnet") else key


# -- dataset meta-features ----------------------------------------------------------------
@dataclass(frozen=True)
class DatasetMeta:
    """The meta-features of a dataset used for similarity (None: unknown)."""

    name: str
    n_classes: int | None = None
    input_shape: tuple[int, ...] | None = None
    n_train: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_classes": self.n_classes,
                "input_shape": list(self.input_shape) if self.input_shape else None,
                "n_train": self.n_train}


def _meta_from(name: str, values: Mapping[str, Any] | None) -> DatasetMeta:
    values = values or {}
    shape = values.get("input_shape")

    def whole(v: Any) -> int | None:
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None

    return DatasetMeta(
        name=name, n_classes=whole(values.get("n_classes")),
        input_shape=tuple(int(s) for s in shape) if shape else None,
        n_train=whole(values.get("n_train")),
    )


def dataset_meta(store: Any, names: Sequence[str]) -> dict[str, DatasetMeta]:
    """The meta-features of datasets: as the store has them, else from
    :func:`lrbench.data.dataset_info` for a dataset LRBench knows, else all unknown."""
    stored = {row["name"]: row for row in store.datasets(names)}
    out: dict[str, DatasetMeta] = {}
    for name in names:
        meta = _meta_from(name, stored.get(name))
        if None in (meta.n_classes, meta.input_shape, meta.n_train):
            known = _known_dataset(name)
            if known is not None:
                meta = DatasetMeta(name, meta.n_classes or known.n_classes,
                                   meta.input_shape or known.input_shape,
                                   meta.n_train or known.n_train)
        out[name] = meta
    return out


def _known_dataset(name: str) -> DatasetMeta | None:
    try:
        from lrbench.data import dataset_info

        info = dataset_info(name)
    except Exception:  # an unknown name, or a dataset that needs arguments
        return None
    return DatasetMeta(name, info.n_classes, tuple(info.input_shape), info.n_train)


# -- similarity ---------------------------------------------------------------------------
def _k(x: float | None, y: float | None) -> float | None:
    """min / max of two non-negative numbers (None when either is unknown)."""
    if x is None or y is None:
        return None
    if x == y:
        return 1.0
    if x <= 0 or y <= 0:
        return 0.0
    return min(x, y) / max(x, y)


def _dataset_part(target: DatasetMeta, other: DatasetMeta) -> float:
    if target.name == other.name:
        return 1.0
    parts = [_k(target.n_classes, other.n_classes), _k(target.n_train, other.n_train)]
    if target.input_shape and other.input_shape:
        a, b = target.input_shape, other.input_shape
        parts.append(1.0 if a[0] == b[0] else 0.0)
        parts.append(_k(math.prod(a[1:]), math.prod(b[1:])))
    known = [p for p in parts if p is not None]
    return OTHER_DATASET * sum(known) / len(known) if known else 0.0


def _optimizer_part(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if {a, b} <= _SGD_MOMENTUM:
        return 0.75
    if {a, b} <= _ADAPTIVE:
        return 0.5
    return 0.0


def _settings_part(a: Task, b: Task) -> float:
    parts = (
        (3.0, _optimizer_part(a.optimizer, b.optimizer)),
        (1.0, _k(a.batch_size, b.batch_size)),
        (1.0, _k(a.max_iters, b.max_iters)),
        (0.5, _k(1.0 - a.momentum, 1.0 - b.momentum)),
        (0.5, _k(a.weight_decay, b.weight_decay)),
        (0.5, float(a.init == b.init)),
        (0.5, float(a.inputs == b.inputs)),
    )
    return sum(w * float(v) for w, v in parts) / sum(w for w, _ in parts)


def similarity(target: Task, other: Task, target_meta: DatasetMeta | None = None,
               other_meta: DatasetMeta | None = None) -> dict[str, float]:
    """The similarity of ``other`` to ``target`` and its parts (module docstring):
    ``{"similarity": s, "dataset": D, "model": M, "settings": R}``.

    >>> from lrbench.tasks import get_task
    >>> similarity(get_task("mnist-lenet"), get_task("mnist-lenet", max_iters=5000))["similarity"]
    0.985714
    """
    d = _dataset_part(target_meta or DatasetMeta(target.dataset),
                      other_meta or DatasetMeta(other.dataset))
    if target.dataset == other.dataset:
        d = 1.0
    if target.model == other.model:
        m = 1.0
    elif model_family(target.model) == model_family(other.model):
        m = SAME_FAMILY
    else:
        m = 0.0
    r = _settings_part(target, other)
    s = W_DATASET * d + W_MODEL * m + W_SETTINGS * r
    return {"similarity": round(s, 6), "dataset": round(d, 6), "model": m,
            "settings": round(r, 6)}


def _why(target: Task, other: Task, tm: DatasetMeta, om: DatasetMeta) -> str:
    """Why a task is similar, in a few words."""
    if target.identity() == other.identity():
        return "the same task"
    if target.dataset == other.dataset and target.model == other.model:
        head = "same dataset and model"
    else:
        same = []
        if target.dataset == other.dataset:
            same.append("same dataset")
        else:
            if tm.n_classes and tm.n_classes == om.n_classes:
                same.append(f"{tm.n_classes} classes")
            if tm.input_shape and tm.input_shape == om.input_shape:
                same.append("input " + "x".join(map(str, tm.input_shape)))
            elif tm.input_shape and om.input_shape and tm.input_shape[0] == om.input_shape[0]:
                same.append(f"{tm.input_shape[0]} channel{'s' if tm.input_shape[0] > 1 else ''}")
        if target.model == other.model:
            same.append("same model")
        elif model_family(target.model) == model_family(other.model):
            same.append(f"model family {model_family(other.model)}")
        head = ", ".join(same) or "unrelated"
    diffs = [f"{name} {getattr(other, name)}" for name in
             ("max_iters", "batch_size", "optimizer", "momentum", "weight_decay", "init", "inputs")
             if getattr(other, name) != getattr(target, name)]
    return head + ("; " + ", ".join(diffs) if diffs else "")


# -- rescaling ----------------------------------------------------------------------------
def _tidy(x: float) -> float:
    """``x`` without float noise (0.0001 / 0.2 = 0.0005000000000000001 -> 0.0005)."""
    return float(f"{x:.10g}")


def _decay(gamma: float) -> float:
    """A per-iteration decay rate with the fewest significant digits of 1 - gamma whose
    log-decay is within DECAY_RTOL of the exact one (0.99994 ** 5 -> 0.9997)."""
    if gamma >= 1.0:
        return 1.0
    exact = math.log(gamma)
    for digits in range(1, 17):
        g = 1.0 - float(f"{1.0 - gamma:.{digits}g}")
        if 0.0 < g < 1.0 and abs(math.log(g) - exact) <= DECAY_RTOL * abs(exact):
            return _tidy(g) if abs(math.log(_tidy(g)) - exact) <= DECAY_RTOL * abs(exact) else g
    return gamma


def _length(x: float) -> int:
    return max(1, int(round(x)))


def _milestones(values: Sequence[float], scale: float) -> list[int]:
    out: list[int] = []
    for v in values:
        m = _length(v * scale)
        out.append(max(m, out[-1] + 1) if out else m)  # keep them strictly increasing
    return out


def _rescale_dict(d: dict[str, Any], scale: float) -> dict[str, Any]:
    name = str(d["name"]).upper()
    if name == "COMPOSITE":
        return {"name": "COMPOSITE", "phases": [
            {"policy": _rescale_dict(ph["policy"], scale),
             "length": None if ph.get("length") is None else _length(ph["length"] * scale)}
            for ph in d["phases"]]}
    p = dict(d.get("params", {}))
    if "l" in p:
        p["l"] = (_milestones(p["l"], scale) if isinstance(p["l"], (list, tuple))
                  else _length(p["l"] * scale))
    if name in ("EXP", "TRIEXP", "SINEXP"):
        p["gamma"] = _decay(p["gamma"] ** (1.0 / scale))
    elif name == "INV":
        p["gamma"] = _tidy(p["gamma"] / scale)
    return {"name": name, "params": p}


def rescale_policy(policy: Policy | str, scale: float) -> Policy:
    """``policy`` stretched in time by ``scale`` (target iterations / source iterations).

    Lengths (l, milestones, phase lengths) times ``scale``, rounded; EXP/TRIEXP/SINEXP's gamma
    ``gamma ** (1 / scale)`` (the fewest digits of 1 - gamma keeping ln(gamma) within
    DECAY_RTOL); INV's ``gamma / scale``; STEP's
    and NSTEP's gamma (a factor per step) and all LRs unchanged. A ValueError when the result
    is not a valid policy (e.g. a decay rate that underflows).

    >>> str(rescale_policy("SINEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)", 0.2))
    'SINEXP(k0=0.01, k1=0.06, gamma=0.9997, l=400)'
    >>> str(rescale_policy("NSTEP(k0=0.1, gamma=0.1, l=[32000, 48000])", 0.5))
    'NSTEP(k0=0.1, gamma=0.1, l=[16000, 24000])'
    """
    if isinstance(policy, str):
        policy = parse(policy)
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if scale == 1:
        return policy
    return from_dict(_rescale_dict(policy.to_dict(), float(scale)))


# -- results ------------------------------------------------------------------------------
def _num(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _task_dict(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json")


@dataclass(frozen=True)
class PolicyEvidence:
    """One policy as it ran on a stored task: its metrics over seeds and its run ids."""

    policy: str
    top1: float
    top1_std: float
    best_iter: float
    n_runs: int
    n_diverged: int
    n_failed: int
    seeds: tuple[int, ...]
    run_ids: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "top1": _num(self.top1), "top1_std": _num(self.top1_std),
                "best_iter": _num(self.best_iter), "n_runs": self.n_runs,
                "n_diverged": self.n_diverged, "n_failed": self.n_failed,
                "seeds": list(self.seeds), "run_ids": list(self.run_ids)}


@dataclass(frozen=True)
class SimilarTask:
    """A stored task like the target: how similar, why, its best policies and LR ranges.

    ``lr_range``: the lowest positive and the highest LR of its listed policies (their bounds);
    ``fix_range`` / ``best_fix``: the good FIX range and best FIX LR among its FIX policies
    (:func:`lrbench.tuning.good_fix_range`), None without FIX runs. ``scale``: what its
    policies' iteration counts are multiplied by for the target. ``parts``: the similarity's
    parts ``{"dataset": D, "model": M, "settings": R}``.
    """

    task: Task
    similarity: float
    parts: dict[str, float]
    why: str
    scale: float
    best_policies: tuple[PolicyEvidence, ...]
    lr_range: tuple[float, float] | None
    fix_range: tuple[float, float] | None
    best_fix: float | None
    dataset: DatasetMeta

    def to_dict(self) -> dict[str, Any]:
        return {"task": _task_dict(self.task), "similarity": self.similarity,
                "parts": dict(self.parts), "why": self.why, "scale": self.scale,
                "dataset": self.dataset.to_dict(),
                "lr_range": list(self.lr_range) if self.lr_range else None,
                "fix_range": list(self.fix_range) if self.fix_range else None,
                "best_fix": self.best_fix,
                "best_policies": [p.to_dict() for p in self.best_policies]}


@dataclass(frozen=True)
class Recommended:
    """A recommended policy for the target task, with the evidence it rests on.

    ``policy`` is the notation to run on the target; ``rescaled_from`` the notation that ran
    on ``source_task`` when they differ; ``note`` says when a policy could not be rescaled.
    """

    policy: str
    source_task: Task
    similarity: float
    evidence: PolicyEvidence
    rescaled_from: str | None = None
    note: str | None = None

    @property
    def top1(self) -> float:
        return self.evidence.top1

    @property
    def run_ids(self) -> tuple[int, ...]:
        return self.evidence.run_ids

    def to_dict(self) -> dict[str, Any]:
        e = self.evidence
        return {"policy": self.policy, "top1": _num(e.top1), "top1_std": _num(e.top1_std),
                "best_iter": _num(e.best_iter), "n_runs": e.n_runs, "n_diverged": e.n_diverged,
                "seeds": list(e.seeds), "source_task": _task_dict(self.source_task),
                "source_policy": e.policy, "similarity": self.similarity,
                "rescaled_from": self.rescaled_from, "note": self.note,
                "run_ids": list(e.run_ids)}


@dataclass(frozen=True)
class Recommendation:
    """What :func:`recommend` found: the similar tasks (most similar first) and the
    recommended policies (best first)."""

    task: Task
    similar_tasks: tuple[SimilarTask, ...]
    recommendations: tuple[Recommended, ...]
    scale_by: str = "iters"
    notes: tuple[str, ...] = field(default=())

    @property
    def policies(self) -> list[str]:
        """The recommended policies in notation, best first."""
        return [r.policy for r in self.recommendations]

    def to_dict(self) -> dict[str, Any]:
        return {"task": _task_dict(self.task), "scale_by": self.scale_by,
                "similar_tasks": [s.to_dict() for s in self.similar_tasks],
                "recommendations": [r.to_dict() for r in self.recommendations],
                "notes": list(self.notes)}


# -- the search ---------------------------------------------------------------------------
def _sort_key(target: Task, task: Task, score: float) -> tuple[Any, ...]:
    from lrbench.store import task_key

    return (-score, task.identity() != target.identity(), task.dataset, task.model,
            task.max_iters, task.batch_size, task_key(task))


def _best_policies(store: Any, task: Task, top: int
                   ) -> tuple[list[tuple[PolicyEvidence, bool]], list[Any]]:
    """The task's usable policies, best first ((evidence, clean) pairs), and all its stats."""
    from lrbench.ranking import rank, summarize

    results = store.runs(task=task)
    if not results:
        return [], []
    stats = summarize(results)
    ids: dict[tuple[str, int], int] = {}
    for row in store.find_runs(task=task, status=["done", "diverged"]):
        ids[(row.policy, row.seed)] = row.id
    usable = [s for s in stats if s.n_runs > s.n_diverged and math.isfinite(s.top1_mean)]
    ranked = rank(usable, by="top1") if usable else []
    ordered = sorted(ranked, key=lambda r: r.stats.n_diverged > 0)  # stable: clean ones first
    out = []
    for r in ordered[:top]:
        s = r.stats
        run_ids = tuple(sorted(ids[(s.policy, seed)] for seed in s.seeds
                               if (s.policy, seed) in ids))
        out.append((PolicyEvidence(
            policy=s.policy, top1=s.top1_mean, top1_std=s.top1_std, best_iter=s.best_iter_mean,
            n_runs=s.n_runs, n_diverged=s.n_diverged, n_failed=s.n_failed, seeds=s.seeds,
            run_ids=run_ids), s.n_diverged == 0))
    return out, stats


def _lr_range(evidence: Sequence[PolicyEvidence]) -> tuple[float, float] | None:
    lows, highs = [], []
    for e in evidence:
        if e.n_diverged:
            continue
        try:
            lo, hi = parse(e.policy).bounds
        except ValueError:
            continue
        positive = [v for v in (lo, hi) if v > 0]
        if positive:
            lows.append(min(positive))
            highs.append(max(positive))
    return (min(lows), max(highs)) if lows else None


def _fix_range(stats: Sequence[Any]) -> tuple[tuple[float, float] | None, float | None]:
    from lrbench.tuning.rangetest import good_fix_range

    fix = sorted(((parse(s.policy).params["k0"], s) for s in stats
                  if s.function == "FIX" and s.n_runs > 0), key=lambda x: x[0])
    if not fix:
        return None, None
    lrs = [lr for lr, _ in fix]
    found = good_fix_range(lrs, [s.top1_mean for _, s in fix],
                           [s.n_diverged == 0 for _, s in fix])
    if found is None:
        return None, None
    best, lo, hi = found
    return (lrs[lo], lrs[hi]), lrs[best]


def _scale(target: Task, source: Task, tm: DatasetMeta, sm: DatasetMeta, scale_by: str
           ) -> tuple[float, str | None]:
    if scale_by == "epochs":
        if tm.n_train and sm.n_train:
            return (tm.n_train / target.batch_size) / (sm.n_train / source.batch_size), None
        note = (f"{source.dataset}: training-set size unknown, so its policies are scaled by "
                "training length (iters), not by epoch length")
        return target.max_iters / source.max_iters, note
    return target.max_iters / source.max_iters, None


def recommend(store: Any, task: Task | str, *, top: int = 5, max_tasks: int = 5,
              scale_by: ScaleBy = "iters",
              exclude: Callable[[Task], bool] | None = None) -> Recommendation:
    """Policies for ``task`` (a Task or a preset name) from the most similar stored tasks.

    Looks at the ``max_tasks`` most similar stored tasks that have usable runs (similarity in
    the module docstring), lists up to ``top`` best policies of each, and recommends up to
    ``top`` policies overall, rescaled to the target (``scale_by`` "iters" or "epochs").
    ``store`` is a :class:`lrbench.store.Store` or a database URL. ``exclude``: stored tasks
    for which ``exclude(task)`` is true are not looked at (``tune`` skips the shorter versions
    of a task: :func:`lrbench.tuning.tune.lookup_skips`). An empty database gives an empty
    Recommendation.

    >>> from lrbench.store import Store
    >>> with Store.open("sqlite://") as store:
    ...     recommend(store, "digits-mlp").recommendations
    ()
    """
    for name, v in (("top", top), ("max_tasks", max_tasks)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
    if scale_by not in ("iters", "epochs"):
        raise ValueError(f"scale_by must be 'iters' or 'epochs', got {scale_by!r}")
    if exclude is not None and not callable(exclude):
        raise ValueError(f"exclude must be a callable taking a Task, got {exclude!r}")
    target = as_task(task)
    if isinstance(store, str):
        from lrbench.store import Store

        with Store.open(store) as opened:
            return recommend(opened, target, top=top, max_tasks=max_tasks, scale_by=scale_by,
                             exclude=exclude)

    stored = [t for t in store.tasks() if exclude is None or not exclude(t)]
    metas = dataset_meta(store, sorted({target.dataset, *(t.dataset for t in stored)}))
    tm = metas[target.dataset]
    scored = []
    for t in stored:
        parts = similarity(target, t, tm, metas[t.dataset])
        score = parts.pop("similarity")
        scored.append((_sort_key(target, t, score), t, score, parts))
    scored.sort(key=lambda x: x[0])

    similar: list[SimilarTask] = []
    notes: list[str] = []
    candidates: list[tuple[bool, int, int, Recommended]] = []
    for _, t, score, parts in scored:
        if len(similar) >= max_tasks:
            break
        best, stats = _best_policies(store, t, top)
        if not best:
            continue
        sm = metas[t.dataset]
        scale, note = _scale(target, t, tm, sm, scale_by)
        if note:
            notes.append(note)
        fix_range, best_fix = _fix_range(stats)
        evidence = tuple(e for e, _ in best)
        similar.append(SimilarTask(
            task=t, similarity=score, parts=parts, why=_why(target, t, tm, sm),
            scale=round(scale, 6), best_policies=evidence, lr_range=_lr_range(evidence),
            fix_range=fix_range, best_fix=best_fix, dataset=sm))
        for position, (e, clean) in enumerate(best):
            notation, rescaled_from, why_not = e.policy, None, None
            if not math.isclose(scale, 1.0, rel_tol=1e-9):
                try:
                    notation = str(rescale_policy(e.policy, scale))
                except ValueError as err:
                    why_not = f"not rescaled (x{scale:.4g}): {err}"
                if notation != e.policy:
                    rescaled_from = e.policy
            candidates.append((not clean, len(similar), position, Recommended(
                policy=notation, source_task=t, similarity=score, evidence=e,
                rescaled_from=rescaled_from, note=why_not)))

    candidates.sort(key=lambda c: c[:3])
    seen: set[str] = set()
    recommendations: list[Recommended] = []
    for *_, r in candidates:
        if r.policy in seen:
            continue
        seen.add(r.policy)
        recommendations.append(r)
        if len(recommendations) >= top:
            break
    return Recommendation(task=target, similar_tasks=tuple(similar),
                          recommendations=tuple(recommendations), scale_by=scale_by,
                          notes=tuple(dict.fromkeys(notes)))

