"""The paper's evaluation metrics (SPEC section 3), from model outputs and labels. numpy only.

On an evaluation set of N samples X_i with labels y_i in {0, ..., C-1}, a model gives softmax
probabilities P_i = P(X_i) and the prediction F_i = argmax_c P_i[c]. Let S = {i : F_i = y_i} be the
correctly classified samples and p_i = P_i[y_i] the probability given to the true class.

- top-1 = |S| / N
- top-5 = (1/N) * #{i : y_i is among the k most probable classes of P_i}, k = min(5, C)
- AC    = mean of p_i over i in S                      (average confidence; NaN when S is empty)
- CD    = sqrt(mean over i in S of (p_i - AC)^2)       (confidence deviation, population std;
                                                         NaN when S is empty, 0 for one sample)
- CDAC  = population std over classes c of AC_c, where AC_c is the mean of p_i over i in S with
          y_i = c. Classes with no correctly classified sample have no AC_c and are left out (they
          are not counted as 0): CDAC measures how evenly confident the model is on the classes it
          gets right; a class it never gets right already shows in top-1. NaN when S is empty.
- loss  = (1/N) * sum_i -log p_i                       (mean cross-entropy)
- LD    = test loss - train loss                       (loss difference, see loss_difference)
- #Iter = the iteration of the highest top-1 on a learning curve (see best_iteration)

Ties between classes are broken towards the lower class index, as ``numpy.argmax`` does, so that
top-1 is exactly ``argmax == label`` and top-5 >= top-1 always holds (top-k uses the same order).

Repeated runs (seeds) are summarized as mean and population standard deviation (ddof=0) by
``mean_std`` and ``aggregate``.

Outputs and labels may be numpy arrays, lists or torch tensors; tensors are recognised by duck
typing (an object with ``.detach()``) so this module never imports torch.

>>> import numpy as np
>>> logits = np.log(np.array([[0.7, 0.2, 0.1],
...                           [0.1, 0.6, 0.3],
...                           [0.5, 0.4, 0.1],
...                           [0.2, 0.2, 0.6]]))
>>> m = evaluate_outputs(logits, [0, 1, 1, 2])
>>> round(m.top1, 4), round(m.top5, 4), round(m.ac, 4), round(m.cd, 4), round(m.cdac, 4)
(0.75, 1.0, 0.6333, 0.0471, 0.0471)
>>> best_iteration([100, 200, 300], [0.5, 0.9, 0.9])
(200, 0.9)
>>> mean_std([0.9, 0.8, 1.0])
(0.9, 0.08164965809277258)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "Accumulator",
    "EvalMetrics",
    "aggregate",
    "best_iteration",
    "evaluate_outputs",
    "loss_difference",
    "mean_std",
    "top_k",
]

#: Probabilities are clipped to at least this before taking -log (so a probability of exactly 0
#: for the true class costs -log(eps) ~ 36.04 instead of an infinite loss), as scikit-learn's
#: ``log_loss`` does. Logits need no clipping: log-softmax is computed exactly.
PROB_EPS = float(np.finfo(np.float64).eps)

#: How far a row of probabilities may sum away from 1 (float32 softmax outputs of 100 classes
#: are well within this).
PROB_SUM_TOL = 1e-3

NanPolicy = Literal["omit", "propagate", "raise"]


@dataclass(frozen=True)
class EvalMetrics:
    """The metrics of one evaluation pass. Fractions in [0, 1]; NaN where undefined."""

    top1: float
    top5: float
    ac: float
    cd: float
    cdac: float
    loss: float

    def to_dict(self) -> dict[str, float]:
        """``{'top1': ..., 'top5': ..., 'ac': ..., 'cd': ..., 'cdac': ..., 'loss': ...}``."""
        return {k: float(v) for k, v in asdict(self).items()}


# ----------------------------------------------------------------------------------------------
# conversion and validation


def _to_numpy(x: Any, what: str) -> np.ndarray:
    """A numpy array from a numpy array, a list or a torch-like tensor (``.detach()``)."""
    if hasattr(x, "detach") and callable(x.detach):
        t = x.detach()
        if hasattr(t, "cpu"):
            t = t.cpu()
        try:
            return np.asarray(t.numpy())
        except TypeError:  # e.g. bfloat16, which numpy has no dtype for
            return np.asarray(t.float().numpy())
    try:
        return np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{what} cannot be read as an array: {e}") from None


def _check_outputs(outputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    out = _to_numpy(outputs, "outputs")
    lab = _to_numpy(labels, "labels")
    if out.ndim != 2:
        raise ValueError(
            f"outputs must be a 2-D array (samples, classes), got shape {out.shape}"
        )
    if lab.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {lab.shape}")
    n, n_classes = out.shape
    if n == 0 or lab.size == 0:
        raise ValueError("empty evaluation set: outputs and labels must have at least one sample")
    if n_classes == 0:
        raise ValueError("outputs have 0 classes")
    if lab.shape[0] != n:
        raise ValueError(
            f"outputs and labels do not match: {n} rows of outputs but {lab.shape[0]} labels"
        )
    if out.dtype == bool or not np.issubdtype(out.dtype, np.number):
        raise ValueError(f"outputs must be real numbers, got dtype {out.dtype}")
    if np.iscomplexobj(out):
        raise ValueError("outputs must be real numbers, got complex values")
    if lab.dtype == bool or not np.issubdtype(lab.dtype, np.number) or np.iscomplexobj(lab):
        raise ValueError(f"labels must be integer class indices, got dtype {lab.dtype}")
    if not np.issubdtype(lab.dtype, np.integer):
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise ValueError("labels must be integer class indices, got non-integer values")
    lab = lab.astype(np.int64)
    bad = (lab < 0) | (lab >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"labels out of range: label {int(lab[i])} at index {i} is not in [0, {n_classes})"
            f" ({int(bad.sum())} bad labels)"
        )
    out = out.astype(np.float64, copy=False)
    if np.isnan(out).any():
        rows = np.flatnonzero(np.isnan(out).any(axis=1))
        raise ValueError(
            f"outputs contain NaN in {rows.size} of {n} rows (first at row {int(rows[0])})"
        )
    return out, lab


def _per_sample(
    outputs: Any, labels: Any, from_logits: bool, k: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Validated per-sample quantities: (labels, p_y, correct, in_top_k, nll, n_classes)."""
    out, lab = _check_outputs(outputs, labels)
    n, n_classes = out.shape
    rows = np.arange(n)
    if from_logits:
        if np.isposinf(out).any():
            raise ValueError("logits contain +inf")
        m = out.max(axis=1, keepdims=True)
        if np.isneginf(m).any():
            raise ValueError("a row of logits is all -inf")
        z = out - m  # <= 0, the max is exactly 0: exp cannot overflow
        lse = np.log(np.exp(z).sum(axis=1))
        log_p_y = z[rows, lab] - lse
        p_y = np.exp(log_p_y)
        nll = -log_p_y
    else:
        if np.isinf(out).any() or (out < 0).any() or (out > 1 + PROB_SUM_TOL).any():
            raise ValueError(
                "probabilities must lie in [0, 1] (pass from_logits=True for logits)"
            )
        sums = out.sum(axis=1)
        off = np.abs(sums - 1.0) > PROB_SUM_TOL
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise ValueError(
                f"probabilities must sum to 1 in each row; row {i} sums to {sums[i]:.6g}"
                " (pass from_logits=True for logits)"
            )
        p_y = out[rows, lab]
        nll = -np.log(np.maximum(p_y, PROB_EPS))
    in_top_k = _in_top_k(out, lab, min(5, n_classes) if k is None else k)
    correct = _in_top_k(out, lab, 1)
    return lab, p_y, correct, in_top_k, nll, n_classes


