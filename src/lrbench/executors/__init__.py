"""Where training runs execute: one small interface, several engines.

An executor takes :class:`~lrbench.executors.base.RunJob` s (a claimed run plus where to record
it), runs :func:`~lrbench.executors.base.execute_job` on each somewhere, and hands back futures of
their summaries. Workers record their own results in the database, so whatever finished is kept
even if the driver dies. Progress events (run id, iteration, LR, top-1) flow back on
``executor.events``.

- ``local``: a process pool on this machine (the default).
- ``ray``: Ray tasks on a Ray cluster (``pip install 'lrbench[ray]'``; see docs/ray.md).

>>> ex = make_executor("local", workers=2, threads=1)      # doctest: +SKIP
>>> ex = make_executor("ray", address="auto", cpus_per_run=1, gpus_per_run=1)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import Any

from lrbench.executors.base import Executor, ProgressEvent, RunJob, execute_job

EXECUTORS = ("local", "ray")


def make_executor(name: str = "local", **options: object) -> Executor:
    """An executor by name; ``options`` go to its constructor: ``workers``, ``threads`` for
    both; ``address``, ``cpus_per_run``, ``gpus_per_run``, ``max_retries`` for ``ray``.

    ValueError for an unknown name or option; for ``ray`` without Ray installed, an error
    (both an ImportError and a ValueError) naming ``pip install 'lrbench[ray]'``.
    """
    key = str(name).strip().lower()
    if key == "local":
        from lrbench.executors.local import LocalExecutor

        factory: Any = LocalExecutor
    elif key == "ray":
        from lrbench.executors.ray import RayExecutor

        factory = RayExecutor
    else:
        raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    accepted = inspect.signature(factory).parameters
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise ValueError(f"executor {key!r} takes no option {unknown[0]!r}; its options: "
                         f"{', '.join(accepted)}")
    return factory(**options)  # type: ignore[no-any-return]


__all__ = ["EXECUTORS", "Executor", "ProgressEvent", "RunJob", "execute_job", "make_executor"]
