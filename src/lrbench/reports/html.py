"""One self-contained HTML report of a benchmark: nothing is fetched when it is opened.

Inline CSS, every figure an inline ``data:image/png;base64`` URI, no script, no external URL.
Sections: the task, the ranking, the Table VII metrics table, the LR schedules
(:func:`lrbench.reports.plots.plot_schedules`), the learning curves, the accuracy vs FIX LR
plot (when the runs hold at least two FIX policies), the accuracy vs cost plot with its Pareto
front, and the table's data as JSON. Readable on a phone: a viewport meta tag, figures that
shrink to the screen, and wide tables that scroll sideways inside their own box.
Every piece of text is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lrbench.ranking import PolicyStats, Ranked
from lrbench.reports import figures, tables
from lrbench.results import RunResult
from lrbench.tasks import Task

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Plots show at most this many policies (the best ranked); the tables show all of them.
MAX_PLOTTED = 10

CSS = """
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --head: #f3f4f6;
        --accent: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 1.6rem; margin: 0.2rem 0 0.3rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.6rem; padding-bottom: 0.2rem;
     border-bottom: 1px solid var(--line); }
p.meta, figcaption, .note { color: var(--muted); font-size: 0.9rem; }
code { font: 0.88em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       overflow-wrap: anywhere; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%;
          border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; font-size: 0.88rem; width: max-content; min-width: 100%; }
th, td { padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; vertical-align: top; }
th { background: var(--head); position: sticky; top: 0; }
td.text, th.text { text-align: left; }
td.notation { white-space: normal; min-width: 12rem; max-width: 18rem; text-align: left; }
small.div { display: block; }
tr.tied td.pos::after { content: " ="; color: var(--muted); }
tr.diverged td { color: var(--accent); }
div.task { display: inline-block; }
table.task { width: auto; min-width: 0; }
table.task th { text-align: left; position: static; }
figure { margin: 1rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
             border-radius: 6px; }
details pre { overflow-x: auto; background: var(--head); padding: 0.6rem; border-radius: 6px;
              font-size: 0.8rem; }
