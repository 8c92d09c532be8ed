"""Policy notation: ``lrbench.parse(text)`` and ``str(policy)`` (SPEC section 2).

Printing is canonical (fixed parameter order, shortest round-tripping numbers, NSTEP's l as a
list, composites with ``[n] >>`` and parentheses); parsing is tolerant (any case, any spacing,
scientific notation, positional arguments, whole floats for lengths) and says what is wrong,
and where, with a ValueError.
"""

from __future__ import annotations

import doctest
import importlib
import math

import pytest

import lrbench
from lrbench.policies import (
    COS,
    EXP,
    FIX,
    FUNCTIONS,
    INV,
    LIN,
    NSTEP,
    POLY,
    SIN,
    SIN2,
    SINEXP,
    STEP,
    TRI,
    TRI2,
    TRIEXP,
    Composite,
    format_policy,
    parse,
)

# canonical text <-> the policy built in Python
CANONICAL = [
    ("FIX(k0=0.1)", FIX(k0=0.1)),
    ("STEP(k0=0.1, gamma=0.1, l=100)", STEP(k0=0.1, gamma=0.1, l=100)),
    ("STEP(k0=0.1, k1=0.001, gamma=0.5, l=3)", STEP(k0=0.1, gamma=0.5, l=3, k1=0.001)),
    ("NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])",
     NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])),
    ("NSTEP(k0=0.1, gamma=0.1, l=[32000])", NSTEP(k0=0.1, gamma=0.1, l=[32000])),
    ("NSTEP(k0=0.1, k1=0.0001, gamma=0.1, l=[32000, 48000])",
     NSTEP(k0=0.1, gamma=0.1, l=[32000, 48000], k1=0.0001)),
    ("EXP(k0=0.1, gamma=0.99994)", EXP(k0=0.1, gamma=0.99994)),
    ("EXP(k0=0.1, k1=0.001, gamma=0.99994)", EXP(k0=0.1, gamma=0.99994, k1=0.001)),
    ("INV(k0=0.01, gamma=0.0001, p=0.75)", INV(k0=0.01, gamma=0.0001, p=0.75)),
    ("INV(k0=0.01, k1=0.001, gamma=0.0001, p=0.75)", INV(k0=0.01, gamma=0.0001, p=0.75, k1=0.001)),
    ("POLY(k0=0.1, p=1.0, l=1000)", POLY(k0=0.1, p=1, l=1000)),
    ("POLY(k0=0.1, k1=0.001, p=2.0, l=1000)", POLY(k0=0.1, p=2.0, l=1000, k1=0.001)),
    ("TRI(k0=0.01, k1=0.06, l=2000)", TRI(k0=0.01, k1=0.06, l=2000)),
    ("TRI2(k0=0.01, k1=0.06, l=2000)", TRI2(k0=0.01, k1=0.06, l=2000)),
    ("TRIEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)",
     TRIEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)),
    ("SIN(k0=0.06, k1=0.01, l=2000)", SIN(k0=0.06, k1=0.01, l=2000)),
    ("SIN2(k0=0.01, k1=0.06, l=2000)", SIN2(k0=0.01, k1=0.06, l=2000)),
    ("SINEXP(k0=5e-05, k1=0.006, gamma=0.99994, l=2000)",
     SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000)),
    ("COS(k0=0.1, k1=0.0, l=2000)", COS(k0=0.1, k1=0, l=2000)),
    ("LIN(k0=0.0, k1=0.1, l=500)", LIN(k0=0, k1=0.1, l=500)),
    ("FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)",
     FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)),
    ("LIN(k0=0.0, k1=0.1, l=500)[500] >> COS(k0=0.1, k1=0.0, l=9500)",
     LIN(k0=0.0, k1=0.1, l=500)[500] >> COS(k0=0.1, k1=0.0, l=9500)),
    ("FIX(k0=0.1)[100] >> FIX(k0=0.01)[200] >> FIX(k0=0.001)",
     FIX(k0=0.1)[100] >> FIX(k0=0.01)[200] >> FIX(k0=0.001)),
    ("(FIX(k0=0.1)[100] >> STEP(k0=0.1, gamma=0.5, l=10))[500] >> COS(k0=0.1, k1=0.0, l=100)",
     Composite([(FIX(k0=0.1)[100] >> STEP(k0=0.1, gamma=0.5, l=10), 500),
                (COS(k0=0.1, k1=0.0, l=100), None)])),
    ("FIX(k0=0.1)[100] >> (FIX(k0=0.2)[10] >> FIX(k0=0.3))",
     Composite([(FIX(k0=0.1), 100), (FIX(k0=0.2)[10] >> FIX(k0=0.3), None)])),
    ("((FIX(k0=0.1)[1] >> FIX(k0=0.2))[5] >> FIX(k0=0.3))[7] >> LIN(k0=0.0, k1=1.0, l=5)",
     Composite([(Composite([(FIX(k0=0.1)[1] >> FIX(k0=0.2), 5), (FIX(k0=0.3), None)]), 7),
                (LIN(k0=0.0, k1=1.0, l=5), None)])),
]


