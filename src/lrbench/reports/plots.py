"""LR schedule plots: the learning rate of one or more policies against the iteration.

:func:`plot_schedules` draws LR vs iteration for several policies on one axis, each labelled
with its notation, and returns the ``matplotlib.figure.Figure`` (saved as PNG or SVG when given
a path). matplotlib is imported inside the functions, and the figure is drawn on an Agg canvas
outside pyplot: no display, no global state.

Every point drawn is an exact ``(t, policy(t))``. Up to :data:`EXACT_POINTS` iterations, each
one is evaluated; a long schedule is reduced for drawing by keeping, in each of
:data:`BINS` consecutive ranges of iterations, the iterations with the lowest and the highest
LR, so that short cycles and single-iteration drops still show at their true height.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lrbench.policies import Composite, Policy, parse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Figure formats :func:`plot_schedules` writes, chosen by the path's suffix.
FORMATS = ("png", "svg")
#: How many ranges of iterations a long schedule is reduced to (two points each).
BINS = 2000
#: Up to this many iterations every one is evaluated; beyond, an even sample of this many.
EXACT_POINTS = 2_000_000
#: Legend labels are wrapped at this many characters.
LABEL_WIDTH = 80


def figure_format(path: str | Path) -> str:
    """``"png"`` or ``"svg"`` from the path's suffix (any case); a ValueError otherwise."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"the figure file must end in .png or .svg, got {str(path)!r}"
        )
    return fmt


def check_iters(iters: object) -> int:
    """The number of iterations to plot: a whole number >= 1 (2000.0 is accepted as 2000)."""
    if isinstance(iters, bool) or not isinstance(iters, (int, float, np.integer, np.floating)):
        raise ValueError(f"iters must be a positive whole number of iterations, got {iters!r}")
    if isinstance(iters, (float, np.floating)):
        if not (math.isfinite(iters) and float(iters).is_integer()):
            raise ValueError(f"iters must be a positive whole number of iterations, got {iters!r}")
    if iters < 1:
        raise ValueError(f"iters must be a positive whole number of iterations, got {iters!r}")
    return int(iters)


def schedule_points(policy: Policy, iters: int, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """The iterations and LRs to draw for ``policy`` over ``t = 0 .. iters - 1``.

    Every iteration when ``iters <= 2 * bins``. Otherwise the iterations are split into ``bins``
    consecutive ranges and, in each, the ones with the lowest and the highest LR are kept (in
    iteration order, with the first and the last iteration). Every iteration is looked at up to
    :data:`EXACT_POINTS` iterations; beyond, each range is sampled by a run of consecutive
    iterations at its start (which holds whole cycles of a short period) and an even stride
    across it (which follows longer ones), :data:`EXACT_POINTS` in all.
    """
    iters = check_iters(iters)
    if iters <= 2 * bins:
        ts = np.arange(iters, dtype=np.float64)
        return ts, policy.values(ts)
    width = iters / bins  # range b holds iterations floor(b * width) .. floor((b + 1) * width) - 1
    starts = np.floor(np.arange(bins) * width)
    ends = np.minimum(np.floor((np.arange(bins) + 1) * width) - 1, iters - 1)
    if iters <= EXACT_POINTS:
        offsets = np.arange(math.ceil(width), dtype=np.float64)
    else:
        per_bin = EXACT_POINTS // bins
        offsets = np.concatenate([
            np.arange(per_bin // 2, dtype=np.float64),
            np.floor(np.linspace(0.0, width, per_bin - per_bin // 2, endpoint=False)),
        ])
    grid = np.minimum(starts[:, None] + offsets[None, :], ends[:, None])
    lrs = policy.values(grid.ravel()).reshape(grid.shape)
    rows = np.arange(bins)
    lo = grid[rows, np.argmin(lrs, axis=1)]
    hi = grid[rows, np.argmax(lrs, axis=1)]
    ts = np.unique(np.concatenate([lo, hi, [0.0, float(iters - 1)]]))
    return ts, policy.values(ts)


def _iteration_tick(x: float, _pos: object = None) -> str:
    """Tick label of the iteration axis: ``60,000``, ``20M``, ``1.5M``."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.6g}M"
    return f"{x:,.0f}"


def _label(policy: Policy) -> str:
    return textwrap.fill(str(policy), LABEL_WIDTH, subsequent_indent="    ")


def _as_policy(item: Policy | str) -> Policy:
    if isinstance(item, Policy):
        return item
    if isinstance(item, str):
        return parse(item)
    raise ValueError(f"expected a policy or its notation, got {item!r}")


def plot_schedules(
    policies: Sequence[Policy | str] | Policy | str,
    iters: int,
    path: str | Path | None = None,
    log: bool = False,
    title: str | None = None,
) -> Figure:
    """LR vs iteration ``t = 0 .. iters - 1`` of each policy, overlaid, labelled by notation.

    ``policies``: policies or their notation. ``log``: a logarithmic LR axis (an LR of 0 cannot
    be drawn there and is left out of the line). A composite's switch points are marked with a
    dotted vertical line in its colour. Given ``path`` (``.png`` or ``.svg``), the figure is
    also saved there (missing parent folders are made); an OSError if it cannot be written.

    >>> from lrbench.policies import STEP
    >>> fig = plot_schedules([STEP(k0=0.1, gamma=0.5, l=100)], 500)
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['STEP(k0=0.1, gamma=0.5, l=100)']
    """
    if isinstance(policies, (Policy, str)):
        policies = [policies]
    policies = [_as_policy(p) for p in policies]
    if not policies:
        raise ValueError("give at least one policy to plot")
    iters = check_iters(iters)
    if path is not None:
        figure_format(path)  # a bad suffix fails before drawing

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    labels = [_label(p) for p in policies]
    label_lines = sum(label.count("\n") + 1 for label in labels)
    fig = Figure(figsize=(10.0, 5.0 + 0.24 * label_lines), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    colors = [f"C{i % 10}" for i in range(len(policies))]
    styles = ["-", "--", "-.", ":"]
    any_positive = False
    for i, (policy, label) in enumerate(zip(policies, labels)):
        ts, lrs = schedule_points(policy, iters)
        if log:
            lrs = np.where(lrs > 0, lrs, np.nan)
            any_positive = any_positive or bool(np.any(lrs > 0))
        marker = "o" if ts.size <= 60 else None
        ax.plot(ts, lrs, color=colors[i], linestyle=styles[(i // 10) % len(styles)],
                linewidth=1.6, marker=marker, markersize=3, label=label)
        if isinstance(policy, Composite):
            for start in policy.starts[1:]:
                if 0 < start < iters:
                    ax.axvline(start, color=colors[i], linestyle=":", linewidth=0.9, alpha=0.7)

    if log and any_positive:
        ax.set_yscale("log")
    elif not log:
        ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(iters - 1, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(_iteration_tick))
    ax.set_xlabel("iteration t")
    ax.set_ylabel("learning rate" + (" (log scale)" if log else ""))
    if title is None:
        title = "Learning-rate schedule" + ("s" if len(policies) > 1 else "")
        title += f" over {iters:,} iteration" + ("s" if iters != 1 else "")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.35)
    if log:
        ax.grid(True, which="minor", alpha=0.12)
    fig.legend(loc="outside lower center", ncols=1, fontsize="small", frameon=False)

    if path is not None:
        from lrbench.reports.figures import save_figure

        save_figure(fig, path)
    return fig
