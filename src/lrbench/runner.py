"""Benchmark runner: a task x policies x seeds, trained on an executor, recorded in the store.

``run_benchmark`` plans every run in the database (pending), puts back runs a dead worker left
behind and runs that failed before, then hands pending runs to the executor as workers free up.
Workers record their own results, so an interrupted benchmark resumes where it stopped: runs
already done (or diverged) are never trained again, and none is stored twice.

>>> from lrbench.runner import Benchmark
>>> b = Benchmark.make(task="digits-mlp", policies=["FIX(k0=0.05)"], repeats=2, iters=200)
>>> b.task.max_iters, b.seeds, b.policies
(200, (0, 1), ('FIX(k0=0.05)',))
"""

from __future__ import annotations

import operator
import os
import queue
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from lrbench.data.datasets import canonical_name
from lrbench.executors import Executor, ProgressEvent, RunJob, make_executor
from lrbench.policies import parse
from lrbench.tasks import Task, get_task, make_task


@dataclass(frozen=True)
class Benchmark:
    """What to run: one task, policies in canonical notation, seeds."""

    task: Task
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    target_accuracy: float | None = None
    data_root: str | None = None

    @classmethod
    def make(
        cls,
        task: Task | str | dict[str, Any],
        policies: Sequence[str],
        *,
        repeats: int = 1,
        seeds: Sequence[int] | None = None,
        iters: int | None = None,
        eval_every: int | None = None,
        target_accuracy: float | None = None,
        data_root: str | None = None,
    ) -> Benchmark:
        """Validate and build; a ValueError names what is wrong."""
        overrides: dict[str, Any] = {}
        if iters is not None:
            overrides["max_iters"] = iters
        if eval_every is not None:
            overrides["eval_every"] = eval_every
        if isinstance(task, Task):
            t = task.replace(**overrides) if overrides else task
        elif isinstance(task, str):
            t = get_task(task, **overrides)
        elif isinstance(task, dict):
            fields = dict(task)
            preset = fields.pop("preset", None)
            fields.update(overrides)  # the arguments win over the mapping's own fields
            t = get_task(preset, **fields) if preset else make_task(**fields)
        else:
            raise ValueError(f"task must be a preset name or a mapping of task fields, got {task!r}")
        try:
            canonical_name(t.dataset)  # an unknown dataset is a config error, not N failed runs
        except ValueError as e:
            raise ValueError(f"dataset: {e}") from None
        if eval_every is None and t.eval_every > t.max_iters:
            t = t.replace(eval_every=t.max_iters)
        if isinstance(policies, str):
            policies = [policies]
        if not policies:
            raise ValueError("no policies to run: give at least one policy")
        canonical: list[str] = []
        for i, text in enumerate(policies):
            try:
                notation = str(parse(text))
            except ValueError as e:
                raise ValueError(f"policies[{i}]: {e}") from None
            if notation not in canonical:
                canonical.append(notation)
        if seeds is None:
            if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
                raise ValueError(f"repeats must be a whole number >= 1, got {repeats!r}")
            seeds = range(repeats)
        try:
            seed_list = tuple(dict.fromkeys(operator.index(s) for s in seeds))
        except TypeError:
            raise ValueError(f"seeds must be whole numbers >= 0, got {seeds!r}") from None
        if not seed_list:
            raise ValueError("seeds must list at least one seed, got none")
        if any(s < 0 for s in seed_list):
            raise ValueError(f"seeds must be >= 0, got {list(seed_list)}")
        if target_accuracy is not None and not 0 < float(target_accuracy) <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {target_accuracy!r}")
        return cls(t, tuple(canonical), seed_list, target_accuracy, data_root)

    @property
    def n_runs(self) -> int:
        return len(self.policies) * len(self.seeds)


@dataclass
class BenchmarkOutcome:
    """What a ``run_benchmark`` call did."""

    planned: int = 0
    already_done: int = 0
    trained: int = 0
    failed: int = 0
    diverged: int = 0
    interrupted: bool = False
    summaries: list[dict[str, Any]] = field(default_factory=list)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: a running run whose worker's last heartbeat is older than this (seconds) is taken over
STALE_AFTER = 600.0


