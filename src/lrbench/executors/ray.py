"""The Ray executor: each training run is a Ray task somewhere on a Ray cluster.

Workers record their own results in the database (so ``db_url`` must be reachable from every
node: a SQLite file works on one machine, PostgreSQL across machines). Progress events come back
through a small actor on the driver's node.

Fault tolerance:

- a worker or node that dies mid-run: Ray runs the task again (``max_retries`` times) under the
  same claim; the retry trains from scratch and records the run (recording replaces, so the run
  ends up stored once). When the retries are used up the driver records the run as 'failed' with
  the error, and the benchmark goes on (the next ``lrbench run`` trains it again);
- a run that raises is recorded as 'failed' by :func:`~lrbench.executors.base.execute_job` and
  never retried (``retry_exceptions=False``);
- a driver that dies: Ray ends its tasks; the next ``lrbench run`` from the same host puts the
  dead driver's claims back to pending (see ``lrbench.runner``).

``submit_train`` (``lrbench tune``) runs a :class:`~lrbench.executors.base.TrainJob` as a Ray
task with the same resources and retries; it records nothing, its Future gives the RunResult.
A run that raises on its worker raises the same error in the driver (as the local pool does);
a run whose worker died on every attempt comes back as a 'failed' RunResult with 0 iterations
and the reason, so that the caller (tune) goes on without it.

>>> from lrbench.executors import make_executor               # doctest: +SKIP
>>> ex = make_executor("ray", address="auto", cpus_per_run=2)  # doctest: +SKIP
>>> ex.workers                                                 # doctest: +SKIP
8
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import queue
import socket
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

from lrbench._extras import MissingExtraError
from lrbench.executors.base import RunJob, TrainJob, execute_job, execute_train_job

__all__ = ["MissingExtraError", "RayExecutor", "import_ray"]

_INSTALL = "pip install 'lrbench[ray]'"


_AUTH_MODE = "RAY_AUTH_MODE"
_TOKEN_FILE = "~/.ray/auth_token"


def _client_token_auth() -> None:
    """Ray Client sends the cluster's auth token only when ``RAY_AUTH_MODE=token``; a local
    ``ray.init`` turns that on by itself when a token exists, a ray:// connection does not. Do
    the same for it: unset mode and a token in ``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH`` or
    ~/.ray/auth_token -> token mode (an explicit ``RAY_AUTH_MODE`` is left alone)."""
    if _AUTH_MODE in os.environ:
        return
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser(_TOKEN_FILE)
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(path):
        os.environ[_AUTH_MODE] = "token"


def import_ray() -> Any:
    """``import ray``, or a MissingExtraError naming ``pip install 'lrbench[ray]'``."""
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError(f"the 'ray' executor needs Ray: {_INSTALL}") from e
    return ray


# -- what runs on the cluster ---------------------------------------------------------------
def _run_job(job: RunJob, events: Any) -> dict[str, Any]:
    """The Ray task: one run, recorded by the worker (see ``execute_job``)."""
    return execute_job(job, events)


class _EventBuffer:
    """The events actor: workers push, the driver drains in batches."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self.items: deque[Any] = deque(maxlen=maxlen)

    def put(self, event: Any) -> None:
        self.items.append(event)

    def drain(self) -> list[Any]:
        out = list(self.items)
        self.items.clear()
        return out


