"""Result figures (matplotlib, Agg, imported lazily; no pyplot global state).

* :func:`plot_learning_curves` - test accuracy and test loss vs iteration per policy, mean over
  seeds with a ± std band, and a dotted vertical line wherever the policy's LR steps
  (paper Fig. 5).
* :func:`plot_fix_sweep` - accuracy vs FIX LR value on a log axis, one line per training
  length L (paper Fig. 3).
* :func:`plot_pareto` - accuracy vs cost, every policy with its seed spread, the Pareto front
  drawn and labelled.

Each returns a ``matplotlib.figure.Figure`` and, given ``path`` (``.png`` or ``.svg``), saves
it there. :func:`figure_to_png` gives PNG bytes (for the HTML report).
"""

from __future__ import annotations

import errno
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from lrbench.ranking import METRICS, PolicyStats, check_metric, pareto_front
from lrbench.results import RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lrbench.policies import Policy

LABEL_CHARS = 60
MAX_STEP_LINES = 50


# -- plumbing -----------------------------------------------------------------------------
def new_figure(figsize: tuple[float, float] = (8.0, 5.0)) -> Figure:
    """A Figure on an Agg canvas, outside pyplot (no global state, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save as PNG or SVG, chosen by the suffix, without the generator's URL in the file.
    Every plot of LRBench is saved here. A ValueError for another suffix; NotADirectoryError
    when a parent of ``path`` is a file."""
    from lrbench.reports.plots import figure_format

    fmt = figure_format(path)
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path.parent))
    meta = {"Software": None} if fmt == "png" else {"Creator": None, "Date": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=dpi, metadata=meta)
    return path


def figure_to_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse(notation: str) -> Policy | None:
    from lrbench.policies import parse

    try:
        return parse(notation)
    except (ValueError, TypeError):
        return None


