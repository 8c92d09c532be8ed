"""Where training runs execute: one small interface, several engines.

An executor runs two kinds of job somewhere and hands back futures:

- ``submit(RunJob)`` (``lrbench run``): a claimed run plus where to record it; the worker runs
  :func:`~lrbench.executors.base.execute_job`, records the result in the database itself (so
  whatever finished is kept even if the driver dies) and the future gives its summary.
  Progress events (run id, iteration, LR, top-1) flow back on ``executor.events``.
- ``submit_train(TrainJob)`` (``lrbench tune``): task, policy, seed, target accuracy; the worker
  runs :func:`~lrbench.executors.base.execute_train_job` and the future gives the RunResult,
  which the caller records (tune keeps its budget and its store in the driver).

- ``local``: a process pool on this machine (the default).
- ``ray``: Ray tasks on a Ray cluster (``pip install 'lrbench[ray]'``; see docs/ray.md).

>>> ex = make_executor("local", workers=2, threads=1)      # doctest: +SKIP
>>> ex = make_executor("ray", address="auto", cpus_per_run=1, gpus_per_run=1)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from lrbench.executors.base import (
    Executor,
    ProgressEvent,
    RunJob,
    TrainJob,
    execute_job,
    execute_train_job,
)

EXECUTORS = ("local", "ray")


def _factory(name: str) -> tuple[str, Any]:
    key = str(name).strip().lower()
    if key == "local":
        from lrbench.executors.local import LocalExecutor

        return key, LocalExecutor
    if key == "ray":
        from lrbench.executors.ray import RayExecutor  # imports no Ray: its constructor does

        return key, RayExecutor
    raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")


def check_executor(name: str, options: Iterable[str] = ()) -> str:
    """The executor's canonical name (``'local'`` or ``'ray'``) after checking that it exists
    and takes every option named in ``options``; nothing is started (no Ray needed).
    ValueError as :func:`make_executor`."""
    key, factory = _factory(name)
    accepted = inspect.signature(factory).parameters
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise ValueError(f"executor {key!r} takes no option {unknown[0]!r}; its options: "
                         f"{', '.join(accepted)}")
    return key


def make_executor(name: str = "local", **options: object) -> Executor:
    """An executor by name; ``options`` go to its constructor: ``workers``, ``threads`` for
    both; ``address``, ``cpus_per_run``, ``gpus_per_run``, ``max_retries`` for ``ray``.

    ValueError for an unknown name or option; for ``ray`` without Ray installed, an error
    (both an ImportError and a ValueError) naming ``pip install 'lrbench[ray]'``.
    """
    key = check_executor(name, options)
    return _factory(key)[1](**options)  # type: ignore[no-any-return]


__all__ = ["EXECUTORS", "Executor", "ProgressEvent", "RunJob", "TrainJob", "check_executor",
           "execute_job", "execute_train_job", "make_executor"]
