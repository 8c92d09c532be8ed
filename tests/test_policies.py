"""The 13 LR functions of SPEC section 2 (plus LIN), one by one.

Every value is checked against a closed form written *here*, straight from SPEC section 2 with
``math.sin``/``math.asin``/``math.cos`` -- never through the library's own helpers -- at t = 0,
around the cycle boundaries (l, 2l, 3l, 4l and +-1), around every milestone, and at very large t.
Also: #Param, kind, canonical params, validation (a ValueError naming the parameter and the
value), iteration checks, ``values()`` shapes and dtypes, equality/hashing, immutability,
``to_dict``/``from_dict``, pickling.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import random
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrbench
from lrbench.policies import (
    COS,
    EXP,
    FIX,
    FUNCTIONS,
    INV,
    LIN,
    NSTEP,
    PAPER_FUNCTIONS,
    POLY,
    SIN,
    SIN2,
    SINEXP,
    STEP,
    TRI,
    TRI2,
    TRIEXP,
    Policy,
    from_dict,
    make,
)

BIG = 10**7


# ---------------------------------------------------------------------------------------------
# The reference: SPEC section 2, written out independently of the library.
# ---------------------------------------------------------------------------------------------
def _sin_arg(t: int, l: int) -> float:
    """pi * t / (2l). For whole t the angle is first reduced modulo 2*pi, i.e. t modulo 4l --
    an exact identity, done in exact integer arithmetic -- so that the reference itself stays
    accurate at t = 10^9..10^12 (math.sin of a huge float angle would not)."""
    return math.pi * (t % (4 * l)) / (2 * l)


def _cos_arg(t: int, l: int) -> float:
    """pi * t / l, reduced the same exact way (the period of cos(pi t / l) is 2l)."""
    return math.pi * (t % (2 * l)) / l


def ref_tri(t: int, l: int) -> float:
    return (2 / math.pi) * abs(math.asin(math.sin(_sin_arg(t, l))))


def ref_sin(t: int, l: int) -> float:
    return abs(math.sin(_sin_arg(t, l)))


def ref_g(name: str, p: dict, t: int) -> float:
    """g(t) of SPEC's table, in [0, 1]."""
    if name == "FIX":
        return 1.0
    if name == "STEP":
        return p["gamma"] ** math.floor(t / p["l"])
    if name == "NSTEP":
        return p["gamma"] ** sum(1 for lj in p["l"] if lj <= t)
    if name == "EXP":
        return p["gamma"] ** t
    if name == "INV":
        return (1 + p["gamma"] * t) ** (-p["p"])
    if name == "POLY":
        return (1 - t / p["l"]) ** p["p"] if t < p["l"] else 0.0
    if name == "TRI":
        return ref_tri(t, p["l"])
    if name == "TRI2":  # TRI / 2^floor(t / 2l); ldexp so that 2^2500 cannot overflow
        return math.ldexp(ref_tri(t, p["l"]), -math.floor(t / (2 * p["l"])))
    if name == "TRIEXP":
        return p["gamma"] ** t * ref_tri(t, p["l"])
    if name == "SIN":
        return ref_sin(t, p["l"])
    if name == "SIN2":
        return math.ldexp(ref_sin(t, p["l"]), -math.floor(t / (2 * p["l"])))
    if name == "SINEXP":
        return p["gamma"] ** t * ref_sin(t, p["l"])
    if name == "COS":
        return (1 + math.cos(_cos_arg(t, p["l"]))) / 2
    raise AssertionError(name)


def ref_lr(name: str, p: dict, t: int) -> float:
    """eta(t) = |k0 - k1| * g(t) + min(k0, k1), k1 = 0 when a decaying function has no floor."""
    if name == "LIN":  # the ramp: k0 -> k1 over l iterations, then k1
        return p["k0"] + (p["k1"] - p["k0"]) * min(t / p["l"], 1.0)
    k0, k1 = p["k0"], p.get("k1", 0.0)
    return abs(k0 - k1) * ref_g(name, p, t) + min(k0, k1)


def close(actual: float, expected: float, scale: float) -> bool:
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12 * scale)


