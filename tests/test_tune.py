"""``lrbench tune`` (lrbench.tuning.tune): candidates, the rung plan, successive-halving
bookkeeping, the hard budget, target accuracy, the drop rule, the store and the CLI.

Most tests inject a cheap fake ``evaluate`` (a made-up learning curve per policy, no torch) so
that the bookkeeping can be checked exactly and over many budgets; the last ones run the real
trainer on digits-mlp end to end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrbench.policies import parse
from lrbench.results import CurvePoint, RunResult
from lrbench.tasks import get_task, make_task
from lrbench.tuning.candidates import (
    CYCLIC_FUNCTIONS,
    DECAYING_FUNCTIONS,
    cyclic_lengths,
    generate_candidates,
)
from lrbench.tuning.halving import (
    RungPlan,
    plan_cost,
    plan_rungs,
    predicted_top1,
    should_drop,
)
from lrbench.tuning.recommend import rescale_policy
from lrbench.tuning.tune import (
    LOOKUP_MIN_SIMILARITY,
    RANGE_MAX_LRS,
    above_fits,
    above_lr,
    choose_mantissas,
    find_above_lr,
    lookup_skips,
    midpoint_lr,
    range_candidates,
    range_max_lrs,
    range_test_iters,
    tune,
)
from lrbench.tuning.rangetest import check_mantissas, lr_grid

TASK = get_task("digits-mlp")  # max_iters 1000, eval_every 50
EPOCH = 42  # digits: 1347 training samples // batch 32


# -- a fake world: made-up learning curves, no training ------------------------------------------
def _hash01(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


class Fake:
    """``evaluate(task, policy, seed, target)``: top-1 at iteration t is
    ``q * (1 - exp(-t / tau)) + 0.001 * seed``, evaluated every ``task.eval_every`` and at
    ``max_iters``; a run stops at the first evaluation reaching ``target``. FIX(k0) has a
    range-test-like q peaking at 0.05 and diverges at step 3 for k0 >= ``diverge_from`` (1);
    other policies get
    q in [0.5, 0.95] from a hash of their notation, unless ``quality`` says otherwise.
    A run of length r is exactly the first r iterations of a longer one, as on the CPU."""

    def __init__(self, quality=None, tau=None, default_tau=150.0, diverge_from=1.0):
        self.quality = quality or {}
        self.diverge_from = diverge_from
        self.taus = tau or {}
        self.default_tau = default_tau
        self.calls: list[tuple[int, str, int]] = []
        self.trained: list[int] = []

    def q(self, policy: str) -> float:
        if policy in self.quality:
            return self.quality[policy]
        p = parse(policy)
        if p.name == "FIX":
            return max(0.1, 0.95 - 0.15 * abs(math.log10(p.params["k0"] / 0.05)))
        return 0.5 + 0.45 * _hash01(policy)

    def tau(self, policy: str) -> float:
        return self.taus.get(policy, self.default_tau)

    def top1(self, policy: str, seed: int, t: int) -> float:
        return self.q(policy) * (1 - math.exp(-t / self.tau(policy))) + 0.001 * seed

    def __call__(self, task, policy, seed, target):
        self.calls.append((task.max_iters, policy, seed))
        length, every = task.max_iters, task.eval_every
        p = parse(policy)
        diverge = 3 if p.name == "FIX" and p.params["k0"] >= self.diverge_from else None
        points, status, reason, iters = [], "done", "max_iters", length
        for t in sorted({*range(every, length + 1, every), length}):
            if diverge is not None and t >= diverge:
                status, reason, iters = "diverged", "diverged", diverge
                break
            a = self.top1(policy, seed, t)
            points.append(CurvePoint(t, 0.1, 0.5, 0.6, a, min(1.0, a + 0.02), 0.8, 0.1, 0.1))
            if target is not None and a >= target:
                reason, iters = "target", t
                break
        self.trained.append(iters)
        return RunResult(task=task, policy=policy, seed=seed, status=status, stop_reason=reason,
                         iterations=iters, curve=tuple(points), n_params=p.n_params)


def trained_candidates(fake: Fake, candidates, full: int = TASK.max_iters) -> set[str]:
    """The ``candidates`` the fake trained, each at any length (rescaled to it, as tune's
    default ``low_rungs='rescaled'`` trains them); a call matching none is an error."""
    out = set()
    for length, policy, _ in fake.calls:
        match = {c for c in candidates if str(rescale_policy(c, length / full)) == policy}
        assert match, f"{policy} at {length} iterations is no candidate rescaled"
        out |= match
    return out


def fake_tune(budget, fake=None, **kwargs):
    """tune with the fake trainer. The tests of its mechanics pin eta 3 and the paper's grid,
    the settings their figures were worked out with; tune's defaults have their own tests
    (``tune_defaults``)."""
    kwargs.setdefault("epoch_iters", EPOCH)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("eta", 3)
    kwargs.setdefault("mantissas", (1, 3))
    fake = fake if fake is not None else Fake()
    return tune(kwargs.pop("task", TASK), budget, evaluate=fake, **kwargs), fake


# -- candidates ----------------------------------------------------------------------------------
def test_candidates_from_a_range():
    cs = generate_candidates((0.03, 0.1), epoch=EPOCH, length=1000, best_lr=0.05)
    by_name: dict[str, list] = {}
    for c in cs:
        p = parse(c.policy)
        assert str(p) == c.policy and c.kind == p.kind and c.source == "range"
        by_name.setdefault(p.name, []).append(p)
    # every family: FIX, the composite, the 7 cyclic and 5 decaying functions
    assert set(by_name) == {"FIX", "COMPOSITE", *CYCLIC_FUNCTIONS, *DECAYING_FUNCTIONS}
    assert {c.kind for c in cs} == {"fixed", "composite", "cyclic", "decaying"}
    assert len(cs) == len({c.policy for c in cs}) == 1 + 1 + 7 * 3 + 5
    assert cs[0].policy == "FIX(k0=0.05)"
    for name in CYCLIC_FUNCTIONS:  # k0 a decade below the range, k1 its top, l = 2, 4, 8 epochs
        ps = by_name[name]
        assert [p.params["l"] for p in ps] == [2 * EPOCH, 4 * EPOCH, 8 * EPOCH]
        assert all(p.params["k0"] == 0.003 and p.params["k1"] == 0.1 for p in ps)
        if name in ("TRIEXP", "SINEXP"):
            assert all(abs(p.params["gamma"] ** 1000 - 0.01) < 1e-4 for p in ps)
    for name in DECAYING_FUNCTIONS:  # from the top of the range
        assert by_name[name][0].params["k0"] == 0.1
    assert by_name["NSTEP"][0].params["l"] == (500, 750)
    assert by_name["STEP"][0].params["l"] == 200
    assert by_name["POLY"][0].params["l"] == 1000
    assert abs(by_name["EXP"][0](1000) - 0.001) < 1e-6  # decays to 1% at the full length
    comp = by_name["COMPOSITE"][0]  # warm-up over one epoch, then cosine to 0 at the end
    assert comp(0) == pytest.approx(0.003) and comp(EPOCH) == pytest.approx(0.1)
    assert comp(999) == pytest.approx(0.0, abs=1e-6)


def test_candidates_default_fix_and_short_tasks():
    cs = generate_candidates((0.01, 1.0), epoch=100, length=300)
    assert cs[0].policy == "FIX(k0=0.1)"  # the geometric middle of the range
    assert cyclic_lengths(100, 300) == (150,)  # no multiple of 2 epochs fits: half the length
    assert {parse(c.policy).params.get("l") for c in cs if c.kind == "cyclic"} == {150}
    assert cyclic_lengths(42, 1000, (1, 3)) == (42, 126)


def test_candidates_above_the_range_peak_one_step_higher():
    base = generate_candidates((0.03, 0.1), epoch=EPOCH, length=1000, best_lr=0.05)
    wide = generate_candidates((0.03, 0.1), epoch=EPOCH, length=1000, best_lr=0.05, above=0.3)
    assert wide[:len(base)] == base  # the usual candidates first, in their order
    extra = [parse(c.policy) for c in wide[len(base):]]
    assert len(extra) == len(base) - 1 == 27  # all but FIX again
    assert sorted(p.name for p in extra) == sorted(parse(c.policy).name for c in base[1:])
    for p in extra:
        if p.name in CYCLIC_FUNCTIONS:
            assert (p.params["k0"], p.params["k1"]) == (0.003, 0.3)
        elif p.name in DECAYING_FUNCTIONS:
            assert p.params["k0"] == 0.3
        else:  # the warm-up + cosine composite peaks at 0.3 after one epoch
            assert p.name == "COMPOSITE" and p(EPOCH) == pytest.approx(0.3)
    # the same set as the candidates of the range (0.03, 0.3) joined to those of (0.03, 0.1)
    top = generate_candidates((0.03, 0.3), epoch=EPOCH, length=1000, best_lr=0.05)
    assert [c.policy for c in wide] == list(dict.fromkeys(
        [c.policy for c in base] + [c.policy for c in top]))


def test_above_lr_is_the_next_lr_up_that_trained():
    assert above_lr(0.1) == 0.3 and above_lr(0.03) == 0.1 and above_lr(0.02) == 0.03
    assert above_lr(1.0) is None  # the top of the paper's grid
    r, _ = fake_tune(6000)  # the fake's FIX peaks at 0.05 and diverges from 1
    rt = r.range_test
    hi = rt.good_range[1]
    nxt = next(p for p in rt.points if p.lr > hi)
    assert nxt.status == "ok" and above_lr(hi, rt) == nxt.lr
    assert above_lr(rt.points[-1].lr, rt) is None  # nothing tried above
    for status in ("diverged", "unstable", "failed"):
        points = tuple(dataclasses.replace(p, status=status) if p is nxt else p
                       for p in rt.points)
        assert above_lr(hi, dataclasses.replace(rt, points=points)) is None


def test_midpoint_lr_is_the_geometric_middle_to_two_digits():
    assert midpoint_lr(0.03, 0.1) == 0.055 and midpoint_lr(0.1, 0.3) == 0.17
    assert midpoint_lr(0.001, 0.003) == 0.0017 and midpoint_lr(0.3, 1.0) == 0.55
    assert midpoint_lr(0.05, 0.05) == 0.05


@given(lo=st.floats(1e-6, 10.0), ratio=st.floats(1.0, 1e4))
@settings(max_examples=300, deadline=None, database=None)
def test_midpoint_lr_lies_between_to_two_digits(lo, ratio):
    hi = lo * ratio
    mid = midpoint_lr(lo, hi)
    # within rounding to 2 significant digits of sqrt(lo * hi), so between lo and hi up to it
    assert mid == pytest.approx(math.sqrt(lo * hi), rel=0.05)
    assert lo * 0.95 <= mid <= hi * 1.05 and float(f"{mid:.2g}") == mid


def test_find_above_lr_probes_the_middle_when_the_next_lr_did_not_train():
    rt = fake_tune(6000)[0].range_test
    hi = rt.good_range[1]
    nxt = next(p for p in rt.points if p.lr > hi)
    asked = []

    def probe_as(status):
        def probe(lr):
            asked.append(lr)
            return dataclasses.replace(nxt, lr=lr, status=status)
        return probe

    def with_next(**change):
        return dataclasses.replace(rt, points=tuple(
            dataclasses.replace(p, **change) if p is nxt else p for p in rt.points))

    # the next LR trained: it is the answer, nothing probed
    assert find_above_lr(hi, rt, probe_as("ok")) == (nxt.lr, None, "") and asked == []
    mid = midpoint_lr(hi, nxt.lr)
    for status in ("diverged", "unstable", "failed"):
        asked.clear()
        up, point, why = find_above_lr(hi, with_next(status=status), probe_as("ok"))
        assert (up, point.lr, why, asked) == (mid, mid, "", [mid])
        up, point, why = find_above_lr(hi, with_next(status=status), probe_as("diverged"))
        assert up is None and point.status == "diverged"
        assert why == f"FIX({nxt.lr:g}) was {status} in the range test and FIX({mid:g}) " \
                      "diverged when probed"
    for probe in (None, lambda lr: None):  # no probe, or no budget for it
        up, point, why = find_above_lr(hi, with_next(status="diverged"), probe)
        assert (up, point) == (None, None) and why.endswith(f"FIX({mid:g}) was not probed")
    asked.clear()
    up, _, why = find_above_lr(hi, with_next(status="diverged", lr=hi * 1.1),
                               probe_as("ok"))  # no 2-digit LR strictly between
    assert up is None and "no LR of 2 digits between" in why and asked == []
    assert find_above_lr(rt.points[-1].lr, rt, probe_as("ok")) == (
        None, None, "the range test trained no LR above it")
    assert find_above_lr(0.1) == (0.3, None, "")
    assert find_above_lr(1.0) == (None, None, "no LR of the grid above it")


def test_above_range_that_keeps_the_plan_short_of_full_length_says_what_it_costs():
    # at 5,000 the 28 usual candidates reach the full length, the 55 only 241 iterations
    plain, _ = fake_tune(5000)
    wide, _ = fake_tune(5000, above_range=True)
    assert plain.plan[-1].iters == 1000 and not any("full length" in w for w in plain.warnings)
    assert len(wide.candidates) == 55 and wide.plan[-1].iters < 1000
    assert any(f"the longest runs are {wide.plan[-1].iters} of 1000 iterations; without the "
               "27 candidates above the range (above_range=False) they would be 1000" in w
               for w in wide.warnings)
    # where the usual ones fall short as well, it says how far they would get
    plain, _ = fake_tune(3000)
    wide, _ = fake_tune(3000, above_range=True)
    assert f"they would be {plain.plan[-1].iters}" in next(
        w for w in wide.warnings if "full length" in w)
    assert plain.plan[-1].iters > wide.plan[-1].iters


@pytest.mark.parametrize("seeds", [1, 2])
def test_tune_above_range_probes_when_the_next_lr_diverged(seeds):
    fake = Fake(diverge_from=0.3)
    r, _ = fake_tune(9000, fake, seeds=seeds, above_range=True)
    rt, hi = r.range_test, r.bounds[1]
    nxt = next(p for p in rt.points if p.lr > hi)
    mid = midpoint_lr(hi, nxt.lr)
    assert nxt.status == "diverged" and hi < mid < nxt.lr
    assert r.above_lr == mid and (r.above_probe.lr, r.above_probe.status) == (mid, "ok")
    # the probe trains FIX(mid) with every seed, as long as the range test's runs, on budget
    probe_calls = [c for c in fake.calls if c[1] == f"FIX(k0={mid:g})"]
    assert probe_calls == [(rt.iters, f"FIX(k0={mid:g})", s) for s in range(seeds)]
    assert r.above_probe.iterations == rt.iters * seeds
    assert r.range_iterations == rt.iterations_spent + r.above_probe.iterations
    assert r.iterations_spent == sum(fake.trained) <= 9000
    assert len(r.candidates) == 55
    peaks = {parse(c.policy).params.get("k1") for c in r.candidates if c.kind == "cyclic"}
    assert peaks == {hi, mid}
    assert any(n.startswith(f"above_range: probed FIX({mid:g})") for n in r.notes)
    assert not any("no candidates above" in w for w in r.warnings)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["above_lr"] == mid and d["above_probe"]["lr"] == mid
    assert d["above_probe"]["status"] == "ok"
    # the middle diverges too: no candidates above, and a warning that says why
    fake = Fake(diverge_from=mid)
    r, _ = fake_tune(9000, fake, seeds=seeds, above_range=True)
    assert r.bounds[1] == hi and r.above_lr is None and r.above_probe.status == "diverged"
    assert len(r.candidates) == 28
    assert any(f"FIX({mid:g}) diverged when probed" in w for w in r.warnings)
    assert r.iterations_spent == sum(fake.trained) <= 9000
    # with above_range=False nothing is probed
    fake = Fake(diverge_from=0.3)
    r, _ = fake_tune(9000, fake, seeds=seeds, above_range=False)
    assert r.above_probe is None and not any(c[1] == f"FIX(k0={mid:g})" for c in fake.calls)


def test_tune_above_range_adds_the_candidates_and_says_so():
    plain, _ = fake_tune(9000, above_range=False)
    wide, fake = fake_tune(9000, above_range=True)
    up = above_lr(wide.bounds[1], wide.range_test)
    assert (plain.above_range, plain.above_lr) == (False, None)
    assert (wide.above_range, wide.above_lr) == (True, up) and up is not None
    assert wide.bounds == plain.bounds and wide.candidates[:len(plain.candidates)] == \
        plain.candidates
    assert len(wide.candidates) == 2 * len(plain.candidates) - 1
    assert wide.rungs[0].candidates == tuple(c.policy for c in wide.candidates)
    assert wide.iterations_spent == sum(fake.trained) <= 9000
    d = json.loads(json.dumps(wide.to_dict()))
    assert (d["above_range"], d["above_lr"]) == (True, up)
    # from given bounds: the paper's grid's next LR up
    r, _ = fake_tune(9000, bounds=(0.03, 0.1), above_range=True)
    assert r.above_lr == 0.3 and len(r.candidates) == 55
    assert {c.source for c in r.candidates} == {"bounds"}
    # nothing to go above: a warning, and the candidates are the warm start's
    r, _ = fake_tune(3000, warm_start=["FIX(k0=0.05)"], above_range=True)
    assert r.above_lr is None and [c.policy for c in r.candidates] == ["FIX(k0=0.05)"]
    assert any("above_range: no candidates above" in w for w in r.warnings)
    r, _ = fake_tune(3000, bounds=(0.03, 1.0), above_range=True)
    assert r.above_lr is None and any("no LR of the grid above it" in w for w in r.warnings)


def _same_run(a, b) -> bool:
    """Two tune results that trained the same candidates, runs and recommendations."""
    return (a.candidates, a.plan, a.rungs, a.iterations_spent, a.recommendations,
            a.above_lr, a.above_probe) == (b.candidates, b.plan, b.rungs, b.iterations_spent,
                                           b.recommendations, b.above_lr, b.above_probe)


@pytest.mark.parametrize("diverge_from", [1.0, 0.3])  # 0.3: the next LR diverges, a probe
@pytest.mark.parametrize("budget", [3000, 5000, 6000, 6500, 7000, 8000, 9000, 12_000])
def test_above_range_auto_adds_the_candidates_exactly_when_they_reach_the_full_length(
        budget, diverge_from):
    auto, fa = fake_tune(budget, Fake(diverge_from=diverge_from))
    wide, fw = fake_tune(budget, Fake(diverge_from=diverge_from), above_range=True)
    plain, fp = fake_tune(budget, Fake(diverge_from=diverge_from), above_range=False)
    assert auto.above_range == "auto" and json.loads(json.dumps(auto.to_dict()))[
        "above_range"] == "auto"
    fits = wide.above_lr is not None and wide.plan[-1].iters == 1000 and \
        wide.plan[0].candidates == len(wide.candidates)
    if fits:  # the same runs as above_range=True, the probe included
        assert _same_run(auto, wide) and fa.calls == fw.calls
        assert len(auto.candidates) == 55 and auto.plan[-1].iters == 1000
        assert not any("above_range='auto'" in n for n in auto.notes)
    else:  # the same runs as above_range=False, nothing probed, and a note says why
        assert _same_run(auto, plain) and fa.calls == fp.calls
        assert len(auto.candidates) == 28 and auto.above_probe is None
        note = next(n for n in auto.notes if n.startswith("above_range='auto'"))
        assert "left out the 27 candidates above the good FIX range" in note
        if wide.plan[0].candidates == 55 and diverge_from == 1.0:  # no probe: the same plan
            assert f"would be {wide.plan[-1].iters} of 1000 iterations" in note
    assert not any("above_range" in w for w in auto.warnings)
    assert auto.iterations_spent == sum(fa.trained) <= budget


def test_above_range_auto_counts_the_probe_before_deciding():
    # the next LR up (0.3) diverges: a probe of 0.17 (range-test length) is due before the
    # candidates above the range can be added, and auto decides with its cost paid
    edge = 0
    for budget in range(5000, 9001, 50):
        r, fake = fake_tune(budget, Fake(diverge_from=0.3))
        left = budget - r.range_test.iterations_spent
        fits = above_fits(28, 27, 1000, left - r.range_test.iters, min_iters=21, eta=3)[0]
        probed = [c for c in fake.calls if c[1] == "FIX(k0=0.17)"]
        assert (len(r.candidates) == 55) == fits == (r.above_lr == 0.17)
        assert bool(probed) == fits == (r.above_probe is not None)
        assert r.iterations_spent == sum(fake.trained) <= budget
        edge += above_fits(28, 27, 1000, left, min_iters=21, eta=3)[0] and not fits
    assert edge  # budgets where the 55 would fit but for the probe: left out


def test_above_range_auto_with_bounds_or_warm_start():
    # bounds: the grid's next LR, no probe; with enough budget the 55, else the 28 and a note
    r, _ = fake_tune(12_000, bounds=(0.03, 0.1))
    assert r.above_lr == 0.3 and len(r.candidates) == 55
    assert {c.source for c in r.candidates} == {"bounds"}
    r, _ = fake_tune(2000, bounds=(0.03, 0.1))
    assert r.above_lr is None and len(r.candidates) == 28
    assert any(n.startswith("above_range='auto': left out the 27") for n in r.notes)
    # the warm start alone has no good range to go above: auto says nothing (True warns)
    r, _ = fake_tune(3000, warm_start=["FIX(k0=0.05)"])
    assert r.above_lr is None and not any("above_range" in x for x in r.notes + r.warnings)
    # nothing above the range's top (1 is the top of the grid): a note, not a warning
    r, _ = fake_tune(12_000, bounds=(0.03, 1.0))
    assert r.above_lr is None and not any("above_range" in w for w in r.warnings)
    assert "above_range='auto': no candidates above the good FIX range (no LR of the grid " \
           "above it)" in r.notes


def test_range_candidates_counts_the_warm_start_once():
    kw = dict(epoch=EPOCH, full=1000, min_iters=21)
    made = range_candidates((0.03, 0.1), above_range=False, **kw)
    assert (len(made.candidates), made.above_lr, made.n_above, made.why_not) == (28, None, 0, "")
    forced = range_candidates((0.03, 0.1), above_range=True, left=0, **kw)
    assert (len(forced.candidates), forced.above_lr, forced.n_above) == (55, 0.3, 27)
    # a budget at which 55 candidates fit and 60 do not: 5 more warm-start policies tip it,
    # the generated ones again (as tune de-duplicates them) do not
    left = next(n for n in range(4000, 20_000, 10) if above_fits(28, 27, 1000, n, min_iters=21)[0]
                and not above_fits(33, 27, 1000, n, min_iters=21)[0])
    again = [c.policy for c in made.candidates[:5]]
    other = [f"FIX(k0={0.001 * (i + 1):g})" for i in range(5)]
    assert len(range_candidates((0.03, 0.1), left=left, others=again, **kw).candidates) == 55
    out = range_candidates((0.03, 0.1), left=left, others=other, **kw)
    assert len(out.candidates) == 28 and out.why_not.startswith("left out the 27")


def test_above_fits():
    full = 1000
    plan = plan_rungs(55, full, 6037, eta=3, min_iters=21)
    assert plan[-1].iters == full and above_fits(28, 27, full, 6037, min_iters=21, eta=3) \
        == (True, "")
    # the rule is plan_rungs': full length and every candidate tried, for any budget
    for left in range(0, 20_000, 250):
        plan = plan_rungs(55, full, left, eta=3, min_iters=21) if left > 0 else ()
        ok, why = above_fits(28, 27, full, left, min_iters=21, eta=3)
        assert ok == bool(plan and plan[-1].iters == full and plan[0].candidates == 55)
        assert (why == "") == ok
        if not ok:
            assert why.startswith("left out the 27 candidates above the good FIX range: ")
            assert why.endswith("(above_range=True adds them anyway)")
    assert "would not pay for a rung" in above_fits(28, 27, full, 0, eta=3)[1]
    assert "would try 20 of 55 candidates" in above_fits(28, 27, full, 20, min_iters=1, eta=3)[1]
    # more seeds cost more: what fits for 1 seed need not for 3
    assert above_fits(28, 27, full, 7000, min_iters=21, eta=3)[0]
    assert not above_fits(28, 27, full, 7000, min_iters=21, seeds=3, eta=3)[0]
    assert above_fits(28, 27, full, 21_000, min_iters=21, seeds=3, eta=3)[0]


@pytest.mark.parametrize("kwargs, name", [
    (dict(above=0.1), "above must be an LR above the range's top 0.1"),
    (dict(above=0.05), "above must be an LR above"),
    (dict(above=-1.0), "above must be a finite number > 0"),
    (dict(above="0.3"), "above must be a finite number > 0"),
    (dict(bounds=(0.1, 0.01)), "bounds"),
    (dict(bounds=(0.0, 0.1)), r"bounds\[0\]"),
    (dict(bounds=(0.1,)), "bounds"),
    (dict(bounds="0.1"), "bounds"),
    (dict(epoch=0), "epoch"),
    (dict(length=1), "length"),
    (dict(best_lr=-1.0), "best_lr"),
    (dict(multiples=()), "multiples"),
])
def test_candidates_bad_input(kwargs, name):
    args = dict(bounds=(0.01, 0.1), epoch=10, length=100) | kwargs
    bounds = args.pop("bounds")
    with pytest.raises(ValueError, match=name):
        generate_candidates(bounds, **args)


# -- the rung plan -------------------------------------------------------------------------------
def test_plan_is_successive_halving_when_affordable():
    plan = plan_rungs(28, 1000, 10**7, eta=3, min_iters=42)
    assert [(r.iters, r.candidates) for r in plan] == [(111, 28), (333, 9), (1000, 3)]
    plan = plan_rungs(27, 810, 10**7, eta=3, min_iters=10)
    assert [(r.iters, r.candidates) for r in plan] == [(30, 27), (90, 9), (270, 3), (810, 1)]
    # a smaller budget shrinks every rung together
    small = plan_rungs(27, 810, 2000, eta=3, min_iters=10, seeds=2)
    assert plan_cost(small, 2) <= 2000 and small[-1].iters < 810
    assert plan_rungs(5, 100, 0) == () and plan_rungs(5, 100, 2, seeds=3) == ()


def test_plan_when_not_every_candidate_fits():
    plan = plan_rungs(28, 1000, 100, eta=3, min_iters=21)  # 4 runs of 21 at most
    assert plan[0].candidates == 4 and plan[0].iters >= 21 and plan_cost(plan) <= 100
    assert plan_rungs(28, 1000, 10, eta=3, min_iters=21) == (RungPlan(10, 1),)


def test_fill_adds_finalists_with_the_leftover():
    base = plan_rungs(28, 1000, 6037, eta=3, min_iters=21)
    filled = plan_rungs(28, 1000, 6037, eta=3, min_iters=21, fill=True)
    assert plan_cost(base) == 4034 and base[-1] == RungPlan(1000, 1)
    assert filled[:-1] == base[:-1] and filled[-1] == RungPlan(1000, 3)  # 2,003 left: 2 more
    assert plan_cost(filled) == 6034 <= 6037
    # capped at the rung below: never more finalists than there were candidates there
    assert plan_rungs(28, 1000, 10**7, eta=3, min_iters=42, fill=True)[-1] == RungPlan(1000, 9)
    assert plan_rungs(3, 100, 10**6, fill=True)[-1] == RungPlan(100, 3)
    with pytest.raises(ValueError, match="fill must be True or False"):
        plan_rungs(3, 100, 1000, fill=1)


def test_shrink_trades_lower_rung_length_for_finalists():
    # digits at 13,750 after the finer range test (11,878 left), 55 candidates, eta 5
    kw = {"eta": 5, "min_iters": 21, "fill": True}
    filled = plan_rungs(55, 1000, 11878, **kw)
    shrunk = plan_rungs(55, 1000, 11878, shrink=True, **kw)
    assert [(r.iters, r.candidates) for r in filled] == [(40, 55), (200, 11), (1000, 7)]
    # 55 + 11 x 5 = 110 iterations per unit of r_0: 9 finalists leave (11,878 - 9,000) // 110
    # = 26 for r_0; 10 would leave 17, under min_iters
    assert [(r.iters, r.candidates) for r in shrunk] == [(26, 55), (130, 11), (1000, 9)]
    assert plan_cost(shrunk) == 26 * 55 + 130 * 11 + 9000 <= 11878
    assert plan_rungs(55, 1000, 11878, shrink=True, **{**kw, "min_iters": 17})[-1] \
        == RungPlan(1000, 10)  # a lower floor pays for the tenth
    # per seed: three seeds, three times the budget, the same plan
    assert plan_rungs(55, 1000, 3 * 11878, seeds=3, shrink=True, **kw) == shrunk
    # no effect without fill, nor when the plan cannot reach the full length
    assert plan_rungs(55, 1000, 11878, eta=5, min_iters=21, shrink=True) \
        == plan_rungs(55, 1000, 11878, eta=5, min_iters=21)
    short = plan_rungs(55, 1000, 3000, **kw)
    assert short[-1].iters < 1000 and plan_rungs(55, 1000, 3000, shrink=True, **kw) == short
    # nothing to gain when fill already trains every candidate of the rung below
    assert plan_rungs(55, 1000, 10**6, shrink=True, **kw) == plan_rungs(55, 1000, 10**6, **kw)
    # or when one more finalist would take the first rung under min_iters
    assert plan_rungs(28, 1000, 6037, eta=3, min_iters=21, fill=True, shrink=True) \
        == plan_rungs(28, 1000, 6037, eta=3, min_iters=21, fill=True)
    with pytest.raises(ValueError, match="shrink must be True or False"):
        plan_rungs(3, 100, 1000, fill=True, shrink="yes")


def test_a_small_budget_still_trains_the_finalist_at_full_length():
    # geometric rungs would stop at 720 of 1000; anchored: the lower rungs shrink instead
    plan = plan_rungs(14, 1000, 2800, eta=3, min_iters=50)
    assert [(r.iters, r.candidates) for r in plan] == [(69, 14), (207, 4), (1000, 1)]
    assert plan_cost(plan) <= 2800
    assert [(r.iters, r.candidates) for r in plan_rungs(5, 1000, 1750, eta=3, min_iters=50)] \
        == [(150, 5), (1000, 1)]
    # when not even that fits (rung 0 would fall under min_iters), every rung shrinks
    assert [(r.iters, r.candidates) for r in plan_rungs(28, 1000, 2400, eta=3, min_iters=42)] \
        == [(43, 28), (130, 9)]
    # a budget that reaches full length geometrically is plain successive halving, as before
    assert [(r.iters, r.candidates) for r in plan_rungs(28, 1000, 6037, eta=3, min_iters=21)] \
        == [(37, 28), (111, 9), (333, 3), (1000, 1)]


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 60), full=st.integers(1, 5000), budget=st.integers(0, 200_000),
       eta=st.integers(2, 5), min_iters=st.integers(1, 500), seeds=st.integers(1, 3))
def test_plan_properties(n, full, budget, eta, min_iters, seeds):
    plan = plan_rungs(n, full, budget, eta=eta, min_iters=min_iters, seeds=seeds)
    filled = plan_rungs(n, full, budget, eta=eta, min_iters=min_iters, seeds=seeds, fill=True)
    assert plan_cost(filled, seeds) <= budget and len(filled) == len(plan)
    if plan:
        assert filled[:-1] == plan[:-1] and filled[-1].iters == plan[-1].iters
        cap = plan[-2].candidates if len(plan) > 1 else n
        assert plan[-1].candidates <= filled[-1].candidates <= cap
        if filled[-1].candidates < cap:  # not capped: the leftover cannot pay for one more
            assert budget - plan_cost(filled, seeds) < seeds * plan[-1].iters
    shrunk = plan_rungs(n, full, budget, eta=eta, min_iters=min_iters, seeds=seeds, fill=True,
                        shrink=True)
    assert plan_cost(shrunk, seeds) <= budget and len(shrunk) == len(filled)
    if len(filled) > 1 and filled[-1].iters == full:
        # the same rungs and counts below the top; each lower rung no longer, the first
        # still >= min_iters; at least as many finalists, at most the rung below's
        *lows, top = shrunk
        assert [r.candidates for r in lows] == [r.candidates for r in filled[:-1]]
        assert all(a.iters <= b.iters for a, b in zip(lows, filled))
        assert lows[0].iters >= min(min_iters, full) or lows[0].iters == filled[0].iters
        assert top.iters == full and filled[-1].candidates <= top.candidates <= lows[-1].candidates
        if top.candidates > filled[-1].candidates:  # shrunk: r_k = r_0 * eta^k, capped
            assert all(r.iters == min(lows[0].iters * eta ** k, f.iters)
                       for k, (r, f) in enumerate(zip(lows, filled)))
        if top.candidates < lows[-1].candidates:  # one more would take r_0 under the floor
            below = sum(r.candidates * eta ** k for k, r in enumerate(lows))
            assert (budget // seeds - (top.candidates + 1) * full) // below \
                < min(min_iters, full)
        for a, b in zip(shrunk, shrunk[1:]):
            assert a.iters < b.iters
    else:
        assert shrunk == filled
    assert plan_cost(plan, seeds) <= budget
    if budget >= seeds:
        assert plan, "something always runs when one iteration per seed fits"
    for i, (a, b) in enumerate(zip(plan, plan[1:])):
        assert a.iters < b.iters <= full
        assert b.candidates == max(1, a.candidates // eta)
        if not (i == len(plan) - 2 and b.iters == full):  # a last rung anchored at full may
            assert abs(b.iters - eta * a.iters) <= eta  # be longer; the others: eta times
    if plan:
        assert plan[-1].iters <= full and plan[0].candidates <= n
        if plan[0].candidates == n and len(plan) > 1:
            assert plan[0].iters >= min(min_iters, full)


# -- the drop rule -------------------------------------------------------------------------------
def _run(points, status="done"):
    curve = tuple(CurvePoint(t, 0.1, 0.5, 0.5, a, a, 0.5, 0.1, 0.1) for t, a in points)
    return RunResult(task=TASK, policy="FIX(k0=0.1)", seed=0, status=status,
                     stop_reason="diverged" if status == "diverged" else "max_iters",
                     iterations=points[-1][0] if points else 3, curve=curve)


def test_predicted_top1_extrapolates_the_last_slope():
    assert predicted_top1(_run([(100, 0.5), (200, 0.6)]), 1000) == pytest.approx(1.4)
    assert predicted_top1(_run([(100, 0.5), (200, 0.6)]), 200) == pytest.approx(0.6)
    assert predicted_top1(_run([(50, 0.3), (100, 0.7), (200, 0.6)]), 1000) == 0.7  # falling
    assert predicted_top1(_run([(100, 0.5)]), 1000) is None  # one point: no prediction
    assert predicted_top1(_run([(100, 0.4)], "diverged"), 1000) == 0.4  # diverges again
    assert predicted_top1(_run([], "diverged"), 1000) == 0.0
    plateau = _run([(100, 0.5), (200, 0.5)])
    assert should_drop([plateau], 0.9, 1000) and not should_drop([plateau], 0.5, 1000)
    rising = _run([(100, 0.5), (200, 0.6)])
    assert not should_drop([plateau, rising], 0.9, 1000)  # mean 0.95 >= 0.9
    assert not should_drop([plateau, _run([(100, 0.5)])], 0.9, 1000)  # a seed can't predict


# -- successive halving with the fake --------------------------------------------------------------
def test_halving_bookkeeping_survivors_and_lengths():
    # the unscaled policies at every rung, no extra finalists: the plain bookkeeping
    r, fake = fake_tune(6000, seeds=2, low_rungs="prefix", fill=False)
    assert r.range_test is not None and r.bounds == r.range_test.good_range
    names = [c.policy for c in r.candidates]
    assert len(names) == 28 and len(r.rungs) >= 3
    for k, rung in enumerate(r.rungs):
        called = {(p, s) for it, p, s in fake.calls if it == rung.iters}
        assert called == {(p, s) for p in rung.candidates for s in (0, 1)}  # every seed
        if k + 1 < len(r.rungs):
            # the best 1/eta continue, by mean top-1 at this length (ties: candidate order)
            score = {p: sum(fake.top1(p, s, rung.iters) for s in (0, 1)) / 2
                     for p in rung.candidates}
            ranked = sorted(rung.candidates, key=lambda p: (-score[p], names.index(p)))
            n_next = max(1, len(rung.candidates) // r.eta)
            assert list(rung.survivors) == ranked[:n_next]
            assert r.rungs[k + 1].candidates == rung.survivors
            assert r.rungs[k + 1].iters == pytest.approx(rung.iters * r.eta, abs=r.eta)
    assert r.rungs[0].candidates == tuple(names)
    assert r.rungs[-1].survivors == ()
    # recommendations: deepest rung first, then by top-1; each with its evidence
    best = r.recommendations[0]
    assert best.policy == r.rungs[-1].candidates[0] and best.rung == len(r.rungs) - 1
    assert best.rung_iters == r.rungs[-1].iters and best.n_runs == 2
    assert best.top1 == pytest.approx(
        sum(fake.top1(best.policy, s, best.rung_iters) for s in (0, 1)) / 2)
    assert [h["iters"] for h in best.history] == [g.iters for g in r.rungs]
    assert {(ref.rung, ref.seed) for ref in best.runs} == {
        (k, s) for k in range(len(r.rungs)) for s in (0, 1)}
    assert len(r.recommendations) == 5 and [x.rank for x in r.recommendations] == [1, 2, 3, 4, 5]
    rungs_of = [x.rung for x in r.recommendations]
    assert rungs_of == sorted(rungs_of, reverse=True)


def test_rescaled_low_rungs_train_each_policy_squeezed_into_its_rung():
    r, fake = fake_tune(12_000, seeds=2)  # the defaults: low_rungs='rescaled', fill=True
    assert (r.low_rungs, r.fill) == ("rescaled", True)
    full = TASK.max_iters
    assert r.rungs[-1].iters == full and r.rungs[0].iters < full
    for rung in r.rungs:
        called = {(p, s) for it, p, s in fake.calls if it == rung.iters}
        squeezed = {str(rescale_policy(p, rung.iters / full)) for p in rung.candidates}
        assert called == {(p, s) for p in squeezed for s in (0, 1)}
        if rung.iters < full:  # lengths scale, LRs do not
            for p in rung.candidates:
                q = parse(str(rescale_policy(p, rung.iters / full)))
                if q.name != "FIX":
                    assert str(q) != p
    # ranked by what the squeezed runs scored; survivors as usual
    for k, rung in enumerate(r.rungs[:-1]):
        score = {p: sum(fake.top1(str(rescale_policy(p, rung.iters / full)), s, rung.iters)
                        for s in (0, 1)) for p in rung.candidates}
        names = [c.policy for c in r.candidates]
        ranked = sorted(rung.candidates, key=lambda p: (-score[p], names.index(p)))
        assert list(rung.survivors) == ranked[:r.plan[k + 1].candidates]
    # recommended: the full-length policies; their evidence: the runs as they trained
    for x in r.recommendations:
        assert x.policy in {c.policy for c in r.candidates}
        for ref in x.runs:
            assert ref.policy == str(rescale_policy(x.policy, ref.iters / full))
            assert not ref.reused
    d = r.to_dict()
    assert (d["low_rungs"], d["fill"]) == ("rescaled", True)


def test_rescaled_low_rungs_are_never_reused_across_rungs():
    task = TASK.replace(eval_every=10)  # runs reach the target early at every rung
    r, fake = fake_tune(8000, Fake(default_tau=40.0), task=task, target_accuracy=0.8, seeds=2)
    stopped = [(it, p, s) for (it, p, s), t in zip(fake.calls, fake.trained) if t < it]
    assert stopped
    # every survivor is trained again at every rung (a squeezed run is another run)
    for rung in r.rungs[1:]:
        called = {(p, s) for it, p, s in fake.calls if it == rung.iters}
        assert len(called) == 2 * len(rung.candidates)
    assert not any(ref.reused for x in r.recommendations for ref in x.runs)
    assert r.iterations_spent == sum(fake.trained) <= 8000


def test_rung_policy_squeezes_or_falls_back_to_the_policy_itself():
    from lrbench.tuning.tune import _rung_policy

    assert _rung_policy("STEP(k0=0.1, gamma=0.5, l=200)", 37, 1000, "rescaled") == \
        "STEP(k0=0.1, gamma=0.5, l=7)"
    assert _rung_policy("STEP(k0=0.1, gamma=0.5, l=200)", 37, 1000, "prefix") == \
        "STEP(k0=0.1, gamma=0.5, l=200)"
    assert _rung_policy("COS(k0=0.0, k1=0.1, l=500)", 1000, 1000, "rescaled") == \
        "COS(k0=0.0, k1=0.1, l=500)"  # the full length: itself
    # a decay that cannot be squeezed 1000-fold (0.1 ** 1000 underflows): trained as it is
    assert _rung_policy("EXP(k0=0.1, gamma=0.1)", 1, 1000, "rescaled") == "EXP(k0=0.1, gamma=0.1)"


class AnnealFake(Fake):
    """Like Fake, plus a bonus for annealing: top-1 gains ``0.05 * (1 - lr / peak)`` where
    ``lr`` is the policy's LR at the last step trained and ``peak`` its largest LR so far (as
    real training gains when the LR comes down at the end)."""

    def top1(self, policy: str, seed: int, t: int) -> float:
        p = parse(policy)
        lrs = [p(i) for i in range(t)]
        bonus = 0.05 * (1 - lrs[-1] / max(lrs)) if t > 0 and max(lrs) > 0 else 0.0
        return super().top1(policy, seed, t) + bonus


def test_rescaled_low_rungs_judge_a_policy_by_its_whole_shape():
    # FIX trains a little better early; COS anneals to 0 at the end and wins at full length
    fix, cos = "FIX(k0=0.05)", "COS(k0=0.05, k1=0.0, l=1000)"
    fake = AnnealFake(quality={fix: 0.9, cos: 0.88})
    assert fake.top1(cos, 0, 1000) > fake.top1(fix, 0, 1000) + 0.02

    def best(low_rungs):
        f = AnnealFake(quality=dict(fake.quality))
        # squeezed COS keeps its quality (the fake keys quality on the notation)
        for it in range(1, 1001):
            f.quality.setdefault(str(rescale_policy(cos, it / 1000)), 0.88)
        r, _ = fake_tune(1500, f, warm_start=[fix, cos], min_iters=100, eta=2, fill=False,
                         low_rungs=low_rungs)
        assert [(g.iters, len(g.candidates)) for g in r.rungs][-1] == (1000, 1)
        return r.recommendations[0]

    # a short prefix of COS has not annealed yet: FIX looks better and COS is cut
    assert best("prefix").policy == fix
    # squeezed into the short rung COS anneals there too, and is kept
    won = best("rescaled")
    assert won.policy == cos and won.top1 > best("prefix").top1 + 0.02


def test_fill_trains_more_finalists_with_what_the_rungs_leave():
    plain, _ = fake_tune(7000, fill=False, above_range=False)
    filled, f2 = fake_tune(7000, above_range=False)
    assert plain.plan[:-1] == filled.plan[:-1]
    assert plain.rungs[-1].iters == filled.rungs[-1].iters == TASK.max_iters
    assert len(plain.rungs[-1].candidates) == 1
    extra = (7000 - plain.range_iterations - plan_cost(plain.plan)) // TASK.max_iters
    assert len(filled.rungs[-1].candidates) == 1 + extra == 3
    # the finalists are the best of the rung below, in its order
    assert filled.rungs[-1].candidates == filled.rungs[-2].survivors
    assert filled.rungs[-1].candidates[0] == plain.rungs[-1].candidates[0]
    assert plain.iterations_spent < filled.iterations_spent == sum(f2.trained) <= 7000
    top = [x for x in filled.recommendations if x.rung == len(filled.rungs) - 1]
    assert len(top) == 3 and top[0].top1 >= top[1].top1 >= top[2].top1


def test_shrink_runs_more_finalists_on_shorter_lower_rungs():
    plain, _ = fake_tune(6000, above_range=False, eta=5, shrink=False)
    shrunk, fake = fake_tune(6000, above_range=False, eta=5)  # shrink=True is the default
    assert plain.range_iterations == shrunk.range_iterations  # the same range test
    left = 6000 - shrunk.range_iterations
    assert shrunk.plan == plan_rungs(28, 1000, left, eta=5, min_iters=shrunk.min_iters,
                                     fill=True, shrink=True)
    assert [(r.iters, r.candidates) for r in plain.plan] == [(40, 28), (200, 5), (1000, 3)]
    assert [(r.iters, r.candidates) for r in shrunk.plan] == [(23, 28), (115, 5), (1000, 4)]
    # the rungs ran as planned, the lower ones at their shrunk lengths
    assert [(g.iters, len(g.candidates)) for g in shrunk.rungs] == [(23, 28), (115, 5), (1000, 4)]
    n_range = len(shrunk.range_test.points)
    assert [it for it, _, _ in fake.calls[n_range:n_range + 28]] == [23] * 28
    # the finalists are the best of the rung below, in its order; the budget holds
    assert shrunk.rungs[-1].candidates == shrunk.rungs[-2].survivors
    assert shrunk.iterations_spent == sum(fake.trained) <= 6000
    top = [x for x in shrunk.recommendations if x.rung == len(shrunk.rungs) - 1]
    assert len(top) == 4 and all(x.rung_iters == 1000 for x in top)
    assert (shrunk.to_dict()["shrink"], plain.to_dict()["shrink"]) == (True, False)
    with pytest.raises(ValueError, match="shrink must be True or False"):
        fake_tune(6000, shrink=None)


def test_range_test_iterations_are_counted():
    r, fake = fake_tune(6000)
    rt_iters = range_test_iters(6000, epoch=EPOCH, full=1000)
    assert r.range_test.iters == rt_iters == 1200 // RANGE_MAX_LRS
    n_range = len(r.range_test.points)
    range_calls = fake.calls[:n_range]
    assert all(it == rt_iters and parse(p).name == "FIX" for it, p, _ in range_calls)
    # FIX(k0=1) diverged after 3 steps: only what was trained counts
    assert r.range_iterations == sum(fake.trained[:n_range]) < n_range * rt_iters
    assert r.range_iterations == r.range_test.iterations_spent
    assert r.iterations_spent == sum(fake.trained) == r.range_iterations + sum(
        g.iterations_spent for g in r.rungs)
    assert r.iterations_spent <= 6000
    # the halving was planned with what the range test left
    assert plan_cost(r.plan) <= 6000 - r.range_iterations


def test_range_test_size_follows_its_grid():
    # the most LRs: the grid 1e-4..1 and 2 decades of extension
    assert RANGE_MAX_LRS == range_max_lrs() == len(lr_grid()) + 2 * 2 == 13
    assert range_max_lrs((1, 2, 5)) == len(lr_grid(mantissas=(1, 2, 5))) + 2 * 3 == 19
    assert range_max_lrs((5, 1, 2, 2.0)) == 19 and range_max_lrs((1,)) == 5 + 2
    assert check_mantissas((5, 1, 2, 2.0)) == (1.0, 2.0, 5.0)  # what tune reports and runs
    # 20% of 6,000 over 19 LRs; 5 epochs (210) caps the powers of 10's 1,200 // 7 = 171
    assert range_test_iters(6000, epoch=EPOCH, full=1000, mantissas=(1, 2, 5)) == 1200 // 19
    assert range_test_iters(6000, epoch=EPOCH, full=1000, mantissas=(1,)) == 1200 // 7
    assert range_test_iters(10**6, epoch=EPOCH, full=1000, mantissas=(1,)) == 5 * EPOCH
    # the next LR up without a range test is the grid's
    assert above_lr(0.1, mantissas=(1, 2, 5)) == 0.2 and above_lr(0.2, mantissas=(1, 2, 5)) == 0.5
    assert above_lr(0.1, mantissas=(1,)) == 1.0 and above_lr(0.1) == 0.3
    with pytest.raises(ValueError, match="mantissas"):
        range_max_lrs((10,))


def test_tune_runs_its_range_test_on_the_grid_given():
    fine = (1.0, 2.0, 5.0)
    r, fake = fake_tune(6000, mantissas=(5, 1, 2), above_range=True)
    rt = r.range_test
    assert r.mantissas == fine and r.to_dict()["mantissas"] == [1.0, 2.0, 5.0]
    assert rt.iters == range_test_iters(6000, epoch=EPOCH, full=1000, mantissas=fine) == 63
    range_calls = fake.calls[:len(rt.points)]
    assert [parse(p).params["k0"] for _, p, _ in range_calls] == list(lr_grid(mantissas=fine))
    assert all(it == 63 for it, _, _ in range_calls)
    # the candidates above the range peak at the finer grid's next LR
    hi = rt.good_range[1]
    nxt = next(lr for lr in lr_grid(mantissas=fine) if lr > hi)
    assert r.above_lr == nxt and nxt == next(p.lr for p in rt.points if p.lr > hi)
    # the paper's grid (fake_tune pins it; tune's default is 'auto', tested below)
    plain, fake = fake_tune(6000, above_range=True)
    assert plain.mantissas == (1.0, 3.0) and plain.to_dict()["mantissas"] == [1.0, 3.0]
    assert [parse(p).params["k0"] for _, p, _ in fake.calls[:len(plain.range_test.points)]] \
        == list(lr_grid())
    # with bounds (no range test) the LR above them is the grid's next one
    b, _ = fake_tune(6000, bounds=(0.03, 0.1), mantissas=fine, above_range=True)
    assert b.range_test is None and b.above_lr == 0.2
    assert "TRI(k0=0.003, k1=0.2, l=84)" in {c.policy for c in b.candidates}
    # a finer grid needs a larger budget for its range test, and the error says so
    fake_tune(1500)
    with pytest.raises(ValueError, match=r"budget=1500 is too small for the range test \(up to "
                                         r"19 LRs"):
        fake_tune(1500, mantissas=fine)


def tune_defaults(budget, fake=None, **kwargs):
    """tune with the fake trainer and tune's own defaults for eta and mantissas."""
    fake = fake if fake is not None else Fake()
    return tune(TASK, budget, evaluate=fake, epoch_iters=EPOCH, progress=False, **kwargs), fake


