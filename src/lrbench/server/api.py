"""The JSON API (``/api/...``); the OpenAPI document is at ``/api/openapi.json``.

Reading is open: tasks, a task's leaderboard and runs, one run with its curve, policies,
recommendations, and a task's runs as a bundle (what ``lrbench pull`` fetches). Writing —
``POST /api/runs`` — needs ``Authorization: Bearer <token>``; it is idempotent: a run is keyed by
(task, policy, seed), and one the server already has is kept as it is (counted in ``kept``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request

from lrbench.server import queries
from lrbench.server.schemas import (
    KEY_PATTERN,
    LeaderboardOut,
    MissingIn,
    MissingOut,
    PolicyOut,
    RecommendIn,
    RunOut,
    SubmitIn,
    SubmitOut,
    TaskOut,
)
from lrbench.store import Store, task_key
from lrbench.store.bundle import BUNDLE_PAGE
from lrbench.tasks import Task

router = APIRouter(prefix="/api")

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="the task's key (64 hex digits)")]
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
MetricText = Annotated[str | None, Query(max_length=200)]
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def get_store(request: Request) -> Store:
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]


def require_token(store: StoreDep,
                  authorization: Annotated[str | None, Header(max_length=300)] = None) -> str:
    """The name of the caller's token; 401 when it is missing, malformed, unknown or revoked."""
    if not authorization:
        raise HTTPException(401, "this needs an API token: Authorization: Bearer <token>",
                            headers=UNAUTHORIZED)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "the Authorization header must be 'Bearer <token>'",
                            headers=UNAUTHORIZED)
    name = store.verify_token(token.strip())
    if name is None:
        raise HTTPException(401, "invalid or revoked API token", headers=UNAUTHORIZED)
    return name


def find_task(store: Store, key: str) -> Task:
    task = store.task_by_key(key)
    if task is None:
        raise HTTPException(404, f"no task with key {key}")
    return task


def _task_out(summary: Any) -> TaskOut:
    return TaskOut(**summary.to_dict())


@router.get("/health", tags=["meta"])
def health(store: StoreDep) -> dict[str, Any]:
    """The server is up and its database answers."""
    from lrbench import __version__

    return {"status": "ok", "lrbench": __version__, "backend": store.backend}


def task_list(request: Request, store: Store, limit: int = 100, offset: int = 0) -> list[Any]:
    """The task overview (cached: it counts over every run)."""
    return request.app.state.cache.get(
        (None, "tasks", limit, offset), lambda: store.task_overview(limit=limit, offset=offset))


@router.get("/tasks", tags=["read"])
def list_tasks(request: Request, store: StoreDep, limit: Limit = 100,
               offset: Offset = 0) -> list[TaskOut]:
    """Stored tasks, most recently active first, with counts of runs and policies."""
    return [_task_out(s) for s in task_list(request, store, limit, offset)]


@router.get("/tasks/{key}", tags=["read"])
def get_task(store: StoreDep, key: Key) -> TaskOut:
    """One task by key."""
    found = store.task_overview(key=key)
    if not found:
        raise HTTPException(404, f"no task with key {key}")
    return _task_out(found[0])


