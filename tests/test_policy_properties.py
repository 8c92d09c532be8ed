"""Property tests (hypothesis) for policies: bounds, monotonicity, periodicity, amplitude
halving, validation, notation/dict/pickle round trips, value semantics, composite laws.

Examples are kept modest (the whole file runs in a few seconds); raise them locally with
the environment variable LRBENCH_HYPOTHESIS_EXAMPLES when hunting.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lrbench.policies import (
    COS,
    FUNCTIONS,
    SIN,
    SIN2,
    SINEXP,
    TRI,
    TRI2,
    TRIEXP,
    Composite,
    from_dict,
    make,
    parse,
)

# LRBENCH_HYPOTHESIS_EXAMPLES=2000 for a long local hunt; CI keeps the default.
SETTINGS = settings(max_examples=int(os.environ.get("LRBENCH_HYPOTHESIS_EXAMPLES", "60")),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------
# Strategies: valid parameters of every function, and composites (nested too)
# ---------------------------------------------------------------------------------------------
lrs = st.one_of(
    st.floats(min_value=1e-6, max_value=10.0),
    st.floats(min_value=1e-300, max_value=1e300),  # extreme but valid
    st.sampled_from([0.1, 0.01, 0.001, 0.06, 0.9, 5e-05]),
)
gammas = st.one_of(st.just(1.0), st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
                   st.floats(min_value=0.99, max_value=1.0))
lengths = st.one_of(st.integers(1, 10), st.integers(1, 10**6), st.just(2000))
floor_fractions = st.floats(min_value=0.0, max_value=0.999)
iterations = st.one_of(st.integers(0, 100), st.integers(0, 10**7), st.integers(0, 10**12))

DECAYING = sorted(n for n, c in FUNCTIONS.items() if c.kind == "decaying")
CYCLIC = sorted(n for n, c in FUNCTIONS.items() if c.kind == "cyclic")


@st.composite
def params_for(draw, name):
    cls = FUNCTIONS[name]
    k0 = draw(lrs)
    p = {"k0": k0}
    if cls.kind == "decaying":
        frac = draw(st.one_of(st.none(), floor_fractions))
        if frac is not None:
            p["k1"] = k0 * frac
    elif cls.kind == "cyclic":
        p["k1"] = draw(st.one_of(st.just(0.0), lrs))
    elif name == "LIN":
        p["k0"] = draw(st.one_of(st.just(0.0), lrs))
        p["k1"] = draw(st.one_of(st.just(0.0), lrs))
    if name == "INV":
        p["gamma"] = draw(st.floats(0.0, 1e3))
        p["p"] = draw(st.floats(0.0, 10.0))
    elif "gamma" in cls.param_names:
        p["gamma"] = draw(gammas)
    if name == "POLY":
        p["p"] = draw(st.floats(1e-3, 10.0))
    if name == "NSTEP":
        p["l"] = sorted(draw(st.sets(st.integers(1, 10**7), min_size=1, max_size=8)))
    elif "l" in cls.param_names:
        p["l"] = draw(lengths)
    return p


@st.composite
def functions(draw, names=tuple(sorted(FUNCTIONS))):
    name = draw(st.sampled_from(names))
    return make(name, **draw(params_for(name)))


def _composites(children):
    return st.builds(
        lambda heads, last: Composite([*heads, (last, None)]),
        st.lists(st.tuples(children, st.integers(1, 5000)), min_size=1, max_size=3),
        children,
    )


policies = st.recursive(functions(), _composites, max_leaves=6)
composites = _composites(st.recursive(functions(), _composites, max_leaves=3))


def close(a, b, scale):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12 * scale)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(policies, st.lists(iterations, min_size=1, max_size=10))
def test_lr_is_finite_and_within_bounds(policy, ts):
    lo, hi = policy.bounds
    assert 0.0 <= lo <= hi and math.isfinite(hi)
    vec = policy.values(ts)
    assert vec.dtype == np.float64 and vec.shape == (len(ts),)
    for t, v in zip(ts, vec):
        s = policy(t)
        assert type(s) is float
        assert math.isfinite(s) and lo <= s <= hi, (str(policy), t, s)
        assert math.isfinite(v) and lo <= v <= hi, (str(policy), t, v)


@SETTINGS
@given(policies, st.lists(iterations, min_size=1, max_size=10))
def test_scalar_path_equals_vectorized_path(policy, ts):
    vec = policy.values(np.asarray(ts, dtype=np.int64))
    for t, v in zip(ts, vec):
        # the same formula on two back-ends: at most a last-bit difference of pow/sin
        assert math.isclose(policy(t), float(v), rel_tol=1e-12, abs_tol=1e-300), (str(policy), t)


@SETTINGS
@given(functions(tuple(DECAYING)), iterations, st.integers(1, 10**4),
       st.lists(iterations, min_size=2, max_size=12))
def test_decaying_functions_never_increase(policy, start, span, scattered):
    ts = sorted(set(scattered) | set(range(start, start + min(span, 300))) |
                set(range(start, start + span * 50, span)))
    vec = policy.values(ts)
    assert np.all(np.diff(vec) <= 0), str(policy)
    scalars = [policy(t) for t in ts]
    assert all(b <= a for a, b in zip(scalars, scalars[1:])), str(policy)
    assert scalars[0] <= policy(0) == policy.params["k0"]


@SETTINGS
@given(functions(tuple(DECAYING)), iterations)
def test_decaying_functions_start_at_k0_and_stay_above_their_floor(policy, t):
    k0, k1 = policy.params["k0"], policy.params.get("k1", 0.0)
    assert policy(0) == k0
    assert k1 <= policy(t) <= k0


@SETTINGS
@given(functions(("TRI", "SIN", "COS")), iterations, st.integers(1, 1000))
def test_tri_sin_cos_repeat_with_period_2l(policy, t, k):
    l = policy.params["l"]
    scale = policy.bounds[1]
    a = policy(t)
    assert close(policy(t + 2 * l), a, scale), str(policy)
    assert close(policy(t + 2 * l * k), a, scale), str(policy)
    v = policy.values([t, t + 2 * l, t + 2 * l * k])
    assert close(v[1], v[0], scale) and close(v[2], v[0], scale)
    # and not with period l (unless it is constant): TRI/SIN peak at l, are at the minimum at 0
    lo, hi = policy.bounds
    if hi > lo:
        assert not close(policy(0), policy(l), hi)


@SETTINGS
@given(functions(("TRI2", "SIN2")), st.integers(0, 10**6), st.integers(1, 60))
def test_tri2_sin2_amplitude_halves_each_cycle(policy, t, cycles):
    l = policy.params["l"]
    lo, hi = policy.bounds
    a = policy(t) - lo
    assert close(policy(t + 2 * l) - lo, a / 2, hi), str(policy)
    assert close(policy(t + 2 * l * cycles) - lo, math.ldexp(a, -cycles), hi), str(policy)
    # the peaks: max at l, then (max - min) / 2 + min at 3l, / 4 at 5l
    amp = hi - lo
    for n in range(4):
        assert close(policy((2 * n + 1) * l), lo + amp / 2**n, hi), (str(policy), n)


@SETTINGS
@given(functions(("TRIEXP", "SINEXP")), st.integers(0, 10**5))
def test_triexp_sinexp_amplitude_decays_by_gamma_to_the_2l(policy, t):
    l, gamma = policy.params["l"], policy.params["gamma"]
    lo, hi = policy.bounds
    assume(2 * l * math.log(gamma if gamma > 0 else 1e-300) > -700)  # no underflow to 0
    assert close(policy(t + 2 * l) - lo, gamma ** (2 * l) * (policy(t) - lo), hi), str(policy)


@SETTINGS
@given(policies, st.lists(iterations, min_size=1, max_size=20), st.randoms())
def test_evaluation_order_does_not_matter(policy, ts, rnd):
    """A pure function of t (the authors' NSTEP counter is not copied)."""
    first = {t: policy(t) for t in ts}
    shuffled = list(ts)
    rnd.shuffle(shuffled)
    assert [policy(t) for t in shuffled] == [first[t] for t in shuffled]
    np.testing.assert_array_equal(policy.values(shuffled), policy.values(ts)[
        [ts.index(t) for t in shuffled]])


@SETTINGS
@given(policies, st.lists(st.integers(0, 10**6), min_size=0, max_size=24).flatmap(
    lambda xs: st.sampled_from([(len(xs),), (1, len(xs)), (len(xs), 1)]).map(
        lambda shape: np.asarray(xs, dtype=np.int64).reshape(shape))))
def test_values_keeps_the_input_shape(policy, ts):
    got = policy.values(ts)
    assert got.shape == ts.shape and got.dtype == np.float64
    if ts.size:  # (an empty (0, 1) array's tolist() is [], which has shape (0,))
        assert policy.values(ts.tolist()).shape == ts.shape
    assert policy.values(ts.astype(float)).shape == ts.shape


@SETTINGS
@given(policies, st.one_of(st.integers(max_value=-1),
                           st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer()
                                                             and x >= 0))))
