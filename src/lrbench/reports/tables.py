"""The paper's Table VII layout, one row per policy in ranked order, in four formats.

Columns (paper Table VII, without its "Source" column, with a rank column first)::

    #  LR  k0  k1  gamma  p  l  #Iter  LD  Top-1 (%)  Top-5 (%)  AC  CD  CDAC

* LR: the function's name (NSTEP, SIN2, ...); for a composite (or a notation that does not
  parse) the whole notation, with every parameter cell blank.
* k0, k1, gamma, p, l: the policy's parameters, blank where the function has none of that
  name; NSTEP's milestone list is shown compactly (``5k, 7k, 9.5k``).
* #Iter, LD, Top-1, Top-5, AC, CD, CDAC: means over seeds; Top-1 also shows the population
  std (``99.12 ± 0.01``), and a count of diverged runs when there are any. Undefined: ``–``.

Two kinds of output:

* For people: :func:`to_rich` (terminal) and :func:`to_markdown` use the formatted cells
  (:func:`display_rows`).
* For programs: :func:`to_csv` and :func:`to_json` use the typed rows of :func:`table_rows`
  (numbers unformatted, each std in its own column, accuracies in percent as in the paper,
  undefined values empty / null).

Every function takes either ranked entries (:func:`lrbench.ranking.rank`), shown in that
order, or plain PolicyStats, which are ranked by top-1 first.
"""

from __future__ import annotations

import csv
import io
import json
import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lrbench.ranking import PolicyStats, Ranked, rank

if TYPE_CHECKING:
    from rich.table import Table

#: Display columns, in the paper's order.
COLUMNS = (
    "#", "LR", "k0", "k1", "gamma", "p", "l", "#Iter", "LD",
    "Top-1 (%)", "Top-5 (%)", "AC", "CD", "CDAC",
)
#: The parameter columns, filled from the policy's parameters of the same name.
PARAM_COLUMNS = ("k0", "k1", "gamma", "p", "l")
#: Keys of the typed rows (CSV header, JSON object keys), in order.
FIELDS = (
    "position", "tied", "policy", "lr", "function", "kind", "n_params",
    "k0", "k1", "gamma", "p", "l",
    "iter", "iter_std", "ld", "ld_std", "top1_pct", "top1_pct_std", "top5_pct", "top5_pct_std",
    "ac", "ac_std", "cd", "cd_std", "cdac", "cdac_std",
    "n_runs", "n_diverged", "n_failed",
)
BLANK = ""
UNDEFINED = "–"


def as_ranked(entries: Sequence[PolicyStats] | Sequence[Ranked]) -> list[Ranked]:
    """Ranked entries as given, or PolicyStats ranked by top-1."""
    entries = list(entries)
    if all(isinstance(e, Ranked) for e in entries):
        return entries
    if all(isinstance(e, PolicyStats) for e in entries):
        return rank(entries, by="top1")
    raise ValueError("expected a list of PolicyStats or of Ranked entries (not a mix)")


def _params(notation: str) -> tuple[str, dict[str, Any]]:
    """(LR cell, parameters) of a policy: a composite shows its notation and no parameters."""
    lr, params = _parsed_params(notation)
    return lr, dict(params)


