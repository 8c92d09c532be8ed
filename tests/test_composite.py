"""Composite policies (SPEC section 2, "Composite policies"): consecutive phases, the last one
open-ended, each phase seeing its own iteration count from 0; nested composites; LIN ramps for
warm-up and one-cycle; warm restarts. Expected values are written out by hand here.
"""

from __future__ import annotations

import copy
import json
import math
import pickle

import numpy as np
import pytest

from lrbench.policies import (
    COS,
    EXP,
    FIX,
    LIN,
    NSTEP,
    POLY,
    SIN2,
    SINEXP,
    STEP,
    TRI,
    Composite,
    Phase,
    Phases,
    Policy,
    from_dict,
    parse,
)

ISSUE = "FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)"


def sinexp(t, k0=0.0001, k1=0.9, gamma=0.99994, l=2000):
    return (k1 - k0) * gamma**t * abs(math.sin(math.pi * t / (2 * l))) + k0


def test_issue_example():
    p = parse(ISSUE)
    assert p == FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)
    assert p.kind == "composite" and p.name == "COMPOSITE"
    assert isinstance(p, Composite) and isinstance(p, Policy)
    assert p.starts == (0, 15000)
    assert [ph.length for ph in p.phases] == [15000, None]
    assert p(0) == 0.1
    assert p(14999) == 0.1
    assert p(15000) == pytest.approx(0.0001, rel=1e-12)  # SINEXP starts again at its own t = 0
    for k in (1, 1000, 1999, 2000, 2001, 4000, 10**6):
        assert p(15000 + k) == pytest.approx(sinexp(k), rel=1e-9, abs=1e-15), k
    assert p.n_params == 1 + 4 + 1  # FIX, SINEXP and one switch point
    assert p.bounds == (0.0001, 0.9)


def test_each_phase_sees_its_own_t_from_zero():
    a = STEP(k0=0.1, gamma=0.5, l=10)
    b = TRI(k0=0.01, k1=0.06, l=7)
    c = NSTEP(k0=0.02, gamma=0.1, l=[3, 9])
    p = a[25] >> b[40] >> c
    assert p.starts == (0, 25, 65)
    for t in range(0, 200):
        if t < 25:
            want = a(t)
        elif t < 65:
            want = b(t - 25)
        else:
            want = c(t - 65)
        assert p(t) == want, t
    # (equal up to the last bit: numpy's pow and libm's pow may round differently)
    np.testing.assert_allclose(p.values(range(200)), [p(t) for t in range(200)], rtol=1e-14, atol=0)


@pytest.mark.parametrize("t,want", [
    (0, 0.1), (24, 0.1 * 0.5**2), (25, 0.01), (26, 0.01 + 0.05 / 7), (64, 0.01 + 0.05 * 3 / 7),
    (65, 0.02), (67, 0.02), (68, 0.002), (73, 0.002), (74, 0.0002), (10**7, 0.0002),
])
def test_phase_boundaries_exact(t, want):
    """-1 / +0 / +1 around each switch point (25 and 65) and each milestone of the last phase."""
    p = STEP(k0=0.1, gamma=0.5, l=10)[25] >> TRI(k0=0.01, k1=0.06, l=7)[40] >> NSTEP(
        k0=0.02, gamma=0.1, l=[3, 9])
    assert p(t) == pytest.approx(want, rel=1e-12)
    assert p.values([t])[0] == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Nested composites: (A[100] >> B)[500] >> C
# ---------------------------------------------------------------------------------------------
A = FIX(k0=0.1)
B = LIN(k0=0.1, k1=0.2, l=50)
C = COS(k0=0.2, k1=0.0, l=1000)
NESTED = (A[100] >> B)[500] >> C


def nested_closed_form(t):
    if t < 100:
        return 0.1
    if t < 500:
        return 0.1 + 0.1 * min((t - 100) / 50, 1.0)
    return 0.1 * (1 + math.cos(math.pi * ((t - 500) % 2000) / 1000))  # cos has period 2l


