"""Drift: each model version's reference statistics, and live counts per deployment and interval.

``drift_references`` holds one reference per model version (deleted with it): the profile's
bins and reference counts as JSON, its digest, which input column is which feature, and where
it came from. ``drift_counts`` holds what the inference server counted: one row per
deployment, version, reference digest and interval start, which each server adds into.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_references",
        sa.Column(
            "model_version_id",
            sa.Integer(),
            sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "drift_counts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.UniqueConstraint(
            "deployment", "version", "profile", "started_at", name="uq_drift_counts_interval"
        ),
    )


def downgrade() -> None:
    op.drop_table("drift_counts")
    op.drop_table("drift_references")