def range_lrs(result, fake):
    return [parse(p).params["k0"] for _, p, _ in fake.calls[:len(result.range_test.points)]]


def test_choose_mantissas_takes_the_finer_grid_when_its_runs_are_long_enough():
    fine, paper = (1.0, 2.0, 5.0), (1.0, 3.0)
    kw = dict(epoch=EPOCH, full=1000, min_iters=21)
    # the finer grid's 19 runs get int(0.2 * budget) // 19 iterations: 21 from 1,995 on
    assert range_test_iters(1995, epoch=EPOCH, full=1000, mantissas=fine) == 21
    assert choose_mantissas(1995, **kw) == fine and choose_mantissas(1990, **kw) == paper
    # two seeds halve each run: the threshold doubles
    assert choose_mantissas(3990, seeds=2, **kw) == fine
    assert choose_mantissas(3980, seeds=2, **kw) == paper
    # a smaller share of the budget raises it; a task shorter than min_iters lowers it
    assert choose_mantissas(1995, fraction=0.1, **kw) == paper
    assert choose_mantissas(400, epoch=EPOCH, full=4, min_iters=21) == fine  # 4-iteration runs
    for budget in range(500, 20_000, 37):
        got = choose_mantissas(budget, **kw)
        assert got == (fine if range_test_iters(budget, epoch=EPOCH, full=1000,
                                                mantissas=fine) >= 21 else paper)


