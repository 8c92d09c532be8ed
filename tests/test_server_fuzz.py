"""Fuzzing the API from its own OpenAPI schema (schemathesis): valid and invalid requests to every
operation, with a valid token, on SQLite and on the real PostgreSQL server. No request may get a
5xx: bad input is the client's error, and nothing it sends may reach the database unchecked
(PostgreSQL, unlike SQLite, rejects NUL characters and numbers that overflow a column)."""

from __future__ import annotations

import re
from contextlib import ExitStack

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from backends import BACKENDS, PG_URL
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from lrbench.server import create_app
from lrbench.server.schemas import KEY_PATTERN
from lrbench.store import Store, task_key
from lrbench.store.testing import (
    make_result,
    small_task,
    temporary_postgres_database,
)

EXAMPLES = 25
TASK = small_task(preset="digits-mlp")


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory):
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite'}"
        else:
            url = stack.enter_context(temporary_postgres_database(PG_URL))
        store = stack.enter_context(Store.open(url))
        store.record_many([make_result(TASK, p, s) for p in ("FIX(k0=0.1)", "SIN2(k0=0.01, "
                           "k1=0.1, l=200)") for s in range(3)])
        yield store, store.create_token("fuzzer")


def _operations():
    """Every API operation, read from the app's own OpenAPI schema (no database needed)."""
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app("sqlite://"))
    return [(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())]


OPERATIONS = _operations()
MODES = list(schemathesis.GenerationMode)  # valid and invalid requests


@pytest.fixture(scope="module")
def api(served):
    store, token = served
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app(store))
    ops = {(op.method.upper(), op.path): op
           for op in (r.ok() for r in schema.get_all_operations())}
    return ops, token


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_request_gets_a_server_error(api, method, path, mode):
    ops, token = api
    operation = ops[(method, path)]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        key = (case.path_parameters or {}).get("key")
        if isinstance(key, str) and re.fullmatch(KEY_PATTERN, key):
            case.path_parameters["key"] = task_key(TASK)  # a valid key: the stored task's
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, (case.method, case.path, case.path_parameters,
                                            case.query, response.status_code,
                                            response.text[:300])

    try:
        check()
    except Unsatisfiable:  # e.g. GET /api/health takes nothing, so nothing can be invalid
        pytest.skip(f"{method} {path} has no input that could be invalid")
