"""``lrbench rangetest`` and ``lrbench tune``: the range tests and tuner of ``lrbench.tuning``.

    lrbench rangetest --task PRESET [--method fix|smith] [--iters N] [--seeds K]
                      [--min-lr LR] [--max-lr LR] [--grid 1,3] [--tolerance T] [--extend E]
                      [--threads T] [--data-root DIR] [--db URL] [--plot FILE.png] [--json]

``--method fix`` (default), the paper's test: FIX(k0) for k0 on the grid ``m * 10^e`` between
``--min-lr`` (1e-4) and ``--max-lr`` (1) for each mantissa m of ``--grid`` (1,3), each run
``--iters`` iterations (default 5 epochs) with seeds 0..K-1; prints top-1 per LR, the good FIX
range and the suggested k0/k1 (cyclic) and k0 (decaying); ``--db`` stores the runs.
``--method smith``: one sweep of ``--iters`` (100) iterations whose LR grows exponentially from
``--min-lr`` (1e-6) to ``--max-lr`` (10); prints the smoothed loss curve and the bounds.
``--json`` prints one JSON object and nothing else on stdout. Exit code 0 with suggestions, 1
when the test found none (every LR diverged), 2 for bad input (one line on stderr).

    lrbench tune --task PRESET --budget ITERATIONS [--goal accuracy|cost] [--target-accuracy A]
                 [--seeds K] [--eta N] [--top N] [--min-iters N] [--warm-start POLICY ...]
                 [--bounds LO,HI] [--grid auto|M,...] [--db URL [--no-lookup]] [--workers N]
                 [--threads T]
                 [--data-root DIR] [--executor local|ray] [--address auto|ray://HOST:PORT]
                 [--cpus-per-run N] [--gpus-per-run N] [--json]

``lrbench tune`` (``lrbench.tuning.tune.tune``): a database lookup (with ``--db``, unless
``--no-lookup``: the best policies of similar stored tasks warm-start the search), else a range
test; candidate policies per function family, successive halving, all within ``--budget``
training iterations (a hard cap, range test included); prints the recommended policies best
first. ``--executor ray`` trains every run as a Ray task (resources per run
``--cpus-per-run`` / ``--gpus-per-run``), recorded and budgeted by this process.
``--json`` prints one object with ``recommendations`` (each with ``policy``, ``top1`` and its
other metrics), ``iterations_spent`` and ``prior`` (what the lookup warm-started from).
Exit code 0 with recommendations, 1 without, 2 for bad input.

    lrbench optuna --task PRESET --trials N [--sampler tpe|random] [--pruner hyperband|median|none]
                   [--iters N] [--seed S] [--families F,...] [--bounds LO,HI] [--threads T]
                   [--data-root DIR] [--db URL] [--json]

``lrbench optuna`` (``lrbench.tuning.optuna_bridge``, needs ``pip install 'lrbench[optuna]'``):
Optuna's sampler and pruner over the 13 LR functions' search space, ``--trials`` trials of
``--iters`` iterations (default the task's ``max_iters``); prints the best policy and a table of
trials. ``--json`` prints one object with ``best`` (``policy``, ``top1``) and ``trials``. Exit
code 0 with a completed trial, 1 without, 2 for bad input.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from lrbench.cli import app, fail
from lrbench.cli.bench import (
    AddressOption,
    CpusPerRunOption,
    ExecutorOption,
    GpusPerRunOption,
    executor_options,
)


def _opt(help: str, *names: str, metavar: str | None = None) -> Any:
    return typer.Option(*names, help=help, metavar=metavar, show_default=False)


# Options shared by rangetest, tune and optuna.
TaskOpt = Annotated[Optional[str], _opt(
    "A task preset, e.g. digits-mlp, fashion-mnist-lenet.", "--task", "-t", metavar="PRESET")]
ThreadsOpt = Annotated[Optional[int], _opt("Torch CPU threads per run.", "--threads",
                                           metavar="T")]
DataRootOpt = Annotated[Optional[str], _opt(
    "A directory searched first for the dataset's files.", "--data-root", metavar="DIR")]
RecordDbOpt = Annotated[Optional[str], _opt(
    "Record every run in this LR database.", "--db", metavar="URL")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]


def _grid(text: str) -> tuple[float, ...]:
    from lrbench.tuning.rangetest import parse_mantissas

    try:
        return parse_mantissas(text)
    except ValueError as e:
        fail(f"--grid: {e}")


def _g(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:g}"


def _fix_table(result: Any) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("FIX k0", justify="right")
    table.add_column("top-1", justify="right")
    if len(result.seeds) > 1:
        table.add_column("± std", justify="right")
    table.add_column("status")
    table.add_column("good", justify="center")
    for p in result.points:
        top1 = f"{p.top1:.4f}" if math.isfinite(p.top1) else "-"
        row = [f"{p.lr:g}", top1]
        if len(result.seeds) > 1:
            row.append(f"{p.top1_std:.4f}" if math.isfinite(p.top1_std) else "-")
        best = p.lr == result.best_lr
        row += [p.status, "best" if best else ("yes" if p.good else "")]
        table.add_row(*row, style="bold green" if best else ("green" if p.good else None))
    return table


def _smith_table(result: Any, rows: int = 16) -> Any:
    from rich import box
    from rich.table import Table

    n = len(result.lrs)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("iteration", justify="right")
    table.add_column("LR", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("smoothed", justify="right")
    picks = sorted({round(i * (n - 1) / max(rows - 1, 1)) for i in range(rows)}) if n else []
    for i in picks:
        table.add_row(str(i), f"{result.lrs[i]:.3g}", f"{result.losses[i]:.4g}",
                      f"{result.smoothed[i]:.4g}")
    return table


def _title(result: Any) -> str:
    t = result.task
    name = "" if t is None else f": {t.preset or t.dataset + '/' + t.model}"
    if result.method == "fix":
        n = len(result.seeds)
        return (f"FIX range test{name}, {result.iters} iterations per LR, "
                f"{n} seed{'s' if n != 1 else ''}")
    return (f"Smith range test{name}, {result.start_lr:g} to {result.end_lr:g}, "
            f"{result.iterations} of {result.iters} iterations ({result.stop_reason})")


def _suggestions(result: Any) -> list[str]:
    lines = []
    if result.method == "fix":
        if result.good_range is not None:
            lo, hi = result.good_range
            lines.append(f"good FIX range: [{lo:g}, {hi:g}]; best FIX(k0={result.best_lr:g}) "
                         f"top-1 {result.best_top1:.4f}")
    else:
        if result.lr_min_loss is not None:
            lines.append(f"smoothed loss lowest at LR {result.lr_min_loss:.3g}"
                         + (f", falls fastest at LR {result.lr_steepest:g}"
                            if result.lr_steepest is not None else ""))
    if result.k0 is not None:
        lines.append(f"cyclic policies: k0={result.k0:g}, k1={result.k1:g}   "
                     f"e.g. SIN2(k0={result.k0:g}, k1={result.k1:g}, l=...)")
        lines.append(f"decaying policies: k0={result.decaying_k0:g}")
    if result.method == "fix":
        lines.append(f"{result.iterations_spent:,} training iterations in "
                     f"{result.wall_time:.1f} s")
    else:
        lines.append(f"{result.iterations:,} training iterations in {result.wall_time:.1f} s")
    return lines


@app.command("rangetest")
def rangetest_command(
    task: TaskOpt = None,
    method: Annotated[str, typer.Option(
        "--method", "-m", metavar="fix|smith",
        help="fix: the paper's FIX grid; smith: one exponential LR sweep.")] = "fix",
    iters: Annotated[Optional[int], _opt(
        "fix: iterations per LR (default 5 epochs); smith: sweep length (default 100).",
        "--iters", "-n", metavar="N")] = None,
    seeds: Annotated[int, typer.Option(
        "--seeds", metavar="K", help="fix: seeds 0..K-1 per LR (top-1 is their mean).")] = 1,
    min_lr: Annotated[Optional[float], _opt(
        "Lowest LR (fix: 1e-4, smith: 1e-6).", "--min-lr", metavar="LR")] = None,
    max_lr: Annotated[Optional[float], _opt(
        "Highest LR (fix: 1, smith: 10).", "--max-lr", metavar="LR")] = None,
    grid: Annotated[Optional[str], _opt(
        "fix: mantissas per decade, e.g. 1 (powers of 10), 1,3 (default) or 1,2,5.", "--grid",
        metavar="M,...")] = None,
    tolerance: Annotated[Optional[float], _opt(
        "fix: an LR is good if its top-1 is within T of the best (default 0.02).",
        "--tolerance", metavar="T")] = None,
    extend: Annotated[Optional[int], _opt(
        "fix: decades added when the best LR is on the grid's edge (default 2).", "--extend",
        metavar="E")] = None,
    threads: ThreadsOpt = None,
    data_root: DataRootOpt = None,
    db: Annotated[Optional[str], _opt(
        "fix: record the runs in this LR database.", "--db", metavar="URL")] = None,
    plot: Annotated[Optional[Path], _opt(
        "Write the plot (top-1 or loss vs LR) to this .png or .svg file.", "--plot",
        metavar="FILE")] = None,
    as_json: JsonOpt = False,
) -> None:
    """LR range test: the good LR range of a task and suggested policy bounds."""
    from lrbench.tasks import get_task

    if task is None:
        fail("--task is required, e.g. --task digits-mlp")
    m = method.strip().lower()
    if m not in ("fix", "smith"):
        fail(f"--method must be fix or smith, got {method!r}")
    t = get_task(task)
    if iters is not None and iters < (2 if m == "smith" else 1):
        fail(f"--iters must be >= {2 if m == 'smith' else 1}, got {iters}")
    if seeds < 1:
        fail(f"--seeds must be >= 1, got {seeds}")
    for name, v in (("--min-lr", min_lr), ("--max-lr", max_lr)):
        if v is not None and not (math.isfinite(v) and v > 0):
            fail(f"{name} must be a positive number, got {v:g}")
    if min_lr is not None and max_lr is not None and min_lr >= max_lr:
        fail(f"--min-lr must be below --max-lr, got {min_lr:g} >= {max_lr:g}")
    if threads is not None and threads < 1:
        fail(f"--threads must be >= 1, got {threads}")
    if plot is not None:
        from lrbench.reports.plots import figure_format

        try:
            figure_format(plot)
        except ValueError:
            fail(f"--plot must end in .png or .svg, got {str(plot)!r}")
    if m == "smith":
        for flag, given in (("--seeds", seeds != 1), ("--grid", grid is not None),
                            ("--tolerance", tolerance is not None),
                            ("--extend", extend is not None), ("--db", db is not None)):
            if given:
                fail(f"{flag} applies to --method fix only")

    if m == "fix":
        result = _run_fix(t, iters=iters, seeds=seeds, min_lr=min_lr, max_lr=max_lr, grid=grid,
                          tolerance=tolerance, extend=extend, threads=threads,
                          data_root=data_root, db=db, quiet=as_json)
    else:
        from lrbench.tuning.smith import smith_range_test_task

        kwargs: dict[str, Any] = {k: v for k, v in (
            ("iters", iters), ("start_lr", min_lr), ("end_lr", max_lr)) if v is not None}
        try:
            result = smith_range_test_task(t, threads=threads, data_root=data_root, **kwargs)
        except ValueError as e:
            fail(_flags(" ".join(str(e).split())))

    if plot is not None:
        result.plot(plot)
    if as_json:
        out = result.to_dict()
        if plot is not None:
            out["plot"] = str(plot)
        print(json.dumps(out, allow_nan=False))
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # a file or a pipe: no need to squeeze into 80 columns
            console = Console(width=max(console.width, 120))
        console.print(_title(result), style="bold", highlight=False)
        console.print(_fix_table(result) if m == "fix" else _smith_table(result))
        for line in _suggestions(result):
            console.print(line, highlight=False)
        for w in result.warnings:
            console.print(f"warning: {w}", style="yellow", highlight=False)
        if plot is not None:
            console.print(f"wrote {plot}", highlight=False)
    if result.k0 is None:
        if not as_json:
            print("lrbench: the range test found no LR that trains; see the warnings",
                  file=sys.stderr)
        raise typer.Exit(1)


def _flags(message: str) -> str:
    """A library message in terms of the command's flags."""
    names = {"start_lr": "--min-lr", "end_lr": "--max-lr", "min_lr": "--min-lr",
             "max_lr": "--max-lr", "mantissas": "--grid", "iters": "--iters",
             "tolerance": "--tolerance", "extend": "--extend"}
    return re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: names[m.group(1)], message)