def _in_top_k(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Whether each label is among the k highest scores of its row.

    Classes are ordered by score, highest first, ties broken by lower class index (numpy.argmax's
    rule), so the label's rank is #{c : s_c > s_y} + #{c < y : s_c == s_y}. One vectorized pass
    over the outputs; exact for ties, unlike an arbitrary-order argpartition.
    """
    n, n_classes = scores.shape
    s_y = scores[np.arange(n), labels][:, None]
    if k == 1:
        return scores.argmax(axis=1) == labels
    lower_index = np.arange(n_classes)[None, :] < labels[:, None]
    rank = (scores > s_y).sum(axis=1) + ((scores == s_y) & lower_index).sum(axis=1)
    return rank < k


def top_k(outputs: Any, labels: Any, k: int) -> float:
    """Top-k accuracy: the fraction of samples whose label is among the k highest outputs.

    Softmax is monotonic, so logits and probabilities give the same answer. Ties are broken
    towards the lower class index. k larger than the number of classes counts every sample.

    >>> top_k([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]], [2, 1], k=2)
    1.0
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive whole number, got {k!r}")
    out, lab = _check_outputs(outputs, labels)
    return float(_in_top_k(out, lab, min(int(k), out.shape[1])).mean())


def _summarize(
    labels: np.ndarray,
    p_y: np.ndarray,
    correct: np.ndarray,
    in_top5: np.ndarray,
    nll: np.ndarray,
    n_classes: int,
) -> EvalMetrics:
    n = labels.shape[0]
    n_correct = int(correct.sum())
    if n_correct:
        conf = p_y[correct]
        ac = float(conf.mean())
        cd = float(np.sqrt(np.mean((conf - ac) ** 2)))
        cls = labels[correct]
        counts = np.bincount(cls, minlength=n_classes)
        sums = np.bincount(cls, weights=conf, minlength=n_classes)
        seen = counts > 0
        ac_c = sums[seen] / counts[seen]
        cdac = float(np.sqrt(np.mean((ac_c - ac_c.mean()) ** 2)))
    else:
        ac = cd = cdac = math.nan
    return EvalMetrics(
        top1=n_correct / n,
        top5=float(in_top5.mean()),
        ac=ac,
        cd=cd,
        cdac=cdac,
        loss=float(nll.mean()),
    )