def test_cli_lines_name_the_range_tests_grid():
    from lrbench.cli.tuning import _tune_lines

    r, _ = tune_defaults(6000)
    line = next(x for x in _tune_lines(r) if x.startswith("range test"))
    lo, hi = r.range_test.good_range
    assert line.startswith(f"range test (LRs 1, 2, 5 per decade): good FIX range [{lo:g}, {hi:g}]")
    assert line.endswith(f"{r.range_iterations:,} iterations ({r.range_test.iters} per run)")
    r, _ = tune_defaults(4000, min_iters=50)
    assert any(x.startswith("range test (LRs 1, 3 per decade)") for x in _tune_lines(r))


def test_tune_defaults_eta_5_and_the_grid_the_budget_pays_for():
    fine = (1.0, 2.0, 5.0)
    # 6,000: each of the finer grid's runs gets 63 iterations (>= min_iters 21): 1, 2, 5
    r, fake = tune_defaults(6000)
    assert r.eta == 5 and r.mantissas == fine and r.to_dict()["mantissas"] == [1.0, 2.0, 5.0]
    assert range_lrs(r, fake) == list(lr_grid(mantissas=fine)) and r.range_test.iters == 63
    left = 6000 - r.range_iterations
    assert r.plan == plan_rungs(len(r.candidates), 1000, left, eta=5, min_iters=21, fill=True)
    assert r.plan != plan_rungs(len(r.candidates), 1000, left, eta=3, min_iters=21, fill=True)
    # the defaults are exactly eta=5 with the finer grid given by hand: the same runs
    same, again = tune_defaults(6000, eta=5, mantissas=(1, 2, 5))
    assert again.calls == fake.calls and same.recommendations == r.recommendations
    assert r.iterations_spent == sum(fake.trained) <= 6000
    # at 4,000 with min_iters 50 they would be 42: the paper's grid, each run 61 iterations
    r, fake = tune_defaults(4000, min_iters=50)
    assert r.mantissas == (1.0, 3.0) and range_lrs(r, fake) == list(lr_grid())
    assert r.range_test.iters == 800 // 13
    # too small even for the paper's grid: the error names its 13 LRs
    with pytest.raises(ValueError, match=r"budget=600 is too small for the range test \(up to "
                                         r"13 LRs"):
        tune_defaults(600)
    # an explicit grid or eta is kept whatever the budget
    r, _ = tune_defaults(6000, mantissas=(1, 3), eta=3)
    assert (r.mantissas, r.eta) == ((1.0, 3.0), 3)
    # no range test (bounds): the paper's grid gives the LR above the range, as before
    b, _ = tune_defaults(20_000, bounds=(0.03, 0.1), above_range=True)
    assert b.range_test is None and b.mantissas == (1.0, 3.0) and b.above_lr == 0.3