def _run_fix(task: Any, *, iters: int | None, seeds: int, min_lr: float | None,
             max_lr: float | None, grid: str | None, tolerance: float | None,
             extend: int | None, threads: int | None, data_root: str | None, db: str | None,
             quiet: bool) -> Any:
    from lrbench.tuning import fix_range_test

    kwargs: dict[str, Any] = {k: v for k, v in (
        ("iters", iters), ("min_lr", min_lr), ("max_lr", max_lr), ("tolerance", tolerance),
        ("extend", extend)) if v is not None}
    if grid is not None:
        kwargs["mantissas"] = _grid(grid)

    def progress(lr: float, seed: int, r: Any) -> None:
        best = r.best
        top1 = f"top-1 {best.top1:.4f}" if best is not None else "no top-1"
        print(f"  FIX(k0={lr:g}) seed {seed}: {r.status}, {top1} ({r.wall_time:.1f} s)",
              file=sys.stderr)

    store = None
    if db is not None:
        from lrbench.store import Store

        store = Store.open(db)
    try:
        return fix_range_test(task, seeds=seeds, threads=threads, data_root=data_root,
                              store=store, progress=None if quiet else progress, **kwargs)
    except ValueError as e:
        fail(_flags(" ".join(str(e).split())))
    finally:
        if store is not None:
            store.close()


