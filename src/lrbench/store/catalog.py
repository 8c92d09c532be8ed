"""What the shared server lists: tasks with their counts, tasks by key, runs a client lacks.

A task's **key** (:func:`lrbench.store.task_key`: sha256 of its identity) is the same in every
database, so it names a task across machines: the server's URLs, ``lrbench pull`` and ``push``
use it. Run ids are local to one database.

>>> from lrbench.store import Store
>>> with Store.open("sqlite://") as store:
...     store.task_overview(), store.missing_runs([("0" * 64, "FIX(k0=0.1)", 0)])
([], [0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from lrbench.store import schema as S

if TYPE_CHECKING:
    from lrbench.store.core import _Tx
    from lrbench.tasks import Task

#: at most this many keys per ``missing_runs`` query batch
_KEYS_PER_QUERY = 500


@dataclass(frozen=True)
class TaskSummary:
    """One stored task and its results: runs and policies counted over finished results."""

    id: int
    key: str
    task: Task
    runs: int
    policies: int
    best_top1: float | None
    last_finished: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "preset": self.task.preset, "task": self.task.identity(),
                "runs": self.runs, "policies": self.policies, "best_top1": self.best_top1,
                "last_finished": self.last_finished.isoformat() if self.last_finished else None}


class CatalogMixin:
    """Catalog methods of :class:`lrbench.store.Store`."""

    _transaction: Any
    _notation: Any

    def task_overview(self, *, key: str | None = None, limit: int | None = None,
                      offset: int = 0) -> list[TaskSummary]:
        """Every task (or the one whose key is ``key``) with its count of result runs (done /
        diverged) and policies, its best single-run top-1 and its last finished run; most
        recently active first."""
        from lrbench.store.core import RESULT_STATUSES, _aware, _opt_float, _task_from

        r, t = S.runs.c, S.tasks.c
        stats_q = (select(r.task_id, func.count().label("runs"),
                          func.count(func.distinct(r.policy_id)).label("policies"),
                          func.max(r.top1).label("best_top1"),
                          func.max(r.finished_at).label("last_finished"))
                   .where(r.status.in_(RESULT_STATUSES)).group_by(r.task_id))
        if key is not None:  # aggregate only that task's runs
            stats_q = stats_q.where(r.task_id.in_(select(t.id).where(t.key == str(key).lower())))
        stats = stats_q.subquery()
        q = (select(t.id, t.key, t.settings, t.preset, stats.c.runs, stats.c.policies,
                    stats.c.best_top1, stats.c.last_finished)
             .join(stats, stats.c.task_id == t.id, isouter=True)
             .order_by(stats.c.last_finished.desc().nulls_last(), t.id.desc()))
        if key is not None:
            q = q.where(t.key == str(key).lower())
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))
        rows = self._transaction(lambda tx: tx.conn.execute(q).all(), write=False)
        return [TaskSummary(id=row.id, key=row.key, task=_task_from(row.settings, row.preset),
                            runs=int(row.runs or 0), policies=int(row.policies or 0),
                            best_top1=_opt_float(row.best_top1),
                            last_finished=_aware(row.last_finished)) for row in rows]

    def task_by_key(self, key: str) -> Task | None:
        """The stored task whose key is ``key`` (64 hex digits), or None."""
        from lrbench.store.core import _task_from

        if not isinstance(key, str) or len(key) != 64:
            return None
        t = S.tasks.c
        q = select(t.settings, t.preset).where(t.key == key.lower())
        row = self._transaction(lambda tx: tx.conn.execute(q).first(), write=False)
        return None if row is None else _task_from(row.settings, row.preset)

    def policy_overview(self, *, function: str | None = None, limit: int | None = None,
                        offset: int = 0) -> list[dict[str, Any]]:
        """Policies (notation, function, #Param) with their number of runs in any task, most
        used first; ``function`` keeps one LR function's (any case)."""
        r, p = S.runs.c, S.policies.c
        counts = select(r.policy_id, func.count().label("runs")).group_by(r.policy_id).subquery()
        q = (select(p.notation, p.function, p.n_params, counts.c.runs)
             .join(counts, counts.c.policy_id == p.id, isouter=True)
             .order_by(counts.c.runs.desc().nulls_last(), p.notation))
        if function is not None:
            q = q.where(p.function == str(function).strip().upper())
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))
        rows = self._transaction(lambda tx: tx.conn.execute(q).all(), write=False)
        return [{"notation": row.notation, "function": row.function,
                 "n_params": int(row.n_params), "runs": int(row.runs or 0)} for row in rows]

    def missing_runs(self, keys: Sequence[tuple[str, str, int]]) -> list[int]:
        """The positions in ``keys`` — (task key, policy notation, seed) — of the runs this
        database has no finished result of (done / diverged / failed).

        Notation is compared canonically; notation that does not parse is a ValueError.
        """
        wanted: dict[str, dict[tuple[str, int], list[int]]] = {}
        for i, (key, policy, seed) in enumerate(keys):
            wanted.setdefault(str(key).lower(), {}).setdefault(
                (self._notation(policy), int(seed)), []).append(i)
        r, t, p = S.runs.c, S.tasks.c, S.policies.c
        have: set[tuple[str, str, int]] = set()

        def read(tx: _Tx) -> None:
            for key, items in wanted.items():
                notations = sorted({n for n, _ in items})
                for i in range(0, len(notations), _KEYS_PER_QUERY):
                    q = (select(p.notation, r.seed)
                         .select_from(S.runs.join(S.tasks).join(S.policies))
                         .where(t.key == key, p.notation.in_(notations[i:i + _KEYS_PER_QUERY]),
                                r.status.in_(list(S.FINISHED_STATUSES))))
                    have.update((key, n, int(s)) for n, s in tx.conn.execute(q))

        self._transaction(read, write=False)
        return sorted(i for key, items in wanted.items() for (n, s), idx in items.items()
                      if (key, n, s) not in have for i in idx)