@settings(max_examples=40, deadline=None)
@given(budget=st.integers(1400, 60_000), seeds=st.integers(1, 2), eta=st.integers(2, 4),
       target=st.one_of(st.none(), st.floats(0.6, 0.97)), goal=st.sampled_from(["accuracy",
                                                                               "cost"]))
def test_budget_is_a_hard_cap(budget, seeds, eta, target, goal):
    if goal == "cost" and target is None:
        target = 0.8
    try:
        r, fake = fake_tune(budget, seeds=seeds, eta=eta, target_accuracy=target, goal=goal)
    except ValueError as e:  # a budget too small for the range test with 2 seeds
        assert "budget" in str(e) and seeds == 2
        return
    assert r.iterations_spent == sum(fake.trained) <= budget
    assert all(it <= 1000 for it, _, _ in fake.calls)  # no run longer than the task
    assert r.recommendations


def test_budget_cap_with_bounds_or_warm_start_many_budgets():
    warm = ["SIN2(k0=0.01, k1=0.06, l=84)", "FIX(k0=0.05)", "COS(k0=0.001, k1=0.1, l=168)"]
    for budget in [1, 2, 5, 30, 77, 100, 250, 999, 1000, 1001, 2345, 5000, 12_345]:
        for kwargs in (dict(bounds=(0.03, 0.1)), dict(warm_start=warm)):
            r, fake = fake_tune(budget, **kwargs)
            assert r.range_test is None and r.range_iterations == 0
            assert r.iterations_spent == sum(fake.trained) <= budget
            assert r.recommendations


