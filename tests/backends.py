"""The database backends the store tests run on: SQLite always, PostgreSQL when
``LRBENCH_TEST_POSTGRES_URL`` names a server (else those cases skip, saying why)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lrbench.store.testing import postgres_server_url, temporary_postgres_database

PG_URL = postgres_server_url()
needs_pg = pytest.mark.skipif(PG_URL is None, reason="LRBENCH_TEST_POSTGRES_URL is not set")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, needs_pg])]


@contextmanager
def database(backend: str, tmp_path: Path, name: str = "lrbench.sqlite") -> Iterator[str]:
    """The URL of a fresh database: an SQLite file in ``tmp_path``, or a scratch PostgreSQL
    database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / name}"
    else:
        with temporary_postgres_database(PG_URL) as url:
            yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: Any, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL on each backend (import the fixture into a test module to use it)."""
    with database(request.param, tmp_path) as url:
        yield url