@pytest.mark.parametrize("text,policy", CANONICAL, ids=[c[0] for c in CANONICAL])
def test_canonical_text(text, policy):
    assert str(policy) == text
    assert format_policy(policy) == text
    assert parse(text) == policy
    assert hash(parse(text)) == hash(policy)
    assert str(parse(text)) == text
    assert lrbench.parse(text) == policy
    assert repr(policy) == f"<Policy {text}>"


def test_every_function_has_a_canonical_example():
    names = {c[1].name for c in CANONICAL}
    assert set(FUNCTIONS) <= names


# Many ways of writing the same policy
SAME = [
    (SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000), [
        "SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000)",
        "sinexp(k0=5e-5,k1=6e-3,gamma=0.99994,l=2000)",
        "SinExp( K0 = 5E-5 , K1=6.0E-3 , GAMMA = 9.9994e-1 , L = 2e3 )",
        "  SINEXP\t(\n k0=5e-05,\n k1=0.006,\n gamma=0.99994,\n l=2000.0\n)  ",
        "SINEXP(5e-5, 0.006, 0.99994, 2000)",
        "SINEXP(5e-5, 0.006, gamma=0.99994, l=2000)",
        "SINEXP(l=2000, gamma=0.99994, k1=0.006, k0=0.00005)",
        "SINEXP(k0=+5e-5, k1=.006, gamma=0.99994, l=+2000)",
    ]),
    (NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]), [
        "NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000])",
        "nstep(k0=1e-2, gamma=1e-1, l=[5e3, 7e3])",
        "NSTEP(k0=0.01,gamma=0.1,l=[5000,7000])",
        "NSTEP( k0 = 0.01 , gamma = 0.1 , l = [ 5000 , 7000.0 ] )",
        "NSTEP(0.01, 0.1, [5000, 7000])",
        "NSTEP(k0=0.01, k1=0, gamma=0.1, l=[5000, 7000])",
        "NSTEP(k0=0.01, k1=0.0, gamma=0.1, l=[5000, 7000])",
    ]),
    (STEP(k0=0.1, gamma=0.5, l=10, k1=0.001), [
        "STEP(k0=0.1, k1=0.001, gamma=0.5, l=10)",
        "STEP(0.1, 0.5, 10, k1=1e-3)",
        "step(K1=1E-3, L=10, Gamma=.5, K0=1e-1)",
    ]),
    (FIX(k0=1.0), ["FIX(k0=1)", "FIX(1)", "FIX(1.)", "FIX(1.0)", "FIX(k0=1e0)", "FIX(k0=10E-1)",
                   "fix(K0=1)", "Fix (k0 = 1)"]),
    (FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000), [
        "FIX(k0=0.1)[15000]>>SINEXP(k0=0.0001,k1=0.9,gamma=0.99994,l=2000)",
        "fix(0.1) [ 15000 ] >> sinexp(1e-4, 0.9, 0.99994, 2000)",
        "FIX(k0=0.1)[1.5e4] >> SINEXP(k0=1e-4, k1=0.9, gamma=0.99994, l=2000)",
        "FIX(k0=0.1)[15000.0]\n  >> SINEXP(k0=1e-4, k1=0.9, gamma=0.99994, l=2000)",
        "(FIX(k0=0.1))[15000] >> (SINEXP(k0=1e-4, k1=0.9, gamma=0.99994, l=2000))",
    ]),
    (FIX(k0=0.1), ["(FIX(k0=0.1))", "((FIX(k0=0.1)))", " ( fix(0.1) ) "]),
]


