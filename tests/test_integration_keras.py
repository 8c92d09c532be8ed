"""Keras 3 integration: ``lrbench.integrations.keras`` (KerasOps, evaluate, PolicySchedule).

Runs on the torch back-end: KERAS_BACKEND is set here, before keras is first imported
(``lrbench.integrations.keras`` itself never picks a back-end; a subprocess test checks that).

Convention checked here (TESTING.md item 8): a Keras optimizer calls its schedule with
``optimizer.iterations``, the number of updates already applied (incremented after each
update), so batch t of ``model.fit`` (counted from 0 over all epochs) is trained with
``policy(t)``. ``optimizer.learning_rate`` read in ``on_train_batch_begin`` is that LR; read in
``on_train_batch_end`` it is already ``policy(t + 1)``. The schedule computes in float32, so values
are compared with the float64 ``policy.values`` to an absolute 1e-5 of the policy's highest LR.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # must precede the first `import keras`
keras = pytest.importorskip("keras")
pytest.importorskip("torch")
from keras import ops  # noqa: E402

from lrbench.integrations.keras import KERAS, KerasOps, PolicySchedule, evaluate  # noqa: E402
from lrbench.policies import (  # noqa: E402
    FIX,
    FUNCTIONS,
    LIN,
    NSTEP,
    POLY,
    SIN2,
    SINEXP,
    STEP,
    Composite,
    parse,
)

from policy_examples import FUNCTION_POLICIES  # noqa: E402

VARIANTS = [
    STEP(k0=0.1, gamma=0.99994, l=1, k1=0.001),
    NSTEP(k0=0.1, gamma=0.1, l=[3000, 7000], k1=0.0005),
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
BIG = np.array([10**6, 10**6 + 1, 10**7, 10**7 + 1, 2**24 + 1, 2**31 - 1, 2**40 + 3])


def test_the_policy_list_covers_every_function_and_composites():
    assert {p.name for p in FUNCTION_POLICIES} == set(FUNCTIONS) and len(FUNCTIONS) == 14
    assert isinstance(COMPOSITE, Composite) and isinstance(NESTED, Composite)
    assert any(isinstance(ph.policy, Composite) for ph in NESTED.phases)


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


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
        "bad = [m for m in ('keras', 'torch', 'jax', 'optax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_module_leaves_the_keras_backend_to_the_user():
    """With KERAS_BACKEND=jax the schedule runs on jax (and computes the same LRs)."""
    pytest.importorskip("jax")
    code = (
        "import numpy as np\n"
        "from lrbench.integrations.keras import PolicySchedule\n"
        "import keras\n"
        "assert keras.backend.backend() == 'jax', keras.backend.backend()\n"
        "from lrbench.policies import parse\n"
        f"p = parse({str(NESTED)!r})\n"
        "ts = np.arange(0, 10000, 7)\n"
        "got = np.asarray(keras.ops.convert_to_numpy(PolicySchedule(p)(ts)), dtype=float)\n"
        "assert np.abs(got - p.values(ts)).max() <= 1e-5 * p.bounds[1]\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env)


def test_missing_keras_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # makes `import keras` raise ImportError
    monkeypatch.delitem(sys.modules, "lrbench.integrations.keras")
    with pytest.raises(ImportError, match=r"pip install lrbench\[keras\]"):
        import lrbench.integrations.keras  # noqa: F401


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_kerasops_on_float64_tensors_equals_policy_values(policy):
    """The bare back-end computes in the tensor's dtype: float64 in, policy.values out."""
    assert isinstance(KERAS, KerasOps)
    got = numpy(policy.evaluate(ops.convert_to_tensor(STEPS.astype(np.float64)), KERAS))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, policy.values(STEPS), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_schedule_on_int_steps_equals_policy_values_over_10k_steps(policy):
    steps = ops.convert_to_tensor(STEPS, dtype="int64")  # the optimizer's iterations dtype
    lrs = PolicySchedule(policy)(steps)
    assert keras.backend.standardize_dtype(lrs.dtype) == "float32"
    assert_lr_close(numpy(lrs), policy, STEPS)


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_large_steps_are_finite_non_negative_and_accurate(policy):
    lrs = numpy(PolicySchedule(policy)(ops.convert_to_tensor(BIG, dtype="int64")))
    assert np.isfinite(lrs).all() and (lrs >= 0).all()
    assert_lr_close(lrs, policy, BIG)


def test_float_steps_and_python_ints_work_too():
    policy = NESTED
    for t in (0, 99, 100, 1099, 1100, 5099, 5100, 7099, 7100):
        for step in (t, float(t), ops.convert_to_tensor(t, dtype="int32"), np.float32(t)):
            got = float(numpy(evaluate(policy, step)))
            assert abs(got - policy(t)) <= 1e-5 * policy.bounds[1], (t, step, got)


