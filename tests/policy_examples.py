"""Example policies shared by the framework-integration tests (jax, Keras)."""

from lrbench.policies import (
    COS,
    EXP,
    FIX,
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
)

# One policy per function (gammas close to 1 as in the paper: float32 rounds 0.99994 itself),
# cycles short enough for many periods in 10^4 steps, milestones and POLY's end inside it.
FUNCTION_POLICIES = [
    FIX(k0=0.1),
    STEP(k0=0.1, gamma=0.5, l=700),
    NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500]),
    EXP(k0=0.1, gamma=0.9995),
    INV(k0=0.01, gamma=0.0001, p=0.75),
    POLY(k0=0.1, p=2.0, l=8000),
    TRI(k0=0.01, k1=0.06, l=700),
    TRI2(k0=0.01, k1=0.06, l=700),
    TRIEXP(k0=0.01, k1=0.06, gamma=0.99994, l=700),
    SIN(k0=0.01, k1=0.06, l=700),
    SIN2(k0=0.01, k1=0.06, l=700),
    SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000),
    COS(k0=0.1, k1=0.0, l=900),
    LIN(k0=0.0, k1=0.1, l=500),
]
