"""``lrbench functions``, ``lrbench values``, ``lrbench plot``: look at LR functions and policies.

* ``lrbench functions [--json]``: the 13 functions of the paper and LIN, with their parameters
  (optional ones marked), kind, #Param and g(t); composites in one line.
* ``lrbench values POLICY --at T [T ...] [--json]``: the LR at those iterations. ``--at`` may be
  repeated (``--at 0 --at 10``), take a comma-separated list (``--at 0,10,2000``), or be
  followed by more iterations (``--at 0 10 2000``). ``--json`` prints a JSON list of floats only.
* ``lrbench plot POLICY [POLICY ...] --iters N -o FILE.png|FILE.svg [--log]``: LR vs
  iteration, the policies overlaid (:func:`lrbench.reports.plots.plot_schedules`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, List, Optional

import typer
from typer.core import TyperCommand

from lrbench.cli import app, fail
from lrbench.policies import FUNCTIONS, PAPER_FUNCTIONS, Policy, parse
from lrbench.policies.functions import LRFunction

#: g(t) of every LR function (SPEC section 2, paper Table I), as ``lrbench functions`` shows it.
#: eta(t) = |k0 - k1| * g(t) + min(k0, k1); decaying functions have k1 = 0 unless a floor is given.
FORMULAS: dict[str, str] = {
    "FIX": "1  (eta = k0)",
    "STEP": "gamma^floor(t / l)",
    "NSTEP": "gamma^i, i = how many l_j <= t",
    "EXP": "gamma^t",
    "INV": "(1 + gamma * t)^(-p)",
    "POLY": "(1 - t / l)^p for t < l, 0 from t = l on",
    "TRI": "TRI(t) = (2/pi) |arcsin(sin(pi t / (2 l)))|",
    "TRI2": "TRI(t) / 2^floor(t / (2 l))",
    "TRIEXP": "gamma^t * TRI(t)",
    "SIN": "SIN(t) = |sin(pi t / (2 l))|",
    "SIN2": "SIN(t) / 2^floor(t / (2 l))",
    "SINEXP": "gamma^t * SIN(t)",
    "COS": "(1 + cos(pi t / l)) / 2",
    "LIN": "min(t / l, 1), from k0 to k1 (eta = k0 + (k1 - k0) * min(t / l, 1))",
}

#: The one line about composites that ``lrbench functions`` adds after the functions.
COMPOSITE_ROW: dict[str, Any] = {
    "name": "COMPOSITE",
    "kind": "composite",
    "paper": False,
    "params": [],
    "optional": [],
    "n_params": "sum over phases + 1 per switch",
    "formula": "A[n] >> B: A's eta(t) for t < n, then B's eta(t - n)",
    "summary": "Consecutive phases of policies (warm-up, one-cycle, restarts, ...)",
}

NOTATION_HELP = (
    "Write a policy as NAME(param=value, ...), e.g. 'NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000])';"
    " a composite as 'FIX(k0=0.1)[1000] >> COS(k0=0.1, k1=0.0, l=9000)'."
)

_NUMBER = re.compile(r"[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: A word after ``--at`` value(s) that is more iterations: digits, signs, points, exponents,
#: commas, spaces (``10``, ``-5``, ``1e3``, ``0,10``); anything else is left to the parser.
_NUMBER_WORD = re.compile(r"(?=.*\d)[\d\s,.eE+_-]+")


def _console() -> Any:
    """A rich console on stdout; when stdout is not a terminal (a pipe, a file), wide enough
    that a table's rows are not wrapped at 80 columns."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    return console


# -- functions ----------------------------------------------------------------------------
def _summary(cls: type) -> str:
    """The class docstring's first line, up to the formula: e.g. "Step decay"."""
    first = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    head = first.split(": ``")[0].split(":``")[0].replace("``", "").strip().rstrip(".:")
    return head or first.replace("``", "")


