"""The web pages: server-side rendered HTML (Jinja2), no scripts, readable on a phone.

    /                     the tasks
    /tasks/{key}          a task's leaderboard (paper Table VII layout; a column's heading
                          sorts by it) with its learning curves, and a form to compare policies
    /runs/{id}            one run: its learning curves, its LR schedule and its curve points
    /compare?task=K&p=..  chosen policies side by side: metrics, curves and schedules

Plots are PNGs rendered by matplotlib at their own URLs (``.../curves.png``,
``.../schedule.png``), cached per task state, so a page is only HTML and arrives fast.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from lrbench.server import queries
from lrbench.server.api import Key, MetricText, RunId, StoreDep, find_task, task_list
from lrbench.store import task_key

router = APIRouter(include_in_schema=False)

#: Table VII's metric columns and the metric each sorts by
SORTABLE = {"#Iter": "best_iter", "LD": "ld", "Top-1 (%)": "top1", "Top-5 (%)": "top5",
            "AC": "ac", "CD": "cd", "CDAC": "cdac"}
MAX_COMPARED = 6
PolicyList = Annotated[list[str], Query(alias="p", max_length=MAX_COMPARED)]

_env: Any = None
_render_lock = threading.Lock()
PNG_CACHE_SIZE = 256


def _templates() -> Any:
    global _env
    if _env is None:
        from jinja2 import Environment, PackageLoader, select_autoescape

        _env = Environment(loader=PackageLoader("lrbench.server", "templates"),
                           autoescape=select_autoescape(["html"]), trim_blocks=True,
                           lstrip_blocks=True)
        _env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.2f}"
        _env.filters["num"] = _num
        _env.filters["short"] = lambda k: k[:10]
    return _env


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.{digits}g}"
    return str(v)


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status)


def not_found(request: Request, detail: str) -> HTMLResponse:
    return page("error.html", status=404, title="Not found", detail=detail)


def _png(request: Request, key: tuple[Any, ...], draw: Any) -> Response:
    """The PNG of ``draw()`` (a Figure), cached under ``key`` in this app's PNG cache."""
    from lrbench.reports.figures import figure_to_png

    cache: OrderedDict[tuple[Any, ...], bytes] = request.app.state.pngs
    png = cache.get(key)
    if png is None:
        with _render_lock:  # matplotlib is not thread-safe; the threadpool runs handlers
            png = figure_to_png(draw(), dpi=100)
        cache[key] = png
        while len(cache) > PNG_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=60"})


def _state(store: Any, key: str) -> tuple[Any, ...]:
    """What a task's plots depend on: its run count and last finished run."""
    found = store.task_overview(key=key)
    s = found[0] if found else None
    return (key, s.runs if s else 0, s.last_finished if s else None)


FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" '
           'height="16" rx="3" fill="#16324f"/><path d="M2 12 L5 5 L8 10 L11 3 L14 9" '
           'stroke="#fff" stroke-width="1.6" fill="none"/></svg>')


@router.get("/favicon.svg")
@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml",
                    headers={"Cache-Control": "max-age=86400"})


@router.get("/", response_class=HTMLResponse)
def tasks_page(request: Request, store: StoreDep) -> HTMLResponse:
    return page("tasks.html", title="Tasks", tasks=task_list(request, store, 500))


@router.get("/tasks/{key}", response_class=HTMLResponse)
def leaderboard_page(request: Request, store: StoreDep, key: Key, by: MetricText = None,
                     weights: MetricText = None,
                     lexicographic: MetricText = None,
                     top: Annotated[int, Query(ge=1, le=queries.MAX_ROWS)] = 50,
                     min_runs: Annotated[int, Query(ge=1, le=1000)] = 1) -> HTMLResponse:
    from lrbench.reports import tables

    task = find_task(store, key)
    try:
        ranked, how, more = request.app.state.cache.leaderboard(
            store, key, task, by=by, weights=weights, lexicographic=lexicographic, top=top,
            min_runs=min_runs)
    except ValueError as e:
        return page("error.html", status=400, title="Bad ranking option", detail=str(e))
    rows = tables.table_rows(ranked)
    cells = [tables.display_row(r) for r in rows]
    cache = request.app.state.cache
    shown = tuple(r["policy"] for r in rows)
    runs = cache.get((key, "run ids", shown),
                     lambda: queries.run_ids_by_policy(store, task, shown))
    query = {k: v for k, v in (("by", by), ("weights", weights), ("lexicographic", lexicographic))
             if v}
    summary = cache.get((key, "summary"), lambda: store.task_overview(key=key)[0])
    return page("leaderboard.html", title=f"{task.dataset} / {task.model}", task=task, key=key,
                summary=summary, rows=list(zip(rows, cells)), columns=tables.COLUMNS,
                sortable=SORTABLE, ranked_by=how, current=by or ("" if query else "top1"),
                runs=runs, query=query, more_tied=more)