class _EventSender:
    """What a worker gets as ``events``: ``put_nowait`` sends without waiting for an answer."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def put_nowait(self, event: Any) -> None:
        self.actor.put.remote(event)


class RayEvents:
    """The driver's end of the progress channel: ``get_nowait()`` or ``queue.Empty``.

    Every ``every`` seconds at most, an empty buffer asks the actor to drain (waiting up to
    ``wait`` seconds). A drain that is not back by then stays pending and is collected by a
    later call: the actor has already handed its events over, so dropping the reply would lose
    them (seen on a loaded machine)."""

    def __init__(self, actor: Any, ray: Any, every: float = 0.1, wait: float = 2.0) -> None:
        self._actor, self._ray, self._every, self._wait = actor, ray, every, wait
        self._buffer: deque[Any] = deque()
        self._pending: Any = None
        self._last = 0.0

    def get_nowait(self) -> Any:
        if not self._buffer and time.monotonic() - self._last >= self._every:
            self._last = time.monotonic()
            try:
                if self._pending is None:
                    self._pending = self._actor.drain.remote()
                ready, _ = self._ray.wait([self._pending], timeout=self._wait)
                if ready:
                    reply, self._pending = self._pending, None
                    self._buffer.extend(self._ray.get(reply))
            except Exception:  # a lost or slow events actor never stops a benchmark
                self._pending = None
        if not self._buffer:
            raise queue.Empty
        return self._buffer.popleft()


_remote: dict[str, Any] = {}


def _train_job(job: TrainJob) -> Any:
    """The Ray task of ``submit_train``: one run, handed back (see ``execute_train_job``)."""
    return execute_train_job(job)


def _remote_parts(ray: Any) -> tuple[Any, Any]:
    if not _remote:
        _remote["run"] = ray.remote(_run_job)
        _remote["train"] = ray.remote(_train_job)
        _remote["events"] = ray.remote(_EventBuffer)
    return _remote["run"], _remote["events"]


def _check_amount(name: str, value: Any, *, zero_ok: bool) -> float:
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and (value >= 0 if zero_ok else value > 0) and value == value and value != float("inf"))
    if not ok:
        raise ValueError(f"{name} must be a number {'>= 0' if zero_ok else '> 0'}, got {value!r}")
    return float(value)


def _whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


class RayExecutor:
    """Runs jobs as Ray tasks on a Ray cluster (see the module doc).

    ``address``: None (a new local Ray, or the one in ``RAY_ADDRESS``), ``'auto'`` (the
    cluster this machine joined with ``ray start``), ``'HOST:PORT'`` or ``'ray://HOST:PORT'``
    (Ray Client; needs ``pip install 'ray[client]'``). A process already connected to Ray keeps
    that connection, whatever the address, and it stays connected after ``shutdown``.
    ``workers``: runs in flight at once (default: the cluster's CPUs // ``cpus_per_run``, and
    GPUs // ``gpus_per_run``).
    ``cpus_per_run`` / ``gpus_per_run``: Ray resources of each run (fractions allowed); a run with
    GPUs trains on ``cuda``. ``max_retries``: how often a run whose worker or node died is
    started again. ``threads``: torch threads per run (default: ``cpus_per_run``, at least 1).

    >>> with RayExecutor(cpus_per_run=1) as ex:     # doctest: +SKIP
    ...     future = ex.submit(job)                   # a concurrent.futures.Future
    ...     future.result()["status"]
    'done'
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_run: float = 1,
        gpus_per_run: float = 0,
        max_retries: int = 2,
        threads: int | None = None,
    ) -> None:
        self.cpus_per_run = _check_amount("cpus_per_run", cpus_per_run, zero_ok=False)
        self.gpus_per_run = _check_amount("gpus_per_run", gpus_per_run, zero_ok=True)
        self.max_retries = _whole("max_retries", max_retries, 0)
        if workers is not None:
            workers = _whole("workers", workers, 1)
        self.threads = (_whole("threads", threads, 1) if threads is not None
                        else max(1, int(self.cpus_per_run)))
        if address is not None:
            address = str(address).strip()
            if not (address == "auto" or address.startswith("ray://") or ":" in address):
                raise ValueError(
                    f"address must be 'auto', 'ray://HOST:PORT' or HOST:PORT, got {address!r}")
        if address is not None and address.startswith("ray://"):
            _client_token_auth()  # before Ray reads its configuration
        ray = import_ray()
        if address not in (None, "auto") and not ray.is_initialized():
            _reachable(address)
        if address is not None and address.startswith("ray://"):
            try:
                import grpc  # noqa: F401  (Ray Client needs it)
            except ImportError:
                raise MissingExtraError(
                    "a ray:// address needs Ray Client: pip install 'ray[client]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"logging_level": logging.WARNING}
            if address is None or not address.startswith("ray://"):
                options["log_to_driver"] = False  # the driver's progress display stays readable
            if address is None:
                options["include_dashboard"] = False
            try:
                ray.init(address=address, **options)
            except ConnectionError as e:
                hint = ""
                if address is not None and address.startswith("ray://") \
                        and os.environ.get(_AUTH_MODE, "").lower() != "token":
                    hint = (f" (a cluster with token authentication needs {_AUTH_MODE}=token and "
                            f"its token in $RAY_AUTH_TOKEN or {_TOKEN_FILE})")
                raise ValueError(f"cannot connect to the Ray cluster at {address!r}: {e}{hint}") \
                    from None
            self._started = True
        self.address = address
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        if cpus < self.cpus_per_run:
            self._abort()
            raise ValueError(f"cpus_per_run={cpus_per_run:g} but the Ray cluster has "
                             f"{cpus:g} CPUs in all")
        if self.gpus_per_run and gpus < self.gpus_per_run:
            self._abort()
            raise ValueError(f"gpus_per_run={gpus_per_run:g} but the Ray cluster has "
                             f"{gpus:g} GPUs in all")
        fit = int(cpus // self.cpus_per_run)
        if self.gpus_per_run:
            fit = min(fit, int(gpus // self.gpus_per_run))
        self.workers = workers if workers is not None else max(1, fit)

        run, buffer = _remote_parts(ray)
        self._run = run
        self._train = _remote["train"]
        self._task_options = dict(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                  max_retries=self.max_retries, retry_exceptions=False)
        actor_options: dict[str, Any] = {"num_cpus": 0}
        try:  # keep the events actor where the driver is: a worker node may go away
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            actor_options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=True)
        except Exception:  # e.g. Ray Client: the actor goes wherever Ray puts it
            pass
        self._events_actor = buffer.options(**actor_options).remote()
        self.events = RayEvents(self._events_actor, ray)
        self._sender = _EventSender(self._events_actor)
        self._refs: dict[Any, RunJob | TrainJob] = {}
        self._closing = False

    def _abort(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def _prepared(self, job: Any) -> Any:
        """``job`` (a RunJob or TrainJob) with this executor's threads and, for runs given
        GPUs, device 'cuda', where it left them unset; refused after shutdown."""
        if self._closing:
            raise RuntimeError("cannot submit to an executor that was shut down")
        changes: dict[str, Any] = {}
        if job.threads is None:
            changes["threads"] = self.threads
        if job.device is None and self.gpus_per_run:
            changes["device"] = "cuda"
        return dataclasses.replace(job, **changes) if changes else job

    def submit(self, job: RunJob) -> Future:
        """Start the job as a Ray task; the Future gives its summary (see ``execute_job``)."""
        job = self._prepared(job)
        ref = self._run.options(name=f"lrbench-run-{job.claim.run_id}",
                                **self._task_options).remote(job, self._sender)
        self._refs[ref] = job
        out: Future = Future()
        out.set_running_or_notify_cancel()
        ref.future().add_done_callback(lambda f, r=ref: self._finished(r, f, out))
        return out

    def submit_train(self, job: TrainJob) -> Future:
        """Train ``job`` as a Ray task (``cpus_per_run``, ``gpus_per_run``, ``max_retries``);
        the Future gives its RunResult, recorded nowhere (see the module doc for failures)."""
        job = self._prepared(job)
        ref = self._train.options(name="lrbench-train", **self._task_options).remote(job)
        self._refs[ref] = job
        out: Future = Future()
        out.set_running_or_notify_cancel()
        ref.future().add_done_callback(lambda f, r=ref: self._trained(r, f, out))
        return out

    def _trained(self, ref: Any, done: Future, out: Future) -> None:
        job = self._refs.pop(ref, None)
        try:
            out.set_result(done.result())
            return
        except Exception as e:
            error = e
        if isinstance(error, self._ray.exceptions.RayTaskError):  # the run raised: its error
            cause = getattr(error, "cause", None)
            out.set_exception(cause if isinstance(cause, Exception) else error)
            return
        cancelled = isinstance(error, self._ray.exceptions.TaskCancelledError)
        if self._closing or not isinstance(job, TrainJob) or cancelled:
            out.set_exception(error)
            return
        why = f"worker lost {self.max_retries + 1} times ({type(error).__name__})"
        out.set_result(_lost_result(job.task, job.policy, job.seed, why, error))

    def _finished(self, ref: Any, done: Future, out: Future) -> None:
        job = self._refs.pop(ref, None)
        try:
            out.set_result(done.result())
            return
        except Exception as e:
            error = e
        cancelled = isinstance(error, self._ray.exceptions.TaskCancelledError)
        if self._closing or not isinstance(job, RunJob) or cancelled:
            out.set_exception(error)
            return
        if isinstance(error, self._ray.exceptions.RayTaskError):  # execute_job itself raised
            why = f"the run's task raised on its worker ({type(error).__name__})"
        else:  # the worker (or its node) died on every attempt
            why = f"worker lost {self.max_retries + 1} times ({type(error).__name__})"
        try:
            out.set_result(_record_lost(job, why, error))
        except Exception as e:
            out.set_exception(e)

    def shutdown(self, *, cancel: bool = False) -> None:
        """Wait for the runs in flight (``cancel``: stop them at once); disconnect from Ray if
        this executor connected."""
        ray = self._ray
        refs = list(self._refs)
        if cancel:
            self._closing = True
            for ref in refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:
                    pass
        if refs:  # cancelled tasks are gone before their claims are released
            ray.wait(refs, num_returns=len(refs), timeout=30 if cancel else None)
        self._closing = True
        try:
            ray.kill(self._events_actor)
        except Exception:
            pass
        self._abort()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(cancel=exc[0] is not None)


def _reachable(address: str, timeout: float = 10.0) -> None:
    """ValueError unless HOST:PORT (of ``[ray://]HOST:PORT``) accepts a TCP connection (Ray
    itself would retry for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address must be 'auto', 'ray://HOST:PORT' or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ValueError(f"cannot reach the Ray cluster at {address}: "
                         f"{e.strerror or e}") from None


def _lost_result(task: Any, policy: str, seed: int, why: str, error: BaseException) -> Any:
    """A 'failed' RunResult (0 iterations) for a run that no worker could finish."""
    from lrbench.policies import parse
    from lrbench.results import RunResult

    text = " ".join(str(error).split())
    if len(text) > 500:
        text = text[:500] + "..."
    return RunResult(
        task=task, policy=policy, seed=seed, status="failed", stop_reason="error", iterations=0,
        wall_time=0.0, n_params=parse(policy).n_params, host=socket.gethostname(),
        error=f"{why}: {text}",
    )


def _record_lost(job: RunJob, why: str, error: BaseException) -> dict[str, Any]:
    """Record as 'failed' a run that no worker could finish; return its summary."""
    from lrbench.store import open_store

    claim = job.claim
    result = _lost_result(claim.task, claim.policy, claim.seed, why, error)
    with open_store(job.db_url) as store:
        store.record(result, claim=claim)
    return {"run_id": claim.run_id, **result.summary()}