# ---------------------------------------------------------------------------------------------
# Parameter sets: defaults from the paper, floors, reversed bounds, l = 1, odd l, gamma = 1 ...
# ---------------------------------------------------------------------------------------------
CASES: list[tuple[str, dict]] = [
    ("FIX", dict(k0=0.1)),
    ("FIX", dict(k0=1e-5)),
    ("STEP", dict(k0=0.1, gamma=0.1, l=100)),
    ("STEP", dict(k0=0.1, gamma=0.5, l=3, k1=0.01)),
    ("STEP", dict(k0=0.3, gamma=1.0, l=1)),
    ("NSTEP", dict(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])),
    ("NSTEP", dict(k0=0.1, gamma=0.1, l=[32000, 48000])),
    ("NSTEP", dict(k0=0.1, gamma=0.1, l=[1, 2, 10], k1=0.0005)),
    ("EXP", dict(k0=0.1, gamma=0.99994)),
    ("EXP", dict(k0=0.05, gamma=0.9, k1=0.001)),
    ("EXP", dict(k0=0.05, gamma=1.0)),
    ("INV", dict(k0=0.01, gamma=0.0001, p=0.75)),
    ("INV", dict(k0=0.1, gamma=0.5, p=2.0, k1=0.01)),
    ("INV", dict(k0=0.1, gamma=3.0, p=0.0)),
    ("INV", dict(k0=0.1, gamma=0.0, p=1.5)),
    ("POLY", dict(k0=0.1, p=1.0, l=1000)),
    ("POLY", dict(k0=0.1, p=0.5, l=7, k1=0.001)),
    ("POLY", dict(k0=0.2, p=2.0, l=1)),
    ("TRI", dict(k0=0.01, k1=0.06, l=2000)),
    ("TRI", dict(k0=0.06, k1=0.01, l=2000)),
    ("TRI", dict(k0=0.1, k1=0.0, l=1)),
    ("TRI2", dict(k0=0.01, k1=0.06, l=2000)),
    ("TRI2", dict(k0=0.5, k1=0.001, l=7)),
    ("TRIEXP", dict(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)),
    ("TRIEXP", dict(k0=0.2, k1=0.05, gamma=0.9, l=3)),
    ("SIN", dict(k0=0.01, k1=0.06, l=2000)),
    ("SIN", dict(k0=0.06, k1=0.0, l=5)),
    ("SIN2", dict(k0=0.01, k1=0.06, l=2000)),
    ("SIN2", dict(k0=0.3, k1=0.1, l=1)),
    ("SINEXP", dict(k0=0.00005, k1=0.006, gamma=0.99994, l=2000)),
    ("SINEXP", dict(k0=0.0001, k1=0.9, gamma=0.9, l=3)),
    ("COS", dict(k0=0.1, k1=0.0, l=100)),
    ("COS", dict(k0=0.001, k1=0.1, l=2000)),
    ("COS", dict(k0=0.2, k1=0.1, l=1)),
    ("LIN", dict(k0=0.0, k1=0.1, l=500)),
    ("LIN", dict(k0=0.1, k1=0.01, l=7)),
    ("LIN", dict(k0=0.05, k1=0.05, l=3)),
]


def case_id(case: tuple[str, dict]) -> str:
    name, p = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in p.items()) + ")"


