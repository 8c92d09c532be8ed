"""Push local runs to a shared server and pull a task's results from it (``lrbench push/pull``).

**push**: list the local database's finished runs by (task key, policy, seed), ask the server
which it lacks (``POST /api/runs/missing``), and send only those with their curves
(``POST /api/runs``, in batches under the server's body limit). Pushing twice sends nothing the
second time; the server keeps runs it already has, so a push is idempotent either way.

**pull**: fetch a task's runs as a bundle (``GET /api/tasks/{key}/bundle``) and import them;
runs the local database already has are kept. Afterwards ``recommend`` and ``tune`` see them.

>>> from lrbench.store import Store
>>> from lrbench.server.client import push                 # doctest: +SKIP
>>> push(Store.open(), "http://127.0.0.1:8000", token)     # doctest: +SKIP
PushReport(local=45, missing=45, written=45, kept=0)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrbench.store import FINISHED_STATUSES, ImportReport, Store, task_key
from lrbench.store.bundle import BUNDLE_PAGE
from lrbench.tasks import Task

#: runs per POST /api/runs (the server takes up to 500) and bytes per request (it takes 8 MiB)
BATCH_RUNS = 200
BATCH_BYTES = 4 * 1024 * 1024
KEYS_PER_QUERY = 5000
#: runs per page of a pull: the most the server gives in one page
PULL_PAGE = BUNDLE_PAGE
TIMEOUT = 60.0


class ServerError(ValueError):
    """The server could not be reached or refused the request; the message says why."""


@dataclass(frozen=True)
class PushReport:
    local: int  # finished runs in the local database (of the tasks pushed)
    missing: int  # of those, runs the server lacked
    written: int  # runs the server added
    kept: int  # runs the server already had by the time they arrived

    def to_dict(self) -> dict[str, int]:
        return {"local": self.local, "missing": self.missing, "written": self.written,
                "kept": self.kept}


def _httpx() -> Any:
    from lrbench._extras import require

    return require("httpx", "server", "push and pull")


def check_server_url(url: str) -> str:
    """An http(s) URL without a trailing slash; ValueError otherwise."""
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url.strip()):
        raise ValueError(f"the server URL must start with http:// or https://, got {url!r}")
    return url.strip().rstrip("/")


def _request(client: Any, method: str, path: str, **kw: Any) -> Any:
    httpx = _httpx()
    try:
        response = client.request(method, path, **kw)
    except httpx.HTTPError as e:
        raise ServerError(f"cannot reach the server at {client.base_url}: {e}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = response.text[:200]
        what = {401: "the server refused the token", 404: "not found on the server",
                413: "the server refused a request as too large"}.get(response.status_code,
                                                                      "the server said")
        raise ServerError(f"{what} (HTTP {response.status_code}): {detail}")
    try:
        return response.json()
    except ValueError:
        raise ServerError(f"the server's answer to {method} {path} is not JSON") from None


def _client(server: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return _httpx().Client(base_url=check_server_url(server), headers=headers, timeout=TIMEOUT)


def resolve_task_key(task: str | Task) -> str:
    """A task key from a Task, a preset name or a key (64 hex digits)."""
    if isinstance(task, Task):
        return task_key(task)
    if isinstance(task, str) and re.fullmatch(r"[0-9a-fA-F]{64}", task.strip()):
        return task.strip().lower()
    from lrbench.tasks import get_task

    return task_key(get_task(task))


def push(store: Store, server: str, token: str, *, task: str | Task | None = None,
         progress: Callable[[int, int], Any] | None = None) -> PushReport:
    """Send the server the finished runs it lacks (of ``task`` only, when given).

    ``progress(sent, total)`` is called after each batch. ServerError when the server cannot be
    reached or refuses (e.g. a bad token: 401).
    """
    if not isinstance(token, str) or not token.strip():
        raise ValueError("push needs an API token (--token or $LRBENCH_TOKEN)")
    only = resolve_task_key(task) if task is not None else None
    tasks = [t for t in store.tasks() if only is None or task_key(t) == only]
    keys: list[tuple[str, str, int]] = []
    for t in tasks:
        k = task_key(t)
        keys += [(k, r.policy, int(r.seed))
                 for r in store.find_runs(task=t, status=list(FINISHED_STATUSES))]
    with _client(server, token.strip()) as client:
        _request(client, "GET", "/api/token")  # a bad token fails here, even with nothing to send
        missing: list[int] = []
        for i in range(0, len(keys), KEYS_PER_QUERY):
            chunk = keys[i:i + KEYS_PER_QUERY]
            body = {"keys": [{"task_key": k, "policy": p, "seed": s} for k, p, s in chunk]}
            missing += [i + j for j in _request(client, "POST", "/api/runs/missing",
                                                json=body)["missing"]]
        wanted = {keys[i] for i in missing}
        results = [r for t in tasks if any(k == task_key(t) for k, _, _ in wanted)
                   for r in store.runs(task=t)
                   if (task_key(t), str(r.policy), int(r.seed)) in wanted]
        datasets = {d["name"]: d for d in store.datasets({r.task.dataset for r in results})}
        written = kept = sent = 0
        for batch in _batches([r.to_dict() for r in results]):
            names = {run["task"]["dataset"] for run in batch}
            body = {"runs": batch, "datasets": [_dataset(datasets[n]) for n in sorted(names)
                                                 if n in datasets]}
            answer = _request(client, "POST", "/api/runs", json=body)
            written += int(answer["written"])
            kept += int(answer["kept"])
            sent += len(batch)
            if progress is not None:
                progress(sent, len(results))
    return PushReport(local=len(keys), missing=len(missing), written=written, kept=kept)


def _dataset(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in ("name", "n_classes", "input_shape", "n_train", "n_test")
            if meta.get(k) is not None}


def _batches(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Runs in batches of at most BATCH_RUNS runs and about BATCH_BYTES of JSON."""
    out: list[list[dict[str, Any]]] = []
    batch: list[dict[str, Any]] = []
    size = 0
    for run in runs:
        n = len(json.dumps(run))
        if batch and (len(batch) >= BATCH_RUNS or size + n > BATCH_BYTES):
            out.append(batch)
            batch, size = [], 0
        batch.append(run)
        size += n
    if batch:
        out.append(batch)
    return out


def pull(store: Store, server: str, task: str | Task) -> ImportReport:
    """Import the server's runs of ``task`` (a preset name, a Task or a task key) into
    ``store``; runs already there are kept. ServerError if the server lacks the task."""
    from lrbench.store.bundle import import_dict

    key = resolve_task_key(task)
    total = ImportReport()
    source = f"{check_server_url(server)} task {key}"
    with _client(server) as client:
        offset = 0
        while True:  # page by page, each imported as it comes
            data = _request(client, "GET", f"/api/tasks/{key}/bundle",
                            params={"limit": PULL_PAGE, "offset": offset})
            report = import_dict(store, data, replace=False, source=source)
            total.written += report.written
            total.skipped += report.skipped
            total.datasets = max(total.datasets, report.datasets)
            got = len(data.get("runs", ()))
            offset += got
            if got < PULL_PAGE:
                return total
