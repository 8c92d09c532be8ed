"""Where training runs execute: one small interface, several engines.

An executor takes :class:`~lrbench.executors.base.RunJob` s (a claimed run plus where to record
it), runs :func:`~lrbench.executors.base.execute_job` on each somewhere, and hands back futures of
their summaries. Workers record their own results in the database, so whatever finished is kept
even if the driver dies. Progress events (run id, iteration, LR, top-1) flow back on
``executor.events``.

- ``local``: a process pool on this machine (the default).
"""

from __future__ import annotations

from lrbench.executors.base import Executor, ProgressEvent, RunJob, execute_job

EXECUTORS = ("local",)


def make_executor(name: str = "local", **options: object) -> Executor:
    """An executor by name; ``options`` go to its constructor (e.g. ``workers``, ``threads``)."""
    key = str(name).strip().lower()
    if key == "local":
        from lrbench.executors.local import LocalExecutor

        return LocalExecutor(**options)  # type: ignore[arg-type]
    raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "ProgressEvent", "RunJob", "execute_job", "make_executor"]
