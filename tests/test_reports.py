"""Reports: the Table VII rows and their four renderings, the figures, the HTML report, and the
report in a real headless Chromium (skipped when /usr/bin/chromium is absent)."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from lrbench import parse
from lrbench.ranking import rank, summarize
from lrbench.reports import figures, tables
from lrbench.reports.html import (
    render_html_report,
    report_figures,
    save_report_figures,
    write_html_report,
)
from lrbench.results import CurvePoint, RunResult
from lrbench.tasks import get_task

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ITERS, EVERY = 1000, 50
TASK = get_task("digits-mlp", max_iters=ITERS)

STEP = "STEP(k0=0.2, gamma=0.5, l=300)"
NSTEP = "NSTEP(k0=0.2, gamma=0.3, l=[400, 700, 850])"
SIN2 = "SIN2(k0=0.01, k1=0.3, l=100)"
COMP = "FIX(k0=0.05)[200] >> COS(k0=0.3, k1=0.0, l=800)"
FIX_LO, FIX_MID, FIX_HI = "FIX(k0=0.01)", "FIX(k0=0.05)", "FIX(k0=0.2)"
POLICIES = [STEP, NSTEP, SIN2, COMP, FIX_LO, FIX_MID, FIX_HI]


def synthetic_runs(policies=POLICIES, seeds=(0, 1, 2), diverge=()):
    """Deterministic made-up learning curves: accuracy grows with the LR summed so far and
    suffers from large LRs; each seed adds its own small noise."""
    out = []
    for k, notation in enumerate(policies):
        lr = parse(notation).values(np.arange(ITERS + 1))
        cum = np.cumsum(lr)
        for seed in seeds:
            rng = np.random.default_rng(1000 * k + seed)
            pts = []
            for it in range(EVERY, ITERS + 1, EVERY):
                if notation in diverge and it > ITERS // 2:
                    nan = math.nan
                    pts.append(CurvePoint(it, float(lr[it]), nan, nan, nan, nan, nan, nan, nan))
                    break
                acc = float(np.clip(0.97 - 0.6 * math.exp(-cum[it] / 3) - 2 * lr[it] ** 2
                                    + 0.01 * rng.standard_normal(), 0, 1))
                test_loss = 0.1 + 1.5 * (1 - acc)
                pts.append(CurvePoint(it, float(lr[it]), test_loss - 0.05, test_loss, acc,
                                      min(1.0, acc + 0.03), 0.9 + 0.05 * acc, 0.1 - 0.05 * acc, 0.02))
            status = "diverged" if notation in diverge else "done"
            out.append(RunResult(
                task=TASK, policy=notation, seed=seed, status=status,
                stop_reason="diverged" if status == "diverged" else "max_iters",
                iterations=pts[-1].iteration, curve=tuple(pts), wall_time=3.0 + seed,
            ))
    return out


@pytest.fixture(scope="module")
def runs():
    return synthetic_runs()


@pytest.fixture(scope="module")
def ranked(runs):
    return rank(summarize(runs))


def hand_stats(policies):
    """One single-seed run per policy, top-1 decreasing in list order (so the rank is known)."""
    runs = [
        RunResult(task=TASK, policy=p, seed=0, status="done", stop_reason="max_iters",
                  iterations=1000, wall_time=1.0,
                  curve=(CurvePoint(400 + i, 0.1, 0.02, 0.0377, 0.99 - 0.01 * i, 0.9999,
                                    0.9946, 0.0362, 0.0023),))
        for i, p in enumerate(policies)
    ]
    return summarize(runs)


# -- table rows ---------------------------------------------------------------------------
def test_table_rows_fill_the_paper_columns():
    policies = [
        "STEP(k0=0.001, gamma=0.85, l=7000)",
        "NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])",
        "SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000)",
        "FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)",
        "INV(k0=0.01, gamma=0.0001, p=0.75)",
        "POLY(k0=0.01, p=1.2, l=10000)",
        "STEP(k0=0.1, gamma=0.5, l=1000, k1=0.001)",
    ]
    rows = tables.table_rows(hand_stats(policies))
    assert [r["policy"] for r in rows] == [str(parse(p)) for p in policies]
    step, nstep, sinexp, comp, inv, poly, floor = rows
    params = ("k0", "k1", "gamma", "p", "l")

    def pick(row):
        return tuple(row[k] for k in params)

    assert step["lr"] == "STEP" and pick(step) == (0.001, None, 0.85, None, 7000)
    assert nstep["lr"] == "NSTEP" and pick(nstep) == (0.01, None, 0.9, None, [5000, 7000, 8000, 9000, 9500])
    assert sinexp["lr"] == "SINEXP" and pick(sinexp) == (0.00005, 0.006, 0.99994, None, 2000)
    assert comp["lr"] == comp["policy"] and pick(comp) == (None,) * 5
    assert comp["kind"] == "composite" and comp["n_params"] == 1 + 4 + 1
    assert pick(inv) == (0.01, None, 0.0001, 0.75, None)
    assert pick(poly) == (0.01, None, None, 1.2, 10000)
    assert pick(floor) == (0.1, 0.001, 0.5, None, 1000)
    assert [r["position"] for r in rows] == list(range(1, 8))
    assert step["top1_pct"] == pytest.approx(99.0) and step["top1_pct_std"] == 0.0
    assert step["top5_pct"] == pytest.approx(99.99) and step["iter"] == 400.0
    assert (step["ac"], step["cd"], step["cdac"]) == (0.9946, 0.0362, 0.0023)
    assert step["ld"] == pytest.approx(0.0177)

    display = [dict(zip(tables.COLUMNS, r)) for r in tables.display_rows(hand_stats(policies))]
    cells = dict(zip(["STEP", "NSTEP", "SINEXP", "COMPOSITE", "INV", "POLY", "FLOOR"], display))
    assert cells["FLOOR"]["LR"] == "STEP" and cells["FLOOR"]["k1"] == "0.001"
    assert cells["INV"]["p"] == "0.75" and cells["INV"]["gamma"] == "0.0001"
    assert cells["NSTEP"]["l"] == "5k, 7k, 8k, 9k, 9.5k"
    assert cells["SINEXP"]["k0"] == "0.00005" and cells["SINEXP"]["gamma"] == "0.99994"
    assert cells["STEP"]["Top-1 (%)"] == "99.00 ± 0.00"
    assert cells["STEP"]["#Iter"] == "400" and cells["STEP"]["LD"] == "0.0177"
    assert (cells["STEP"]["AC"], cells["STEP"]["CD"], cells["STEP"]["CDAC"]) == ("0.9946", "0.0362", "0.0023")
    comp_cells = cells["COMPOSITE"]
    assert comp_cells["LR"] == str(parse(policies[3]))
    assert all(comp_cells[c] == "" for c in ("k0", "k1", "gamma", "p", "l"))
    assert cells["STEP"]["k1"] == "" and cells["STEP"]["p"] == ""


def test_display_of_spread_ties_divergence_and_undefined(runs):
    st = summarize(synthetic_runs([STEP, FIX_HI], diverge=(FIX_HI,)))
    by_lr = {r[1]: dict(zip(tables.COLUMNS, r)) for r in tables.display_rows(st)}
    s = {x.function: x for x in st}
    assert by_lr["STEP"]["Top-1 (%)"] == f"{100 * s['STEP'].top1_mean:.2f} ± {100 * s['STEP'].top1_std:.2f}"
    assert by_lr["FIX"]["Top-1 (%)"].endswith("(3/3 diverged)")
    # undefined metric -> a dash
    lone = summarize([RunResult(task=TASK, policy=FIX_LO, seed=0, status="done", stop_reason="max_iters",
                                iterations=10, curve=(CurvePoint(10, 0.1, 1, 1, 0.5, 0.6, math.nan, math.nan, math.nan),))])
    cells = dict(zip(tables.COLUMNS, tables.display_rows(lone)[0]))
    assert cells["AC"] == cells["CD"] == cells["CDAC"] == tables.UNDEFINED


def test_milestones_and_params_compact():
    assert tables.format_milestones([60000, 65000]) == "60k, 65k"
    assert tables.format_milestones([150, 1234, 2000]) == "150, 1234, 2k"
    assert tables.format_milestones(list(range(1000, 21000, 1000))) == "1k, 2k, 3k, …, 19k, 20k"
    assert tables.format_param(0.00005) == "0.00005" and tables.format_param(2000) == "2000"
    assert tables.format_param(None) == ""


def test_plain_stats_are_ranked_by_top1_and_ranked_order_is_kept(runs):
    st = summarize(runs)
    by_top1 = [r.stats.policy for r in rank(st)]
    assert [r["policy"] for r in tables.table_rows(st)] == by_top1
    by_iter = rank(st, by="best_iter")
    assert [r["policy"] for r in tables.table_rows(by_iter)] == [r.stats.policy for r in by_iter]
    with pytest.raises(ValueError):
        tables.table_rows([st[0], by_iter[0]])


# -- renderings parse back ----------------------------------------------------------------
def _split_md(line):
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [c.strip().replace("\\|", "|").replace("\\\\", "\\") for c in cells]


def test_markdown_parses_back(ranked):
    md = tables.to_markdown(ranked)
    lines = md.strip().splitlines()
    assert _split_md(lines[0]) == list(tables.COLUMNS)
    assert all(re.fullmatch(r":?-+:?", c) for c in _split_md(lines[1]))
    body = [_split_md(line) for line in lines[2:]]
    assert body == tables.display_rows(ranked)
    assert any(row[1] == COMP for row in body)


def test_markdown_escapes_pipes_in_cells():
    from lrbench.ranking import PolicyStats

    (s,) = hand_stats([FIX_LO])
    odd = PolicyStats(**{**s.__dict__, "policy": "MY|POLICY"})
    md = tables.to_markdown([odd])
    assert "MY\\|POLICY" in md
    assert _split_md(md.strip().splitlines()[2])[1] == "MY|POLICY"


def test_csv_parses_back(ranked):
    rows = tables.table_rows(ranked)
    parsed = list(csv.DictReader(io.StringIO(tables.to_csv(ranked))))
    assert len(parsed) == len(rows)
    for want, got in zip(rows, parsed):
        assert list(got) == list(tables.FIELDS)
        for key in tables.FIELDS:
            w, g = want[key], got[key]
            if w is None:
                assert g == ""
            elif isinstance(w, bool):
                assert g == ("true" if w else "false")
            elif isinstance(w, list):
                assert json.loads(g) == w
            elif isinstance(w, (int, float)):
                assert float(g) == w  # full precision
            else:
                assert g == w


def test_json_parses_back(ranked):
    text = tables.to_json(ranked)
    assert json.loads(text) == tables.table_rows(ranked)
    st = summarize(synthetic_runs([FIX_LO]))
    st = [type(st[0])(**{**st[0].__dict__, "cdac_mean": math.nan, "cdac_std": math.nan})]
    assert json.loads(tables.to_json(st))[0]["cdac"] is None  # strict JSON: no NaN


def test_rich_table_renders_every_row(ranked):
    from rich.console import Console

    table = tables.to_rich(ranked, title="digits")
    assert [c.header for c in table.columns] == list(tables.COLUMNS)
    assert table.row_count == len(ranked)
    console = Console(record=True, width=250)
    console.print(table)
    text = console.export_text()
    assert "NSTEP" in text and "400, 700, 850" in text and COMP in text


# -- figures ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "notation, steps",
    [
        ("STEP(k0=0.1, gamma=0.5, l=300)", [300, 600, 900]),
        ("NSTEP(k0=0.2, gamma=0.3, l=[400, 700, 850])", [400, 700, 850]),
        ("STEP(k0=0.1, gamma=0.5, l=300, k1=0.01)", [300, 600, 900]),
        ("FIX(k0=0.05)[200] >> COS(k0=0.3, k1=0.0, l=800)", [200]),
        ("FIX(k0=0.1)[250] >> FIX(k0=0.01)", [250]),
        ("LIN(k0=0.0, k1=0.1, l=100)[100] >> COS(k0=0.1, k1=0.0, l=900)", []),
        ("FIX(k0=0.1)", []),
        ("EXP(k0=0.1, gamma=0.99)", []),
        ("INV(k0=0.1, gamma=0.01, p=0.75)", []),
        ("POLY(k0=0.1, p=2.0, l=600)", []),
        ("TRI(k0=0.01, k1=0.1, l=100)", []),
        ("SIN2(k0=0.01, k1=0.1, l=100)", []),
        ("SINEXP(k0=0.01, k1=0.1, gamma=0.999, l=100)", []),
        ("COS(k0=0.1, k1=0.0, l=100)", []),
    ],
)
def test_lr_steps_found_from_policy_values(notation, steps):
    assert figures.lr_steps(parse(notation), ITERS) == steps


def _vlines(ax):
    return sorted({line.get_xdata()[0] for line in ax.get_lines()
                   if line.get_linestyle() == ":" and line.get_xdata()[0] == line.get_xdata()[1]})


def test_learning_curves_figure(runs, tmp_path):
    fig = figures.plot_learning_curves(runs, order=[STEP, NSTEP, SIN2], path=tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC
    ax_acc, ax_loss = fig.axes
    solid = [line for line in ax_acc.get_lines() if line.get_linestyle() == "-"]
    assert [line.get_label() for line in solid] == [STEP, NSTEP, SIN2]
    # the mean curve is the mean over seeds, in percent
    its, mean, std = figures.mean_curve([r for r in runs if r.policy == STEP], "top1")
    np.testing.assert_allclose(solid[0].get_xdata(), its)
    np.testing.assert_allclose(solid[0].get_ydata(), 100 * mean)
    assert std.max() > 0 and len(ax_acc.collections) == 3  # shaded bands
    # dotted verticals at STEP's and NSTEP's steps, none for SIN2
    assert _vlines(ax_acc) == _vlines(ax_loss) == [300, 400, 600, 700, 850, 900]
    svg = tmp_path / "c.svg"
    figures.plot_learning_curves(runs, order=[COMP], path=svg)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    with pytest.raises(ValueError, match="png or .svg"):
        figures.save_figure(fig, tmp_path / "c.jpg")


def test_mean_curve_aligns_runs_of_different_lengths():
    def r(seed, pts):
        return RunResult(task=TASK, policy=FIX_LO, seed=seed, status="done", stop_reason="max_iters",
                         iterations=pts[-1][0], curve=tuple(CurvePoint(i, 0.1, 1, 1, a, a, 1, 0, 0) for i, a in pts))

    its, mean, std = figures.mean_curve([r(0, [(10, 0.2), (20, 0.4), (30, 0.9)]), r(1, [(10, 0.4), (20, 0.6)])], "top1")
    assert its.tolist() == [10, 20, 30]
    np.testing.assert_allclose(mean, [0.3, 0.5, 0.9])
    np.testing.assert_allclose(std, [0.1, 0.1, 0.0])


def test_fix_sweep_data_and_figure(tmp_path):
    def r(policy, seed, pts, status="done"):
        return RunResult(task=TASK, policy=policy, seed=seed, status=status, stop_reason="max_iters",
                         iterations=pts[-1][0], curve=tuple(CurvePoint(i, 0.1, 1, 1, a, a, 1, 0, 0) for i, a in pts))

    results = [
        r("FIX(k0=0.1)", 0, [(100, 0.5), (200, 0.7), (400, 0.6)]),
        r("FIX(k0=0.1)", 1, [(100, 0.3), (200, 0.5), (400, 0.6)]),
        r("FIX(k0=0.01)", 0, [(100, 0.3), (200, 0.4), (400, 0.8)]),
        r("FIX(k0=1.0)", 0, [(100, math.nan)], status="diverged"),
        r(SIN2, 0, [(100, 0.99)]),  # not a FIX policy: ignored
    ]
    k0s, curves = figures.fix_sweep(results, lengths=[100, 200, 400])
    assert k0s.tolist() == [0.01, 0.1, 1.0]
    np.testing.assert_allclose(curves[100], [0.3, 0.4, 0.0])
    np.testing.assert_allclose(curves[200], [0.4, 0.6, 0.0])
    np.testing.assert_allclose(curves[400], [0.8, 0.65, 0.0])
    fig = figures.plot_fix_sweep(results, lengths=[100, 400], iters_per_epoch=50, path=tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["2 epochs (100 iters)", "8 epochs (400 iters)"]
    np.testing.assert_allclose(lines[1].get_ydata(), [80, 65, 0])
    # default lengths: evaluations nearest 10/25/50/100 % of the longest run
    assert sorted(figures.fix_sweep(results)[1]) == [100, 200, 400]
    with pytest.raises(ValueError, match="at least 2 FIX"):
        figures.fix_sweep([results[0], results[4]])


def test_pareto_figure(runs, tmp_path):
    st = summarize(runs)
    fig = figures.plot_pareto(st, path=tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC
    from lrbench.ranking import pareto_front

    front = pareto_front(st)
    (ax,) = fig.axes
    stair = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
    assert len(stair) == 1
    np.testing.assert_allclose(stair[0].get_xdata(), [s.best_iter_mean for s in front])
    np.testing.assert_allclose(stair[0].get_ydata(), [100 * s.top1_mean for s in front])
    assert [t.get_text() for t in ax.texts] == [str(i) for i in range(1, len(front) + 1)]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["dominated", "Pareto front"] or legend[:1] == ["Pareto front"]
    assert [f"{i}: {s.policy}" for i, s in enumerate(front, 1)] == [t for t in legend if t[0].isdigit()]


def test_figures_do_not_touch_pyplot(runs):
    import sys

    figures.plot_pareto(summarize(runs))
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


# -- HTML report --------------------------------------------------------------------------
def _data_uris(text):
    return re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)


def test_html_report_content(runs, ranked, tmp_path):
    title = 'Digits <script>alert("x")</script> & co'
    path = write_html_report(tmp_path / "sub" / "report.html", TASK, ranked, runs, title=title,
                             ranked_by="top1")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    # escaped title, no script at all
    assert "<script" not in text.lower()
    assert "Digits &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in text
    # self-contained: no URL anywhere, every image inline
    assert not re.search(r"https?://", text, re.I)
    assert not re.search(r"<link|@import|url\(", text, re.I)
    assert re.findall(r'src="([^"]*)"', text) and all(
        s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', text))
    pngs = [base64.b64decode(d) for d in _data_uris(text)]
    assert len(pngs) == 4  # schedules, learning curves, FIX sweep, Pareto
    assert all(p[:8] == PNG_MAGIC for p in pngs)
    # the Table VII rows, escaped
    import html as html_mod

    for cells in tables.display_rows(ranked):
        row_html = "".join(f"<td>{html_mod.escape(c)}</td>" for c in cells[2:])
        assert row_html in text
    assert html_mod.escape(COMP) in text and "&gt;&gt;" in text
    assert "400, 700, 850" in text
    for r in ranked:
        assert f"<td class='pos'>{r.position}</td>" in text
    # task fields
    assert "<th>batch_size</th><td class='text'>32</td>" in text


def test_html_report_without_fix_sweep_and_from_plain_stats(tmp_path):
    runs = synthetic_runs([STEP, FIX_LO, SIN2], seeds=(0,))
    text = render_html_report("MNIST & LeNet, 10k iterations", summarize(runs), runs)
    assert len(_data_uris(text)) == 3  # one FIX policy: no FIX sweep
    assert "<p>MNIST &amp; LeNet, 10k iterations</p>" in text
    assert "Accuracy vs FIX" not in text
    no_runs = render_html_report({"dataset": "x"}, summarize(runs), [])
    assert len(_data_uris(no_runs)) == 1  # Pareto only: no curves, no length for schedules
    no_runs = render_html_report({"dataset": "x"}, summarize(runs), [], iters=500)
    assert len(_data_uris(no_runs)) == 2  # schedules and Pareto


def test_report_figures_saved_as_files_match_the_report(runs, ranked, tmp_path):
    figs = report_figures(ranked, runs, iters=ITERS)
    assert [f.name for f in figs] == ["schedules", "curves", "fix_sweep", "pareto"]
    paths = save_report_figures(tmp_path / "figs", figs)
    assert [p.name for p in paths] == [f"{f.name}.png" for f in figs]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC
    # the same figures, in the same order, as the HTML report's sections
    text = render_html_report(TASK, ranked, runs)
    order = [text.index(f"<h2>{f.heading}</h2>") for f in figs]
    assert order == sorted(order)
    one_fix = synthetic_runs([STEP, FIX_LO], seeds=(0,))
    assert "fix_sweep" not in [f.name for f in report_figures(summarize(one_fix), one_fix,
                                                               iters=ITERS)]


# -- in a real browser --------------------------------------------------------------------
from browser import browser  # noqa: E402, F401  (the fixture)


PAGE_PROBE = """(() => {
  const imgs = [...document.images];
  const box = document.querySelector('table.table-vii').parentElement;
  return {
    images: imgs.length,
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    widest_image: Math.max(...imgs.map(i => i.getBoundingClientRect().width)),
    page_width: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    table_scrolls: box.scrollWidth > box.clientWidth,
    table_rows: document.querySelectorAll('table.table-vii tr').length,
  };
})()"""


def test_report_in_headless_chromium_on_a_phone(browser, runs, ranked, tmp_path):
    path = write_html_report(tmp_path / "report.html", TASK, ranked, runs, title="Digits report")
    sid = browser.open(path.as_uri(), 390, 844, mobile=True)
    probe = browser.evaluate(sid, PAGE_PROBE)
    assert browser.errors(sid) == []
    assert probe["images"] == probe["loaded"] == 4
    assert probe["table_rows"] == len(ranked) + 1
    # readable on a phone: the page does not scroll sideways, the wide table does, in its box
    assert probe["page_width"] <= probe["viewport"] == 390
    assert probe["table_scrolls"]
    assert probe["widest_image"] <= 390
    shot = browser.screenshot(sid)
    assert shot[:8] == PNG_MAGIC
    out = os.environ.get("LRBENCH_SCREENSHOT_DIR")
    if out:  # to look at it: LRBENCH_SCREENSHOT_DIR=/tmp pytest tests/test_reports.py
        Path(out, "report-phone.png").write_bytes(shot)


def test_browser_check_catches_console_errors_and_broken_images(browser, tmp_path):
    """The harness above must be able to fail."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><table class='table-vii'><tr><td>x</td></tr></table>"
        "<img src='data:image/png;base64,AAAA'><script>console.error('boom')</script></body></html>"
    )
    sid = browser.open(bad.as_uri(), 800, 600, mobile=False)
    probe = browser.evaluate(sid, PAGE_PROBE)
    assert probe["images"] == 1 and probe["loaded"] == 0
    assert any("boom" in e for e in browser.errors(sid))