@pytest.mark.parametrize(
    "policy,text", [(p, t) for p, texts in SAME for t in texts], ids=lambda x: str(x))
def test_tolerant_parsing(policy, text):
    parsed = parse(text)
    assert parsed == policy
    assert str(parsed) == str(policy)


# Numbers print as the shortest text that reads back exactly.
ODD_NUMBERS = [0.1 + 0.2, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
               1e-05, 5e-05, 1e16, 123456789.123, 0.99994, 1 - 2**-53, math.pi]


@pytest.mark.parametrize("x", ODD_NUMBERS, ids=repr)
def test_numbers_round_trip_exactly(x):
    for p in (FIX(k0=x), TRI(k0=x, k1=x / 2, l=7)):
        back = parse(str(p))
        assert back == p
        assert back.params["k0"] == x  # exact, not approximately
        assert str(back) == str(p)
    if 0 < x <= 1:
        p = EXP(k0=0.1, gamma=x)
        assert parse(str(p)).params["gamma"] == x


def test_negative_zero_prints_as_zero():
    for text in ("COS(k0=0.1, k1=-0.0, l=100)", "COS(k0=0.1, k1=-0, l=100)",
                 "COS(k0=0.1, k1=+0.0, l=100)", "COS(k0=0.1, k1=0e-3, l=100)"):
        assert str(parse(text)) == "COS(k0=0.1, k1=0.0, l=100)"
    assert str(parse("LIN(k0=-0.0, k1=0.1, l=5)")) == "LIN(k0=0.0, k1=0.1, l=5)"


def test_big_lengths_round_trip():
    p = NSTEP(k0=0.1, gamma=0.5, l=[1, 10**12, 10**18 + 1])
    assert str(p) == "NSTEP(k0=0.1, gamma=0.5, l=[1, 1000000000000, 1000000000000000001])"
    assert parse(str(p)) == p
    assert parse(str(p)).params["l"][-1] == 10**18 + 1


def test_the_papers_policies_parse():
    """SPEC section 7's policies, as written there."""
    texts = [
        "NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])",
        "INV(k0=0.01, gamma=0.0001, p=0.75)",
        "SIN2(k0=0.01, k1=0.06, l=2000)",
        "NSTEP(k0=0.001, gamma=0.1, l=[60000, 65000])",
        "SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000)",
        "NSTEP(k0=0.1, gamma=0.1, l=[32000, 48000])",
        "SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)",
        "FIX(k0=0.01)", "FIX(k0=0.001)",
    ]
    for text in texts:
        p = parse(text)
        assert parse(str(p)) == p
    assert parse(texts[0]).n_params == 7
    assert parse(texts[0])(9499) == pytest.approx(0.01 * 0.9**4)
    assert parse(texts[0])(9500) == pytest.approx(0.01 * 0.9**5)


# ---------------------------------------------------------------------------------------------
# Errors: always a ValueError, saying what is wrong
# ---------------------------------------------------------------------------------------------
def test_unknown_function_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        parse("SINE(k0=0.1, k1=0.2, l=10)")
    msg = str(info.value)
    assert "SINE" in msg
    for name in FUNCTIONS:
        assert name in msg
    with pytest.raises(ValueError, match="COS"):
        parse("FIX(k0=0.1)[10] >> COSINE(k0=0.1, k1=0.0, l=10)")


