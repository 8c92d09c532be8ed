"""JAX/optax integration: ``lrbench.integrations.jax`` (JaxOps, evaluate, to_optax).

Conventions checked here (TESTING.md item 8): optax calls a schedule with ``count``, the number
of updates already made (``optax.scale_by_schedule``/``inject_hyperparams`` read ``state.count``
before incrementing it), so the first update uses ``schedule(0) == policy(0)``, the k-th (from
0) ``policy(k)``. The schedule computes in float32 (jax's default without x64), so values are
compared with ``policy.values`` (float64) to an absolute 1e-5 of the policy's highest LR.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402

from lrbench.integrations.jax import JAX, JaxOps, evaluate, to_optax  # noqa: E402
from lrbench.policies import (  # noqa: E402
    COS,
    EXP,
    FIX,
    FUNCTIONS,
    LIN,
    NSTEP,
    POLY,
    SIN2,
    SINEXP,
    STEP,
    TRI,
    Composite,
    parse,
)

from policy_examples import FUNCTION_POLICIES  # noqa: E402

# Variants that take other code paths: decaying floors, gamma ** t with t = t // l, falling LIN.
VARIANTS = [
    STEP(k0=0.1, gamma=0.99994, l=1, k1=0.001),
    NSTEP(k0=0.1, gamma=0.1, l=[3000, 7000], k1=0.0005),
    EXP(k0=0.1, gamma=0.99994, k1=0.01),
    POLY(k0=0.1, p=0.5, l=6000, k1=0.01),
    LIN(k0=0.1, k1=0.0, l=3000),
    SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000),
]
COMPOSITE = parse(
    "LIN(k0=0.0, k1=0.1, l=100)[100] >> FIX(k0=0.1)[1400]"
    " >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)"
)
NESTED = parse(
    "LIN(k0=0.0, k1=0.1, l=100)[100] >> (FIX(k0=0.1)[1000] >> EXP(k0=0.1, gamma=0.9995))[5000]"
    " >> (COS(k0=0.05, k1=0.001, l=500)[2000] >> STEP(k0=0.01, gamma=0.5, l=300))"
)
POLICIES = FUNCTION_POLICIES + VARIANTS + [COMPOSITE, NESTED]
IDS = [str(p) for p in POLICIES]

STEPS = np.arange(10_000)
BIG = np.array([10**6, 10**6 + 1, 10**7, 10**7 + 1, 2**24 + 1, 2**31 - 2, 2**31 - 1])


def test_the_policy_list_covers_every_function_and_composites():
    assert {p.name for p in FUNCTION_POLICIES} == set(FUNCTIONS) and len(FUNCTIONS) == 14
    assert isinstance(COMPOSITE, Composite) and isinstance(NESTED, Composite)
    assert any(isinstance(ph.policy, Composite) for ph in NESTED.phases)


def assert_lr_close(got, policy, ts, rel=1e-5):
    """float32 tolerance: |got - policy.values(ts)| <= rel * the policy's highest LR."""
    got = np.asarray(got, dtype=np.float64)
    want = policy.values(ts)
    assert got.shape == want.shape
    assert np.isfinite(got).all()
    err = np.abs(got - want)
    worst = int(np.argmax(err))
    assert err[worst] <= rel * policy.bounds[1], (
        f"{policy}: t={np.asarray(ts).flat[worst]} got {got.flat[worst]!r},"
        f" want {want.flat[worst]!r} (error {err[worst] / policy.bounds[1]:.2e} of the max LR)"
    )