def test_bad_iterations_raise(policy, t):
    with pytest.raises(ValueError, match="iteration"):
        policy(t)
    with pytest.raises(ValueError, match="iteration"):
        policy.values([0, t])


# ---------------------------------------------------------------------------------------------
# Invalid parameters: a ValueError naming the parameter
# ---------------------------------------------------------------------------------------------
not_numbers = st.one_of(st.booleans(), st.text(max_size=3), st.none(),
                        st.lists(st.floats(0.1, 1.0), min_size=1, max_size=2))
not_numbers_but_none = not_numbers.filter(lambda x: x is not None)  # k1=None: no floor
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
negative = st.floats(max_value=0.0, exclude_max=True, allow_nan=False, allow_infinity=False)
non_positive = st.one_of(negative, st.just(0.0), st.just(0), st.integers(max_value=0))
BAD = {
    "lr": st.one_of(non_positive, non_finite, not_numbers),                    # k0 > 0
    "lin": st.one_of(negative, st.integers(max_value=-1), non_finite, not_numbers),  # >= 0
    "k1": st.one_of(negative, st.integers(max_value=-1), non_finite, not_numbers),   # >= 0
    "floor": st.one_of(negative, st.integers(max_value=-1), non_finite,               # < k0
                       not_numbers_but_none, st.floats(0.1, 1e300), st.integers(1, 10**6)),
    "gamma": st.one_of(non_positive, st.floats(min_value=1.0, exclude_min=True,
                                               allow_infinity=False),
                       st.integers(min_value=2), non_finite, not_numbers),    # (0, 1]
    "inv": st.one_of(negative, st.integers(max_value=-1), non_finite, not_numbers),  # >= 0
    "poly_p": st.one_of(non_positive, non_finite, not_numbers),                # > 0
    "length": st.one_of(st.integers(max_value=0), non_finite, not_numbers,
                        st.floats(allow_nan=False, allow_infinity=False).filter(
                            lambda x: not x.is_integer() or x <= 0)),
}