@pytest.mark.parametrize("text,unknown,valid", [
    ("FIX(k0=0.1, k1=0.01)", "k1", ["k0"]),
    ("STEP(k0=0.1, gamma=0.5, step=10)", "step", ["k0", "k1", "gamma", "l"]),
    ("SIN2(k0=0.01, k1=0.06, T=2000)", "t", ["k0", "k1", "l"]),
    ("INV(k0=0.01, gamma=0.0001, power=0.75)", "power", ["k0", "k1", "gamma", "p"]),
    ("TRIEXP(k0=0.01, k1=0.06, g=0.9, l=2000)", "g", ["k0", "k1", "gamma", "l"]),
    ("FIX(k0=0.1)[10] >> COS(k0=0.1, k1=0.0, lr=10)", "lr", ["k0", "k1", "l"]),
])
def test_unknown_parameter_lists_the_valid_ones(text, unknown, valid):
    with pytest.raises(ValueError) as info:
        parse(text)
    msg = str(info.value)
    assert repr(unknown) in msg
    listed = msg.split("valid parameters:")[1]
    for name in valid:
        assert name in listed


@pytest.mark.parametrize("text,param,value", [
    ("FIX(k0=0)", "k0", "0"),
    ("FIX(k0=inf)", "k0", "inf"),
    ("FIX(k0=nan)", "k0", "nan"),
    ("STEP(k0=0.1, gamma=1.5, l=10)", "gamma", "1.5"),
    ("STEP(k0=0.1, gamma=0, l=10)", "gamma", "0"),
    ("STEP(k0=0.1, gamma=0.5, l=0)", "l", "0"),
    ("STEP(k0=0.1, gamma=0.5, l=2.5)", "l", "2.5"),
    ("STEP(k0=0.1, gamma=0.5, l=10, k1=0.1)", "k1", "0.1"),
    ("STEP(k0=0.1, gamma=0.5, l=10, k1=0.5)", "k1", "0.5"),
    ("NSTEP(k0=0.1, gamma=0.5, l=[7000, 5000])", "l", "[7000, 5000]"),
    ("NSTEP(k0=0.1, gamma=0.5, l=[5000, 5000])", "l", "[5000, 5000]"),
    ("NSTEP(k0=0.1, gamma=0.5, l=[0, 5000])", "l", "0"),
    ("NSTEP(k0=0.1, gamma=0.5, l=5000)", "l", "5000"),
    ("INV(k0=0.1, gamma=-1, p=0.5)", "gamma", "-1"),
    ("INV(k0=0.1, gamma=1, p=-0.5)", "p", "-0.5"),
    ("POLY(k0=0.1, p=0, l=10)", "p", "0"),
    ("TRI(k0=0.01, k1=-0.06, l=2000)", "k1", "-0.06"),
    ("COS(k0=0.1, k1=0.0, l=[100])", "l", "[100]"),
    ("SINEXP(k0=0.01, k1=0.06, gamma=1.01, l=2000)", "gamma", "1.01"),
    ("FIX(k0=0.1)[10] >> TRI(k0=0.01, k1=0.06, l=-3)", "l", "-3"),
])
def test_bad_value_names_the_parameter_and_value(text, param, value):
    with pytest.raises(ValueError) as info:
        parse(text)
    msg = str(info.value)
    assert f"{param} " in msg or f"{param}[" in msg
    assert value in msg