def interesting_ts(name: str, p: dict) -> list[int]:
    """t = 0, 1, 2; every l multiple up to 4l and +-1 around it; every milestone -1/+0/+1;
    some points inside the first cycles; and very large t."""
    ts = {0, 1, 2, 3}
    if name == "NSTEP":
        for lj in p["l"]:
            ts |= {lj - 1, lj, lj + 1}
        ts |= {p["l"][-1] * 3}
    elif "l" in p:
        l = p["l"]
        for m in (1, 2, 3, 4, 5, 8):
            ts |= {m * l - 1, m * l, m * l + 1}
        ts |= {l // 2, l // 3, (3 * l) // 2, 2 * l + l // 4}
        ts |= set(range(0, 6 * l, max(1, l // 5)))
    else:
        ts |= {10, 100, 1000, 20000, 100000}
    ts |= {BIG - 1, BIG, BIG + 1, 10**9 + 7, 10**12}
    return sorted(t for t in ts if t >= 0)


# ---------------------------------------------------------------------------------------------
# Golden values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_scalar_matches_closed_form(case):
    name, p = case
    policy = make(name, **p)
    scale = max(p["k0"], p.get("k1", 0.0))
    for t in interesting_ts(name, p):
        got = policy(t)
        want = ref_lr(name, p, t)
        assert type(got) is float
        assert close(got, want, scale), f"{policy} at t={t}: got {got!r}, SPEC gives {want!r}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_values_matches_closed_form(case):
    name, p = case
    policy = make(name, **p)
    scale = max(p["k0"], p.get("k1", 0.0))
    ts = interesting_ts(name, p)
    got = policy.values(ts)
    assert got.dtype == np.float64 and got.shape == (len(ts),)
    for t, g in zip(ts, got):
        want = ref_lr(name, p, t)
        assert close(float(g), want, scale), f"{policy}.values at t={t}: {g!r} != {want!r}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_scalar_and_vectorized_paths_agree(case):
    policy = make(case[0], **case[1])
    ts = interesting_ts(*case)
    vec = policy.values(np.asarray(ts, dtype=np.int64))
    for t, v in zip(ts, vec):
        assert math.isclose(policy(t), float(v), rel_tol=1e-12, abs_tol=1e-300)


# Literal numbers worked out by hand, guarding the reference above as much as the library.
GOLDEN = [
    (FIX(k0=0.1), 0, 0.1),
    (FIX(k0=0.1), BIG, 0.1),
    (STEP(k0=0.1, gamma=0.1, l=100), 99, 0.1),
    (STEP(k0=0.1, gamma=0.1, l=100), 100, 0.01),
    (STEP(k0=0.1, gamma=0.1, l=100), 199, 0.01),
    (STEP(k0=0.1, gamma=0.1, l=100), 200, 0.001),
    (STEP(k0=0.1, gamma=0.5, l=10, k1=0.02), 10, 0.06),  # (0.1 - 0.02) * 0.5 + 0.02
    (NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]), 4999, 0.01),
    (NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]), 5000, 0.001),
    (NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]), 6999, 0.001),
    (NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]), 7000, 0.0001),
    (NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]), BIG, 0.0001),
    (EXP(k0=0.1, gamma=0.5), 3, 0.0125),
    (EXP(k0=0.1, gamma=0.5, k1=0.02), 1, 0.06),
    (INV(k0=0.01, gamma=0.0001, p=0.75), 0, 0.01),
    (INV(k0=0.01, gamma=0.0001, p=0.75), 10000, 0.01 * 2**-0.75),
    (INV(k0=0.1, gamma=1.0, p=1.0), 3, 0.025),
    (POLY(k0=0.1, p=1.0, l=100), 50, 0.05),
    (POLY(k0=0.1, p=2.0, l=100), 50, 0.025),
    (POLY(k0=0.1, p=1.0, l=100), 99, 0.001),
    (POLY(k0=0.1, p=1.0, l=100), 100, 0.0),
    (POLY(k0=0.1, p=1.0, l=100), 101, 0.0),
    (POLY(k0=0.1, p=1.0, l=100, k1=0.01), 100, 0.01),
    (POLY(k0=0.1, p=1.0, l=100, k1=0.01), BIG, 0.01),
    # TRI/SIN: minimum at 0, maximum at l, minimum at 2l; l is the half period.
    (TRI(k0=0.01, k1=0.06, l=2000), 0, 0.01),
    (TRI(k0=0.01, k1=0.06, l=2000), 500, 0.0225),
    (TRI(k0=0.01, k1=0.06, l=2000), 1000, 0.035),
    (TRI(k0=0.01, k1=0.06, l=2000), 2000, 0.06),
    (TRI(k0=0.01, k1=0.06, l=2000), 3000, 0.035),
    (TRI(k0=0.01, k1=0.06, l=2000), 4000, 0.01),
    (TRI(k0=0.06, k1=0.01, l=2000), 0, 0.01),  # min(k0, k1), whichever is given first
    (TRI(k0=0.06, k1=0.01, l=2000), 2000, 0.06),
    (TRI2(k0=0.01, k1=0.06, l=2000), 2000, 0.06),
    (TRI2(k0=0.01, k1=0.06, l=2000), 6000, 0.035),  # second cycle: half the amplitude
    (TRI2(k0=0.01, k1=0.06, l=2000), 10000, 0.0225),  # third cycle: a quarter
    (TRI2(k0=0.01, k1=0.06, l=2000), 5000, 0.0225),
    (TRIEXP(k0=1.0, k1=0.0, gamma=0.5, l=2), 2, 0.25),  # 0.5^2 * 1
    (TRIEXP(k0=1.0, k1=0.0, gamma=0.5, l=2), 1, 0.25),  # 0.5^1 * 0.5
    (SIN(k0=0.01, k1=0.06, l=2000), 0, 0.01),
    (SIN(k0=0.01, k1=0.06, l=2000), 1000, 0.01 + 0.05 * math.sqrt(0.5)),
    (SIN(k0=0.01, k1=0.06, l=2000), 2000, 0.06),
    (SIN(k0=0.01, k1=0.06, l=2000), 3000, 0.01 + 0.05 * math.sqrt(0.5)),
    (SIN(k0=0.01, k1=0.06, l=2000), 4000, 0.01),
    (SIN(k0=0.01, k1=0.06, l=2000), 6000, 0.06),
    (SIN2(k0=0.01, k1=0.06, l=2000), 2000, 0.06),
    (SIN2(k0=0.01, k1=0.06, l=2000), 6000, 0.035),
    (SIN2(k0=0.01, k1=0.06, l=2000), 10000, 0.0225),
    (SINEXP(k0=1.0, k1=0.0, gamma=0.5, l=1), 1, 0.5),
    (SINEXP(k0=1.0, k1=0.0, gamma=0.5, l=1), 3, 0.125),
    # COS: maximum at 0, minimum at l, maximum again at 2l (SPEC: cos(pi t / l), not Table I's).
    (COS(k0=0.1, k1=0.0, l=100), 0, 0.1),
    (COS(k0=0.1, k1=0.0, l=100), 50, 0.05),
    (COS(k0=0.1, k1=0.0, l=100), 100, 0.0),
    (COS(k0=0.1, k1=0.0, l=100), 150, 0.05),
    (COS(k0=0.1, k1=0.0, l=100), 200, 0.1),
    (COS(k0=0.01, k1=0.1, l=100), 100, 0.01),
    (LIN(k0=0.0, k1=0.1, l=10), 0, 0.0),
    (LIN(k0=0.0, k1=0.1, l=10), 5, 0.05),
    (LIN(k0=0.0, k1=0.1, l=10), 10, 0.1),
    (LIN(k0=0.0, k1=0.1, l=10), BIG, 0.1),
    (LIN(k0=0.1, k1=0.02, l=4), 1, 0.08),
    (LIN(k0=0.1, k1=0.02, l=4), 4, 0.02),
]


@pytest.mark.parametrize("policy,t,want", GOLDEN, ids=lambda x: str(x))
def test_golden_values(policy, t, want):
    assert policy(t) == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert policy.values([t])[0] == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("cls", [TRI, TRI2, TRIEXP, SIN, SIN2, SINEXP, COS])
@pytest.mark.parametrize("k0,k1", [(0.01, 0.06), (0.06, 0.01)])
def test_cyclic_shape_landmarks(cls, k0, k1):
    """SPEC notes: TRI/SIN start at min(k0, k1), reach the max at l, back at the min at 2l;
    COS the other way round. (gamma = 1 so the EXP variants keep their amplitude.)"""
    extra = {"gamma": 1.0} if cls in (TRIEXP, SINEXP) else {}
    p = cls(k0=k0, k1=k1, l=10, **extra)
    lo, hi = min(k0, k1), max(k0, k1)
    start, peak = (hi, lo) if cls is COS else (lo, hi)
    assert p(0) == pytest.approx(start, abs=1e-15)
    assert p(10) == pytest.approx(peak, abs=1e-15)
    assert p(20) == pytest.approx(start, abs=1e-15)
    assert p.bounds == (lo, hi)
    assert lo < p(5) < hi


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_very_large_t_is_finite_real_non_negative(case):
    """No overflow (a warning or an exception), NaN, complex number or negative LR far past
    the end of any plan."""
    policy = make(case[0], **case[1])
    lo, hi = policy.bounds
    ts = [BIG, BIG + 1, 10**9, 2**31, 2**31 + 1, 2**32 + 3, 10**12, 10**15, 2**53]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            vec = policy.values(ts)
            for t, v in zip(ts, vec):
                s = policy(t)
                assert type(s) is float and math.isfinite(s) and lo <= s <= hi and s >= 0
                assert math.isfinite(v) and lo <= v <= hi
    assert np.isrealobj(vec) and vec.dtype == np.float64


