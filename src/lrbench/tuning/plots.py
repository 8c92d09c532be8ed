"""Plots of the LR range tests (matplotlib, drawn on an Agg canvas outside pyplot).

:func:`plot_fix_range`: mean top-1 (± std over seeds) against the FIX LR on a log axis, diverged
LRs marked with a cross at the bottom, the good FIX range shaded, the suggested cyclic k0 and k1
as dashed lines. :func:`plot_smith_range`: the raw and the smoothed training loss against the LR
on a log axis, the suggested lower / upper bounds as dashed lines, the minimum and the steepest
point marked. Both return the ``Figure`` and save it when given a ``.png`` / ``.svg`` path.
The result objects' ``plot(path)`` methods call them.

>>> from lrbench.tuning import SmithRangeResult
>>> r = SmithRangeResult.from_sweep([1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.5, 0.5, 3.0], start_lr=1e-3,
...     end_lr=1.0, iters=4, beta=0.0, diverge_factor=4.0, ratio=10.0, stop_reason="end")
>>> fig = plot_smith_range(r)
>>> fig.axes[0].get_xscale()
'log'
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrbench.reports.figures import save_figure
from lrbench.reports.plots import figure_format

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrbench.tuning.rangetest import FixRangeResult, SmithRangeResult

__all__ = ["plot_fix_range", "plot_smith_range"]


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: str | Path | None) -> None:
    if path is not None:
        save_figure(fig, path)


def _vline(ax: Axes, x: float | None, label: str, color: str) -> None:
    if x is not None and x > 0:
        ax.axvline(x, color=color, linestyle="--", linewidth=1.2, label=f"{label} = {x:.3g}")


def _task_label(task: object) -> str:
    if task is None:
        return ""
    name = getattr(task, "preset", None) or (
        f"{getattr(task, 'dataset', '?')} / {getattr(task, 'model', '?')}")
    return f" — {name}"


def plot_fix_range(result: FixRangeResult, path: str | Path | None = None) -> Figure:
    """Top-1 vs FIX LR of the paper's range test (see the module doc)."""
    if path is not None:
        figure_format(path)  # a bad suffix fails before drawing
    fig, ax = _figure()
    pts = result.points
    lrs = np.array([p.lr for p in pts], dtype=np.float64)
    top1 = np.array([p.top1 for p in pts], dtype=np.float64)
    std = np.array([p.top1_std for p in pts], dtype=np.float64)
    if result.good_range is not None:
        lo, hi = result.good_range
        ax.axvspan(lo, hi, color="C2", alpha=0.15,
                   label=f"good FIX range [{lo:g}, {hi:g}]")
    finite = np.isfinite(top1)
    ax.errorbar(lrs[finite], top1[finite], yerr=np.nan_to_num(std[finite]), color="C0",
                marker="o", markersize=4, linewidth=1.5, capsize=3,
                label=f"top-1 after {result.iters:,} iterations"
                + (f" (mean of {len(result.seeds)} seeds)" if len(result.seeds) > 1 else ""))
    bad = [p.lr for p in pts if p.status in ("diverged", "failed") or not math.isfinite(p.top1)]
    if bad:
        ax.plot(bad, [0.0] * len(bad), linestyle="none", marker="x", color="C3", markersize=8,
                label="diverged")
    unstable = [(p.lr, p.top1) for p in pts if p.status == "unstable" and math.isfinite(p.top1)]
    if unstable:
        ax.plot(*zip(*unstable), linestyle="none", marker="s", markerfacecolor="none",
                color="C3", markersize=9, label="some seeds diverged")
    if result.best_lr is not None and result.best_top1 is not None:
        ax.plot([result.best_lr], [result.best_top1], marker="*", color="C1", markersize=14,
                linestyle="none", label=f"best FIX {result.best_lr:g}")
    _vline(ax, result.k0, "cyclic k0", "C4")
    _vline(ax, result.k1, "cyclic k1", "C5")
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("FIX learning rate k0 (log scale)")
    ax.set_ylabel("top-1 accuracy")
    ax.set_title("LR range test: FIX values" + _task_label(result.task))
    return _finish(fig, ax, path)


def _finish(fig: Figure, ax: Any, path: str | Path | None) -> Figure:
    """Grid lines, the legend when something is labelled, saved to ``path`` if given."""
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    _save(fig, path)
    return fig


def plot_smith_range(result: SmithRangeResult, path: str | Path | None = None) -> Figure:
    """Loss vs LR of Smith's range test (see the module doc)."""
    if path is not None:
        figure_format(path)
    fig, ax = _figure()
    lrs = np.array(result.lrs, dtype=np.float64)
    raw = np.array(result.losses, dtype=np.float64)
    smooth = np.array(result.smoothed, dtype=np.float64)
    ok = np.isfinite(smooth)
    if lrs.size:
        ax.plot(lrs[np.isfinite(raw)], raw[np.isfinite(raw)], color="C0", alpha=0.3,
                linewidth=1.0, label="training loss")
        ax.plot(lrs[ok], smooth[ok], color="C0", linewidth=2.0,
                label=f"smoothed (beta={result.beta:g})")
    if result.lr_min_loss is not None and result.min_loss is not None:
        ax.plot([result.lr_min_loss], [result.min_loss], marker="o", color="C1",
                linestyle="none", markersize=8, label=f"minimum at {result.lr_min_loss:.3g}")
    if result.lr_steepest is not None and lrs.size:
        i = int(np.argmin(np.abs(np.log(lrs) - math.log(result.lr_steepest))))
        ax.plot([lrs[i]], [smooth[i]], marker="v", color="C2", linestyle="none", markersize=9,
                label=f"steepest at {result.lr_steepest:.3g}")
    _vline(ax, result.k0, "lower k0", "C4")
    _vline(ax, result.k1, "upper k1", "C5")
    if ok.any():  # keep the blow-up at the end from squashing the curve
        low = float(np.min(smooth[ok]))
        top = float(np.max(smooth[ok]))
        if result.diverge_factor is not None and low > 0:
            top = min(top, result.diverge_factor * low)
        top = max(top, float(smooth[ok][0]))
        pad = 0.05 * (top - low) + 1e-9 * max(1.0, abs(top))
        ax.set_ylim(low - pad, top + pad)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(f"LR range test (Smith): {len(result.losses)} iterations, "
                 f"{result.start_lr:g} to {result.end_lr:g}" + _task_label(result.task))
    return _finish(fig, ax, path)