@media (max-width: 600px) {
  body { padding: 0.6rem; font-size: 14px; }
  h1 { font-size: 1.3rem; }
  th, td { padding: 0.3rem 0.45rem; }
}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _close(fig: Any) -> None:
    """Release a figure that pyplot may be tracking (plot_schedules may use pyplot)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def _img(fig: Figure, alt: str, caption: str, dpi: int = 110) -> str:
    png = figures.figure_to_png(fig, dpi=dpi)
    _close(fig)
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


# -- sections -----------------------------------------------------------------------------
def _task_section(task_description: Task | Mapping[str, Any] | str) -> str:
    if isinstance(task_description, Task):
        items = {k: v for k, v in task_description.model_dump().items() if v is not None}
    elif isinstance(task_description, Mapping):
        items = dict(task_description)
    else:
        return f"<p>{_e(task_description)}</p>"
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td class='text'>{_e(v)}</td></tr>" for k, v in items.items()
    )
    return f'<div class="scroll task"><table class="task">{rows}</table></div>'


def _ranking_section(ranked: list[Ranked], ranked_by: str | None) -> str:
    head = (
        "<tr><th>#</th><th class='text'>policy</th><th>score</th><th>± spread</th>"
        "<th>#Param</th><th>runs</th><th>diverged</th><th>failed</th></tr>"
    )
    body = []
    for r in ranked:
        s = r.stats
        cls = ["tied"] if r.tied_with_previous else []
        if s.n_runs and s.n_diverged == s.n_runs:
            cls.append("diverged")
        score = f"{r.score:.6g}" if math.isfinite(r.score) else tables.UNDEFINED
        spread = f"{r.spread:.3g}" if math.isfinite(r.spread) else tables.UNDEFINED
        body.append(
            f"<tr class='{' '.join(cls)}'><td class='pos'>{r.position}</td>"
            f"<td class='notation'><code>{_e(s.policy)}</code></td><td>{_e(score)}</td>"
            f"<td>{_e(spread)}</td><td>{s.n_params}</td><td>{s.n_runs}</td>"
            f"<td>{s.n_diverged}</td><td>{s.n_failed}</td></tr>"
        )
    how = f"Ranked by {_e(ranked_by)}. " if ranked_by else ""
    note = (
        f"<p class='note'>{how}Entries whose scores differ by no more than their spread over "
        "seeds share a position (marked =).</p>"
    )
    return note + f'<div class="scroll"><table class="ranking">{head}{"".join(body)}</table></div>'


def table_vii_html(entries: Sequence[PolicyStats] | Sequence[Ranked]) -> str:
    """The Table VII layout as an HTML table (escaped), inside a horizontally scrolling box."""
    text_cols = {"LR"}
    head = "".join(
        f"<th class='text'>{_e(c)}</th>" if c in text_cols else f"<th>{_e(c)}</th>"
        for c in tables.COLUMNS
    )
    body = []
    for row in tables.table_rows(entries):
        cells = tables.display_row(row)
        tds = []
        for c in tables.COLUMNS:
            if c == "LR":
                cls = "notation" if row["lr"] == row["policy"] else "text"  # composite: notation
                tds.append(
                    f"<td class='{cls}' title='{_e(row['policy'])}'>"
                    f"<code>{_e(cells[c])}</code></td>"
                )
            elif c == "#":
                tds.append(f"<td class='pos'>{_e(cells[c])}</td>")
            elif c == "Top-1 (%)" and row["n_diverged"]:  # the divergence count on its own line
                value, _, note = cells[c].partition(" (")
                tds.append(f"<td>{_e(value)}<small class='div'>({_e(note)}</small></td>")
            else:
                tds.append(f"<td>{_e(cells[c])}</td>")
        cls = ["tied"] if row["tied"] else []
        if row["n_runs"] and row["n_diverged"] == row["n_runs"]:
            cls.append("diverged")
        body.append(f"<tr class='{' '.join(cls)}'>{''.join(tds)}</tr>")
    table = f'<table class="table-vii"><tr>{head}</tr>{"".join(body)}</table>'
    return f'<div class="scroll">{table}</div>'


@dataclass(frozen=True)
class ReportFigure:
    """One figure of a report: its file stem, section heading, alt text and caption."""

    name: str
    heading: str
    alt: str
    caption: str
    figure: Figure


def _schedule_figure(notations: list[str], iters: int) -> ReportFigure | None:
    from lrbench.policies import parse
    from lrbench.reports.plots import plot_schedules

    policies = []
    for n in notations:
        try:
            policies.append(parse(n))
        except (ValueError, TypeError):
            continue
    if not policies or iters < 1:
        return None
    highs = [p.bounds[1] for p in policies]
    lows = [p.bounds[0] for p in policies if p.bounds[0] > 0]
    log = bool(lows) and max(highs) / min(lows) > 100
    fig = plot_schedules(policies, iters, log=log)
    return ReportFigure(
        "schedules", "LR schedules", "LR schedules of the ranked policies",
        f"LR value vs iteration for the {len(policies)} best-ranked policies"
        + (" (log scale)" if log else "") + ".", fig,
    )


def report_figures(
    ranked: Sequence[PolicyStats] | Sequence[Ranked],
    results: Iterable[RunResult] = (),
    *,
    iters: int,
    iters_per_epoch: int | None = None,
    accuracy: str = "top1",
    cost: str = "best_iter",
    max_plotted: int = MAX_PLOTTED,
) -> list[ReportFigure]:
    """The report's figures, in report order: LR schedules, learning curves (paper Fig. 5),
    accuracy vs FIX LR (paper Fig. 3; only with two or more FIX policies) and accuracy vs cost
    with the Pareto front. A figure the data cannot support is left out."""
    entries = tables.as_ranked(ranked)
    shown = [r.stats.policy for r in entries][: max(1, max_plotted)]
    out: list[ReportFigure] = []
    if entries:
        sched = _schedule_figure(shown, int(iters))
        if sched is not None:
            out.append(sched)
    in_results = [r for r in results if r.status != "failed"]
    if in_results:
        try:
            out.append(ReportFigure(
                "curves", "Learning curves", "Test accuracy and loss vs iteration",
                "Mean over seeds, shaded ± std; dotted vertical lines mark LR steps.",
                figures.plot_learning_curves(in_results, order=shown)))
        except ValueError:
            pass
        try:
            out.append(ReportFigure(
                "fix_sweep", "Accuracy vs FIX learning rate",
                "Accuracy vs fixed LR at several training lengths",
                "Best accuracy reached by iteration L, mean over seeds, one line per L"
                " (paper Fig. 3).",
                figures.plot_fix_sweep(in_results, iters_per_epoch=iters_per_epoch)))
        except ValueError:  # fewer than two FIX policies
            pass
    if entries:
        try:
            out.append(ReportFigure(
                "pareto", "Accuracy vs cost", "Accuracy vs cost with the Pareto front",
                f"{accuracy} vs {cost}, mean ± std over seeds; the numbered points are"
                " the Pareto front (no other policy is both more accurate and cheaper).",
                figures.plot_pareto([r.stats for r in entries], accuracy=accuracy, cost=cost)))
        except ValueError:
            pass
    return out


def save_report_figures(directory: str | Path, figs: Sequence[ReportFigure],
                        suffix: str = ".png") -> list[Path]:
    """Save each figure as ``directory/<name><suffix>`` (PNG or SVG); return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in figs:
        paths.append(figures.save_figure(f.figure, directory / f"{f.name}{suffix}"))
        _close(f.figure)
    return paths