def test_start_and_peaks_are_exact():
    """eta(0) of a decaying function is k0 exactly, and every peak of a cycle is max(k0, k1)
    exactly: not an ulp below (0.09999999999999999 in a log instead of 0.1), even though
    (k0 - k1) * 1 + k1 can round below k0."""
    rnd = random.Random(20190101)
    cases = [(5.630211006506863, 0.9456995049991996), (5e-05, 1.9066943099240033e-05)]
    cases += [(k0, k0 * rnd.random()) for k0 in (rnd.uniform(1e-5, 1.0) for _ in range(300))]
    for k0, k1 in cases:
        for p in (STEP(k0=k0, gamma=0.5, l=10, k1=k1), NSTEP(k0=k0, gamma=0.5, l=[3], k1=k1),
                  EXP(k0=k0, gamma=0.9, k1=k1), EXP(k0=k0, gamma=1.0, k1=k1),
                  INV(k0=k0, gamma=0.5, p=1.0, k1=k1), POLY(k0=k0, p=2.0, l=10, k1=k1)):
            assert p(0) == k0, str(p)
            assert p.values([0])[0] == k0, str(p)
        for p in (TRI(k0=k0, k1=k1, l=10), TRI(k0=k1, k1=k0, l=10), SIN(k0=k0, k1=k1, l=10),
                  SIN2(k0=k1, k1=k0, l=10), TRI2(k0=k1, k1=k0, l=10)):
            assert p(10) == k0 and p.values([10])[0] == k0, str(p)
            assert p(0) == k1 and p(20) == k1, str(p)
        for p in (COS(k0=k0, k1=k1, l=10), COS(k0=k1, k1=k0, l=10)):
            assert p(0) == p(20) == k0 and p.values([0, 20]).tolist() == [k0, k0], str(p)
            assert p(10) == k1, str(p)
        for p in (LIN(k0=k1, k1=k0, l=10), LIN(k0=k0, k1=k1, l=10)):
            assert p(0) == p.params["k0"] and p(10) == p(BIG) == p.params["k1"], str(p)


def test_amplitude_of_tri2_and_sin2_underflows_to_the_minimum():
    """2^floor(t / 2l) is 2^2500 at t = 10^7, l = 2000: must give min(k0, k1), not an error."""
    for cls in (TRI2, SIN2):
        p = cls(k0=0.01, k1=0.06, l=2000)
        assert p(BIG + 2000) == pytest.approx(0.01, abs=1e-18)
        assert p.values([BIG + 2000])[0] == pytest.approx(0.01, abs=1e-18)


# ---------------------------------------------------------------------------------------------
# Random closed-form check (hypothesis): any valid parameters, any t.
# ---------------------------------------------------------------------------------------------
_lr = st.floats(min_value=1e-6, max_value=10.0)
_gamma = st.one_of(st.just(1.0), st.floats(min_value=0.5, max_value=1.0, exclude_min=True))
_len = st.integers(1, 100_000)


@st.composite
def function_params(draw):
    name = draw(st.sampled_from(sorted(FUNCTIONS)))
    k0 = draw(_lr)
    p: dict = {"k0": k0}
    cls = FUNCTIONS[name]
    if cls.kind == "decaying" and draw(st.booleans()):
        p["k1"] = k0 * draw(st.floats(0.0, 0.99))
    if cls.kind in ("cyclic", "ramp"):
        p["k1"] = draw(st.one_of(st.just(0.0), _lr))
    if name in ("STEP", "EXP", "TRIEXP", "SINEXP", "NSTEP"):
        p["gamma"] = draw(_gamma)
    if name == "INV":
        p["gamma"] = draw(st.floats(0.0, 10.0))
        p["p"] = draw(st.floats(0.0, 4.0))
    if name == "POLY":
        p["p"] = draw(st.floats(0.01, 4.0))
    if name == "NSTEP":
        p["l"] = sorted(draw(st.sets(st.integers(1, 10**6), min_size=1, max_size=6)))
    elif "l" in cls.param_names:
        p["l"] = draw(_len)
    return name, p


@settings(max_examples=150, deadline=None)
@given(function_params(), st.lists(st.integers(0, 10**9), min_size=1, max_size=8))
def test_random_parameters_match_closed_form(case, ts):
    name, p = case
    policy = make(name, **p)
    scale = max(p["k0"], p.get("k1", 0.0))
    vec = policy.values(ts)
    for t, v in zip(ts, vec):
        want = ref_lr(name, p, t)
        assert close(policy(t), want, scale), (str(policy), t)
        assert close(float(v), want, scale), (str(policy), t)


# ---------------------------------------------------------------------------------------------
# Names, kinds, #Param, canonical parameters
# ---------------------------------------------------------------------------------------------
def test_the_paper_functions_in_table_order():
    assert list(PAPER_FUNCTIONS) == [
        "FIX", "STEP", "NSTEP", "EXP", "INV", "POLY",
        "TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "COS",
    ]
    assert set(FUNCTIONS) == set(PAPER_FUNCTIONS) | {"LIN"}
    for name, cls in FUNCTIONS.items():
        assert cls.name == name