SYNTAX_ERRORS = [
    "", "   ", "\n", "FIX", "FIX(", "FIX(k0=0.1", "FIX(k0=0.1))", "FIX k0=0.1", "FIX(k0=)",
    "FIX(=0.1)", "FIX(k0==0.1)", "FIX(k0=0.1 0.2)", "FIX(k0=0.1,)", "FIX(,k0=0.1)",
    "FIX(k0=0.1,,)", "FIX(k0=0.1) FIX(k0=0.2)", "FIX(k0=0.1)>>", ">> FIX(k0=0.1)",
    "FIX(k0=0.1)[10]", "FIX(k0=0.1) >> FIX(k0=0.2)", "FIX(k0=0.1)[10] >> FIX(k0=0.2)[20]",
    "FIX(k0=0.1)[0] >> FIX(k0=0.2)", "FIX(k0=0.1)[-5] >> FIX(k0=0.2)",
    "FIX(k0=0.1)[2.5] >> FIX(k0=0.2)", "FIX(k0=0.1)[] >> FIX(k0=0.2)",
    "FIX(k0=0.1)[ten] >> FIX(k0=0.2)", "FIX(k0=0.1)[10 >> FIX(k0=0.2)",
    "FIX(k0=0.1)[10][20] >> FIX(k0=0.2)", "FIX(k0=0.1) > FIX(k0=0.2)",
    "FIX(k0=0.1) >>> FIX(k0=0.2)", "(FIX(k0=0.1)[10] >> FIX(k0=0.2)",
    "FIX(k0=0.1)[10] >> FIX(k0=0.2))", "()", "FIX(k0=0.1); DROP TABLE runs",
    "FIX(k0=0.1, k0=0.2)", "FIX(k0=0.1, K0=0.2)", "STEP(k0=0.1, 0.5, 10)",
    "EXP(0.1, 0.5, 0.01)", "FIX(0.1, 0.2)", "NSTEP(k0=0.1, gamma=0.1, l=[])",
    "NSTEP(k0=0.1, gamma=0.1, l=[5000, ])", "NSTEP(k0=0.1, gamma=0.1, l=[5000 7000])",
    "NSTEP(k0=0.1, gamma=0.1, l=[[5000]])", "FIX(k0=[0.1])", "FIX(k0='0.1')", 'FIX(k0="0.1")',
    "FIX(k0=true)", "FIX(k0=0x10)", "FIX(k0=1e)", "FIX(k0=-inf)", "FIX(k0=0.1)#",
    "FIX(k0=0.1)\x00", "FIX(k0=1_000)", "12", "k0=0.1", "FIX[10](k0=0.1)",
    "COMPOSITE(k0=0.1)",
]


@pytest.mark.parametrize("text", SYNTAX_ERRORS, ids=repr)
def test_syntax_errors_raise_value_error(text):
    with pytest.raises(ValueError) as info:
        parse(text)
    assert "parse" in str(info.value)  # says that the notation could not be read ...
    assert repr(text) in str(info.value)  # ... which text ...
    assert "column" in str(info.value)  # ... and where


@pytest.mark.parametrize("text,column", [
    ("FIX(k0=0.1", 11),  # the end
    ("FIX(k0=0.1))", 12),
    ("FOO(k0=0.1)", 1),
    ("FIX(k9=0.1)", 5),
    ("FIX(k0=0.1)[0] >> FIX(k0=0.2)", 13),
    ("FIX(k0=0.1) >> FIX(k0=0.2)", 13),
])
def test_error_column(text, column):
    with pytest.raises(ValueError, match=rf"column {column}\)"):
        parse(text)


@pytest.mark.parametrize("text", [None, 12, 0.1, b"FIX(k0=0.1)", ["FIX(k0=0.1)"]])
def test_non_string_input(text):
    with pytest.raises(ValueError):
        parse(text)


def test_lengths_need_a_following_phase_and_the_last_phase_is_open_ended():
    with pytest.raises(ValueError, match="length"):
        parse("FIX(k0=0.1) >> FIX(k0=0.2)")
    with pytest.raises(ValueError, match="open-ended"):
        parse("FIX(k0=0.1)[10] >> FIX(k0=0.2)[10]")
    with pytest.raises(ValueError, match="following phase"):
        parse("FIX(k0=0.1)[10]")


# ---------------------------------------------------------------------------------------------
# The documentation's examples run (the same as pytest --doctest-modules src/lrbench/policies)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", [
    "lrbench.policies", "lrbench.policies.base", "lrbench.policies.ops",
    "lrbench.policies.functions", "lrbench.policies.composite", "lrbench.policies.notation",
])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