def test_optimizer_learning_rate_follows_its_iterations():
    """What Keras itself reads: optimizer.learning_rate == schedule(optimizer.iterations)."""
    policy = SIN2(k0=0.01, k1=0.06, l=2000)
    optimizer = keras.optimizers.SGD(learning_rate=PolicySchedule(policy))
    for t in (0, 1, 1999, 2000, 2001, 4000, 6000, 10**6):
        optimizer.iterations.assign(t)
        assert float(numpy(optimizer.learning_rate)) == pytest.approx(policy(t), rel=1e-6, abs=1e-9)


def test_float64_floatx_computes_in_float64():
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        policy = SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)
        lrs = PolicySchedule(policy)(ops.convert_to_tensor(STEPS, dtype="int64"))
        assert keras.backend.standardize_dtype(lrs.dtype) == "float64"
        np.testing.assert_allclose(numpy(lrs), policy.values(STEPS), rtol=1e-12, atol=1e-15)
    finally:
        keras.config.set_floatx(old)


def test_evaluate_keeps_the_shape_of_the_steps():
    steps = np.arange(12).reshape(3, 4)
    for policy in (FIX(k0=0.1), NSTEP(k0=0.1, gamma=0.1, l=[2, 5]), COMPOSITE):
        out = numpy(evaluate(policy, steps))
        assert out.shape == (3, 4)
        assert_lr_close(out.reshape(-1), policy, np.arange(12))


# ---------------------------------------------------------------------------------------------
# API and serialization
# ---------------------------------------------------------------------------------------------
def test_schedule_accepts_notation_or_policy():
    text = "FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)"
    assert PolicySchedule(text).policy == parse(text)
    assert PolicySchedule(parse(text)) == PolicySchedule(text)
    assert hash(PolicySchedule(parse(text))) == hash(PolicySchedule(text))
    assert PolicySchedule(text) != PolicySchedule("FIX(k0=0.1)")
    assert repr(PolicySchedule("FIX(k0=0.1)")) == "PolicySchedule('FIX(k0=0.1)')"
    assert isinstance(PolicySchedule(text), keras.optimizers.schedules.LearningRateSchedule)


@pytest.mark.parametrize("bad", [None, 0.1, ["FIX(k0=0.1)"]])
def test_schedule_rejects_non_policies(bad):
    with pytest.raises(TypeError, match="Policy or policy notation"):
        PolicySchedule(bad)


def test_schedule_rejects_bad_notation_with_the_parser_error():
    with pytest.raises(ValueError, match="k0"):
        PolicySchedule("FIX(k0=-1)")


def test_evaluate_rejects_non_numeric_steps():
    with pytest.raises(TypeError, match="integers or floats"):
        evaluate(FIX(k0=0.1), np.array([True, False]))


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_get_config_from_config_round_trip(policy):
    schedule = PolicySchedule(policy)
    config = schedule.get_config()
    assert config == {"policy": str(policy)}
    assert json.loads(json.dumps(config)) == config
    again = PolicySchedule.from_config(config)
    assert type(again) is PolicySchedule and again.policy == policy
    # through Keras' own (de)serialization, by registered name
    data = keras.optimizers.schedules.serialize(schedule)
    assert data["registered_name"] == "lrbench>PolicySchedule"
    restored = keras.optimizers.schedules.deserialize(json.loads(json.dumps(data)))
    assert type(restored) is PolicySchedule and restored.policy == policy


def test_registered_with_keras_under_the_lrbench_package():
    assert keras.saving.get_registered_name(PolicySchedule) == "lrbench>PolicySchedule"
    assert keras.saving.get_registered_object("lrbench>PolicySchedule") is PolicySchedule


def test_optimizer_config_round_trip_keeps_the_schedule():
    optimizer = keras.optimizers.SGD(learning_rate=PolicySchedule(NESTED), momentum=0.9)
    clone = keras.optimizers.SGD.from_config(json.loads(json.dumps(optimizer.get_config())))
    clone.iterations.assign(5100)
    assert float(numpy(clone.learning_rate)) == pytest.approx(NESTED(5100), rel=1e-6)
    assert clone.get_config()["learning_rate"]["config"] == {"policy": str(NESTED)}


# ---------------------------------------------------------------------------------------------
# model.fit on the torch back-end, save and load
# ---------------------------------------------------------------------------------------------
# LR changes every step (warm-up, then cosine), so an off-by-one shows.
FIT_POLICY = parse("LIN(k0=0.01, k1=0.1, l=5)[5] >> COS(k0=0.1, k1=0.001, l=10)")
BATCHES = 10  # per epoch


