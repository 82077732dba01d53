"""Training jobs, their per-epoch metrics and log lines; lineage on model versions.

A job row is the whole durable state of a job: its spec, where it stands, and the digest of
its last checkpoint, so a job whose process (or whose control plane) was killed is resumed
from that checkpoint by whichever scheduler picks it up next.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("register_as", sa.String(128), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        # "scheduler": started here as a child process; "external": launched by torchrun or by
        # hand across machines, never started, requeued or recovered by a scheduler.
        sa.Column("launcher", sa.String(16), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("checkpoint_digest", sa.String(64), nullable=True),
        sa.Column("checkpoint_epoch", sa.Integer(), nullable=True),
        sa.Column("result_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_training_jobs_status", "training_jobs", ["status"])
    op.create_table(
        "training_job_metrics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("job_id", "epoch", name="uq_training_job_metrics_epoch"),
    )
    op.create_table(
        "training_job_logs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_training_job_logs_job_id_id", "training_job_logs", ["job_id", "id"])
    # NULL = registered by hand (no recorded lineage beyond source/parent_version).
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("lineage", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("lineage")
    op.drop_index("ix_training_job_logs_job_id_id", table_name="training_job_logs")
    op.drop_table("training_job_logs")
    op.drop_table("training_job_metrics")
    op.drop_index("ix_training_jobs_status", table_name="training_jobs")
    op.drop_table("training_jobs")
