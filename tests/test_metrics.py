"""Metrics (SPEC section 3): hand-computed cases, logits vs probabilities, torch input, errors,
top-5 against a naive implementation, the curve and seed helpers."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from lrbench.metrics import (
    Accumulator,
    EvalMetrics,
    aggregate,
    best_iteration,
    evaluate_outputs,
    loss_difference,
    mean_std,
    top_k,
)

# Six samples, three classes. Correct: a (p=0.8), b (0.6), c (0.9). Wrong: d, e, f.
# Class 2 is never classified correctly (sample e), so it is left out of CDAC.
PROBS = np.array(
    [
        [0.80, 0.10, 0.10],  # a  y=0  correct
        [0.60, 0.30, 0.10],  # b  y=0  correct
        [0.05, 0.90, 0.05],  # c  y=1  correct
        [0.50, 0.40, 0.10],  # d  y=1  wrong (predicts 0)
        [0.30, 0.50, 0.20],  # e  y=2  wrong (predicts 1)
        [0.10, 0.10, 0.80],  # f  y=0  wrong (predicts 2)
    ]
)
LABELS = np.array([0, 0, 1, 1, 2, 0])

# By hand:
#   top-1 = 3/6;  top-5 = k = min(5, 3) = 3 classes, so every sample: 1.
#   AC    = (0.8 + 0.6 + 0.9) / 3 = 2.3 / 3
#   CD    = sqrt(((0.8 - 2.3/3)^2 + (0.6 - 2.3/3)^2 + (0.9 - 2.3/3)^2) / 3)
#         = sqrt((1/900 + 25/900 + 16/900) / 3) = sqrt(42 / 2700)
#   AC_0  = (0.8 + 0.6) / 2 = 0.7,  AC_1 = 0.9,  class 2 left out
#   CDAC  = population std of {0.7, 0.9} = 0.1   (0.4 would mean class 2 was counted as 0)
#   loss  = -(ln 0.8 + ln 0.6 + ln 0.9 + ln 0.4 + ln 0.2 + ln 0.1) / 6
EXPECTED = dict(
    top1=0.5,
    top5=1.0,
    ac=2.3 / 3,
    cd=math.sqrt(42 / 2700),
    cdac=0.1,
    loss=-(math.log(0.8) + math.log(0.6) + math.log(0.9) + math.log(0.4) + math.log(0.2)
           + math.log(0.1)) / 6,
)


def assert_metrics(m: EvalMetrics, expected: dict, rel: float = 1e-9) -> None:
    got = m.to_dict()
    assert set(got) == {"top1", "top5", "ac", "cd", "cdac", "loss"}
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=rel, abs=1e-12), k


def test_hand_computed_probabilities():
    assert_metrics(evaluate_outputs(PROBS, LABELS, from_logits=False), EXPECTED)


def test_cdac_leaves_out_a_class_never_correct():
    m = evaluate_outputs(PROBS, LABELS, from_logits=False)
    assert m.cdac == pytest.approx(0.1)
    # counting class 2 as AC_2 = 0 would give the std of {0.7, 0.9, 0}
    assert m.cdac != pytest.approx(float(np.std([0.7, 0.9, 0.0])))


def test_logits_give_the_same_metrics_as_probabilities():
    # log-probabilities shifted by an arbitrary constant per row are valid logits of PROBS
    shift = np.array([[3.0], [-7.0], [0.5], [100.0], [-40.0], [2.0]])
    logits = np.log(PROBS) + shift
    assert_metrics(evaluate_outputs(logits, LABELS), EXPECTED, rel=1e-9)
    assert_metrics(evaluate_outputs(logits, LABELS, from_logits=True), EXPECTED, rel=1e-9)


def test_top5_by_hand_with_seven_classes():
    down = [7, 6, 5, 4, 3, 2, 1]
    up = [1, 2, 3, 4, 5, 6, 7]
    scores = np.array([down, down, up, up], dtype=float)
    labels = np.array([4, 5, 6, 1])  # ranks 4 (in), 5 (out), 0 (top-1), 5 (out)
    m = evaluate_outputs(scores, labels)
    assert m.top1 == 0.25
    assert m.top5 == 0.5
    assert top_k(scores, labels, 1) == 0.25
    assert top_k(scores, labels, 5) == 0.5
    assert top_k(scores, labels, 6) == 1.0
    assert top_k(scores, labels, 100) == 1.0


def test_ties_break_towards_the_lower_class_like_argmax():
    uniform = np.zeros((3, 7))
    labels = np.array([0, 4, 5])  # tie order 0, 1, ..., 6: ranks 0, 4, 5
    m = evaluate_outputs(uniform, labels)
    assert m.top1 == pytest.approx(1 / 3)  # only label 0 is the argmax
    assert m.top5 == pytest.approx(2 / 3)
    assert m.ac == pytest.approx(1 / 7)
    assert m.cd == 0.0


def test_nothing_correct_gives_nan_confidences():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    m = evaluate_outputs(probs, [1, 0], from_logits=False)
    assert m.top1 == 0.0
    assert math.isnan(m.ac) and math.isnan(m.cd) and math.isnan(m.cdac)
    assert m.loss == pytest.approx(-(math.log(0.1) + math.log(0.2)) / 2)


def test_single_correct_sample_has_zero_deviation():
    m = evaluate_outputs(np.array([[0.7, 0.3], [0.6, 0.4]]), [0, 1], from_logits=False)
    assert (m.top1, m.ac, m.cd, m.cdac) == (0.5, 0.7, 0.0, 0.0)


def test_two_classes_have_top5_equal_to_all():
    m = evaluate_outputs(np.array([[2.0, 1.0], [0.0, 3.0]]), [1, 0])
    assert m.top1 == 0.0 and m.top5 == 1.0


def test_extreme_logits_are_stable():
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0], [-np.inf, 5.0]])
    m = evaluate_outputs(logits, [1, 0, 1])
    # sample 0: -log softmax = 1000; sample 1: ~0 (log1p(e^-1000)); sample 2: class 0 ruled out
    assert m.loss == pytest.approx(1000 / 3)
    assert m.top1 == pytest.approx(2 / 3)
    assert m.ac == pytest.approx(1.0)


def test_zero_probability_for_the_true_class_costs_a_finite_loss():
    m = evaluate_outputs(np.array([[1.0, 0.0]]), [1], from_logits=False)
    assert m.loss == pytest.approx(-math.log(np.finfo(np.float64).eps))


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    logits = torch.tensor(np.log(PROBS), dtype=torch.float32, requires_grad=True)
    labels = torch.tensor(LABELS)
    assert_metrics(evaluate_outputs(logits * 1.0, labels), EXPECTED, rel=1e-5)
    half = evaluate_outputs(torch.tensor(np.log(PROBS)).to(torch.bfloat16), labels)
    assert half.top1 == 0.5
    probs = torch.tensor(PROBS, dtype=torch.float64)
    assert_metrics(evaluate_outputs(probs, labels, from_logits=False), EXPECTED)


def test_duck_typed_tensor_without_torch():
    class FakeTensor:
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    m = evaluate_outputs(FakeTensor(PROBS), FakeTensor(LABELS), from_logits=False)
    assert_metrics(m, EXPECTED)


def test_metrics_module_does_not_import_torch():
    code = "import sys, lrbench.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "outputs, labels, message",
    [
        (np.zeros((0, 3)), np.zeros(0, dtype=int), "empty"),
        (np.zeros((3, 3)), np.array([0, 1]), "3 rows of outputs but 2 labels"),
        (np.zeros(3), np.array([0, 1, 2]), "2-D"),
        (np.zeros((2, 3)), np.array([[0], [1]]), "1-D"),
        (np.zeros((2, 3)), np.array([0, 3]), "label 3 at index 1 is not in \\[0, 3\\)"),
        (np.zeros((2, 3)), np.array([-1, 0]), "labels out of range"),
        (np.zeros((2, 3)), np.array([0.5, 1.0]), "integer"),
        (np.array([[0.0, np.nan, 1.0], [0, 0, 0]]), np.array([0, 1]), "NaN in 1 of 2 rows"),
        (np.array([[0.0, np.inf, 1.0], [0, 0, 0]]), np.array([0, 1]), "\\+inf"),
        (np.array([[-np.inf, -np.inf], [0, 0]]), np.array([0, 1]), "all -inf"),
        (np.array([["a", "b"]]), np.array([0]), "real numbers"),
    ],
)
def test_bad_inputs_raise_value_error(outputs, labels, message):
    with pytest.raises(ValueError, match=message):
        evaluate_outputs(outputs, labels)


@pytest.mark.parametrize(
    "probs, message",
    [
        ([[0.5, 0.6], [0.5, 0.5]], "row 0 sums to 1.1"),
        ([[1.5, -0.5]], "\\[0, 1\\]"),
        ([[0.2, 0.2]], "sums to 0.4"),
    ],
)
def test_probabilities_must_be_probabilities(probs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_outputs(np.array(probs), [0] * len(probs), from_logits=False)


@pytest.mark.parametrize("n_classes", [3, 5, 6, 20, 100])
def test_top5_agrees_with_a_naive_implementation(n_classes):
    rng = np.random.default_rng(n_classes)
    n = 400
    scores = rng.normal(size=(n, n_classes))
    # some exact ties too, as rounded outputs give
    scores[: n // 4] = np.round(scores[: n // 4])
    labels = rng.integers(0, n_classes, size=n)
    k = min(5, n_classes)
    hits = 0
    for row, y in zip(scores, labels):
        order = sorted(range(n_classes), key=lambda c: (-row[c], c))
        hits += y in order[:k]
    m = evaluate_outputs(scores, labels)
    assert m.top5 == pytest.approx(hits / n)
    naive_top1 = np.mean([np.argmax(r) == y for r, y in zip(scores, labels)])
    assert m.top1 == pytest.approx(naive_top1)
    assert m.top5 >= m.top1


def test_ac_cd_cdac_agree_with_a_naive_loop():
    rng = np.random.default_rng(7)
    logits = rng.normal(scale=3.0, size=(300, 10))
    labels = rng.integers(0, 10, size=300)
    m = evaluate_outputs(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    conf, per_class = [], {}
    for i in range(300):
        if int(np.argmax(p[i])) == labels[i]:
            conf.append(p[i, labels[i]])
            per_class.setdefault(int(labels[i]), []).append(p[i, labels[i]])
    assert m.ac == pytest.approx(np.mean(conf))
    assert m.cd == pytest.approx(np.std(conf))
    assert m.cdac == pytest.approx(np.std([np.mean(v) for v in per_class.values()]))
    assert m.loss == pytest.approx(-np.mean(np.log(p[np.arange(300), labels])))


def test_accumulator_equals_one_pass():
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=2.0, size=(250, 12))
    labels = rng.integers(0, 12, size=250)
    acc = Accumulator()
    for start, stop in [(0, 1), (1, 64), (64, 200), (200, 250)]:
        acc.update(logits[start:stop], labels[start:stop])
    assert acc.n_samples == 250
    assert acc.compute() == evaluate_outputs(logits, labels)
    acc.reset()
    with pytest.raises(ValueError, match="no batch"):
        acc.compute()
    acc.update(logits[:5], labels[:5])
    with pytest.raises(ValueError, match="4 classes but earlier batches had 12"):
        acc.update(logits[:5, :4], np.zeros(5, dtype=int))


def test_accumulator_from_probabilities():
    acc = Accumulator(from_logits=False)
    acc.update(PROBS[:2], LABELS[:2])
    acc.update(PROBS[2:], LABELS[2:])
    assert_metrics(acc.compute(), EXPECTED)


def test_loss_difference():
    assert loss_difference(0.5, 0.2) == pytest.approx(0.3)
    assert loss_difference(0.2, 0.5) == pytest.approx(-0.3)
    assert math.isnan(loss_difference(float("nan"), 0.5))
    with pytest.raises(ValueError, match="test_loss"):
        loss_difference("x", 0.5)


def test_best_iteration_first_highest_and_nans_ignored():
    assert best_iteration([0, 200, 400, 600], [0.1, 0.9, 0.95, 0.95]) == (400, 0.95)
    assert best_iteration([0, 200, 400], [float("nan"), 0.3, 0.2]) == (200, 0.3)
    assert best_iteration(np.array([100]), np.array([0.5])) == (100, 0.5)
    it, acc = best_iteration([5, 10], [0.2, 0.7])
    assert type(it) is int and type(acc) is float


@pytest.mark.parametrize(
    "iterations, top1s, message",
    [
        ([], [], "empty"),
        ([1, 2], [0.5], "2 iterations but 1 accuracies"),
        ([1, 2], [float("nan"), float("nan")], "NaN"),
    ],
)
def test_best_iteration_errors(iterations, top1s, message):
    with pytest.raises(ValueError, match=message):
        best_iteration(iterations, top1s)


def test_mean_std_population_and_nan_policies():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert std == pytest.approx(math.sqrt(1.25))  # ddof=0: sqrt((2.25+0.25+0.25+2.25)/4)
    assert mean_std([0.3]) == (0.3, 0.0)
    assert mean_std([1.0, float("nan"), 3.0]) == (2.0, 1.0)
    assert mean_std([1.0, None, 3.0]) == (2.0, 1.0)
    assert all(math.isnan(v) for v in mean_std([float("nan")] * 2))
    assert all(math.isnan(v) for v in mean_std([1.0, float("nan")], nan_policy="propagate"))
    with pytest.raises(ValueError, match="1 of 2 values are NaN"):
        mean_std([1.0, float("nan")], nan_policy="raise")
    with pytest.raises(ValueError, match="no values"):
        mean_std([])
    with pytest.raises(ValueError, match="nan_policy"):
        mean_std([1.0], nan_policy="drop")


def test_aggregate_over_seeds():
    runs = [
        {"top1": 0.8, "ac": 0.9},
        {"top1": 0.6, "ac": float("nan")},
        {"top1": 0.7, "ac": 0.7},
    ]
    out = aggregate(runs)
    assert list(out) == ["top1", "ac"]
    assert out["top1"] == pytest.approx((0.7, math.sqrt(0.02 / 3)))
    assert out["ac"] == pytest.approx((0.8, 0.1))
    ms = [evaluate_outputs(PROBS, LABELS, from_logits=False)] * 2
    agg = aggregate(ms)
    assert agg["cdac"] == pytest.approx((0.1, 0.0))
    assert set(agg) == {"top1", "top5", "ac", "cd", "cdac", "loss"}


@pytest.mark.parametrize(
    "runs, message",
    [
        ([], "no runs"),
        ([{"top1": 0.5}, {"top5": 0.5}], "run 1 has different metrics"),
        ([{"top1": 0.5}, {"top1": "high"}], "metric 'top1' of run 1 is not a number"),
    ],
)
def test_aggregate_errors(runs, message):
    with pytest.raises(ValueError, match=message):
        aggregate(runs)