def test_target_accuracy_stops_runs_and_counts_only_what_was_trained():
    task = TASK.replace(eval_every=10)
    r, fake = fake_tune(8000, Fake(default_tau=40.0), task=task, target_accuracy=0.8, seeds=2,
                        low_rungs="prefix")
    n_range = len(r.range_test.points) * 2
    halving = list(zip(fake.calls[n_range:], fake.trained[n_range:]))
    stopped = [i for i, ((it, _, _), t) in enumerate(halving) if t < it]
    assert stopped, "some runs reach the target before the end of their rung"
    assert r.iterations_spent == sum(fake.trained) < r.range_iterations + plan_cost(r.plan, 2)
    # a run that stopped early is the same run at any length: it is reused, never retrained
    for i in stopped:
        (_, p, s), _ = halving[i]
        assert all((q, z) != (p, s) for (_, q, z), _ in halving[i + 1:])
    assert any(i < len(halving) - len(r.rungs[-1].candidates) * 2 for i in stopped)
    reused = [ref for rec in r.recommendations for ref in rec.runs if ref.reused]
    assert reused and all(ref.iterations < ref.iters for ref in reused)
    assert r.recommendations[0].reached_target is True


def test_drop_rule_removes_candidates_that_cannot_reach_the_target():
    cs = generate_candidates((0.03, 0.1), epoch=EPOCH, length=1000)
    losers = [c.policy for c in cs if parse(c.policy).name in ("TRI", "TRI2", "TRIEXP")]
    # the losers plateau at 0.6 at once; the others climb slowly towards 0.95
    fake = Fake(quality={p: 0.6 for p in losers} | {c.policy: 0.95 for c in cs
                                                     if c.policy not in losers},
                tau={p: 5.0 for p in losers})
    r, _ = fake_tune(20_000, fake, bounds=(0.03, 0.1), target_accuracy=0.9, eta=2, top=28,
                     low_rungs="prefix", above_range=False)
    assert set(r.rungs[0].dropped) == set(losers)
    assert not set(r.rungs[0].survivors) & set(losers)
    later = {p for it, p, _ in fake.calls if it > r.rungs[0].iters}
    assert later and not later & set(losers)
    dropped = [x for x in r.recommendations if x.dropped]
    assert {x.policy for x in dropped} == set(losers)
    assert all(x.rank > y.rank for x in dropped for y in r.recommendations
               if not y.dropped and y.rung == 0)