def test_nested_composite_structure():
    assert str(NESTED) == (
        "(FIX(k0=0.1)[100] >> LIN(k0=0.1, k1=0.2, l=50))[500] >> COS(k0=0.2, k1=0.0, l=1000)")
    assert parse(str(NESTED)) == NESTED
    assert NESTED.starts == (0, 500)
    inner = NESTED.phases[0].policy
    assert isinstance(inner, Composite) and inner.starts == (0, 100)
    assert NESTED.n_params == (1 + 3 + 1) + 3 + 1
    assert NESTED.bounds == (0.0, 0.2)
    assert NESTED.params == {"phases": [(inner, 500), (C, None)]}


@pytest.mark.parametrize(
    "t", [0, 1, 99, 100, 101, 149, 150, 151, 499, 500, 501, 1499, 1500, 1501, 2500, 10**7])
def test_nested_composite_values(t):
    assert NESTED(t) == pytest.approx(nested_closed_form(t), rel=1e-12, abs=1e-15)
    assert NESTED.values([t])[0] == pytest.approx(nested_closed_form(t), rel=1e-12, abs=1e-15)


def test_nested_composite_truncated_before_its_own_switch():
    """An inner composite that is cut off before its last phase never reaches it."""
    p = (FIX(k0=0.1)[100] >> FIX(k0=0.2))[50] >> FIX(k0=0.3)
    assert [p(t) for t in (0, 49, 50, 99, 100, 1000)] == [0.1, 0.1, 0.3, 0.3, 0.3, 0.3]
    assert p.values([0, 49, 50, 99, 100, 1000]).tolist() == [0.1, 0.1, 0.3, 0.3, 0.3, 0.3]


def test_nested_composite_as_last_open_phase():
    p = FIX(k0=0.1)[10] >> (FIX(k0=0.2)[5] >> STEP(k0=0.3, gamma=0.5, l=2))
    assert str(p) == "FIX(k0=0.1)[10] >> (FIX(k0=0.2)[5] >> STEP(k0=0.3, gamma=0.5, l=2))"
    assert parse(str(p)) == p
    want = [0.1] * 10 + [0.2] * 5 + [0.3, 0.3, 0.15, 0.15, 0.075]
    assert [p(t) for t in range(20)] == pytest.approx(want)
    assert p.values(range(20)).tolist() == pytest.approx(want)


def test_deeply_nested():
    p = parse("((FIX(k0=0.1)[1] >> FIX(k0=0.2))[3] >> FIX(k0=0.3))[6] >> FIX(k0=0.4)")
    want = [0.1, 0.2, 0.2, 0.3, 0.3, 0.3, 0.4, 0.4]
    assert [p(t) for t in range(8)] == want
    assert p.values(range(8)).tolist() == want
    assert p.n_params == ((1 + 1 + 1) + 1 + 1) + 1 + 1


def test_chaining_phases_flattens():
    a, b, c, d = FIX(k0=0.1), FIX(k0=0.2), FIX(k0=0.3), FIX(k0=0.4)
    flat = a[10] >> b[20] >> c[30] >> d
    assert isinstance(b[20] >> c[30], Phases)
    assert a[10] >> (b[20] >> c[30]) >> d == flat
    assert (a[10] >> b[20]) >> (c[30] >> d) != flat  # c[30] >> d is a composite: nested
    assert (a[10] >> b[20]) >> (c[30] >> d) == Composite(
        [(a, 10), (b, 20), (Composite([(c, 30), (d, None)]), None)])
    assert flat == Composite([(a, 10), (b, 20), (c, 30), (d, None)])
    assert flat == Composite([Phase(a, 10), Phase(b, 20), Phase(c, 30), Phase(d, None)])
    assert flat.starts == (0, 10, 30, 60)


# ---------------------------------------------------------------------------------------------
# Composition laws
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", [
    FIX(k0=0.1), STEP(k0=0.1, gamma=0.5, l=10), SIN2(k0=0.01, k1=0.06, l=2000), NESTED,
])
def test_a_one_phase_composite_is_its_policy(policy):
    assert Composite([(policy, None)]) is policy
    assert Composite([Phase(policy, None)]) is policy
    assert Composite(iter([(policy, None)])) is policy
    assert parse(f"({policy})") == policy
    assert from_dict({"name": "COMPOSITE", "phases": [
        {"policy": policy.to_dict(), "length": None}]}) == policy