def _bad_strategy(name, param):
    cls = FUNCTIONS[name]
    if param == "k0":
        return BAD["lin"] if name == "LIN" else BAD["lr"]
    if param == "k1":
        if cls.kind == "decaying":  # an optional floor below k0 (= 0.1 in VALID)
            return BAD["floor"]
        return BAD["lin"] if name == "LIN" else BAD["k1"]
    if param == "gamma":
        return BAD["inv"] if name == "INV" else BAD["gamma"]
    if param == "p":
        return BAD["inv"] if name == "INV" else BAD["poly_p"]
    if param == "l" and name == "NSTEP":
        good = st.integers(1, 10**6)
        return st.one_of(
            st.just([]),
            st.lists(good, min_size=2, max_size=5).filter(lambda xs: xs != sorted(set(xs))),
            st.lists(good, min_size=1, max_size=4).map(lambda xs: sorted(xs) + [sorted(xs)[-1]]),
            st.lists(BAD["length"], min_size=1, max_size=3),
            not_numbers.filter(lambda x: not isinstance(x, list)), good,
        )
    assert param == "l", (cls, param)
    return BAD["length"]


VALID = {
    "FIX": dict(k0=0.1), "STEP": dict(k0=0.1, gamma=0.5, l=10),
    "NSTEP": dict(k0=0.1, gamma=0.5, l=[10, 20]), "EXP": dict(k0=0.1, gamma=0.5),
    "INV": dict(k0=0.1, gamma=0.5, p=0.75), "POLY": dict(k0=0.1, p=1.0, l=100),
    "TRI": dict(k0=0.01, k1=0.06, l=20), "TRI2": dict(k0=0.01, k1=0.06, l=20),
    "TRIEXP": dict(k0=0.01, k1=0.06, gamma=0.99, l=20), "SIN": dict(k0=0.01, k1=0.06, l=20),
    "SIN2": dict(k0=0.01, k1=0.06, l=20), "SINEXP": dict(k0=0.01, k1=0.06, gamma=0.99, l=20),
    "COS": dict(k0=0.1, k1=0.0, l=20), "LIN": dict(k0=0.0, k1=0.1, l=20),
}
NAME_PARAM = [(n, p) for n, cls in FUNCTIONS.items() for p in cls.param_names]


