"""``lrbench recommend``: policies for a task from the most similar tasks in the LR database.

    lrbench recommend --task T [--iters N] [--top N] [--max-tasks N]
                      [--scale-by iters|epochs] [--db URL] [--json]

Exit codes: 0 with recommendations; 1 when the database holds nothing to recommend from;
2 for bad input (one line on stderr).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any

import typer

from lrbench.cli import app, fail
from lrbench.cli.bench import DbOption, ItersOption, TaskOption, _open_store, _task_title

NO_RUNS = ("nothing to recommend from: the database has no runs; "
           "run `lrbench demo` or `lrbench run` first")
NO_USABLE = ("nothing to recommend from: no stored run finished without failing or diverging; "
             "run `lrbench run` first")


def _pct(x: float | None, std: float | None = None) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    text = f"{100 * x:.2f}"
    return text + (f" ± {100 * std:.2f}" if std is not None and math.isfinite(std) else "")


def _g(x: float | None) -> str:
    return "–" if x is None else f"{x:g}"


def _range(r: tuple[float, float] | None) -> str:
    return "–" if r is None else f"{r[0]:g} – {r[1]:g}"


def _ids(ids: tuple[int, ...], limit: int = 6) -> str:
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (f", … (+{len(ids) - limit})" if len(ids) > limit else "")


def _short(task: Any) -> str:
    return f"{task.dataset}/{task.model} {task.max_iters} it, b{task.batch_size}"


def _print_tables(rec: Any) -> None:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    tasks = Table(title=f"Similar tasks for {_task_title(rec.task)}", title_justify="left")
    for name, justify in (("#", "right"), ("task", "left"), ("optimizer", "left"),
                          ("similarity", "right"), ("why", "left"), ("best top-1 (%)", "right"),
                          ("LR range", "right"), ("good FIX", "right"), ("scale", "right")):
        tasks.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, s in enumerate(rec.similar_tasks, 1):
        best = s.best_policies[0] if s.best_policies else None
        tasks.add_row(str(i), _short(s.task), s.task.optimizer, f"{s.similarity:.3f}", s.why,
                      _pct(best.top1) if best else "–", _range(s.lr_range), _range(s.fix_range),
                      f"x{s.scale:g}")
    recs = Table(title="Recommended policies (best first)", title_justify="left")
    for name, justify in (("#", "right"), ("policy", "left"), ("top-1 (%)", "right"),
                          ("seeds", "right"), ("#Iter", "right"), ("from task", "left"),
                          ("similarity", "right"), ("rescaled from", "left"),
                          ("run ids", "left")):
        recs.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, r in enumerate(rec.recommendations, 1):
        e = r.evidence
        seeds = str(e.n_runs) + (f" ({e.n_diverged} diverged)" if e.n_diverged else "")
        recs.add_row(str(i), r.policy, _pct(e.top1, e.top1_std), seeds,
                     "–" if not math.isfinite(e.best_iter) else f"{e.best_iter:.0f}",
                     _short(r.source_task), f"{r.similarity:.3f}",
                     r.rescaled_from or (r.note or ""), _ids(e.run_ids))
    console = Console()
    if not console.is_terminal:  # a file or a pipe: as wide as the tables need
        need = max(Measurement.get(console, console.options.update_width(10_000), t).maximum
                   for t in (tasks, recs))
        console = Console(width=max(console.width, need))
    console.print(tasks)
    console.print(recs)
    for note in rec.notes:
        console.print(f"note: {note}")


@app.command("recommend")
def recommend_command(
    task: TaskOption = None,
    iters: ItersOption = None,
    top: Annotated[int, typer.Option("--top", metavar="N",
                   help="Recommend N policies (and list N per similar task).")] = 5,
    max_tasks: Annotated[int, typer.Option("--max-tasks", metavar="N",
                         help="Look at the N most similar stored tasks.")] = 5,
    scale_by: Annotated[str, typer.Option("--scale-by", metavar="iters|epochs",
                        help="Rescale iteration counts by training length or epoch length.")
                        ] = "iters",
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Policies for a task from similar tasks in the database, rescaled, with their runs."""
    from lrbench.tasks import get_task
    from lrbench.tuning.recommend import recommend

    if task is None:
        fail("--task is required, e.g. --task fashion-mnist-lenet")
    if top < 1:
        fail(f"--top must be >= 1, got {top}")
    if max_tasks < 1:
        fail(f"--max-tasks must be >= 1, got {max_tasks}")
    if scale_by not in ("iters", "epochs"):
        fail(f"--scale-by must be iters or epochs, got {scale_by!r}")
    if iters is not None and iters < 1:
        fail(f"--iters must be >= 1, got {iters}")
    target = get_task(task, **({"max_iters": iters} if iters is not None else {}))
    store = _open_store(db)
    try:
        rec = recommend(store, target, top=top, max_tasks=max_tasks,
                        scale_by=scale_by)  # type: ignore[arg-type]
        if not rec.recommendations:
            by_status = store.counts()["runs_by_status"]
            finished = sum(by_status.get(s, 0) for s in ("done", "diverged", "failed"))
            print(f"lrbench: {NO_USABLE if finished else NO_RUNS}", file=sys.stderr)
            raise typer.Exit(1)
    finally:
        store.close()
    if as_json:
        print(json.dumps(rec.to_dict()))
    else:
        _print_tables(rec)
