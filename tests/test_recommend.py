"""``recommend`` and ``lrbench recommend`` (issue #6, item 3): recommendations from past runs.

Every test builds its LR database by hand (``store.record`` of crafted RunResults; nothing is
trained), on SQLite and on the PostgreSQL server named by LRBENCH_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import doctest
import json
import math
import subprocess
import sys

import pytest

from lrbench.cli import main
from lrbench.policies import parse
from lrbench.ranking import summarize
from lrbench.results import CurvePoint
from lrbench.store import Store
from lrbench.store.testing import (
    make_result,
    small_task,
)
from lrbench.tasks import get_task, make_task
from lrbench.tuning import recommend as recommend_module
from lrbench.tuning.recommend import (
    DatasetMeta,
    model_family,
    recommend,
    rescale_policy,
    similarity,
)

from backends import db_url  # noqa: E402, F401  (a fixture)

MNIST = dict(n_classes=10, input_shape=[1, 28, 28], n_train=60000, n_test=10000)
FMNIST = dict(n_classes=10, input_shape=[1, 28, 28], n_train=60000, n_test=10000)
CIFAR100 = dict(n_classes=100, input_shape=[3, 32, 32], n_train=50000, n_test=10000)
TARGET = get_task("mnist-lenet")  # 10,000 iterations, batch 100, momentum


@pytest.fixture
def store(db_url):
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_user_database(monkeypatch, tmp_path):
    monkeypatch.setenv("LRBENCH_DB", f"sqlite:///{tmp_path / 'env-default.sqlite'}")


def curve(top1: float, task, *, diverge: bool = False) -> tuple[CurvePoint, ...]:
    """A short curve whose best top-1 is ``top1`` (at the second evaluation)."""
    r = task.eval_every
    tops = [top1 - 0.05, top1, top1 - 0.01]
    points = [CurvePoint(iteration=(i + 1) * r, lr=0.01, train_loss=0.5, test_loss=0.6,
                         top1=t, top5=min(1.0, t + 0.04), ac=0.8, cd=0.1, cdac=0.05)
              for i, t in enumerate(tops)]
    if diverge:
        points.append(CurvePoint(iteration=4 * r, lr=0.01, train_loss=math.nan,
                                 test_loss=math.nan, top1=math.nan, top5=math.nan,
                                 ac=math.nan, cd=math.nan, cdac=math.nan))
    return tuple(points)


def put(store, task, policy, top1, seeds=(0, 1), status="done", info=None) -> list[int]:
    """Record ``policy`` on ``task`` for each seed (top-1 ``top1`` + seed/1000); the run ids."""
    ids = []
    for seed in seeds:
        c = curve(top1 + seed / 1000, task, diverge=status == "diverged")
        ids.append(store.record(make_result(task, policy, seed, status=status, curve=c),
                                dataset_info=info))
    return ids


# -- similarity ---------------------------------------------------------------------------
def test_similarity_orders_exact_then_same_dataset_model_then_meta_then_unrelated(store):
    other_length = TARGET.replace(max_iters=2000, preset=None)
    other_settings = TARGET.replace(batch_size=64, optimizer="nesterov", preset=None)
    meta_like = make_task(dataset="fashion-mnist", model="cnn3", batch_size=100, max_iters=10000,
                          eval_every=200)
    unrelated = make_task(dataset="cifar100", model="resnet32", batch_size=128,
                          optimizer="adam", momentum=0.9, max_iters=64000, eval_every=1000)
    # Recorded in scrambled order: the order must come from the similarity, not the ids.
    put(store, unrelated, "FIX(k0=0.001)", 0.6, info=CIFAR100)
    put(store, meta_like, "FIX(k0=0.01)", 0.9, info=FMNIST)
    put(store, other_settings, "FIX(k0=0.01)", 0.98, info=MNIST)
    put(store, other_length, "FIX(k0=0.01)", 0.98, info=MNIST)
    put(store, TARGET, "FIX(k0=0.01)", 0.99, info=MNIST)

    rec = recommend(store, TARGET, max_tasks=10)
    got = [s.task.identity() for s in rec.similar_tasks]
    assert got == [t.identity() for t in (TARGET, other_length, other_settings, meta_like,
                                          unrelated)]
    sims = [s.similarity for s in rec.similar_tasks]
    assert sims[0] == 1.0 and sims == sorted(sims, reverse=True) and len(set(sims)) == 5
    assert min(sims[:3]) >= 0.80 > 0.79 >= max(sims[3:])  # same dataset+model always ahead
    assert rec.similar_tasks[0].why == "the same task"
    assert rec.similar_tasks[1].why.startswith("same dataset and model; max_iters 2000")
    assert "10 classes" in rec.similar_tasks[3].why and "1x28x28" in rec.similar_tasks[3].why
    # same meta-features, same family; settings differ in weight decay, init and inputs
    assert rec.similar_tasks[3].parts == {"dataset": 0.5, "model": 0.4,
                                          "settings": pytest.approx(5.5 / 7, abs=1e-6)}
    # max_tasks keeps the most similar ones
    assert [s.task for s in recommend(store, TARGET, max_tasks=2).similar_tasks] == \
        [s.task for s in rec.similar_tasks[:2]]


def test_similarity_formula_by_hand():
    a = get_task("mnist-lenet")
    b = make_task(dataset="cifar10", model="cnn3", batch_size=50, optimizer="momentum",
                  momentum=0.9, weight_decay=0.004, max_iters=5000, eval_every=100)
    am = DatasetMeta("mnist", 10, (1, 28, 28), 60000)
    bm = DatasetMeta("cifar10", 10, (3, 32, 32), 50000)
    d = 0.5 * (1 + 50000 / 60000 + 0 + (28 * 28) / (32 * 32)) / 4
    r = (3 * 1 + 0.5 + 0.5 + 0.5 * (1 + 0.0005 / 0.004 + 0 + 0)) / 7
    got = similarity(a, b, am, bm)
    assert got["dataset"] == pytest.approx(d, abs=1e-6)
    assert got["model"] == 0.4 and got["settings"] == pytest.approx(r, abs=1e-6)
    assert got["similarity"] == pytest.approx(0.45 * d + 0.35 * 0.4 + 0.2 * r, abs=1e-6)
    # unknown meta-features leave D at 0 for another dataset; the same dataset is always 1
    assert similarity(a, b)["dataset"] == 0.0
    assert similarity(a, a.replace(max_iters=20))["dataset"] == 1.0
    assert model_family("digits-cnn") == model_family("lenet") == "small-cnn"
    assert model_family("ResNet20") == model_family("resnet110") == "resnet"


def test_ties_are_broken_deterministically(tmp_path):
    # batch 50 and batch 200 are equally far from the target's 100: k = 0.5 for both
    t50 = TARGET.replace(batch_size=50, preset=None)
    t200 = TARGET.replace(batch_size=200, preset=None)
    orders = []
    for i, order in enumerate(((t50, t200), (t200, t50))):
        with Store.open(f"sqlite:///{tmp_path / f'{i}.sqlite'}") as s:
            for t in order:
                put(s, t, "FIX(k0=0.01)", 0.97, info=MNIST)
            rec = recommend(s, TARGET)
        orders.append([(x.task.batch_size, x.similarity) for x in rec.similar_tasks])
    assert orders[0] == orders[1]
    assert orders[0][0][1] == orders[0][1][1]  # a real tie
    assert [b for b, _ in orders[0]] == [50, 200]  # then by batch size


# -- evidence -------------------------------------------------------------------------------
def test_evidence_names_the_stored_runs_and_their_metrics(store):
    ids_sin2 = put(store, TARGET, "SIN2(k0=0.01, k1=0.06, l=2000)", 0.993, seeds=(0, 1, 2))
    ids_fix = put(store, TARGET, "FIX(k0=0.01)", 0.990)
    put(store, TARGET, "FIX(k0=0.01)", 0.5, seeds=(5,), status="failed")
    rec = recommend(store, TARGET)
    top = rec.recommendations[0]
    assert top.policy == "SIN2(k0=0.01, k1=0.06, l=2000)" and top.rescaled_from is None
    assert top.run_ids == tuple(ids_sin2) and top.evidence.seeds == (0, 1, 2)
    stats = {s.policy: s for s in summarize(store.runs(task=TARGET))}
    assert top.top1 == pytest.approx(stats[top.policy].top1_mean)
    assert top.evidence.top1_std == pytest.approx(stats[top.policy].top1_std)
    assert top.evidence.best_iter == 400  # the second evaluation of each curve
    fix = rec.recommendations[1]
    assert fix.policy == "FIX(k0=0.01)"
    # the failed run is counted, but the evidence rests on the finished runs only
    assert fix.run_ids == tuple(ids_fix) and fix.evidence.n_failed == 1
    for r in rec.recommendations:
        for run_id in r.run_ids:
            assert store.load(run_id).policy == str(parse(r.evidence.policy))
    assert rec.similar_tasks[0].best_policies[0] == top.evidence


def test_lr_and_fix_ranges(store):
    for k0, top1 in ((0.001, 0.95), (0.003, 0.97), (0.01, 0.975), (0.03, 0.96), (0.1, 0.80)):
        put(store, TARGET, f"FIX(k0={k0})", top1)
    put(store, TARGET, "SIN2(k0=0.0005, k1=0.06, l=2000)", 0.99)
    put(store, TARGET, "NSTEP(k0=0.02, gamma=0.1, l=[5000, 7000])", 0.985)
    s = recommend(store, TARGET, top=3).similar_tasks[0]
    assert [p.policy for p in s.best_policies] == [
        "SIN2(k0=0.0005, k1=0.06, l=2000)", "NSTEP(k0=0.02, gamma=0.1, l=[5000, 7000])",
        "FIX(k0=0.01)"]
    assert s.lr_range == (0.0005, 0.06)   # lowest positive and highest LR of the listed ones
    assert s.fix_range == (0.003, 0.03)   # within 0.02 of the best FIX (0.975): 0.97, 0.96
    assert s.best_fix == 0.01


def test_diverged_and_failed_policies_never_rank_above_good_ones(store):
    put(store, TARGET, "FIX(k0=0.01)", 0.97)                              # good, lower top-1
    put(store, TARGET, "SIN(k0=0.01, k1=0.5, l=2000)", 0.99, seeds=(0,))  # one seed diverged:
    put(store, TARGET, "SIN(k0=0.01, k1=0.5, l=2000)", 0.99, seeds=(1,), status="diverged")
    put(store, TARGET, "FIX(k0=5.0)", 0.995, status="diverged")          # every seed diverged
    put(store, TARGET, "COS(k0=0.01, k1=0.1, l=2000)", 0.999, status="failed")  # crashed
    other = TARGET.replace(max_iters=5000, preset=None)
    put(store, other, "TRI(k0=0.01, k1=0.06, l=1000)", 0.96)               # good, less similar
    rec = recommend(store, TARGET, top=10)
    policies = rec.policies
    assert policies == ["FIX(k0=0.01)", "TRI(k0=0.01, k1=0.06, l=2000)",
                        "SIN(k0=0.01, k1=0.5, l=2000)"]
    assert rec.recommendations[-1].evidence.n_diverged == 1
    assert "FIX(k0=5.0)" not in policies and not any(p.startswith("COS") for p in policies)
    assert rec.recommendations[1].rescaled_from == "TRI(k0=0.01, k1=0.06, l=1000)"
    # the same order in the source task's own list, so a short list keeps the good one
    assert [p.policy for p in rec.similar_tasks[0].best_policies] == [
        "FIX(k0=0.01)", "SIN(k0=0.01, k1=0.5, l=2000)"]
    assert recommend(store, TARGET, top=1).policies == ["FIX(k0=0.01)"]


def test_a_task_with_only_failed_runs_is_skipped(store):
    put(store, TARGET, "FIX(k0=0.01)", 0.9, status="failed")
    other = TARGET.replace(max_iters=2000, preset=None)
    put(store, other, "FIX(k0=0.02)", 0.9)
    rec = recommend(store, TARGET)
    assert [s.task for s in rec.similar_tasks] == [other]
    assert rec.policies == ["FIX(k0=0.02)"]


# -- rescaling --------------------------------------------------------------------------------
def test_recommend_rescales_sin2_from_10000_to_2000_iterations(store):
    source = get_task("fashion-mnist-lenet")  # 10,000 iterations
    put(store, source, "SIN2(k0=0.01, k1=0.06, l=2000)", 0.92, info=FMNIST)
    put(store, source, "NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])", 0.91,
        info=FMNIST)
    put(store, source, "SINEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)", 0.90, info=FMNIST)
    put(store, source, "INV(k0=0.01, gamma=0.0001, p=0.75)", 0.89, info=FMNIST)
    put(store, source, "POLY(k0=0.01, p=1.2, l=10000)", 0.88, info=FMNIST)
    rec = recommend(store, get_task("fashion-mnist-lenet", max_iters=2000))
    # exactly the hand-scaled policies of configs/fashion-mnist-lenet.yaml
    assert rec.policies == [
        "SIN2(k0=0.01, k1=0.06, l=400)",
        "NSTEP(k0=0.01, gamma=0.9, l=[1000, 1400, 1600, 1800, 1900])",
        "SINEXP(k0=0.01, k1=0.06, gamma=0.9997, l=400)",
        "INV(k0=0.01, gamma=0.0005, p=0.75)",
        "POLY(k0=0.01, p=1.2, l=2000)",
    ]
    assert rec.recommendations[0].rescaled_from == "SIN2(k0=0.01, k1=0.06, l=2000)"
    assert rec.similar_tasks[0].scale == 0.2
    # the evidence stays the source's
    assert rec.recommendations[0].evidence.policy == "SIN2(k0=0.01, k1=0.06, l=2000)"


SAME_FRACTION = [
    "SIN2(k0=0.01, k1=0.06, l=2000)",
    "TRI(k0=0.01, k1=0.06, l=1000)",
    "TRI2(k0=0.01, k1=0.06, l=500)",
    "SIN(k0=0.001, k1=0.1, l=2500)",
    "COS(k0=0.1, k1=0.001, l=10000)",
    "STEP(k0=0.1, gamma=0.5, l=2500)",
    "NSTEP(k0=0.1, gamma=0.1, l=[5000, 7500])",
    "EXP(k0=0.1, gamma=0.9995)",
    "INV(k0=0.01, gamma=0.0001, p=0.75)",
    "POLY(k0=0.1, p=2.0, l=10000)",
    "TRIEXP(k0=0.01, k1=0.06, gamma=0.9999, l=2000)",
    "SINEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)",
    "LIN(k0=0.0, k1=0.1, l=1000)",
    "FIX(k0=0.1)[2500] >> (LIN(k0=0.1, k1=0.01, l=500)[2500] >> EXP(k0=0.01, gamma=0.9999))",
    "NSTEP(k0=0.1, gamma=0.5, l=[5000, 7000], k1=0.001)",
]


@pytest.mark.parametrize("text", SAME_FRACTION)
@pytest.mark.parametrize("scale", [0.2, 2.5])
def test_rescaled_policy_gives_the_same_lr_at_the_same_fraction_of_training(text, scale):
    source = parse(text)
    target = rescale_policy(source, scale)
    assert str(parse(str(target))) == str(target)
    for f in [i / 40 for i in range(40)]:
        t_source = round(f * 10000)
        t_target = round(f * 10000 * scale)
        if t_target != f * 10000 * scale:
            continue
        # rounded decay rates: ln(gamma) within 0.02%, and these decay by at most e^5
        assert target(t_target) == pytest.approx(source(t_source), rel=1e-3), (f, t_target)
    assert target.bounds == source.bounds  # the LRs themselves are kept


def test_rescale_policy_parameters():
    # gamma ** (1 / scale), with the fewest digits of 1 - gamma keeping ln(gamma) within 0.02%
    assert str(rescale_policy("EXP(k0=0.1, gamma=0.999)", 0.25)) == "EXP(k0=0.1, gamma=0.996006)"
    assert 0.999 ** 4 == pytest.approx(0.996006, abs=1e-8)
    assert str(rescale_policy("EXP(k0=0.1, gamma=0.99)", 2.0)) == "EXP(k0=0.1, gamma=0.994987)"
    assert str(rescale_policy("TRIEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)", 0.2)) == \
        "TRIEXP(k0=0.01, k1=0.06, gamma=0.9997, l=400)"
    assert str(rescale_policy("INV(k0=0.01, gamma=0.0001, p=0.75)", 0.2)) == \
        "INV(k0=0.01, gamma=0.0005, p=0.75)"
    assert str(rescale_policy("STEP(k0=0.1, gamma=0.5, l=300)", 0.1)) == \
        "STEP(k0=0.1, gamma=0.5, l=30)"
    assert str(rescale_policy("NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])",
                              0.2)) == "NSTEP(k0=0.01, gamma=0.9, l=[1000, 1400, 1600, 1800, 1900])"
    # milestones that would collide after rounding stay strictly increasing
    assert parse(str(rescale_policy("NSTEP(k0=0.1, gamma=0.5, l=[10, 11, 12])", 0.1))) \
        .params["l"] == (1, 2, 3)
    assert str(rescale_policy("POLY(k0=0.1, p=1.2, l=1000)", 64)) == "POLY(k0=0.1, p=1.2, l=64000)"
    assert str(rescale_policy("FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, "
                              "l=2000)", 0.2)) == \
        "FIX(k0=0.1)[3000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.9997, l=400)"
    assert str(rescale_policy("FIX(k0=0.1)", 0.01)) == "FIX(k0=0.1)"
    assert rescale_policy("SIN2(k0=0.01, k1=0.06, l=2000)", 1) == \
        parse("SIN2(k0=0.01, k1=0.06, l=2000)")
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="scale"):
            rescale_policy("FIX(k0=0.1)", bad)


def test_a_policy_that_cannot_be_rescaled_is_kept_and_says_so(store):
    long = TARGET.replace(max_iters=1_000_000, preset=None)
    put(store, long, "EXP(k0=0.1, gamma=0.5)", 0.9)  # 0.5 ** 100000 underflows to 0
    rec = recommend(store, TARGET.replace(max_iters=10, preset=None))
    r = rec.recommendations[0]
    assert r.policy == "EXP(k0=0.1, gamma=0.5)" and r.rescaled_from is None
    assert r.note is not None and r.note.startswith("not rescaled")


def test_scale_by_epochs_uses_the_epoch_lengths(store):
    source = make_task(dataset="cifar10", model="cnn3", batch_size=100, max_iters=70000,
                       eval_every=1000)
    put(store, source, "SIN2(k0=0.0001, k1=0.006, l=2000)", 0.8,
        info=dict(n_classes=10, input_shape=[3, 32, 32], n_train=50000))
    target = make_task(dataset="cifar10", model="cnn3", batch_size=50, max_iters=70000,
                       eval_every=1000)
    by_iters = recommend(store, target)
    assert by_iters.policies == ["SIN2(k0=0.0001, k1=0.006, l=2000)"]  # same length: kept
    by_epochs = recommend(store, target, scale_by="epochs")
    # an epoch is 1000 iterations at batch 50, 500 at batch 100: l doubles
    assert by_epochs.policies == ["SIN2(k0=0.0001, k1=0.006, l=4000)"]
    assert by_epochs.similar_tasks[0].scale == 2.0


def test_duplicates_are_kept_once_from_the_most_similar_task(store):
    a = TARGET.replace(max_iters=5000, preset=None)
    b = TARGET.replace(max_iters=20000, preset=None)
    ids_a = put(store, a, "SIN2(k0=0.01, k1=0.06, l=1000)", 0.97)
    put(store, b, "SIN2(k0=0.01, k1=0.06, l=4000)", 0.99)
    rec = recommend(store, TARGET)
    assert rec.policies == ["SIN2(k0=0.01, k1=0.06, l=2000)"]
    assert rec.recommendations[0].source_task == a and rec.recommendations[0].run_ids == \
        tuple(ids_a)
    assert len(rec.similar_tasks) == 2


def test_exclude_leaves_stored_tasks_out(store, db_url):
    a = TARGET.replace(max_iters=5000, preset=None)
    b = TARGET.replace(max_iters=20000, preset=None)
    put(store, a, "SIN2(k0=0.01, k1=0.06, l=1000)", 0.97)
    ids_b = put(store, b, "SIN2(k0=0.01, k1=0.06, l=4000)", 0.99)
    rec = recommend(store, TARGET, exclude=lambda t: t.max_iters == 5000)
    assert [s.task for s in rec.similar_tasks] == [b]
    assert rec.policies == ["SIN2(k0=0.01, k1=0.06, l=2000)"]
    assert rec.recommendations[0].source_task == b
    assert rec.recommendations[0].run_ids == tuple(ids_b)
    everything = recommend(db_url, TARGET, exclude=lambda t: True)  # by URL too
    assert everything.recommendations == () and everything.similar_tasks == ()
    with pytest.raises(ValueError, match="exclude must be a callable"):
        recommend(store, TARGET, exclude=5000)


def test_empty_database_and_bad_arguments(store):
    rec = recommend(store, "digits-mlp")
    assert rec.recommendations == () and rec.similar_tasks == ()
    assert rec.to_dict()["recommendations"] == []
    for kwargs, word in (({"top": 0}, "top"), ({"max_tasks": True}, "max_tasks"),
                         ({"scale_by": "epoch"}, "scale_by")):
        with pytest.raises(ValueError, match=word):
            recommend(store, "digits-mlp", **kwargs)
    with pytest.raises(ValueError, match="unknown task preset"):
        recommend(store, "no-such-task")


def test_to_dict_is_json_ready(store):
    put(store, small_task(), "FIX(k0=0.05)", 0.9)
    put(store, small_task(), "SIN2(k0=0.01, k1=0.1, l=100)", 0.95, status="diverged", seeds=(3,))
    put(store, small_task(), "SIN2(k0=0.01, k1=0.1, l=100)", 0.95, seeds=(4,))
    out = json.loads(json.dumps(recommend(store, small_task(max_iters=500)).to_dict(),
                                allow_nan=False))
    assert out["task"]["max_iters"] == 500
    assert [r["policy"] for r in out["recommendations"]] == [
        "FIX(k0=0.05)", "SIN2(k0=0.01, k1=0.1, l=50)"]
    assert out["recommendations"][1]["rescaled_from"] == "SIN2(k0=0.01, k1=0.1, l=100)"
    assert out["similar_tasks"][0]["dataset"]["n_classes"] == 10  # known to lrbench.data


# -- the command ------------------------------------------------------------------------------
def cli(capsys, *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_cli_json(db_url, store, capsys):
    source = get_task("mnist-lenet")
    ids = put(store, source, "SIN2(k0=0.01, k1=0.06, l=2000)", 0.99, info=MNIST)
    put(store, source, "FIX(k0=0.01)", 0.98, info=MNIST)
    code, out, err = cli(capsys, "recommend", "--task", "fashion-mnist-lenet", "--iters", 2000,
                         "--top", 1, "--db", db_url,
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= {"task", "similar_tasks", "recommendations"}
    assert data["task"]["dataset"] == "fashion-mnist" and data["task"]["max_iters"] == 2000
    assert len(data["recommendations"]) == 1
    r = data["recommendations"][0]
    assert r["policy"] == "SIN2(k0=0.01, k1=0.06, l=400)"
    assert r["top1"] == pytest.approx(0.9905)
    assert r["source_task"]["dataset"] == "mnist" and r["run_ids"] == ids
    assert r["rescaled_from"] == "SIN2(k0=0.01, k1=0.06, l=2000)"
    assert 0 < r["similarity"] == data["similar_tasks"][0]["similarity"] < 0.8


def test_cli_table(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 't.sqlite'}"
    with Store.open(url) as s:
        put(s, TARGET, "SIN2(k0=0.01, k1=0.06, l=2000)", 0.99)
    code, out, err = cli(capsys, "recommend", "--task", "mnist-lenet", "--iters", 4000,
                         "--db", url)
    assert code == 0, err
    assert "SIN2(k0=0.01, k1=0.06, l=800)" in out and "Similar tasks" in out
    assert "SIN2(k0=0.01, k1=0.06, l=2000)" in out  # rescaled from


def test_cli_nothing_to_recommend_exits_1(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    code, out, err = cli(capsys, "recommend", "--task", "digits-mlp", "--db", url)
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "nothing to recommend from: the database has no runs" in err
    with Store.open(url) as s:
        put(s, small_task(), "FIX(k0=0.05)", 0.9, status="failed")
    code, out, err = cli(capsys, "recommend", "--task", "digits-mlp", "--db", url, "--json")
    assert code == 1 and out == "" and err.strip().count("\n") == 0
    assert "no stored run finished without failing or diverging" in err


@pytest.mark.parametrize("args, words", [
    (["--task", "nope"], "unknown task preset 'nope'"),
    ([], "--task is required"),
    (["--task", "digits-mlp", "--top", "0"], "--top must be >= 1"),
    (["--task", "digits-mlp", "--max-tasks", "0"], "--max-tasks must be >= 1"),
    (["--task", "digits-mlp", "--iters", "0"], "--iters must be >= 1"),
    (["--task", "digits-mlp", "--scale-by", "weeks"], "--scale-by must be iters or epochs"),
    (["--task", "digits-mlp", "--top", "x"], "'--top'"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, args, words):
    code, out, err = cli(capsys, "recommend", *args, "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and out == ""
    assert err.startswith("lrbench: error: ") and err.strip().count("\n") == 0
    assert words in err and "Traceback" not in err


def test_cli_is_listed_and_imports_no_framework():
    code = ("import sys, lrbench, lrbench.tuning.recommend, lrbench.cli.recommend; "
            "from lrbench.cli import _register; _register(); "
            "bad = [m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules]; "
            "sys.exit(', '.join(bad) or 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_docstring_examples():
    result = doctest.testmod(recommend_module)
    assert result.attempted >= 5 and result.failed == 0
