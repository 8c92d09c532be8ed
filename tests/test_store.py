"""The LR database (issue #4): records, keys, queries, aggregates, migrations, export/import.

Every store test runs on SQLite (a file under tmp_path) and on the real PostgreSQL server named
by LRBENCH_TEST_POSTGRES_URL (a fresh database per test, dropped afterwards).
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from lrbench.results import CurvePoint
from lrbench.store import (
    BUNDLE_VERSION,
    Store,
    StoreError,
    default_url,
    mask_url,
    normalize_url,
    resolve_url,
)
from lrbench.store.testing import (
    make_curve,
    make_result,
    small_task,
    temporary_postgres_database,
)

from backends import PG_URL, db_url, needs_pg  # noqa: E402, F401  (db_url: a fixture)


@pytest.fixture
def store(db_url):
    s = Store.open(db_url)
    yield s
    s.close()


def _same(a, b):
    """Results equal as JSON (NaN compares equal to NaN there: both are None)."""
    return a.to_dict() == b.to_dict()


# -- record / re-record -------------------------------------------------------------------
def test_record_then_get_run_gives_the_same_result(store):
    task = small_task()
    curve = list(make_curve(12, seed=3))
    # NaN metrics (no correct sample for AC) and an infinite loss must survive the trip.
    curve[0] = CurvePoint(iteration=50, lr=0.06, train_loss=math.inf, test_loss=math.nan,
                          top1=0.1, top5=0.5, ac=math.nan, cd=math.nan, cdac=math.nan)
    result = make_result(task, "SIN2(k0=0.01, k1=0.06, l=200)", 7, curve=tuple(curve),
                         extra={"note": "hand made"})
    run_id = store.record(result)
    got = store.get_run(task, "SIN2(k0=0.01, k1=0.06, l=200)", 7)
    assert got is not None and _same(got, result)
    assert got.curve[0].train_loss == math.inf and math.isnan(got.curve[0].ac)
    assert got.task == task and got.extra == {"note": "hand made"}
    assert store.load(run_id).to_dict() == result.to_dict()
    assert store.get_run(task, "SIN2(k0=0.01, k1=0.06, l=200)", 8) is None
    assert store.get_run(task, "SIN(k0=0.01, k1=0.06, l=200)", 7) is None

    row = store.find_runs()[0]
    s = result.summary()
    assert (row.top1, row.top5, row.ac, row.cd, row.cdac) == (
        s["top1"], s["top5"], s["ac"], s["cd"], s["cdac"])
    assert row.ld == pytest.approx(s["ld"]) and row.best_iter == s["best_iter"]
    assert (row.iterations, row.status, row.n_points, row.function, row.n_params) == (
        result.iterations, "done", 12, "SIN2", 3)
    assert row.finished_at is not None and row.started_at < row.finished_at


def test_recording_again_updates_and_replaces_the_curve(store):
    task = small_task()
    first = make_result(task, "STEP(k0=0.1, gamma=0.5, l=100)", 1, n_points=20)
    second = make_result(task, "STEP(k0=0.1,gamma=0.5,l=100)", 1, n_points=5,
                         status="diverged", stop_reason="diverged", host="other-host")
    id1 = store.record(first)
    id2 = store.record(second)  # same run, spelled differently
    id3 = store.record(second)
    assert id1 == id2 == id3
    counts = store.counts()
    assert (counts["runs"], counts["curve_points"], counts["policies"], counts["tasks"]) == (
        1, 5, 1, 1)
    got = store.get_run(task, "STEP(k0=0.1, gamma=0.5, l=100)", 1)
    assert got.status == "diverged" and len(got.curve) == 5 and got.host == "other-host"
    assert got.policy == "STEP(k0=0.1, gamma=0.5, l=100)"  # canonical notation


@pytest.mark.parametrize("batch_size", [4, 100])
def test_record_many_writes_each_run_once_last_copy_wins(store, batch_size):
    task = small_task()
    results = [make_result(task, f"FIX(k0=0.{i + 1})", s) for i in range(3) for s in range(2)]
    again = make_result(task, "FIX(k0=0.1)", 0, n_points=3, status="diverged")
    ids = store.record_many([*results, again], batch_size=batch_size)
    assert len(ids) == 7 and ids[0] == ids[-1] and len(set(ids)) == 6
    counts = store.counts()
    assert (counts["runs"], counts["curve_points"]) == (6, 5 * 20 + 3)
    assert _same(store.get_run(task, "FIX(k0=0.1)", 0), again)
    assert _same(store.load(ids[3]), results[3])


def test_a_run_is_keyed_by_task_policy_and_seed(store):
    task = small_task()
    store.record(make_result(task, "FIX(k0=0.1)", 0))
    store.record(make_result(task, "FIX(k0=0.1)", 1))
    store.record(make_result(task, "FIX(k0=0.01)", 0))
    store.record(make_result(task.replace(batch_size=64), "FIX(k0=0.1)", 0))
    store.record(make_result(task.replace(preset="a-label"), "FIX(k0=0.1)", 0))  # same task
    counts = store.counts()
    assert (counts["runs"], counts["tasks"], counts["policies"]) == (4, 2, 2)


def test_record_rejects_bad_input(store):
    with pytest.raises(ValueError, match="unknown LR function"):
        store.record(make_result(policy="NOPE(k0=1)"))
    with pytest.raises(ValueError, match="status"):
        store.record(make_result(status="done").__class__(
            **{**make_result().__dict__, "status": "pending"}))
    assert store.counts()["runs"] == 0


# -- queries ------------------------------------------------------------------------------
def _populate(store):
    mnist = small_task(dataset="mnist", model="lenet")
    digits = small_task()
    for seed in range(3):
        store.record(make_result(mnist, "SIN2(k0=0.01, k1=0.06, l=200)", seed))
        store.record(make_result(mnist, "NSTEP(k0=0.01, gamma=0.9, l=[500, 700])", seed))
        store.record(make_result(digits, "FIX(k0=0.1)", seed))
    store.record(make_result(digits, "FIX(k0=0.01)", 0, status="failed", n_points=0))
    store.plan(digits, ["COS(k0=0.1, k1=0.0, l=100)"], [0, 1])
    return mnist, digits


def test_find_runs_filters(store):
    mnist, digits = _populate(store)
    assert len(store.find_runs()) == 12
    assert len(store.find_runs(dataset="mnist")) == 6
    assert len(store.find_runs(model="mlp")) == 6
    assert len(store.find_runs(dataset="mnist", model="mlp")) == 0
    assert {r.policy for r in store.find_runs(policy="SIN2(k0=.01,k1=0.06,l=200.0)")} == {
        "SIN2(k0=0.01, k1=0.06, l=200)"}
    assert len(store.find_runs(function="nstep")) == 3
    assert len(store.find_runs(function=["NSTEP", "SIN2"])) == 6
    assert len(store.find_runs(status="pending")) == 2
    assert len(store.find_runs(status=["failed", "pending"])) == 3
    assert len(store.find_runs(task=digits, seed=0)) == 3
    assert len(store.find_runs(limit=5)) == 5
    with pytest.raises(ValueError, match="unknown run status"):
        store.find_runs(status="finished")
    with pytest.raises(ValueError):
        store.find_runs(policy="SIN2(k0=")


def test_runs_gives_finished_results_with_curves(store):
    _populate(store)
    results = store.runs(dataset="mnist")
    assert len(results) == 6 and all(len(r.curve) == 20 for r in results)
    assert len(store.runs()) == 10  # pending runs are not results
    assert store.runs(status="pending") == []
    failed = store.runs(status="failed")
    assert len(failed) == 1 and failed[0].error == "boom" and failed[0].curve == ()


def test_aggregates_are_mean_and_population_std_over_seeds(store):
    task = small_task()
    values = {"FIX(k0=0.1)": [0.91, 0.93, 0.95], "FIX(k0=0.01)": [0.97, 0.96],
              "FIX(k0=1.0)": [0.2]}
    for policy, tops in values.items():
        for seed, top in enumerate(tops):
            curve = tuple(CurvePoint(iteration=50 * (i + 1), lr=0.1, train_loss=0.3,
                                     test_loss=0.4 + seed, top1=top - 0.1 * (2 - i), top5=1.0,
                                     ac=0.8, cd=0.1, cdac=0.05) for i in range(3))
            status = "diverged" if policy == "FIX(k0=1.0)" else "done"
            store.record(make_result(task, policy, seed, curve=curve, status=status))
    store.record(make_result(task, "FIX(k0=0.1)", 99, status="failed"))  # not an outcome
    stats = store.aggregates(task)
    assert [s.policy for s in stats] == ["FIX(k0=0.01)", "FIX(k0=0.1)", "FIX(k0=1.0)"]
    by = {s.policy: s for s in stats}
    for policy, tops in values.items():
        s = by[policy]
        assert s.runs == len(tops)
        assert s.mean["top1"] == pytest.approx(np.mean(tops))
        assert s.std["top1"] == pytest.approx(np.std(tops), abs=1e-12)  # ddof=0
        lds = [0.1 + seed for seed in range(len(tops))]
        assert s.mean["ld"] == pytest.approx(np.mean(lds))
        assert s.std["ld"] == pytest.approx(np.std(lds), abs=1e-12)
        assert s.mean["best_iter"] == 150 and s.std["best_iter"] == 0
    assert by["FIX(k0=1.0)"].diverged == 1 and by["FIX(k0=0.1)"].diverged == 0
    assert by["FIX(k0=0.1)"].to_dict()["top1_std"] == pytest.approx(np.std(values["FIX(k0=0.1)"]))

    # Lower LD is better: the ranking flips; limit and min_runs trim.
    assert [s.policy for s in store.leaderboard(task, "ld")] == [
        "FIX(k0=1.0)", "FIX(k0=0.01)", "FIX(k0=0.1)"]
    assert [s.policy for s in store.leaderboard(task, limit=1)] == ["FIX(k0=0.01)"]
    assert [s.policy for s in store.leaderboard(task, min_runs=3)] == ["FIX(k0=0.1)"]
    assert store.aggregates(task, statuses=("failed",))[0].runs == 1
    assert store.aggregates(small_task(model="other")) == []
    with pytest.raises(ValueError, match="unknown metric"):
        store.leaderboard(task, "accuracy")


# -- plan / claim --------------------------------------------------------------------------
def test_plan_creates_pending_runs_once(store):
    task = small_task()
    policies = ["FIX(k0=0.1)", "SIN2(k0=0.01, k1=0.06, l=200)"]
    assert store.plan(task, policies, range(3)) == 6
    assert store.plan(task, policies + ["FIX(k0=0.100)"], range(4)) == 2
    store.record(make_result(task, "FIX(k0=0.1)", 0))
    assert store.plan(task, policies, range(4)) == 0  # a done run stays done
    assert store.status_of(task, "FIX(k0=0.1)", 0) == "done"
    assert store.status_of(task, "FIX(k0=0.1)", 1) == "pending"
    assert store.status_of(task, "FIX(k0=0.1)", 9) is None
    assert store.counts()["runs_by_status"]["pending"] == 7


def test_claims_hand_each_run_out_once(store):
    task, other = small_task(), small_task(model="other")
    store.plan(task, ["FIX(k0=0.1)", "FIX(k0=0.2)"], [0, 1])
    store.plan(other, ["FIX(k0=0.1)"], [0])
    assert store.claim("w", task=small_task(model="unknown")) is None
    claims = []
    while (c := store.claim("worker-a", task=task)) is not None:
        claims.append(c)
    assert len(claims) == 4 and len({c.run_id for c in claims}) == 4
    assert {(c.policy, c.seed) for c in claims} == {
        (p, s) for p in ("FIX(k0=0.1)", "FIX(k0=0.2)") for s in (0, 1)}
    assert all(c.task == task and c.owner == "worker-a" for c in claims)
    rows = {r.id: r for r in store.find_runs(task=task)}
    assert all(rows[c.run_id].status == "running" and rows[c.run_id].owner == "worker-a"
               for c in claims)

    # Record one, give one back, one is stolen by a worker that finds it stale.
    c0, c1, c2 = claims[:3]
    store.record(make_result(task, c0.policy, c0.seed), claim=c0)
    assert store.status_of(task, c0.policy, c0.seed) == "done"
    assert store.release(c1) and not store.release(c1)
    again = store.claim("worker-b", task=task)
    assert (again.policy, again.seed) == (c1.policy, c1.seed)
    assert store.claim("worker-b", task=task) is None  # the rest are running, not stale
    stolen = store.claim("worker-c", task=task, stale_after=0)
    assert stolen.run_id in {c.run_id for c in claims[1:]} and stolen.token != c2.token
    assert store.heartbeat(stolen)
    assert not store.heartbeat(claims[[c.run_id for c in claims].index(stolen.run_id)])
    # Any task: the other task's run is still pending.
    assert store.claim("worker-d").task == other
    with pytest.raises(ValueError, match="not the claimed run"):
        store.record(make_result(task, "FIX(k0=0.3)", 0), claim=stolen)


def test_dataset_metadata_gives_the_task_type(store):
    task = small_task(dataset="toy-set")
    store.record(make_result(task, "FIX(k0=0.1)", 0))
    assert store.find_runs()[0].n_classes is None  # unknown so far
    store.register_dataset("toy-set", {"name": "toy-set", "n_classes": 7,
                                       "input_shape": (1, 28, 28), "n_train": 600,
                                       "n_test": 100})
    assert store.find_runs()[0].n_classes == 7
    other = small_task(dataset="toy-2", model="cnn3")
    store.record(make_result(other, "FIX(k0=0.1)", 0),
                 dataset_info={"n_classes": 3, "input_shape": [3, 32, 32]})
    assert {r.dataset: r.n_classes for r in store.find_runs()} == {"toy-set": 7, "toy-2": 3}
    datasets = {d["name"]: d for d in store.datasets(["toy-set", "toy-2"])}
    assert datasets["toy-set"]["input_shape"] == [1, 28, 28]
    assert datasets["toy-set"]["n_test"] == 100 and datasets["toy-2"]["n_train"] is None
    assert [d["name"] for d in store.datasets()] == ["toy-2", "toy-set"]  # all, by name
    assert [d["name"] for d in store.datasets(["toy-2"])] == ["toy-2"]


def test_dataset_metadata_comes_from_lrbench_data_when_it_knows_the_dataset(store):
    data = pytest.importorskip("lrbench.data")
    info = data.dataset_info("digits")
    store.record(make_result(small_task(dataset="digits"), "FIX(k0=0.1)", 0))
    assert store.find_runs()[0].n_classes == info.n_classes
    (row,) = store._datasets(["digits"])
    assert row["input_shape"] == list(info.input_shape) and row["n_train"] == info.n_train


# -- URLs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url, fragment", [
    ("postgresql+psycopg://ana:s3cret@127.0.0.1:1/lrbench", "cannot connect"),
    ("postgresql://ana:s3cret@127.0.0.1:notaport/lrbench", "malformed database URL"),
    ("mysql://ana:s3cret@127.0.0.1/lrbench", "unsupported database backend"),
    ("postgresql+psycopg://ana:s3cret@127.0.0.1:1", "names no database"),
    ("not a url at all", "not a database URL"),
    ("sqlite:////nonexistent-dir/lrbench/x.sqlite", "does not exist"),
])
def test_bad_urls_give_a_clear_error_with_the_password_masked(url, fragment):
    with pytest.raises(StoreError, match=fragment) as err:
        Store.open(url)
    message = str(err.value)
    assert "s3cret" not in message
    assert isinstance(err.value, ValueError)
    if "ana" in url and "mysql" not in url:
        assert "ana:***@127.0.0.1" in message


def test_a_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "junk.sqlite"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(StoreError, match="junk.sqlite"):
        Store.open(f"sqlite:///{bad}")


@needs_pg
def test_missing_postgres_database_is_a_clear_error():
    from sqlalchemy.engine import make_url

    url = make_url(normalize_url(PG_URL)).set(password="pw-xyz", database="lrbench_no_such_db")
    with pytest.raises(StoreError, match="lrbench_no_such_db") as err:
        Store.open(url.render_as_string(hide_password=False))
    assert "pw-xyz" not in str(err.value)


def test_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("LRBENCH_DB", raising=False)
    assert resolve_url() == default_url()
    assert default_url().startswith("sqlite:///") and default_url().endswith("lrbench.sqlite")
    monkeypatch.setenv("LRBENCH_DB", f"sqlite:///{tmp_path / 'env.sqlite'}")
    assert resolve_url() == f"sqlite:///{tmp_path / 'env.sqlite'}"
    assert resolve_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url(str(tmp_path / "file.db")) == f"sqlite:///{tmp_path / 'file.db'}"
    with Store.open() as s:
        assert s.url == f"sqlite:///{tmp_path / 'env.sqlite'}" and s.backend == "sqlite"
    assert mask_url("postgresql+psycopg://u:p@h:5/d") == "postgresql+psycopg://u:***@h:5/d"
    assert mask_url("postgresql://u:p@h:bad/d") == "postgresql://u:***@h:bad/d"


def test_sqlite_runs_in_wal_mode(tmp_path):
    path = tmp_path / "wal.sqlite"
    Store.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- migrations ---------------------------------------------------------------------------
def _tables(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _initial_revision(store):
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(store._alembic_config()).get_base()


def test_upgrade_from_an_empty_database(db_url):
    with Store.open(db_url, upgrade=False, check=False) as store:
        assert store.revision() is None and store.info()["counts"] is None
        with pytest.raises(StoreError, match="db upgrade"):
            Store.open(db_url, upgrade=False)
        before, after = store.upgrade()
        assert (before, after) == (None, store.head_revision())
        assert store.upgrade() == (after, after)  # idempotent
    assert {"datasets", "tasks", "policies", "runs", "curve_points",
            "alembic_version"} <= _tables(db_url)
    Store.open(db_url, upgrade=False).close()  # at head now: opens fine


def test_upgrade_from_the_initial_revision_keeps_the_data(db_url):
    with Store.open(db_url) as store:
        initial = _initial_revision(store)
        store.downgrade("base")
        assert store.revision() is None and "runs" not in _tables(db_url)
        assert store.upgrade(initial) == (None, initial)
        task = small_task()
        result = make_result(task, "FIX(k0=0.1)", 0)
        store.record(result)
        assert store.upgrade()[1] == store.head_revision()
        assert _same(store.get_run(task, "FIX(k0=0.1)", 0), result)


def test_schema_models_match_the_migrations(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from lrbench.store.schema import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_newer_schema_than_this_lrbench_is_refused(db_url):
    Store.open(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this lrbench"):
        Store.open(db_url)


# -- export / import ----------------------------------------------------------------------
def _snapshot(store):
    return sorted(json.dumps(r.to_dict(), sort_keys=True) for r in store.runs())


@needs_pg
@pytest.mark.postgres
def test_bundle_round_trip_between_sqlite_and_postgresql(tmp_path):
    lite_url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    with temporary_postgres_database(PG_URL) as pg_url, Store.open(lite_url) as lite, \
            Store.open(pg_url) as pg:
        _populate(lite)
        lite.register_dataset("mnist", {"n_classes": 10, "input_shape": [1, 28, 28]})
        assert lite.export_bundle(tmp_path / "a.json") == 10
        report = pg.import_bundle(tmp_path / "a.json")
        assert (report.written, report.skipped) == (10, 0)
        assert _snapshot(pg) == _snapshot(lite)
        assert {r.dataset: r.n_classes for r in pg.find_runs()}["mnist"] == 10
        # Timestamps travel too.
        key = lambda r: (r.dataset, r.policy, r.seed)
        finished = lite.find_runs(status=["done", "diverged", "failed"])
        assert ({key(r): r.finished_at for r in pg.find_runs()}
                == {key(r): r.finished_at for r in finished})

        counts = pg.counts()
        again = pg.import_bundle(tmp_path / "a.json")
        assert (again.written, again.skipped) == (0, 10) and pg.counts() == counts
        pg.import_bundle(tmp_path / "a.json", replace=True)
        assert pg.counts() == counts and _snapshot(pg) == _snapshot(lite)

        # And back: PostgreSQL -> a new SQLite file, gzip-compressed.
        pg.record(make_result(small_task(model="new"), "COS(k0=0.1, k1=0.0, l=100)", 0))
        assert pg.export_bundle(tmp_path / "b.json.gz") == 11
        with Store.open(f"sqlite:///{tmp_path / 'b.sqlite'}") as back:
            assert back.import_bundle(tmp_path / "b.json.gz").written == 11
            assert _snapshot(back) == _snapshot(pg)


def test_bundle_round_trip_and_filters(store, tmp_path):
    _populate(store)
    assert store.export_bundle(tmp_path / "mnist.json", dataset="mnist") == 6
    data = json.loads((tmp_path / "mnist.json").read_text())
    assert data["format"] == "lrbench-bundle" and data["version"] == BUNDLE_VERSION
    with Store.open(f"sqlite:///{tmp_path / 'other.sqlite'}") as other:
        assert other.import_bundle(tmp_path / "mnist.json").written == 6
        assert other.import_bundle(tmp_path / "mnist.json").written == 0
        assert _snapshot(other) == sorted(
            json.dumps(r.to_dict(), sort_keys=True) for r in store.runs(dataset="mnist"))


@pytest.mark.parametrize("content, message", [
    ("not json", "not an lrbench bundle"),
    ('{"format": "something-else", "version": 1, "runs": []}', "not an lrbench bundle"),
    ('{"format": "lrbench-bundle", "version": 99, "runs": []}', "upgrade lrbench"),
    ('{"format": "lrbench-bundle", "version": 1, "runs": [{"result": {"task": {}}}]}',
     "run #0 is malformed"),
])
def test_bad_bundles_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with Store.open(f"sqlite:///{tmp_path / 'x.sqlite'}") as store:
        with pytest.raises(ValueError, match=message):
            store.import_bundle(path)
        assert store.counts()["runs"] == 0


def test_csv_parquet_and_dataframe_export(store, tmp_path):
    _populate(store)
    n = store.export_csv(tmp_path / "runs.csv", dataset="mnist")
    with open(tmp_path / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert n == len(rows) == 6
    assert {r["policy"] for r in rows} == {"SIN2(k0=0.01, k1=0.06, l=200)",
                                           "NSTEP(k0=0.01, gamma=0.9, l=[500, 700])"}
    assert all(0 < float(r["top1"]) <= 1 for r in rows)
    assert store.export_csv(tmp_path / "curves.csv", curves=True, function="SIN2") == 60

    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = store.to_dataframe()
    assert len(df) == 12 and {"policy", "top1", "status", "finished_at"} <= set(df.columns)
    assert str(df["finished_at"].dt.tz) == "UTC"
    assert store.export_parquet(tmp_path / "runs.parquet") == 12
    back = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(back["id"]) == list(df["id"])
    assert np.allclose(back["top1"].astype(float), df["top1"].astype(float), equal_nan=True)
    curves = store.to_dataframe(curves=True, dataset="mnist")
    assert len(curves) == 6 * 20 and list(curves.columns[:3]) == ["run_id", "dataset", "model"]
