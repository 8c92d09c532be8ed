"""The LR database (SPEC section 4): every run's results, keyed by task, policy and seed.

>>> from lrbench.store import Store
>>> store = Store.open("sqlite://")   # in memory; Store.open() uses $LRBENCH_DB or the default
>>> store.backend, store.revision() == store.head_revision()
('sqlite', True)
>>> store.close()

Writing is safe from many processes at once: each write is one transaction (SQLite: WAL,
``BEGIN IMMEDIATE`` with a busy timeout and retries; PostgreSQL: ``INSERT ... ON CONFLICT``,
retried on deadlock). A run is unique by (task, policy, seed): recording it again updates it
and replaces its curve in the same transaction, so a run is never marked done without its curve.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lrbench.policies import Policy, parse
from lrbench.results import CurvePoint, RunResult
from lrbench.store import schema as S
from lrbench.store.catalog import CatalogMixin
from lrbench.store.tokens import TokenMixin
from lrbench.store.urls import (
    StoreError,
    _first_line,
    backend_of,
    create_store_engine,
    default_url,
    mask_url,
    resolve_url,
    sqlite_path,
)
from lrbench.tasks import Task

T = TypeVar("T")

#: Metrics the per-policy aggregates give a mean and a std of.
AGG_METRICS = ("top1", "top5", "ac", "cd", "cdac", "ld", "best_iter", "iterations", "wall_time")
#: Where a smaller value ranks higher on the leaderboard.
LOWER_IS_BETTER = frozenset({"cd", "cdac", "ld", "best_iter", "iterations", "wall_time"})
#: What counts as an outcome in aggregates and the leaderboard (a failed run is an error).
RESULT_STATUSES = ("done", "diverged")

_MIGRATION_LOCK = 0x4C52_424E_4348  # pg_advisory_xact_lock key: "LRBNCH"
_RETRY_SECONDS = 120.0
_BATCH = 200


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _iso(dt: datetime | None) -> str | None:
    dt = _aware(dt)
    return dt.isoformat() if dt else None


def _parse_iso(value: str | None) -> datetime | None:
    return _aware(datetime.fromisoformat(value)) if value else None


def _num(v: Any) -> float | None:
    """A float for the database: NaN (and None) become NULL; +-inf is kept."""
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else x


def _num_out(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def task_key(task: Task) -> str:
    """The identity of a task as a 64-hex-digit key (sha256 of its canonical JSON)."""
    return hashlib.sha256(_json(task.identity()).encode()).hexdigest()


def canonical_policy(policy: str | Policy) -> Policy:
    """A Policy from notation text (a ValueError says what is wrong) or a Policy as is."""
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, str):
        raise ValueError(f"expected a policy or its notation, got {policy!r}")
    return parse(policy)


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes, Policy, Task)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def dataset_metadata(info: Any) -> dict[str, Any]:
    """Dataset metadata (a mapping, a dataclass, a pydantic model) as a plain dict."""
    if info is None:
        return {}
    if isinstance(info, Mapping):
        return dict(info)
    if hasattr(info, "model_dump"):
        return dict(info.model_dump())
    if is_dataclass(info) and not isinstance(info, type):
        return asdict(info)
    if hasattr(info, "to_dict"):
        return dict(info.to_dict())
    if hasattr(info, "__dict__"):
        return {k: v for k, v in vars(info).items() if not k.startswith("_")}
    raise ValueError(f"dataset metadata must be a mapping, got {type(info).__name__}")


def _lookup_dataset_info(name: str) -> dict[str, Any]:
    """Best effort: ``lrbench.data.dataset_info(name)`` when that module exists and knows it."""
    try:
        from lrbench.data import dataset_info  # type: ignore[attr-defined]
    except Exception:
        return {}
    try:
        return dataset_metadata(dataset_info(name))
    except Exception:
        return {}


def _opt_int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


# -- records handed out ---------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """A run handed to one worker: train it, then ``store.record(result, claim=claim)``."""

    run_id: int
    task: Task
    policy: str
    seed: int
    owner: str
    token: str


@dataclass(frozen=True)
class RunRow:
    """One run as a flat row: its keys, status, claim, timestamps and summary metrics.

    ``store.load(row.id)`` gives the full RunResult with its curve (finished runs only).
    """

    id: int
    task_id: int
    framework: str
    dataset: str
    model: str
    n_classes: int | None
    batch_size: int
    optimizer: str
    max_iters: int
    eval_every: int
    policy: str
    function: str
    n_params: int
    seed: int
    status: str
    stop_reason: str | None
    iterations: int | None
    best_iter: int | None
    top1: float | None
    top5: float | None
    ac: float | None
    cd: float | None
    cdac: float | None
    ld: float | None
    test_loss: float | None
    train_loss: float | None
    final_top1: float | None
    wall_time: float | None
    train_time: float | None
    model_params: int | None
    n_points: int
    host: str | None
    owner: str | None
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: timestamps as ISO 8601 (UTC), non-finite numbers as None."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, datetime):
                v = _iso(v)
            elif isinstance(v, float) and not math.isfinite(v):
                v = None
            out[f.name] = v
        return out


RUN_ROW_FIELDS = tuple(f.name for f in fields(RunRow))


@dataclass(frozen=True)
class PolicyStats:
    """Aggregates of one policy's runs on one task: mean and population std over seeds."""

    policy: str
    function: str
    n_params: int
    runs: int
    diverged: int
    mean: dict[str, float | None]
    std: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "policy": self.policy, "function": self.function, "n_params": self.n_params,
            "runs": self.runs, "diverged": self.diverged,
        }
        for m in AGG_METRICS:
            out[f"{m}_mean"] = self.mean.get(m)
            out[f"{m}_std"] = self.std.get(m)
        return out


@dataclass
class ImportReport:
    """What ``import_bundle`` did: runs written, runs kept as they were."""

    written: int = 0
    skipped: int = 0
    datasets: int = 0

    def __str__(self) -> str:
        return f"{self.written} runs written, {self.skipped} already present"


