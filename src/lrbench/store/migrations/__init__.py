"""Alembic migrations of the LR database (applied by ``Store.open`` and ``lrbench db upgrade``)."""