def test_every_candidate_dropped_ends_early():
    cs = generate_candidates((0.03, 0.1), epoch=EPOCH, length=1000)
    fake = Fake(quality={c.policy: 0.5 for c in cs}, tau={c.policy: 5.0 for c in cs})
    task = TASK.replace(eval_every=10)  # rung 0 (37 iterations) has 3 evaluations
    r, _ = fake_tune(20_000, fake, task=task, bounds=(0.03, 0.1), target_accuracy=0.9,
                     low_rungs="prefix", above_range=False)
    assert len(r.rungs) == 1 and len(r.rungs[0].dropped) == 28
    assert any("dropped" in w for w in r.warnings)
    assert any("target" in w for w in r.warnings)
    assert r.recommendations and all(not x.reached_target for x in r.recommendations)


def test_goal_cost_prefers_the_cheapest_run_reaching_the_target():
    fast, slow = "FIX(k0=0.05)", "SIN2(k0=0.01, k1=0.06, l=84)"
    fake = Fake(quality={fast: 0.87, slow: 0.99}, tau={fast: 10.0, slow: 60.0})
    task = TASK.replace(max_iters=900, eval_every=10)
    kw = dict(task=task, warm_start=[fast, slow], min_iters=300, eta=3)
    acc, _ = fake_tune(10_000, fake, **kw)
    assert [x.policy for x in acc.recommendations][:2] == [slow, fast]
    cost, _ = fake_tune(10_000, fake, goal="cost", target_accuracy=0.85, **kw)
    assert cost.recommendations[0].policy == fast
    assert cost.recommendations[0].reached_target and cost.recommendations[0].iterations < 100
    assert cost.recommendations[0].iterations < cost.recommendations[1].iterations


def test_warm_start_skips_the_range_test_and_comes_first():
    warm = ["sin2(k0=1e-2, k1=0.06, l=84)", "FIX(k0=0.05)"]
    r, fake = fake_tune(3000, warm_start=warm, bounds=(0.03, 0.1))
    assert r.range_test is None and r.range_iterations == 0
    assert [c.policy for c in r.candidates[:2]] == ["SIN2(k0=0.01, k1=0.06, l=84)",
                                                   "FIX(k0=0.05)"]
    assert [c.source for c in r.candidates[:3]] == ["warm_start", "warm_start", "bounds"]
    only, _ = fake_tune(3000, warm_start=warm)
    assert [c.policy for c in only.candidates] == [c.policy for c in r.candidates[:2]]


def test_workers_give_the_same_result():
    one, f1 = fake_tune(5000, bounds=(0.03, 0.1), seeds=2)
    two, f2 = fake_tune(5000, bounds=(0.03, 0.1), seeds=2, workers=3)
    strip = lambda d: {k: v for k, v in d.items() if k != "wall_time"}  # noqa: E731
    assert strip(one.to_dict()) == strip(two.to_dict())
    assert sorted(f1.calls) == sorted(f2.calls)


def test_progress_events_and_json():
    events = []
    r, fake = fake_tune(3000, progress=events.append)
    done = [e for e in events if e.result is not None]
    assert len(done) == len(fake.calls) and len(events) == 2 * len(fake.calls)
    assert done[-1].iterations_spent == r.iterations_spent
    assert {e.phase for e in events} == {"range", "rung"}
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["iterations_spent"] == r.iterations_spent and d["budget"] == 3000
    rec = d["recommendations"][0]
    assert {"policy", "top1", "iterations", "best_iter", "run_ids", "runs", "rung"} <= set(rec)
    assert [g["iters"] for g in d["rungs"]] == [g.iters for g in r.rungs]


def test_every_run_is_stored(tmp_path):
    from lrbench.store import Store

    url = f"sqlite:///{tmp_path / 'lr.db'}"
    r, fake = fake_tune(3000, store=url)
    with Store.open(url) as store:
        # one row per (task, policy, seed): a rung as long as the range test's runs trains
        # FIX(best) again, the same run
        assert store.counts()["runs"] == len(set(fake.calls)) and len(fake.calls) == len(r.runs)
        best = r.recommendations[0]
        assert best.run_ids
        for run_id in best.run_ids:
            got = store.load(run_id)
            assert got.policy == best.policy and got.task.max_iters == best.rung_iters


def test_evaluate_that_overshoots_is_an_error():
    def liar(task, policy, seed, target):
        return Fake()(task.replace(max_iters=task.max_iters + 5), policy, seed, None)

    with pytest.raises(ValueError, match="evaluate trained"):
        tune(TASK, 3000, bounds=(0.03, 0.1), evaluate=liar, epoch_iters=EPOCH, progress=False)