def _orphaned(owner: str | None) -> bool:
    """A claim owned by a process of this host that no longer exists."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


class _Display:
    """Rich progress: one bar overall, one per run in progress with its LR and top-1."""

    def __init__(self, bench: Benchmark, total: int, done: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[int, Any] = {}
        if not enabled:
            return
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
        )

        from rich.console import Console

        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            transient=False,
            console=Console(stderr=True),  # stdout keeps only the results (tables, JSON)
        )
        self.overall = self.progress.add_task("[bold]all runs", total=total, completed=done, info="")
        self.progress.start()

    def started(self, run_id: int, label: str, max_iters: int) -> None:
        if self.enabled:
            self.bars[run_id] = self.progress.add_task(f"  {label}", total=max_iters, info="")

    def update(self, ev: ProgressEvent) -> None:
        if self.enabled and ev.run_id in self.bars:
            top1 = "" if ev.top1 is None or ev.top1 != ev.top1 else f"top-1 {100 * ev.top1:5.2f}%"
            self.progress.update(self.bars[ev.run_id], completed=ev.iteration,
                                 info=f"lr {ev.lr:.3g}  {top1}")

    def finished(self, run_id: int, status: str) -> None:
        if not self.enabled:
            return
        bar = self.bars.pop(run_id, None)
        if bar is not None:
            self.progress.remove_task(bar)
        self.progress.advance(self.overall)
        if status != "done":
            self.progress.console.print(f"  run {run_id}: {status}")

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


def run_benchmark(
    bench: Benchmark,
    store: Any,
    *,
    executor: Executor | str = "local",
    workers: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], Any] | None = None,
    device: str | None = None,
    executor_options: dict[str, Any] | None = None,
    stale_after: float | None = STALE_AFTER,
) -> BenchmarkOutcome:
    """Train every run of ``bench`` that the store does not have finished yet.

    ``store``: an open :class:`lrbench.store.Store`. ``executor``: an Executor or a name
    (``'local'``, ``'ray'``); ``workers`` / ``threads`` and ``executor_options`` (e.g.
    ``{'address': 'auto', 'gpus_per_run': 1}`` for Ray) make a named one. ``device``: the torch
    device of every run (default: the CPU, or ``cuda`` for Ray runs given GPUs). Ctrl-C stops
    the workers, puts their unfinished runs back to pending and re-raises KeyboardInterrupt;
    finished runs stay. ``stale_after`` (seconds, default 600): a run marked running whose
    worker has not sent a heartbeat for that long (workers send one every 10 s) is taken over,
    so a driver restarted on another machine also finishes the runs a dead driver's workers
    left; None: only runs of dead processes of this host are taken back.

    >>> run_benchmark(bench, store, executor="ray",                       # doctest: +SKIP
    ...               executor_options={"address": "auto", "cpus_per_run": 2})
    """
    if stale_after is not None and (isinstance(stale_after, bool) or not isinstance(
            stale_after, (int, float)) or not 0 < stale_after < float("inf")):
        raise ValueError(f"stale_after must be a number of seconds > 0 or None, "
                         f"got {stale_after!r}")
    out = BenchmarkOutcome()
    store.plan(bench.task, bench.policies, bench.seeds)
    store.requeue(bench.task, statuses=("failed",), orphaned=_orphaned)
    status = {(r.policy, r.seed): r.status for r in store.find_runs(task=bench.task)}
    wanted = {(p, s) for p in bench.policies for s in bench.seeds}
    out.planned = len(wanted)
    out.already_done = sum(1 for k in wanted if status.get(k) in ("done", "diverged"))
    todo = out.planned - out.already_done
    if todo == 0:
        return out

    owned = isinstance(executor, str)
    options: dict[str, Any] = dict(executor_options or {})
    ex: Executor = (make_executor(executor, workers=workers, threads=threads, **options)
                    if owned else executor)  # type: ignore[arg-type]
    owner = f"{socket.gethostname()}:{os.getpid()}"
    display = _Display(bench, out.planned, out.already_done, progress)
    inflight: dict[Future, Any] = {}
    try:
        while True:
            while len(inflight) < ex.workers:
                claim = store.claim(owner, task=bench.task, policies=bench.policies,
                                    seeds=bench.seeds, stale_after=stale_after)
                if claim is None:
                    break
                job = RunJob(claim, store.url, threads=None, data_root=bench.data_root,
                             target_accuracy=bench.target_accuracy, device=device)
                inflight[ex.submit(job)] = claim
                display.started(claim.run_id, f"{claim.policy} seed={claim.seed}",
                                claim.task.max_iters)
            if not inflight:
                break
            done, _ = wait(list(inflight), timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(ex, display)
            for fut in done:
                claim = inflight.pop(fut)
                try:
                    summary = fut.result()
                except Exception as e:  # the worker itself broke (not the run): give it back
                    store.release(claim)
                    raise RuntimeError(f"worker failed on run {claim.run_id}: {e}") from e
                out.trained += 1
                out.failed += summary["status"] == "failed"
                out.diverged += summary["status"] == "diverged"
                out.summaries.append(summary)
                display.finished(claim.run_id, summary["status"])
                if on_result is not None:
                    on_result(summary)
    except KeyboardInterrupt:
        out.interrupted = True
        ex.shutdown(cancel=True)
        for claim in inflight.values():
            store.release(claim)  # a no-op for a run its worker recorded just in time
        display.close()
        raise
    except BaseException:
        if owned:
            ex.shutdown(cancel=True)
        for claim in inflight.values():
            store.release(claim)
        display.close()
        raise
    display.close()
    if owned:
        ex.shutdown()
    return out


def _drain(ex: Executor, display: _Display) -> None:
    for _ in range(1000):
        try:
            ev = ex.events.get_nowait()
        except (queue.Empty, EOFError, OSError):
            return
        display.update(ev)