# -- lrbench tune ---------------------------------------------------------------------------------
def _bounds(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        fail(f"--bounds: expected two LRs LO,HI (the good FIX range), e.g. 0.03,0.1; got {text!r}")
    return lo, hi


def _f4(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _tune_table(result: Any) -> Any:
    from rich import box
    from rich.table import Table

    multi = len(result.seeds) > 1
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("policy")
    table.add_column("top-1", justify="right")
    if multi:
        table.add_column("± std", justify="right")
    table.add_column("iterations", justify="right")
    table.add_column("#Iter", justify="right")
    table.add_column("rung", justify="right")
    if result.target_accuracy is not None:
        table.add_column("target", justify="center")
    for r in result.recommendations:
        row = [str(r.rank), r.policy, _f4(r.top1)]
        if multi:
            row.append(_f4(r.top1_std))
        row += [_g(round(r.iterations)), _g(round(r.best_iter)) if math.isfinite(r.best_iter)
                else "-", f"{r.rung} ({r.rung_iters} it)"]
        if result.target_accuracy is not None:
            row.append("yes" if r.reached_target else ("dropped" if r.dropped else "no"))
        table.add_row(*row, style="bold green" if r.rank == 1 else None)
    return table


def _tune_lines(result: Any) -> list[str]:
    lines = list(result.notes)
    rt = result.range_test
    if rt is not None and rt.good_range is not None:
        lo, hi = rt.good_range
        per = ", ".join(f"{m:g}" for m in result.mantissas)
        lines.append(f"range test (LRs {per} per decade): good FIX range [{lo:g}, {hi:g}], best "
                     f"FIX(k0={rt.best_lr:g}); {result.range_iterations:,} iterations "
                     f"({rt.iters} per run)")
    elif result.bounds is not None:
        lo, hi = result.bounds
        lines.append(f"candidates from the given range [{lo:g}, {hi:g}]")
    if result.above_lr is not None:
        lines.append(f"candidates above the range too: peak LR {result.above_lr:g}")
    if result.rungs:
        steps = " -> ".join(f"{len(r.candidates)} x {r.iters:,} it" for r in result.rungs)
        how = ("lower rungs train each policy rescaled to their length"
               if result.low_rungs == "rescaled" else
               "lower rungs train the first iterations of each policy")
        lines.append(f"{len(result.candidates)} candidates; successive halving (eta "
                     f"{result.eta}): {steps}; {how}")
    lines.append(f"{result.iterations_spent:,} of {result.budget:,} training iterations spent "
                 f"in {result.wall_time:.1f} s")
    return lines


@app.command("tune")
def tune_command(
    task: TaskOpt = None,
    budget: Annotated[Optional[int], _opt(
        "Most training iterations to spend, range test included (a hard cap).", "--budget",
        "-b", metavar="ITERATIONS")] = None,
    goal: Annotated[str, typer.Option(
        "--goal", metavar="accuracy|cost",
        help="accuracy: highest top-1; cost: fewest iterations to reach --target-accuracy."
    )] = "accuracy",
    target_accuracy: Annotated[Optional[float], _opt(
        "Stop a run when its top-1 reaches A (a fraction, e.g. 0.95); drop policies whose "
        "curve cannot reach it.", "--target-accuracy", metavar="A")] = None,
    seeds: Annotated[int, typer.Option(
        "--seeds", metavar="K", help="Seeds 0..K-1 per candidate (top-1 is their mean).")] = 1,
    eta: Annotated[int, typer.Option(
        "--eta", metavar="N", help="Keep the best 1/N at each rung; the next is N times longer."
    )] = 5,
    top: Annotated[int, typer.Option(
        "--top", metavar="N", help="How many policies to recommend.")] = 5,
    min_iters: Annotated[Optional[int], _opt(
        "Shortest rung in iterations (default half an epoch).", "--min-iters",
        metavar="N")] = None,
    warm_start: Annotated[Optional[list[str]], _opt(
        "A policy to try first (repeatable); skips the range test.", "--warm-start",
        metavar="POLICY")] = None,
    bounds: Annotated[Optional[str], _opt(
        "The good FIX range LO,HI to build candidates from; skips the range test.", "--bounds",
        metavar="LO,HI")] = None,
    low_rungs: Annotated[str, typer.Option(
        "--low-rungs", metavar="rescaled|prefix",
        help="What a rung shorter than the task trains: each policy rescaled to its length "
        "(decay and cycles squeezed in), or the policy's first iterations.")] = "rescaled",
    no_fill: Annotated[bool, typer.Option(
        "--no-fill", help="Do not spend the iterations successive halving leaves unused on "
        "more finalists at the top rung.")] = False,
    no_shrink: Annotated[bool, typer.Option(
        "--no-shrink", help="Keep the lower rungs at their geometric lengths instead of "
        "shortening them (never under --min-iters) to pay for more finalists at the top rung "
        "(no effect with --no-fill).")] = False,
    above_range: Annotated[Optional[bool], typer.Option(
        "--above-range/--no-above-range", help="Also try candidates whose peak LR is one step "
        "above the good FIX range (cyclic k1, decaying k0): the range test's next LR, or, if "
        "that one diverged, the middle between, probed by one more FIX run. Default: only "
        "when the budget still trains every candidate to the full length with them.",
        show_default=False)] = None,
    grid: Annotated[Optional[str], _opt(
        "The range test's LRs per decade (mantissas), e.g. 1,3 (the paper's) or 1,2,5 (finer; "
        "each range-test run is then shorter). Default auto: 1,2,5 when its runs are still at "
        "least --min-iters long, else 1,3.", "--grid", metavar="auto|M,...")] = None,
    workers: Annotated[Optional[int], _opt(
        "Runs of a rung trained at once (default 1: processes; with --executor ray, what the "
        "cluster fits).", "--workers", metavar="N")] = None,
    threads: ThreadsOpt = None,
    data_root: DataRootOpt = None,
    db: Annotated[Optional[str], _opt(
        "Record every run in this LR database, and warm-start from the best policies of "
        "similar tasks stored there (see --no-lookup).", "--db", metavar="URL")] = None,
    no_lookup: Annotated[bool, typer.Option(
        "--no-lookup", help="With --db: do not warm-start from similar stored tasks; run the "
        "range test.")] = False,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    cpus_per_run: CpusPerRunOption = None,
    gpus_per_run: GpusPerRunOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune an LR policy within a budget: database lookup or range test, candidates,
    successive halving."""
    from lrbench.tasks import get_task

    if task is None:
        fail("--task is required, e.g. --task digits-mlp")
    if budget is None:
        fail("--budget is required: the most training iterations to spend, e.g. --budget 20000")
    g = goal.strip().lower()
    if g not in ("accuracy", "cost"):
        fail(f"--goal must be accuracy or cost, got {goal!r}")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        fail(f"--target-accuracy must be a fraction in (0, 1], got {target_accuracy:g}")
    if g == "cost" and target_accuracy is None:
        fail("--goal cost needs --target-accuracy (the accuracy to reach at the lowest cost)")
    for flag, v, low in (("--budget", budget, 1), ("--seeds", seeds, 1), ("--eta", eta, 2),
                         ("--top", top, 1), ("--workers", workers, 1),
                         ("--min-iters", min_iters, 1), ("--threads", threads, 1)):
        if v is not None and v < low:
            fail(f"{flag} must be >= {low}, got {v}")
    from lrbench.tuning.tune import LOW_RUNGS, tune

    rung_mode = low_rungs.strip().lower()
    if rung_mode not in LOW_RUNGS:
        fail(f"--low-rungs must be rescaled or prefix, got {low_rungs!r}")
    if no_lookup and db is None:
        fail("--no-lookup applies with --db (without a database there is nothing to look up)")
    options = executor_options(executor, address, cpus_per_run, gpus_per_run)
    t = get_task(task)
    pair = _bounds(bounds) if bounds is not None else None
    mantissas: tuple[float, ...] | Literal["auto"] = (
        "auto" if grid is None or grid.strip().lower() == "auto" else _grid(grid))

    store = None
    if db is not None:
        from lrbench.store import Store

        store = Store.open(db)
    try:
        result = tune(t, budget, goal=g, target_accuracy=target_accuracy, seeds=seeds,
                      store=store, warm_start=warm_start or (), bounds=pair,
                      lookup=not no_lookup, eta=eta, min_iters=min_iters, top=top,
                      workers=workers, threads=threads, data_root=data_root,
                      progress=not as_json, executor=executor.strip().lower(),
                      executor_options=options, low_rungs=rung_mode,  # type: ignore[arg-type]
                      fill=not no_fill, shrink=not no_shrink,
                      above_range="auto" if above_range is None else above_range,
                      mantissas=mantissas)
    except ValueError as e:
        fail(_tune_flags(" ".join(str(e).split())))
    finally:
        if store is not None:
            store.close()

    if as_json:
        print(json.dumps(result.to_dict(), allow_nan=False))
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 120))
        name = t.preset or f"{t.dataset}/{t.model}"
        n = len(result.seeds)
        console.print(f"lrbench tune: {name}, budget {result.budget:,} iterations, goal "
                      f"{result.goal}" + (f" (target {result.target_accuracy:g})"
                                          if result.target_accuracy is not None else "")
                      + f", {n} seed{'s' if n != 1 else ''}", style="bold", highlight=False)
        console.print(_tune_table(result))
        for line in _tune_lines(result):
            console.print(line, highlight=False)
        for w in result.warnings:
            console.print(f"warning: {w}", style="yellow", highlight=False)
    if not result.recommendations:
        if not as_json:
            print("lrbench: no policy to recommend; see the warnings", file=sys.stderr)
        raise typer.Exit(1)


def _tune_flags(message: str) -> str:
    """A tune() message in terms of the command's flags."""
    names = {"budget": "--budget", "target_accuracy": "--target-accuracy", "seeds": "--seeds",
             "eta": "--eta", "top": "--top", "min_iters": "--min-iters",
             "warm_start": "--warm-start", "bounds": "--bounds", "workers": "--workers",
             "threads": "--threads", "goal": "--goal", "cpus_per_run": "--cpus-per-run",
             "gpus_per_run": "--gpus-per-run", "address": "--address", "mantissas": "--grid"}
    return re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: names[m.group(1)], message)


# -- lrbench optuna -------------------------------------------------------------------------------
def _trial_row(trial: Any) -> dict[str, Any]:
    value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
    attrs = trial.user_attrs
    return {"number": trial.number, "state": trial.state.name.lower(),
            "policy": attrs.get("policy"), "top1": value,
            "pruned_at": attrs.get("pruned_at"), "run_ids": attrs.get("run_ids", [])}


@app.command("optuna")
def optuna_command(
    task: TaskOpt = None,
    trials: Annotated[Optional[int], _opt("How many Optuna trials to run.", "--trials", "-n",
                                          metavar="N")] = None,
    sampler: Annotated[str, typer.Option(
        "--sampler", metavar="tpe|random", help="Optuna's sampler.")] = "tpe",
    pruner: Annotated[str, typer.Option(
        "--pruner", metavar="hyperband|median|none", help="Optuna's pruner.")] = "hyperband",
    iters: Annotated[Optional[int], _opt(
        "Training iterations per trial (default the task's max_iters).", "--iters",
        metavar="N")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", metavar="S", help="The sampler's seed (training uses seed 0).")] = 0,
    families: Annotated[Optional[str], _opt(
        "LR functions or kinds to search, e.g. SIN2,COS or cyclic,decaying (default all 13).",
        "--families", metavar="F,...")] = None,
    bounds: Annotated[Optional[str], _opt(
        "LR bounds LO,HI of the search space (default 1e-4,1).", "--bounds",
        metavar="LO,HI")] = None,
    threads: ThreadsOpt = None,
    data_root: DataRootOpt = None,
    db: RecordDbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search LR policies with Optuna (its samplers and pruners), runs recorded in LRBench."""
    from lrbench.tasks import get_task

    if task is None:
        fail("--task is required, e.g. --task digits-mlp")
    if trials is None:
        fail("--trials is required: how many Optuna trials to run, e.g. --trials 20")
    for flag, v, low in (("--trials", trials, 1), ("--iters", iters, 2), ("--seed", seed, 0),
                         ("--threads", threads, 1)):
        if v is not None and v < low:
            fail(f"{flag} must be >= {low}, got {v}")
    s, p = sampler.strip().lower(), pruner.strip().lower()
    if s not in ("tpe", "random"):
        fail(f"--sampler must be tpe or random, got {sampler!r}")
    if p not in ("hyperband", "median", "none"):
        fail(f"--pruner must be hyperband, median or none, got {pruner!r}")
    try:
        t = get_task(task)
        if iters is not None:
            t = t.replace(max_iters=iters, eval_every=min(t.eval_every, iters))
    except ValueError as e:
        fail(" ".join(str(e).split()))
    lr_bounds = _bounds(bounds) if bounds is not None else (1e-4, 1.0)
    if not (0 < lr_bounds[0] < lr_bounds[1] and math.isfinite(lr_bounds[1])):
        fail(f"--bounds: expected two finite LRs LO,HI with 0 < LO < HI, got {bounds!r}")
    fams = [f for f in families.split(",") if f.strip()] if families is not None else None

    try:
        import optuna
    except ImportError:
        fail("lrbench optuna needs optuna: pip install 'lrbench[optuna]'")
    from lrbench.tuning import optuna_bridge as ob

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = None
    if db is not None:
        from lrbench.store import Store

        store = Store.open(db)
    try:
        study = ob.run_optuna(t, trials, sampler=s, pruner=p, seed=seed, store=store,
                              lr_bounds=lr_bounds,
                              families=fams if fams is not None else ob.ALL_FAMILIES,
                              threads=threads, data_root=data_root)
    except ValueError as e:
        msg = " ".join(str(e).split())
        msg = msg.replace("lr_bounds", "--bounds").replace("families", "--families")
        fail(msg)
    finally:
        if store is not None:
            store.close()

    rows = [_trial_row(tr) for tr in study.trials]
    try:
        best: dict[str, Any] | None = {"policy": ob.best_policy(study),
                                       "top1": study.best_value}
        best_number = study.best_trial.number
    except ValueError:
        best, best_number = None, None
    if as_json:
        print(json.dumps({"task": t.model_dump(), "sampler": s, "pruner": p, "best": best,
                          "trials": rows}, allow_nan=False))
    else:
        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 120))
        name = t.preset or f"{t.dataset}/{t.model}"
        console.print(f"lrbench optuna: {name}, {len(rows)} trials of {t.max_iters:,} "
                      f"iterations, sampler {s}, pruner {p}", style="bold", highlight=False)
        table = Table(box=box.SIMPLE_HEAD)
        for col, just in (("#", "right"), ("policy", "left"), ("top-1", "right"),
                          ("state", "left"), ("pruned at", "right")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in rows:
            table.add_row(str(r["number"]), r["policy"] or "-", _f4(r["top1"]), r["state"],
                          _g(r["pruned_at"]),
                          style="bold green" if r["number"] == best_number else None)
        console.print(table)
        if best is not None:
            console.print(f"best: {best['policy']}  top-1 {best['top1']:.4f}", highlight=False)
    if best is None:
        if not as_json:
            print("lrbench: no completed trial", file=sys.stderr)
        raise typer.Exit(1)
