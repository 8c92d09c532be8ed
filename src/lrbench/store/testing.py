"""Helpers for tests and benchmarks that use the LR database (no training, no framework).

- :func:`make_result`: a RunResult built by hand, deterministic in its arguments.
- :func:`postgres_server_url`: ``$LRBENCH_TEST_POSTGRES_URL`` (None when unset).
- :func:`temporary_postgres_database`: a fresh, uniquely named PostgreSQL database for one test,
  dropped afterwards.
"""

from __future__ import annotations

import math
import os
import random
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lrbench.results import CurvePoint, RunResult
from lrbench.tasks import Task, make_task

POSTGRES_ENV = "LRBENCH_TEST_POSTGRES_URL"


def small_task(**changes: Any) -> Task:
    """A small task description (nothing is trained with it)."""
    fields: dict[str, Any] = dict(dataset="digits", model="mlp", batch_size=32,
                                  optimizer="momentum", momentum=0.9, weight_decay=0.0001,
                                  max_iters=1000, eval_every=50)
    fields.update(changes)
    return make_task(**fields)


def make_curve(n_points: int, *, seed: int = 0, eval_every: int = 50, lr: float = 0.01,
               nan_metrics: bool = False) -> tuple[CurvePoint, ...]:
    """A plausible learning curve: accuracy rising, losses falling, with seeded noise."""
    rng = random.Random(seed)
    points = []
    for i in range(n_points):
        it = (i + 1) * eval_every
        progress = 1.0 - math.exp(-(i + 1) / max(n_points / 4, 1))
        top1 = min(1.0, 0.1 + 0.85 * progress + rng.uniform(-0.01, 0.01))
        points.append(CurvePoint(
            iteration=it, lr=lr, train_loss=2.3 * (1 - progress) + 0.05 + rng.uniform(0, 0.01),
            test_loss=2.3 * (1 - progress) + 0.08 + rng.uniform(0, 0.01),
            top1=top1, top5=min(1.0, top1 + 0.04),
            ac=float("nan") if nan_metrics else 0.5 + 0.4 * progress,
            cd=0.2 - 0.1 * progress, cdac=0.05 + rng.uniform(0, 0.01),
        ))
    return tuple(points)


def make_result(task: Task | None = None, policy: str = "FIX(k0=0.1)", seed: int = 0, *,
                n_points: int = 20, status: str = "done", host: str = "test-host",
                curve: tuple[CurvePoint, ...] | None = None, **fields: Any) -> RunResult:
    """A RunResult made by hand (as the trainer would hand it to ``store.record``)."""
    task = task or small_task()
    if curve is None:
        curve = make_curve(n_points, seed=zlib.crc32(f"{policy}|{seed}".encode()),
                           eval_every=task.eval_every)
    stop = {"done": "max_iters", "diverged": "diverged", "failed": "error"}[status]
    values: dict[str, Any] = dict(
        task=task, policy=policy, seed=seed, status=status, stop_reason=stop,
        iterations=curve[-1].iteration if curve else 0, curve=curve,
        wall_time=1.5 + seed, train_time=1.0 + seed, n_params=12345, host=host,
        error="boom" if status == "failed" else None,
    )
    values.update(fields)
    return RunResult(**values)


def postgres_server_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    return url or None


@contextmanager
def temporary_postgres_database(server_url: str, prefix: str = "lrbench_test") -> Iterator[str]:
    """Create a fresh database on the server of ``server_url``; yield its URL; drop it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from lrbench.store.urls import normalize_url

    base = make_url(normalize_url(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=_null_pool())
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool
