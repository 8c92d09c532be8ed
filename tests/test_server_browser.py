"""The web pages in a real headless Chromium, on a phone-sized screen, served by a real uvicorn:
the leaderboard renders its table and its plot, a click leads to a run's page with its plots, and
the compare form leads to the comparison. Skipped without /usr/bin/chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from browser import browser  # noqa: F401  (the fixture)
from serving import live_server

from lrbench.ranking import rank, summarize
from lrbench.store import Store, task_key
from lrbench.store.testing import make_result, small_task

TASK = small_task(preset="digits-mlp")
POLICIES = ["FIX(k0=0.1)", "SIN2(k0=0.01, k1=0.1, l=200)", "STEP(k0=0.1, gamma=0.5, l=250)",
            "NSTEP(k0=0.1, gamma=0.1, l=[500, 750])", "EXP(k0=0.1, gamma=0.999)"]
PHONE = dict(width=390, height=844, mobile=True)

PROBE = """(() => {
  const imgs = [...document.images];
  return {
    title: document.title,
    h1: document.querySelector('h1') ? document.querySelector('h1').textContent : null,
    images: imgs.length,
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    widest_image: imgs.length ? Math.max(...imgs.map(i => i.getBoundingClientRect().width)) : 0,
    page_width: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    board_rows: document.querySelectorAll('table.leaderboard tr').length,
    first_policy: (document.querySelector('table.leaderboard tr:nth-child(2) td[title]') || {}).title,
    curve_rows: document.querySelectorAll('table.curve tr').length,
    compare_cols: document.querySelectorAll('table.compare tr:first-child th').length,
  };
})()"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('site') / 'site.sqlite'}"
    runs = [make_result(TASK, p, s, n_points=20) for p in POLICIES for s in range(3)]
    with Store.open(url) as store:
        store.record_many(runs)
        with live_server(store) as base:
            yield base, runs


def follow(browser, sid, expression):
    """Run ``expression`` (a click or a submit) and wait for the next page to load."""
    browser.events.clear()
    browser.evaluate(sid, expression)
    browser.wait_event("Page.loadEventFired", sid)
    browser.send("Runtime.evaluate", {"expression": "1"}, sid)


def test_leaderboard_run_and_compare_pages_in_chromium(browser, site):
    base, runs = site
    key = task_key(TASK)
    sid = browser.open(f"{base}/tasks/{key}", **PHONE)
    board = browser.evaluate(sid, PROBE)
    assert browser.errors(sid) == []
    assert board["board_rows"] == len(POLICIES) + 1
    assert board["first_policy"] == rank(summarize(runs), "top1")[0].stats.policy
    assert board["images"] == board["loaded"] == 1  # the learning-curve plot decoded
    assert board["page_width"] <= board["viewport"] == 390  # no sideways scrolling
    assert board["widest_image"] <= 390
    shot = browser.screenshot(sid)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    out = os.environ.get("LRBENCH_SCREENSHOT_DIR")
    if out:  # to look at it: LRBENCH_SCREENSHOT_DIR=/tmp pytest tests/test_server_browser.py
        Path(out, "leaderboard-phone.png").write_bytes(shot)

    # a run, by clicking its seed link in the first row
    follow(browser, sid, "document.querySelector('table.leaderboard a.run').click()")
    run = browser.evaluate(sid, PROBE)
    assert browser.errors(sid) == []
    assert run["title"].startswith("Run ") and board["first_policy"] in run["h1"]
    assert run["images"] == run["loaded"] == 2  # curves and LR schedule
    assert run["curve_rows"] == 20 + 1
    assert run["page_width"] <= 390

    # back to the leaderboard, tick two policies, compare
    follow(browser, sid, "document.querySelector('header a[href=\"/\"]').click()")
    follow(browser, sid, f"document.querySelector('a[href=\"/tasks/{key}\"]').click()")
    follow(browser, sid, """(() => {
        const boxes = document.querySelectorAll('input[type=checkbox]');
        boxes[0].checked = true; boxes[2].checked = true;
        document.querySelector('form button[type=submit]').click(); })()""")
    cmp = browser.evaluate(sid, PROBE)
    assert browser.errors(sid) == []
    assert cmp["title"].startswith("Compare") and cmp["compare_cols"] == 1 + 2
    assert cmp["images"] == cmp["loaded"] == 2
    assert cmp["page_width"] <= 390


def test_a_broken_plot_would_be_caught(browser, site, tmp_path):
    """The probe must be able to fail: a page whose plot URL answers 404 instead of a PNG."""
    base, _ = site
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><title>x</title>"
                    f"<img src='{base}/tasks/{'0' * 64}/curves.png'>")
    sid = browser.open(page.as_uri(), **PHONE)
    probe = browser.evaluate(sid, PROBE)
    assert probe["images"] == 1 and probe["loaded"] == 0
    sid = browser.open(f"{base}/runs/999999", **PHONE)
    assert browser.evaluate(sid, PROBE)["title"].startswith("Not found")