N_PARAMS = [
    (FIX(k0=0.1), "fixed", 1),
    (STEP(k0=0.1, gamma=0.1, l=100), "decaying", 3),
    (STEP(k0=0.1, gamma=0.1, l=100, k1=0.001), "decaying", 4),
    (NSTEP(k0=0.1, gamma=0.1, l=[32000, 48000]), "decaying", 4),
    (NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500]), "decaying", 7),
    (NSTEP(k0=0.01, gamma=0.9, l=[5000]), "decaying", 3),
    (NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500], k1=1e-4), "decaying", 8),
    (EXP(k0=0.1, gamma=0.99), "decaying", 2),
    (EXP(k0=0.1, gamma=0.99, k1=0.01), "decaying", 3),
    (INV(k0=0.01, gamma=0.0001, p=0.75), "decaying", 3),
    (INV(k0=0.01, gamma=0.0001, p=0.75, k1=0.001), "decaying", 4),
    (POLY(k0=0.1, p=2.0, l=1000), "decaying", 3),
    (POLY(k0=0.1, p=2.0, l=1000, k1=0.001), "decaying", 4),  # Table I: "4 (3)"
    (TRI(k0=0.01, k1=0.06, l=2000), "cyclic", 3),
    (TRI2(k0=0.01, k1=0.06, l=2000), "cyclic", 3),
    (TRIEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000), "cyclic", 4),
    (SIN(k0=0.01, k1=0.06, l=2000), "cyclic", 3),
    (SIN2(k0=0.01, k1=0.06, l=2000), "cyclic", 3),
    (SINEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000), "cyclic", 4),
    (COS(k0=0.1, k1=0.0, l=2000), "cyclic", 3),  # k1 = 0 of a cyclic function still counts
    (LIN(k0=0.0, k1=0.1, l=500), "ramp", 3),
]


@pytest.mark.parametrize("policy,kind,n", N_PARAMS, ids=lambda x: str(x))
def test_kind_and_n_params(policy, kind, n):
    assert policy.kind == kind
    assert policy.n_params == n
    assert policy.name == type(policy).name
    assert isinstance(policy, Policy)


def test_a_zero_floor_is_no_floor_and_not_counted():
    for p in (
        STEP(k0=0.1, gamma=0.1, l=100, k1=0),
        STEP(k0=0.1, gamma=0.1, l=100, k1=0.0),
        STEP(k0=0.1, gamma=0.1, l=100, k1=None),
    ):
        assert p.n_params == 3
        assert "k1" not in p.params
        assert p == STEP(k0=0.1, gamma=0.1, l=100)
        assert hash(p) == hash(STEP(k0=0.1, gamma=0.1, l=100))
        assert str(p) == "STEP(k0=0.1, gamma=0.1, l=100)"


def test_params_are_canonical():
    p = STEP(k0=1, gamma=1, l=2000.0)
    assert p.params == {"k0": 1.0, "gamma": 1.0, "l": 2000}
    assert [type(v) for v in p.params.values()] == [float, float, int]
    n = NSTEP(k0=np.float32(0.5), gamma=0.1, l=(5000.0, np.int64(7000)))
    assert n.params == {"k0": 0.5, "gamma": 0.1, "l": (5000, 7000)}
    assert all(type(v) is int for v in n.params["l"])
    assert type(n.params["k0"]) is float
    assert SIN2(k0=0.01, k1=0.06, l=2000).params == {"k0": 0.01, "k1": 0.06, "l": 2000}
    assert STEP(k0=0.1, gamma=0.5, l=10, k1=0.01).params == {
        "k0": 0.1, "k1": 0.01, "gamma": 0.5, "l": 10}


@pytest.mark.parametrize("policy", [c[0] for c in N_PARAMS], ids=str)
def test_bounds(policy):
    """(lowest, highest) LR: min/max(k0, k1), k1 = 0 for a decaying function without a floor;
    FIX has no k1 at all: its LR is always k0."""
    p = policy.params
    k1 = p.get("k1", p["k0"] if policy.name == "FIX" else 0.0)
    assert policy.bounds == (min(p["k0"], k1), max(p["k0"], k1))


