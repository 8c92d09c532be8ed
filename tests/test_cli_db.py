"""``lrbench db ...`` (issue #4): info, upgrade, runs, export / import, and bad input -> exit 2."""

from __future__ import annotations

import csv
import json

import pytest

from lrbench.cli import main
from lrbench.store import Store
from lrbench.store.testing import (
    make_result,
    small_task,
    temporary_postgres_database,
)

from backends import PG_URL, db_url, needs_pg  # noqa: E402, F401  (db_url: a fixture)


@pytest.fixture(autouse=True)
def _no_user_database(monkeypatch, tmp_path):
    # Never touch the user's real database: the default is replaced by a file under tmp_path.
    monkeypatch.setenv("LRBENCH_DB", f"sqlite:///{tmp_path / 'env-default.sqlite'}")


def run(capsys, *args):
    """Run ``lrbench ARGS``; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def _fill(url):
    with Store.open(url) as store:
        mnist = small_task(dataset="mnist", model="lenet")
        for seed in range(2):
            store.record(make_result(mnist, "SIN2(k0=0.01, k1=0.06, l=200)", seed))
            store.record(make_result(mnist, "FIX(k0=0.1)", seed, status="diverged"))
            store.record(make_result(small_task(), "FIX(k0=0.1)", seed))
        store.plan(small_task(), ["COS(k0=0.1, k1=0.0, l=100)"], [0])


def test_info_and_upgrade(capsys, db_url):
    with Store.open("sqlite://") as scratch:
        head = scratch.head_revision()
    assert head == "0002"  # 0001 the results, 0002 the server's API tokens
    code, out, _ = run(capsys, "db", "info", "--db", db_url)
    assert code == 0 and "revision:  none" in out and "lrbench db upgrade" in out
    code, out, _ = run(capsys, "db", "upgrade", "--db", db_url)
    assert code == 0 and f"upgraded from empty to {head}" in out
    code, out, _ = run(capsys, "db", "upgrade", "--db", db_url)
    assert code == 0 and f"already at revision {head}" in out
    _fill(db_url)
    code, out, _ = run(capsys, "db", "info", "--db", db_url)
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    assert code == 0 and f"backend:   {backend}" in out
    assert "runs:      7 (pending 1, running 0, done 4, diverged 2, failed 0)" in out
    code, out, _ = run(capsys, "db", "info", "--db", db_url, "--json")
    data = json.loads(out)
    assert data["revision"] == data["head"] == head and data["backend"] == backend
    assert data["counts"]["runs"] == 7 and data["counts"]["curve_points"] == 6 * 20


@needs_pg
@pytest.mark.postgres
def test_info_masks_the_password(capsys):
    from sqlalchemy.engine import make_url

    with temporary_postgres_database(PG_URL) as url:
        # The test server trusts local connections, so any password is accepted (and unused).
        with_password = make_url(url).set(password="hunter2").render_as_string(hide_password=False)
        code, out, err = run(capsys, "db", "info", "--db", with_password)
        assert code == 0, err
        assert "hunter2" not in out and ":***@" in out


def test_info_uses_the_environment_variable(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LRBENCH_DB", f"sqlite:///{tmp_path / 'from-env.sqlite'}")
    code, out, _ = run(capsys, "db", "info", "--json")
    assert code == 0 and json.loads(out)["url"].endswith("from-env.sqlite")


def test_runs_json_and_filters(capsys, db_url):
    _fill(db_url)
    code, out, _ = run(capsys, "db", "runs", "--db", db_url, "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 7
    assert {"id", "dataset", "model", "policy", "seed", "status", "top1", "best_iter",
            "finished_at"} <= set(rows[0])

    def count(*args):
        code, out, err = run(capsys, "db", "runs", "--db", db_url, "--json", *args)
        assert code == 0, err
        return len(json.loads(out))

    assert count("--dataset", "mnist") == 4
    assert count("--model", "mlp") == 3
    assert count("--policy", "SIN2(k0=.01,k1=0.06,l=200)") == 2
    assert count("--function", "fix") == 4
    assert count("--status", "diverged") == 2
    assert count("--status", "pending", "--status", "diverged") == 3
    assert count("--dataset", "mnist", "--function", "FIX") == 2
    assert count("--limit", "2") == 2
    code, out, _ = run(capsys, "db", "runs", "--db", db_url)
    assert code == 0 and "SIN2(k0=0.01, k1=0.06, l=200)" in out and "pending" in out
    code, out, _ = run(capsys, "db", "runs", "--db", db_url, "--dataset", "nothing")
    assert code == 0 and "no runs" in out


def test_export_import_round_trip(capsys, db_url, tmp_path):
    _fill(db_url)
    bundle = tmp_path / "runs.json"
    code, out, _ = run(capsys, "db", "export", bundle, "--db", db_url)
    assert code == 0 and "exported 6 runs" in out
    target = f"sqlite:///{tmp_path / 'target.sqlite'}"
    code, out, _ = run(capsys, "db", "import", bundle, "--db", target)
    assert code == 0 and "6 runs written, 0 already present" in out
    code, out, _ = run(capsys, "db", "import", bundle, "--db", target)
    assert code == 0 and "0 runs written, 6 already present" in out
    with Store.open(db_url) as a, Store.open(target) as b:
        assert sorted(json.dumps(r.to_dict(), sort_keys=True) for r in a.runs()) == sorted(
            json.dumps(r.to_dict(), sort_keys=True) for r in b.runs())
        assert b.counts()["runs"] == 6

    code, out, _ = run(capsys, "db", "export", tmp_path / "mnist.json", "--db", db_url,
                       "--dataset", "mnist", "--function", "SIN2")
    assert code == 0 and "exported 2 runs" in out


def test_export_csv_and_parquet(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    _fill(url)
    code, out, _ = run(capsys, "db", "export", tmp_path / "runs.csv", "--db", url)
    assert code == 0 and "exported 7 runs" in out
    with open(tmp_path / "runs.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 7
    code, out, _ = run(capsys, "db", "export", tmp_path / "curves.csv", "--db", url,
                       "--curves", "--model", "mlp")
    assert code == 0 and "exported 40 curve points" in out
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    code, out, _ = run(capsys, "db", "export", tmp_path / "runs.data", "--db", url,
                       "--format", "parquet")
    assert code == 0 and len(pd.read_parquet(tmp_path / "runs.data")) == 7


@pytest.mark.parametrize("args, message", [
    (["db", "runs", "--db", "postgresql+psycopg://ana:s3cret@127.0.0.1:1/x"], "cannot connect"),
    (["db", "info", "--db", "postgresql://ana:s3cret@127.0.0.1:port/x"], "malformed database URL"),
    (["db", "info", "--db", "mysql://ana:s3cret@localhost/x"], "unsupported database backend"),
    (["db", "info", "--db", "nonsense"], "not a database URL"),
    (["db", "runs", "--status", "finished"], "unknown run status"),
    (["db", "runs", "--policy", "SIN2(k0="], "SIN2"),
    (["db", "runs", "--limit", "0"], "--limit"),
    (["db", "import", "/nonexistent/bundle.json"], "no such file"),
    (["db", "export", "out.xlsx"], "cannot tell the export format"),
    (["db", "export", "out.json", "--format", "xml"], "unknown export format"),
    (["db", "export", "out.json", "--curves"], "--curves is for csv"),
    (["db", "upgrade", "--revision", "nope"], "nope"),
    (["db", "frobnicate"], "No such command"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrbench: error:"), err
    assert message in err and "s3cret" not in err and "Traceback" not in err


def test_importing_a_bad_bundle_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "lrbench-bundle", "version": 7, "runs": []}')
    code, _, err = run(capsys, "db", "import", bad)
    assert code == 2 and "version 7 bundle" in err and len(err.strip().splitlines()) == 1
