"""The shared server: its API on SQLite and on the real PostgreSQL server, tokens, validation,
limits, CORS, the pages, and push / pull through a real uvicorn server on loopback."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from serving import live_server
from sqlalchemy import select

from lrbench.cli import main
from lrbench.ranking import rank, summarize
from lrbench.server import create_app
from lrbench.server.client import ServerError, pull, push
from lrbench.store import Store, task_key
from lrbench.store import schema as S
from lrbench.store.testing import (
    make_result,
    small_task,
)

from backends import BACKENDS, database  # noqa: E402
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TASK = small_task(preset="digits-mlp")
POLICIES = ["FIX(k0=0.1)", "SIN2(k0=0.01, k1=0.1, l=200)", "STEP(k0=0.1, gamma=0.5, l=250)",
            "EXP(k0=0.1, gamma=0.999)"]
SEEDS = (0, 1, 2)


def seeded_runs(task=TASK, policies=POLICIES, seeds=SEEDS):
    """Three seeds per policy; policy k's curves are 20 - 4k points long, so #Iter differs."""
    return [make_result(task, p, s, n_points=20 - 4 * k) for k, p in enumerate(policies)
            for s in seeds]


def expected_ranking(**how):
    """What the server should show: the runs summarized, in notation order, ranked."""
    return rank(sorted(summarize(seeded_runs()), key=lambda s: s.policy), **how)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with database(request.param, tmp_path) as url, Store.open(url) as s:
        s.record_many(seeded_runs())
        yield s


@pytest.fixture
def client(store):
    return TestClient(create_app(store))


@pytest.fixture
def token(store):
    return store.create_token("tester")


KEY = task_key(TASK)


def run_body(policy="COS(k0=0.001, k1=0.1, l=250)", seed=0, task=TASK, **changes):
    data = make_result(task, policy, seed).to_dict()
    data.update(changes)
    return data


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def n_runs(store):
    return store.counts()["runs"]


# -- reading --------------------------------------------------------------------------------
def test_tasks_list_counts_runs_and_policies(client):
    tasks = client.get("/api/tasks").json()
    assert [t["key"] for t in tasks] == [KEY]
    assert tasks[0]["runs"] == len(POLICIES) * len(SEEDS)
    assert tasks[0]["policies"] == len(POLICIES)
    assert tasks[0]["preset"] == "digits-mlp"
    assert client.get(f"/api/tasks/{KEY}").json()["runs"] == 12
    assert client.get("/api/tasks/" + "0" * 64).status_code == 404
    assert client.get("/api/tasks/not-a-key").status_code == 422


def test_leaderboard_matches_ranking_of_the_runs(client):
    expected = expected_ranking(by="top1")
    board = client.get(f"/api/tasks/{KEY}/leaderboard").json()
    assert board["ranked_by"] == "top1"
    assert [r["policy"] for r in board["rows"]] == [e.stats.policy for e in expected]
    assert [r["position"] for r in board["rows"]] == [e.position for e in expected]
    for row, e in zip(board["rows"], expected):
        assert row["top1_pct"] == pytest.approx(100 * e.stats.top1_mean, abs=1e-9)
        assert row["top1_pct_std"] == pytest.approx(100 * e.stats.top1_std, abs=1e-9)
        assert row["n_runs"] == 3


@pytest.mark.parametrize("params, how", [
    ({"by": "best_iter"}, dict(by="best_iter")),
    ({"weights": "top1:0.1,best_iter:-1"}, dict(weights={"top1": 0.1, "best_iter": -1.0})),
    ({"lexicographic": "top5,best_iter"}, dict(lexicographic=["top5", "best_iter"])),
])
def test_leaderboard_ranking_options(client, params, how):
    expected = expected_ranking(**how)
    board = client.get(f"/api/tasks/{KEY}/leaderboard", params=params).json()
    assert [(r["policy"], r["position"]) for r in board["rows"]] == \
        [(e.stats.policy, e.position) for e in expected]
    assert len({e.position for e in expected}) > 1  # the options do separate the policies


@pytest.mark.parametrize("params, words", [
    ({"by": "speed"}, "unknown metric 'speed'"),
    ({"weights": "top1"}, "metric:weight pairs"),
    ({"weights": "top1:lots"}, "must be a number"),
    ({"by": "top1", "lexicographic": "top5"}, "only one of"),
    ({"top": 0}, "top"),
])
def test_bad_ranking_options_are_4xx_with_a_reason(client, params, words):
    r = client.get(f"/api/tasks/{KEY}/leaderboard", params=params)
    assert 400 <= r.status_code < 500
    assert words in r.json()["detail"]