# ---------------------------------------------------------------------------------------------
# Import hygiene
# ---------------------------------------------------------------------------------------------
def test_import_lrbench_loads_no_framework():
    code = (
        "import sys, lrbench, lrbench.integrations, lrbench.policies\n"
        "bad = [m for m in ('jax', 'optax', 'keras', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_jax_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # makes `import jax` raise ImportError
    monkeypatch.delitem(sys.modules, "lrbench.integrations.jax")
    with pytest.raises(ImportError, match=r"pip install lrbench\[jax\]"):
        import lrbench.integrations.jax  # noqa: F401


# ---------------------------------------------------------------------------------------------
# Values: jit-compiled optax schedule == policy.values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_jitted_schedule_equals_policy_values_over_10k_steps(policy):
    schedule = jax.jit(to_optax(policy))
    lrs = schedule(jnp.asarray(STEPS, dtype=jnp.int32))  # optax's count dtype
    assert lrs.dtype == jnp.float32
    assert_lr_close(lrs, policy, STEPS)


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_large_counts_are_finite_non_negative_and_accurate(policy):
    lrs = np.asarray(jax.jit(to_optax(policy))(jnp.asarray(BIG, dtype=jnp.int32)))
    assert np.isfinite(lrs).all() and (lrs >= 0).all()
    assert_lr_close(lrs, policy, BIG)


def test_scalar_counts_eager_and_jitted_agree_with_policy_call():
    """optax passes a scalar int32 count; also plain Python ints and float counts."""
    cases = [
        (SIN2(k0=0.01, k1=0.06, l=2000), [0, 1, 1999, 2000, 2001, 3999, 4000, 4001, 8000]),
        (NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000]), [0, 4999, 5000, 5001, 6999, 7000, 10**7]),
        (COMPOSITE, [0, 99, 100, 101, 1499, 1500, 1501, 3500, 5500]),
        (NESTED, [99, 100, 1099, 1100, 5099, 5100, 7099, 7100, 7400]),
    ]
    for policy, ts in cases:
        schedule = to_optax(policy)
        jitted = jax.jit(schedule)
        for t in ts:
            want = policy(t)
            tol = 1e-5 * policy.bounds[1]
            paths = (schedule(t), jitted(jnp.int32(t)), schedule(jnp.float32(t)), jitted(float(t)))
            for got in paths:
                assert jnp.shape(got) == ()
                assert abs(float(got) - want) <= tol, (policy, t, float(got), want)


def test_integer_counts_keep_cycles_exact_beyond_float32_integers():
    """Past 2**24 float32 cannot hold every count; the int32 count keeps t % 2l exact."""
    policy = TRI(k0=1.0, k1=0.0, l=3)  # period 6: the value pins t mod 6 down
    ts = np.arange(2**31 - 12, 2**31)  # optax's int32 count tops out at 2**31 - 1
    assert_lr_close(jax.jit(to_optax(policy))(jnp.asarray(ts, jnp.int32)), policy, ts, rel=1e-6)


def test_gamma_close_to_one_is_not_rounded_to_float32():
    """0.99994 is 0.99993998 in float32; gamma ** t with that gamma errs by ~1e-4 around
    t = 1 / (1 - gamma)."""
    policy = EXP(k0=1.0, gamma=0.99994)
    ts = np.arange(0, 60_000, 7)
    assert_lr_close(evaluate(policy, ts), policy, ts, rel=1e-6)
    # what the naive float32 evaluation would give, to show the test can tell the difference
    naive = np.float32(0.99994) ** ts.astype(np.float32)
    assert np.abs(naive - policy.values(ts)).max() > 1e-5


def test_x64_mode_computes_in_float64():
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:
        pytest.skip("this jax has no jax.enable_x64 context manager")
    with enable_x64(True):
        for policy in (SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000), NESTED):
            lrs = jax.jit(to_optax(policy))(jnp.asarray(STEPS))
            assert lrs.dtype == jnp.float64
            np.testing.assert_allclose(
                np.asarray(lrs), policy.values(STEPS), rtol=1e-12, atol=1e-15
            )


def test_evaluate_keeps_the_shape_of_t():
    ts = jnp.arange(12, dtype=jnp.int32).reshape(3, 4)
    for policy in (FIX(k0=0.1), NSTEP(k0=0.1, gamma=0.1, l=[2, 5]), COMPOSITE):
        out = evaluate(policy, ts)
        assert out.shape == (3, 4)
        assert_lr_close(out.reshape(-1), policy, np.arange(12))


def test_jaxops_alone_evaluates_a_formula():
    """The bare back-end on a float array: right values (gamma rounded to float32 here)."""
    assert isinstance(JAX, JaxOps)
    for policy in POLICIES:
        ts = jnp.asarray(STEPS[::37], dtype=jnp.float32)
        got = jax.jit(lambda t: policy.evaluate(t, JAX))(ts)
        assert_lr_close(got, policy, STEPS[::37], rel=3e-4)
    for policy in (NSTEP(k0=0.1, gamma=0.5, l=[3, 6]), COS(k0=1.0, k1=0.0, l=4)):
        ts = np.arange(10)
        np.testing.assert_allclose(
            np.asarray(policy.evaluate(jnp.asarray(ts, jnp.float32), JAX)), policy.values(ts),
            rtol=1e-6, atol=1e-7,
        )