@SETTINGS
@given(st.sampled_from(NAME_PARAM).flatmap(
    lambda np_: st.tuples(st.just(np_[0]), st.just(np_[1]), _bad_strategy(*np_))))
def test_invalid_parameter_raises_value_error_naming_it(case):
    name, param, bad = case
    with pytest.raises(ValueError) as info:
        make(name, **{**VALID[name], param: bad})
    assert re.search(rf"\b{param}\b", str(info.value)), str(info.value)


@SETTINGS
@given(st.sampled_from(DECAYING), st.floats(min_value=1.0, max_value=1e6))
def test_a_floor_at_or_above_k0_is_rejected(name, ratio):
    k0 = VALID[name]["k0"]
    with pytest.raises(ValueError, match=r"\bk1\b"):
        make(name, **{**VALID[name], "k1": k0 * ratio})


@SETTINGS
@given(st.sampled_from(sorted(FUNCTIONS)),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8))
def test_unknown_parameter_is_rejected_listing_the_valid_ones(name, param):
    assume(param not in FUNCTIONS[name].param_names and param.isidentifier())
    with pytest.raises(ValueError) as info:
        make(name, **{**VALID[name], param: 1.0})
    assert param in str(info.value)
    assert all(p in str(info.value) for p in FUNCTIONS[name].param_names)
    with pytest.raises(ValueError, match="valid parameters"):
        parse(f"{name}({param}=1.0)")


@SETTINGS
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8))
def test_unknown_function_is_rejected_listing_the_valid_ones(name):
    assume(name.upper() not in FUNCTIONS and name[0].isalpha())
    with pytest.raises(ValueError, match="valid functions: FIX, STEP"):
        make(name, k0=0.1)
    with pytest.raises(ValueError, match="valid functions: FIX, STEP"):
        parse(f"{name}(k0=0.1)")


# ---------------------------------------------------------------------------------------------
# Round trips and value semantics
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(policies)
def test_notation_round_trip(policy):
    text = str(policy)
    back = parse(text)
    assert back == policy and hash(back) == hash(policy)
    assert str(back) == text
    assert parse(text.lower()) == policy
    assert parse(text.replace(", ", ",").replace(" >> ", ">>")) == policy
    assert parse("  " + text.replace("(", " ( ").replace("=", " = ") + "\n") == policy


@SETTINGS
@given(policies)
def test_dict_json_and_pickle_round_trip(policy):
    d = policy.to_dict()
    assert from_dict(d) == policy
    assert from_dict(json.loads(json.dumps(d))) == policy
    back = pickle.loads(pickle.dumps(policy))
    assert back == policy and hash(back) == hash(policy) and str(back) == str(policy)


@SETTINGS
@given(policies, st.lists(iterations, min_size=1, max_size=5))
def test_equal_policies_give_equal_values(policy, ts):
    twin = parse(str(policy))  # a separately built, equal policy
    assert twin.values(ts).tolist() == policy.values(ts).tolist()
    assert [twin(t) for t in ts] == [policy(t) for t in ts]


@SETTINGS
@given(st.sampled_from(sorted(FUNCTIONS)).flatmap(
    lambda n: st.tuples(st.just(n), params_for(n))))
def test_whole_float_lengths_and_zero_floors_are_the_same_policy(case):
    """l=2000.0 is l=2000; a floor k1=0 (or -0.0) is no floor; -0.0 is 0.0 -- equal, and
    printed the same."""
    name, p = case
    a = make(name, **p)
    alt = dict(p)
    if "l" in alt:
        alt["l"] = [float(x) for x in alt["l"]] if name == "NSTEP" else float(alt["l"])
    if FUNCTIONS[name].kind == "decaying" and "k1" not in alt:
        alt["k1"] = 0.0
    alt = {k: -0.0 if v == 0.0 and not isinstance(v, list) else v for k, v in alt.items()}
    b = make(name, **alt)
    assert a == b and hash(a) == hash(b) and str(a) == str(b)
    assert a.n_params == b.n_params


