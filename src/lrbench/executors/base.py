"""The executor interface and the two kinds of job every executor runs.

- :class:`RunJob` (``lrbench run``): a claimed run; the worker trains it and records it in the
  database itself (:func:`execute_job`), and the future gives its summary.
- :class:`TrainJob` (``lrbench tune``): a run to train and hand back; the worker only trains it
  (:func:`execute_train_job`), the future gives the RunResult and the caller records it.
"""

from __future__ import annotations

import socket
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from lrbench.results import RunResult
from lrbench.tasks import Task


@dataclass(frozen=True)
class RunJob:
    """One claimed run to train and record: everything a worker needs, picklable."""

    claim: Any  # lrbench.store.Claim: run id, task, policy notation, seed, claim token
    db_url: str
    threads: int | None = None
    data_root: str | None = None
    target_accuracy: float | None = None
    heartbeat_every: float = 10.0
    device: str | None = None  # torch device of the run, e.g. 'cuda' (default: the CPU)


@dataclass(frozen=True)
class TrainJob:
    """One run to train and hand back, not recorded (the caller records it): picklable.

    ``task.max_iters`` is the run's length; ``target_accuracy`` stops it at the first evaluation
    reaching it; ``threads`` (None: the executor's), ``data_root`` and ``device`` (None: the
    CPU, or ``cuda`` for a Ray run given GPUs) as :func:`lrbench.trainer.train`.
    """

    task: Task
    policy: str
    seed: int
    target_accuracy: float | None = None
    threads: int | None = None
    data_root: str | None = None
    device: Any = None


@dataclass(frozen=True)
class ProgressEvent:
    """A worker's report on a run in progress."""

    run_id: int
    iteration: int
    max_iters: int
    lr: float
    top1: float | None


class Executor(Protocol):
    """Runs jobs somewhere; ``events`` yields ProgressEvents (``get_nowait`` raising Empty).

    ``submit(RunJob)``: a Future of the run's summary (the worker records the run);
    ``submit_train(TrainJob)``: a Future of its RunResult (nothing recorded). ``workers``: how
    many runs the caller should keep in flight at once.
    """

    workers: int
    events: Any

    def submit(self, job: RunJob) -> Future: ...

    def submit_train(self, job: TrainJob) -> Future: ...

    def shutdown(self, *, cancel: bool = False) -> None: ...


_stores: dict[str, Any] = {}


def _store(url: str) -> Any:
    """One open Store per database URL per worker process."""
    if url not in _stores:
        from lrbench.store import open_store

        _stores[url] = open_store(url)
    return _stores[url]


def execute_job(job: RunJob, events: Any = None) -> dict[str, Any]:
    """Train the job's run, record it under its claim, return its summary.

    A run whose set-up fails (e.g. its dataset is missing) is recorded as 'failed' with the error,
    so one bad run never stops a benchmark.
    """
    from lrbench.trainer import train

    store = _store(job.db_url)
    claim = job.claim
    last = {"event": 0.0, "beat": time.monotonic()}

    def progress(monitor: Any) -> None:
        now = time.monotonic()
        if events is not None and now - last["event"] >= 0.25:
            last["event"] = now
            point = monitor.last_point
            try:
                events.put_nowait(ProgressEvent(
                    claim.run_id, monitor.iteration, claim.task.max_iters, monitor.lr,
                    point.top1 if point is not None else None))
            except Exception:  # a full or closed channel never stops training
                pass
        if now - last["beat"] >= job.heartbeat_every:
            last["beat"] = now
            store.heartbeat(claim)

    start = time.perf_counter()
    try:
        result = train(claim.task, claim.policy, claim.seed, threads=job.threads,
                       data_root=job.data_root, target_accuracy=job.target_accuracy,
                       progress=progress, device=job.device)
    except Exception as e:  # set-up failed: nothing trained, but the run is accounted for
        from lrbench.policies import parse

        result = RunResult(
            task=claim.task, policy=claim.policy, seed=claim.seed, status="failed",
            stop_reason="error", iterations=0, wall_time=time.perf_counter() - start,
            n_params=parse(claim.policy).n_params, host=socket.gethostname(),
            error=f"{type(e).__name__}: {e}",
            extra={"traceback": traceback.format_exc(limit=5)},
        )
    store.record(result, claim=claim, dataset_info=result.extra.get("dataset"))
    return {"run_id": claim.run_id, **result.summary()}


def execute_train_job(job: TrainJob) -> RunResult:
    """Train the job's run and return its RunResult (recorded by nobody here).

    An error (e.g. a missing dataset, CUDA asked for but absent) propagates to the caller, as
    :func:`lrbench.trainer.train` raises it.
    """
    from lrbench.trainer import train

    return train(job.task, job.policy, job.seed, threads=job.threads, data_root=job.data_root,
                 device=job.device, target_accuracy=job.target_accuracy)