def test_huge_iteration_parameters_do_not_overflow_int32():
    """l, milestones and phase lengths beyond int32 (2**31 - 1) must not break the int32 count
    arithmetic. (Not SIN/COS: their formula divides a float array by the Python int 2l, which jax
    rejects beyond int32 without x64; documented.)"""
    huge = 2**40
    for policy in (
        TRI(k0=0.1, k1=0.0, l=huge),
        LIN(k0=0.1, k1=0.0, l=huge),
        STEP(k0=0.1, gamma=0.5, l=huge),
        NSTEP(k0=0.1, gamma=0.5, l=[1000, huge]),
        POLY(k0=0.1, p=1.0, l=huge),
        Composite([(FIX(k0=0.1), huge), (FIX(k0=0.2), None)]),
        Composite([(FIX(k0=0.2), 10), (FIX(k0=0.1), huge), (FIX(k0=0.3), None)]),
    ):
        ts = np.array([0, 5, 999, 1000, 10**7, 2**31 - 1])
        assert_lr_close(jax.jit(to_optax(policy))(jnp.asarray(ts, jnp.int32)), policy, ts)


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------
def test_to_optax_accepts_notation_and_exposes_the_policy():
    text = "FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)"
    schedule = to_optax(text)
    assert schedule.policy == parse(text)
    assert str(schedule.policy) in schedule.__doc__
    assert float(schedule(15000)) == pytest.approx(0.0001, rel=1e-6)
    assert to_optax(parse(text)).policy == parse(text)


@pytest.mark.parametrize("bad", [None, 0.1, ["FIX(k0=0.1)"]])
def test_to_optax_rejects_non_policies(bad):
    with pytest.raises(TypeError, match="Policy or policy notation"):
        to_optax(bad)


def test_to_optax_rejects_bad_notation_with_the_parser_error():
    with pytest.raises(ValueError, match="k0"):
        to_optax("FIX(k0=-1)")


def test_evaluate_rejects_non_numeric_iterations():
    with pytest.raises(TypeError, match="integers or floats"):
        evaluate(FIX(k0=0.1), jnp.array([True, False]))


# ---------------------------------------------------------------------------------------------
# Real optax training: the applied LR of update k is policy(k)
# ---------------------------------------------------------------------------------------------
def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + 0.3
    return jnp.asarray(x), jnp.asarray(y)


def _loss(params, x, y):
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


POLICY_FOR_TRAINING = parse("LIN(k0=0.001, k1=0.05, l=10)[10] >> EXP(k0=0.05, gamma=0.9)")


def test_sgd_training_applies_policy_k_at_update_k():
    """optax.inject_hyperparams(optax.sgd) records the LR each update used; the update itself
    is -lr * grad, and lr of update k (from 0) is policy(k), not policy(k + 1)."""
    x, y = _regression_data()
    policy = POLICY_FOR_TRAINING
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=to_optax(policy))
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(_loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, grads, updates, loss

    n = 40
    losses = []
    for k in range(n):
        params, state, grads, updates, loss = step(params, state)
        losses.append(float(loss))
        lr = float(state.hyperparams["learning_rate"])
        assert lr == pytest.approx(policy(k), rel=1e-6), (k, lr, policy(k))
        for name in ("w", "b"):
            np.testing.assert_allclose(
                np.asarray(updates[name]), -policy(k) * np.asarray(grads[name]),
                rtol=1e-5, atol=1e-9,
            )
    assert int(state.count) == n
    assert losses[-1] < 0.1 * losses[0]  # it really trains


def test_plain_optax_sgd_step_sizes_follow_the_policy_from_count_0():
    """optax.sgd(learning_rate=schedule) under jit and lax.scan: with grad = 1 every update is
    exactly -lr, so the sequence of updates is -policy(0), -policy(1), ..."""
    policy = NESTED
    opt = optax.sgd(learning_rate=to_optax(policy))
    n = 7200  # through every phase of the nested composite
    params = jnp.zeros(())

    def body(state, _):
        updates, state = opt.update(jnp.ones(()), state, params)
        return state, updates

    _, updates = jax.jit(lambda s: jax.lax.scan(body, s, None, length=n))(opt.init(params))
    assert_lr_close(-np.asarray(updates), policy, np.arange(n))