@pytest.mark.parametrize("kwargs, name", [
    (dict(budget=0), "budget"),
    (dict(budget=-5), "budget"),
    (dict(budget=10.5), "budget"),
    (dict(budget=True), "budget"),
    (dict(budget=100), "budget"),  # too small for the range test
    (dict(budget=1, seeds=2, bounds=(0.1, 1.0)), "budget"),
    (dict(goal="fast"), "goal"),
    (dict(goal="cost"), "target_accuracy"),
    (dict(target_accuracy=0.0), "target_accuracy"),
    (dict(target_accuracy=1.5), "target_accuracy"),
    (dict(seeds=0), "seeds"),
    (dict(seeds=[1, 1]), "seeds"),
    (dict(eta=1), "eta"),
    (dict(min_iters=0), "min_iters"),
    (dict(top=0), "top"),
    (dict(workers=0), "workers"),
    (dict(range_fraction=0.9), "range_fraction"),
    (dict(epoch_iters=0), "epoch_iters"),
    (dict(warm_start=["SIN2(k0=0.1)"]), r"warm_start\[0\]"),
    (dict(warm_start="FIX(k0=0.1)"), "warm_start"),
    (dict(bounds=(0.1, 0.01)), "bounds"),
    (dict(evaluate=42), "evaluate"),
    (dict(progress="yes"), "progress"),
    (dict(lookup="yes"), "lookup"),
    (dict(low_rungs="squeezed"), "low_rungs must be one of rescaled, prefix"),
    (dict(fill="yes"), "fill must be True or False"),
    (dict(above_range=1), "above_range must be True, False or 'auto'"),
    (dict(above_range="yes"), "above_range must be True, False or 'auto'"),
    (dict(mantissas=(0.5,)), "mantissas must be numbers in"),
    (dict(mantissas="1,3"), "mantissas must be 'auto' or a sequence of numbers"),
    (dict(mantissas=()), "mantissas must hold at least one"),
    (dict(executor="dask"), "unknown executor 'dask'"),
    (dict(executor=42), "executor must be 'local', 'ray' or an Executor"),
    (dict(executor="ray"), "executor='ray' trains runs on Ray; a custom evaluate"),
    (dict(executor_options={"address": "auto"}), "executor 'local' takes no option 'address'"),
    (dict(executor_options={"workers": 2}), "executor_options: give workers"),
    (dict(executor_options=[("address", "auto")]), "executor_options must be a dict"),
])
def test_bad_input_names_the_parameter(kwargs, name):
    args = dict(budget=5000, epoch_iters=EPOCH, progress=False, evaluate=Fake()) | kwargs
    budget = args.pop("budget")
    with pytest.raises(ValueError, match=name):
        tune(TASK, budget, **args)


# -- step 1: the database lookup -------------------------------------------------------------------
SIN2_2000 = "SIN2(k0=0.003, k1=0.1, l=168)"
EXP_2000 = "EXP(k0=0.1, gamma=0.998)"
POLY_RUNG = "POLY(k0=0.5, p=1.0, l=1000)"
MAKER = Fake(quality={SIN2_2000: 0.97, EXP_2000: 0.95, POLY_RUNG: 0.99})


def _record(url, task, policy, seeds=(0, 1)) -> list[int]:
    """Record ``policy`` on ``task`` for each seed, as Fake trains it; the run ids."""
    from lrbench.store import Store

    with Store.open(url) as store:
        return [store.record(MAKER(task, policy, s, None)) for s in seeds]


def _prior_store(tmp_path) -> tuple[str, list[int]]:
    """A store with digits-mlp at twice the length (SIN2 best, then EXP), and a short run of
    digits-mlp that looks best of all: a lower rung of an earlier tune."""
    url = f"sqlite:///{tmp_path / 'prior.db'}"
    long = TASK.replace(max_iters=2000, eval_every=100)
    ids = _record(url, long, SIN2_2000) + _record(url, long, EXP_2000)
    _record(url, TASK.replace(max_iters=37, eval_every=37), POLY_RUNG, seeds=(0,))
    return url, ids


def test_lookup_warm_starts_from_a_similar_stored_task_without_a_range_test(tmp_path):
    url, ids = _prior_store(tmp_path)
    r, fake = fake_tune(3000, store=url)
    assert r.lookup and r.warm_start_source == "database"
    assert r.range_test is None and r.range_iterations == 0 and r.bounds is None
    # recommend's policies, rescaled from 2000 to 1000 iterations, best first
    rescaled = ["SIN2(k0=0.003, k1=0.1, l=84)", "EXP(k0=0.1, gamma=0.996004)"]
    assert list(r.prior.policies) == rescaled
    assert [c.policy for c in r.candidates] == rescaled
    assert {c.source for c in r.candidates} == {"database"}
    assert {x.source for x in r.recommendations} == {"database"}
    # only they were trained: no FIX grid, nothing from the truncated 37-iteration run
    assert trained_candidates(fake, rescaled) == set(rescaled)
    assert r.prior.run_ids == tuple(sorted(ids))
    assert [t.max_iters for t in r.prior.skipped] == [37]
    assert any(n.startswith("database lookup: warm start from 2 policies of digits-mlp at 2000 "
                            "iterations") for n in r.notes)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert (d["lookup"], d["warm_start_source"], d["range_test"]) == (True, "database", None)
    prior = d["prior"]
    assert prior["policies"] == rescaled and prior["run_ids"] == sorted(ids)
    assert [x["source_policy"] for x in prior["recommendations"]] == [SIN2_2000, EXP_2000]
    assert [x["source_task"]["max_iters"] for x in prior["recommendations"]] == [2000, 2000]
    assert [x["run_ids"] for x in prior["recommendations"]] == [ids[:2], ids[2:]]
    assert [t["max_iters"] for t in prior["skipped_tasks"]] == [37]
    assert d["notes"] == list(r.notes)
    # the budget need not pay for a range test any more
    small, _ = fake_tune(300, store=url)
    assert small.warm_start_source == "database" and 0 < small.iterations_spent <= 300
    with pytest.raises(ValueError, match="budget=300 is too small for the range test"):
        fake_tune(300, store=url, lookup=False)


def test_without_lookup_or_a_usable_prior_the_range_test_runs(tmp_path):
    url, _ = _prior_store(tmp_path)
    cold, fake = fake_tune(3000, store=url, lookup=False, above_range=False)
    assert not cold.lookup and cold.prior is None and cold.warm_start_source is None
    assert cold.range_test is not None and cold.range_iterations > 0 and cold.notes == ()
    assert any(p.startswith("FIX") for _, p, _ in fake.calls)
    assert {c.source for c in cold.candidates} == {"range"}
    # given policies or bounds: no lookup
    given, _ = fake_tune(3000, store=url, warm_start=["FIX(k0=0.05)"])
    assert not given.lookup and given.warm_start_source == "warm_start" and given.prior is None
    bounded, _ = fake_tune(3000, store=url, bounds=(0.03, 0.1))
    assert not bounded.lookup and bounded.prior is None and bounded.range_test is None

    def looked_up(name, *records):
        db = f"sqlite:///{tmp_path / name}"
        for task, policy in records:
            _record(db, task, policy)
        r, _ = fake_tune(3000, store=db, above_range=False)
        assert r.lookup and r.prior is None and r.warm_start_source is None
        assert r.range_test is not None and r.range_iterations > 0
        d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
        assert d["prior"] is None and d["lookup"] is True
        return r.notes

    assert looked_up("empty.db") == (
        "database lookup: no stored task with usable runs; range test",)
    # only lower rungs of an earlier tune of this task: nothing to go on
    assert looked_up("rungs.db", (TASK.replace(max_iters=37, eval_every=37), POLY_RUNG),
                     (TASK.replace(max_iters=111), POLY_RUNG)) == (
        "database lookup: no stored task with usable runs (2 shorter version(s) of stored "
        "tasks not looked at); range test",)
    # an unrelated task (another dataset and model family) is no prior
    other = make_task(dataset="cifar10", model="resnet20", batch_size=128, max_iters=1000,
                      eval_every=50)
    notes = looked_up("other.db", (other, SIN2_2000))
    assert len(notes) == 1 and notes[0].startswith("database lookup: the most similar stored "
                                                   "task (cifar10/resnet20 at 1000 iterations")
    assert f"is below {LOOKUP_MIN_SIMILARITY:g}" in notes[0]


def test_a_second_tune_warm_starts_from_the_first_ones_full_length_runs_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    first, _ = fake_tune(7000, store=url)
    assert first.rungs[-1].iters == TASK.max_iters and first.range_test is not None
    second, fake = fake_tune(3000, store=url)
    full = [x for x in first.recommendations if x.rung_iters == TASK.max_iters]
    # the first tune's runs at the full length, as they ran (nothing rescaled) ...
    assert list(second.prior.policies) == [x.policy for x in full]
    assert all(x.source_task == TASK and x.rescaled_from is None
               for x in second.prior.recommended)
    assert second.prior.run_ids == tuple(sorted(i for x in full for i in x.run_ids))
    # ... never its range test or lower rungs
    shorter = {first.range_test.iters} | {g.iters for g in first.rungs[:-1]}
    assert {t.max_iters for t in second.prior.skipped} == shorter
    assert trained_candidates(fake, [c.policy for c in second.candidates]) == {
        x.policy for x in full}


def test_lookup_skips_shorter_versions_of_stored_tasks():
    other = make_task(dataset="digits", model="digits-cnn", batch_size=32, max_iters=600,
                      eval_every=50)
    stored = [TASK.replace(max_iters=n, eval_every=min(50, n)) for n in (92, 37, 1000, 2000, 3000)]
    stored += [other.replace(max_iters=n, eval_every=min(50, n)) for n in (22, 600, 66)]
    skipped = lookup_skips(stored, TASK)
    # the target's own: its length and the longest are kept; other tasks: the longest only
    assert [(t.model, t.max_iters) for t in skipped] == [
        ("mlp", 92), ("mlp", 37), ("mlp", 2000), ("digits-cnn", 22), ("digits-cnn", 66)]
    assert lookup_skips(stored[:2], TASK) == stored[:2]  # shorter than the target: never
    assert lookup_skips([TASK.replace(eval_every=100)], TASK) == []  # another eval_every: kept