def test_scalar_path_equals_vectorized_path():
    p = (LIN(k0=0.0, k1=0.1, l=500)[500]
         >> (COS(k0=0.1, k1=0.001, l=1000)[1000] >> SIN2(k0=0.001, k1=0.05, l=300))[3000]
         >> EXP(k0=0.01, gamma=0.999, k1=0.0001)[2000] >> POLY(k0=0.01, p=2.0, l=5000))
    ts = np.r_[0:12000:7, 499:502, 1499:1502, 3499:3502, 5499:5502, 10**7]
    vec = p.values(ts)
    for t, v in zip(ts, vec):
        assert p(int(t)) == pytest.approx(float(v), rel=1e-12, abs=1e-300)
    assert vec.dtype == np.float64 and np.all(np.isfinite(vec)) and np.all(vec >= 0)


def test_values_keeps_shape():
    p = parse(ISSUE)
    grid = np.array([[0, 14999, 15000], [16000, 17000, 10**7]])
    got = p.values(grid)
    assert got.shape == (2, 3) and got.dtype == np.float64
    assert got.tolist() == [[p(int(t)) for t in row] for row in grid]
    assert p.values(15000).shape == ()
    assert p.values([]).shape == (0,)
    assert p.values(grid.astype(float).tolist()).shape == (2, 3)


@pytest.mark.parametrize("t", [-1, 0.5, float("nan"), float("inf"), True, "3", None])
def test_bad_iteration(t):
    p = parse(ISSUE)
    with pytest.raises(ValueError, match="iteration"):
        p(t)
    with pytest.raises(ValueError, match="iteration"):
        NESTED(t)


@pytest.mark.parametrize("ts", [[-1], [0, 15000.5], [True], [float("nan")], np.array([-5])])
def test_values_rejects_bad_iterations(ts):
    with pytest.raises(ValueError, match="iteration"):
        parse(ISSUE).values(ts)


def test_whole_float_iteration():
    p = parse(ISSUE)
    assert p(15000.0) == p(15000) and p(np.int64(14999)) == p(14999)


# ---------------------------------------------------------------------------------------------
# Warm-up, one-cycle, warm restarts: composites of simple phases
# ---------------------------------------------------------------------------------------------
def test_linear_warmup_then_cosine():
    p = LIN(k0=0.0, k1=0.1, l=100)[100] >> COS(k0=0.1, k1=0.0, l=900)
    assert p(0) == 0.0
    assert p(50) == pytest.approx(0.05)
    assert p(99) == pytest.approx(0.099)
    assert p(100) == pytest.approx(0.1)
    assert p(550) == pytest.approx(0.05)
    assert p(1000) == pytest.approx(0.0, abs=1e-15)
    assert p.bounds == (0.0, 0.1)


def test_one_cycle():
    p = (LIN(k0=0.004, k1=0.1, l=450)[450] >> LIN(k0=0.1, k1=0.004, l=450)[450]
         >> LIN(k0=0.004, k1=0.00001, l=100))
    assert p(0) == pytest.approx(0.004)
    assert p(225) == pytest.approx(0.052)
    assert p(450) == pytest.approx(0.1)
    assert p(675) == pytest.approx(0.052)
    assert p(900) == pytest.approx(0.004)
    assert p(1000) == pytest.approx(0.00001)
    assert p(10**7) == pytest.approx(0.00001)


def test_warm_restarts():
    """SGDR: cosine annealing restarted with doubling period lengths."""
    p = (COS(k0=0.1, k1=0.0, l=100)[100] >> COS(k0=0.1, k1=0.0, l=200)[200]
         >> COS(k0=0.1, k1=0.0, l=400))
    assert p(0) == p(100) == p(300) == pytest.approx(0.1)
    assert p(99) < 1e-4 and p(299) < 1e-4
    assert p(200) == pytest.approx(0.05)
    assert p(700) == pytest.approx(0.0, abs=1e-15)


