"""``lrbench functions``, ``lrbench values``, ``lrbench plot`` (issue #2, item 6) and
:func:`lrbench.reports.plots.plot_schedules`.

A few cases run the real entry point in a subprocess (``python -m lrbench.cli``); the rest call
``lrbench.cli.main(argv)`` in-process and catch its SystemExit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lrbench.cli import main
from lrbench.cli.policies import FORMULAS, function_rows, spread_option_values
from lrbench.policies import FUNCTIONS, PAPER_FUNCTIONS, Composite, parse
from lrbench.reports.plots import check_iters, figure_format, plot_schedules, schedule_points

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: One policy of every function, with only the required parameters.
EXAMPLES = {
    "FIX": "FIX(k0=0.01)",
    "STEP": "STEP(k0=0.1, gamma=0.5, l=10)",
    "NSTEP": "NSTEP(k0=0.01, gamma=0.1, l=[5, 7, 20])",
    "EXP": "EXP(k0=0.1, gamma=0.99)",
    "INV": "INV(k0=0.01, gamma=0.0001, p=0.75)",
    "POLY": "POLY(k0=0.1, p=1.2, l=30)",
    "TRI": "TRI(k0=0.01, k1=0.06, l=7)",
    "TRI2": "TRI2(k0=0.01, k1=0.06, l=7)",
    "TRIEXP": "TRIEXP(k0=0.01, k1=0.06, gamma=0.99, l=7)",
    "SIN": "SIN(k0=0.01, k1=0.06, l=7)",
    "SIN2": "SIN2(k0=0.01, k1=0.06, l=7)",
    "SINEXP": "SINEXP(k0=0.01, k1=0.06, gamma=0.99, l=7)",
    "COS": "COS(k0=0.1, k1=0.0, l=9)",
    "LIN": "LIN(k0=0.0, k1=0.1, l=10)",
}
COMPOSITES = [
    "FIX(k0=0.1)[15] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=20)",
    "LIN(k0=0.0, k1=0.1, l=5)[5] >> (COS(k0=0.1, k1=0.0, l=10)[10] >> FIX(k0=0.001))[30]"
    " >> POLY(k0=0.01, p=2.0, l=40, k1=0.001)",
]
TS = [0, 1, 2, 5, 6, 7, 9, 10, 14, 15, 19, 20, 21, 29, 30, 31, 44, 45, 100, 1000, 123456]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``lrbench argv`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else code), out, err


def run_process(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrbench.cli", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def assert_user_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("lrbench: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    for word in words:
        assert word.lower() in err.lower(), err


def assert_png(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    assert image[..., :3].std() > 0.01  # not a blank picture
    return image


def assert_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert path.read_text().lstrip().startswith("<?xml")


# -- the real entry point ------------------------------------------------------------------
def test_process_values_json_is_exact(tmp_path):
    notation = COMPOSITES[1]
    r = run_process(["values", notation, "--at", "0", "4", "5", "14,15", "--at", "44", "45",
                     "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout) == parse(notation).values([0, 4, 5, 14, 15, 44, 45]).tolist()
    assert r.stdout.count("\n") == 1


def test_process_plot_png(tmp_path):
    out = tmp_path / "lr.png"
    r = run_process(["plot", EXAMPLES["STEP"], COMPOSITES[0], "--iters", "100", "-o", str(out),
                     "--log"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert_png(out)


@pytest.mark.parametrize("argv", [[], ["db"]])
def test_process_no_arguments_prints_the_help_once(argv, tmp_path):
    r = run_process(argv, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Usage:") == 1, r.stdout
    assert "Commands" in r.stdout and r.stderr == ""


def test_process_functions(tmp_path):
    r = run_process(["functions"], tmp_path)
    assert r.returncode == 0, r.stderr
    for name in FUNCTIONS:
        assert name in r.stdout
    assert "composite" in r.stdout


def test_process_matplotlib_is_imported_only_to_plot(tmp_path):
    code = ("import sys, lrbench.cli.policies, lrbench.reports.plots;"
            " print('matplotlib' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [
    ["values", "STEP(k0=0.1, gamma=", "--at", "0"],
    ["values", EXAMPLES["STEP"], "--at", "-5"],
    ["plot", EXAMPLES["FIX"], "--iters", "0", "-o", "x.png"],
    ["no-such-command"],
])
def test_process_bad_input_is_one_line(tmp_path, argv):
    r = run_process(argv, tmp_path)
    assert_user_error(r.returncode, r.stdout, r.stderr)
    assert list(tmp_path.iterdir()) == []


# -- functions -----------------------------------------------------------------------------
def test_every_function_has_a_formula():
    assert set(FORMULAS) == set(FUNCTIONS)
    assert all(FORMULAS.values())


def test_functions_json(capsys):
    code, out, err = run(["functions", "--json"], capsys)
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["name"] for r in rows] == [*FUNCTIONS, "COMPOSITE"]
    assert rows == function_rows()
    for row in rows[:-1]:
        cls = FUNCTIONS[row["name"]]
        assert row["kind"] == cls.kind
        assert row["paper"] == (row["name"] in PAPER_FUNCTIONS)
        assert row["params"] == list(cls.param_names)
        assert row["optional"] == list(cls.optional)
        assert row["formula"] == FORMULAS[row["name"]]
        assert row["summary"] and "``" not in row["summary"]
        # #Param as shown agrees with the policies themselves
        policy = parse(EXAMPLES[row["name"]])
        if row["name"] == "NSTEP":
            assert row["n_params"].startswith("n + 2")
            assert policy.n_params == len(policy.params["l"]) + 2
        else:
            assert int(row["n_params"].split()[0]) == policy.n_params
    assert sum(r["paper"] for r in rows) == 13
    decaying = [r for r in rows if r["kind"] == "decaying"]
    assert decaying and all(r["optional"] == ["k1"] and "with k1" in r["n_params"]
                            for r in decaying)
    assert rows[-1]["kind"] == "composite"


def test_functions_table(capsys):
    code, out, err = run(["functions"], capsys)
    assert code == 0 and err == ""
    for name in FUNCTIONS:
        assert f" {name} " in out
    for word in ("fixed", "decaying", "cyclic", "ramp", "composite", "#Param", "g(t)",
                 "optional: k1", "gamma^floor(t / l)", "A[n] >> B", "half period"):
        assert word in out, word


# -- values --------------------------------------------------------------------------------
@pytest.mark.parametrize("notation", [*EXAMPLES.values(), *COMPOSITES])
def test_values_json_equals_policy_values(capsys, notation):
    code, out, err = run(["values", notation, "--at", *map(str, TS), "--json"], capsys)
    assert code == 0 and err == ""
    assert out.endswith("\n") and out.count("\n") == 1
    got = json.loads(out)
    assert all(isinstance(v, float) for v in got)
    assert got == parse(notation).values(TS).tolist()


@pytest.mark.parametrize("at", [
    ["--at", "0", "10", "2000", "25"],
    ["--at", "0,10,2000,25"],
    ["--at", "0, 10 2000,25"],
    ["--at", "0", "--at", "10", "--at", "2000", "--at", "25"],
    ["--at", "0", "10", "--at", "2000", "25"],
    ["--at=0", "10", "2000,25"],
    ["--at", "0", "1e1", "2e3", "25.0"],
])
def test_values_ways_to_give_iterations(capsys, at):
    notation = EXAMPLES["STEP"]
    code, out, err = run(["values", notation, *at, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out) == parse(notation).values([0, 10, 2000, 25]).tolist()


def test_values_policy_after_the_iterations(capsys):
    code, out, _ = run(["values", "--json", "--at", "3", "12", EXAMPLES["STEP"]], capsys)
    assert code == 0
    assert json.loads(out) == [0.1, 0.05]


def test_values_table_has_full_precision(capsys):
    notation = EXAMPLES["SINEXP"]
    code, out, err = run(["values", notation, "--at", "0", "3", "123456"], capsys)
    assert code == 0 and err == ""
    policy = parse(notation)
    assert str(policy) in out
    lines = out.splitlines()
    for t, lr in zip((0, 3, 123456), policy.values([0, 3, 123456]).tolist()):
        row = next(line for line in lines if line.split()[:1] == [str(t)])
        assert row.split()[1] == repr(lr)


def test_spread_option_values():
    assert spread_option_values(["P", "--at", "0", "1,2", "-5", "--json", "7"], ("--at",)) == [
        "P", "--at", "0", "--at", "1,2", "--at", "-5", "--json", "7"]
    assert spread_option_values(["--at", "x", "3", "P"], ("--at",)) == ["--at", "x", "--at", "3", "P"]
    assert spread_option_values(["P", "--", "--at", "3", "4"], ("--at",)) == [
        "P", "--", "--at", "3", "4"]


@pytest.mark.parametrize("argv, words", [
    (["values", "STEP(k0=0.1, gamma=", "--at", "0"], ["cannot parse policy"]),
    (["values", "FOO(k0=1)", "--at", "0"], ["unknown LR function 'FOO'"]),
    (["values", "STEP(k0=-0.1, gamma=0.5, l=10)", "--at", "0"], ["k0", "-0.1"]),
    (["values", EXAMPLES["STEP"], "--at", "-5"], ["iteration", "-5"]),
    (["values", EXAMPLES["STEP"], "--at", "0", "-5"], ["iteration", "-5"]),
    (["values", EXAMPLES["STEP"], "--at", "0,-5"], ["iteration", "-5"]),
    (["values", EXAMPLES["STEP"], "--at", "abc"], ["iteration", "abc"]),
    (["values", EXAMPLES["STEP"], "--at", "1.5"], ["iteration", "1.5"]),
    (["values", EXAMPLES["STEP"], "--at", "nan"], ["iteration", "nan"]),
    (["values", EXAMPLES["STEP"], "--at", "inf"], ["iteration", "inf"]),
    (["values", EXAMPLES["STEP"], "--at", ","], ["at least one iteration"]),
    (["values", EXAMPLES["STEP"]], ["--at"]),
    (["values", EXAMPLES["STEP"], "--at"], ["--at"]),
    (["values", EXAMPLES["STEP"], "--at", "0", "--jsn"], ["--jsn"]),
    (["values", EXAMPLES["STEP"], "5"], ["unexpected", "5"]),
    (["values", "10", "--at", "0"], ["policy", "'10'"]),
    (["values", "--at", "0"], ["POLICY"]),
    (["values"], ["POLICY"]),
])
def test_values_bad_input(capsys, argv, words):
    assert_user_error(*run(argv, capsys), *words)


# -- plot ----------------------------------------------------------------------------------
def test_plot_png_and_svg(tmp_path, capsys):
    png, svg = tmp_path / "a.png", tmp_path / "deeper" / "b.SVG"
    policies = [EXAMPLES["STEP"], EXAMPLES["COS"], COMPOSITES[1]]
    code, out, err = run(["plot", *policies, "--iters", "200", "-o", str(png)], capsys)
    assert code == 0 and err == "" and str(png) in out
    assert_png(png)
    code, out, err = run(["plot", *policies, "-n", "2e3", "--output", str(svg), "--log"], capsys)
    assert code == 0 and err == ""
    assert_svg(svg)


@pytest.mark.parametrize("args, words", [
    (["--iters", "0", "-o", "x.png"], ["--iters", "'0'"]),
    (["--iters", "-5", "-o", "x.png"], ["--iters", "-5"]),
    (["--iters", "abc", "-o", "x.png"], ["--iters", "abc"]),
    (["--iters", "2.5", "-o", "x.png"], ["--iters", "2.5"]),
    (["-o", "x.png"], ["--iters"]),
    (["--iters", "10"], ["--output"]),
    (["--iters", "10", "-o", ""], ["-o"]),
    (["--iters", "10", "-o", "x.jpg"], [".png or .svg", "x.jpg"]),
    (["--iters", "10", "-o", "x"], [".png or .svg"]),
    (["--iters", "10", "-o", "file.txt/x.png"], ["cannot write", "not a folder"]),
    (["--iters", "10", "-o", "folder.png"], ["cannot write", "folder.png"]),
])
def test_plot_bad_input(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("a file, not a folder")
    (tmp_path / "folder.png").mkdir()
    assert_user_error(*run(["plot", EXAMPLES["FIX"], *args], capsys), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "folder.png"]


@pytest.mark.parametrize("policies, words", [
    ([EXAMPLES["FIX"], "STEP(k0=0.1)"], ["STEP", "gamma"]),
    (["FIX(k0=0.1)[10]"], ["cannot parse policy"]),
    ([], ["POLICY"]),
])
def test_plot_bad_policies(tmp_path, capsys, policies, words):
    out = tmp_path / "x.png"
    assert_user_error(*run(["plot", *policies, "-n", "10", "-o", str(out)], capsys), *words)
    assert not out.exists()


# -- the rest of the command line ----------------------------------------------------------
@pytest.mark.parametrize("argv", [["no-such-command"], ["functions", "extra"],
                                  ["functions", "--no-such-option"]])
def test_click_usage_errors_are_one_line(capsys, argv):
    assert_user_error(*run(argv, capsys))


def test_help(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for command in ("functions", "values", "plot"):
        assert command in out
    code, out, _ = run(["values", "--help"], capsys)
    assert code == 0 and "--at" in out and "--json" in out


# -- plot_schedules ------------------------------------------------------------------------
def test_plot_schedules_draws_exact_points_labelled_by_notation():
    policies = [parse(EXAMPLES["TRI"]), parse(COMPOSITES[0])]
    fig = plot_schedules(policies, 50)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in map(str, policies)]
    assert [line.get_label() for line in lines] == [str(p) for p in policies]
    for line, policy in zip(lines, policies):
        ts = np.asarray(line.get_xdata())
        assert ts.tolist() == list(range(50))
        assert np.array_equal(np.asarray(line.get_ydata()), policy.values(ts))
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    # the composite's switch point is marked
    assert any(list(line.get_xdata()) == [15, 15] for line in ax.get_lines())
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert fig.legends and len(fig.legends[0].get_texts()) == 2


def test_plot_schedules_log_masks_zero(tmp_path):
    cos = parse("COS(k0=0.1, k1=0.0, l=10)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_schedules([cos, "POLY(k0=0.1, p=1.0, l=15)"], 40, path=tmp_path / "l.png",
                             log=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    y = np.asarray(ax.get_lines()[0].get_ydata(), dtype=float)
    assert np.isnan(y[10]) and np.isnan(y[30]) and y[0] == 0.1
    assert np.all(np.isnan(y) | (y > 0))
    assert_png(tmp_path / "l.png")


def test_plot_schedules_accepts_one_policy_and_saves_nothing_without_path(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = plot_schedules(EXAMPLES["FIX"], 1)
    assert fig.axes[0].get_legend_handles_labels()[1] == [EXAMPLES["FIX"]]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("iters", [4001, 60_000, 2_000_000])
def test_schedule_points_keeps_every_range_extremes(iters):
    policy = parse("TRI(k0=0.001, k1=0.01, l=7)[1000]"
                   " >> NSTEP(k0=0.05, gamma=0.5, l=[1234, 5678])")
    ts, lrs = schedule_points(policy, iters, bins=500)
    assert ts[0] == 0 and ts[-1] == iters - 1 and np.all(np.diff(ts) > 0)
    assert np.array_equal(lrs, policy.values(ts))
    full = policy.values(np.arange(iters))
    edges = np.floor(np.arange(501) * iters / 500).astype(int)
    kept = set(ts.astype(int).tolist())
    for a, b in zip(edges[:-1], edges[1:]):
        seg = full[a:b]
        assert any(full[t] == seg.max() for t in kept if a <= t < b)
        assert any(full[t] == seg.min() for t in kept if a <= t < b)


def test_schedule_points_samples_very_long_schedules():
    policy = parse("TRI(k0=0.001, k1=0.01, l=7)")
    ts, lrs = schedule_points(policy, 10**9, bins=200)
    assert ts[0] == 0 and ts[-1] == 10**9 - 1
    assert np.array_equal(lrs, policy.values(ts))
    # every range still shows the whole band of the short cycle
    edges = np.floor(np.arange(201) * 10**9 / 200)
    bins = np.searchsorted(edges, ts, side="right") - 1
    for b in range(200):
        sel = lrs[bins == b]
        assert sel.min() == pytest.approx(0.001) and sel.max() == pytest.approx(0.01)


def test_plot_helpers_validate():
    assert figure_format("a/B.PNG") == "png" and figure_format("x.svg") == "svg"
    for bad in ("x.jpg", "x", "x.png.txt"):
        with pytest.raises(ValueError, match="png or .svg"):
            figure_format(bad)
    assert check_iters(5) == 5 and check_iters(2000.0) == 2000
    for bad in (0, -1, 2.5, float("nan"), True, "10"):
        with pytest.raises(ValueError, match="iters"):
            check_iters(bad)
    with pytest.raises(ValueError, match="at least one policy"):
        plot_schedules([], 10)
    with pytest.raises(ValueError, match="cannot parse"):
        plot_schedules(["FIX(k0="], 10)
    assert isinstance(parse(COMPOSITES[0]), Composite)