@SETTINGS
@given(policies, st.sampled_from(["_p", "_phases", "k0", "x", "name"]))
def test_immutable(policy, attr):
    before = str(policy)
    with pytest.raises(AttributeError):
        setattr(policy, attr, 0.5)
    assert str(policy) == before


@SETTINGS
@given(functions())
def test_n_params(policy):
    """#Param: the parameters given; NSTEP's l counts one per milestone; a decaying
    function's k1 only when given (a zero floor is no floor)."""
    p = policy.params
    expected = sum(len(v) if isinstance(v, tuple) else 1 for v in p.values())
    assert policy.n_params == expected
    base = {"FIX": 1, "STEP": 3, "EXP": 2, "INV": 3, "POLY": 3, "TRI": 3, "TRI2": 3,
            "TRIEXP": 4, "SIN": 3, "SIN2": 3, "SINEXP": 4, "COS": 3, "LIN": 3}
    if policy.name == "NSTEP":
        want = len(p["l"]) + 2
    else:
        want = base[policy.name]
    if policy.kind == "decaying" and p.get("k1"):
        want += 1
    assert policy.n_params == want


# ---------------------------------------------------------------------------------------------
# Composite laws
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(policies)
def test_a_one_phase_composite_is_its_policy(policy):
    assert Composite([(policy, None)]) is policy


@SETTINGS
@given(composites, st.integers(0, 3))
def test_phase_offsets_exact_at_the_boundaries(policy, extra):
    """Inside phase i the policy sees t - start_i, from 0: check start-1, start, start+1 and
    the last iteration of each phase."""
    starts = policy.starts
    assert starts[0] == 0
    for i, ph in enumerate(policy.phases):
        s = starts[i]
        end = s + ph.length if ph.length is not None else s + 10**6
        if ph.length is not None:
            assert starts[i + 1] == end
        for local in sorted({0, 1, extra, end - s - 1}):
            if s + local < end:
                assert policy(s + local) == ph.policy(local), (str(policy), i, local)
                assert math.isclose(policy.values([s + local])[0], ph.policy(local),
                                    rel_tol=1e-12, abs_tol=1e-300)
        if i > 0:
            prev = policy.phases[i - 1]
            assert policy(s - 1) == prev.policy(prev.length - 1)


@SETTINGS
@given(composites)
def test_composite_n_params_and_bounds(policy):
    phases = policy.phases
    assert policy.n_params == sum(ph.policy.n_params for ph in phases) + len(phases) - 1
    assert policy.bounds == (min(ph.policy.bounds[0] for ph in phases),
                             max(ph.policy.bounds[1] for ph in phases))
    assert policy.kind == "composite"


@SETTINGS
@given(st.lists(st.tuples(functions(), st.integers(1, 100)), min_size=1, max_size=4),
       functions(), st.integers(0, 500))
def test_building_with_operators_equals_the_constructor(heads, last, t):
    built = heads[0][0][heads[0][1]]
    for p, n in heads[1:]:
        built = built >> p[n]
    built = built >> last
    direct = Composite([*heads, (last, None)])
    assert built == direct
    assert built(t) == direct(t)
    total = sum(n for _, n in heads)
    assert direct(total + t) == last(t)


def test_strategies_cover_every_kind():
    """Guard: the strategies above produce every function, and nested composites."""
    seen, nested = set(), False

    @settings(max_examples=300, deadline=None, database=None)
    @given(policies)
    def collect(p):
        nonlocal nested
        stack = [p]
        while stack:
            q = stack.pop()
            if isinstance(q, Composite):
                for ph in q.phases:
                    nested |= isinstance(ph.policy, Composite)
                    stack.append(ph.policy)
            else:
                seen.add(q.name)

    collect()
    assert seen == set(FUNCTIONS)
    assert nested


# the classes whose periodicity is tested are exactly the cyclic ones of SPEC
def test_cyclic_classes():
    assert set(CYCLIC) == {c.name for c in (TRI, TRI2, TRIEXP, SIN, SIN2, SINEXP, COS)}
