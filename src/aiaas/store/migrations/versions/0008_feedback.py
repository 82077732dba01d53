"""Feedback: the ground truth of answered requests, by deployment name and request id.

One row per (deployment, request_id); feedback posted again for a request replaces its
label. Read with the prediction log to give a deployment's live performance.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("deployment", "request_id", name="uq_feedback_request"),
    )


def downgrade() -> None:
    op.drop_table("feedback")