def evaluate_outputs(outputs: Any, labels: Any, *, from_logits: bool = True) -> EvalMetrics:
    """Top-1, top-5, AC, CD, CDAC and mean cross-entropy of one evaluation pass.

    ``outputs``: shape (N, C), logits (``from_logits=True``, the default; softmax is applied
    stably as exp(z - logsumexp(z))) or probabilities (``from_logits=False``; each row in [0, 1]
    and summing to 1 within 1e-3). numpy arrays, lists or torch tensors (any device, any float
    dtype); computed in float64. ``labels``: shape (N,), integer class indices in [0, C).
    Logits may be -inf (a class ruled out) but not NaN or +inf.

    See the module docstring for the formulas. AC, CD and CDAC are NaN when no sample is
    correctly classified; classes with no correctly classified sample are left out of CDAC.
    Cross-entropy from probabilities clips P[y] at ``PROB_EPS``.

    Raises ValueError, naming the problem, for empty or mismatched inputs, labels out of range,
    NaN outputs, or probabilities that are not probabilities.

    >>> import numpy as np
    >>> m = evaluate_outputs(np.array([[0.9, 0.1], [0.4, 0.6]]), [0, 0], from_logits=False)
    >>> m.top1, m.ac, m.cd, m.cdac, round(m.loss, 4)
    (0.5, 0.9, 0.0, 0.0, 0.5108)
    """
    return _summarize(*_per_sample(outputs, labels, from_logits))


class Accumulator:
    """Metrics over an evaluation pass fed batch by batch, without keeping the outputs.

    Keeps only a few numbers per sample (label, P[y], correct, in top-5, loss), so memory is
    O(N), not O(N * C); the result equals ``evaluate_outputs`` on the stacked outputs.

    >>> import numpy as np
    >>> acc = Accumulator()
    >>> acc.update(np.log([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]), [0, 1])
    >>> acc.update(np.log([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]), [1, 2])
    >>> acc.n_samples, round(acc.compute().ac, 4)
    (4, 0.6333)
    """

    def __init__(self, *, from_logits: bool = True) -> None:
        self.from_logits = from_logits
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._n_classes: int | None = None
        self.n_samples = 0

    def update(self, outputs: Any, labels: Any) -> None:
        """Add one batch: outputs (B, C) and labels (B,), validated as in ``evaluate_outputs``."""
        lab, p_y, correct, top5, nll, n_classes = _per_sample(outputs, labels, self.from_logits)
        if self._n_classes is None:
            self._n_classes = n_classes
        elif n_classes != self._n_classes:
            raise ValueError(
                f"batch has {n_classes} classes but earlier batches had {self._n_classes}"
            )
        self._parts.append((lab, p_y, correct, top5, nll))
        self.n_samples += lab.shape[0]

    def compute(self) -> EvalMetrics:
        """The metrics of everything added so far."""
        if not self._parts or self._n_classes is None:
            raise ValueError("empty evaluation set: no batch was added to the Accumulator")
        cols = [np.concatenate(c) for c in zip(*self._parts)]
        return _summarize(*cols, self._n_classes)

    def reset(self) -> None:
        """Forget every batch."""
        self._parts.clear()
        self._n_classes = None
        self.n_samples = 0


# ----------------------------------------------------------------------------------------------
# curves and repeated runs


def _as_float(x: Any, what: str) -> float:
    try:
        v = float(_to_numpy(x, what)) if hasattr(x, "detach") else float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {x!r}") from None
    return v


def loss_difference(test_loss: float, train_loss: float) -> float:
    """LD = test_loss - train_loss (cross-entropy), the over-fitting indicator of SPEC section 3.

    NaN if either loss is NaN.

    >>> loss_difference(0.35, 0.25)
    0.09999999999999998
    """
    return _as_float(test_loss, "test_loss") - _as_float(train_loss, "train_loss")