# -- the transaction context --------------------------------------------------------------
class _Tx:
    """A connection inside one transaction, plus the ids it created (cached after commit)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.tasks: dict[str, int] = {}
        self.policies: dict[str, int] = {}
        self.datasets: dict[str, int] = {}


def _retryable(e: BaseException) -> bool:
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    orig = getattr(e, "orig", None)
    msg = str(orig or e).lower()
    if "database is locked" in msg or "database table is locked" in msg or "busy" in msg:
        return True
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate in ("40P01", "40001", "55P03")  # deadlock, serialization, lock not available


_CURVE_ALL = ("run_id", "seq", *S.CURVE_COLUMNS)
_PG_INSERT_CURVE = text(
    f"INSERT INTO curve_points ({', '.join(_CURVE_ALL)}) SELECT * FROM unnest("
    + ", ".join(
        f"CAST(:{c} AS {'integer' if c in ('run_id', 'seq', 'iteration') else 'double precision'}"
        "[])" for c in _CURVE_ALL)
    + ")"
)


class Store(CatalogMixin, TokenMixin):
    """The LR database behind one URL. Open it with :meth:`Store.open`."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self._url = url
        self.backend = backend_of(url)
        self._task_ids: dict[str, int] = {}
        self._policy_ids: dict[str, int] = {}
        self._dataset_ids: dict[str, int] = {}
        self._canon: dict[str, str] = {}
        self._statements: dict[Any, Any] = {}

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, *, upgrade: bool = True, check: bool = True,
             echo: bool = False) -> Store:
        """Open the database at ``url`` (else ``$LRBENCH_DB``, else the default SQLite file).

        With ``upgrade`` (the default) the schema is migrated to the newest revision first, under
        a lock, so several processes may open the same new database at once. Raises StoreError
        (the URL masked) when the URL is malformed or the database cannot be reached. Without
        ``upgrade``, a schema that is not the newest is an error unless ``check`` is False (for
        tools that inspect or migrate the database themselves).
        """
        resolved = resolve_url(url)
        path = sqlite_path(resolved) if backend_of(resolved) == "sqlite" else None
        if path is not None:
            if resolved == default_url():
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.parent.is_dir():
                raise StoreError(
                    f"cannot open {mask_url(resolved)}: directory {str(path.parent)!r} "
                    "does not exist"
                )
        try:
            engine = create_store_engine(resolved, echo=echo)
        except StoreError:
            raise
        except Exception as e:
            raise StoreError(f"cannot open {mask_url(resolved)}: {_first_line(e)}") from None
        store = cls(engine, resolved)
        try:
            store._transaction(lambda tx: tx.conn.execute(text("SELECT 1")).scalar(), write=False,
                               doing="cannot connect to")
            if upgrade:
                store.upgrade()
            elif check:
                store._check_revision()
        except BaseException:
            engine.dispose()
            raise
        return store

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return mask_url(self._url)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.url}>"

    # -- transactions ---------------------------------------------------------------------
    def _wrap(self, e: BaseException, doing: str = "database error on") -> StoreError:
        message = _first_line(e)
        password = self._engine.url.password
        if password:
            message = message.replace(str(password), "***")
        return StoreError(f"{doing} {self.url}: {message}")

    def _transaction(self, fn: Callable[[_Tx], T], *, write: bool = True,
                     doing: str = "database error on") -> T:
        """Run ``fn`` in one transaction; retry it whole on lock timeouts and deadlocks."""
        delay = 0.02
        deadline = time.monotonic() + _RETRY_SECONDS
        while True:
            try:
                with self._engine.connect() as conn:
                    if write:
                        conn.execution_options(lrbench_write=True)
                    tx = _Tx(conn)
                    with conn.begin():
                        out = fn(tx)
                self._task_ids.update(tx.tasks)
                self._policy_ids.update(tx.policies)
                self._dataset_ids.update(tx.datasets)
                return out
            except SQLAlchemyError as e:
                if _retryable(e) and time.monotonic() < deadline:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 1.0)
                    continue
                raise self._wrap(e, doing) from e

    # -- migrations -----------------------------------------------------------------------
    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        return cfg

    def head_revision(self) -> str:
        """The newest schema revision this lrbench knows."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def revision(self) -> str | None:
        """The schema revision of the database (None: empty, never migrated)."""
        from alembic.runtime.migration import MigrationContext

        return self._transaction(
            lambda tx: MigrationContext.configure(tx.conn).get_current_revision(), write=False
        )

    def _check_revision(self) -> None:
        current, head = self.revision(), self.head_revision()
        if current != head:
            self._known_revision(current)
            raise StoreError(
                f"the database {self.url} has schema revision {current or 'none'}, this lrbench "
                f"needs {head}: run `lrbench db upgrade --db URL`"
            )

    def _known_revision(self, revision: str | None) -> None:
        from alembic.script import ScriptDirectory

        if revision is None:
            return
        try:
            ScriptDirectory.from_config(self._alembic_config()).get_revision(revision)
        except Exception:
            raise StoreError(
                f"the database {self.url} has schema revision {revision!r}, newer than this "
                f"lrbench knows (newest: {self.head_revision()}); upgrade lrbench"
            ) from None

    def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Migrate the schema up to ``revision``; returns (revision before, revision after)."""
        return self._migrate("upgrade", revision)

    def downgrade(self, revision: str) -> tuple[str | None, str | None]:
        """Migrate the schema down to ``revision`` ('base': drop every table)."""
        return self._migrate("downgrade", revision)

    def _migrate(self, direction: str, revision: str) -> tuple[str | None, str | None]:
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        before = self.revision()
        self._known_revision(before)
        if direction == "upgrade" and revision == "head" and before == self.head_revision():
            return before, before  # the common case: nothing to do, no lock taken
        cfg = self._alembic_config()

        def run(tx: _Tx) -> str | None:
            if self.backend == "postgresql":
                tx.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg.attributes["connection"] = tx.conn
            getattr(command, direction)(cfg, revision)
            return MigrationContext.configure(tx.conn).get_current_revision()

        try:
            after = self._transaction(run, doing="cannot migrate")
        except StoreError:
            raise
        except Exception as e:  # alembic's own errors (unknown revision, ...)
            raise StoreError(f"cannot migrate {self.url} to {revision!r}: {_first_line(e)}") from e
        self._task_ids.clear()
        self._policy_ids.clear()
        self._dataset_ids.clear()
        return before, after

    # -- information ----------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        """Rows per table, and runs per status."""

        def q(tx: _Tx) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, table in (("datasets", S.datasets), ("tasks", S.tasks),
                                ("policies", S.policies), ("runs", S.runs),
                                ("curve_points", S.curve_points)):
                out[name] = tx.conn.execute(select(func.count()).select_from(table)).scalar_one()
            by_status = dict(tx.conn.execute(
                select(S.runs.c.status, func.count()).group_by(S.runs.c.status)).all())
            out["runs_by_status"] = {s: int(by_status.get(s, 0)) for s in S.RUN_STATUSES}
            return out

        return self._transaction(q, write=False)

    def info(self) -> dict[str, Any]:
        """URL (masked), backend, server version, schema revision and head, counts.

        ``counts`` is None for an empty database (no schema yet).
        """
        if self.backend == "sqlite":
            version = self._transaction(
                lambda tx: tx.conn.execute(text("SELECT sqlite_version()")).scalar(), write=False)
            path = sqlite_path(self._url)
        else:
            version = self._transaction(
                lambda tx: tx.conn.execute(text("SHOW server_version")).scalar(), write=False)
            path = None
        revision = self.revision()
        return {
            "url": self.url,
            "backend": self.backend,
            "server_version": version,
            "path": str(path) if path else None,
            "revision": revision,
            "head": self.head_revision(),
            "counts": self.counts() if revision is not None else None,
        }

    # -- keys: datasets, tasks, policies --------------------------------------------------
    def _insert(self, table: Any) -> Any:
        if self.backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def register_dataset(self, name: str, info: Any = None) -> None:
        """Record a dataset's metadata (n_classes, input_shape, n_train, n_test, and any more).

        ``info`` is a plain mapping (or a dataclass / pydantic object); unknown values stay
        NULL and are filled in when a later call knows them. The tasks on this dataset get its
        number of classes (their task type).
        """
        meta = dataset_metadata(info)

        def run(tx: _Tx) -> None:
            ds_id = self._dataset_id(tx, name, meta)
            self._fill_dataset(tx, ds_id, meta)

        self._transaction(run)

    def _dataset_id(self, tx: _Tx, name: str, meta: Mapping[str, Any] | None) -> int:
        if name in self._dataset_ids:
            return self._dataset_ids[name]
        if name in tx.datasets:
            return tx.datasets[name]
        if not meta:
            meta = _lookup_dataset_info(name)
        row = self._dataset_values(meta)
        tx.conn.execute(self._insert(S.datasets).values(name=name, **row)
                        .on_conflict_do_nothing(index_elements=["name"]))
        ds_id = tx.conn.execute(
            select(S.datasets.c.id).where(S.datasets.c.name == name)).scalar_one()
        if meta:
            self._fill_dataset(tx, ds_id, meta)
        tx.datasets[name] = ds_id
        return ds_id

    @staticmethod
    def _dataset_values(meta: Mapping[str, Any] | None) -> dict[str, Any]:
        meta = dict(meta or {})
        shape = meta.get("input_shape")
        return {
            "n_classes": _opt_int(meta.get("n_classes")),
            "input_shape": _json(list(shape)) if shape is not None else None,
            "n_train": _opt_int(meta.get("n_train")),
            "n_test": _opt_int(meta.get("n_test")),
            "info": _json(meta) if meta else None,
        }

    def _fill_dataset(self, tx: _Tx, ds_id: int, meta: Mapping[str, Any]) -> None:
        if not meta:
            return
        values = self._dataset_values(meta)
        d = S.datasets.c
        tx.conn.execute(update(S.datasets).where(d.id == ds_id).values(
            {k: func.coalesce(values[k], d[k]) for k in values if values[k] is not None}))
        n_classes = tx.conn.execute(select(d.n_classes).where(d.id == ds_id)).scalar()
        if n_classes is not None:
            tx.conn.execute(update(S.tasks).where(S.tasks.c.dataset_id == ds_id,
                                                  S.tasks.c.n_classes.is_(None))
                            .values(n_classes=n_classes))

    def _task_id(self, tx: _Tx, task: Task, dataset_info: Any = None) -> int:
        key = task_key(task)
        if key in self._task_ids:
            return self._task_ids[key]
        if key in tx.tasks:
            return tx.tasks[key]
        ds_id = self._dataset_id(tx, task.dataset, dataset_metadata(dataset_info))
        n_classes = tx.conn.execute(
            select(S.datasets.c.n_classes).where(S.datasets.c.id == ds_id)).scalar()
        tx.conn.execute(self._insert(S.tasks).values(
            key=key, framework=task.framework, dataset_id=ds_id, dataset=task.dataset,
            model=task.model, n_classes=n_classes, batch_size=task.batch_size,
            optimizer=task.optimizer, momentum=task.momentum, weight_decay=task.weight_decay,
            init=task.init, max_iters=task.max_iters, eval_every=task.eval_every,
            settings=_json(task.identity()), preset=task.preset, created_at=_now(),
        ).on_conflict_do_nothing(index_elements=["key"]))
        task_id = tx.conn.execute(select(S.tasks.c.id).where(S.tasks.c.key == key)).scalar_one()
        tx.tasks[key] = task_id
        return task_id

    def _find_task_id(self, task: Task) -> int | None:
        key = task_key(task)
        if key in self._task_ids:
            return self._task_ids[key]
        return self._transaction(
            lambda tx: tx.conn.execute(select(S.tasks.c.id).where(S.tasks.c.key == key)).scalar(),
            write=False)

    def _notation(self, policy: str | Policy) -> str:
        if isinstance(policy, str) and policy in self._canon:
            return self._canon[policy]
        notation = str(canonical_policy(policy))
        if isinstance(policy, str):
            self._canon[policy] = notation
        return notation

    def _policy_id(self, tx: _Tx, policy: str | Policy) -> int:
        notation = self._notation(policy)
        if notation in self._policy_ids:
            return self._policy_ids[notation]
        if notation in tx.policies:
            return tx.policies[notation]
        p = canonical_policy(notation)
        tx.conn.execute(self._insert(S.policies).values(
            notation=notation, function=p.name, kind=p.kind, params=_json(p.to_dict()),
            n_params=p.n_params, created_at=_now(),
        ).on_conflict_do_nothing(index_elements=["notation"]))
        pid = tx.conn.execute(
            select(S.policies.c.id).where(S.policies.c.notation == notation)).scalar_one()
        tx.policies[notation] = pid
        return pid

    # -- planning and claiming ------------------------------------------------------------
    def plan(self, task: Task, policies: Iterable[str | Policy], seeds: Iterable[int], *,
             dataset_info: Any = None) -> int:
        """Create a pending run for each (policy, seed) not in the database yet.

        Returns how many were created; runs already there, whatever their status, are kept.
        """
        notations = sorted({self._notation(p) for p in policies})
        seed_list = sorted({int(s) for s in seeds})

        def run(tx: _Tx) -> int:
            task_id = self._task_id(tx, task, dataset_info)
            now = _now()
            rows = [dict(task_id=task_id, policy_id=self._policy_id(tx, n), seed=s,
                         status="pending", created_at=now, updated_at=now)
                    for n in notations for s in seed_list]
            if not rows:
                return 0
            stmt = (self._insert(S.runs)
                    .on_conflict_do_nothing(index_elements=["task_id", "policy_id", "seed"])
                    .returning(S.runs.c.id))
            created = 0
            for i in range(0, len(rows), 1000):
                created += len(tx.conn.execute(stmt, rows[i:i + 1000]).all())
            return created

        return self._transaction(run)

    def claim(self, owner: str | None = None, *, task: Task | None = None,
              stale_after: float | None = None,
              policies: Sequence[str | Policy] | None = None,
              seeds: Sequence[int] | None = None) -> Claim | None:
        """Atomically take one pending run (oldest first) and mark it running under ``owner``.

        With ``stale_after`` (seconds), a run marked running whose last heartbeat is older is
        taken over too (its worker is presumed dead). ``task``, ``policies`` and ``seeds`` limit
        the runs considered (a benchmark claims only its own). Returns None when there is
        nothing to do.
        Two workers never get the same run: PostgreSQL locks the candidate row
        (``FOR UPDATE SKIP LOCKED``); SQLite serializes writers and the ``UPDATE`` is
        conditional on the status it read, checked by its row count.
        """
        owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        task_id = None
        if task is not None:
            task_id = self._find_task_id(task)
            if task_id is None:
                return None
        r = S.runs.c
        seed_list = None if seeds is None else [int(x) for x in seeds]
        policy_ids = None
        if policies is not None:
            notations = [self._notation(x) for x in policies]
            policy_ids = self._transaction(lambda tx: list(tx.conn.execute(
                select(S.policies.c.id).where(S.policies.c.notation.in_(notations))).scalars()),
                write=False)

        def run(tx: _Tx) -> Claim | None:
            now = _now()
            takeable = [r.status == "pending"]
            if stale_after is not None:
                cutoff = now - timedelta(seconds=float(stale_after))
                takeable.append(and_(r.status == "running",
                                     or_(r.heartbeat_at.is_(None), r.heartbeat_at < cutoff)))
            for condition in takeable:
                for _ in range(100):
                    q = select(r.id).where(condition)
                    if task_id is not None:
                        q = q.where(r.task_id == task_id)
                    if policy_ids is not None:
                        q = q.where(r.policy_id.in_(policy_ids))
                    if seed_list is not None:
                        q = q.where(r.seed.in_(seed_list))
                    q = q.order_by(r.id).limit(1).with_for_update(skip_locked=True)
                    run_id = tx.conn.execute(q).scalar()
                    if run_id is None:
                        break
                    token = uuid.uuid4().hex
                    done = tx.conn.execute(
                        update(S.runs).where(r.id == run_id, condition).values(
                            status="running", owner=owner, claim_token=token, started_at=now,
                            heartbeat_at=now, updated_at=now)
                    ).rowcount
                    if done == 1:
                        return self._claim_of(tx, run_id, owner, token)
            return None

        return self._transaction(run)

    def _claim_of(self, tx: _Tx, run_id: int, owner: str, token: str) -> Claim:
        row = tx.conn.execute(
            select(S.tasks.c.settings, S.tasks.c.preset, S.policies.c.notation, S.runs.c.seed)
            .select_from(S.runs.join(S.tasks).join(S.policies))
            .where(S.runs.c.id == run_id)).one()
        return Claim(run_id=run_id, task=_task_from(row.settings, row.preset),
                     policy=row.notation, seed=int(row.seed), owner=owner, token=token)

    def requeue(self, task: Task, *, statuses: Sequence[str] = ("failed",),
                orphaned: Callable[[str | None], bool] | None = None) -> int:
        """Put runs of ``task`` back to pending so they are trained again; returns how many.

        Runs whose status is in ``statuses`` (by default the failed ones), and runs marked
        running whose owner ``orphaned(owner)`` says is gone (e.g. a process of this host that no
        longer exists). Finished runs keep their data until they are recorded again.
        """
        bad = [x for x in statuses if x not in S.RUN_STATUSES or x in ("pending", "running")]
        if bad:
            raise ValueError(f"cannot requeue runs with status {bad[0]!r}")
        task_id = self._find_task_id(task)
        if task_id is None:
            return 0
        r = S.runs.c
        stuck: list[int] = []
        if orphaned is not None:
            rows = self._transaction(lambda tx: tx.conn.execute(
                select(r.id, r.owner).where(r.task_id == task_id, r.status == "running")).all(),
                write=False)
            stuck = [row.id for row in rows if orphaned(row.owner)]
        pending = dict(status="pending", owner=None, claim_token=None, started_at=None,
                       heartbeat_at=None)

        def run(tx: _Tx) -> int:
            n = 0
            if statuses:
                n += tx.conn.execute(update(S.runs).where(
                    r.task_id == task_id, r.status.in_(list(statuses)))
                    .values(**pending, updated_at=_now())).rowcount
            if stuck:
                n += tx.conn.execute(update(S.runs).where(
                    r.id.in_(stuck), r.status == "running")
                    .values(**pending, updated_at=_now())).rowcount
            return n

        return self._transaction(run)

    def tasks(self, *, preset: str | None = None, dataset: str | None = None,
              model: str | None = None) -> list[Task]:
        """Stored tasks, oldest first, optionally only those from a preset, dataset or model."""
        t = S.tasks.c
        q = select(t.settings, t.preset).order_by(t.id)
        if preset is not None:
            q = q.where(t.preset == preset)
        if dataset is not None:
            q = q.where(t.dataset == dataset)
        if model is not None:
            q = q.where(t.model == model)
        rows = self._transaction(lambda tx: tx.conn.execute(q).all(), write=False)
        return [_task_from(row.settings, row.preset) for row in rows]

    def heartbeat(self, claim: Claim) -> bool:
        """Tell the store this claim's worker is alive; False if the claim was lost."""
        r = S.runs.c
        return self._transaction(lambda tx: tx.conn.execute(
            update(S.runs).where(r.id == claim.run_id, r.claim_token == claim.token,
                                 r.status == "running")
            .values(heartbeat_at=_now())).rowcount == 1)

    def release(self, claim: Claim) -> bool:
        """Give a claimed run back (pending again), e.g. when a worker stops early."""
        r = S.runs.c
        return self._transaction(lambda tx: tx.conn.execute(
            update(S.runs).where(r.id == claim.run_id, r.claim_token == claim.token,
                                 r.status == "running")
            .values(status="pending", owner=None, claim_token=None, started_at=None,
                    heartbeat_at=None, updated_at=_now())).rowcount == 1)

    # -- recording ------------------------------------------------------------------------
    def record(self, result: RunResult, *, claim: Claim | None = None,
               dataset_info: Any = None) -> int:
        """Write a finished run (summary and curve) in one transaction; returns its run id.

        The run is found by (task, policy, seed): recording it again updates it and replaces
        its curve. Its status becomes the result's (done / diverged / failed) and any claim on
        it is cleared.
        """
        if claim is not None and (
            claim.seed != result.seed or task_key(claim.task) != task_key(result.task)
            or self._notation(claim.policy) != self._notation(result.policy)
        ):
            raise ValueError(
                f"the result ({result.policy}, seed {result.seed}) is not the claimed run "
                f"({claim.policy}, seed {claim.seed})"
            )
        return self._transaction(lambda tx: self._write(tx, result, dataset_info=dataset_info))

    def record_many(self, results: Iterable[RunResult], *, batch_size: int = _BATCH) -> list[int]:
        """Record many results, ``batch_size`` per transaction; returns their run ids."""
        items = list(results)
        ids: list[int] = []
        for i in range(0, len(items), batch_size):
            batch = items[i:i + batch_size]
            order = sorted(range(len(batch)), key=lambda j, b=batch: self._order_key(b[j]))
            written = self._transaction(
                lambda tx, b=batch, o=order: self._write_many(tx, [(b[j], None) for j in o]))
            by_position = dict(zip(order, written))
            ids.extend(by_position[j] for j in range(len(batch)))
        return ids

    _RUN_VALUES = (
        "task_id", "policy_id", "seed", "status", "stop_reason", "created_at", "started_at",
        "finished_at", "updated_at", "host", "owner", "claim_token", "heartbeat_at",
        "iterations", "best_iter", *S.SUMMARY_METRICS, "test_loss", "train_loss", "final_top1",
        "wall_time", "train_time", "model_params", "n_points", "error", "extra",
    )
    _delete_curves = delete(S.curve_points).where(
        S.curve_points.c.run_id.in_(bindparam("ids", expanding=True)))

    def _upsert_statement(self, replace: bool) -> Any:
        """INSERT ... ON CONFLICT (task, policy, seed) DO UPDATE ... RETURNING id, built once."""
        key = ("upsert", replace)
        if key not in self._statements:
            stmt = self._insert(S.runs)
            r = S.runs.c
            keep = {"task_id", "policy_id", "seed", "created_at", "started_at"}
            set_: dict[str, Any] = {k: stmt.excluded[k] for k in self._RUN_VALUES
                                    if k not in keep}
            # A claimed run keeps the start its claim stamped.
            set_["started_at"] = case(
                (and_(r.status == "running", r.started_at.is_not(None)), r.started_at),
                else_=stmt.excluded.started_at)
            # (A fixed SQL condition: an IN list would be an "expanding" parameter, which
            # executemany cannot take.)
            where = None if replace else text("runs.status IN ('pending', 'running')")
            self._statements[key] = stmt.on_conflict_do_update(
                index_elements=["task_id", "policy_id", "seed"], set_=set_, where=where,
            ).returning(r.id, r.task_id, r.policy_id, r.seed)
        return self._statements[key]

    def _order_key(self, r: RunResult) -> tuple[str, str, int]:
        # One order for every writer, so that two transactions never wait on each other in a cycle.
        return (task_key(r.task), self._notation(r.policy), r.seed)

    def _write(self, tx: _Tx, result: RunResult, *, dataset_info: Any = None,
               timestamps: Mapping[str, Any] | None = None, replace: bool = True) -> int | None:
        return self._write_many(tx, [(result, timestamps)], dataset_info=dataset_info,
                                replace=replace)[0]

    def _write_many(self, tx: _Tx, items: Sequence[tuple[RunResult, Mapping[str, Any] | None]],
                    *, dataset_info: Any = None, replace: bool = True) -> list[int | None]:
        """Upsert runs and replace their curves: one statement each for all of ``items``.

        Returns the run id of each item, None where the run was kept (``replace=False`` and
        already finished). An item repeated in ``items`` is written once, as its last copy.
        """
        now = _now()
        rows: dict[tuple[int, int, int], dict[str, Any]] = {}
        curves: dict[tuple[int, int, int], tuple[CurvePoint, ...]] = {}
        keys: list[tuple[int, int, int]] = []
        for result, timestamps in items:
            if result.status not in S.FINISHED_STATUSES:
                raise ValueError(f"a result's status must be one of {S.FINISHED_STATUSES}, "
                                 f"got {result.status!r}")
            key = (self._task_id(tx, result.task, dataset_info),
                   self._policy_id(tx, result.policy), int(result.seed))
            keys.append(key)
            rows[key] = self._run_values(result, key, timestamps, now)
            curves[key] = result.curve
        returned = tx.conn.execute(self._upsert_statement(replace), list(rows.values())).all()
        ids = {(row.task_id, row.policy_id, int(row.seed)): int(row.id) for row in returned}
        written = [ids[k] for k in rows if k in ids]
        if written:
            tx.conn.execute(self._delete_curves, {"ids": written})
            points = [
                dict(run_id=ids[k], seq=i, iteration=int(p.iteration), lr=_num(p.lr),
                     train_loss=_num(p.train_loss), test_loss=_num(p.test_loss),
                     top1=_num(p.top1), top5=_num(p.top5), ac=_num(p.ac), cd=_num(p.cd),
                     cdac=_num(p.cdac))
                for k in rows if k in ids for i, p in enumerate(curves[k])
            ]
            if points and self.backend == "postgresql":
                # One statement with one array per column, instead of a statement per point.
                tx.conn.execute(_PG_INSERT_CURVE,
                                {c: [pt[c] for pt in points] for c in _CURVE_ALL})
            elif points:
                tx.conn.execute(S.curve_points.insert(), points)
        return [ids.get(k) for k in keys]

    @staticmethod
    def _run_values(result: RunResult, key: tuple[int, int, int],
                    timestamps: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
        s = result.summary()
        ts = dict(timestamps or {})
        finished = ts.get("finished_at") or now
        started = ts.get("started_at")
        if started is None and result.wall_time and math.isfinite(result.wall_time):
            started = finished - timedelta(seconds=float(result.wall_time))
        return dict(
            task_id=key[0], policy_id=key[1], seed=key[2],
            status=result.status, stop_reason=result.stop_reason,
            created_at=ts.get("created_at") or now, started_at=started, finished_at=finished,
            updated_at=now, host=result.host or socket.gethostname(),
            owner=None, claim_token=None, heartbeat_at=None,
            iterations=int(result.iterations), best_iter=_opt_int(s["best_iter"]),
            top1=_num(s["top1"]), top5=_num(s["top5"]), ac=_num(s["ac"]), cd=_num(s["cd"]),
            cdac=_num(s["cdac"]), ld=_num(s["ld"]), test_loss=_num(s["test_loss"]),
            train_loss=_num(s["train_loss"]), final_top1=_num(s["final_top1"]),
            wall_time=_num(result.wall_time), train_time=_num(result.train_time),
            model_params=int(result.n_params), n_points=len(result.curve),
            error=result.error, extra=_json(result.extra) if result.extra else None,
        )

    # -- reading --------------------------------------------------------------------------
    def _row_query(self, *, dataset: Any = None, model: Any = None, policy: Any = None,
                   function: Any = None, status: Any = None, task: Any = None,
                   seed: Any = None, ids: Sequence[int] | None = None) -> Any:
        r, t, p = S.runs.c, S.tasks.c, S.policies.c
        columns = [r.id, r.task_id, t.framework, t.dataset, t.model, t.n_classes, t.batch_size,
                   t.optimizer, t.max_iters, t.eval_every, p.notation.label("policy"),
                   p.function, p.n_params]
        columns += [r[name] for name in RUN_ROW_FIELDS[13:]]
        q = select(*columns).select_from(S.runs.join(S.tasks).join(S.policies))
        if (v := _as_list(dataset)) is not None:
            q = q.where(t.dataset.in_([str(x) for x in v]))
        if (v := _as_list(model)) is not None:
            q = q.where(t.model.in_([str(x) for x in v]))
        if (v := _as_list(policy)) is not None:
            q = q.where(p.notation.in_([self._notation(x) for x in v]))
        if (v := _as_list(function)) is not None:
            q = q.where(p.function.in_([str(x).strip().upper() for x in v]))
        if (v := _as_list(status)) is not None:
            bad = [x for x in v if x not in S.RUN_STATUSES]
            if bad:
                raise ValueError(
                    f"unknown run status {bad[0]!r}; valid: {', '.join(S.RUN_STATUSES)}")
            q = q.where(r.status.in_(v))
        if (v := _as_list(task)) is not None:
            q = q.where(t.key.in_([task_key(x) for x in v]))
        if (v := _as_list(seed)) is not None:
            q = q.where(r.seed.in_([int(x) for x in v]))
        if ids is not None:
            q = q.where(r.id.in_(list(ids)))
        return q.order_by(r.id)

    def find_runs(self, *, dataset: str | Sequence[str] | None = None,
                  model: str | Sequence[str] | None = None,
                  policy: str | Policy | Sequence[str | Policy] | None = None,
                  function: str | Sequence[str] | None = None,
                  status: str | Sequence[str] | None = None,
                  task: Task | Sequence[Task] | None = None,
                  seed: int | Sequence[int] | None = None,
                  limit: int | None = None, offset: int = 0) -> list[RunRow]:
        """Runs as flat rows (any status), oldest first, filtered by any of the keys.

        ``policy`` is notation (any spelling that parses; it is compared canonically);
        ``function`` an LR function name (SIN2, NSTEP, ..., COMPOSITE; any case).
        """
        q = self._row_query(dataset=dataset, model=model, policy=policy, function=function,
                            status=status, task=task, seed=seed)
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))
        rows = self._transaction(lambda tx: tx.conn.execute(q).all(), write=False)
        return [_run_row(row) for row in rows]

    def runs(self, **filters: Any) -> list[RunResult]:
        """Finished runs (done / diverged / failed) as full RunResults with their curves.

        Takes the filters of :meth:`find_runs`.
        """
        return [res for res, _ in self._results(**filters)]

    def _results(self, *, status: Any = None, **filters: Any
                 ) -> list[tuple[RunResult, dict[str, Any]]]:
        wanted = _as_list(status)
        finished = [s for s in (wanted or S.FINISHED_STATUSES) if s in S.FINISHED_STATUSES]
        if wanted is not None:
            self._row_query(status=wanted)  # validates the names
        if not finished:
            return []
        limit = filters.pop("limit", None)
        offset = filters.pop("offset", 0)
        q = self._row_query(status=finished, **filters)
        q = q.add_columns(S.tasks.c.settings, S.tasks.c.preset, S.runs.c.extra)
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))

        def read(tx: _Tx) -> list[tuple[RunResult, dict[str, Any]]]:
            rows = tx.conn.execute(q).all()
            curves = self._curves(tx, [row.id for row in rows])
            return [(_result_from(row, curves.get(row.id, ())), _timestamps(row)) for row in rows]

        return self._transaction(read, write=False)

    def _curves(self, tx: _Tx, run_ids: list[int]) -> dict[int, list[CurvePoint]]:
        c = S.curve_points.c
        out: dict[int, list[CurvePoint]] = {}
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i:i + 500]
            q = (select(c.run_id, *(c[n] for n in S.CURVE_COLUMNS))
                 .where(c.run_id.in_(chunk)).order_by(c.run_id, c.seq))
            for row in tx.conn.execute(q):
                out.setdefault(row.run_id, []).append(CurvePoint(
                    iteration=int(row.iteration),
                    **{n: _num_out(getattr(row, n)) for n in S.CURVE_COLUMNS[1:]}))
        return out

    def load(self, run_id: int) -> RunResult | None:
        """The full RunResult of a finished run by its id (None if unknown or not finished)."""
        q = self._row_query(ids=[int(run_id)], status=list(S.FINISHED_STATUSES))
        q = q.add_columns(S.tasks.c.settings, S.tasks.c.preset, S.runs.c.extra)

        def read(tx: _Tx) -> RunResult | None:
            row = tx.conn.execute(q).first()
            if row is None:
                return None
            return _result_from(row, self._curves(tx, [row.id]).get(row.id, ()))

        return self._transaction(read, write=False)

    def get_run(self, task: Task, policy: str | Policy, seed: int) -> RunResult | None:
        """The finished run of (task, policy, seed), with its curve; None if there is none."""
        found = self._results(task=task, policy=policy, seed=int(seed))
        return found[0][0] if found else None

    def status_of(self, task: Task, policy: str | Policy, seed: int) -> str | None:
        """The status of (task, policy, seed): pending / running / done / ... or None."""
        rows = self.find_runs(task=task, policy=policy, seed=int(seed))
        return rows[0].status if rows else None

    # -- aggregates and the leaderboard ---------------------------------------------------
    def aggregates(self, task: Task, *, statuses: Sequence[str] = RESULT_STATUSES,
                   policies: Sequence[str | Policy] | None = None,
                   metric: str = "top1", descending: bool | None = None,
                   limit: int | None = None, min_runs: int = 1) -> list[PolicyStats]:
        """Per-policy mean and population std over seeds of every metric, for one task.

        A diverged run without a finite top-1 counts as 0 in top-1 and top-5, as in
        :func:`lrbench.ranking.summarize`; other undefined values are left out of the mean.

        Ranked by the mean of ``metric`` (best first: highest for top1/top5/ac, lowest for
        cd/cdac/ld/best_iter/iterations/wall_time unless ``descending`` says otherwise);
        ``runs`` counts the runs aggregated (``statuses``: done and diverged by default).
        """
        task_id = self._find_task_id(task)
        q = self._aggregate_query(task_id, statuses=statuses, policies=policies, metric=metric,
                                  descending=descending, limit=limit, min_runs=min_runs)
        if task_id is None:
            return []
        rows = self._transaction(lambda tx: tx.conn.execute(q).all(), write=False)
        return [PolicyStats(
            policy=row.notation, function=row.function, n_params=int(row.n_params),
            runs=int(row.runs), diverged=int(row.diverged or 0),
            mean={m: _opt_float(getattr(row, f"{m}_mean")) for m in AGG_METRICS},
            std={m: _opt_float(getattr(row, f"{m}_std")) for m in AGG_METRICS},
        ) for row in rows]

    def _aggregate_query(self, task_id: int | None, *, statuses: Sequence[str] = RESULT_STATUSES,
                         policies: Sequence[str | Policy] | None = None, metric: str = "top1",
                         descending: bool | None = None, limit: int | None = None,
                         min_runs: int = 1) -> Any:
        """The SELECT behind :meth:`aggregates` (the leaderboard query), for one task id."""
        if metric not in AGG_METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(AGG_METRICS)}")
        bad = [s for s in statuses if s not in S.RUN_STATUSES]
        if bad:
            raise ValueError(f"unknown run status {bad[0]!r}; valid: {', '.join(S.RUN_STATUSES)}")
        if descending is None:
            descending = metric not in LOWER_IS_BETTER
        r, p = S.runs.c, S.policies.c
        where = (r.task_id == task_id, r.status.in_(list(statuses)))

        def value(m: str) -> Any:
            # A diverged run that never measured a finite top-1 left no usable model: it counts
            # as 0 in top-1 and top-5 (the rule of lrbench.ranking.summarize), not as missing.
            if m in ("top1", "top5"):
                return case((and_(r.status == "diverged", r[m].is_(None)), 0.0), else_=r[m])
            return r[m]

        cols: list[Any] = [r.policy_id, func.count().label("runs"),
                           func.sum(case((r.status == "diverged", 1), else_=0)).label("diverged")]
        if self.backend == "postgresql":
            for m in AGG_METRICS:
                cols += [func.avg(value(m)).label(f"{m}_mean"),
                         func.stddev_pop(value(m)).label(f"{m}_std")]
            agg = select(*cols).where(*where).group_by(r.policy_id)
        else:
            # SQLite has no stddev_pop: two passes, all in SQL (the per-policy means first, then
            # the mean squared deviation from them), exact and far faster than a Python
            # aggregate function called on every row.
            means = (select(r.policy_id, *(func.avg(value(m)).label(m) for m in AGG_METRICS))
                     .where(*where).group_by(r.policy_id).subquery("means"))
            for m in AGG_METRICS:
                dev = value(m) - means.c[m]
                cols += [func.avg(value(m)).label(f"{m}_mean"),
                         func.lrbench_sqrt(func.avg(dev * dev)).label(f"{m}_std")]
            agg = (select(*cols).select_from(S.runs.join(means, means.c.policy_id == r.policy_id))
                   .where(*where).group_by(r.policy_id))
        if min_runs > 1:
            agg = agg.having(func.count() >= int(min_runs))
        sub = agg.subquery()
        key = sub.c[f"{metric}_mean"]
        q = (select(p.notation, p.function, p.n_params, sub)
             .join(sub, sub.c.policy_id == p.id)
             .order_by((key.desc() if descending else key.asc()).nulls_last(), p.notation))
        if policies is not None:
            q = q.where(p.notation.in_([self._notation(x) for x in policies]))
        if limit is not None:
            q = q.limit(int(limit))
        return q

    def leaderboard(self, task: Task, metric: str = "top1", *, limit: int | None = 10,
                    statuses: Sequence[str] = RESULT_STATUSES, min_runs: int = 1
                    ) -> list[PolicyStats]:
        """The best ``limit`` policies of a task by mean ``metric`` over seeds."""
        return self.aggregates(task, statuses=statuses, metric=metric, limit=limit,
                               min_runs=min_runs)

    # -- export ---------------------------------------------------------------------------
    def table(self, *, curves: bool = False, **filters: Any) -> tuple[list[str], list[list[Any]]]:
        """(columns, rows) of runs; with ``curves``, one row per curve point (run keys first)."""
        rows = self.find_runs(**filters)
        if not curves:
            return list(RUN_ROW_FIELDS), [list(r.to_dict().values()) for r in rows]
        keys = ["run_id", "dataset", "model", "policy", "function", "seed", "status"]
        cols = keys + ["seq", *S.CURVE_COLUMNS]
        by_id = {r.id: r for r in rows}
        c = S.curve_points.c

        def read(tx: _Tx) -> list[list[Any]]:
            out: list[list[Any]] = []
            ids = list(by_id)
            for i in range(0, len(ids), 500):
                q = (select(c.run_id, c.seq, *(c[n] for n in S.CURVE_COLUMNS))
                     .where(c.run_id.in_(ids[i:i + 500])).order_by(c.run_id, c.seq))
                for pt in tx.conn.execute(q):
                    run = by_id[pt.run_id]
                    out.append([run.id, run.dataset, run.model, run.policy, run.function,
                                run.seed, run.status, pt.seq,
                                *(getattr(pt, n) for n in S.CURVE_COLUMNS)])
            return out

        return cols, self._transaction(read, write=False)

    def to_dataframe(self, *, curves: bool = False, **filters: Any) -> Any:
        """Runs (with ``curves``: curve points) as a pandas DataFrame (needs lrbench[export])."""
        pd = _pandas()
        cols, rows = self.table(curves=curves, **filters)
        df = pd.DataFrame(rows, columns=cols)
        for name in ("created_at", "started_at", "finished_at"):
            if name in df.columns:
                df[name] = pd.to_datetime(df[name], utc=True, format="ISO8601")
        return df

    def export_csv(self, path: str | os.PathLike[str], *, curves: bool = False,
                   **filters: Any) -> int:
        """Write runs (or curve points) to a CSV file; returns the number of rows."""
        import csv

        cols, rows = self.table(curves=curves, **filters)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(cols)
            writer.writerows([["" if v is None else v for v in row] for row in rows])
        return len(rows)

    def export_parquet(self, path: str | os.PathLike[str], *, curves: bool = False,
                       **filters: Any) -> int:
        """Write runs (or curve points) to a Parquet file (needs lrbench[export])."""
        df = self.to_dataframe(curves=curves, **filters)
        try:
            df.to_parquet(path, index=False)
        except ImportError as e:
            raise ImportError(
                "Parquet export needs pyarrow: pip install 'lrbench[export]'") from e
        return len(df)

    def export_bundle(self, path: str | os.PathLike[str], **filters: Any) -> int:
        """Write finished runs (with curves) to a portable JSON bundle; returns the run count."""
        from lrbench.store.bundle import write_bundle

        return write_bundle(self, path, **filters)

    def import_bundle(self, path: str | os.PathLike[str], *, replace: bool = False
                      ) -> ImportReport:
        """Read a bundle into this database. Idempotent: importing twice changes nothing.

        A run already finished here is kept unless ``replace``.
        """
        from lrbench.store.bundle import read_bundle

        return read_bundle(self, path, replace=replace)

    def datasets(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The stored datasets' meta-features (name, n_classes, input_shape, n_train, n_test,
        info), by name; all of them when ``names`` is None."""
        return self._datasets(names)

    def _datasets(self, names: Iterable[str] | None) -> list[dict[str, Any]]:
        d = S.datasets.c
        q = select(S.datasets).order_by(d.name)
        if names is not None:
            q = q.where(d.name.in_(sorted(set(names))))
        rows = self._transaction(lambda tx: tx.conn.execute(q).all(), write=False)
        out = []
        for row in rows:
            out.append({
                "name": row.name, "n_classes": row.n_classes,
                "input_shape": json.loads(row.input_shape) if row.input_shape else None,
                "n_train": row.n_train, "n_test": row.n_test,
                "info": json.loads(row.info) if row.info else None,
            })
        return out

    def _write_items(self, items: list[tuple[RunResult, dict[str, Any]]], *, replace: bool
                     ) -> tuple[int, int]:
        written = skipped = 0
        items = sorted(items, key=lambda it: self._order_key(it[0]))
        for i in range(0, len(items), _BATCH):
            batch = items[i:i + _BATCH]
            ids = self._transaction(
                lambda tx, b=batch: self._write_many(tx, b, replace=replace))
            written += sum(1 for x in ids if x is not None)
            skipped += sum(1 for x in ids if x is None)
        return written, skipped


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError("DataFrame export needs pandas: pip install 'lrbench[export]'") from e
    return pd


def _task_from(settings: str, preset: str | None) -> Task:
    return Task(**json.loads(settings), preset=preset)


def _run_row(row: Any) -> RunRow:
    m = row._mapping
    values = {name: m[name] for name in RUN_ROW_FIELDS}
    for name in ("created_at", "started_at", "finished_at"):
        values[name] = _aware(values[name])
    for name in ("top1", "top5", "ac", "cd", "cdac", "ld", "test_loss", "train_loss",
                 "final_top1", "wall_time", "train_time"):
        values[name] = _opt_float(values[name])
    values["seed"] = int(values["seed"])
    return RunRow(**values)


def _timestamps(row: Any) -> dict[str, Any]:
    return {k: _aware(getattr(row, k)) for k in ("created_at", "started_at", "finished_at")}


def _result_from(row: Any, curve: Sequence[CurvePoint]) -> RunResult:
    return RunResult(
        task=_task_from(row.settings, row.preset),
        policy=row.policy,
        seed=int(row.seed),
        status=row.status,
        stop_reason=row.stop_reason or ("error" if row.status == "failed" else "max_iters"),
        iterations=int(row.iterations or 0),
        curve=tuple(curve),
        wall_time=float(row.wall_time) if row.wall_time is not None else 0.0,
        train_time=float(row.train_time) if row.train_time is not None else 0.0,
        n_params=int(row.model_params or 0),
        host=row.host or "",
        error=row.error,
        extra=json.loads(row.extra) if row.extra else {},
    )
