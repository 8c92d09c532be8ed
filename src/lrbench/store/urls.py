"""Database URLs: which one to use, how to show it, and the engine behind it.

One URL picks the backend. ``--db URL`` beats the environment variable ``LRBENCH_DB``, which
beats the default: an SQLite file in the user's data directory.

>>> mask_url("postgresql+psycopg://ana:s3cret@db.example.org:5432/lrbench")
'postgresql+psycopg://ana:***@db.example.org:5432/lrbench'
>>> normalize_url("postgres://ana@db.example.org/lrbench")
'postgresql+psycopg://ana@db.example.org/lrbench'
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

ENV_VAR = "LRBENCH_DB"
SQLITE_BUSY_TIMEOUT_S = 60.0
PG_CONNECT_TIMEOUT_S = 10
BACKENDS = ("sqlite", "postgresql")
_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


class StoreError(ValueError):
    """The LR database cannot do what was asked: bad URL, unreachable server, bad schema.

    A ValueError, so that the CLI prints it as one line and exits with code 2. Its message
    names the database URL with the password masked.
    """


def default_url() -> str:
    """The SQLite file in the user's data directory (created on first open)."""
    import platformdirs

    path = Path(platformdirs.user_data_dir("lrbench")) / "lrbench.sqlite"
    return f"sqlite:///{path}"


def resolve_url(url: str | None = None) -> str:
    """The URL to use: ``url`` if given, else ``$LRBENCH_DB``, else :func:`default_url`."""
    if url is not None and str(url).strip():
        return normalize_url(str(url))
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return normalize_url(env)
    return default_url()


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***`` (works on URLs that do not parse, too)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    text = str(url)
    try:
        return make_url(text).render_as_string(hide_password=True)
    except Exception:
        # user:password@ -> user:***@, without trusting the rest of the string to parse.
        return re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", text)


def normalize_url(url: str) -> str:
    """Check a database URL and give it in the form the store uses.

    ``postgres://`` and ``postgresql://`` get the psycopg (3) driver; a bare path ending in
    ``.sqlite``, ``.sqlite3`` or ``.db`` means that SQLite file. Anything else is a StoreError
    naming the (masked) URL.
    """
    text = url.strip()
    if "://" not in text:
        if text.lower().endswith(_SQLITE_SUFFIXES):
            return f"sqlite:///{Path(text).expanduser()}"
        raise StoreError(
            f"not a database URL: {mask_url(text)!r}; expected sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    try:
        parsed = make_url(text)
    except Exception as e:
        raise StoreError(f"malformed database URL {mask_url(text)!r}: {_first_line(e)}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend not in BACKENDS:
        raise StoreError(
            f"unsupported database backend {backend!r} in {mask_url(parsed)!r}; "
            "LRBench stores results in SQLite (sqlite:///PATH) or PostgreSQL "
            "(postgresql+psycopg://...)"
        )
    if backend == "postgresql":
        parsed = parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
        if not parsed.database:
            raise StoreError(f"database URL {mask_url(parsed)!r} names no database")
    return parsed.render_as_string(hide_password=False)


def backend_of(url: str) -> str:
    """'sqlite' or 'postgresql'."""
    return make_url(url).get_backend_name()


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_store_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine set up for concurrent use by several processes.

    SQLite: WAL journal, a busy timeout, foreign keys on, and transactions begun by us
    (``BEGIN IMMEDIATE`` for writes, so that two writers queue on the busy timeout instead of
    failing on a lock upgrade). PostgreSQL: psycopg 3, pre-ping, a connect timeout.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    if parsed.drivername == "postgresql+psycopg":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                f"cannot open {mask_url(parsed)}: PostgreSQL needs psycopg 3: "
                "pip install 'lrbench[postgres]'"
            ) from None
    connect_args: dict[str, Any] = {"application_name": "lrbench"}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(
        parsed, echo=echo, pool_pre_ping=True, pool_size=2, max_overflow=4,
        connect_args=connect_args,
    )


def _sqlite_engine(parsed: URL, *, echo: bool) -> Engine:
    memory = not parsed.database or parsed.database == ":memory:"
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    }
    if memory:
        kwargs["poolclass"] = StaticPool  # one connection, or each would see its own database
    engine = create_engine(parsed, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" listener below starts transactions
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA foreign_keys = ON")
            if not memory:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()
        dbapi_conn.create_aggregate("stddev_pop", 1, _StdDevPop)
        dbapi_conn.create_function("lrbench_sqrt", 1, _sqrt, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("lrbench_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _sqrt(x: Any) -> float | None:
    return None if x is None else math.sqrt(max(float(x), 0.0))


class _StdDevPop:
    """stddev_pop() for SQLite (PostgreSQL has it built in): Welford's running variance."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def step(self, value: Any) -> None:
        if value is None:
            return
        x = float(value)
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def finalize(self) -> float | None:
        if self.n == 0:
            return None
        var = self.m2 / self.n
        return math.sqrt(var) if var > 0 else 0.0


def _first_line(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip() or type(orig).__name__
    return text.splitlines()[0].strip()
