"""Deployment replicas: min/max replica processes, autoscaling target and delay, and the
autoscaler's decisions (``scaling_events``).

Every new column is nullable and NULL means "the default" (one replica, no autoscaling),
so deployments created before this revision keep serving as they did.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("min_replicas", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_replicas", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("target_in_flight", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("scale_down_delay_s", sa.Float(), nullable=True))
    op.create_table(
        "scaling_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_replicas", sa.Integer(), nullable=False),
        sa.Column("to_replicas", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_scaling_events_deployment", "scaling_events", ["deployment"])


def downgrade() -> None:
    op.drop_index("ix_scaling_events_deployment", table_name="scaling_events")
    op.drop_table("scaling_events")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("scale_down_delay_s")
        batch.drop_column("target_in_flight")
        batch.drop_column("max_replicas")
        batch.drop_column("min_replicas")
