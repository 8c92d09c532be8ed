"""The local executor: a pool of worker processes on this machine.

``workers`` processes each train one run at a time with ``threads`` torch threads. The default
splits the cores into single-threaded workers: on 2 cores, 2 runs x 1 thread beat 1 run x 2
threads (docs/benchmarks.md, "Runner"). Workers ignore Ctrl-C; the driver stops them.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from lrbench.executors.base import RunJob, TrainJob, execute_job, execute_train_job


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_layout(workers: int | None = None, threads: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker): by default one single-threaded worker per core."""
    cores = available_cores()
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    if workers is None and threads is None:
        return cores, 1
    if workers is None:
        return max(1, cores // int(threads)), int(threads)  # type: ignore[arg-type]
    if threads is None:
        return int(workers), max(1, cores // int(workers))
    return int(workers), int(threads)


def _init_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """Runs jobs in a process pool (spawned processes: safe with torch's thread pools)."""

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        self.workers, self.threads = default_layout(workers, threads)
        ctx = mp.get_context("spawn")
        self._manager = ctx.Manager()
        self.events = self._manager.Queue()
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
            initargs=(self.threads,),
        )

    def submit(self, job: RunJob) -> Future:
        if job.threads is None:
            job = RunJob(**{**job.__dict__, "threads": self.threads})
        return self._pool.submit(execute_job, job, self.events)

    def submit_train(self, job: TrainJob) -> Future:
        """Train ``job`` in the pool; the Future gives its RunResult (not recorded)."""
        if job.threads is None:
            job = dataclasses.replace(job, threads=self.threads)
        return self._pool.submit(execute_train_job, job)

    def shutdown(self, *, cancel: bool = False) -> None:
        """Stop the pool; with ``cancel``, runs in progress are killed, not waited for."""
        if cancel:
            processes = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                if p.is_alive():
                    p.terminate()
            for p in processes:
                p.join(timeout=10)
        else:
            self._pool.shutdown(wait=True)
        self._manager.shutdown()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(cancel=exc[0] is not None)