def test_tune_imports_no_framework():
    code = ("import sys, lrbench, lrbench.tuning, lrbench.tuning.tune, lrbench.cli.tuning; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the real trainer and the CLI -----------------------------------------------------------------
from lrbench.cli import main  # noqa: E402


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_cli_table_with_real_training(capsys):
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "700",
                             "--bounds", "0.03,0.1", "--warm-start", "FIX(k0=0.05)",
                             "--top", "3", "--threads", "1")
    assert code == 0, err
    assert "lrbench tune: digits-mlp, budget 700" in out and "policy" in out
    assert "candidates from the given range [0.03, 0.1]" in out
    spent = int(out.split(" of 700 training iterations")[0].split()[-1].replace(",", ""))
    assert 0 < spent <= 700
    assert "lower rungs train each policy rescaled to their length" in out


# the default eta is 5: 40 x 28 -> 200 x 5 -> 1000 x 1 costs 3,120 of the 6,100, and the 2,980
# left pay for 2 more finalists (fill; of the 4 others the 200-iteration rung ran); shrinking
# the lower rungs to 39 and 195 (28 + 5 x 5 = 53 iterations per unit of r_0) pays for one more:
# (6,100 - 4 x 1,000) // 53 = 39, while 5 finalists would need r_0 = 20 < min_iters 21
@pytest.mark.parametrize("flags, low_rungs, fill, shrink, plan", [
    ([], "rescaled", True, True, [(39, 28), (195, 5), (1000, 4)]),
    (["--no-shrink"], "rescaled", True, False, [(40, 28), (200, 5), (1000, 3)]),
    (["--low-rungs", "PREFIX", "--no-fill"], "prefix", False, True,
     [(40, 28), (200, 5), (1000, 1)])])
def test_cli_low_rungs_fill_and_shrink(capsys, flags, low_rungs, fill, shrink, plan):
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "6100",
                             "--bounds", "0.03,0.1", "--threads", "1", "--json",
                             "--no-above-range", *flags)
    assert code == 0, err
    d = json.loads(out)
    assert (d["low_rungs"], d["fill"], d["shrink"]) == (low_rungs, fill, shrink)
    assert d["eta"] == 5 and d["mantissas"] == [1.0, 3.0]  # no range test: the paper's grid
    assert [(g["iters"], g["candidates"]) for g in d["plan"]] == plan
    ran = [(r["iters"], len(r["candidates"])) for r in d["rungs"]]
    assert ran == plan and d["iterations_spent"] <= 6100
    for x in d["recommendations"]:
        for ref in x["runs"]:
            want = x["policy"] if low_rungs == "prefix" else str(
                rescale_policy(x["policy"], ref["iters"] / 1000))
            assert ref["policy"] == want


def test_cli_above_range_with_real_training(capsys):
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "3000",
                             "--bounds", "0.03,0.1", "--threads", "1", "--above-range", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["above_range"], d["above_lr"]) == (True, 0.3) and len(d["candidates"]) == 55
    assert "TRI(k0=0.003, k1=0.3, l=84)" in {c["policy"] for c in d["candidates"]}
    assert 0 < d["iterations_spent"] <= 3000
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "3000",
                             "--bounds", "0.03,0.1", "--threads", "1", "--above-range")
    assert code == 0, err
    assert "candidates above the range too: peak LR 0.3" in out and "55 candidates" in out
    # by default ('auto') not at this budget, where the 55 would fall short of the full length
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "3000",
                             "--bounds", "0.03,0.1", "--threads", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["above_range"], d["above_lr"], len(d["candidates"])) == ("auto", None, 28)
    assert any(n.startswith("above_range='auto': left out the 27 candidates") for n in d["notes"])
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "3000",
                             "--bounds", "0.03,0.1", "--threads", "1", "--no-above-range",
                             "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["above_range"], d["above_lr"], len(d["candidates"])) == (False, None, 28)
    assert not any("above_range" in n for n in d["notes"])
    # --grid: the LR above the given range is the finer grid's next one
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "3000",
                             "--bounds", "0.03,0.1", "--threads", "1", "--above-range",
                             "--grid", "1,2,5", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["mantissas"], d["above_lr"], len(d["candidates"])) == ([1.0, 2.0, 5.0], 0.2, 55)


@pytest.mark.parametrize("args, match", [
    (["--budget", "1000"], "--task"),
    (["--task", "digits-mlp"], "--budget"),
    (["--task", "digits-mlp", "--budget", "0"], "--budget"),
    (["--task", "digits-mlp", "--budget", "100"], "--budget"),
    (["--task", "digits-mlp", "--budget", "5000", "--goal", "fast"], "--goal"),
    (["--task", "digits-mlp", "--budget", "5000", "--goal", "cost"], "--target-accuracy"),
    (["--task", "digits-mlp", "--budget", "5000", "--target-accuracy", "2"],
     "--target-accuracy"),
    (["--task", "digits-mlp", "--budget", "5000", "--eta", "1"], "--eta"),
    (["--task", "digits-mlp", "--budget", "5000", "--seeds", "0"], "--seeds"),
    (["--task", "digits-mlp", "--budget", "5000", "--bounds", "0.1"], "--bounds"),
    (["--task", "digits-mlp", "--budget", "5000", "--bounds", "1,0.1"], "--bounds"),
    (["--task", "digits-mlp", "--budget", "5000", "--warm-start", "NOPE(k0=1)"],
     "--warm-start"),
    (["--task", "nope", "--budget", "5000"], "unknown task preset"),
    (["--task", "digits-mlp", "--budget", "5000", "--workers", "0"], "--workers must be >= 1"),
    (["--task", "digits-mlp", "--budget", "5000", "--executor", "bogus"],
     "--executor must be one of local, ray, got 'bogus'"),
    (["--task", "digits-mlp", "--budget", "5000", "--address", "auto"],
     "--address only applies to --executor ray"),
    (["--task", "digits-mlp", "--budget", "5000", "--cpus-per-run", "2"],
     "--cpus-per-run only applies to --executor ray"),
    (["--task", "digits-mlp", "--budget", "5000", "--executor", "ray", "--cpus-per-run", "0"],
     "--cpus-per-run must be > 0, got 0"),
    (["--task", "digits-mlp", "--budget", "5000", "--executor", "ray", "--gpus-per-run", "-1"],
     "--gpus-per-run must be >= 0, got -1"),
    (["--task", "digits-mlp", "--budget", "5000", "--no-lookup"], "--no-lookup applies with --db"),
    (["--task", "digits-mlp", "--budget", "5000", "--low-rungs", "cut"],
     "--low-rungs must be rescaled or prefix, got 'cut'"),
    (["--task", "digits-mlp", "--budget", "5000", "--grid", "1,x"], "--grid: expected mantissas"),
    (["--task", "digits-mlp", "--budget", "5000", "--grid", "0.5"],
     "--grid must be numbers in [1, 10), got 0.5"),
    # auto (any case) falls back to the paper's grid, and 500 is too small even for that
    (["--task", "digits-mlp", "--budget", "500", "--grid", "AUTO"],
     "--budget=500 is too small for the range test (up to 13 LRs"),
])
def test_cli_bad_input_one_line_exit_2(capsys, args, match):
    code, out, err = run_cli(capsys, "tune", *args)
    assert code == 2 and out == ""
    assert err.startswith("lrbench: error:") and match in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_json_end_to_end_in_a_subprocess(tmp_path):
    from lrbench.store import Store

    db = f"sqlite:///{tmp_path / 'lr.db'}"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "lrbench.cli", "tune", "--task", "digits-mlp", "--budget", "3000",
         "--threads", "1", "--db", db, "--json"],
        capture_output=True, text=True, timeout=300,
    )
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert {"recommendations", "iterations_spent", "budget", "rungs", "range_test"} <= set(d)
    assert 0 < d["iterations_spent"] <= 3000 and d["budget"] == 3000
    # the defaults: at 3,000 the finer grid's runs are 31 iterations (>= half an epoch): 1, 2, 5
    assert d["mantissas"] == [1.0, 2.0, 5.0] and d["eta"] == 5
    assert {0.0002, 0.0005} <= {p["lr"] for p in d["range_test"]["points"]}
    recs = d["recommendations"]
    assert recs and all({"policy", "top1", "iterations", "run_ids"} <= set(x) for x in recs)
    for x in recs:
        parse(x["policy"])
    assert recs[0]["top1"] > 0.85  # digits-mlp trains to ~0.97; the best of the tuner is good
    assert d["range_test"]["good_range"] and d["range_iterations"] > 0
    with Store.open(db) as store:
        rt = d["range_test"]
        runs = {(rt["iters"], f"FIX(k0={p['lr']!r})") for p in rt["points"]}
        runs |= {(g["iters"], p) for g in d["rungs"] for p in g["candidates"]}
        assert store.counts()["runs"] == len(runs)  # every run stored, once
        for x in recs:  # each run as it trained: rescaled to its rung's length
            assert x["run_ids"]
            for ref in x["runs"]:
                assert ref["policy"] == str(rescale_policy(x["policy"], ref["iters"] / 1000))
                assert store.load(ref["run_id"]).policy == ref["policy"]
    assert "Traceback" not in proc.stderr
    print(f"lrbench tune --budget 3000 end to end: {wall:.1f} s")


def test_cli_executor_ray_without_ray_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\nfrom lrbench.cli import main\n"
            "main(['tune', '--task', 'digits-mlp', '--budget', '700', '--bounds', '0.03,0.1', "
            f"'--executor', 'ray', '--db', 'sqlite:///{tmp_path / 'x.db'}'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "lrbench: error: the 'ray' executor needs Ray: pip install 'lrbench[ray]'"]


def test_cli_db_lookup_warm_starts_and_no_lookup_does_not(tmp_path, capsys):
    from lrbench.store import Store

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ids = _record(url, TASK, "FIX(k0=0.05)") + _record(url, TASK, SIN2_2000)
    # too small for a range test: only the lookup makes it possible
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "400",
                             "--db", url, "--no-lookup")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--budget=400 is too small for the range test" in err
    code, out, err = run_cli(capsys, "tune", "--task", "digits-mlp", "--budget", "400",
                             "--db", url, "--threads", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["lookup"], d["warm_start_source"], d["range_test"]) == (True, "database", None)
    assert d["prior"]["policies"] == [SIN2_2000, "FIX(k0=0.05)"]  # Fake's q: SIN2 0.97 first
    assert d["prior"]["run_ids"] == sorted(ids)
    assert {x["policy"] for x in d["recommendations"]} <= set(d["prior"]["policies"])
    assert 0 < d["iterations_spent"] <= 400
    assert any(n.startswith("database lookup: warm start from 2 policies") for n in d["notes"])
    with Store.open(url) as store:  # the tune's own runs were recorded next to the prior
        assert store.counts()["runs"] > len(ids)