def test_run_with_its_curve(client, store):
    row = store.find_runs(policy=POLICIES[1], seed=2)[0]
    got = client.get(f"/api/runs/{row.id}").json()
    stored = store.load(row.id)
    assert got["task_key"] == KEY
    assert got["result"]["policy"] == POLICIES[1] and got["result"]["seed"] == 2
    assert [p["top1"] for p in got["result"]["curve"]] == [p.top1 for p in stored.curve]
    assert got["summary"]["top1"] == pytest.approx(stored.summary()["top1"])
    assert client.get("/api/runs/999999").status_code == 404
    for bad in ("0", "-1", "99999999999999999999", "x"):
        assert client.get(f"/api/runs/{bad}").status_code == 422


def test_runs_of_a_task_paginate(client):
    first = client.get(f"/api/tasks/{KEY}/runs", params={"limit": 5}).json()
    rest = client.get(f"/api/tasks/{KEY}/runs", params={"limit": 100, "offset": 5}).json()
    assert len(first) == 5 and len(rest) == 7
    assert len({r["id"] for r in first + rest}) == 12
    only = client.get(f"/api/tasks/{KEY}/runs", params={"policy": "fix(k0=1e-1)"}).json()
    assert {r["policy"] for r in only} == {"FIX(k0=0.1)"} and len(only) == 3


def test_policies_list(client):
    got = client.get("/api/policies").json()
    assert {p["notation"] for p in got} == set(POLICIES)
    assert all(p["runs"] == 3 for p in got)
    assert [p["notation"] for p in client.get("/api/policies",
                                              params={"function": "sin2"}).json()] == [POLICIES[1]]


def test_recommendations_for_a_preset_and_a_full_task(client):
    by_preset = client.post("/api/recommendations", json={"preset": "digits-mlp", "top": 2})
    assert by_preset.status_code == 200
    recs = by_preset.json()
    assert len(recs["recommendations"]) == 2
    best = rank(summarize(seeded_runs()), "top1")[0].stats.policy
    assert recs["recommendations"][0]["policy"] == best
    full = client.post("/api/recommendations",
                       json={"task": TASK.identity() | {"max_iters": 2000}, "top": 1}).json()
    assert len(full["recommendations"]) == 1
    assert client.post("/api/recommendations", json={}).status_code == 422
    assert client.post("/api/recommendations",
                       json={"preset": "digits-mlp", "task": TASK.identity()}).status_code == 422