def _group(results: Iterable[RunResult]) -> dict[str, list[RunResult]]:
    """Runs by canonical notation, first-seen order; failed runs are left out."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        if r.status == "failed":
            continue
        policy = _parse(r.policy)
        groups.setdefault(str(policy) if policy is not None else r.policy, []).append(r)
    return groups


def _canonical(notation: str) -> str:
    policy = _parse(notation)
    return str(policy) if policy is not None else notation


# -- LR steps -----------------------------------------------------------------------------
def lr_steps(policy: Policy, iters: int, ratio: float = 10.0) -> list[int]:
    """Iterations t in [1, iters] where the LR jumps: policy(t) differs from policy(t - 1) by
    more than ``ratio`` times the change at each neighbouring iteration (t - 1 and t + 1).

    This marks STEP's and NSTEP's drops and the switch points of composites where the LR
    jumps, and not the smooth change of EXP, INV, POLY or the cyclic functions. Computed from
    ``policy.values`` at every iteration 0..iters.
    """
    if iters < 1:
        return []
    v = policy.values(np.arange(iters + 1))
    d = np.abs(np.diff(v))  # d[i]: change from t = i to t = i + 1
    scale = float(np.max(np.abs(v))) or 1.0
    prev = np.concatenate(([0.0], d[:-1]))
    nxt = np.concatenate((d[1:], [0.0]))
    jump = (d > 1e-9 * scale) & (d > ratio * prev) & (d > ratio * nxt)
    return (np.nonzero(jump)[0] + 1).tolist()


# -- curves over seeds --------------------------------------------------------------------
def mean_curve(runs: Sequence[RunResult], field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, mean, population std) of a CurvePoint field over runs.

    Runs are aligned on iteration numbers; at each iteration the mean and std are over the
    runs that have a finite value there (a run that stopped early no longer counts).
    Iterations where no run has a finite value are dropped.
    """
    its = sorted({p.iteration for r in runs for p in r.curve})
    if not its:
        empty = np.array([], dtype=np.float64)
        return empty, empty, empty
    col = {it: j for j, it in enumerate(its)}
    grid = np.full((len(runs), len(its)), np.nan)
    for i, r in enumerate(runs):
        for p in r.curve:
            v = float(getattr(p, field))
            if math.isfinite(v):
                grid[i, col[p.iteration]] = v
    keep = np.isfinite(grid).any(axis=0)
    grid = grid[:, keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(grid, axis=0), np.nanstd(grid, axis=0)
    return np.asarray(its, dtype=np.float64)[keep], mean, std


def plot_learning_curves(
    results: Iterable[RunResult],
    order: Sequence[str] | None = None,
    path: str | Path | None = None,
    *,
    steps: bool = True,
    title: str | None = None,
) -> Figure:
    """Test top-1 (%) and test loss vs iteration, one line per policy (mean over seeds,
    shaded ± std), with a dotted vertical line in the policy's colour at each LR step
    (:func:`lr_steps`, up to the policy's last iteration; at most 50 per policy).

    ``order``: policy notations to show, in that order (e.g. the ranking); default: every
    policy in ``results``, first seen first. Failed runs are left out.
    """
    groups = _group(results)
    if order is not None:
        wanted = [_canonical(n) for n in order]
        groups = {n: groups[n] for n in wanted if n in groups}
    if not groups:
        raise ValueError("no runs to plot")
    fig = new_figure((8.0, 7.0))
    ax_acc, ax_loss = fig.subplots(2, 1, sharex=True)
    loss_values = []
    for (notation, runs), color in zip(groups.items(), _colors(len(groups))):
        label = short_label(notation)
        its, m, s = mean_curve(runs, "top1")
        if its.size:
            ax_acc.plot(its, 100 * m, color=color, lw=1.5, label=label)
            ax_acc.fill_between(its, 100 * (m - s), 100 * (m + s), color=color, alpha=0.2, lw=0)
        its_l, ml, sl = mean_curve(runs, "test_loss")
        if its_l.size:
            ax_loss.plot(its_l, ml, color=color, lw=1.5, label=label if not its.size else None)
            ax_loss.fill_between(its_l, ml - sl, ml + sl, color=color, alpha=0.2, lw=0)
            loss_values.append(ml)
        policy = _parse(notation)
        last = max((p.iteration for r in runs for p in r.curve), default=0)
        if steps and policy is not None and last > 0:
            for t in lr_steps(policy, last)[:MAX_STEP_LINES]:
                for ax in (ax_acc, ax_loss):
                    ax.axvline(t, color=color, ls=":", lw=1.0, alpha=0.8)
    if loss_values:  # keep a diverging run's huge losses from flattening the others
        allv = np.concatenate(loss_values)
        allv = allv[np.isfinite(allv)]
        if allv.size:
            hi = float(np.percentile(allv, 98))
            if float(allv.max()) > 5 * hi > 0:
                ax_loss.set_ylim(top=1.2 * hi)
    ax_acc.set_ylabel("test top-1 (%)")
    ax_loss.set_ylabel("test loss")
    ax_loss.set_xlabel("iteration")
    for ax in (ax_acc, ax_loss):
        ax.grid(True, alpha=0.3)
    ax_acc.set_title(title or "Learning curves (mean ± std over seeds; dotted: LR steps)")
    fig.legend(loc="outside lower center", fontsize="small", ncols=1 if len(groups) < 4 else 2)
    return _finish(fig, path)


# -- accuracy vs FIX LR (paper Fig. 3) ----------------------------------------------------
def _best_up_to(run: RunResult, length: int, field: str) -> float:
    vals = [
        float(getattr(p, field)) for p in run.curve
        if p.iteration <= length and math.isfinite(getattr(p, field))
    ]
    if vals:
        return max(vals)
    return 0.0 if run.status == "diverged" and run.iterations <= length else math.nan


def fix_sweep(
    results: Iterable[RunResult], lengths: Sequence[int] | None = None, accuracy: str = "top1"
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The data of :func:`plot_fix_sweep`: (sorted FIX k0 values, {L: mean accuracy per k0}).

    The accuracy of a run at length L is the best it measured at iterations <= L (a run that
    diverged before L without a finite value counts 0; a run not yet evaluated by L is left
    out), averaged over seeds. Default lengths: the evaluation iterations nearest 10 %, 25 %,
    50 % and 100 % of the longest FIX run.
    """
    if accuracy not in ("top1", "top5"):
        raise ValueError(f"accuracy must be 'top1' or 'top5', got {accuracy!r}")
    by_k0: dict[float, list[RunResult]] = {}
    for notation, runs in _group(results).items():
        policy = _parse(notation)
        if policy is not None and policy.kind == "fixed":
            by_k0.setdefault(float(policy.params["k0"]), []).extend(runs)
    if len(by_k0) < 2:
        raise ValueError(f"the FIX sweep needs runs of at least 2 FIX policies, got {len(by_k0)}")
    if lengths is None:
        its = sorted({p.iteration for runs in by_k0.values() for r in runs for p in r.curve})
        if not its:
            raise ValueError("the FIX runs have no evaluations")
        grid = np.asarray(its)
        fractions = (0.1, 0.25, 0.5, 1.0)
        lengths = sorted({int(grid[np.abs(grid - f * its[-1]).argmin()]) for f in fractions})
    lengths = [int(L) for L in lengths]
    if not lengths or any(L <= 0 for L in lengths):
        raise ValueError(f"lengths must be positive iteration counts, got {lengths!r}")
    k0s = np.array(sorted(by_k0))
    out = {}
    for L in lengths:
        means = []
        for k0 in k0s:
            vals = [v for v in (_best_up_to(r, L, accuracy) for r in by_k0[k0]) if math.isfinite(v)]
            means.append(float(np.mean(vals)) if vals else math.nan)
        out[L] = np.asarray(means)
    return k0s, out


def plot_fix_sweep(
    results: Iterable[RunResult],
    lengths: Sequence[int] | None = None,
    path: str | Path | None = None,
    *,
    iters_per_epoch: int | None = None,
    accuracy: str = "top1",
    title: str | None = None,
) -> Figure:
    """Accuracy (%) vs FIX LR value (log x axis), one line per training length L (paper
    Fig. 3): how well a short run predicts the ranking of a long one. See :func:`fix_sweep`.
    With ``iters_per_epoch``, lines are labelled in epochs too.
    """
    k0s, curves = fix_sweep(results, lengths, accuracy)
    fig = new_figure((7.0, 4.5))
    ax = fig.subplots()
    for (L, acc), color in zip(curves.items(), _colors(len(curves))):
        label = f"L = {L} iters"
        if iters_per_epoch:
            label = f"{L / iters_per_epoch:g} epochs ({L} iters)"
        ax.plot(k0s, 100 * acc, marker="o", color=color, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("FIX learning rate k0 (log scale)")
    ax.set_ylabel(f"best test {'top-1' if accuracy == 'top1' else 'top-5'} up to L (%)")
    ax.set_title(title or "Accuracy vs fixed LR at several training lengths")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, path)


# -- accuracy vs cost ---------------------------------------------------------------------
def _axis_label(metric: str) -> str:
    names = {
        "top1": "top-1 (%)", "top5": "top-5 (%)", "best_iter": "#Iter (iteration of best top-1)",
        "wall_time": "wall time (s)", "n_params": "#Param", "iterations": "iterations trained",
    }
    meta = METRICS[metric]
    direction = "higher is better" if meta.higher_is_better else "lower is better"
    return f"{names.get(metric, metric.upper())} — {direction}"


def _scale(metric: str) -> float:
    return 100.0 if metric in ("top1", "top5") else 1.0


def plot_pareto(
    stats: Sequence[PolicyStats],
    accuracy: str = "top1",
    cost: str = "best_iter",
    path: str | Path | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Accuracy vs cost: every policy (mean, with ± std error bars over seeds), the Pareto
    front (:func:`lrbench.ranking.pareto_front`) as a staircase, its points numbered on the
    plot and named in the legend (1 = cheapest)."""
    check_metric(accuracy)
    check_metric(cost)
    stats = [s for s in stats if math.isfinite(s.mean(accuracy)) and math.isfinite(s.mean(cost))]
    if not stats:
        raise ValueError(f"no policy has both {accuracy} and {cost} defined")
    front = pareto_front(stats, accuracy=accuracy, cost=cost)
    on_front = {id(s) for s in front}
    ya, xc = _scale(accuracy), _scale(cost)

    def xy(group):
        return (
            np.array([s.mean(cost) * xc for s in group]),
            np.array([s.mean(accuracy) * ya for s in group]),
            np.array([np.nan_to_num(s.std(cost)) * xc for s in group]),
            np.array([np.nan_to_num(s.std(accuracy)) * ya for s in group]),
        )

    fig = new_figure((7.5, 5.5 + 0.2 * len(front)))
    ax = fig.subplots()
    rest = [s for s in stats if id(s) not in on_front]
    if rest:
        x, y, ex, ey = xy(rest)
        ax.errorbar(x, y, xerr=ex, yerr=ey, fmt="o", color="0.55", ecolor="0.8", ms=5,
                    label="dominated")
    x, y, ex, ey = xy(front)
    ax.errorbar(x, y, xerr=ex, yerr=ey, fmt="o", color="tab:red", ecolor="mistyrose", ms=7,
                zorder=3, label="Pareto front")
    ax.plot(x, y, drawstyle="steps-post", color="tab:red", lw=1.2, alpha=0.8, zorder=2)
    # Front points are numbered on the plot and named in the legend (long notations next to
    # close points would overlap).
    for i, (s, xi, yi) in enumerate(zip(front, x, y), start=1):
        ax.annotate(str(i), (xi, yi), xytext=(5, 5), textcoords="offset points",
                    fontsize="small", fontweight="bold", color="darkred")
        ax.plot([], [], " ", label=f"{i}: {short_label(s.policy)}")
    ax.set_xlabel(_axis_label(cost))
    ax.set_ylabel(_axis_label(accuracy))
    ax.set_title(title or "Accuracy vs cost")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    first = [i for i, lab in enumerate(labels) if lab in ("Pareto front", "dominated")]
    order = first + [i for i in range(len(labels)) if i not in first]
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center",
               fontsize="small", ncols=1 if len(front) < 4 else 2)
    return _finish(fig, path)


__all__ = [
    "figure_to_png", "fix_sweep", "lr_steps", "mean_curve", "new_figure", "plot_fix_sweep",
    "plot_learning_curves", "plot_pareto", "save_figure", "short_label",
]