# ---------------------------------------------------------------------------------------------
# Construction errors, value semantics
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [0, -1, 1.5, float("nan"), float("inf"), True, "10", None])
def test_bad_phase_length(length):
    if length is None:  # policy[None] is an open-ended phase; it cannot be followed
        with pytest.raises(ValueError, match="open-ended"):
            Composite([(FIX(k0=0.1), None), (FIX(k0=0.2), None)])
        return
    with pytest.raises(ValueError, match="length"):
        FIX(k0=0.1)[length]
    with pytest.raises(ValueError, match="length"):
        Composite([(FIX(k0=0.1), length), (FIX(k0=0.2), None)])


def test_construction_errors():
    with pytest.raises(ValueError, match="open-ended"):
        FIX(k0=0.1) >> FIX(k0=0.2)
    with pytest.raises(ValueError, match="open-ended"):
        Composite([(FIX(k0=0.1), 10), (FIX(k0=0.2), 10)])
    with pytest.raises(ValueError, match="at least one"):
        Composite([])
    with pytest.raises(ValueError, match="Policy"):
        Composite([("FIX(k0=0.1)", 10), (FIX(k0=0.2), None)])
    with pytest.raises(ValueError, match="Policy"):
        Phase(0.1, 10)
    with pytest.raises(ValueError):
        Composite([(FIX(k0=0.1),), (FIX(k0=0.2), None)])
    with pytest.raises(ValueError):
        Composite(5)
    with pytest.raises(ValueError):
        FIX(k0=0.1)[10] >> 0.2
    with pytest.raises(ValueError, match="phases"):
        from_dict({"name": "COMPOSITE"})


def test_equality_and_hash_by_value():
    a = FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)
    b = Composite([(FIX(k0=0.1), 15000.0),
                   (SINEXP(k0=1e-4, k1=0.9, gamma=0.99994, l=2000.0), None)])
    assert a == b and hash(a) == hash(b) and len({a, b, parse(ISSUE)}) == 1
    assert a != FIX(k0=0.1)[15001] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)
    assert a != FIX(k0=0.2)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)
    assert a != FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.9999, l=2000)
    assert a != FIX(k0=0.1)
    assert FIX(k0=0.1) != a


@pytest.mark.parametrize(
    "p", [parse(ISSUE), NESTED, FIX(k0=0.1)[10] >> (FIX(k0=0.2)[5] >> FIX(k0=0.3))])
def test_round_trips(p):
    d = p.to_dict()
    assert json.loads(json.dumps(d)) == d
    for back in (from_dict(d), from_dict(json.loads(json.dumps(d))), pickle.loads(pickle.dumps(p)),
                 copy.deepcopy(p), copy.copy(p), parse(str(p))):
        assert back == p and hash(back) == hash(p) and str(back) == str(p)
        assert back.values([0, 10, 100, 15000, 10**7]).tolist() == p.values(
            [0, 10, 100, 15000, 10**7]).tolist()


def test_to_dict_format():
    assert parse(ISSUE).to_dict() == {"name": "COMPOSITE", "phases": [
        {"policy": {"name": "FIX", "params": {"k0": 0.1}}, "length": 15000},
        {"policy": {"name": "SINEXP", "params": {"k0": 0.0001, "k1": 0.9, "gamma": 0.99994,
                                                 "l": 2000}}, "length": None},
    ]}


def test_immutable():
    p = parse(ISSUE)
    for attr in ("_phases", "_starts", "phases", "anything"):
        with pytest.raises(AttributeError):
            setattr(p, attr, ())
    with pytest.raises(AttributeError):
        del p._phases
    ph = p.phases[0]
    with pytest.raises(AttributeError):
        ph.length = 5
    with pytest.raises(AttributeError):
        ph.policy = FIX(k0=0.2)
    assert isinstance(p.phases, tuple)
    p.params["phases"].append((FIX(k0=1.0), None))
    assert str(p) == ISSUE
