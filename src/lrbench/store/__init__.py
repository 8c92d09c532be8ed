"""The LR database (SPEC section 4): every run's results, in SQLite or PostgreSQL.

>>> from lrbench.store import Store
>>> with Store.open("sqlite://") as store:          # in memory
...     store.counts()["runs"]
0

``Store.open(url)`` picks the backend from the URL (``sqlite:///PATH`` or
``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``); without one it uses ``$LRBENCH_DB``, then an
SQLite file in the user's data directory. The schema is migrated to the newest revision on open.
No deep-learning framework is imported here.
"""

from lrbench.store.bundle import BUNDLE_FORMAT, BUNDLE_VERSION
from lrbench.store.core import (
    AGG_METRICS,
    LOWER_IS_BETTER,
    RESULT_STATUSES,
    Claim,
    ImportReport,
    PolicyStats,
    RunRow,
    Store,
    canonical_policy,
    task_key,
)
from lrbench.store.schema import FINISHED_STATUSES, RUN_STATUSES
from lrbench.store.urls import (
    ENV_VAR,
    StoreError,
    backend_of,
    default_url,
    mask_url,
    normalize_url,
    resolve_url,
)


def open_store(url: str | None = None, *, upgrade: bool = True) -> Store:
    """``Store.open(url)``: the database at ``url``, ``$LRBENCH_DB`` or the default file."""
    return Store.open(url, upgrade=upgrade)


__all__ = [
    "AGG_METRICS", "BUNDLE_FORMAT", "BUNDLE_VERSION", "ENV_VAR", "FINISHED_STATUSES",
    "LOWER_IS_BETTER", "RESULT_STATUSES", "RUN_STATUSES", "Claim", "ImportReport",
    "PolicyStats", "RunRow", "Store", "StoreError", "backend_of", "canonical_policy",
    "default_url", "mask_url", "normalize_url", "open_store", "resolve_url", "task_key",
]
