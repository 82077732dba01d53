"""Retraining policies, their runs and the runs' events.

``retraining_runs.active`` holds the deployment's name while a run is under way and NULL
after: a unique column (NULLs do not collide on SQLite or PostgreSQL), so at most one run per
deployment is in progress, enforced by the database for every control plane.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retraining_policies",
        sa.Column("deployment", sa.String(128), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_table(
        "retraining_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False, index=True),
        sa.Column("active", sa.String(128), nullable=True, unique=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("served_version", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("evaluation", sa.JSON(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
    )
    op.create_table(
        "retraining_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey("retraining_runs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retraining_events")
    op.drop_table("retraining_runs")
    op.drop_table("retraining_policies")
