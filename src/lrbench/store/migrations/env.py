"""Alembic environment of the LR database.

The store runs migrations itself (``Store.open`` / ``lrbench db upgrade``), passing its own
connection, already inside a transaction that holds the migration lock, in
``config.attributes["connection"]``. Running ``alembic`` by hand also works, with
``sqlalchemy.url`` set in the Alembic config (and ``--sql`` for offline SQL scripts).
"""

from __future__ import annotations

from alembic import context

from lrbench.store.schema import metadata

try:
    config = context.config
except AttributeError:  # imported outside Alembic (e.g. by a doctest collector): nothing to run
    config = None


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from lrbench.store.urls import create_store_engine, normalize_url

    engine = create_store_engine(normalize_url(config.get_main_option("sqlalchemy.url")))
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if config is None:
    pass
elif context.is_offline_mode():
    run_offline()
else:
    run_online()