# -- writing: auth ----------------------------------------------------------------------
def test_submissions_need_a_valid_token(client, store, token):
    body = {"runs": [run_body()]}
    before = n_runs(store)
    missing = client.post("/api/runs", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/runs", json=body, headers=auth("lrb_" + "x" * 43)).status_code == 401
    assert client.post("/api/runs", json=body,
                       headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert client.post("/api/runs", json=body, headers=auth(token[:-1])).status_code == 401
    assert client.post(f"/api/runs?token={token}", json=body).status_code == 401
    assert n_runs(store) == before
    assert client.get("/api/token", headers=auth(token)).json() == {"name": "tester"}
    assert client.get("/api/token").status_code == 401
    ok = client.post("/api/runs", json=body, headers=auth(token))
    assert ok.status_code == 200 and ok.json() == {"written": 1, "kept": 0}
    assert n_runs(store) == before + 1
    store.revoke_token("tester")
    again = client.post("/api/runs", json={"runs": [run_body(seed=7)]}, headers=auth(token))
    assert again.status_code == 401 and "revoked" in again.json()["detail"]
    assert n_runs(store) == before + 1


def test_a_push_is_idempotent(client, store, token):
    body = {"runs": [run_body(seed=s) for s in range(4)]}
    assert client.post("/api/runs", json=body, headers=auth(token)).json() == \
        {"written": 4, "kept": 0}
    row = store.find_runs(policy="COS(k0=0.001, k1=0.1, l=250)", seed=3)[0]
    stored = store.load(row.id)
    assert client.post("/api/runs", json=body, headers=auth(token)).json() == \
        {"written": 0, "kept": 4}
    # a different result for a run the server has does not overwrite it
    changed = {"runs": [run_body(seed=3, iterations=500, curve=run_body()["curve"][:10])]}
    assert client.post("/api/runs", json=changed, headers=auth(token)).json() == \
        {"written": 0, "kept": 1}
    assert store.load(row.id) == stored
    assert n_runs(store) == 12 + 4


def _set(path, value):
    def change(body):
        target = body["runs"][0]
        *keys, last = path
        for k in keys:
            target = target[k]
        target[last] = value
        return body
    return change


@pytest.mark.parametrize("change, words", [
    (_set(["policy"], "SIN2(k0=0.1"), "does not parse"),
    (_set(["policy"], "WARP(k0=1)"), "does not parse"),
    (_set(["curve", 0, "top1"], 1.5), "less than or equal to 1"),
    (_set(["curve", 0, "top5"], -0.1), "greater than or equal to 0"),
    (_set(["curve", 1, "iteration"], 0), "strictly increasing"),
    (_set(["iterations"], 5000), "exceeds the task's max_iters"),
    (_set(["host"], "evil\x00host"), "NUL"),
    (_set(["task", "dataset"], "../../etc"), "string should match pattern"),
    (_set(["task", "max_iters"], 10**12), "less than or equal to"),
    (_set(["task", "momentum"], 1.0), "less than 1"),
    (_set(["task", "unknown"], 1), "extra inputs are not permitted"),
    (_set(["seed"], -1), "greater than or equal to 0"),
    (_set(["status"], "running"), "input should be"),
    (lambda b: {"runs": []}, "at least 1 item"),
    (lambda b: {"runs": b["runs"] * 501}, "at most 500 items"),
    (lambda b: {"runs": b["runs"], "extra": 1}, "extra inputs are not permitted"),
])
def test_malformed_submissions_are_422_naming_the_problem(client, store, token, change, words):
    before = n_runs(store)
    r = client.post("/api/runs", json=change({"runs": [run_body()]}), headers=auth(token))
    assert r.status_code == 422, r.text
    assert words.lower() in r.json()["detail"].lower()
    assert n_runs(store) == before


def test_not_json_and_nan_are_rejected(client, store, token):
    headers = auth(token) | {"Content-Type": "application/json"}
    assert client.post("/api/runs", content=b"{not json", headers=headers).status_code == 422
    text = json.dumps({"runs": [run_body()]}).replace('"wall_time": 1.5', '"wall_time": NaN')
    assert "NaN" in text
    assert client.post("/api/runs", content=text.encode(), headers=headers).status_code == 422
    assert n_runs(store) == 12


def test_oversized_bodies_are_refused_before_parsing(store, token):
    client = TestClient(create_app(store, max_body_bytes=64 * 1024))
    big = {"runs": [run_body(seed=s) for s in range(60)]}
    r = client.post("/api/runs", json=big, headers=auth(token))
    assert r.status_code == 413 and "request body over 65536 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit counts the streamed bytes
        payload = json.dumps(big).encode()
        for i in range(0, len(payload), 4096):
            yield payload[i:i + 4096]

    streamed = client.post("/api/runs", content=chunks(), headers=auth(token) |
                           {"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert n_runs(store) == 12
    small = client.post("/api/runs", json={"runs": [run_body()]}, headers=auth(token))
    assert small.status_code == 200


def test_missing_runs_and_the_bundle(client, store):
    keys = [{"task_key": KEY, "policy": POLICIES[0], "seed": 0},
            {"task_key": KEY, "policy": "fix(k0=1e-1)", "seed": 9},
            {"task_key": "f" * 64, "policy": POLICIES[0], "seed": 0},
            {"task_key": KEY, "policy": POLICIES[2], "seed": 2}]
    assert client.post("/api/runs/missing", json={"keys": keys}).json() == {"missing": [1, 2]}
    bundle = client.get(f"/api/tasks/{KEY}/bundle").json()
    assert bundle["format"] == "lrbench-bundle" and len(bundle["runs"]) == 12
    pages = [client.get(f"/api/tasks/{KEY}/bundle", params={"limit": 5, "offset": o}).json()
             for o in (0, 5, 10)]
    assert [len(p["runs"]) for p in pages] == [5, 5, 2]
    assert [r["result"] for p in pages for r in p["runs"]] == \
        [r["result"] for r in bundle["runs"]]
    assert client.get(f"/api/tasks/{KEY}/bundle", params={"limit": 5000}).status_code == 422


# -- tokens ---------------------------------------------------------------------------------
def test_tokens_are_stored_hashed_and_listed_without_their_value(store):
    token = store.create_token("alice")
    assert token.startswith("lrb_") and len(token) >= 40
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(S.api_tokens))]
    assert rows and not any(token in str(v) for row in rows for v in row)
    listed = store.list_tokens()
    assert [t.name for t in listed] == ["alice"] and listed[0].active
    assert token not in json.dumps([t.to_dict() for t in listed])
    assert store.verify_token(token) == "alice"
    assert store.list_tokens()[0].last_used_at is not None
    with pytest.raises(ValueError, match="already exists"):
        store.create_token("alice")
    assert store.revoke_token("alice") is True
    assert store.revoke_token("alice") is False
    assert store.verify_token(token) is None
    assert store.list_tokens(include_revoked=False) == []
    with pytest.raises(ValueError, match="no token named"):
        store.revoke_token("bob")
    for bad in ("", " padded ", "x" * 101, "tab\there", None):
        with pytest.raises(ValueError):
            store.create_token(bad)
    for bad in (None, "", "lrb_", "notoken", "lrb_" + "é" * 40, "lrb_" + "a" * 300, 42):
        assert store.verify_token(bad) is None


# -- CORS and headers -----------------------------------------------------------------------
def test_cors_is_off_by_default_and_on_for_listed_origins(store):
    origin = {"Origin": "https://elsewhere.example"}
    plain = TestClient(create_app(store)).get("/api/tasks", headers=origin)
    assert "access-control-allow-origin" not in plain.headers
    allowed = TestClient(create_app(store, cors_origins=["https://elsewhere.example"]))
    assert allowed.get("/api/tasks", headers=origin).headers[
        "access-control-allow-origin"] == "https://elsewhere.example"
    pre = allowed.options("/api/runs", headers=origin | {"Access-Control-Request-Method": "POST"})
    assert "POST" not in pre.headers.get("access-control-allow-methods", "")


def test_pages_carry_a_strict_content_security_policy(client):
    r = client.get("/")
    assert "script-src" not in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


# -- pages ----------------------------------------------------------------------------------
def test_pages_render_tasks_leaderboard_run_and_comparison(client, store):
    home = client.get("/")
    assert home.status_code == 200 and f'href="/tasks/{KEY}"' in home.text
    board = client.get(f"/tasks/{KEY}")
    assert board.status_code == 200
    assert board.text.count("<tr class=") == len(POLICIES)
    assert f"/tasks/{KEY}?by=best_iter" in board.text  # sortable headings
    assert f"/tasks/{KEY}/curves.png" in board.text
    first = rank(summarize(seeded_runs()), "top1")[0].stats.policy
    assert board.text.index(first) < min(board.text.index(p) for p in POLICIES if p != first)
    row = store.find_runs(policy=POLICIES[0], seed=1)[0]
    assert f'href="/runs/{row.id}"' in board.text
    run = client.get(f"/runs/{row.id}")
    assert run.status_code == 200 and "FIX(k0=0.1)" in run.text
    assert run.text.count("<tr><td>") == 20  # one row per curve point
    cmp = client.get("/compare", params={"task": KEY, "p": POLICIES[:2]})
    assert cmp.status_code == 200 and all(p in cmp.text for p in POLICIES[:2])
    for url in (f"/tasks/{KEY}/curves.png", f"/runs/{row.id}/curves.png",
                f"/runs/{row.id}/schedule.png"):
        png = client.get(url)
        assert png.status_code == 200 and png.content[:8] == PNG_MAGIC, url
    png = client.get("/compare/curves.png", params={"task": KEY, "p": POLICIES[:2]})
    assert png.content[:8] == PNG_MAGIC


def test_page_errors_are_4xx_pages(client):
    assert client.get("/tasks/" + "0" * 64).status_code == 404
    assert "Not found" in client.get("/runs/424242").text
    assert client.get(f"/tasks/{KEY}", params={"by": "speed"}).status_code == 400
    assert client.get("/compare", params={"task": KEY, "p": "SIN2(("}).status_code == 400
    assert client.get("/compare", params={"task": "nope"}).status_code == 400


def test_html_is_escaped(client, store, token):
    evil = small_task(dataset="x", model="y", preset=None)
    body = {"runs": [run_body(task=evil, policy="FIX(k0=0.1)", error="<script>alert(1)</script>",
                              status="failed", stop_reason="error")]}
    assert client.post("/api/runs", json=body, headers=auth(token)).status_code == 200
    row = store.find_runs(dataset="x")[0]
    page = client.get(f"/runs/{row.id}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


# -- push and pull over a real server ---------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_push_then_pull_through_a_live_server(backend, tmp_path, monkeypatch):
    other = small_task(dataset="digits", model="digits-cnn", preset="digits-cnn")
    with database(backend, tmp_path) as server_url, Store.open(server_url) as shared, \
            Store.open(f"sqlite:///{tmp_path / 'alice.sqlite'}") as alice, \
            Store.open(f"sqlite:///{tmp_path / 'bob.sqlite'}") as bob:
        token = shared.create_token("alice")
        alice.record_many(seeded_runs() + seeded_runs(task=other, policies=POLICIES[:2]))
        shared.record_many(seeded_runs(policies=POLICIES[:1]))  # the server has 3 already
        with live_server(shared) as url:
            seen = []
            first = push(alice, url, token, progress=lambda a, b: seen.append((a, b)))
            assert first.to_dict() == {"local": 18, "missing": 15, "written": 15, "kept": 0}
            assert seen[-1] == (15, 15)
            again = push(alice, url, token)
            assert again.to_dict() == {"local": 18, "missing": 0, "written": 0, "kept": 0}
            assert shared.counts()["runs"] == 18
            monkeypatch.setattr("lrbench.server.client.PULL_PAGE", 5)  # pages of 5, 5, 2
            report = pull(bob, url, "digits-mlp")
            assert report.written == 12
            assert pull(bob, url, task_key(TASK)).written == 0
            with pytest.raises(ServerError, match="refused the token"):
                push(alice, url, "lrb_wrong")
            with pytest.raises(ServerError, match="404"):
                pull(bob, url, "f" * 64)
        mine = {(r.policy, r.seed): r for r in alice.runs(task=TASK)}
        theirs = bob.runs(task=TASK)
        assert len(theirs) == 12
        for r in theirs:
            a = mine[(r.policy, r.seed)]
            assert [p.top1 for p in r.curve] == [p.top1 for p in a.curve]
            assert r.status == a.status and r.iterations == a.iterations
    with pytest.raises(ServerError, match="cannot reach"):
        pull(bob, "http://127.0.0.1:9", "digits-mlp")


def test_cli_tokens_push_and_pull(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LRBENCH_TOKEN", raising=False)
    shared_url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    local_url = f"sqlite:///{tmp_path / 'local.sqlite'}"
    with Store.open(local_url) as local:
        local.record_many(seeded_runs())

    def cli(*args):
        with pytest.raises(SystemExit) as e:
            main(list(args))
        out = capsys.readouterr()
        return e.value.code, out.out, out.err

    code, out, err = cli("server", "token", "create", "ci-bot", "--db", shared_url)
    token = out.strip()
    assert code == 0 and token.startswith("lrb_") and "shown only now" in err
    code, out, _ = cli("server", "token", "list", "--db", shared_url, "--json")
    listed = json.loads(out)
    assert [t["name"] for t in listed] == ["ci-bot"] and token not in out
    code, _, err = cli("server", "token", "create", "ci-bot", "--db", shared_url)
    assert code == 2 and "already exists" in err and "Traceback" not in err
    with Store.open(shared_url) as shared, live_server(shared) as url:
        code, _, err = cli("push", "--server", url, "--db", local_url)
        assert code == 2 and "needs an API token" in err
        monkeypatch.setenv("LRBENCH_TOKEN", token)
        code, out, _ = cli("push", "--server", url, "--db", local_url, "--json")
        assert code == 0 and json.loads(out)["written"] == 12
        code, _, err = cli("push", "--server", url, "--db", local_url, "--token", "lrb_bad")
        assert code == 2 and "refused the token" in err and "Traceback" not in err
        fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        code, out, _ = cli("pull", "--server", url, "--task", "digits-mlp", "--db", fresh,
                           "--json")
        assert code == 0 and json.loads(out) == {"written": 12, "kept": 0}
        code, _, err = cli("pull", "--server", "ftp://x", "--task", "digits-mlp", "--db", fresh)
        assert code == 2 and "http://" in err
    code, _, err = cli("server", "token", "revoke", "ci-bot", "--db", shared_url)
    assert code == 0 and "revoked" in err
    code, _, err = cli("server", "token", "revoke", "nobody", "--db", shared_url)
    assert code == 2 and "no token named" in err


def test_serve_rejects_bad_options(capsys):
    for args in (["serve", "--port", "0"], ["serve", "--port", "70000"],
                 ["serve", "--db", "mysql://x/y"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2, args
        assert "Traceback" not in capsys.readouterr().err


def test_curve_values_survive_the_round_trip_with_undefined_metrics(client, store, token):
    body = run_body(seed=11)
    body["curve"][3]["ac"] = None
    r = client.post("/api/runs", json={"runs": [body]}, headers=auth(token))
    assert r.status_code == 200
    row = store.find_runs(policy="COS(k0=0.001, k1=0.1, l=250)", seed=11)[0]
    assert math.isnan(store.load(row.id).curve[3].ac)


def test_leaderboards_are_cached_briefly_and_forgotten_on_submission(store, token):
    cached = TestClient(create_app(store, cache_seconds=60))
    fresh = TestClient(create_app(store, cache_seconds=0))
    url = f"/api/tasks/{KEY}/leaderboard"
    before = cached.get(url).json()["rows"]
    store.record(make_result(TASK, "COS(k0=0.001, k1=0.1, l=250)", 0))  # behind the server
    assert cached.get(url).json()["rows"] == before  # within the cache interval: as it was
    assert len(fresh.get(url).json()["rows"]) == len(POLICIES) + 1
    body = {"runs": [run_body(policy="COS(k0=0.001, k1=0.1, l=250)", seed=1)]}
    assert cached.post("/api/runs", json=body, headers=auth(token)).json()["written"] == 1
    rows = cached.get(url).json()["rows"]
    assert len(rows) == len(POLICIES) + 1  # the submission cleared the task's rankings
    cos = next(r for r in rows if r["policy"].startswith("COS"))
    assert cos["n_runs"] == 2
    with pytest.raises(ValueError, match="cache_seconds"):
        create_app(store, cache_seconds=-1)


def test_the_token_table_migrates_down_and_up(tmp_path):
    from sqlalchemy import inspect

    url = f"sqlite:///{tmp_path / 'migrate.sqlite'}"
    with Store.open(url) as store:
        store.record_many(seeded_runs(policies=POLICIES[:1]))
        store.create_token("old")
        assert store.downgrade("0001")[1] == "0001"
        assert "api_tokens" not in inspect(store.engine).get_table_names()
        assert store.counts()["runs"] == 3  # the results are untouched
        store.upgrade()
        assert store.list_tokens() == []  # the tokens went with their table
        assert store.verify_token(store.create_token("new")) == "new"


@pytest.mark.parametrize("module", ["lrbench.server.app", "lrbench.store.tokens",
                                    "lrbench.store.catalog"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_app_from_env_serves_the_database_named_in_the_environment(tmp_path, monkeypatch):
    from lrbench.server.app import app_from_env

    url = f"sqlite:///{tmp_path / 'env.sqlite'}"
    with Store.open(url) as s:
        s.record_many(seeded_runs(policies=POLICIES[:2]))
    monkeypatch.setenv("LRBENCH_DB", url)
    monkeypatch.setenv("LRBENCH_SERVER_CORS", "https://a.example, https://b.example")
    client = TestClient(app_from_env())
    assert client.get("/api/tasks").json()[0]["runs"] == 6
    got = client.get("/api/tasks", headers={"Origin": "https://b.example"})
    assert got.headers["access-control-allow-origin"] == "https://b.example"


def test_a_run_that_diverged_before_any_evaluation_counts_as_zero_as_in_ranking(store):
    """The paper's rule (lrbench.ranking): no finite top-1, no usable model: 0, not missing."""
    bad = "COS(k0=0.01, k1=0.06, l=400)"
    runs = [make_result(TASK, bad, 0, curve=(), status="diverged", iterations=25),
            make_result(TASK, bad, 1), make_result(TASK, bad, 2)]
    store.record_many(runs)
    board = TestClient(create_app(store)).get(f"/api/tasks/{KEY}/leaderboard").json()["rows"]
    row = next(r for r in board if r["policy"] == bad)
    want = summarize(runs)[0]
    assert row["top1_pct"] == pytest.approx(100 * want.top1_mean)
    assert row["top1_pct"] < 100 * min(r.summary()["top1"] for r in runs[1:]) - 20
    assert row["n_diverged"] == 1 and row["n_runs"] == 3
    assert board[-1]["policy"] == bad  # ranked last, below every policy that never diverged