def _formula(cls: type) -> str:
    if cls.name in FORMULAS:
        return FORMULAS[cls.name]
    m = re.search(r"``(.+?)``", cls.__doc__ or "")  # a function added later: its docstring
    return m.group(1) if m else ""


def _n_params(cls: type[LRFunction]) -> str:
    """#Param as the paper's Table I counts it, e.g. "3", "n + 2", "3 (4 with k1)"."""
    required = len([p for p in cls.param_names if p not in cls.optional])
    if cls.name == "NSTEP":  # its l is a list of n milestones: n numbers, not one
        base, full = f"n + {required - 1}", f"n + {required - 1 + len(cls.optional)}"
    else:
        base, full = str(required), str(required + len(cls.optional))
    return f"{base} ({full} with {', '.join(cls.optional)})" if cls.optional else base


def function_rows() -> list[dict[str, Any]]:
    """One dict per LR function (paper order, then LIN), then the composite line."""
    rows = []
    for name, cls in FUNCTIONS.items():
        rows.append({
            "name": name,
            "kind": cls.kind,
            "paper": name in PAPER_FUNCTIONS,
            "params": list(cls.param_names),
            "optional": list(cls.optional),
            "n_params": _n_params(cls),
            "formula": _formula(cls),
            "summary": _summary(cls),
        })
    rows.append(dict(COMPOSITE_ROW))
    return rows


def _params_text(row: dict[str, Any]) -> str:
    if row["kind"] == "composite":
        return "POLICY[n] >> ... >> POLICY"
    required = [p for p in row["params"] if p not in row["optional"]]
    text = ", ".join("l=[l_0, ..., l_n-1]" if row["name"] == "NSTEP" and p == "l" else p
                     for p in required)
    if row["optional"]:
        text += " (optional: " + ", ".join(row["optional"]) + ")"
    return text


@app.command()
def functions(
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """List the LR functions: parameters, kind, #Param and g(t).

    eta(t) = |k0 - k1| * g(t) + min(k0, k1); a decaying function's k1 is 0 unless given.
    """
    rows = function_rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return

    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="LR functions (paper Table I, plus LIN)", box=box.SIMPLE_HEAD,
                  title_justify="left")
    table.add_column("function", style="bold", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("parameters")
    table.add_column("#Param")
    table.add_column("g(t)")
    for row in rows:
        name = "A[n] >> B" if row["kind"] == "composite" else row["name"]
        table.add_row(*(Text(str(cell)) for cell in (
            name, row["kind"], _params_text(row), row["n_params"], row["formula"])))
    console = _console()
    console.print(table)
    console.print(Text(
        "eta(t) = |k0 - k1| * g(t) + min(k0, k1). Decaying functions: k1 = 0 unless a floor"
        " 0 < k1 < k0 is given. Cyclic functions: l is the half period. LIN is LRBench's"
        " addition to the paper's 13 (warm-up, one-cycle)."))
    console.print(Text(NOTATION_HELP))


# -- values -------------------------------------------------------------------------------
def _policy(text: str) -> Policy:
    if _NUMBER.fullmatch(text.strip()):
        fail(f"expected a policy such as 'STEP(k0=0.1, gamma=0.1, l=1000)', got the number"
             f" {text!r}")
    return parse(text)


def _whole_number(text: str, what: str, minimum: int) -> int:
    """``text`` as a whole number >= minimum; 1e3 and 2000.0 are accepted, 1.5 is not."""
    rule = f"a whole number >= {minimum}"
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            fail(f"{what} must be {rule}, got {text!r}")
        if not (math.isfinite(number) and number.is_integer()):
            fail(f"{what} must be {rule}, got {text!r}")
        value = int(number)
    if value < minimum:
        fail(f"{what} must be {rule}, got {text!r}")
    return value


def parse_iterations(items: list[str]) -> list[int]:
    """Iterations from ``--at`` values; each may hold several numbers separated by commas or
    spaces (``"0,10, 2000"``)."""
    ts = []
    for item in items:
        for word in re.split(r"[,\s]+", item.strip()):
            if word:
                ts.append(_whole_number(word, "iteration t", 0))
    return ts


class SpreadOptionCommand(TyperCommand):
    """A command whose ``--at`` takes several values: ``--at 0 10 2000`` is read as
    ``--at 0 --at 10 --at 2000``, keeping the order (click options take one value each)."""

    spread_options = ("--at",)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_option_values(args, self.spread_options))