# ---------------------------------------------------------------------------------------------
# Validation at construction: a ValueError naming the parameter and the bad value
# ---------------------------------------------------------------------------------------------
VALID = {
    "FIX": dict(k0=0.1),
    "STEP": dict(k0=0.1, gamma=0.5, l=10),
    "NSTEP": dict(k0=0.1, gamma=0.5, l=[10, 20]),
    "EXP": dict(k0=0.1, gamma=0.5),
    "INV": dict(k0=0.1, gamma=0.5, p=0.75),
    "POLY": dict(k0=0.1, p=1.0, l=100),
    "TRI": dict(k0=0.01, k1=0.06, l=2000),
    "TRI2": dict(k0=0.01, k1=0.06, l=2000),
    "TRIEXP": dict(k0=0.01, k1=0.06, gamma=0.99, l=2000),
    "SIN": dict(k0=0.01, k1=0.06, l=2000),
    "SIN2": dict(k0=0.01, k1=0.06, l=2000),
    "SINEXP": dict(k0=0.01, k1=0.06, gamma=0.99, l=2000),
    "COS": dict(k0=0.1, k1=0.0, l=100),
    "LIN": dict(k0=0.0, k1=0.1, l=100),
}
NAN, INF = float("nan"), float("inf")
NOT_NUMBERS = [True, False, "0.1", None, [0.1], 1j]
BAD_LR = [0, 0.0, -0.1, -1e-300, NAN, INF, -INF, *NOT_NUMBERS]  # k0 must be > 0
BAD_K1_CYCLIC = [-0.01, -1e-300, NAN, INF, -INF, *NOT_NUMBERS]  # k1 >= 0, 0 allowed
BAD_FLOOR = [-0.01, 0.1, 0.2, NAN, INF, True, "0.01", [0.01]]  # with k0 = 0.1: 0 <= k1 < k0
BAD_GAMMA = [0, 0.0, -0.5, 1.0000001, 1.5, 2, NAN, INF, -INF, *NOT_NUMBERS]  # (0, 1]
BAD_LENGTH = [0, -1, -2000, 0.5, 1.5, 2000.5, NAN, INF, -INF, *NOT_NUMBERS]
BAD_INV = [-0.1, -1, NAN, INF, -INF, *NOT_NUMBERS]  # INV's gamma and p: >= 0
BAD_POLY_P = [0, 0.0, -1.0, NAN, INF, *NOT_NUMBERS]  # POLY's p > 0
BAD_LIN = [-0.1, NAN, INF, *NOT_NUMBERS]  # LIN's k0, k1 >= 0
BAD_MILESTONES = [
    [], [5, 5], [7, 5], [10, 20, 15], [0, 5], [-1, 5], [5, 7.5], [True, 5], [5, NAN],
    [5, "7"], "57", 5, None, {5, 7},
]


def _bad_cases():
    for name, valid in VALID.items():
        cls = FUNCTIONS[name]
        table = {"k0": BAD_LR if name != "LIN" else BAD_LIN}
        if cls.kind == "decaying":
            table["k1"] = BAD_FLOOR
        elif name == "LIN":
            table["k1"] = BAD_LIN
        elif cls.kind == "cyclic":
            table["k1"] = BAD_K1_CYCLIC
        if "gamma" in valid:
            table["gamma"] = BAD_INV if name == "INV" else BAD_GAMMA
        if name == "INV":
            table["p"] = BAD_INV
        if name == "POLY":
            table["p"] = BAD_POLY_P
        if "l" in valid:
            table["l"] = BAD_MILESTONES if name == "NSTEP" else BAD_LENGTH
        for param, bads in table.items():
            for bad in bads:
                yield pytest.param(name, param, bad, id=f"{name}-{param}={bad!r}")


@pytest.mark.parametrize("name,param,bad", list(_bad_cases()))
def test_invalid_parameter_raises_value_error_naming_it(name, param, bad):
    kwargs = {**VALID[name], param: bad}
    with pytest.raises(ValueError) as info:
        FUNCTIONS[name](**kwargs)
    message = str(info.value)
    assert re.search(rf"\b{param}\b", message), f"{message!r} does not name {param!r}"
    assert name in message
    # ... and the value (for a list, the list or the offending element)
    shown = [repr(bad), str(bad)]
    if isinstance(bad, list):
        shown += [repr(x) for x in bad]
    assert any(s in message for s in shown), f"{message!r} does not show {bad!r}"
    # the same through make() and from_dict()
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        make(name, **kwargs)
    if not isinstance(bad, (set, complex)):
        with pytest.raises(ValueError, match=rf"\b{param}\b"):
            from_dict({"name": name, "params": kwargs})


def test_validation_does_not_rely_on_assert():
    """Checks must survive ``python -O`` (asserts stripped)."""
    import subprocess
    import sys

    code = (
        "from lrbench.policies import STEP\n"
        "try:\n    STEP(k0=0.1, gamma=1.5, l=10)\nexcept ValueError:\n    raise SystemExit(0)\n"
        "raise SystemExit(1)\n"
    )
    assert subprocess.run([sys.executable, "-O", "-c", code]).returncode == 0


def test_unknown_function_and_parameter_list_the_valid_ones():
    with pytest.raises(ValueError) as info:
        make("SINE", k0=0.1)
    for name in FUNCTIONS:
        assert name in str(info.value)
    assert "SINE" in str(info.value)
    with pytest.raises(ValueError) as info:
        make("STEP", k0=0.1, gamma=0.5, l=10, decay=0.1)
    assert "decay" in str(info.value)
    for name in ("k0", "k1", "gamma", "l"):
        assert re.search(rf"\b{name}\b", str(info.value))
    with pytest.raises(ValueError, match=r"\bgamma\b"):  # missing
        make("STEP", k0=0.1, l=10)
    with pytest.raises(ValueError, match="k1"):  # FIX has no floor
        make("FIX", k0=0.1, k1=0.01)


def test_make_is_case_insensitive():
    assert make("sin2", k0=0.01, k1=0.06, l=2000) == SIN2(k0=0.01, k1=0.06, l=2000)
    assert make("Nstep", k0=0.01, gamma=0.1, l=[5, 7]) == NSTEP(k0=0.01, gamma=0.1, l=[5, 7])


def test_cyclic_bounds_may_touch_zero_and_be_equal():
    assert COS(k0=0.1, k1=0.0, l=10)(10) == 0.0
    assert TRI(k0=0.1, k1=0.1, l=10).values(range(30)).tolist() == [0.1] * 30


# ---------------------------------------------------------------------------------------------
# Iterations: whole numbers >= 0
# ---------------------------------------------------------------------------------------------
EXAMPLES = [make(name, **p) for name, p in VALID.items()]
BAD_T = [-1, -(10**9), 0.5, 1.5, -0.0001, NAN, INF, -INF, True, False, "3", None, 1j, [3]]


