"""Initial schema: datasets, tasks, policies, runs, curve points, leaderboard indexes.

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

METRICS = ("top1", "top5", "ac", "cd", "cdac", "ld")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("n_classes", sa.Integer),
        sa.Column("input_shape", sa.String(200)),
        sa.Column("n_train", sa.Integer),
        sa.Column("n_test", sa.Integer),
        sa.Column("info", sa.Text),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("framework", sa.String(50), nullable=False),
        sa.Column("dataset_id", sa.Integer,
                  sa.ForeignKey("datasets.id", name="fk_tasks_dataset_id"), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("n_classes", sa.Integer),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("optimizer", sa.String(50), nullable=False),
        sa.Column("momentum", sa.Double, nullable=False),
        sa.Column("weight_decay", sa.Double, nullable=False),
        sa.Column("init", sa.String(50), nullable=False),
        sa.Column("max_iters", sa.Integer, nullable=False),
        sa.Column("eval_every", sa.Integer, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("preset", sa.String(100)),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("key", name="uq_tasks_key"),
    )
    op.create_index("ix_tasks_dataset_model", "tasks", ["dataset", "model"])
    op.create_index("ix_tasks_model", "tasks", ["model"])

    op.create_table(
        "policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("notation", sa.Text, nullable=False),
        sa.Column("function", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("n_params", sa.Integer, nullable=False),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("notation", name="uq_policies_notation"),
    )
    op.create_index("ix_policies_function", "policies", ["function"])

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id", name="fk_runs_task_id"),
                  nullable=False),
        sa.Column("policy_id", sa.Integer,
                  sa.ForeignKey("policies.id", name="fk_runs_policy_id"), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stop_reason", sa.String(20)),
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        _ts("updated_at", nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("owner", sa.String(255)),
        sa.Column("claim_token", sa.String(64)),
        _ts("heartbeat_at"),
        sa.Column("iterations", sa.Integer),
        sa.Column("best_iter", sa.Integer),
        *(sa.Column(name, sa.Double) for name in METRICS),
        sa.Column("test_loss", sa.Double),
        sa.Column("train_loss", sa.Double),
        sa.Column("final_top1", sa.Double),
        sa.Column("wall_time", sa.Double),
        sa.Column("train_time", sa.Double),
        sa.Column("model_params", sa.BigInteger),
        sa.Column("n_points", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("extra", sa.Text),
        sa.UniqueConstraint("task_id", "policy_id", "seed", name="uq_runs_task_policy_seed"),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'diverged', 'failed')",
            name="ck_runs_status",
        ),
    )
    # The leaderboard: one task, finished runs, grouped by policy. On PostgreSQL the metrics
    # ride along in the index (INCLUDE) so the aggregate never touches the table.
    op.create_index(
        "ix_runs_leaderboard", "runs", ["task_id", "status", "policy_id"],
        postgresql_include=[*METRICS, "best_iter", "iterations", "wall_time"],
    )
    op.create_index("ix_runs_policy_id", "runs", ["policy_id"])
    op.create_index("ix_runs_status", "runs", ["status", "id"])

    op.create_table(
        "curve_points",
        sa.Column("run_id", sa.Integer,
                  sa.ForeignKey("runs.id", name="fk_curve_points_run_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("iteration", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Double)
          for name in ("lr", "train_loss", "test_loss", "top1", "top5", "ac", "cd", "cdac")),
    )


def downgrade() -> None:
    op.drop_table("curve_points")
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_runs_policy_id", table_name="runs")
    op.drop_index("ix_runs_leaderboard", table_name="runs")
    op.drop_table("runs")
    op.drop_index("ix_policies_function", table_name="policies")
    op.drop_table("policies")
    op.drop_index("ix_tasks_model", table_name="tasks")
    op.drop_index("ix_tasks_dataset_model", table_name="tasks")
    op.drop_table("tasks")
    op.drop_table("datasets")
