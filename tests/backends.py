"""The database backends the store tests run on: SQLite always, PostgreSQL when
``LRBENCH_TEST_POSTGRES_URL`` names a server (else those cases skip, saying why)."""

from __future__ import annotations

import pytest

from lrbench.store.testing import postgres_server_url

PG_URL = postgres_server_url()
needs_pg = pytest.mark.skipif(PG_URL is None, reason="LRBENCH_TEST_POSTGRES_URL is not set")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, needs_pg])]