@pytest.mark.parametrize("policy", EXAMPLES, ids=str)
@pytest.mark.parametrize("t", BAD_T, ids=repr)
def test_bad_iteration_is_rejected(policy, t):
    with pytest.raises(ValueError, match="iteration"):
        policy(t)


@pytest.mark.parametrize("policy", EXAMPLES, ids=str)
def test_whole_floats_and_numpy_scalars_are_iterations(policy):
    for t in (0, 3, 2000):
        want = policy(t)
        assert policy(float(t)) == want
        assert policy(np.int64(t)) == want
        assert policy(np.uint32(t)) == want
        assert policy(np.float64(t)) == want


BAD_TS = [
    [-1], [0, 1, -1], np.array([-3]), [0.5], [0.0, 1.5], [NAN], [INF], [True, False],
    np.array([True]), ["1"], [None], [1j], [[0, 1], [2, -2]], -1, 0.5,
]


@pytest.mark.parametrize("policy", EXAMPLES, ids=str)
@pytest.mark.parametrize("ts", BAD_TS, ids=repr)
def test_values_rejects_negative_or_fractional_iterations(policy, ts):
    with pytest.raises(ValueError, match="iteration"):
        policy.values(ts)


@pytest.mark.parametrize("policy", EXAMPLES, ids=str)
def test_values_keeps_shape_and_accepts_ints_floats_lists(policy):
    grid = np.arange(24).reshape(2, 3, 4) * 97
    want = np.array([policy(int(t)) for t in grid.ravel()]).reshape(grid.shape)
    for ts in (grid, grid.astype(np.int32), grid.astype(np.uint32), grid.astype(np.float32),
               grid.astype(float), grid.tolist()):
        got = policy.values(ts)
        assert got.dtype == np.float64
        assert got.shape == (2, 3, 4)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert policy.values(5).shape == ()
    assert float(policy.values(5)) == pytest.approx(policy(5), rel=1e-12)
    assert policy.values(5.0).shape == ()
    assert policy.values([]).shape == (0,)
    assert policy.values(np.zeros((0, 3), dtype=int)).shape == (0, 3)
    assert policy.values((0, 1)).shape == (2,)
    assert policy.values(range(5)).shape == (5,)
    col = policy.values([[0], [10], [2000]])
    assert col.shape == (3, 1)


@pytest.mark.parametrize("policy", EXAMPLES, ids=str)
def test_values_integer_and_float_paths_agree_bit_for_bit(policy):
    # values() evaluates cycle and step formulas on int64 iterations (exact t % n, t // n);
    # the float64 path must give the very same numbers, up to t = 10^9 and beyond 2^62.
    from lrbench.policies.ops import NUMPY

    ts = np.concatenate([np.arange(0, 50_000, 7), np.arange(10**9 - 4000, 10**9 + 4000, 3)])
    via_values = policy.values(ts)
    via_float = np.asarray(policy.evaluate(ts.astype(np.float64), NUMPY), dtype=np.float64)
    np.testing.assert_array_equal(via_values, np.broadcast_to(via_float, ts.shape))
    huge = np.array([2.0**62, 2.0**63], dtype=np.float64)  # past int64's exact range: floats
    assert np.all(np.isfinite(policy.values(huge)))


def test_values_does_not_modify_its_input():
    ts = np.array([0.0, 10.0, 20.0])
    STEP(k0=0.1, gamma=0.5, l=10).values(ts)
    assert ts.tolist() == [0.0, 10.0, 20.0]