@router.get("/tasks/{key}/curves.png")
def leaderboard_curves(request: Request, store: StoreDep, key: Key, by: MetricText = None,
                       weights: MetricText = None, lexicographic: MetricText = None) -> Response:
    from lrbench.reports.figures import plot_learning_curves

    task = find_task(store, key)
    ranked, _, _ = request.app.state.cache.leaderboard(
        store, key, task, by=by, weights=weights, lexicographic=lexicographic,
        top=queries.MAX_PLOTTED, min_runs=1)
    order = [r.stats.policy for r in ranked][:queries.MAX_PLOTTED]
    if not order:
        raise HTTPException(404, "this task has no finished runs to plot")

    def draw() -> Any:
        runs = queries.runs_of_policies(store, task, order)
        return plot_learning_curves(runs, order, title=f"Top {len(order)}: learning curves "
                                                      "(mean ± std over seeds)")

    return _png(request, ("board", *_state(store, key), by, weights, lexicographic), draw)


def _load_run(store: Any, run_id: int) -> Any:
    result = store.load(run_id)
    if result is None:
        raise HTTPException(404, f"no finished run with id {run_id}")
    return result


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(store: StoreDep, run_id: RunId) -> HTMLResponse:
    result = _load_run(store, run_id)
    return page("run.html", title=f"Run {run_id}", run_id=run_id, run=result,
                summary=result.summary(), key=task_key(result.task))


@router.get("/runs/{run_id}/curves.png")
def run_curves(request: Request, store: StoreDep, run_id: RunId) -> Response:
    from lrbench.reports.figures import plot_learning_curves

    result = _load_run(store, run_id)
    if not result.curve:
        raise HTTPException(404, "this run has no curve points")
    return _png(request, ("run", run_id, result.iterations, len(result.curve)),
                lambda: plot_learning_curves([result], title=f"Run {run_id}: learning curves"))


@router.get("/runs/{run_id}/schedule.png")
def run_schedule(request: Request, store: StoreDep, run_id: RunId) -> Response:
    from lrbench.reports.plots import plot_schedules

    result = _load_run(store, run_id)
    return _png(request, ("sched", result.policy, result.task.max_iters),
                lambda: plot_schedules([result.policy], result.task.max_iters,
                                       title="LR schedule"))


def _compared(store: Any, task_arg: str, policies: list[str]) -> tuple[Any, list[str]]:
    import re

    from lrbench.store import canonical_policy

    if not re.fullmatch(r"[0-9a-f]{64}", task_arg):
        raise ValueError("task must be a task key (64 hex digits)")
    task = find_task(store, task_arg)
    wanted: list[str] = []
    for p in policies:
        notation = str(canonical_policy(p))
        if notation not in wanted:
            wanted.append(notation)
    return task, wanted


@router.get("/compare", response_class=HTMLResponse)
def compare_page(store: StoreDep, task: Annotated[str, Query(max_length=64)],
                 policies: PolicyList = []) -> HTMLResponse:  # noqa: B006 (FastAPI default)
    from lrbench.ranking import from_aggregates
    from lrbench.reports import tables

    try:
        t, wanted = _compared(store, task, policies)
    except ValueError as e:
        return page("error.html", status=400, title="Bad comparison", detail=str(e))
    stats = from_aggregates(store.aggregates(t, policies=wanted)) if wanted else []
    by_policy = {s.policy: s for s in stats}
    chosen = [by_policy[p] for p in wanted if p in by_policy]
    rows = tables.table_rows(chosen)
    cells = [tables.display_row(r) for r in rows]
    return page("compare.html", title="Compare policies", task=t, key=task,
                columns=[c for c in tables.COLUMNS if c not in ("#", "LR")],
                rows=list(zip(rows, cells)), policies=[s.policy for s in chosen],
                missing=[p for p in wanted if p not in by_policy])


@router.get("/compare/curves.png")
def compare_curves(request: Request, store: StoreDep, task: Annotated[str, Query(max_length=64)],
                   policies: PolicyList = []) -> Response:  # noqa: B006
    from lrbench.reports.figures import plot_learning_curves

    t, wanted = _compared(store, task, policies)
    runs = queries.runs_of_policies(store, t, wanted)
    if not runs:
        raise HTTPException(404, "none of these policies has finished runs on this task")
    return _png(request, ("cmp", *_state(store, task), tuple(wanted)),
                lambda: plot_learning_curves(runs, wanted, title="Learning curves "
                                                                 "(mean ± std over seeds)"))


@router.get("/compare/schedule.png")
def compare_schedule(request: Request, store: StoreDep, task: Annotated[str, Query(max_length=64)],
                     policies: PolicyList = []) -> Response:  # noqa: B006
    from lrbench.reports.plots import plot_schedules

    t, wanted = _compared(store, task, policies)
    if not wanted:
        raise HTTPException(404, "no policies to draw")
    return _png(request, ("cmpsched", tuple(wanted), t.max_iters),
                lambda: plot_schedules(wanted, t.max_iters, title="LR schedules"))