def mean_output(y_true, y_pred):
    """A loss whose gradient with respect to the kernel of Dense(1) on x = 1 is exactly 1, so
    plain SGD moves the kernel by exactly -lr each step."""
    return ops.mean(y_pred)


class Recorder(keras.callbacks.Callback):
    """Per batch: optimizer.iterations and learning_rate before and after, and the kernel."""

    def __init__(self):
        super().__init__()
        self.begin, self.end = [], []

    def _state(self):
        opt = self.model.optimizer
        return (
            int(numpy(opt.iterations)),
            float(numpy(opt.learning_rate)),
            float(numpy(self.model.layers[0].kernel)[0, 0]),
        )

    def on_train_batch_begin(self, batch, logs=None):
        self.begin.append(self._state())

    def on_train_batch_end(self, batch, logs=None):
        self.end.append(self._state())


def _data():
    return np.ones((4 * BATCHES, 1), np.float32), np.zeros((4 * BATCHES, 1), np.float32)


def _check_steps(recorder, first_step, n):
    steps = np.arange(first_step, first_step + n)
    it_b, lr_b, w_b = map(np.array, zip(*recorder.begin))
    it_e, lr_e, w_e = map(np.array, zip(*recorder.end))
    # one optimizer update per batch, counting on across epochs
    np.testing.assert_array_equal(it_b, steps)
    np.testing.assert_array_equal(it_e, steps + 1)
    # the LR Keras reports before batch t is policy(t); after it, already policy(t + 1)
    assert_lr_close(lr_b, FIT_POLICY, steps, rel=1e-6)
    assert_lr_close(lr_e, FIT_POLICY, steps + 1, rel=1e-6)
    # and batch t really moved the kernel by policy(t) (gradient 1, plain SGD)
    np.testing.assert_allclose(w_b - w_e, FIT_POLICY.values(steps), rtol=0, atol=2e-6)


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    optimizer = keras.optimizers.SGD(learning_rate=PolicySchedule(FIT_POLICY))
    model.compile(optimizer=optimizer, loss=mean_output)
    recorder = Recorder()
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[recorder])
    return model, recorder


def test_fit_uses_policy_t_for_batch_t(trained):
    model, recorder = trained
    assert keras.backend.backend() == "torch"
    _check_steps(recorder, first_step=0, n=3 * BATCHES)


def test_saved_and_loaded_model_keeps_the_schedule_and_resumes_it(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "model.keras"
    model.save(path)

    # the real file format: the optimizer config names the schedule and the policy notation
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    lr_config = config["compile_config"]["optimizer"]["config"]["learning_rate"]
    assert lr_config["registered_name"] == "lrbench>PolicySchedule"
    assert lr_config["config"] == {"policy": str(FIT_POLICY)}

    loaded = keras.models.load_model(path, custom_objects={"mean_output": mean_output})
    schedule = loaded.optimizer._learning_rate  # Keras keeps the schedule object here
    assert type(schedule) is PolicySchedule and schedule.policy == FIT_POLICY
    assert int(numpy(loaded.optimizer.iterations)) == 3 * BATCHES
    lr = float(numpy(loaded.optimizer.learning_rate))
    assert lr == pytest.approx(FIT_POLICY(3 * BATCHES), rel=1e-6)

    # training on continues the policy at step 30, not 0
    recorder = Recorder()
    x, y = _data()
    loaded.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    _check_steps(recorder, first_step=3 * BATCHES, n=BATCHES)


def test_gradient_accumulation_counts_micro_batches():
    """With gradient_accumulation_steps=n Keras calls the schedule with its count of micro-batches
    (while ``optimizer.iterations`` shows updates, micro-batches // n), as the module docstring
    says: the k-th real update (from 0) happens at batch (k + 1) * n - 1 and uses
    policy((k + 1) * n - 1)."""
    n = 2
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    optimizer = keras.optimizers.SGD(
        learning_rate=PolicySchedule(FIT_POLICY), gradient_accumulation_steps=n
    )
    model.compile(optimizer=optimizer, loss=mean_output)
    recorder = Recorder()
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    steps = np.arange(BATCHES)
    it_b, _, w_b = map(np.array, zip(*recorder.begin))
    _, _, w_e = map(np.array, zip(*recorder.end))
    np.testing.assert_array_equal(it_b, steps // n)
    applied = np.where(steps % n == n - 1, FIT_POLICY.values(steps), 0.0)
    np.testing.assert_allclose(w_b - w_e, applied, rtol=0, atol=2e-6)