def test_nstep_is_a_pure_function_of_t():
    """SPEC: the authors' NSTEP keeps a hidden counter; ours must not depend on call order."""
    p = NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000])
    order = [9000, 0, 7000, 4999, 5000, 6999, 0, 9000]
    assert [p(t) for t in order] == pytest.approx([1e-4, 1e-2, 1e-4, 1e-2, 1e-3, 1e-3, 1e-2, 1e-4])
    # (the two paths may differ in the last bit: numpy's pow and libm's pow round differently)
    np.testing.assert_allclose(p.values(order), [p(t) for t in order], rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------------------------
# Value objects: equality, hashing, immutability, dict / JSON / pickle round trips
# ---------------------------------------------------------------------------------------------
EQUAL_PAIRS = [
    (STEP(k0=0.1, gamma=0.5, l=2000), STEP(k0=0.1, gamma=0.5, l=2000.0)),
    (STEP(k0=0.1, gamma=0.5, l=2000), STEP(k0=0.1, gamma=0.5, l=2000, k1=0)),
    (STEP(k0=0.1, gamma=0.5, l=2000), STEP(l=2000, gamma=0.5, k0=0.1)),
    (FIX(k0=1), FIX(k0=1.0)),
    (FIX(k0=0.5), FIX(k0=np.float64(0.5))),
    (NSTEP(k0=0.1, gamma=0.1, l=[5, 7]), NSTEP(k0=0.1, gamma=0.1, l=(5.0, 7))),
    (NSTEP(k0=0.1, gamma=0.1, l=[5, 7]), NSTEP(k0=0.1, gamma=0.1, l=np.array([5, 7]).tolist())),
    (SIN2(k0=0.01, k1=0.06, l=2000), SIN2(k0=0.01, k1=0.06, l=np.int64(2000))),
    (COS(k0=0.1, k1=0, l=10), COS(k0=0.1, k1=0.0, l=10)),
    (EXP(k0=0.1, gamma=0.5, k1=0.0), EXP(k0=0.1, gamma=0.5)),
    (EXP(k0=0.1, gamma=0.5, k1=-0.0), EXP(k0=0.1, gamma=0.5)),
    # -0.0 is 0.0: the same policy, so the same text (the notation is a database key)
    (COS(k0=0.1, k1=-0.0, l=10), COS(k0=0.1, k1=0.0, l=10)),
    (LIN(k0=-0.0, k1=0.1, l=10), LIN(k0=0, k1=0.1, l=10)),
    (INV(k0=0.1, gamma=-0.0, p=-0.0), INV(k0=0.1, gamma=0, p=0)),
]


@pytest.mark.parametrize("a,b", EQUAL_PAIRS, ids=str)
def test_equal_by_value(a, b):
    assert a == b and not (a != b)
    assert hash(a) == hash(b)
    assert str(a) == str(b)
    assert a.to_dict() == b.to_dict() and json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    assert len({a, b}) == 1
    assert {a: 1}[b] == 1


UNEQUAL_PAIRS = [
    (STEP(k0=0.1, gamma=0.5, l=2000), STEP(k0=0.1, gamma=0.5, l=2001)),
    (STEP(k0=0.1, gamma=0.5, l=2000), STEP(k0=0.2, gamma=0.5, l=2000)),
    (STEP(k0=0.1, gamma=0.5, l=2000), STEP(k0=0.1, gamma=0.4, l=2000)),
    (STEP(k0=0.1, gamma=0.5, l=2000), STEP(k0=0.1, gamma=0.5, l=2000, k1=0.01)),
    (SIN(k0=0.01, k1=0.06, l=2000), SIN2(k0=0.01, k1=0.06, l=2000)),
    (TRI(k0=0.01, k1=0.06, l=2000), SIN(k0=0.01, k1=0.06, l=2000)),
    (NSTEP(k0=0.1, gamma=0.1, l=[5, 7]), NSTEP(k0=0.1, gamma=0.1, l=[5, 8])),
    (NSTEP(k0=0.1, gamma=0.1, l=[5, 7]), NSTEP(k0=0.1, gamma=0.1, l=[5])),
    (FIX(k0=0.1), STEP(k0=0.1, gamma=1.0, l=10)),
]


@pytest.mark.parametrize("a,b", UNEQUAL_PAIRS, ids=str)
def test_unequal_by_value(a, b):
    assert a != b and not (a == b)
    assert len({a, b}) == 2


def test_comparison_with_other_types():
    p = FIX(k0=0.1)
    assert p != "FIX(k0=0.1)"
    assert p != 0.1
    assert p != {"name": "FIX", "params": {"k0": 0.1}}
    assert p is not None


ALL_EXAMPLES = EXAMPLES + [c[0] for c in N_PARAMS]


@pytest.mark.parametrize("policy", ALL_EXAMPLES, ids=str)
def test_immutable(policy):
    before = str(policy)
    for attr in ("k0", "_p", "name", "l", "anything"):
        with pytest.raises(AttributeError):
            setattr(policy, attr, 1.0)
    for attr in ("_p", "name", "k0"):
        with pytest.raises(AttributeError):
            delattr(policy, attr)
    # what a policy hands out cannot change it
    params = policy.params
    params["k0"] = 123.0
    d = policy.to_dict()
    d["params"]["k0"] = 456.0
    if "l" in d["params"] and isinstance(d["params"]["l"], list):
        d["params"]["l"].append(10**9)
    assert str(policy) == before
    assert policy.params["k0"] != 123.0


@pytest.mark.parametrize("policy", ALL_EXAMPLES, ids=str)
def test_to_dict_from_dict_json_pickle_copy_round_trips(policy):
    d = policy.to_dict()
    assert d["name"] == policy.name
    assert json.loads(json.dumps(d)) == d  # JSON-ready
    for back in (
        from_dict(d),
        from_dict(json.loads(json.dumps(d))),
        lrbench.from_dict(d),
        pickle.loads(pickle.dumps(policy)),
        pickle.loads(pickle.dumps(policy, protocol=0)),
        copy.copy(policy),
        copy.deepcopy(policy),
    ):
        assert back == policy
        assert hash(back) == hash(policy)
        assert type(back) is type(policy)
        assert str(back) == str(policy)
        assert back.values([0, 7, 2000]).tolist() == policy.values([0, 7, 2000]).tolist()


def test_to_dict_format():
    assert STEP(k0=0.1, gamma=0.5, l=10).to_dict() == {
        "name": "STEP", "params": {"k0": 0.1, "gamma": 0.5, "l": 10}}
    assert NSTEP(k0=0.1, gamma=0.5, l=[10, 20], k1=0.01).to_dict() == {
        "name": "NSTEP", "params": {"k0": 0.1, "k1": 0.01, "gamma": 0.5, "l": [10, 20]}}
    assert from_dict({"name": "sin2", "params": {"k0": 0.01, "k1": 0.06, "l": 2000}}) == SIN2(
        k0=0.01, k1=0.06, l=2000)


@pytest.mark.parametrize("data", [
    {}, {"params": {"k0": 0.1}}, {"name": "FOO", "params": {}}, {"name": "FIX"},
    {"name": "FIX", "params": {"k0": -1}}, {"name": "FIX", "params": [0.1]},
    {"name": "FIX", "params": {"k0": 0.1, "k9": 1}}, "FIX(k0=0.1)", None, [],
])
def test_from_dict_rejects_bad_data(data):
    with pytest.raises(ValueError):
        from_dict(data)