@router.get("/tasks/{key}/leaderboard", tags=["read"])
def get_leaderboard(
    request: Request, store: StoreDep, key: Key,
    by: MetricText = None,
    weights: MetricText = None,
    lexicographic: MetricText = None,
    top: Annotated[int, Query(ge=1, le=queries.MAX_ROWS)] = 20,
    min_runs: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> LeaderboardOut:
    """The task's policies ranked (paper Table VII rows): by one metric (``by=top1``), by
    weights (``weights=top1:1,best_iter:-0.2``) or lexicographically
    (``lexicographic=top1,best_iter``); ties within the seed spread share a position."""
    from lrbench.reports.tables import table_rows

    task = find_task(store, key)
    ranked, how, more = request.app.state.cache.leaderboard(
        store, key, task, by=by, weights=weights, lexicographic=lexicographic, top=top,
        min_runs=min_runs)
    return LeaderboardOut(task_key=key, ranked_by=how, rows=table_rows(ranked),
                          more_tied=more)


@router.get("/tasks/{key}/runs", tags=["read"])
def list_runs(store: StoreDep, key: Key,
              policy: Annotated[str | None, Query(max_length=2000)] = None,
              limit: Limit = 100, offset: Offset = 0) -> list[dict[str, Any]]:
    """The task's runs as flat rows (summary metrics, no curves), oldest first."""
    task = find_task(store, key)
    rows = store.find_runs(task=task, policy=policy, limit=limit, offset=offset)
    return [r.to_dict() for r in rows]


@router.get("/tasks/{key}/bundle", tags=["read"])
def task_bundle(store: StoreDep, key: Key,
                limit: Annotated[int, Query(ge=1, le=BUNDLE_PAGE)] = BUNDLE_PAGE,
                offset: Offset = 0) -> dict[str, Any]:
    """The task's finished runs with their curves, oldest first, as an ``lrbench-bundle``
    (what ``pull`` reads), ``limit`` at a time: fewer than ``limit`` runs means the last page."""
    from lrbench.store.bundle import bundle_dict

    return bundle_dict(store, task=find_task(store, key), limit=limit, offset=offset)


@router.get("/policies", tags=["read"])
def list_policies(store: StoreDep,
                  function: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9]{1,20}$")] = None,
                  limit: Limit = 100, offset: Offset = 0) -> list[PolicyOut]:
    """Policies with their number of runs, most used first."""
    return [PolicyOut(**p) for p in store.policy_overview(function=function, limit=limit,
                                                          offset=offset)]


@router.get("/runs/{run_id}", tags=["read"])
def get_run(store: StoreDep, run_id: RunId) -> RunOut:
    """One finished run with its learning curve."""
    result = store.load(run_id)
    if result is None:
        raise HTTPException(404, f"no finished run with id {run_id}")
    return RunOut(id=run_id, task_key=task_key(result.task), result=result.to_dict(),
                  summary=result.summary())


@router.post("/runs/missing", tags=["read"])
def missing_runs(store: StoreDep, body: MissingIn) -> MissingOut:
    """Which of these (task key, policy, seed) the server has no finished run of."""
    keys = [(k.task_key, k.policy, k.seed) for k in body.keys]
    return MissingOut(missing=store.missing_runs(keys))


@router.post("/recommendations", tags=["read"])
def recommendations(store: StoreDep, body: RecommendIn) -> dict[str, Any]:
    """Policies for a task (a preset name or a full task) from the most similar stored tasks."""
    from lrbench.tasks import get_task as preset_task
    from lrbench.tuning.recommend import recommend

    task = preset_task(body.preset) if body.preset is not None else body.task.to_task()
    return recommend(store, task, top=body.top).to_dict()


@router.get("/token", tags=["write"],
            responses={401: {"description": "missing, invalid or revoked token"}})
def whoami(who: Annotated[str, Depends(require_token)]) -> dict[str, str]:
    """The name of the caller's token: a check that it is valid (``push`` starts with it)."""
    return {"name": who}


@router.post("/runs", tags=["write"], status_code=200,
             responses={401: {"description": "missing, invalid or revoked token"},
                        413: {"description": "request body too large"}})
def submit_runs(request: Request, store: StoreDep, body: SubmitIn,
                who: Annotated[str, Depends(require_token)]) -> SubmitOut:
    """Add finished runs with their curves (needs a token). Idempotent: runs the server already
    has are kept as they are."""
    from lrbench.store.bundle import BUNDLE_FORMAT, BUNDLE_VERSION, import_dict

    data = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "datasets": [d.model_dump(exclude_none=True) for d in body.datasets],
        "runs": [{"result": {**r.to_result().to_dict(), "host": r.host or f"push:{who}"}}
                 for r in body.runs],
    }
    report = import_dict(store, data, replace=False, source="submission")
    if report.written:
        request.app.state.cache.forget({task_key(r.task.to_task()) for r in body.runs})
    return SubmitOut(written=report.written, kept=report.skipped)
