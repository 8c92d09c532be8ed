"""``lrbench db``: the LR database from the command line.

    lrbench db info     [--db URL] [--json]
    lrbench db upgrade  [--db URL] [--revision REV]
    lrbench db runs     [--db URL] [--dataset D] [--model M] [--policy P] [--function F]
                        [--status S] [--limit N] [--json]
    lrbench db export FILE [--db URL] [filters] [--format json|csv|parquet] [--curves]
    lrbench db import FILE [--db URL] [--replace]

``--db`` takes a database URL (``sqlite:///PATH``, ``postgresql+psycopg://USER@HOST/DB``);
without it ``$LRBENCH_DB`` is used, then the default SQLite file in the user's data directory.
Every command calls ``lrbench.store``; none writes SQL.
"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lrbench.cli import app, fail

db_app = typer.Typer(
    name="db",
    help="The LR database: where runs are stored (SQLite or PostgreSQL).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db_app, name="db")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", metavar="URL",
        help="Database URL (sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB); "
             "default: $LRBENCH_DB, else an SQLite file in the user's data directory.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DatasetOption = Annotated[
    list[str] | None,
    typer.Option("--dataset", metavar="NAME", help="Only this dataset (repeatable)."),
]
ModelOption = Annotated[
    list[str] | None, typer.Option("--model", metavar="NAME", help="Only this model (repeatable).")
]
PolicyOption = Annotated[
    list[str] | None,
    typer.Option("--policy", metavar="NOTATION", help="Only this policy, in notation, e.g. "
                 "'SIN2(k0=0.01, k1=0.06, l=2000)' (repeatable)."),
]
FunctionOption = Annotated[
    list[str] | None,
    typer.Option("--function", metavar="NAME",
                 help="Only this LR function, e.g. SIN2 (repeatable)."),
]
StatusOption = Annotated[
    list[str] | None,
    typer.Option("--status", metavar="STATUS",
                 help="Only runs with this status: pending, running, done, diverged, failed "
                      "(repeatable)."),
]


def _open(url: str | None, **kwargs: Any) -> Any:
    from lrbench.store import Store

    return Store.open(url, **kwargs)


def _filters(dataset: Any, model: Any, policy: Any, function: Any, status: Any = None
             ) -> dict[str, Any]:
    out = dict(dataset=dataset or None, model=model or None, policy=policy or None,
               function=function or None)
    if status:
        out["status"] = status
    return {k: v for k, v in out.items() if v is not None}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


@db_app.command("info")
def info(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database URL (password masked), backend, schema revision and counts."""
    with _open(db, upgrade=False, check=False) as store:
        data = store.info()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    counts = data["counts"]
    rev = data["revision"] or "none (empty database)"
    if data["revision"] != data["head"]:
        rev += f"  (newest: {data['head']}; run `lrbench db upgrade`)"
    lines = [
        f"url:       {data['url']}",
        f"backend:   {data['backend']} {data['server_version']}",
        f"revision:  {rev}",
    ]
    if counts is not None:
        by_status = ", ".join(f"{k} {v}" for k, v in counts["runs_by_status"].items())
        lines += [
            f"datasets:  {counts['datasets']}",
            f"tasks:     {counts['tasks']}",
            f"policies:  {counts['policies']}",
            f"runs:      {counts['runs']} ({by_status})",
            f"curve points: {counts['curve_points']}",
        ]
    typer.echo("\n".join(lines))


@db_app.command("upgrade")
def upgrade(
    db: DbOption = None,
    revision: Annotated[
        str, typer.Option("--revision", metavar="REV", help="Target schema revision.")
    ] = "head",
) -> None:
    """Migrate the database schema to the newest revision (safe on a shared database)."""
    with _open(db, upgrade=False, check=False) as store:
        before, after = store.upgrade(revision)
        url = store.url
    if before == after:
        typer.echo(f"{url}: schema already at revision {after}")
    else:
        typer.echo(f"{url}: schema upgraded from {before or 'empty'} to {after}")


@db_app.command("runs")
def runs(
    db: DbOption = None,
    dataset: DatasetOption = None,
    model: ModelOption = None,
    policy: PolicyOption = None,
    function: FunctionOption = None,
    status: StatusOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, metavar="N", help="At most this many runs.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List stored runs, oldest first."""
    with _open(db) as store:
        rows = store.find_runs(**_filters(dataset, model, policy, function, status), limit=limit)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no runs")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for col in ("id", "dataset", "model", "policy", "seed", "status", "top1", "#iter",
                "iters", "wall s"):
        left = col in ("dataset", "model", "policy", "status")
        table.add_column(col, justify="left" if left else "right")
    for r in rows:
        table.add_row(str(r.id), r.dataset, r.model, r.policy, str(r.seed), r.status,
                      _fmt(r.top1), _fmt(r.best_iter), _fmt(r.iterations), _fmt(r.wall_time, 1))
    Console(width=200).print(table)


@db_app.command("export")
def export(
    file: Annotated[
        Path, typer.Argument(help="Output file: .json / .json.gz (bundle), .csv or .parquet.")
    ],
    db: DbOption = None,
    dataset: DatasetOption = None,
    model: ModelOption = None,
    policy: PolicyOption = None,
    function: FunctionOption = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="FORMAT",
                     help="json (a bundle for `db import`), csv or parquet; "
                          "default: from FILE's suffix."),
    ] = None,
    curves: Annotated[
        bool, typer.Option("--curves", help="csv/parquet: one row per curve point.")
    ] = False,
) -> None:
    """Export runs: a portable JSON bundle (for `lrbench db import`), or a CSV / Parquet table."""
    kind = (fmt or _format_of(file)).lower()
    if kind not in ("json", "csv", "parquet"):
        fail(f"unknown export format {kind!r}; use json, csv or parquet")
    if kind == "json" and curves:
        fail("--curves is for csv and parquet; a JSON bundle always has the curves")
    filters = _filters(dataset, model, policy, function)
    with _open(db) as store:
        if kind == "json":
            n = store.export_bundle(file, **filters)
            what = "runs"
        elif kind == "csv":
            n = store.export_csv(file, curves=curves, **filters)
            what = "curve points" if curves else "runs"
        else:
            try:
                n = store.export_parquet(file, curves=curves, **filters)
            except ImportError as e:
                fail(str(e))
            what = "curve points" if curves else "runs"
    typer.echo(f"exported {n} {what} to {file}")


def _format_of(file: Path) -> str:
    name = file.name.lower()
    for suffix, kind in ((".json", "json"), (".json.gz", "json"), (".csv", "csv"),
                         (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(suffix):
            return kind
    fail(f"cannot tell the export format of {str(file)!r}; name it .json, .csv or .parquet, "
         "or give --format")
    return ""  # unreachable


@db_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A bundle written by `lrbench db export`.")],
    db: DbOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite runs this database already has finished.")
    ] = False,
) -> None:
    """Import a JSON bundle of runs. Idempotent: importing twice changes nothing."""
    if not file.is_file():
        fail(f"no such file: {str(file)!r}")
    with _open(db) as store:
        report = store.import_bundle(file, replace=replace)
        url = store.url
    typer.echo(f"imported into {url}: {report}")
