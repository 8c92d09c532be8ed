"""The server's read logic, shared by the JSON API and the web pages.

The leaderboard comes from the database's per-policy aggregates (one SQL query, see
``Store.aggregates``) ranked by :func:`lrbench.ranking.rank`: the rows fetched are one per
policy, however many seeds each has. A :class:`LeaderboardCache` keeps each ranking for a few
seconds (``cache_seconds`` of ``create_app``) and forgets a task's rankings when runs are
submitted to it, so a popular leaderboard is computed once per interval, not once per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from lrbench.ranking import Ranked, check_metric, from_aggregates, rank
from lrbench.results import RunResult
from lrbench.tasks import Task

#: the most policies a leaderboard or a comparison shows
MAX_ROWS = 500
#: the most policies drawn in one plot
MAX_PLOTTED = 8


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``"top1:1,best_iter:-0.2"`` -> ``{"top1": 1.0, "best_iter": -0.2}``; ValueError if bad."""
    if text is None or not text.strip():
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition(":")
        name = name.strip()
        if not sep:
            raise ValueError(f"weights must be metric:weight pairs separated by commas, got "
                             f"{part.strip()!r}")
        check_metric(name)
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"the weight of {name!r} must be a number, got {value.strip()!r}") \
                from None
        if not math.isfinite(weight):
            raise ValueError(f"the weight of {name!r} must be finite")
        out[name] = weight
    return out


def parse_metrics(text: str | None) -> list[str] | None:
    """``"top1,best_iter"`` -> ``["top1", "best_iter"]`` (each checked); None when empty."""
    if text is None or not text.strip():
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        check_metric(name)
    return names


def leaderboard(store: Any, task: Task, *, by: str | None = None, weights: str | None = None,
                lexicographic: str | None = None, top: int = 20, min_runs: int = 1
                ) -> tuple[list[Ranked], str, int]:
    """The task's best ``top`` policies ranked, best first; a description of the ranking; and
    how many more policies are tied with the last one shown (left out).

    Give at most one of ``by`` (a metric), ``weights`` (``metric:weight,...``) and
    ``lexicographic`` (``metric,metric,...``); the default ranks by top-1. ValueError when a
    metric is unknown or more than one is given.
    """
    w, lex = parse_weights(weights), parse_metrics(lexicographic)
    if sum(x is not None for x in (by, w, lex)) > 1:
        raise ValueError("give only one of by, weights and lexicographic")
    if by is not None:
        check_metric(by)
    # in notation order, so that equal values rank the same way on every backend
    stats = sorted(from_aggregates(store.aggregates(task, min_runs=min_runs)),
                   key=lambda s: s.policy)
    if not stats:
        return [], "top1", 0
    if w is not None:
        ranked = rank(stats, weights=w, top=top)
        how = "weights " + ", ".join(f"{k}:{v:g}" for k, v in w.items())
    elif lex is not None:
        ranked = rank(stats, lexicographic=lex, top=top)
        how = "lexicographic " + ", ".join(lex)
    else:
        ranked = rank(stats, by or "top1", top=top)
        how = by or "top1"
    top = min(int(top), MAX_ROWS)
    return ranked[:top], how, max(0, len(ranked) - top)


class ResultCache:
    """Computed answers by key, each kept ``seconds`` at most; thread-safe and bounded.

    Keys are tuples whose first item is the task key they depend on (or None for answers about
    every task), so that :meth:`forget` can drop what a submission changed.
    """

    def __init__(self, seconds: float = 5.0, size: int = 512) -> None:
        self.seconds, self.size = float(seconds), int(size)
        self._items: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, item: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """The cached answer for ``item``, or ``compute()`` (then cached)."""
        if self.seconds <= 0:
            return compute()
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(item)
            if hit is not None and now - hit[0] < self.seconds:
                self._items.move_to_end(item)
                return hit[1]
        value = compute()  # outside the lock: other answers go on
        with self._lock:
            self._items[item] = (now, value)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def leaderboard(self, store: Any, key: str, task: Task, **options: Any
                    ) -> tuple[list[Ranked], str, int]:
        """:func:`leaderboard` of ``task`` (whose key is ``key``), cached."""
        return self.get((key, "leaderboard", *sorted(options.items())),
                        lambda: leaderboard(store, task, **options))

    def forget(self, keys: Sequence[str]) -> None:
        """Drop the answers about these tasks and about all tasks (after runs were added)."""
        wanted = set(keys) | {None}
        with self._lock:
            for item in [i for i in self._items if i[0] in wanted]:
                del self._items[item]


def runs_of_policies(store: Any, task: Task, policies: Sequence[str], *,
                     per_policy: int = 20) -> list[RunResult]:
    """The finished runs (with curves) of ``policies`` on ``task``, at most ``per_policy``
    each, in the order of ``policies``."""
    if not policies:
        return []
    runs = store.runs(task=task, policy=list(policies), status=["done", "diverged"])
    by: dict[str, list[RunResult]] = {}
    for r in runs:
        by.setdefault(str(r.policy), []).append(r)
    out: list[RunResult] = []
    for p in policies:
        out.extend(by.get(p, [])[:per_policy])
    return out


def run_ids_by_policy(store: Any, task: Task, policies: Sequence[str]
                      ) -> dict[str, list[tuple[int, int, str]]]:
    """(run id, seed, status) of each finished run of ``policies`` on ``task``."""
    out: dict[str, list[tuple[int, int, str]]] = {p: [] for p in policies}
    if not policies:
        return out
    for row in store.find_runs(task=task, policy=list(policies),
                               status=["done", "diverged", "failed"]):
        out.setdefault(row.policy, []).append((row.id, row.seed, row.status))
    return out