@lru_cache(maxsize=8192)  # a leaderboard parses the same notations on every request
def _parsed_params(notation: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    from lrbench.policies import parse

    try:
        policy = parse(notation)
    except (ValueError, TypeError):
        return notation, ()
    if policy.kind == "composite":
        return str(policy), ()
    return policy.name, tuple(policy.params.items())


def _num(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def table_rows(entries: Sequence[PolicyStats] | Sequence[Ranked]) -> list[dict[str, Any]]:
    """One typed dict per policy (keys: FIELDS), in ranked order.

    Parameters are numbers (NSTEP's ``l`` a list of ints) or None where blank; metric values
    are floats or None where undefined; ``top1_pct`` / ``top5_pct`` are in percent.
    """
    rows = []
    for r in as_ranked(entries):
        s = r.stats
        lr, params = _params(s.policy)
        row: dict[str, Any] = {
            "position": r.position,
            "tied": r.tied_with_previous,
            "policy": s.policy,
            "lr": lr,
            "function": s.function,
            "kind": s.kind,
            "n_params": s.n_params,
        }
        for name in PARAM_COLUMNS:
            value = params.get(name)
            row[name] = list(value) if isinstance(value, tuple) else value
        row["iter"], row["iter_std"] = _num(s.best_iter_mean), _num(s.best_iter_std)
        row["ld"], row["ld_std"] = _num(s.ld_mean), _num(s.ld_std)
        for metric in ("top1", "top5"):
            mean, std = _num(s.mean(metric)), _num(s.std(metric))
            row[f"{metric}_pct"] = None if mean is None else 100.0 * mean
            row[f"{metric}_pct_std"] = None if std is None else 100.0 * std
        for metric in ("ac", "cd", "cdac"):
            row[metric], row[f"{metric}_std"] = _num(s.mean(metric)), _num(s.std(metric))
        row["n_runs"], row["n_diverged"], row["n_failed"] = s.n_runs, s.n_diverged, s.n_failed
        rows.append(row)
    return rows


# -- formatting ---------------------------------------------------------------------------
def format_param(value: Any) -> str:
    """A parameter as the paper prints it: 0.00005 (not 5e-05), 2000, NSTEP lists compact."""
    if value is None:
        return BLANK
    if isinstance(value, (list, tuple)):
        return format_milestones(value)
    if isinstance(value, int):
        return str(value)
    v = float(value)
    if v == 0 or 1e-7 <= abs(v) < 1e7:
        return np.format_float_positional(v, trim="-")
    return f"{v:g}"


def format_milestones(milestones: Sequence[int], limit: int = 6) -> str:
    """NSTEP's ``l`` compactly: thousands as k (``5k, 7k, 9.5k``); a list longer than
    ``limit`` elided in the middle (``1k, 2k, 3k, …, 19k, 20k``)."""

    def one(n: int) -> str:
        n = int(n)
        return f"{n / 1000:g}k" if n >= 1000 and n % 100 == 0 else str(n)

    items = [one(n) for n in milestones]
    if len(items) > limit:
        items = items[:3] + ["…"] + items[-2:]
    return ", ".join(items)


def _fixed(value: float | None, digits: int) -> str:
    return UNDEFINED if value is None else f"{value:.{digits}f}"


def display_row(row: dict[str, Any]) -> dict[str, str]:
    """The display cells (keys: COLUMNS) of one typed row."""
    cells = {"#": str(row["position"]), "LR": row["lr"]}
    for name in PARAM_COLUMNS:
        cells[name] = format_param(row[name])
    it, it_std = row["iter"], row["iter_std"]
    if it is None:
        cells["#Iter"] = UNDEFINED
    else:
        cells["#Iter"] = f"{it:.0f}" + (f" ± {it_std:.0f}" if it_std and round(it_std) > 0 else "")
    cells["LD"] = _fixed(row["ld"], 4)
    top1 = _fixed(row["top1_pct"], 2)
    if row["top1_pct"] is not None and row["top1_pct_std"] is not None:
        top1 += f" ± {row['top1_pct_std']:.2f}"
    if row["n_diverged"]:
        top1 += f" ({row['n_diverged']}/{row['n_runs']} diverged)"
    cells["Top-1 (%)"] = top1
    cells["Top-5 (%)"] = _fixed(row["top5_pct"], 2)
    for metric, col in (("ac", "AC"), ("cd", "CD"), ("cdac", "CDAC")):
        cells[col] = _fixed(row[metric], 4)
    return cells


def display_rows(entries: Sequence[PolicyStats] | Sequence[Ranked]) -> list[list[str]]:
    """Formatted cells, one list per policy, in COLUMNS order."""
    return [[display_row(row)[c] for c in COLUMNS] for row in table_rows(entries)]


# -- outputs ------------------------------------------------------------------------------
def to_markdown(entries: Sequence[PolicyStats] | Sequence[Ranked]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in a cell escaped as ``\\|``)."""

    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    left = {"LR"}
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(":---" if c in left else "---:" for c in COLUMNS) + "|",
    ]
    for cells in display_rows(entries):
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_csv(entries: Sequence[PolicyStats] | Sequence[Ranked]) -> str:
    """CSV with a header of FIELDS; undefined values empty; NSTEP's l as ``[5000, 7000]``;
    ``tied`` as true/false. Floats are written in full precision (``repr``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in table_rows(entries):
        writer.writerow([_csv_value(row[k]) for k in FIELDS])
    return buf.getvalue()


def to_json(entries: Sequence[PolicyStats] | Sequence[Ranked], indent: int | None = 2) -> str:
    """A JSON array of the typed rows (objects with the keys FIELDS); undefined is null."""
    return json.dumps(table_rows(entries), indent=indent, allow_nan=False, ensure_ascii=False)


def to_rich(
    entries: Sequence[PolicyStats] | Sequence[Ranked], title: str | None = None
) -> Table:
    """A rich Table for the terminal (``rich.console.Console().print(to_rich(...))``)."""
    from rich.table import Table

    table = Table(title=title, header_style="bold", show_lines=False)
    rows = [(row, display_row(row)) for row in table_rows(entries)]
    # The function name is never squeezed below its length (a long composite folds).
    lr_width = min(max((len(cells["LR"]) for _, cells in rows), default=2), 12)
    for c in COLUMNS:
        if c == "LR":
            table.add_column(c, justify="left", overflow="fold", style="bold", min_width=lr_width)
        else:
            table.add_column(c, justify="right", no_wrap=True)
    for row, cells in rows:
        table.add_row(
            *(cells[c] for c in COLUMNS),
            style="dim" if row["n_diverged"] == row["n_runs"] else None,
        )
    return table