def render_html_report(
    task_description: Task | Mapping[str, Any] | str,
    ranked: Sequence[PolicyStats] | Sequence[Ranked],
    results: Iterable[RunResult] = (),
    *,
    title: str = "LRBench report",
    ranked_by: str | None = None,
    iters: int | None = None,
    iters_per_epoch: int | None = None,
    accuracy: str = "top1",
    cost: str = "best_iter",
    max_plotted: int = MAX_PLOTTED,
) -> str:
    """The report as one HTML string; see :func:`write_html_report`."""
    entries = tables.as_ranked(ranked)
    results = list(results)
    if iters is None:
        if isinstance(task_description, Task):
            iters = task_description.max_iters
        else:
            iters = max((r.iterations for r in results), default=0)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from lrbench import __version__

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='meta'>LRBench {_e(__version__)} · {_e(now)} · {len(entries)} policies,"
        f" {len(results)} runs</p>",
        "<h2>Task</h2>",
        _task_section(task_description),
        "<h2>Ranking</h2>",
        _ranking_section(entries, ranked_by) if entries else "<p>No policies.</p>",
        "<h2>Metrics (paper Table VII layout)</h2>",
        "<p class='note'>Means over seeds; Top-1 ± population std. #Iter: iteration of the best"
        " Top-1. LD: test loss − train loss. AC / CD / CDAC: average confidence, confidence"
        " deviation, confidence deviation across classes.</p>",
        table_vii_html(entries),
    ]

    plots: list[str] = []
    for f in report_figures(entries, results, iters=int(iters), iters_per_epoch=iters_per_epoch,
                            accuracy=accuracy, cost=cost, max_plotted=max_plotted):
        plots += [f"<h2>{_e(f.heading)}</h2>", _img(f.figure, f.alt, f.caption)]
    parts += plots
    parts += [
        "<h2>Data</h2><details><summary>Table rows as JSON</summary>",
        f"<pre>{_e(tables.to_json(entries))}</pre></details>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html_report(
    path: str | Path,
    task_description: Task | Mapping[str, Any] | str,
    ranked: Sequence[PolicyStats] | Sequence[Ranked],
    results: Iterable[RunResult] = (),
    *,
    title: str = "LRBench report",
    ranked_by: str | None = None,
    iters: int | None = None,
    iters_per_epoch: int | None = None,
    accuracy: str = "top1",
    cost: str = "best_iter",
    max_plotted: int = MAX_PLOTTED,
) -> Path:
    """Write the self-contained report to ``path`` (UTF-8) and return the path.

    ``task_description``: a Task (shown field by field), a mapping, or free text.
    ``ranked``: :func:`lrbench.ranking.rank` output (shown in that order) or PolicyStats
    (ranked by top-1). ``results``: the runs, for the learning curves and the FIX plot.
    ``ranked_by``: how the ranking was made, in words (shown above it). ``iters``: the
    schedule plot's length (default: the task's max_iters, else the longest run).
    Plots show the ``max_plotted`` best-ranked policies; the tables show all.
    """
    text = render_html_report(
        task_description, ranked, results, title=title, ranked_by=ranked_by, iters=iters,
        iters_per_epoch=iters_per_epoch, accuracy=accuracy, cost=cost, max_plotted=max_plotted,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