def spread_option_values(args: list[str], options: tuple[str, ...]) -> list[str]:
    """Repeat the option before each number-like word that follows one of ``options``' values.

    Only words made of digits, signs, points, exponents, commas and spaces are taken (so a
    policy written after ``--at 0 10`` stays the POLICY argument); ``--`` ends the rewriting.

    >>> spread_option_values(["P", "--at", "0", "10", "--json", "5"], ("--at",))
    ['P', '--at', '0', '--at', '10', '--json', '5']
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            out.extend(args[i:])
            break
        out.append(word)
        i += 1
        if word in options:
            if i < len(args):  # the option's own value, whatever it looks like
                out.append(args[i])
                i += 1
        elif not any(word.startswith(opt + "=") for opt in options):
            continue
        option = word.split("=", 1)[0]
        while i < len(args) and _NUMBER_WORD.fullmatch(args[i]):
            out += [option, args[i]]
            i += 1
    return out


@app.command(cls=SpreadOptionCommand)
def values(
    policy: Annotated[str, typer.Argument(
        metavar="POLICY", help="The policy in notation, e.g. 'SIN2(k0=0.01, k1=0.06, l=2000)'.",
        show_default=False)],
    at: Annotated[Optional[List[str]], typer.Option(
        "--at", metavar="T",
        help="Iteration(s) t >= 0: --at 0 10 2000, --at 0,10,2000 or --at 0 --at 10.",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print only a JSON list of the LRs (floats).")] = False,
) -> None:
    """The learning rate of POLICY at the iterations given with --at (counted from 0)."""
    if not at:
        fail("give the iterations with --at T [T ...], e.g. --at 0 1000 2000")
    p = _policy(policy)
    ts = parse_iterations(list(at))
    if not ts:
        fail("give at least one iteration with --at T [T ...]")
    import numpy as np

    lrs = [float(v) for v in p.values(np.asarray(ts, dtype=np.float64))]
    if as_json:
        print(json.dumps(lrs, allow_nan=False))
        return

    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("t", justify="right")
    table.add_column("lr", justify="left")
    for t, lr in zip(ts, lrs):
        table.add_row(str(t), repr(lr))
    console = _console()
    console.print(Text(str(p)), soft_wrap=True)
    console.print(table)


# -- plot ---------------------------------------------------------------------------------
@app.command()
def plot(
    policies: Annotated[List[str], typer.Argument(
        metavar="POLICY", help="One or more policies in notation, drawn on one axis.",
        show_default=False)],
    iters: Annotated[str, typer.Option(
        "--iters", "-n", metavar="N", help="Plot iterations t = 0 .. N-1.",
        show_default=False)],
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="FILE", help="The figure file: FILE.png or FILE.svg.",
        show_default=False)],
    log: Annotated[bool, typer.Option("--log", help="Logarithmic LR axis.")] = False,
) -> None:
    """Plot the learning rate against the iteration for one or more policies."""
    from lrbench.reports.plots import figure_format, plot_schedules

    parsed = [_policy(text) for text in policies]
    n = _whole_number(iters, "--iters", 1)
    if not output.strip():
        fail("give the figure file with -o FILE.png or -o FILE.svg")
    figure_format(output)
    try:
        plot_schedules(parsed, n, path=output, log=log)
    except OSError as e:
        where = f" ({e.filename})" if e.filename and str(e.filename) != output else ""
        fail(f"cannot write {output!r}: {e.strerror or e}{where}")
    print(f"wrote {output}")