def best_iteration(iterations: Sequence[int], top1s: Sequence[float]) -> tuple[int, float]:
    """#Iter: the iteration where the highest top-1 was first measured, and that top-1.

    NaN accuracies are ignored. Raises ValueError for empty or mismatched sequences, or when
    every accuracy is NaN.

    >>> best_iteration([0, 500, 1000, 1500], [0.1, 0.92, float('nan'), 0.92])
    (500, 0.92)
    """
    its = np.asarray(_to_numpy(iterations, "iterations"))
    acc = np.asarray(_to_numpy(top1s, "top1s"), dtype=np.float64)
    if its.ndim != 1 or acc.ndim != 1:
        raise ValueError("iterations and top1s must be 1-D sequences")
    if its.size == 0:
        raise ValueError("empty learning curve: no iterations given")
    if its.shape != acc.shape:
        raise ValueError(
            f"iterations and top1s do not match: {its.size} iterations but {acc.size} accuracies"
        )
    valid = ~np.isnan(acc)
    if not valid.any():
        raise ValueError("every top-1 on the learning curve is NaN")
    i = int(np.argmax(np.where(valid, acc, -np.inf)))  # argmax returns the first maximum
    return int(its[i]), float(acc[i])


def mean_std(values: Iterable[float], *, nan_policy: NanPolicy = "omit") -> tuple[float, float]:
    """(mean, population std with ddof=0) of a set of values, e.g. one metric over seeds.

    NaNs, explicitly: with ``nan_policy="omit"`` (the default) NaN values are left out, as a
    metric that is undefined for one run (AC when nothing was correct) says nothing about the
    others; if every value is NaN the result is (nan, nan). ``"propagate"`` gives (nan, nan) when
    any value is NaN; ``"raise"`` raises ValueError. None counts as NaN. Empty input raises
    ValueError. One value has std 0.

    >>> mean_std([1.0, float('nan'), 3.0])
    (2.0, 1.0)
    >>> mean_std([1.0, float('nan'), 3.0], nan_policy="propagate")
    (nan, nan)
    """
    if nan_policy not in ("omit", "propagate", "raise"):
        raise ValueError(f"nan_policy must be 'omit', 'propagate' or 'raise', got {nan_policy!r}")
    if isinstance(values, np.ndarray) or hasattr(values, "detach"):
        vals = _to_numpy(values, "values").astype(np.float64).ravel()
    else:
        try:
            vals = np.array(
                [math.nan if v is None else float(v) for v in values], dtype=np.float64
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"values must be numbers: {e}") from None
    if vals.size == 0:
        raise ValueError("mean_std of no values")
    nan = np.isnan(vals)
    if nan.any():
        if nan_policy == "raise":
            raise ValueError(f"{int(nan.sum())} of {vals.size} values are NaN")
        if nan_policy == "propagate" or nan.all():
            return math.nan, math.nan
        vals = vals[~nan]
    mean = float(vals.mean())
    return mean, float(np.sqrt(np.mean((vals - mean) ** 2)))


def aggregate(
    runs: Sequence[Mapping[str, Any] | EvalMetrics], *, nan_policy: NanPolicy = "omit"
) -> dict[str, tuple[float, float]]:
    """Mean and population std of each metric over repeated runs (e.g. seeds).

    ``runs``: one mapping ``{metric name: number}`` (or one EvalMetrics) per run, every run with
    the same metric names; values are numbers or None (counted as NaN). NaNs as in ``mean_std``.
    Raises ValueError for no runs, runs with different metric names, or non-numeric values.

    >>> aggregate([{"top1": 0.5, "ac": 0.75}, {"top1": 1.0, "ac": float("nan")}])
    {'top1': (0.75, 0.25), 'ac': (0.75, 0.0)}
    """
    dicts = [r.to_dict() if isinstance(r, EvalMetrics) else r for r in runs]
    if not dicts:
        raise ValueError("aggregate of no runs")
    names = list(dicts[0])
    for i, d in enumerate(dicts):
        if not isinstance(d, Mapping):
            raise ValueError(f"run {i} is not a mapping of metric names to numbers: {d!r}")
        if set(d) != set(names):
            missing = sorted(set(names) - set(d))
            extra = sorted(set(d) - set(names))
            raise ValueError(
                f"run {i} has different metrics from run 0 (missing {missing}, extra {extra})"
            )
    result: dict[str, tuple[float, float]] = {}
    for name in names:
        vals = []
        for i, d in enumerate(dicts):
            v = d[name]
            if v is None:
                vals.append(math.nan)
                continue
            if isinstance(v, (bool, str, bytes)) or not isinstance(v, (int, float, np.number)):
                raise ValueError(f"metric {name!r} of run {i} is not a number: {v!r}")
            vals.append(float(v))
        result[name] = mean_std(vals, nan_policy=nan_policy)
    return result
