"""The tables of the LR database (SQLAlchemy Core).

The migrations in ``lrbench/store/migrations`` create exactly these tables; a test compares the
two. Change both together: add a migration, then update this file.

    datasets      one row per dataset name, with its metadata (classes, input shape, sizes)
    tasks         (framework, dataset, model, training settings); unique by the task identity
    policies      one row per policy, unique by its canonical notation
    runs          (task, policy, seed): status, claim, timestamps, summary metrics
    curve_points  the learning curve of a run, one row per evaluation
    api_tokens    the server's write tokens (hashed), by name; revoked ones kept with a date

Floats are double precision. NaN is stored as NULL; +-inf is kept (both backends store it).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

RUN_STATUSES = ("pending", "running", "done", "diverged", "failed")
FINISHED_STATUSES = ("done", "diverged", "failed")
SUMMARY_METRICS = ("top1", "top5", "ac", "cd", "cdac", "ld")
CURVE_COLUMNS = ("iteration", "lr", "train_loss", "test_loss", "top1", "top5", "ac", "cd", "cdac")
# What the leaderboard index carries, so the per-policy aggregate is an index-only scan.
LEADERBOARD_INCLUDE = (*SUMMARY_METRICS, "best_iter", "iterations", "wall_time")

metadata = MetaData()


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("n_classes", Integer),
    Column("input_shape", String(200)),  # JSON list, e.g. "[1, 28, 28]"
    Column("n_train", Integer),
    Column("n_test", Integer),
    Column("info", Text),  # all the metadata given, JSON
    UniqueConstraint("name", name="uq_datasets_name"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False),  # sha256 of the canonical JSON of Task.identity()
    Column("framework", String(50), nullable=False),
    Column("dataset_id", Integer, ForeignKey("datasets.id", name="fk_tasks_dataset_id"),
           nullable=False),
    Column("dataset", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("n_classes", Integer),  # the task type (SPEC section 4)
    Column("batch_size", Integer, nullable=False),
    Column("optimizer", String(50), nullable=False),
    Column("momentum", Double, nullable=False),
    Column("weight_decay", Double, nullable=False),
    Column("init", String(50), nullable=False),
    Column("max_iters", Integer, nullable=False),
    Column("eval_every", Integer, nullable=False),
    Column("settings", Text, nullable=False),  # Task.identity() as JSON: rebuilds the Task
    Column("preset", String(100)),  # a label only (the first one seen)
    _ts("created_at", nullable=False),
    UniqueConstraint("key", name="uq_tasks_key"),
    Index("ix_tasks_dataset_model", "dataset", "model"),
    Index("ix_tasks_model", "model"),
)

policies = Table(
    "policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("notation", Text, nullable=False),  # str(policy): canonical
    Column("function", String(50), nullable=False),  # SIN2, NSTEP, ..., COMPOSITE
    Column("kind", String(20), nullable=False),
    Column("params", Text, nullable=False),  # policy.to_dict() as canonical JSON
    Column("n_params", Integer, nullable=False),  # #Param
    _ts("created_at", nullable=False),
    UniqueConstraint("notation", name="uq_policies_notation"),
    Index("ix_policies_function", "function"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id", name="fk_runs_task_id"), nullable=False),
    Column("policy_id", Integer, ForeignKey("policies.id", name="fk_runs_policy_id"),
           nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("stop_reason", String(20)),
    _ts("created_at", nullable=False),
    _ts("started_at"),
    _ts("finished_at"),
    _ts("updated_at", nullable=False),
    Column("host", String(255)),
    # The claim: who is training this run, under which token, last seen when.
    Column("owner", String(255)),
    Column("claim_token", String(64)),
    _ts("heartbeat_at"),
    # Summary metrics (RunResult.summary()).
    Column("iterations", Integer),
    Column("best_iter", Integer),
    *(Column(name, Double) for name in SUMMARY_METRICS),
    Column("test_loss", Double),
    Column("train_loss", Double),
    Column("final_top1", Double),
    Column("wall_time", Double),
    Column("train_time", Double),
    Column("model_params", BigInteger),  # the network's #weights (RunResult.n_params)
    Column("n_points", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("extra", Text),  # JSON
    UniqueConstraint("task_id", "policy_id", "seed", name="uq_runs_task_policy_seed"),
    CheckConstraint(
        "status IN ('pending', 'running', 'done', 'diverged', 'failed')", name="ck_runs_status"
    ),
    Index("ix_runs_leaderboard", "task_id", "status", "policy_id",
          postgresql_include=list(LEADERBOARD_INCLUDE)),
    Index("ix_runs_policy_id", "policy_id"),
    Index("ix_runs_status", "status", "id"),
)

curve_points = Table(
    "curve_points",
    metadata,
    Column("run_id", Integer,
           ForeignKey("runs.id", name="fk_curve_points_run_id", ondelete="CASCADE"),
           primary_key=True),
    Column("seq", Integer, primary_key=True),  # position on the curve, from 0
    Column("iteration", Integer, nullable=False),
    *(Column(name, Double) for name in CURVE_COLUMNS[1:]),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),  # who or what the token is for
    Column("token_hash", String(64), nullable=False),  # sha256 hex of the token; never the token
    Column("prefix", String(16), nullable=False),  # the token's first characters, to tell it apart
    _ts("created_at", nullable=False),
    _ts("last_used_at"),
    _ts("revoked_at"),
    UniqueConstraint("name", name="uq_api_tokens_name"),
    UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
)
